//! The option table: every option rtprelay accepts, with its short name and whether it takes a value.
//!
//! Names and arities follow rtpengine's command line, so that existing command lines and config
//! files start. Options rtprelay does not implement are accepted and reported as warnings.

/// What an option takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Arg {
    /// A switch: no value on the command line, a boolean in the config file.
    Flag,
    /// One value; a later one replaces an earlier one.
    Value,
    /// Repeatable; values accumulate (`;`-separated in the config file).
    List,
}

/// The options rtprelay acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Opt {
    Help,
    Version,
    /// Print the control sockets the configuration resolves to, and exit (rtprelay extension).
    ListControlSockets,
    /// Print every option name with what it takes, and exit (rtprelay extension; the container
    /// entrypoint maps `RTPENGINE_*` variables with it).
    ListOptions,
    ConfigFile,
    ConfigSection,
    LogLevel,
    LogStderr,
    Foreground,
    Pidfile,
    DrainGrace,
    Table,
    Interface,
    ListenNg,
    ListenTcpNg,
    ListenHttp,
    /// rtpengine's CLI (`rtpengine-ctl`, `rtprelay-ctl`) over TCP.
    ListenCli,
    /// `text` or `json` log lines (rtprelay extension).
    LogFormat,
    PortMin,
    PortMax,
    Timeout,
    SilentTimeout,
    FinalTimeout,
    OfferTimeout,
    DeleteDelay,
    NumThreads,
    MaxSessions,
    EndpointLearning,
    RecordingDir,
    RecordingMethod,
    RecordingFormat,
    Redis,
    RedisWrite,
    RedisExpires,
    RedisAllowedErrors,
    RedisDisableTime,
    RedisNode,
    RedisFollow,
    RedisCmdTimeout,
    RedisConnectTimeout,
    /// Sentinels that name the Redis master (rtprelay extension).
    RedisSentinel,
    RedisSentinelService,
    /// The Redis endpoints are Redis Cluster nodes (rtprelay extension).
    RedisCluster,
    // rtprelay extensions
    Dataplane,
    CpuAffinity,
    StrictSource,
    NoStrictSource,
    /// Networks media is never sent to, and networks it may be sent to despite the built-in classes.
    MediaTargetDeny,
    MediaTargetAllow,
    /// Host names HTTP requests may name besides addresses, `localhost` and the hostname.
    HttpAllowHost,
    /// `-F`: exit when the kernel (XDP) plane cannot run instead of falling back.
    NoFallback,
    XdpNoOffload,
    ConnectLatched,
    DtlsPassive,
    DtlsMtu,
    DtlsCertCipher,
    DtlsSignature,
    DtlsCiphers,
    UringFixedFiles,
    /// An rtpengine option that makes rtpengine do something and exit (`--codecs`, nftables).
    ExitAction,
    /// An rtpengine option rtprelay accepts and ignores.
    Unsupported,
}

/// One row of the table.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OptSpec {
    pub name: &'static str,
    pub short: Option<char>,
    pub arg: Arg,
    pub id: Opt,
}

impl OptSpec {
    /// `--name`, as used in messages.
    pub fn dashed(&self) -> String {
        format!("--{}", self.name)
    }
}

const fn o(name: &'static str, short: Option<char>, arg: Arg, id: Opt) -> OptSpec {
    OptSpec {
        name,
        short,
        arg,
        id,
    }
}

const fn u(name: &'static str, short: Option<char>, arg: Arg) -> OptSpec {
    o(name, short, arg, Opt::Unsupported)
}

/// Options rtprelay implements, in the order `--help` lists them.
pub(crate) const SUPPORTED: &[OptSpec] = &[
    o("help", Some('h'), Arg::Flag, Opt::Help),
    o("version", Some('v'), Arg::Flag, Opt::Version),
    o(
        "list-control-sockets",
        None,
        Arg::Flag,
        Opt::ListControlSockets,
    ),
    o("list-options", None, Arg::Flag, Opt::ListOptions),
    o("config-file", None, Arg::Value, Opt::ConfigFile),
    o("config-section", None, Arg::Value, Opt::ConfigSection),
    o("interface", Some('i'), Arg::List, Opt::Interface),
    o("listen-ng", Some('n'), Arg::List, Opt::ListenNg),
    o("listen-tcp-ng", Some('N'), Arg::List, Opt::ListenTcpNg),
    o("listen-http", None, Arg::List, Opt::ListenHttp),
    o("listen-cli", Some('c'), Arg::List, Opt::ListenCli),
    o("http-allow-host", None, Arg::List, Opt::HttpAllowHost),
    o("port-min", Some('m'), Arg::Value, Opt::PortMin),
    o("port-max", Some('M'), Arg::Value, Opt::PortMax),
    o("table", Some('t'), Arg::Value, Opt::Table),
    o("num-threads", None, Arg::Value, Opt::NumThreads),
    o("cpu-affinity", None, Arg::Value, Opt::CpuAffinity),
    o("dataplane", None, Arg::Value, Opt::Dataplane),
    o("no-fallback", Some('F'), Arg::Flag, Opt::NoFallback),
    o("xdp-no-offload", None, Arg::Flag, Opt::XdpNoOffload),
    o("connect-latched", None, Arg::Value, Opt::ConnectLatched),
    o("dtls-passive", None, Arg::Flag, Opt::DtlsPassive),
    o("dtls-mtu", None, Arg::Value, Opt::DtlsMtu),
    o("dtls-cert-cipher", None, Arg::Value, Opt::DtlsCertCipher),
    o("dtls-signature", None, Arg::Value, Opt::DtlsSignature),
    o("dtls-ciphers", None, Arg::Value, Opt::DtlsCiphers),
    o("uring-fixed-files", None, Arg::Value, Opt::UringFixedFiles),
    o("timeout", Some('o'), Arg::Value, Opt::Timeout),
    o("silent-timeout", Some('s'), Arg::Value, Opt::SilentTimeout),
    o("final-timeout", Some('a'), Arg::Value, Opt::FinalTimeout),
    o("offer-timeout", None, Arg::Value, Opt::OfferTimeout),
    o("delete-delay", Some('d'), Arg::Value, Opt::DeleteDelay),
    o("endpoint-learning", None, Arg::Value, Opt::EndpointLearning),
    o("strict-source", None, Arg::Flag, Opt::StrictSource),
    o("no-strict-source", None, Arg::Flag, Opt::NoStrictSource),
    o("max-sessions", None, Arg::Value, Opt::MaxSessions),
    o("media-target-deny", None, Arg::List, Opt::MediaTargetDeny),
    o("media-target-allow", None, Arg::List, Opt::MediaTargetAllow),
    o("redis", Some('r'), Arg::Value, Opt::Redis),
    o("redis-write", Some('w'), Arg::Value, Opt::RedisWrite),
    o("redis-expires", None, Arg::Value, Opt::RedisExpires),
    o(
        "redis-allowed-errors",
        None,
        Arg::Value,
        Opt::RedisAllowedErrors,
    ),
    o(
        "redis-disable-time",
        None,
        Arg::Value,
        Opt::RedisDisableTime,
    ),
    o("redis-cmd-timeout", None, Arg::Value, Opt::RedisCmdTimeout),
    o("redis-node", None, Arg::Value, Opt::RedisNode),
    o("redis-follow", None, Arg::List, Opt::RedisFollow),
    o(
        "redis-connect-timeout",
        None,
        Arg::Value,
        Opt::RedisConnectTimeout,
    ),
    o("redis-sentinel", None, Arg::Value, Opt::RedisSentinel),
    o(
        "redis-sentinel-service",
        None,
        Arg::Value,
        Opt::RedisSentinelService,
    ),
    o("redis-cluster", None, Arg::Flag, Opt::RedisCluster),
    o("log-level", Some('L'), Arg::Value, Opt::LogLevel),
    o("log-stderr", Some('E'), Arg::Flag, Opt::LogStderr),
    o("log-format", None, Arg::Value, Opt::LogFormat),
    o("foreground", Some('f'), Arg::Flag, Opt::Foreground),
    o("pidfile", Some('p'), Arg::Value, Opt::Pidfile),
    o("drain-grace", None, Arg::Value, Opt::DrainGrace),
    o("recording-dir", None, Arg::Value, Opt::RecordingDir),
    o("recording-method", None, Arg::Value, Opt::RecordingMethod),
    o("recording-format", None, Arg::Value, Opt::RecordingFormat),
];

/// rtpengine options that print something or change firewall rules, then exit.
pub(crate) const EXIT_ACTIONS: &[OptSpec] = &[
    o("codecs", None, Arg::Flag, Opt::ExitAction),
    o("nftables-start", None, Arg::Flag, Opt::ExitAction),
    o("nftables-stop", None, Arg::Flag, Opt::ExitAction),
    o("nftables-status", None, Arg::Flag, Opt::ExitAction),
];

/// Every other rtpengine option (10.5 and later), accepted and ignored with a warning.
pub(crate) const UNSUPPORTED: &[OptSpec] = &[
    u("active-switchover", None, Arg::Flag),
    u("amr-dtx", None, Arg::Value),
    u("audio-buffer-delay", None, Arg::Value),
    u("audio-buffer-length", None, Arg::Value),
    u("audio-player", None, Arg::Value),
    u("b2b-url", Some('b'), Arg::Value),
    u("cn-payload", None, Arg::List),
    u("codec-chain-async", None, Arg::Value),
    u("codec-chain-concurrency", None, Arg::Value),
    u("codec-chain-interval", None, Arg::Value),
    u("codec-chain-lib-path", None, Arg::Value),
    u("codec-chain-nonblock", None, Arg::Flag),
    u("codec-chain-opus-application", None, Arg::Value),
    u("codec-chain-opus-complexity", None, Arg::Value),
    u("codec-chain-runners", None, Arg::Value),
    u("codec-num-threads", None, Arg::Value),
    u("control-pmtu", None, Arg::Value),
    u("control-tos", None, Arg::Value),
    u("db-cache-expire", None, Arg::Value),
    u("db-cache-reload", None, Arg::Value),
    u("db-media-cache", None, Arg::Value),
    u("db-media-expire", None, Arg::Value),
    u("db-media-reload", None, Arg::Value),
    u("debug-srtp", None, Arg::Flag),
    u("dtls-rsa-key-size", None, Arg::Value),
    u("dtmf-digit-delay", None, Arg::Value),
    u("dtmf-log-dest", None, Arg::Value),
    u("dtmf-log-ng-tcp", None, Arg::Flag),
    u("dtmf-no-log-injects", None, Arg::Flag),
    u("dtmf-no-suppress", None, Arg::Flag),
    u("dtx-buffer", None, Arg::Value),
    u("dtx-cn-params", None, Arg::List),
    u("dtx-delay", None, Arg::Value),
    u("dtx-lag", None, Arg::Value),
    u("dtx-shift", None, Arg::Value),
    u("evs-dtx", None, Arg::Value),
    u("evs-lib-path", None, Arg::Value),
    u("expiry-timer", None, Arg::Value),
    u("graphite", Some('g'), Arg::Value),
    u("graphite-interval", Some('G'), Arg::Value),
    u("graphite-prefix", None, Arg::Value),
    u("graphite-timeout", None, Arg::Value),
    u("homer", None, Arg::Value),
    u("homer-disable-rtcp-stats", None, Arg::Flag),
    u("homer-enable-ng", None, Arg::Flag),
    u("homer-id", None, Arg::Value),
    u("homer-ng-capture-proto", None, Arg::Value),
    u("homer-protocol", None, Arg::Value),
    u("http-buf-size", None, Arg::Value),
    u("http-idle-timeout", None, Arg::Value),
    u("http-threads", None, Arg::Value),
    u("https-cert", None, Arg::Value),
    u("https-key", None, Arg::Value),
    u("idle-priority", None, Arg::Value),
    u("idle-scheduling", None, Arg::Value),
    u("interfaces-config", None, Arg::Value),
    u("io-uring", None, Arg::Flag),
    u("io-uring-buffers", None, Arg::Value),
    u("iptables-chain", None, Arg::Value),
    u("janus-secret", None, Arg::Value),
    u("jb-adaptive", None, Arg::Flag),
    u("jb-adaptive-max", None, Arg::Value),
    u("jb-adaptive-min", None, Arg::Value),
    u("jb-clock-drift", None, Arg::Flag),
    u("jitter-buffer", None, Arg::Value),
    u("kernel-num-threads", None, Arg::Value),
    u("kernel-player", None, Arg::Value),
    u("kernel-player-media", None, Arg::Value),
    u("kernel-slots", None, Arg::Value),
    u("listen-https", None, Arg::List),
    u("listen-tcp", Some('l'), Arg::List),
    u("listen-udp", Some('u'), Arg::List),
    u("log-facility", None, Arg::Value),
    u("log-facility-cdr", None, Arg::Value),
    u("log-facility-dtmf", None, Arg::Value),
    u("log-facility-rtcp", None, Arg::Value),
    u("log-level-codec", None, Arg::Value),
    u("log-level-control", None, Arg::Value),
    u("log-level-core", None, Arg::Value),
    u("log-level-crypto", None, Arg::Value),
    u("log-level-dtx", None, Arg::Value),
    u("log-level-ffmpeg", None, Arg::Value),
    u("log-level-http", None, Arg::Value),
    u("log-level-ice", None, Arg::Value),
    u("log-level-internals", None, Arg::Value),
    u("log-level-rtcp", None, Arg::Value),
    u("log-level-spandsp", None, Arg::Value),
    u("log-level-srtp", None, Arg::Value),
    u("log-level-transcoding", None, Arg::Value),
    u("log-mark-prefix", None, Arg::Value),
    u("log-mark-suffix", None, Arg::Value),
    u("log-name", None, Arg::Value),
    u("log-srtp-keys", None, Arg::Flag),
    u("max-bandwidth", None, Arg::Value),
    u("max-cpu", None, Arg::Value),
    u("max-dtx", None, Arg::Value),
    u("max-load", None, Arg::Value),
    u("max-log-line-length", None, Arg::Value),
    u("max-recv-iters", None, Arg::Value),
    u("measure-rtp", None, Arg::Flag),
    u("media-files-expire", None, Arg::Value),
    u("media-files-reload", None, Arg::Value),
    u("media-num-threads", None, Arg::Value),
    u("moh-attr-name", None, Arg::Value),
    u("moh-max-duration", None, Arg::Value),
    u("moh-max-repeats", None, Arg::Value),
    u("moh-prevent-double-hold", None, Arg::Flag),
    u("mos", None, Arg::List),
    u("mqtt-cafile", None, Arg::Value),
    u("mqtt-capath", None, Arg::Value),
    u("mqtt-certfile", None, Arg::Value),
    u("mqtt-host", None, Arg::Value),
    u("mqtt-id", None, Arg::Value),
    u("mqtt-keepalive", None, Arg::Value),
    u("mqtt-keyfile", None, Arg::Value),
    u("mqtt-pass", None, Arg::Value),
    u("mqtt-port", None, Arg::Value),
    u("mqtt-publish-interval", None, Arg::Value),
    u("mqtt-publish-qos", None, Arg::Value),
    u("mqtt-publish-scope", None, Arg::Value),
    u("mqtt-publish-topic", None, Arg::Value),
    u("mqtt-tls-alpn", None, Arg::Value),
    u("mqtt-user", None, Arg::Value),
    u("mysql-host", None, Arg::Value),
    u("mysql-pass", None, Arg::Value),
    u("mysql-port", None, Arg::Value),
    u("mysql-query", None, Arg::Value),
    u("mysql-user", None, Arg::Value),
    u("nftables-append", None, Arg::Flag),
    u("nftables-base-chain", None, Arg::Value),
    u("nftables-chain", None, Arg::Value),
    u("nftables-family", None, Arg::Value),
    u("ng-client-retries", None, Arg::Value),
    u("ng-client-timeout", None, Arg::Value),
    u("no-log-timestamps", None, Arg::Flag),
    u("no-redis-required", Some('q'), Arg::Flag),
    u("player-cache", None, Arg::Flag),
    u("poller-per-thread", None, Arg::Flag),
    u("poller-size", None, Arg::Value),
    u("preload-db-cache", None, Arg::List),
    u("preload-db-media", None, Arg::List),
    u("preload-media-files", None, Arg::List),
    u("priority", None, Arg::Value),
    u("record-both", None, Arg::Flag),
    u("record-egress", None, Arg::Flag),
    u("redis-delete-async", Some('y'), Arg::Value),
    u("redis-delete-async-interval", None, Arg::Value),
    u("redis-format", None, Arg::Value),
    u("redis-num-threads", None, Arg::Value),
    u("redis-resolve-on-reconnect", None, Arg::Flag),
    u("redis-subscribe", None, Arg::Value),
    u("redis-tcp-keepalive-intvl", None, Arg::Value),
    u("redis-tcp-keepalive-probes", None, Arg::Value),
    u("redis-tcp-keepalive-time", None, Arg::Value),
    u("reject-invalid-sdp", None, Arg::Flag),
    u("rtcp-interval", None, Arg::Value),
    u("save-interface-ports", Some('S'), Arg::Flag),
    u("scheduling", None, Arg::Value),
    u("silence-detect", None, Arg::Value),
    u("sip-source", None, Arg::Flag),
    u("socket-cpu-affinity", None, Arg::Value),
    u("software-id", None, Arg::Value),
    u("split-logs", None, Arg::Flag),
    u("ssrc-reporting", None, Arg::Value),
    u("subscribe-keyspace", Some('k'), Arg::List),
    u("templates", None, Arg::Value),
    u("thread-stack", None, Arg::Value),
    u("timer-accuracy", None, Arg::Value),
    u("tos", Some('T'), Arg::Value),
    u("transcode-config", None, Arg::Value),
    u("vsc-pause-rec", None, Arg::Value),
    u("vsc-pause-resume-rec", None, Arg::Value),
    u("vsc-start-pause-resume-rec", None, Arg::Value),
    u("vsc-start-rec", None, Arg::Value),
    u("vsc-start-stop-rec", None, Arg::Value),
    u("vsc-stop-rec", None, Arg::Value),
    u("xmlrpc-format", Some('x'), Arg::Value),
    u("xtables", None, Arg::Flag),
    u("{", None, Arg::Value),
];

fn all() -> impl Iterator<Item = &'static OptSpec> {
    SUPPORTED
        .iter()
        .chain(EXIT_ACTIONS.iter())
        .chain(UNSUPPORTED.iter())
}

/// `--list-options`: one line per option, `NAME KIND USE`, where KIND is `flag`, `value` or `list`
/// (repeatable) and USE is `run` (rtprelay acts on it), `ignored` (an rtpengine option rtprelay
/// accepts and ignores) or `exit` (it prints something and exits: `--help`, `--codecs`...). Lets
/// scripts map settings to options without a copy of this table.
pub(crate) fn listing() -> String {
    let mut lines = Vec::new();
    for s in all().filter(|s| s.name != "{") {
        let kind = match s.arg {
            Arg::Flag => "flag",
            Arg::Value => "value",
            Arg::List => "list",
        };
        let usage = match s.id {
            Opt::Unsupported => "ignored",
            Opt::Help
            | Opt::Version
            | Opt::ListControlSockets
            | Opt::ListOptions
            | Opt::ExitAction => "exit",
            _ => "run",
        };
        lines.push(format!("{} {kind} {usage}", s.name));
    }
    lines.join("\n")
}

/// The option with this long name (without dashes).
pub(crate) fn by_name(name: &str) -> Option<&'static OptSpec> {
    all().find(|s| s.name == name)
}

/// The option with this short name. `-?` is GLib's alias for `--help`.
pub(crate) fn by_short(c: char) -> Option<&'static OptSpec> {
    if c == '?' {
        return by_name("help");
    }
    all().find(|s| s.short == Some(c))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn names_and_shorts_are_unique() {
        let mut names = HashSet::new();
        let mut shorts = HashSet::new();
        for s in all() {
            assert!(names.insert(s.name), "duplicate option {}", s.name);
            if let Some(c) = s.short {
                assert!(shorts.insert(c), "duplicate short -{c}");
            }
        }
    }

    #[test]
    fn lookups() {
        assert_eq!(by_short('t').map(|s| s.id), Some(Opt::Table));
        assert_eq!(by_short('u').map(|s| s.name), Some("listen-udp"));
        assert_eq!(by_short('?').map(|s| s.id), Some(Opt::Help));
        assert_eq!(by_name("silence-detect").map(|s| s.arg), Some(Arg::Value));
        assert_eq!(by_name("jb-clock-drift").map(|s| s.arg), Some(Arg::Flag));
        assert_eq!(by_name("listen-cli").map(|s| s.arg), Some(Arg::List));
        assert_eq!(by_name("codecs").map(|s| s.id), Some(Opt::ExitAction));
        assert!(by_name("no-such-option").is_none());
        assert!(by_short('Z').is_none());
    }

    #[test]
    fn listing_names_every_option_with_its_kind_and_use() {
        let text = listing();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines.len(),
            all().count() - 1,
            "every option but '{{' is listed"
        );
        assert!(lines.contains(&"interface list run"));
        assert!(lines.contains(&"timeout value run"));
        assert!(lines.contains(&"no-fallback flag run"));
        assert!(lines.contains(&"jb-clock-drift flag ignored"));
        assert!(lines.contains(&"codecs flag exit"));
        assert!(lines.contains(&"list-options flag exit"));
        assert!(lines.iter().all(|l| l.split(' ').count() == 3));
    }
}
