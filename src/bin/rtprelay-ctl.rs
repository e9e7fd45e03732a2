//! `rtprelay-ctl`: sends one command to a relay's `--listen-cli` port and prints the answer, with
//! the same arguments as rtpengine's `rtpengine-ctl` (`-ip IP[:PORT]`, `-port PORT`, then the
//! command words), so it also drives rtpengine and `rtpengine-ctl` drives rtprelay. Like
//! rtpengine-ctl, it takes the address from the `listen-cli` key of the relay's config file
//! (`--config-file`, else /etc/rtprelay/rtprelay.conf or /etc/rtpengine/rtpengine.conf) when the
//! arguments do not give it.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::time::Duration;

const USAGE: &str = "\
usage: rtprelay-ctl [ -ip <ipaddress>[:<port>] -port <port> -config-file <file> ] <command>

commands (as rtpengine-ctl's):
    list numsessions              number of calls
    list sessions all|own|CALLID  one line per call, or one call in detail
    list totals                   totals since start
    get|set maxsessions [N]       call limit (-1: none)
    get|set timeout [SECONDS]     also silenttimeout, offertimeout, finaltimeout, deletedelay
    get loglevel / set loglevel N syslog-style level 0-7
    terminate CALLID|all          end calls now

rtprelay's own:
    drain                         refuse new calls (ping fails), exit when the last call ends
    drain status                  whether the relay drains, and the calls left
";

/// How long to wait for the relay to connect, and then for each piece of its answer.
const TIMEOUT: Duration = Duration::from_secs(10);

struct Args {
    ip: String,
    port: u16,
    command: String,
}

fn parse_args(mut argv: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut ip: Option<String> = None;
    let mut port: Option<u16> = None;
    let mut config: Option<String> = None;
    let mut words = Vec::new();
    while let Some(a) = argv.next() {
        if !words.is_empty() {
            words.push(a);
            continue;
        }
        match a.as_str() {
            "-h" | "-help" | "--help" => return Err(String::new()),
            "-ip" | "--ip" => ip = Some(argv.next().ok_or("-ip needs an address")?),
            "-port" | "--port" => {
                let p = argv.next().ok_or("-port needs a number")?;
                port = Some(p.parse().map_err(|_| format!("bad port '{p}'"))?);
            }
            "-config-file" | "--config-file" => {
                config = Some(argv.next().ok_or("-config-file needs a file")?)
            }
            _ => words.push(a),
        }
    }
    // The config file's `listen-cli` fills in what the arguments leave out.
    if let Some(listen) = configured_listen(config.as_deref()) {
        match listen.parse::<u16>() {
            Ok(p) => port = port.or(Some(p)),
            Err(_) => ip = ip.or(Some(listen)),
        }
    }
    let mut ip = ip.unwrap_or_else(|| "127.0.0.1".into());
    // `-ip 10.0.0.1:9901` carries the port unless `-port` gives one (IPv6 as `[::1]:9901`).
    if let Some((host, p)) = ip.rsplit_once(':') {
        if let (Ok(p), true) = (p.parse::<u16>(), !host.is_empty() && !host.ends_with(':')) {
            if host.starts_with('[') || !host.contains(':') {
                port = port.or(Some(p));
                ip = host
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_owned();
            }
        }
    }
    let command = words.join(" ").trim().to_owned();
    if command.is_empty() {
        return Err(String::new());
    }
    match port.unwrap_or(9900) {
        0 => Err("port must be 1-65535".into()),
        port => Ok(Args { ip, port, command }),
    }
}

/// Config files looked at when `-config-file` is not given.
const DEFAULT_CONFIGS: &[&str] = &[
    "/etc/rtprelay/rtprelay.conf",
    "/etc/rtpengine/rtpengine.conf",
];

/// The first `listen-cli` value of the `[rtprelay]` or `[rtpengine]` section of `file` (or of the
/// first default config file that exists).
fn configured_listen(file: Option<&str>) -> Option<String> {
    let text = match file {
        Some(f) => std::fs::read_to_string(f).ok()?,
        None => DEFAULT_CONFIGS
            .iter()
            .find_map(|f| std::fs::read_to_string(f).ok())?,
    };
    listen_cli_in(&text)
}

fn listen_cli_in(text: &str) -> Option<String> {
    let mut in_section = false;
    for line in text.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            in_section = matches!(name.trim(), "rtprelay" | "rtpengine");
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        if in_section && key.trim() == "listen-cli" {
            // Several addresses are `;`-separated: the first one is used.
            let first = value.split(';').next().unwrap_or("").trim();
            return (!first.is_empty()).then(|| first.to_owned());
        }
    }
    None
}

fn target(args: &Args) -> Result<SocketAddr, String> {
    (args.ip.as_str(), args.port)
        .to_socket_addrs()
        .map_err(|e| format!("{}: {e}", args.ip))?
        .next()
        .ok_or_else(|| format!("{}: no address", args.ip))
}

fn run(args: &Args) -> Result<(), String> {
    let addr = target(args)?;
    let mut s = TcpStream::connect_timeout(&addr, TIMEOUT)
        .map_err(|e| format!("Cannot connect to the relay at {addr}: {e}"))?;
    s.set_read_timeout(Some(TIMEOUT))
        .map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(TIMEOUT))
        .map_err(|e| e.to_string())?;
    s.write_all(format!("{}\n", args.command).as_bytes())
        .map_err(|e| format!("send: {e}"))?;
    let mut out = std::io::stdout().lock();
    let mut buf = [0u8; 16384];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => out
                .write_all(buf.get(..n).unwrap_or_default())
                .map_err(|e| e.to_string())?,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("receive: {e}")),
        }
    }
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(why) => {
            if !why.is_empty() {
                eprintln!("rtprelay-ctl: {why}");
            }
            eprint!("{USAGE}");
            return ExitCode::from(1);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rtprelay-ctl: {e}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `s` as arguments, with no config file (the host's must not matter).
    fn args(s: &str) -> Result<Args, String> {
        let no_config = ["-config-file", "/nonexistent"].map(str::to_owned);
        parse_args(no_config.into_iter().chain(s.split(' ').map(str::to_owned)))
    }

    #[test]
    fn arguments_as_rtpengine_ctl_takes_them() {
        let a = args("list numsessions").expect("args");
        assert_eq!(
            (a.ip.as_str(), a.port, a.command.as_str()),
            ("127.0.0.1", 9900, "list numsessions")
        );
        let a = args("-ip 10.0.0.1:9901 terminate all").expect("args");
        assert_eq!((a.ip.as_str(), a.port), ("10.0.0.1", 9901));
        let a = args("-ip 10.0.0.1:9901 -port 5 get timeout").expect("args");
        assert_eq!(
            (a.ip.as_str(), a.port, a.command.as_str()),
            ("10.0.0.1", 5, "get timeout")
        );
        let a = args("-ip [::1]:9901 get timeout").expect("args");
        assert_eq!((a.ip.as_str(), a.port), ("::1", 9901));
        let a = args("-ip ::1 -port 7 get timeout").expect("args");
        assert_eq!((a.ip.as_str(), a.port), ("::1", 7));
        assert!(args("-ip 1.2.3.4").is_err());
        assert!(args("-port x list totals").is_err());
    }

    #[test]
    fn listen_cli_from_a_config_file() {
        let conf = "[other]\nlisten-cli = 1\n[rtpengine]\n# listen-cli = 2\nlisten-cli = 127.0.0.2:9911; 9912\n";
        assert_eq!(listen_cli_in(conf).as_deref(), Some("127.0.0.2:9911"));
        assert_eq!(
            listen_cli_in("[rtprelay]\nlisten-cli=9901\n").as_deref(),
            Some("9901")
        );
        assert_eq!(listen_cli_in("[rtprelay]\nlisten-ng=1\n"), None);
    }
}
