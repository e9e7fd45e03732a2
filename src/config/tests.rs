//! End-to-end tests of [`Config::from_parts`]: command lines, config files, precedence, errors.
#![allow(clippy::unwrap_used)]

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use super::*;
use crate::sys::ifaddrs::HostAddress;

const RTPENGINE_LIKE: &str = include_str!("testdata/rtpengine-like.conf");

fn argv(line: &str) -> Vec<String> {
    std::iter::once("rtprelay")
        .chain(line.split_whitespace())
        .map(String::from)
        .collect()
}

fn run(line: &str, file: Option<&str>) -> Config {
    match Config::from_parts(&argv(line), file) {
        Ok(LoadOutcome::Run(c)) => c,
        other => panic!("{line}: {other:?}"),
    }
}

fn err(line: &str, file: Option<&str>) -> String {
    match Config::from_parts(&argv(line), file) {
        Err(e) => {
            assert_eq!(e.exit_code(), 2);
            e.to_string()
        }
        other => panic!("{line}: expected an error, got {other:?}"),
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn locals(c: &Config) -> Vec<(String, IpAddr)> {
    c.interfaces
        .iter()
        .map(|i| (i.name.clone(), i.local))
        .collect()
}

#[test]
fn rtpengine_test_harness_command_line() {
    let c = run(
        "--config-file=none -t -1 -i 203.0.113.1 -i 2001:db8:4321::1 -n 2223 -c 12345 -f -L 7 -E \
         -u 2222 --silence-detect=1",
        None,
    );
    assert_eq!(c.table, -1);
    assert_eq!(
        locals(&c),
        vec![
            ("default".into(), ip("203.0.113.1")),
            ("default".into(), ip("2001:db8:4321::1")),
        ]
    );
    assert_eq!(c.listen_ng, vec![sa("0.0.0.0:2223"), sa("[::]:2223")]);
    // A bare CLI port stays on loopback: the CLI ends calls and has no authentication.
    assert_eq!(c.listen_cli, vec![sa("127.0.0.1:12345")]);
    assert!(c.foreground && c.log_stderr);
    assert_eq!(c.log_level, 7);
    assert_eq!(
        c.warnings,
        vec![
            "option --listen-udp is not supported yet and is ignored",
            "option --silence-detect is not supported yet and is ignored",
        ]
    );
    assert_eq!(c.config_source, ConfigSource::None);
    assert!(!c.needs_host_addresses());
}

#[test]
fn rtpengine_heuristic_harness_command_line() {
    let c = run(
        "-i 203.0.113.1 -n 2223 -f -L 7 -E --endpoint-learning=heuristic",
        None,
    );
    assert_eq!(c.endpoint_learning, EndpointLearning::Heuristic);
    assert_eq!(locals(&c), vec![("default".into(), ip("203.0.113.1"))]);
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

#[test]
fn defaults() {
    let c = run("-i 192.0.2.1 -n 127.0.0.1:2223", None);
    assert_eq!((c.port_min, c.port_max), (30000, 40000));
    assert_eq!(c.table, -1);
    assert_eq!(c.num_threads, 0);
    assert_eq!(c.cpus, None);
    assert_eq!(c.dataplane, DataplaneRequest::Auto);
    assert_eq!(c.timeout, Duration::from_secs(60));
    assert_eq!(c.silent_timeout, Duration::from_secs(3600));
    assert_eq!(c.final_timeout, None);
    assert_eq!(c.offer_timeout, Duration::from_secs(3600));
    assert_eq!(c.delete_delay, Duration::from_secs(30));
    assert_eq!(c.log_level, 6);
    assert!(!c.log_stderr && !c.foreground);
    assert_eq!(c.pidfile, None);
    assert_eq!(c.endpoint_learning, EndpointLearning::Heuristic);
    assert!(c.strict_source_default);
    assert_eq!(c.max_sessions, -1);
    assert!(!c.connect_latched && !c.uring_fixed_files);
}

#[test]
fn every_supported_option_long_form() {
    let c = run(
        "--interface pub/10.0.0.5!198.51.100.7 --interface=v6/[2001:db8::1] \
         --listen-ng [::1]:2223 --listen-tcp-ng=127.0.0.1:2224 --listen-http 127.0.0.1:8080 \
         --port-min 20000 --port-max=20099 --table 0 --num-threads=4 --cpu-affinity 0,2-3 \
         --dataplane mmsg --timeout 30 --silent-timeout=600 --final-timeout 7200 \
         --offer-timeout 120 --delete-delay=0 --log-level 4 --log-stderr --foreground \
         --pidfile /run/rtprelay.pid --endpoint-learning immediate --no-strict-source \
         --max-sessions 500 --recording-dir /var/spool/rec --recording-method pcap \
         --recording-format eth --media-target-deny 10.0.0.0/8;192.168.1.7 \
         --media-target-deny=[fd00::]/8 --media-target-allow 127.0.0.1,::1 \
         --http-allow-host Prometheus.internal;relay-1 --connect-latched=yes \
         --uring-fixed-files yes",
        None,
    );
    assert_eq!(
        c.interfaces,
        vec![
            Interface {
                name: "pub".into(),
                local: ip("10.0.0.5"),
                advertised: Some(ip("198.51.100.7")),
            },
            Interface {
                name: "v6".into(),
                local: ip("2001:db8::1"),
                advertised: None,
            },
        ]
    );
    assert_eq!(c.listen_ng, vec![sa("[::1]:2223")]);
    assert_eq!(c.listen_tcp_ng, vec![sa("127.0.0.1:2224")]);
    assert_eq!(c.listen_http, vec![sa("127.0.0.1:8080")]);
    assert_eq!((c.port_min, c.port_max), (20000, 20099));
    assert_eq!(c.table, 0);
    assert_eq!(c.num_threads, 4);
    assert_eq!(c.cpus, Some(vec![0, 2, 3]));
    assert_eq!(c.dataplane, DataplaneRequest::Mmsg);
    assert!(c.connect_latched && c.uring_fixed_files);
    assert_eq!(c.timeout, Duration::from_secs(30));
    assert_eq!(c.silent_timeout, Duration::from_secs(600));
    assert_eq!(c.final_timeout, Some(Duration::from_secs(7200)));
    assert_eq!(c.offer_timeout, Duration::from_secs(120));
    assert_eq!(c.delete_delay, Duration::ZERO);
    assert_eq!(c.log_level, 4);
    assert!(c.log_stderr && c.foreground);
    assert_eq!(c.pidfile, Some(PathBuf::from("/run/rtprelay.pid")));
    assert_eq!(c.endpoint_learning, EndpointLearning::Immediate);
    assert!(!c.strict_source_default);
    assert_eq!(c.max_sessions, 500);
    assert_eq!(c.recording_dir, Some(PathBuf::from("/var/spool/rec")));
    assert_eq!(c.recording_method.as_deref(), Some("pcap"));
    assert_eq!(c.recording_format.as_deref(), Some("eth"));
    let nets =
        |v: &[&str]| -> Vec<ipnet::IpNet> { v.iter().map(|s| s.parse().expect("net")).collect() };
    assert_eq!(
        c.media_target_deny,
        nets(&["10.0.0.0/8", "192.168.1.7/32", "fd00::/8"])
    );
    assert_eq!(c.media_target_allow, nets(&["127.0.0.1/32", "::1/128"]));
    assert_eq!(c.http_allow_hosts, vec!["prometheus.internal", "relay-1"]);
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

#[test]
fn every_short_form() {
    let c = run(
        "-i 192.0.2.1 -n2223 -N 127.0.0.1:2224 -m 1000 -M1999 -t0 -o 5 -s 6 -a 7 -d 8 -L3 -Ef \
         -p /tmp/x.pid",
        None,
    );
    assert_eq!(c.listen_ng, vec![sa("0.0.0.0:2223"), sa("[::]:2223")]);
    assert_eq!(c.listen_tcp_ng, vec![sa("127.0.0.1:2224")]);
    assert_eq!((c.port_min, c.port_max), (1000, 1999));
    assert_eq!(c.table, 0);
    assert_eq!(c.timeout, Duration::from_secs(5));
    assert_eq!(c.silent_timeout, Duration::from_secs(6));
    assert_eq!(c.final_timeout, Some(Duration::from_secs(7)));
    assert_eq!(c.delete_delay, Duration::from_secs(8));
    assert_eq!(c.log_level, 3);
    assert!(c.log_stderr && c.foreground);
    assert_eq!(c.pidfile, Some(PathBuf::from("/tmp/x.pid")));
}

#[test]
fn later_scalar_wins_and_lists_accumulate() {
    let c = run(
        "-i 192.0.2.1 -i 192.0.2.2 -n 1 -n 2 -t 5 -t -1 --strict-source --no-strict-source \
         --strict-source",
        None,
    );
    assert_eq!(c.interfaces.len(), 2);
    assert_eq!(c.listen_ng.len(), 4);
    assert_eq!(c.table, -1);
    assert!(c.strict_source_default);
}

#[test]
fn zero_timeouts_mean_rtpengine_defaults() {
    let c = run("-i 192.0.2.1 -n 1 -o 0 -s 0 --offer-timeout=-3 -a 0", None);
    assert_eq!(c.timeout, Duration::from_secs(60));
    assert_eq!(c.silent_timeout, Duration::from_secs(3600));
    assert_eq!(c.offer_timeout, Duration::from_secs(3600));
    assert_eq!(c.final_timeout, None);
}

#[test]
fn help_version_and_one_shot_actions_exit() {
    for line in ["--help", "-h", "-?", "-i 1.2.3.4 --help"] {
        match Config::from_parts(&argv(line), None).unwrap() {
            LoadOutcome::Exit { message } => assert!(message.starts_with("Usage: rtprelay")),
            other => panic!("{line}: {other:?}"),
        }
    }
    for line in ["--version", "-v"] {
        assert_eq!(
            Config::from_parts(&argv(line), None).unwrap(),
            LoadOutcome::Exit {
                message: format!("rtprelay {}", env!("CARGO_PKG_VERSION"))
            }
        );
    }
    match Config::from_parts(&argv("--codecs"), None).unwrap() {
        LoadOutcome::Exit { message } => assert!(message.contains("no codecs")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn unsupported_flags_and_values_are_told_apart() {
    // -T takes a value (184); -F is a flag, so -i after it is still an option.
    let c = run(
        "-T 184 -F -i 192.0.2.1 -n 1 --jb-clock-drift --redis-num-threads=4",
        None,
    );
    assert_eq!(c.interfaces.len(), 1);
    assert!(c.no_fallback);
    assert_eq!(
        c.warnings,
        vec![
            "option --tos is not supported yet and is ignored",
            "option --jb-clock-drift is not supported yet and is ignored",
            "option --redis-num-threads is not supported yet and is ignored",
        ]
    );
}

#[test]
fn errors_name_the_option() {
    let cases = [
        (
            "-i 192.0.2.1 -n 1 --port-min abc",
            "--port-min: invalid value 'abc': expected a number 1-65535",
        ),
        (
            "-i 192.0.2.1 -n 1 -M 0",
            "--port-max: invalid value '0': expected a number 1-65535",
        ),
        (
            "-i 192.0.2.1 -n 1 -m 40000 -M 30000",
            "--port-min: 40000 is above --port-max 30000",
        ),
        (
            "-i 192.0.2.1 -n 1 -m 30001 -M 30002",
            "--port-max: the port range 30001-30002 holds no RTP/RTCP pair",
        ),
        (
            "-i 999.1.1.1 -n 1",
            "--interface: invalid value '999.1.1.1'",
        ),
        (
            "-i 192.0.2.1 -n 1.2.3.4",
            "--listen-ng: invalid value '1.2.3.4'",
        ),
        (
            "-i 192.0.2.1 -N x:1",
            "--listen-tcp-ng: invalid value 'x:1'",
        ),
        (
            "-i 192.0.2.1 -n 1 --num-threads 2000",
            "--num-threads: invalid value '2000': expected a number 0-1024",
        ),
        (
            "-i 192.0.2.1 -n 1 -L 9",
            "--log-level: invalid value '9': expected a number 0-7",
        ),
        (
            "-i 192.0.2.1 -n 1 --endpoint-learning=maybe",
            "--endpoint-learning: invalid value 'maybe'",
        ),
        (
            "-i 192.0.2.1 -n 1 -o soon",
            "--timeout: invalid value 'soon'",
        ),
        (
            "-i 192.0.2.1 -n 1 -d -1",
            "--delete-delay: invalid value '-1'",
        ),
        ("-i 192.0.2.1 -n 1 -t x", "--table: invalid value 'x'"),
        (
            "-i 192.0.2.1 -n 1 --dataplane dpdk",
            "--dataplane: invalid value 'dpdk'",
        ),
        (
            "-i 192.0.2.1 -n 1 --cpu-affinity a",
            "--cpu-affinity: invalid value 'a'",
        ),
        (
            "-i 192.0.2.1 -n 1 --max-sessions lots",
            "--max-sessions: invalid value 'lots'",
        ),
        (
            "-i 192.0.2.1 -n 1 --media-target-deny 10.0.0.0/40",
            "--media-target-deny: invalid value '10.0.0.0/40'",
        ),
        ("-n 1", "--interface: no media interface configured"),
        (
            "-i 192.0.2.1",
            "--listen-ng: no control listener configured",
        ),
        ("--frobnicate", "unknown option '--frobnicate'"),
        ("-Z", "unknown option '-Z'"),
        ("-i", "-i: missing value"),
        ("extra", "unexpected argument 'extra'"),
    ];
    for (line, want) in cases {
        let got = err(line, None);
        assert!(
            got.starts_with(want),
            "{line}: got '{got}', want '{want}...'"
        );
    }
}

#[test]
fn rtpengine_like_file() {
    let c = run("", Some(RTPENGINE_LIKE));
    assert_eq!(c.config_section.as_deref(), Some("rtpengine"));
    assert_eq!(c.table, 0);
    assert_eq!(
        c.interfaces,
        vec![
            Interface {
                name: "inside".into(),
                local: ip("10.20.0.4"),
                advertised: None,
            },
            Interface {
                name: "outside".into(),
                local: ip("10.20.1.4"),
                advertised: Some(ip("203.0.113.50")),
            },
        ]
    );
    assert_eq!(c.listen_ng, vec![sa("127.0.0.1:2223")]);
    assert_eq!(c.listen_http, vec![sa("127.0.0.1:2225")]);
    assert_eq!(c.timeout, Duration::from_secs(90));
    assert_eq!(c.silent_timeout, Duration::from_secs(1800));
    assert_eq!(c.final_timeout, Some(Duration::from_secs(10800)));
    assert_eq!(c.endpoint_learning, EndpointLearning::Delayed);
    assert_eq!(
        c.pidfile,
        Some(PathBuf::from("/run/rtpengine/rtpengine.pid"))
    );
    assert_eq!(c.num_threads, 8);
    assert_eq!((c.port_min, c.port_max), (35000, 45000));
    assert_eq!(c.max_sessions, 2000);
    assert_eq!(c.recording_dir, Some(PathBuf::from("/var/spool/rtpengine")));
    assert_eq!(c.recording_method.as_deref(), Some("proc"));
    assert_eq!(c.log_level, 5);
    assert_eq!(c.listen_cli, vec![sa("127.0.0.1:2224")]);
    assert_eq!(
        c.warnings,
        vec!["config key 'tos' is not supported yet and is ignored",]
    );
}

#[test]
fn config_section_selects_the_group() {
    let c = run("--config-section rtpengine-testing", Some(RTPENGINE_LIKE));
    assert_eq!(c.config_section.as_deref(), Some("rtpengine-testing"));
    assert_eq!(c.table, -1);
    assert_eq!(locals(&c), vec![("default".into(), ip("192.0.2.77"))]);
    assert!(c.foreground && c.log_stderr);
    assert_eq!(c.log_level, 7);
    // Nothing from [rtpengine] leaks in.
    assert_eq!((c.port_min, c.port_max), (30000, 40000));

    let c = run(
        "--config-section=nope -i 192.0.2.1 -n 1",
        Some(RTPENGINE_LIKE),
    );
    assert_eq!(
        c.warnings,
        vec![
            "config file (built-in default config) has no [nope] section: only defaults and the \
              command line apply"
        ]
    );
}

#[test]
fn rtprelay_section_is_preferred_over_rtpengine() {
    let file = "[rtpengine]\ninterface = 192.0.2.1\nlisten-ng = 1\ntable = 3\n\
                [rtprelay]\ninterface = 192.0.2.2\nlisten-ng = 2\n";
    let c = run("", Some(file));
    assert_eq!(c.config_section.as_deref(), Some("rtprelay"));
    assert_eq!(locals(&c), vec![("default".into(), ip("192.0.2.2"))]);
    assert_eq!(c.table, -1);
}

#[test]
fn command_line_overrides_file() {
    let c = run(
        "--config-file /etc/x.conf -t -1 -i 192.0.2.9 -i 192.0.2.10 --port-max 36001 -L 7",
        Some(RTPENGINE_LIKE),
    );
    assert_eq!(c.config_source, ConfigSource::File("/etc/x.conf".into()));
    assert_eq!(c.table, -1);
    // A command-line list replaces the file's list rather than adding to it.
    assert_eq!(
        locals(&c),
        vec![
            ("default".into(), ip("192.0.2.9")),
            ("default".into(), ip("192.0.2.10")),
        ]
    );
    assert_eq!((c.port_min, c.port_max), (35000, 36001));
    assert_eq!(c.log_level, 7);
    // Untouched file settings stay.
    assert_eq!(c.listen_ng, vec![sa("127.0.0.1:2223")]);
    assert_eq!(c.timeout, Duration::from_secs(90));
}

#[test]
fn file_booleans_and_strict_source() {
    let file =
        "[rtprelay]\ninterface=192.0.2.1\nlisten-ng=1\nforeground = true\nlog-stderr = false\n\
                no-strict-source = true\nno-fallback = false\nsip-source = true\n";
    let c = run("", Some(file));
    assert!(c.foreground && !c.log_stderr);
    assert!(!c.strict_source_default);
    assert!(!c.no_fallback);
    assert_eq!(
        c.warnings,
        vec!["config key 'sip-source' is not supported yet and is ignored"]
    );
    // The command line switches it back on.
    assert!(run("--strict-source", Some(file)).strict_source_default);
}

#[test]
fn file_errors_name_the_key() {
    let e = err(
        "",
        Some("[rtprelay]\ninterface=192.0.2.1\nlisten-ng=1\nport-min = low\n"),
    );
    assert_eq!(
        e,
        "config key 'port-min': invalid value 'low': expected a number 1-65535"
    );
    let e = err(
        "",
        Some("[rtprelay]\ninterface=192.0.2.1\nlisten-ng=1\nforeground = perhaps\n"),
    );
    assert_eq!(
        e,
        "config key 'foreground': invalid value 'perhaps': expected true or false"
    );
    let e = err("", Some("[rtprelay]\ninterface=1.2.3\nlisten-ng=1\n"));
    assert!(
        e.starts_with("config key 'interface': invalid value '1.2.3'"),
        "{e}"
    );
    let e = err("", Some("[rtprelay]\nthis is not ini\n"));
    assert!(
        e.starts_with("--config-file: (built-in default config), line 2:"),
        "{e}"
    );
}

#[test]
fn unknown_file_keys_warn() {
    let file =
        "[rtprelay]\ninterface=192.0.2.1\nlisten-ng=1\nnum-media-threads = 8\nversion = true\n";
    let c = run("", Some(file));
    assert_eq!(
        c.warnings,
        vec![
            "config key 'num-media-threads' in [rtprelay] is not an rtpengine option and is ignored",
            "config key 'version' has no effect in a config file and is ignored",
        ]
    );
}

#[test]
fn embedded_default_starts_a_fresh_host() {
    let c = run("", Some(EMBEDDED_DEFAULT));
    assert_eq!(c.config_section.as_deref(), Some("rtprelay"));
    assert!(c.needs_host_addresses());
    assert!(c.interfaces.is_empty());
    assert_eq!(c.listen_ng, vec![sa("127.0.0.1:22222")]);
    assert_eq!((c.port_min, c.port_max, c.table), (30000, 40000, -1));
    assert!(c.log_stderr && c.foreground);
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

#[test]
fn resolve_host_interfaces() {
    let mut c = run("-i lo/127.0.0.1 -i pub/auto!198.51.100.1 -n 1", None);
    assert!(c.needs_host_addresses());
    assert_eq!(c.interfaces.len(), 1);
    let host = [HostAddress {
        device: "eth0".into(),
        addr: ip("192.0.2.44"),
        up: true,
        loopback: false,
        scoped: false,
    }];
    c.resolve_interfaces(&host).unwrap();
    assert_eq!(
        locals(&c),
        vec![
            ("lo".into(), ip("127.0.0.1")),
            ("pub".into(), ip("192.0.2.44"))
        ]
    );
    assert_eq!(c.interfaces[1].sdp_address(), ip("198.51.100.1"));
    let e = c.resolve_interfaces(&[]).unwrap_err().to_string();
    assert!(e.starts_with("--interface: interface 'pub'"), "{e}");
}

#[test]
fn config_file_none_ignores_file_text_choice() {
    // from_parts takes the text it is given; --config-file only names it.
    let c = run("--config-file=none -i 192.0.2.1 -n 1", None);
    assert_eq!(c.config_source, ConfigSource::None);
    assert_eq!(c.config_section, None);
}

fn os_argv(line: &str) -> Vec<std::ffi::OsString> {
    argv(line).into_iter().map(Into::into).collect()
}

#[test]
fn load_reads_the_named_file() {
    let path =
        std::env::temp_dir().join(format!("rtprelay-config-test-{}.conf", std::process::id()));
    std::fs::write(&path, RTPENGINE_LIKE).unwrap();
    let got = Config::load(os_argv(&format!("--config-file={} -L 7", path.display())));
    let _ = std::fs::remove_file(&path);
    let LoadOutcome::Run(c) = got.unwrap() else {
        panic!("expected Run")
    };
    assert_eq!(c.config_source, ConfigSource::File(path));
    assert_eq!(c.log_level, 7);
    assert_eq!(c.num_threads, 8);
    assert_eq!((c.port_min, c.port_max), (35000, 45000));
}

#[test]
fn load_fills_in_threads_and_honours_none() {
    let LoadOutcome::Run(c) =
        Config::load(os_argv("--config-file=none -i 192.0.2.1 -n 1")).unwrap()
    else {
        panic!("expected Run")
    };
    assert_eq!(c.config_source, ConfigSource::None);
    assert!(c.num_threads >= 1);
}

#[test]
fn load_fails_on_a_missing_named_file() {
    let e = Config::load(os_argv("--config-file /nonexistent/rtprelay.conf")).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("--config-file: cannot read '/nonexistent/rtprelay.conf'"),
        "{e}"
    );
    // --help needs no file.
    assert!(matches!(
        Config::load(os_argv("--config-file /nonexistent/x --help")).unwrap(),
        LoadOutcome::Exit { .. }
    ));
}

#[test]
fn list_control_sockets_prints_what_the_config_resolves_to() {
    // The file moves NG; the command line adds NG over TCP: both count, as at a real start.
    let file = "[rtprelay]\ninterface = 192.0.2.1\nlisten-ng = 127.0.0.1:23000\n\
                listen-http = [::1]:23001\n";
    let got = Config::from_parts(
        &argv("--list-control-sockets --config-file=moved.conf -N 2224"),
        Some(file),
    );
    assert_eq!(
        got.unwrap(),
        LoadOutcome::Exit {
            message: "udp 127.0.0.1:23000\ntcp 0.0.0.0:2224\ntcp [::]:2224\nhttp [::1]:23001"
                .into()
        }
    );
    // A config the relay would refuse is refused here too, so nothing probes a guess.
    assert!(err("--list-control-sockets -i 192.0.2.1", None).contains("no control listener"));
    // It is a command-line request: in a file it does nothing.
    let c = run(
        "",
        Some("[rtprelay]\ninterface = 192.0.2.1\nlisten-ng = 1\nlist-control-sockets = true\n"),
    );
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
}

#[test]
fn log_format_and_listen_cli() {
    let c = run(
        "--config-file=none -i 192.0.2.1 -n 2223 --log-format=json --listen-cli=[::1]:9900",
        None,
    );
    assert_eq!(c.log_format, crate::config::LogFormat::Json);
    assert_eq!(c.listen_cli, vec![sa("[::1]:9900")]);
    let c = run("--config-file=none -i 192.0.2.1 -n 2223", None);
    assert_eq!(c.log_format, crate::config::LogFormat::Text);
    assert!(c.listen_cli.is_empty(), "the CLI is off unless configured");
    let c = run(
        "",
        Some("[rtprelay]\ninterface=192.0.2.1\nlisten-ng=1\nlog-format=json\nlisten-cli=9900\n"),
    );
    assert_eq!(c.log_format, crate::config::LogFormat::Json);
    assert_eq!(c.listen_cli, vec![sa("127.0.0.1:9900")]);
    let e = err(
        "--config-file=none -i 192.0.2.1 -n 2223 --log-format=xml",
        None,
    );
    assert!(e.contains("--log-format"), "{e}");
}

#[test]
fn redis_is_off_by_default_with_rtpengines_defaults() {
    let c = run("-i 192.0.2.1 -n 1", None);
    assert_eq!(c.redis, RedisConfig::default());
    assert!(c.redis.write_endpoint().is_none());
    assert_eq!(c.redis.expires, Duration::from_secs(86400));
    assert_eq!(c.redis.allowed_errors, None);
    assert_eq!(c.redis.disable_time, Duration::from_secs(10));
    assert_eq!(c.redis.cmd_timeout, None);
    assert_eq!(c.redis.connect_timeout, Duration::from_millis(1000));
}

#[test]
fn redis_options_are_parsed() {
    let c = run(
        "-i 192.0.2.1 -n 1 -r 127.0.0.1:6379/2 --redis-write=s3cr@t@[::1]:6380/0 \
         --redis-expires=600 --redis-allowed-errors=5 --redis-disable-time=3 \
         --redis-cmd-timeout=250 --redis-connect-timeout=500 -k 1",
        None,
    );
    let read = c.redis.read.clone().unwrap();
    assert_eq!(read.addr, "127.0.0.1:6379".parse::<SocketAddr>().unwrap());
    assert_eq!((read.db, read.password), (2, None));
    let write = c.redis.write_endpoint().unwrap();
    assert_eq!(write.addr, "[::1]:6380".parse::<SocketAddr>().unwrap());
    assert_eq!(write.password.as_deref(), Some("s3cr@t"));
    assert!(
        !format!("{write:?}").contains("s3cr"),
        "Debug hides the password"
    );
    assert_eq!(c.redis.expires, Duration::from_secs(600));
    assert_eq!(c.redis.allowed_errors, Some(5));
    assert_eq!(c.redis.disable_time, Duration::from_secs(3));
    assert_eq!(c.redis.cmd_timeout, Some(Duration::from_millis(250)));
    assert_eq!(c.redis.connect_timeout, Duration::from_millis(500));
    assert_eq!(
        c.warnings,
        vec!["option --subscribe-keyspace is not supported yet and is ignored"]
    );
    let c = run("-i 192.0.2.1 -n 1 --redis-allowed-errors=-1", None);
    assert_eq!(c.redis.allowed_errors, None);
}

#[test]
fn node_name_and_followed_nodes() {
    let c = run(
        "-i 192.0.2.1 -n 1 --redis-node=relay-b --redis-follow=relay-a;relay-c",
        None,
    );
    assert_eq!(c.redis.node.as_deref(), Some("relay-b"));
    assert_eq!(c.redis.follow, vec!["relay-a", "relay-c"]);
}

#[test]
fn redis_options_from_the_config_file() {
    let file = "[rtpengine]\ninterface = 192.0.2.1\nlisten-ng = 1\nredis = 10.0.0.1:6379/1\nredis-expires = 60\n";
    let c = run("", Some(file));
    assert_eq!(c.redis.read.unwrap().db, 1);
    assert_eq!(c.redis.expires, Duration::from_secs(60));
}

#[test]
fn bad_redis_values_name_the_option() {
    for (line, message) in [
        (
            "--redis=localhost:6379/0",
            "--redis: invalid value 'localhost:6379/0': expected [PASSWORD@]IP:PORT/DB",
        ),
        (
            "--redis-write=127.0.0.1:6379",
            "--redis-write: invalid value '127.0.0.1:6379': expected [PASSWORD@]IP:PORT/DB",
        ),
        (
            "--redis=127.0.0.1:0/0",
            "--redis: invalid value '127.0.0.1:0/0': expected [PASSWORD@]IP:PORT/DB",
        ),
        (
            "--redis-expires=0",
            "--redis-expires: invalid value '0': expected a number 1-2147483647",
        ),
        (
            "--redis-connect-timeout=x",
            "--redis-connect-timeout: invalid value 'x': expected a number 1-2147483647",
        ),
        (
            "--redis-cmd-timeout=-5",
            "--redis-cmd-timeout: invalid value '-5': expected a number 0-2147483647",
        ),
        (
            "--redis-node=a}b",
            "--redis-node: invalid value 'a}b': expected 1 to 64 letters, digits, '.', '_' or '-'",
        ),
        (
            "--redis-follow=ok;{x",
            "--redis-follow: invalid value '{x': expected 1 to 64 letters, digits, '.', '_' or '-'",
        ),
    ] {
        assert_eq!(err(&format!("-i 192.0.2.1 -n 1 {line}"), None), message);
    }
}

#[test]
fn redis_sentinel_and_cluster_options_are_parsed() {
    let c = run(
        "-i 192.0.2.1 -n 1 -r pw@127.0.0.1:6379/2 \
         --redis-sentinel=127.0.0.1:26379;s3cr@t@[::1]:26380,10.0.0.3:26379 \
         --redis-sentinel-service=mymaster",
        None,
    );
    let addrs: Vec<SocketAddr> = c.redis.sentinels.iter().map(|s| s.addr).collect();
    assert_eq!(
        addrs,
        ["127.0.0.1:26379", "[::1]:26380", "10.0.0.3:26379"].map(sa)
    );
    assert_eq!(c.redis.sentinels[0].password, None);
    assert_eq!(c.redis.sentinels[1].password.as_deref(), Some("s3cr@t"));
    assert!(
        !format!("{:?}", c.redis.sentinels[1]).contains("s3cr"),
        "Debug hides the password"
    );
    assert_eq!(c.redis.sentinel_service.as_deref(), Some("mymaster"));
    assert!(!c.redis.cluster);

    let c = run(
        "-i 192.0.2.1 -n 1 -r 127.0.0.1:7000/0 --redis-cluster",
        None,
    );
    assert!(c.redis.cluster);
    assert!(c.redis.sentinels.is_empty());
    let file = "[rtpengine]\ninterface = 192.0.2.1\nlisten-ng = 1\nredis = 10.0.0.1:6379/0\n\
                redis-sentinel = 10.0.0.5:26379;10.0.0.6:26379\nredis-sentinel-service = calls\n";
    let c = run("", Some(file));
    assert_eq!(c.redis.sentinels.len(), 2);
    assert_eq!(c.redis.sentinel_service.as_deref(), Some("calls"));
    let file = "[rtpengine]\ninterface = 192.0.2.1\nlisten-ng = 1\nredis = 10.0.0.1:7000/0\n\
                redis-cluster = true\n";
    assert!(run("", Some(file)).redis.cluster);
}

#[test]
fn bad_redis_sentinel_and_cluster_combinations_are_refused() {
    for (line, message) in [
        (
            "--redis-sentinel=127.0.0.1:26379",
            "--redis-sentinel: needs --redis-sentinel-service=NAME (the master's name in the \
             Sentinels)",
        ),
        (
            "--redis-sentinel-service=mymaster",
            "--redis-sentinel-service: needs --redis-sentinel=IP:PORT[;IP:PORT...]",
        ),
        (
            "--redis-sentinel=sentinel1:26379 --redis-sentinel-service=m",
            "--redis-sentinel: invalid value 'sentinel1:26379': expected \
             [PASSWORD@]IP:PORT[;[PASSWORD@]IP:PORT...]",
        ),
        (
            "--redis-sentinel=127.0.0.1:0 --redis-sentinel-service=m",
            "--redis-sentinel: invalid value '127.0.0.1:0': expected \
             [PASSWORD@]IP:PORT[;[PASSWORD@]IP:PORT...]",
        ),
        (
            "--redis-sentinel=; --redis-sentinel-service=m",
            "--redis-sentinel: invalid value ';': expected \
             [PASSWORD@]IP:PORT[;[PASSWORD@]IP:PORT...]",
        ),
        (
            "--redis-sentinel=127.0.0.1:26379 --redis-sentinel-service=",
            "--redis-sentinel-service: invalid value '': expected the master's name, as in the \
             Sentinels' configuration",
        ),
        (
            "-r 127.0.0.1:7000/0 --redis-cluster --redis-sentinel=127.0.0.1:26379 \
             --redis-sentinel-service=m",
            "--redis-cluster: cannot be combined with --redis-sentinel (a Redis Cluster fails \
             over by itself)",
        ),
        (
            "-r 127.0.0.1:7000/1 --redis-cluster",
            "--redis: database 1 with --redis-cluster: Redis Cluster has only database 0",
        ),
        (
            "-r 127.0.0.1:7000/0 -w 127.0.0.1:7001/5 --redis-cluster",
            "--redis-write: database 5 with --redis-cluster: Redis Cluster has only database 0",
        ),
    ] {
        assert_eq!(err(&format!("-i 192.0.2.1 -n 1 {line}"), None), message);
    }
}

#[test]
fn dtls_options_follow_rtpengine_and_refuse_rsa() {
    let c = run("--interface 10.0.0.5 -n 2223", None);
    assert_eq!(c.dtls, DtlsConfig::default());
    assert_eq!(c.dtls.mtu, 1200);
    let c = run(
        "--interface 10.0.0.5 -n 2223 --dtls-passive --dtls-mtu 1100 --dtls-signature SHA-1 \
         --dtls-cert-cipher prime256v1 --dtls-ciphers HIGH",
        None,
    );
    assert!(c.dtls.passive);
    assert_eq!(c.dtls.mtu, 1100);
    assert_eq!(c.dtls.signature, crate::dtls::HashFunc::Sha1);
    assert_eq!(c.dtls.ciphers.as_deref(), Some("HIGH"));
    assert!(
        c.warnings.iter().all(|w| !w.contains("dtls")),
        "{:?}",
        c.warnings
    );
    let file =
        "[rtprelay]\ninterface = 10.0.0.5\nlisten-ng = 2223\ndtls-passive = true\ndtls-mtu = 900\n";
    let c = run("", Some(file));
    assert!(c.dtls.passive);
    assert_eq!(c.dtls.mtu, 900);
    for bad in [
        "--dtls-cert-cipher rsa2048",
        "--dtls-cert-cipher RSA",
        "--dtls-mtu 100",
        "--dtls-signature md5",
    ] {
        let e = err(&format!("--interface 10.0.0.5 -n 2223 {bad}"), None);
        assert!(e.contains("dtls"), "{bad}: {e}");
    }
    assert!(err(
        "--interface 10.0.0.5 -n 2223 --dtls-cert-cipher rsa2048",
        None
    )
    .contains("ECDSA"));
}
