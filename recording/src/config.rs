//! Command line and config file, with rtpengine-recording's option names. The config file is an ini-style
//! keyfile; its `[rtprelay-recording]` section (or `[rtpengine-recording]`, or `--config-section`) holds
//! the same long option names. The command line wins over the file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use clap::{ArgAction, Parser};
use thiserror::Error;

use crate::limits::Limits;
use crate::pattern::{Pattern, PatternError, DEFAULT_PATTERN};
use crate::process::{MixMethod, OutputConfig};
use crate::timeline::{DEFAULT_MAX_SAMPLES, RATE};
use crate::wav::max_frames;

/// Configuration errors: the daemon prints them and exits non-zero.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// config file unreadable
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// syntax error in the config file
    #[error("config file {path} line {line}: {msg}")]
    Syntax {
        path: PathBuf,
        line: usize,
        msg: String,
    },
    /// a value that is not allowed
    #[error("{option}: {msg}")]
    Value { option: &'static str, msg: String },
    /// the output pattern is invalid
    #[error(transparent)]
    Pattern(#[from] PatternError),
}

/// The command line.
#[derive(Debug, Clone, Default, Parser)]
#[command(
    name = "rtprelay-recording",
    version,
    about = "Turns rtprelay's recording spool into WAV files",
    disable_version_flag = true
)]
pub struct Cli {
    /// Print the version and exit.
    #[arg(short = 'v', long, action = ArgAction::Version)]
    version: Option<bool>,
    /// Ini-style config file ("none" to load none).
    #[arg(long, value_name = "FILE")]
    pub config_file: Option<PathBuf>,
    /// Section of the config file to use (default rtprelay-recording, then rtpengine-recording).
    #[arg(long, value_name = "STRING")]
    pub config_section: Option<String>,
    /// The relay's --recording-dir [default: /var/spool/rtpengine].
    #[arg(long, value_name = "PATH")]
    pub spool_dir: Option<PathBuf>,
    /// Where audio files go [default: /var/lib/rtpengine-recording].
    #[arg(long, value_name = "PATH")]
    pub output_dir: Option<PathBuf>,
    /// Audio file format; only wav is supported.
    #[arg(long, value_name = "wav")]
    pub output_format: Option<String>,
    /// File name pattern: `%c` call-id, `%r` random tag, `%t` stream type, `%l` label, `%Y%m%d%H%M%S`, `%u`, `%<n>`, `%{key}`.
    #[arg(
        long,
        value_name = "STRING",
        help = "File name pattern: %c call-id, %r random tag, %t stream type, %l label, %Y%m%d%H%M%S, %u, %<n>, %{key}"
    )]
    pub output_pattern: Option<String>,
    /// Write the mixed file (default: both mixed and single when neither is given).
    #[arg(long)]
    pub output_mixed: bool,
    /// Write one file per stream.
    #[arg(long)]
    pub output_single: bool,
    /// direct (mono sum) or channels (one channel per stream).
    #[arg(long, value_name = "direct|channels")]
    pub mix_method: Option<String>,
    /// Worker threads [default: number of CPUs].
    #[arg(long, value_name = "INT")]
    pub num_threads: Option<usize>,
    /// Stay in the foreground (the daemon never forks; use systemd or a container to background it).
    #[arg(short = 'f', long)]
    pub foreground: bool,
    /// Log level as syslog numbers: 3 error, 4 warning, 6 info (default), 7 debug.
    #[arg(short = 'L', long, value_name = "INT")]
    pub log_level: Option<u8>,
    /// Process what is pending in the spool, then exit (for batch runs and benchmarks).
    #[arg(long)]
    pub oneshot: bool,
    /// Longest call in seconds [default: 14400]: audio beyond it is cut and the call's spool files are
    /// quarantined. Bounds the memory and disk one call can take.
    #[arg(long, value_name = "SECONDS")]
    pub max_call_length: Option<u64>,
}

/// The resolved configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub spool_dir: PathBuf,
    pub output: OutputConfig,
    pub num_threads: usize,
    pub foreground: bool,
    pub log_level: u8,
    pub oneshot: bool,
    /// Config file keys this daemon does not use (logged at startup).
    pub ignored_keys: Vec<String>,
}

const KNOWN_KEYS: &[&str] = &[
    "spool-dir",
    "output-dir",
    "output-format",
    "output-pattern",
    "output-mixed",
    "output-single",
    "mix-method",
    "num-threads",
    "foreground",
    "log-level",
    "max-call-length",
];

impl Config {
    /// Parses the process arguments and the config file.
    pub fn from_args() -> Result<Self, ConfigError> {
        Self::resolve(Cli::parse())
    }

    /// Merges the command line with the config file it names and checks the values.
    pub fn resolve(cli: Cli) -> Result<Self, ConfigError> {
        let file = match &cli.config_file {
            Some(p) if p.as_os_str() != "none" => {
                let text = std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                    path: p.clone(),
                    source,
                })?;
                parse_keyfile(p, &text, cli.config_section.as_deref())?
            }
            _ => HashMap::new(),
        };
        let get = |k: &str| file.get(k).map(String::as_str);
        let flag = |cli_set: bool, k: &'static str| -> Result<bool, ConfigError> {
            if cli_set {
                return Ok(true);
            }
            match get(k) {
                None => Ok(false),
                Some(v) => parse_bool(v).ok_or(ConfigError::Value {
                    option: k,
                    msg: format!("{v:?} is not true or false"),
                }),
            }
        };
        let spool_dir = cli
            .spool_dir
            .clone()
            .or_else(|| get("spool-dir").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("/var/spool/rtpengine"));
        let output_dir = cli
            .output_dir
            .clone()
            .or_else(|| get("output-dir").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("/var/lib/rtpengine-recording"));
        if same_dir(&spool_dir, &output_dir) {
            return Err(ConfigError::Value {
                option: "output-dir",
                msg: "must not be the spool directory".into(),
            });
        }
        let format = cli
            .output_format
            .clone()
            .or_else(|| get("output-format").map(str::to_owned))
            .unwrap_or_else(|| "wav".into());
        if !format.eq_ignore_ascii_case("wav") {
            return Err(ConfigError::Value {
                option: "output-format",
                msg: format!("{format:?} is not supported; this recorder writes wav only"),
            });
        }
        let pattern = cli
            .output_pattern
            .clone()
            .or_else(|| get("output-pattern").map(str::to_owned))
            .unwrap_or_else(|| DEFAULT_PATTERN.into());
        let pattern = Pattern::parse(&pattern)?;
        let mix = cli
            .mix_method
            .clone()
            .or_else(|| get("mix-method").map(str::to_owned))
            .unwrap_or_else(|| "direct".into());
        let mix_method = match mix.to_ascii_lowercase().as_str() {
            "direct" => MixMethod::Direct,
            "channels" => MixMethod::Channels,
            _ => {
                return Err(ConfigError::Value {
                    option: "mix-method",
                    msg: format!("{mix:?} is not direct or channels"),
                })
            }
        };
        let mut mixed = flag(cli.output_mixed, "output-mixed")?;
        let mut single = flag(cli.output_single, "output-single")?;
        if !mixed && !single {
            mixed = true;
            single = true;
        }
        let num_threads = match cli.num_threads {
            Some(n) => n,
            None => match get("num-threads") {
                Some(v) => v.trim().parse().map_err(|_| ConfigError::Value {
                    option: "num-threads",
                    msg: format!("{v:?} is not a number"),
                })?,
                None => std::thread::available_parallelism().map_or(1, |n| n.get()),
            },
        }
        .clamp(1, 256);
        let log_level = match cli.log_level {
            Some(l) => l,
            None => match get("log-level") {
                Some(v) => v.trim().parse().map_err(|_| ConfigError::Value {
                    option: "log-level",
                    msg: format!("{v:?} is not a number"),
                })?,
                None => 6,
            },
        };
        let max_secs = (max_frames(1) / RATE as usize) as u64;
        let max_call_length = match cli.max_call_length {
            Some(n) => n,
            None => match get("max-call-length") {
                Some(v) => v.trim().parse().map_err(|_| ConfigError::Value {
                    option: "max-call-length",
                    msg: format!("{v:?} is not a number of seconds"),
                })?,
                None => (DEFAULT_MAX_SAMPLES / RATE as usize) as u64,
            },
        };
        if max_call_length == 0 || max_call_length > max_secs {
            return Err(ConfigError::Value {
                option: "max-call-length",
                msg: format!("must be 1 to {max_secs} seconds (what one WAV file can hold)"),
            });
        }
        let foreground = flag(cli.foreground, "foreground")?;
        let mut ignored_keys: Vec<String> = file
            .keys()
            .filter(|k| !KNOWN_KEYS.contains(&k.as_str()))
            .cloned()
            .collect();
        ignored_keys.sort();
        Ok(Config {
            spool_dir,
            output: OutputConfig {
                output_dir,
                pattern,
                mixed,
                single,
                mix_method,
                limits: Limits::for_call_length(max_call_length as usize * RATE as usize),
            },
            num_threads,
            foreground,
            log_level,
            oneshot: cli.oneshot,
            ignored_keys,
        })
    }
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" | "on" => Some(true),
        "false" | "no" | "0" | "off" => Some(false),
        _ => None,
    }
}

/// Reads the keys of one section: `section` if given, else `[rtprelay-recording]`, else
/// `[rtpengine-recording]`.
pub fn parse_keyfile(
    path: &Path,
    text: &str,
    section: Option<&str>,
) -> Result<HashMap<String, String>, ConfigError> {
    let mut sections: HashMap<String, HashMap<String, String>> = HashMap::new();
    let mut current: Option<String> = None;
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        let syntax = |msg: &str| ConfigError::Syntax {
            path: path.to_owned(),
            line: n + 1,
            msg: msg.into(),
        };
        if let Some(rest) = line.strip_prefix('[') {
            let name = rest
                .strip_suffix(']')
                .ok_or_else(|| syntax("unclosed [section]"))?;
            current = Some(name.trim().to_owned());
            sections.entry(name.trim().to_owned()).or_default();
            continue;
        }
        let (k, v) = line
            .split_once('=')
            .ok_or_else(|| syntax("expected key = value"))?;
        let Some(sec) = &current else {
            return Err(syntax("key outside of a [section]"));
        };
        sections
            .entry(sec.clone())
            .or_default()
            .insert(k.trim().to_owned(), v.trim().to_owned());
    }
    let pick = match section {
        Some(s) => sections.remove(s),
        None => sections
            .remove("rtprelay-recording")
            .or_else(|| sections.remove("rtpengine-recording")),
    };
    Ok(pick.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli(args: &[&str]) -> Cli {
        let mut v = vec!["rtprelay-recording"];
        v.extend_from_slice(args);
        Cli::try_parse_from(v).unwrap()
    }

    #[test]
    fn defaults() {
        let c = Config::resolve(cli(&[])).unwrap();
        assert_eq!(c.spool_dir, PathBuf::from("/var/spool/rtpengine"));
        assert!(c.output.mixed && c.output.single);
        assert_eq!(c.output.mix_method, MixMethod::Direct);
        assert_eq!(c.log_level, 6);
        assert_eq!(c.output.limits, Limits::default());
        assert_eq!(c.output.limits.max_seconds(), 4 * 3600);
    }

    #[test]
    fn max_call_length() {
        let c = Config::resolve(cli(&["--max-call-length=60"])).unwrap();
        assert_eq!(c.output.limits.max_samples, 60 * 8000);
        assert_eq!(c.output.limits.max_total_samples, 2 * 60 * 8000);
        assert!(Config::resolve(cli(&["--max-call-length=0"])).is_err());
        assert!(Config::resolve(cli(&["--max-call-length=300000"])).is_err());
    }

    #[test]
    fn command_line() {
        let c = Config::resolve(cli(&[
            "--spool-dir=/s",
            "--output-dir=/o",
            "--output-mixed",
            "--mix-method=channels",
            "--num-threads=3",
            "--output-pattern=%Y/%c-%t",
            "-f",
        ]))
        .unwrap();
        assert!(c.output.mixed && !c.output.single);
        assert_eq!(c.output.mix_method, MixMethod::Channels);
        assert_eq!(c.num_threads, 3);
        assert!(c.foreground);
    }

    #[test]
    fn clear_errors() {
        let e = Config::resolve(cli(&["--output-format=mp3"])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "output-format: \"mp3\" is not supported; this recorder writes wav only"
        );
        assert!(Config::resolve(cli(&["--mix-method=stereo"])).is_err());
        assert!(Config::resolve(cli(&["--output-pattern=%r"])).is_err());
        assert!(Config::resolve(cli(&["--spool-dir=/x", "--output-dir=/x"])).is_err());
    }

    #[test]
    fn config_file_and_override() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.conf");
        std::fs::write(
            &p,
            "# comment\n[rtpengine]\ninterface = 1.2.3.4\n[rtpengine-recording]\nspool-dir = /f/spool\n\
             output-dir=/f/out\noutput-single = true\nmix-method = channels\ntable = 0\n",
        )
        .unwrap();
        let arg = format!("--config-file={}", p.display());
        let c = Config::resolve(cli(&[&arg, "--output-dir=/cli/out"])).unwrap();
        assert_eq!(c.spool_dir, PathBuf::from("/f/spool"));
        assert_eq!(c.output.output_dir, PathBuf::from("/cli/out"));
        assert!(c.output.single && !c.output.mixed);
        assert_eq!(c.output.mix_method, MixMethod::Channels);
        assert_eq!(c.ignored_keys, vec!["table".to_string()]);
        std::fs::write(&p, "[rtprelay-recording]\noutput-mixed = maybe\n").unwrap();
        assert!(Config::resolve(cli(&[&arg])).is_err());
        std::fs::write(&p, "[x]\nno equals sign\n").unwrap();
        assert!(matches!(
            Config::resolve(cli(&[&arg])),
            Err(ConfigError::Syntax { line: 2, .. })
        ));
    }
}
