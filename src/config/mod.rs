//! Configuration: rtpengine-compatible command line and key-file config, validated into one
//! [`Config`].
//!
//! Precedence follows rtpengine: built-in defaults < config file < command line. A repeatable
//! option given on the command line replaces the file's list for that option (rtpengine does the
//! same). Every rtpengine option is accepted; those rtprelay does not implement become lines in
//! [`Config::warnings`]. Parsing is pure ([`Config::from_parts`]); only [`Config::load`] reads a
//! file.

mod build;
mod cli;
pub mod error;
mod help;
pub mod interface;
mod keyfile;
pub mod listen;
pub mod logging;
mod options;
pub mod redis;
#[cfg(test)]
mod tests;
mod values;

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use error::ConfigError;
pub use interface::{Interface, InterfaceAddress, InterfaceSpec};
pub use logging::LogFormat;
pub use redis::{RedisConfig, RedisEndpoint, SentinelAddr};

use crate::dataplane::DataplaneRequest;
use crate::flow::latch::EndpointLearning;
use crate::sys::ifaddrs::HostAddress;

/// The config file read when `--config-file` is not given, if it exists.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/rtprelay/rtprelay.conf";

/// The config used when `--config-file` is not given and [`DEFAULT_CONFIG_PATH`] does not exist:
/// enough for `rtprelay` with no arguments to start on a fresh host.
pub const EMBEDDED_DEFAULT: &str = include_str!("default.conf");

/// Where the file-level settings came from, for the startup log.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ConfigSource {
    /// `--config-file=none`, or no file given to [`Config::from_parts`].
    #[default]
    None,
    /// [`EMBEDDED_DEFAULT`].
    Embedded,
    /// A file on disk.
    File(PathBuf),
}

/// The validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Media interfaces, in command-line order. Entries that depend on the host (`any`, `auto`,
    /// device names) are missing until [`Config::resolve_interfaces`] has run; see
    /// [`Config::needs_host_addresses`].
    pub interfaces: Vec<Interface>,
    /// Every `--interface` as given, including host-dependent ones.
    pub interface_specs: Vec<InterfaceSpec>,
    /// NG over UDP. A bare port gives two entries: `0.0.0.0:PORT` and `[::]:PORT` (bind the IPv6
    /// one with `IPV6_V6ONLY`, and tolerate its failure on hosts without IPv6).
    pub listen_ng: Vec<SocketAddr>,
    /// NG over TCP.
    pub listen_tcp_ng: Vec<SocketAddr>,
    /// NG over HTTP (and metrics).
    pub listen_http: Vec<SocketAddr>,
    /// rtpengine's CLI over TCP (`--listen-cli`); off unless given. A bare port is 127.0.0.1's:
    /// the CLI has no authentication and ends calls.
    pub listen_cli: Vec<SocketAddr>,
    /// Media port range, inclusive; holds at least one even/odd pair.
    pub port_min: u16,
    pub port_max: u16,
    /// `--table`: -1 is userspace forwarding; N >= 0 asks for the kernel (XDP) plane, as it asks
    /// rtpengine for its kernel module.
    pub table: i32,
    /// Worker threads; 0 means one per CPU (`load` fills in the CPU count).
    pub num_threads: usize,
    /// `--cpu-affinity`: CPUs to pin workers to, in order.
    pub cpus: Option<Vec<usize>>,
    pub dataplane: DataplaneRequest,
    /// `-F`: without the kernel plane, exit rather than fall back to userspace.
    pub no_fallback: bool,
    /// `--xdp-no-offload`: attach the program but forward nothing in the kernel (with afxdp, every
    /// packet takes the AF_XDP path): for measuring and debugging.
    pub xdp_no_offload: bool,
    /// `--connect-latched`: on the socket planes, `connect()` a flow's socket to its peer once
    /// the peer is fixed for good (strict, symmetric), so the kernel caches its route and drops
    /// other sources itself.
    pub connect_latched: bool,
    /// `--uring-fixed-files`: the uring plane registers its sockets in a fixed-file table.
    pub uring_fixed_files: bool,
    /// `--dtls-passive`, `--dtls-mtu`, `--dtls-cert-cipher`, `--dtls-signature`,
    /// `--dtls-ciphers`: the relay's DTLS-SRTP side.
    pub dtls: DtlsConfig,
    /// No media for this long ends a call.
    pub timeout: Duration,
    /// No media for this long on a call on hold ends it.
    pub silent_timeout: Duration,
    /// A call ends this long after it started, whatever happens.
    pub final_timeout: Option<Duration>,
    /// A call that got an offer but no answer ends after this long.
    pub offer_timeout: Duration,
    /// How long a deleted call lingers (for late duplicate deletes and stats).
    pub delete_delay: Duration,
    /// Syslog level 0-7 (`-L`); 6 (info) by default as in rtpengine.
    pub log_level: u8,
    pub log_stderr: bool,
    /// `--log-format`: text lines or JSON objects.
    pub log_format: LogFormat,
    pub foreground: bool,
    pub pidfile: Option<PathBuf>,
    /// `--drain-grace`: on SIGTERM, refuse new calls and wait this long at most for the others
    /// to end (zero: exit at once).
    pub drain_grace: Duration,
    pub endpoint_learning: EndpointLearning,
    /// Drop media from other sources once a stream has locked on its peer (rtprelay default: on).
    pub strict_source_default: bool,
    /// -1 = unlimited.
    pub max_sessions: i64,
    /// `--http-allow-host`: names HTTP requests may carry in `Host` (a scraper using a DNS name).
    pub http_allow_hosts: Vec<String>,
    /// `--media-target-deny`: networks media is never sent to.
    pub media_target_deny: Vec<ipnet::IpNet>,
    /// `--media-target-allow`: networks media may be sent to despite the built-in refusals.
    pub media_target_allow: Vec<ipnet::IpNet>,
    pub recording_dir: Option<PathBuf>,
    pub recording_method: Option<String>,
    pub recording_format: Option<String>,
    /// `--redis` and its companions: the call store.
    pub redis: RedisConfig,
    /// One line per option that was accepted but does nothing; main logs them at startup.
    pub warnings: Vec<String>,
    /// Which file the settings came from.
    pub config_source: ConfigSource,
    /// The config file section that was used, if a file was read.
    pub config_section: Option<String>,
}

impl Default for Config {
    /// rtpengine's defaults, with rtprelay's choices where the brief differs (strict source).
    fn default() -> Config {
        Config {
            interfaces: Vec::new(),
            interface_specs: Vec::new(),
            listen_ng: Vec::new(),
            listen_tcp_ng: Vec::new(),
            listen_http: Vec::new(),
            listen_cli: Vec::new(),
            port_min: 30000,
            port_max: 40000,
            table: -1,
            num_threads: 0,
            cpus: None,
            dataplane: DataplaneRequest::Auto,
            no_fallback: false,
            xdp_no_offload: false,
            connect_latched: false,
            uring_fixed_files: false,
            dtls: DtlsConfig::default(),
            timeout: Duration::from_secs(60),
            silent_timeout: Duration::from_secs(3600),
            final_timeout: None,
            offer_timeout: Duration::from_secs(3600),
            delete_delay: Duration::from_secs(30),
            log_level: 6,
            log_stderr: false,
            log_format: LogFormat::Text,
            foreground: false,
            pidfile: None,
            drain_grace: Duration::ZERO,
            endpoint_learning: EndpointLearning::Heuristic,
            strict_source_default: true,
            max_sessions: -1,
            http_allow_hosts: Vec::new(),
            media_target_deny: Vec::new(),
            media_target_allow: Vec::new(),
            recording_dir: None,
            recording_method: None,
            recording_format: None,
            redis: RedisConfig::default(),
            warnings: Vec::new(),
            config_source: ConfigSource::None,
            config_section: None,
        }
    }
}

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)] // built once at startup
pub enum LoadOutcome {
    /// Start the relay.
    Run(Config),
    /// Print `message` to stdout and exit 0 (`--help`, `--version`, and rtpengine's one-shot
    /// actions such as `--codecs`).
    Exit { message: String },
}

/// The config file to read, as decided from the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FileChoice {
    /// `--config-file=none`.
    None,
    /// `--config-file=PATH`: must be readable.
    Given(PathBuf),
    /// No `--config-file`: the default path if it exists, else the embedded default.
    Default,
}

impl Config {
    /// Parses argv (including `argv[0]`), reads the config file named by `--config-file` (or
    /// [`DEFAULT_CONFIG_PATH`], or the embedded default), and applies rtpengine's precedence:
    /// defaults < file < command line. Fills in `num_threads` = CPU count when it is 0.
    pub fn load(args: impl IntoIterator<Item = OsString>) -> Result<LoadOutcome, ConfigError> {
        let args: Vec<String> = args
            .into_iter()
            .skip(1)
            .map(|a| {
                a.into_string()
                    .map_err(|a| ConfigError::UnexpectedArgument(a.to_string_lossy().into_owned()))
            })
            .collect::<Result<_, _>>()?;
        let given = cli::tokenize(&args)?;
        if let Some(exit) = build::exit_request(&given) {
            return Ok(exit);
        }
        let (source, text) = match build::file_choice(&given) {
            FileChoice::None => (ConfigSource::None, None),
            FileChoice::Given(path) => {
                let text = read(&path)?;
                (ConfigSource::File(path), Some(text))
            }
            FileChoice::Default => match std::fs::read_to_string(DEFAULT_CONFIG_PATH) {
                Ok(text) => (ConfigSource::File(DEFAULT_CONFIG_PATH.into()), Some(text)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    (ConfigSource::Embedded, Some(EMBEDDED_DEFAULT.to_string()))
                }
                Err(e) => return Err(read_error(Path::new(DEFAULT_CONFIG_PATH), &e)),
            },
        };
        let mut outcome = build::build(given, source, text.as_deref())?;
        if let LoadOutcome::Run(cfg) = &mut outcome {
            if cfg.num_threads == 0 {
                cfg.num_threads = std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(1)
                    .min(build::MAX_THREADS);
            }
        }
        Ok(outcome)
    }

    /// The pure variant: `args` includes `argv[0]`; `file_text` is the config file's content
    /// (`None`: no file at all, as with `--config-file=none`). `--config-file` only names the file.
    pub fn from_parts(
        args: &[String],
        file_text: Option<&str>,
    ) -> Result<LoadOutcome, ConfigError> {
        let given = cli::tokenize(args.get(1..).unwrap_or_default())?;
        if let Some(exit) = build::exit_request(&given) {
            return Ok(exit);
        }
        let source = match (file_text, build::file_choice(&given)) {
            (None, _) => ConfigSource::None,
            (Some(_), FileChoice::Given(path)) => ConfigSource::File(path),
            (Some(_), _) => ConfigSource::Embedded,
        };
        build::build(given, source, file_text)
    }

    /// The plane asked for: `--dataplane` when set to a plane, else `--table N` (N >= 0) asks
    /// for the kernel plane, as it asks rtpengine for its kernel module.
    pub fn plane_request(&self) -> DataplaneRequest {
        match self.dataplane {
            DataplaneRequest::Auto if self.table >= 0 => DataplaneRequest::Xdp,
            other => other,
        }
    }

    /// True when some `--interface` (`any`, `auto`, a device name) needs the host's addresses.
    pub fn needs_host_addresses(&self) -> bool {
        self.interface_specs.iter().any(|s| s.literal().is_none())
    }

    /// Rebuilds [`Config::interfaces`] from [`Config::interface_specs`] and the host's addresses
    /// (from `getifaddrs`), keeping command-line order.
    pub fn resolve_interfaces(&mut self, host: &[HostAddress]) -> Result<(), ConfigError> {
        self.interfaces = interface::resolve(&self.interface_specs, host)
            .map_err(|reason| ConfigError::invalid("--interface", reason))?;
        Ok(())
    }
}

fn read_error(path: &Path, e: &std::io::Error) -> ConfigError {
    ConfigError::ConfigFileRead {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

/// The one place configuration touches the file system.
fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|e| read_error(path, &e))
}

/// The DTLS options as configured (rtpengine's `--dtls-*` names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DtlsConfig {
    /// `--dtls-passive`: offer and answer `a=setup:passive` unless a call asks otherwise.
    pub passive: bool,
    /// `--dtls-mtu`: the largest handshake datagram (default 1200).
    pub mtu: usize,
    /// `--dtls-cert-cipher`: only `prime256v1` (ECDSA P-256): the DTLS stack signs with ECDSA
    /// only, so RSA is refused at start.
    pub cert_cipher: crate::dtls::CertCipher,
    /// `--dtls-signature`: the hash of the fingerprint the relay announces (default sha-256).
    pub signature: crate::dtls::HashFunc,
    /// `--dtls-ciphers`: an OpenSSL cipher string; the stack's suites are fixed (ECDHE-ECDSA
    /// with AES-GCM or ChaCha20-Poly1305), so a value is only logged as not applicable.
    pub ciphers: Option<String>,
}

impl Default for DtlsConfig {
    fn default() -> Self {
        DtlsConfig {
            passive: false,
            mtu: crate::dtls::context::DEFAULT_MTU,
            cert_cipher: crate::dtls::CertCipher::EcdsaP256,
            signature: crate::dtls::HashFunc::Sha256,
            ciphers: None,
        }
    }
}
