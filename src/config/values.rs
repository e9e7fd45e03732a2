//! Parsers for single option values. Each takes the option's label (`--port-min` or
//! `config key 'port-min'`) so that its error names the option.

use std::time::Duration;

use super::error::ConfigError;
use crate::dataplane::DataplaneRequest;
use crate::flow::latch::EndpointLearning;

/// A GLib `INT` option: a decimal 32-bit integer.
pub(crate) fn int(label: &str, raw: &str, expected: &str) -> Result<i64, ConfigError> {
    raw.trim()
        .parse::<i32>()
        .map(i64::from)
        .map_err(|_| ConfigError::value(label, raw, expected))
}

/// An integer that must lie in `lo..=hi`.
pub(crate) fn int_in(label: &str, raw: &str, lo: i64, hi: i64) -> Result<i64, ConfigError> {
    let expected = format!("expected a number {lo}-{hi}");
    let v = int(label, raw, &expected)?;
    if (lo..=hi).contains(&v) {
        Ok(v)
    } else {
        Err(ConfigError::value(label, raw, &expected))
    }
}

/// A timeout in seconds where zero or less means "use the default", as rtpengine treats them.
pub(crate) fn secs_or_default(
    label: &str,
    raw: &str,
    default: Duration,
) -> Result<Duration, ConfigError> {
    let v = int(label, raw, "expected a number of seconds")?;
    Ok(if v <= 0 {
        default
    } else {
        Duration::from_secs(v.unsigned_abs())
    })
}

/// `--final-timeout`: zero or less means no final timeout.
pub(crate) fn secs_optional(label: &str, raw: &str) -> Result<Option<Duration>, ConfigError> {
    let v = int(label, raw, "expected a number of seconds (0 = none)")?;
    Ok((v > 0).then(|| Duration::from_secs(v.unsigned_abs())))
}

/// `--delete-delay`: zero is allowed, negative is not (rtpengine refuses it too).
pub(crate) fn secs_non_negative(label: &str, raw: &str) -> Result<Duration, ConfigError> {
    let expected = "expected a number of seconds, 0 or more";
    let v = int(label, raw, expected)?;
    if v < 0 {
        return Err(ConfigError::value(label, raw, expected));
    }
    Ok(Duration::from_secs(v.unsigned_abs()))
}

pub(crate) fn endpoint_learning(label: &str, raw: &str) -> Result<EndpointLearning, ConfigError> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "delayed" => Ok(EndpointLearning::Delayed),
        "immediate" => Ok(EndpointLearning::Immediate),
        "off" => Ok(EndpointLearning::Off),
        "heuristic" => Ok(EndpointLearning::Heuristic),
        _ => Err(ConfigError::value(
            label,
            raw,
            "expected delayed, immediate, off or heuristic",
        )),
    }
}

/// A yes/no switch that takes a value (`--connect-latched=no`).
pub(crate) fn yes_no(label: &str, raw: &str) -> Result<bool, ConfigError> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "yes" | "true" | "on" | "1" => Ok(true),
        "no" | "false" | "off" | "0" => Ok(false),
        _ => Err(ConfigError::value(label, raw, "expected yes or no")),
    }
}

/// `--log-format`: `text` or `json`; rtpengine's `default` and `parsable` are read as text.
pub(crate) fn log_format(label: &str, raw: &str) -> Result<super::LogFormat, ConfigError> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "text" | "default" | "parsable" => Ok(super::LogFormat::Text),
        "json" => Ok(super::LogFormat::Json),
        _ => Err(ConfigError::value(
            label,
            raw,
            "expected text or json (or rtpengine's default or parsable)",
        )),
    }
}

pub(crate) fn dataplane(label: &str, raw: &str) -> Result<DataplaneRequest, ConfigError> {
    raw.trim()
        .parse::<DataplaneRequest>()
        .map_err(|_| ConfigError::value(label, raw, "expected auto, mmsg, uring, xdp or afxdp"))
}

/// `--dtls-cert-cipher`: the key of the certificate made at start. rtpengine also knows RSA;
/// the DTLS stack here signs with ECDSA only, so that is refused rather than ignored.
pub(crate) fn dtls_cert_cipher(
    label: &str,
    raw: &str,
) -> Result<crate::dtls::CertCipher, ConfigError> {
    match crate::dtls::CertCipher::from_name(raw.trim()) {
        Some(c @ crate::dtls::CertCipher::EcdsaP256) => Ok(c),
        _ => Err(ConfigError::value(
            label,
            raw,
            "prime256v1 (the DTLS stack signs with ECDSA only: no RSA certificate)",
        )),
    }
}

/// `--dtls-signature`: the hash of the announced fingerprint.
pub(crate) fn dtls_signature(label: &str, raw: &str) -> Result<crate::dtls::HashFunc, ConfigError> {
    crate::dtls::HashFunc::from_name(raw.trim()).ok_or_else(|| {
        ConfigError::value(label, raw, "sha-1, sha-224, sha-256, sha-384 or sha-512")
    })
}

/// The highest CPU number `--cpu-affinity` accepts.
const MAX_CPU: usize = 4095;

/// `--cpu-affinity`: a list like `0,1,4-7`, in order, without repeats.
pub(crate) fn cpu_list(label: &str, raw: &str) -> Result<Vec<usize>, ConfigError> {
    let bad = || ConfigError::value(label, raw, "expected CPU numbers like 0,1,4-7 (0-4095)");
    let num = |s: &str| {
        s.trim()
            .parse::<usize>()
            .ok()
            .filter(|&n| n <= MAX_CPU)
            .ok_or_else(bad)
    };
    let mut cpus = Vec::new();
    for part in raw.split(',') {
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (num(a)?, num(b)?),
            None => {
                let n = num(part)?;
                (n, n)
            }
        };
        if lo > hi {
            return Err(bad());
        }
        for c in lo..=hi {
            if cpus.contains(&c) {
                return Err(ConfigError::value(label, raw, "a CPU is listed twice"));
            }
            cpus.push(c);
        }
    }
    Ok(cpus)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ints() {
        assert_eq!(int("--t", " -1 ", "x").unwrap(), -1);
        assert_eq!(
            int_in("--port-min", "abc", 1, 65535)
                .unwrap_err()
                .to_string(),
            "--port-min: invalid value 'abc': expected a number 1-65535"
        );
        assert!(int_in("--port-min", "70000", 1, 65535).is_err());
        assert!(int("--t", "99999999999", "x").is_err());
    }

    #[test]
    fn durations() {
        let d = Duration::from_secs(60);
        assert_eq!(secs_or_default("-o", "0", d).unwrap(), d);
        assert_eq!(secs_or_default("-o", "-5", d).unwrap(), d);
        assert_eq!(
            secs_or_default("-o", "30", d).unwrap(),
            Duration::from_secs(30)
        );
        assert!(secs_or_default("-o", "1m", d)
            .unwrap_err()
            .to_string()
            .starts_with("-o: invalid value '1m'"));
        assert_eq!(secs_optional("-a", "0").unwrap(), None);
        assert_eq!(
            secs_optional("-a", "7").unwrap(),
            Some(Duration::from_secs(7))
        );
        assert!(secs_non_negative("-d", "-1").is_err());
        assert_eq!(secs_non_negative("-d", "0").unwrap(), Duration::ZERO);
    }

    #[test]
    fn enums() {
        assert_eq!(
            endpoint_learning("--endpoint-learning", "Immediate").unwrap(),
            EndpointLearning::Immediate
        );
        assert!(endpoint_learning("--endpoint-learning", "sometimes")
            .unwrap_err()
            .to_string()
            .contains("--endpoint-learning: invalid value 'sometimes'"));
        assert_eq!(
            dataplane("--dataplane", "XDP").unwrap(),
            DataplaneRequest::Xdp
        );
        assert!(dataplane("--dataplane", "dpdk").is_err());
        assert!(yes_no("--connect-latched", "Yes").unwrap());
        assert!(!yes_no("--connect-latched", "no").unwrap());
        assert!(yes_no("--connect-latched", "maybe").is_err());
    }

    #[test]
    fn cpus() {
        assert_eq!(cpu_list("--cpu-affinity", "0,1").unwrap(), vec![0, 1]);
        assert_eq!(
            cpu_list("--cpu-affinity", "4-6,0").unwrap(),
            vec![4, 5, 6, 0]
        );
        assert!(cpu_list("--cpu-affinity", "1,1").is_err());
        assert!(cpu_list("--cpu-affinity", "3-1").is_err());
        assert!(cpu_list("--cpu-affinity", "").is_err());
        assert!(cpu_list("--cpu-affinity", "99999").is_err());
    }
}
