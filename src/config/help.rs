//! The `--help` text.

use std::fmt::Write;

use super::options::{Arg, SUPPORTED};

/// What each supported option means, in `--help` order.
fn describe(name: &str) -> (&'static str, &'static str) {
    match name {
        "help" => ("", "Show this help and exit"),
        "version" => ("", "Print the version and exit"),
        "list-control-sockets" => (
            "",
            "Print the NG/HTTP sockets this configuration listens on, and exit",
        ),
        "list-options" => (
            "",
            "Print every option as NAME flag|value|list run|ignored|exit, and exit",
        ),
        "config-file" => (
            "FILE|none",
            "Config file (default /etc/rtprelay/rtprelay.conf, else built-in)",
        ),
        "config-section" => (
            "NAME",
            "Config file section (default [rtprelay], else [rtpengine])",
        ),
        "interface" => (
            "[NAME/]IP[!ADV]",
            "Media interface; also any, auto or a device name; repeatable",
        ),
        "listen-ng" => (
            "[IP:]PORT",
            "NG control over UDP; a bare port listens on all addresses",
        ),
        "listen-tcp-ng" => ("[IP:]PORT", "NG control over TCP"),
        "listen-http" => ("[IP:]PORT", "NG control over HTTP, and metrics"),
        "listen-cli" => (
            "[IP:]PORT",
            "rtpengine-ctl's CLI over TCP; a bare port listens on 127.0.0.1 only",
        ),
        "http-allow-host" => (
            "NAME;...",
            "Host names HTTP requests may use besides addresses, localhost and the hostname",
        ),
        "port-min" => ("INT", "Lowest media port (default 30000)"),
        "port-max" => ("INT", "Highest media port (default 40000)"),
        "table" => (
            "INT",
            "N >= 0: kernel (XDP) forwarding; -1 = userspace (default -1)",
        ),
        "num-threads" => ("INT", "Worker threads; 0 = one per CPU (default 0)"),
        "cpu-affinity" => ("LIST", "Pin workers to these CPUs, e.g. 0,1,4-7"),
        "dataplane" => (
            "auto|mmsg|uring|xdp|afxdp",
            "Packet I/O back end (default auto)",
        ),
        "no-fallback" => (
            "",
            "Exit if the XDP plane cannot run (no userspace fallback)",
        ),
        "connect-latched" => (
            "yes|no",
            "Socket planes: connect a media socket to its peer once latched (default no)",
        ),
        "uring-fixed-files" => (
            "yes|no",
            "uring plane: register the media sockets as fixed files (default no)",
        ),
        "dtls-passive" => (
            "",
            "Offer and answer a=setup:passive: the peer starts the DTLS handshake",
        ),
        "dtls-mtu" => ("INT", "Largest DTLS handshake datagram (default 1200)"),
        "dtls-cert-cipher" => (
            "prime256v1",
            "Key of the generated DTLS certificate (ECDSA P-256 only)",
        ),
        "dtls-signature" => (
            "sha-256|sha-1|sha-384|sha-512",
            "Hash of the fingerprint the relay announces (default sha-256)",
        ),
        "dtls-ciphers" => (
            "STRING",
            "Accepted; the DTLS suites are fixed (ECDHE-ECDSA with AES-GCM, ChaCha20)",
        ),
        "xdp-no-offload" => (
            "",
            "Attach XDP but forward nothing in the kernel (debugging)",
        ),
        "timeout" => (
            "SECS",
            "End a call after this long without media (default 60)",
        ),
        "silent-timeout" => ("SECS", "Same, for calls on hold (default 3600)"),
        "final-timeout" => (
            "SECS",
            "End every call after this long; 0 = never (default 0)",
        ),
        "offer-timeout" => (
            "SECS",
            "End a call that got no answer after this long (default 3600)",
        ),
        "delete-delay" => ("SECS", "Keep a deleted call this long (default 30)"),
        "endpoint-learning" => (
            "MODE",
            "How streams learn their peer: delayed, immediate, off, heuristic (default)",
        ),
        "strict-source" => (
            "",
            "Drop media from other sources once a peer is learnt (default)",
        ),
        "no-strict-source" => ("", "Accept media from any source"),
        "max-sessions" => ("INT", "Refuse new calls beyond this many; -1 = unlimited"),
        "media-target-deny" => (
            "CIDR;...",
            "Never send media to these networks (SDP endpoints there are learnt instead)",
        ),
        "media-target-allow" => (
            "CIDR;...",
            "Send media to these networks even if they are loopback, link-local or the host's",
        ),
        "redis" => (
            "[PW@]IP:PORT/DB",
            "Write every call to this Redis database (off the NG reply path)",
        ),
        "redis-write" => ("[PW@]IP:PORT/DB", "Write calls here instead of --redis"),
        "redis-expires" => ("SECS", "TTL of a call's Redis key (default 86400)"),
        "redis-allowed-errors" => (
            "N",
            "Consecutive Redis errors before writes pause (default -1: never)",
        ),
        "redis-disable-time" => ("SECS", "How long Redis writes pause (default 10)"),
        "redis-cmd-timeout" => ("MS", "Timeout of one Redis command (default 0: none)"),
        "redis-node" => (
            "NAME",
            "This relay's name in Redis keys (default: the host name)",
        ),
        "redis-follow" => (
            "NODE;...",
            "Hot standby: mirror these nodes' calls and take them over",
        ),
        "redis-connect-timeout" => ("MS", "Timeout of a Redis connect (default 1000)"),
        "redis-sentinel" => (
            "[PW@]IP:PORT;...",
            "Ask these Sentinels for the Redis master (IP:PORT of --redis is then unused)",
        ),
        "redis-sentinel-service" => ("NAME", "The master's name in the Sentinels"),
        "redis-cluster" => ("", "--redis is a Redis Cluster node (DB must be 0)"),
        "log-level" => (
            "0-7",
            "Syslog-style level: 7 debug, 6 info (default), 4 warning, 3 error",
        ),
        "log-stderr" => ("", "Log to stderr (rtprelay always does)"),
        "log-format" => (
            "text|json",
            "Log lines as text (default) or one JSON object each",
        ),
        "foreground" => ("", "Do not fork to the background"),
        "pidfile" => ("FILE", "Write the process id to FILE"),
        "drain-grace" => (
            "SECS",
            "On SIGTERM, drain (refuse new calls) for up to SECS before exiting; 0 exits at once",
        ),
        "recording-dir" => ("DIR", "Where recordings go"),
        "recording-method" => ("pcap|proc", "Recording method"),
        "recording-format" => ("raw|eth", "Recording file format"),
        _ => ("", ""),
    }
}

/// The full help text.
pub(crate) fn text() -> String {
    let mut out = String::from(
        "Usage: rtprelay [OPTION...]\n\
         RTP media relay controlled over rtpengine's NG protocol.\n\n\
         Options:\n",
    );
    for spec in SUPPORTED {
        let (meta, what) = describe(spec.name);
        let short = spec.short.map(|c| format!("-{c}, ")).unwrap_or_default();
        let long = match (spec.arg, meta.is_empty()) {
            (Arg::Flag, _) | (_, true) => format!("--{}", spec.name),
            _ => format!("--{}={meta}", spec.name),
        };
        let _ = writeln!(out, "  {:<44} {what}", format!("{short}{long}"));
    }
    out.push_str(
        "\nEvery other rtpengine option is accepted and ignored with a warning, so existing\n\
         rtpengine command lines and config files start. Config file keys are the long option\n\
         names; repeatable values are separated by ';'. The command line overrides the file.\n",
    );
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_supported_option_is_described() {
        for spec in SUPPORTED {
            assert!(
                !describe(spec.name).1.is_empty(),
                "--{} has no help",
                spec.name
            );
        }
        let t = text();
        assert!(t.contains("-t, --table=INT"));
        assert!(t.contains("-f, --foreground "));
        assert!(t.contains("--dataplane=auto|mmsg|uring|xdp"));
    }
}
