//! Configuration errors. Every message names the option (or config key) it is about, so an operator
//! can fix the command line or file without reading the source.

use thiserror::Error;

/// Why a configuration could not be turned into a [`super::Config`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConfigError {
    /// An option was given a value it cannot use.
    #[error("{option}: invalid value '{value}': {expected}")]
    InvalidValue {
        option: String,
        value: String,
        expected: String,
    },
    /// An option that is neither rtpengine's nor rtprelay's.
    #[error("unknown option '{0}' (see --help)")]
    UnknownOption(String),
    /// An option that needs a value came last on the command line.
    #[error("{0}: missing value")]
    MissingValue(String),
    /// A flag was given a value that is not a boolean.
    #[error("{option}: takes no value, got '{value}'")]
    UnexpectedValue { option: String, value: String },
    /// A word on the command line that is not an option.
    #[error("unexpected argument '{0}': rtprelay takes only options")]
    UnexpectedArgument(String),
    /// The file named by `--config-file` could not be read.
    #[error("--config-file: cannot read '{path}': {reason}")]
    ConfigFileRead { path: String, reason: String },
    /// The config file is not a valid key file.
    #[error("--config-file: {path}, line {line}: {reason}")]
    ConfigFileSyntax {
        path: String,
        line: usize,
        reason: String,
    },
    /// Values that are fine one by one but not together (e.g. port-min above port-max).
    #[error("{option}: {reason}")]
    Invalid { option: String, reason: String },
}

impl ConfigError {
    /// The process exit code for this error: 2, like a command-line usage error.
    pub fn exit_code(&self) -> i32 {
        2
    }

    pub(crate) fn value(option: &str, value: &str, expected: &str) -> ConfigError {
        ConfigError::InvalidValue {
            option: option.to_string(),
            value: value.to_string(),
            expected: expected.to_string(),
        }
    }

    pub(crate) fn invalid(option: &str, reason: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            option: option.to_string(),
            reason: reason.into(),
        }
    }
}
