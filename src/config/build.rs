//! Turns command-line options and config-file entries into a validated [`Config`].
//!
//! File entries are read first; command-line options then replace them (a repeatable option given
//! on the command line replaces the whole file list, as in rtpengine). The merged settings are
//! applied in file-then-command-line order, then checked together.

use std::path::PathBuf;

use super::cli::{Given, Value};
use super::error::ConfigError;
use super::interface::{self, ParsedInterface};
use super::keyfile::{self, KeyFile};
use super::options::{self, Arg, Opt, OptSpec};
use super::{help, listen, redis, values};
use super::{Config, ConfigSource, FileChoice, LoadOutcome};

/// Most worker threads `--num-threads` accepts.
pub(crate) const MAX_THREADS: usize = 1024;

/// Config file sections tried in order when `--config-section` is not given.
const DEFAULT_SECTIONS: [&str; 2] = ["rtprelay", "rtpengine"];

/// One merged option.
struct Setting {
    spec: &'static OptSpec,
    value: Value,
    /// How errors name it: `--port-min` or `config key 'port-min'`.
    label: String,
    from_file: bool,
}

/// `--help`, `--version` or an rtpengine one-shot action, whichever comes first.
pub(crate) fn exit_request(given: &[Given]) -> Option<LoadOutcome> {
    given.iter().find_map(|g| {
        if g.value == Value::Flag(false) {
            return None;
        }
        let message = match g.spec.id {
            Opt::Help => help::text(),
            Opt::Version => format!("rtprelay {}", env!("CARGO_PKG_VERSION")),
            Opt::ListOptions => options::listing(),
            Opt::ExitAction if g.spec.name == "codecs" => {
                "rtprelay does no transcoding: it has no codecs to list".to_string()
            }
            Opt::ExitAction => format!(
                "rtprelay manages no firewall rules: --{} has nothing to do",
                g.spec.name
            ),
            _ => return None,
        };
        Some(LoadOutcome::Exit { message })
    })
}

fn last_value(given: &[Given], id: Opt) -> Option<String> {
    given
        .iter()
        .rev()
        .find(|g| g.spec.id == id)
        .map(|g| text(&g.value))
}

/// Which config file the command line asks for.
pub(crate) fn file_choice(given: &[Given]) -> FileChoice {
    match last_value(given, Opt::ConfigFile) {
        Some(p) if p == "none" => FileChoice::None,
        Some(p) => FileChoice::Given(PathBuf::from(p)),
        None => FileChoice::Default,
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::One(s) => s.clone(),
        Value::Many(items) => items.join(";"),
        Value::Flag(b) => b.to_string(),
    }
}

fn list(v: &Value) -> Vec<String> {
    match v {
        Value::Many(items) => items.clone(),
        other => vec![text(other)],
    }
}

/// `--no-strict-source` is `--strict-source` switched off: one setting, so the last one wins.
fn normalize(spec: &'static OptSpec, value: Value) -> (&'static OptSpec, Value) {
    match (spec.id, value, options::by_name("strict-source")) {
        (Opt::NoStrictSource, Value::Flag(b), Some(strict)) => (strict, Value::Flag(!b)),
        (_, value, _) => (spec, value),
    }
}

fn upsert(settings: &mut Vec<Setting>, new: Setting) {
    match settings.iter_mut().find(|s| s.spec.name == new.spec.name) {
        Some(s) => *s = new,
        None => settings.push(new),
    }
}

/// Reads the chosen section of the file into settings.
fn file_settings(
    text: &str,
    path: &str,
    section_override: Option<&str>,
    cfg: &mut Config,
) -> Result<Vec<Setting>, ConfigError> {
    let kf = KeyFile::parse(text, path)?;
    let section = match section_override {
        Some(s) => s,
        None => DEFAULT_SECTIONS
            .into_iter()
            .find(|s| kf.group(s).is_some())
            .unwrap_or(DEFAULT_SECTIONS[1]),
    };
    cfg.config_section = Some(section.to_string());
    let Some(entries) = kf.group(section) else {
        cfg.warnings.push(format!(
            "config file {path} has no [{section}] section: only defaults and the command line apply"
        ));
        return Ok(Vec::new());
    };
    let mut settings = Vec::new();
    for e in entries {
        let Some(spec) = options::by_name(&e.key) else {
            cfg.warnings.push(format!(
                "config key '{}' in [{section}] is not an rtpengine option and is ignored",
                e.key
            ));
            continue;
        };
        let label = format!("config key '{}'", e.key);
        if matches!(
            spec.id,
            Opt::Help
                | Opt::Version
                | Opt::ListControlSockets
                | Opt::ListOptions
                | Opt::ConfigFile
                | Opt::ConfigSection
                | Opt::ExitAction
        ) {
            cfg.warnings.push(format!(
                "config key '{}' has no effect in a config file and is ignored",
                e.key
            ));
            continue;
        }
        let value = match spec.arg {
            Arg::Flag => Value::Flag(
                keyfile::parse_bool(&e.raw)
                    .ok_or_else(|| ConfigError::value(&label, &e.raw, "expected true or false"))?,
            ),
            Arg::Value => Value::One(keyfile::unescape(&e.raw)),
            Arg::List => Value::Many(keyfile::split_list(&e.raw)),
        };
        let (spec, value) = normalize(spec, value);
        upsert(
            &mut settings,
            Setting {
                spec,
                value,
                label,
                from_file: true,
            },
        );
    }
    Ok(settings)
}

/// Lays the command line over the file settings.
fn merge_cli(settings: &mut Vec<Setting>, given: Vec<Given>) {
    let mut cli_lists: Vec<&'static str> = Vec::new();
    for g in given {
        let (spec, value) = normalize(g.spec, g.value);
        let label = spec.dashed();
        if spec.arg == Arg::List {
            let item = text(&value);
            if cli_lists.contains(&spec.name) {
                if let Some(Setting {
                    value: Value::Many(items),
                    ..
                }) = settings.iter_mut().find(|s| s.spec.name == spec.name)
                {
                    items.push(item);
                }
                continue;
            }
            cli_lists.push(spec.name);
            upsert(
                settings,
                Setting {
                    spec,
                    value: Value::Many(vec![item]),
                    label,
                    from_file: false,
                },
            );
            continue;
        }
        upsert(
            settings,
            Setting {
                spec,
                value,
                label,
                from_file: false,
            },
        );
    }
}

/// Builds the config from command-line options and the config file text.
pub(crate) fn build(
    given: Vec<Given>,
    source: ConfigSource,
    file_text: Option<&str>,
) -> Result<LoadOutcome, ConfigError> {
    let mut cfg = Config {
        config_source: source.clone(),
        ..Config::default()
    };
    let mut settings = match file_text {
        Some(text) => {
            let path = match &source {
                ConfigSource::File(p) => p.display().to_string(),
                _ => "(built-in default config)".to_string(),
            };
            let section = last_value(&given, Opt::ConfigSection);
            file_settings(text, &path, section.as_deref(), &mut cfg)?
        }
        None => Vec::new(),
    };
    // Asked on the command line only; the listing comes from the whole validated config.
    let list_sockets = given
        .iter()
        .any(|g| g.spec.id == Opt::ListControlSockets && g.value == Value::Flag(true));
    merge_cli(&mut settings, given);

    let mut ports = (i64::from(cfg.port_min), i64::from(cfg.port_max));
    for s in &settings {
        apply(&mut cfg, s, &mut ports)?;
    }
    check(&mut cfg, ports)?;
    if list_sockets {
        let message = listen::listing(&cfg.listen_ng, &cfg.listen_tcp_ng, &cfg.listen_http);
        return Ok(LoadOutcome::Exit { message });
    }
    Ok(LoadOutcome::Run(cfg))
}

fn apply(cfg: &mut Config, s: &Setting, ports: &mut (i64, i64)) -> Result<(), ConfigError> {
    let label = s.label.as_str();
    let raw = text(&s.value);
    let flag = s.value == Value::Flag(true);
    match s.spec.id {
        Opt::Interface => {
            for v in list(&s.value) {
                match interface::parse(&v) {
                    Ok(ParsedInterface::Spec(spec)) => cfg.interface_specs.push(spec),
                    Ok(ParsedInterface::Alias { .. }) => cfg.warnings.push(format!(
                        "{label} '{v}': interface aliases (NAME=OTHER) are not supported yet and \
                         are ignored"
                    )),
                    Err(reason) => return Err(ConfigError::value(label, &v, &reason)),
                }
            }
        }
        Opt::ListenNg | Opt::ListenTcpNg | Opt::ListenHttp => {
            let out = match s.spec.id {
                Opt::ListenNg => &mut cfg.listen_ng,
                Opt::ListenTcpNg => &mut cfg.listen_tcp_ng,
                _ => &mut cfg.listen_http,
            };
            for v in list(&s.value) {
                out.extend(listen::parse(&v).map_err(|r| ConfigError::value(label, &v, &r))?);
            }
        }
        Opt::ListenCli => {
            for v in list(&s.value) {
                cfg.listen_cli
                    .push(listen::parse_cli(&v).map_err(|r| ConfigError::value(label, &v, &r))?);
            }
        }
        Opt::LogFormat => cfg.log_format = values::log_format(label, &raw)?,
        Opt::PortMin => ports.0 = values::int_in(label, &raw, 1, 65535)?,
        Opt::PortMax => ports.1 = values::int_in(label, &raw, 1, 65535)?,
        Opt::Table => {
            cfg.table =
                values::int_in(label, &raw, i64::from(i32::MIN), i64::from(i32::MAX))? as i32
        }
        Opt::NumThreads => {
            cfg.num_threads = values::int_in(label, &raw, 0, MAX_THREADS as i64)? as usize
        }
        Opt::CpuAffinity => cfg.cpus = Some(values::cpu_list(label, &raw)?),
        Opt::Dataplane => cfg.dataplane = values::dataplane(label, &raw)?,
        Opt::Timeout => {
            cfg.timeout = values::secs_or_default(label, &raw, Config::default().timeout)?
        }
        Opt::SilentTimeout => {
            cfg.silent_timeout =
                values::secs_or_default(label, &raw, Config::default().silent_timeout)?
        }
        Opt::OfferTimeout => {
            cfg.offer_timeout =
                values::secs_or_default(label, &raw, Config::default().offer_timeout)?
        }
        Opt::FinalTimeout => cfg.final_timeout = values::secs_optional(label, &raw)?,
        Opt::DeleteDelay => cfg.delete_delay = values::secs_non_negative(label, &raw)?,
        Opt::LogLevel => cfg.log_level = values::int_in(label, &raw, 0, 7)? as u8,
        Opt::LogStderr => cfg.log_stderr = flag,
        Opt::Foreground => cfg.foreground = flag,
        Opt::StrictSource => cfg.strict_source_default = flag,
        Opt::NoFallback => cfg.no_fallback = flag,
        Opt::XdpNoOffload => cfg.xdp_no_offload = flag,
        Opt::ConnectLatched => cfg.connect_latched = values::yes_no(label, &raw)?,
        Opt::UringFixedFiles => cfg.uring_fixed_files = values::yes_no(label, &raw)?,
        Opt::DtlsPassive => cfg.dtls.passive = flag,
        Opt::DtlsMtu => {
            cfg.dtls.mtu = values::int_in(
                label,
                &raw,
                crate::dtls::context::MIN_MTU as i64,
                i64::from(u16::MAX),
            )? as usize
        }
        Opt::DtlsCertCipher => cfg.dtls.cert_cipher = values::dtls_cert_cipher(label, &raw)?,
        Opt::DtlsSignature => cfg.dtls.signature = values::dtls_signature(label, &raw)?,
        Opt::DtlsCiphers => cfg.dtls.ciphers = non_empty(&raw).map(str::to_owned),
        Opt::DrainGrace => cfg.drain_grace = values::secs_non_negative(label, &raw)?,
        Opt::Pidfile => cfg.pidfile = non_empty(&raw).map(PathBuf::from),
        Opt::EndpointLearning => cfg.endpoint_learning = values::endpoint_learning(label, &raw)?,
        Opt::MaxSessions => {
            // rtpengine treats anything below -1 as unlimited too.
            cfg.max_sessions =
                values::int(label, &raw, "expected a number (-1 = unlimited)")?.max(-1)
        }
        Opt::HttpAllowHost => {
            for v in list(&s.value) {
                for name in v.split([';', ',']).map(str::trim).filter(|n| !n.is_empty()) {
                    if !name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
                    {
                        return Err(ConfigError::value(label, name, "expected a host name"));
                    }
                    cfg.http_allow_hosts.push(name.to_ascii_lowercase());
                }
            }
        }
        Opt::MediaTargetDeny | Opt::MediaTargetAllow => {
            let out = if s.spec.id == Opt::MediaTargetDeny {
                &mut cfg.media_target_deny
            } else {
                &mut cfg.media_target_allow
            };
            for v in list(&s.value) {
                for item in v.split([';', ',']).map(str::trim).filter(|i| !i.is_empty()) {
                    let net = crate::guard::parse_network(item)
                        .map_err(|r| ConfigError::value(label, item, &r))?;
                    out.push(net);
                }
            }
        }
        Opt::RecordingDir => cfg.recording_dir = non_empty(&raw).map(PathBuf::from),
        Opt::RecordingMethod => cfg.recording_method = non_empty(&raw).map(String::from),
        Opt::RecordingFormat => cfg.recording_format = non_empty(&raw).map(String::from),
        Opt::Redis => cfg.redis.read = Some(redis::RedisEndpoint::parse(label, &raw)?),
        Opt::RedisWrite => cfg.redis.write = Some(redis::RedisEndpoint::parse(label, &raw)?),
        Opt::RedisExpires => cfg.redis.expires = redis::expires(label, &raw)?,
        Opt::RedisAllowedErrors => cfg.redis.allowed_errors = redis::allowed_errors(label, &raw)?,
        Opt::RedisDisableTime => cfg.redis.disable_time = redis::disable_time(label, &raw)?,
        Opt::RedisCmdTimeout => cfg.redis.cmd_timeout = redis::cmd_timeout(label, &raw)?,
        Opt::RedisNode => {
            cfg.redis.node = non_empty(&raw)
                .map(|n| redis::node_name(label, n))
                .transpose()?
        }
        Opt::RedisFollow => {
            cfg.redis.follow = list(&s.value)
                .iter()
                .flat_map(|n| n.split([';', ',']))
                .filter(|n| !n.trim().is_empty())
                .map(|n| redis::node_name(label, n.trim()))
                .collect::<Result<_, _>>()?
        }
        Opt::RedisConnectTimeout => {
            cfg.redis.connect_timeout = redis::connect_timeout(label, &raw)?
        }
        Opt::RedisSentinel => cfg.redis.sentinels = redis::sentinels(label, &raw)?,
        Opt::RedisSentinelService => {
            cfg.redis.sentinel_service = redis::sentinel_service(label, &raw)?
        }
        Opt::RedisCluster => cfg.redis.cluster = flag,
        Opt::Unsupported => {
            if s.value != Value::Flag(false) {
                cfg.warnings.push(if s.from_file {
                    format!(
                        "config key '{}' is not supported yet and is ignored",
                        s.spec.name
                    )
                } else {
                    format!(
                        "option {} is not supported yet and is ignored",
                        s.spec.dashed()
                    )
                });
            }
        }
        Opt::Help
        | Opt::Version
        | Opt::ListControlSockets
        | Opt::ListOptions
        | Opt::ConfigFile
        | Opt::ConfigSection
        | Opt::ExitAction
        | Opt::NoStrictSource => {}
    }
    Ok(())
}

fn non_empty(s: &str) -> Option<&str> {
    let s = s.trim();
    (!s.is_empty()).then_some(s)
}

/// Checks that need several options at once.
fn check(cfg: &mut Config, (min, max): (i64, i64)) -> Result<(), ConfigError> {
    if min > max {
        return Err(ConfigError::invalid(
            "--port-min",
            format!("{min} is above --port-max {max}"),
        ));
    }
    let first_even = min + min % 2;
    if first_even + 1 > max {
        return Err(ConfigError::invalid(
            "--port-max",
            format!(
                "the port range {min}-{max} holds no RTP/RTCP pair (an even port and the one \
                 after it)"
            ),
        ));
    }
    cfg.port_min =
        u16::try_from(min).map_err(|_| ConfigError::invalid("--port-min", "out of range"))?;
    cfg.port_max =
        u16::try_from(max).map_err(|_| ConfigError::invalid("--port-max", "out of range"))?;

    cfg.interfaces = cfg
        .interface_specs
        .iter()
        .filter_map(|s| s.literal())
        .collect();
    if cfg.interface_specs.is_empty() {
        return Err(ConfigError::invalid(
            "--interface",
            "no media interface configured: give -i ADDRESS (or interface = ... in the config file)",
        ));
    }
    cfg.redis.check()?;
    if cfg.listen_ng.is_empty() && cfg.listen_tcp_ng.is_empty() && cfg.listen_http.is_empty() {
        return Err(ConfigError::invalid(
            "--listen-ng",
            "no control listener configured: give -n [IP:]PORT, --listen-tcp-ng or --listen-http",
        ));
    }
    Ok(())
}
