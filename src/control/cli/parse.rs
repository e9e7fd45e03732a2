//! One command line of rtpengine's CLI (what `rtpengine-ctl` sends) → a [`CliRequest`]. Words are
//! separated by single spaces, as rtpengine splits them; what cannot be parsed becomes the answer
//! rtpengine gives for it. Never panics, whatever the bytes.

use crate::control::cli::{CliRequest, SessionFilter, TerminateScope};
use crate::session::command::{DrainOp, Setting};

/// Longest command line accepted (rtpengine's own limit is of this order).
pub const MAX_LINE: usize = 4096;

/// rtpengine's answer to a missing argument.
pub const MORE_PARAMETERS: &str = "More parameters required.\n";

/// Parses one line (without or with its `\n`/`\r\n`).
pub fn parse(line: &[u8]) -> CliRequest {
    let line = String::from_utf8_lossy(line);
    let line = line.trim_end_matches(['\n', '\r']);
    let (verb, rest) = split(line);
    match verb {
        "list" | "get" => parse_list(rest),
        "set" => parse_set(rest),
        "terminate" => parse_terminate(rest),
        "takeover" if rest.is_empty() => CliRequest::Takeover,
        "drain" => match rest {
            "" => CliRequest::Drain(DrainOp::Start),
            "status" => CliRequest::Drain(DrainOp::Status),
            _ => unknown(line),
        },
        _ => unknown(line),
    }
}

/// The first word and what follows its single separating space.
fn split(s: &str) -> (&str, &str) {
    s.split_once(' ').unwrap_or((s, ""))
}

fn unknown(rest: &str) -> CliRequest {
    CliRequest::Answer(format!("Unknown or incomplete command::{rest}\n"))
}

fn more() -> CliRequest {
    CliRequest::Answer(MORE_PARAMETERS.into())
}

fn setting(name: &str) -> Option<Setting> {
    Some(match name {
        "maxsessions" => Setting::MaxSessions,
        "timeout" => Setting::Timeout,
        "silenttimeout" => Setting::SilentTimeout,
        "offertimeout" => Setting::OfferTimeout,
        "finaltimeout" => Setting::FinalTimeout,
        "deletedelay" => Setting::DeleteDelay,
        _ => return None,
    })
}

fn parse_list(rest: &str) -> CliRequest {
    if rest.is_empty() {
        return more();
    }
    let (what, arg) = split(rest);
    match what {
        "numsessions" => CliRequest::NumSessions,
        "totals" => CliRequest::Totals,
        "sessions" => match arg {
            "" => more(),
            "all" => CliRequest::Sessions(SessionFilter::All),
            "own" => CliRequest::Sessions(SessionFilter::Own),
            "foreign" => CliRequest::Sessions(SessionFilter::Foreign),
            id => CliRequest::Session(id.to_owned()),
        },
        "loglevel" => CliRequest::GetLogLevel((!arg.is_empty()).then(|| arg.to_owned())),
        "loglevels" => CliRequest::LogLevels,
        name => match setting(name) {
            Some(s) => CliRequest::Get(s),
            None => unknown(rest),
        },
    }
}

fn parse_set(rest: &str) -> CliRequest {
    if rest.is_empty() {
        return more();
    }
    let (what, arg) = split(rest);
    match what {
        "maxsessions" => set_maxsessions(arg),
        "loglevel" => set_loglevel(arg),
        "deletedelay" => set_deletedelay(arg),
        name => match setting(name) {
            Some(s) => set_timeout(s, arg),
            None => unknown(rest),
        },
    }
}

fn parse_terminate(rest: &str) -> CliRequest {
    match rest {
        "" => more(),
        "all" => CliRequest::Terminate(TerminateScope::All),
        "own" => CliRequest::Terminate(TerminateScope::Own),
        "foreign" => CliRequest::Terminate(TerminateScope::Foreign),
        id => CliRequest::Terminate(TerminateScope::Call(id.to_owned())),
    }
}

/// A number the way C's `strtol` reads it: leading blanks, a sign, then as many digits as there
/// are (`12abc` is 12). `None` without digits; `Err` when it does not fit.
fn leading_int(s: &str) -> Option<Result<i64, ()>> {
    let t = s.trim_start_matches([' ', '\t']);
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let end = digits
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(digits.len());
    if end == 0 {
        return None;
    }
    let mut v: i64 = 0;
    for b in digits[..end].bytes() {
        let d = i64::from(b - b'0');
        let next = v.checked_mul(10).and_then(|v| {
            if neg {
                v.checked_sub(d)
            } else {
                v.checked_add(d)
            }
        });
        match next {
            Some(n) => v = n,
            None => return Some(Err(())),
        }
    }
    Some(Ok(v))
}

/// `errno` as rtpengine reports it for an out-of-range number.
const ERANGE: i32 = 34;

fn set_maxsessions(arg: &str) -> CliRequest {
    if arg.is_empty() {
        return more();
    }
    match leading_int(arg) {
        None => CliRequest::Answer(format!(
            "Fail setting maxsessions to {arg}; no digists found\n"
        )),
        Some(Err(())) => CliRequest::Answer(format!(
            "Fail setting maxsessions to {arg}; errno={ERANGE}\n"
        )),
        Some(Ok(n)) if n < -1 => CliRequest::Answer(format!(
            "Fail setting maxsessions to {n}; either positive or -1 values allowed\n"
        )),
        Some(Ok(n)) => CliRequest::Set(Setting::MaxSessions, n),
    }
}

fn set_timeout(s: Setting, arg: &str) -> CliRequest {
    if arg.is_empty() {
        return more();
    }
    match leading_int(arg) {
        None => CliRequest::Answer(format!("Fail setting timeout to {arg}; no digists found\n")),
        Some(Err(())) => {
            CliRequest::Answer(format!("Fail setting timeout to {arg}; errno={ERANGE}\n"))
        }
        Some(Ok(n)) if !(0..i64::from(i32::MAX)).contains(&n) => {
            CliRequest::Answer(format!("Fail setting timeout to {arg}; errno=0\n"))
        }
        Some(Ok(n)) => CliRequest::Set(s, n),
    }
}

fn set_deletedelay(arg: &str) -> CliRequest {
    if arg.is_empty() {
        return more();
    }
    match arg.parse::<i32>() {
        Ok(n) if n >= 0 => CliRequest::Set(Setting::DeleteDelay, i64::from(n)),
        _ => CliRequest::Answer("Invalid delete-delay value\n".into()),
    }
}

/// `set loglevel N` or `set loglevel SUBSYSTEM N`; rtpengine reads N as `atoi` does.
fn set_loglevel(arg: &str) -> CliRequest {
    let arg = match arg.as_bytes().first() {
        None => return more(),
        Some(b) if !b.is_ascii_digit() => split(arg).1,
        Some(_) => arg,
    };
    if arg.is_empty() {
        return more();
    }
    let n = match leading_int(arg) {
        Some(Ok(n)) => n.clamp(i64::from(i32::MIN), i64::from(i32::MAX)),
        _ => 0,
    };
    CliRequest::SetLogLevel(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(line: &str) -> String {
        match parse(line.as_bytes()) {
            CliRequest::Answer(a) => a,
            other => panic!("{line}: {other:?}"),
        }
    }

    #[test]
    fn verbs() {
        assert_eq!(parse(b"list numsessions\n"), CliRequest::NumSessions);
        assert_eq!(parse(b"get numsessions"), CliRequest::NumSessions);
        assert_eq!(parse(b"list totals\r\n"), CliRequest::Totals);
        assert_eq!(
            parse(b"list sessions all"),
            CliRequest::Sessions(SessionFilter::All)
        );
        assert_eq!(
            parse(b"list sessions own"),
            CliRequest::Sessions(SessionFilter::Own)
        );
        assert_eq!(
            parse(b"list sessions abc@host"),
            CliRequest::Session("abc@host".into())
        );
        assert_eq!(
            parse(b"get maxsessions"),
            CliRequest::Get(Setting::MaxSessions)
        );
        assert_eq!(
            parse(b"set maxsessions 12abc"),
            CliRequest::Set(Setting::MaxSessions, 12)
        );
        assert_eq!(
            parse(b"set maxsessions -1"),
            CliRequest::Set(Setting::MaxSessions, -1)
        );
        assert_eq!(
            parse(b"set timeout 90"),
            CliRequest::Set(Setting::Timeout, 90)
        );
        assert_eq!(
            parse(b"terminate all"),
            CliRequest::Terminate(TerminateScope::All)
        );
        assert_eq!(
            parse(b"terminate x y"),
            CliRequest::Terminate(TerminateScope::Call("x y".into()))
        );
        assert_eq!(parse(b"drain\n"), CliRequest::Drain(DrainOp::Start));
        assert_eq!(parse(b"drain status"), CliRequest::Drain(DrainOp::Status));
        assert!(matches!(parse(b"drain now"), CliRequest::Answer(_)));
        assert_eq!(parse(b"takeover\n"), CliRequest::Takeover);
        assert!(matches!(parse(b"takeover all"), CliRequest::Answer(_)));
        assert_eq!(parse(b"set loglevel 6"), CliRequest::SetLogLevel(6));
        assert_eq!(parse(b"set loglevel core 5"), CliRequest::SetLogLevel(5));
        assert_eq!(
            parse(b"get loglevel core"),
            CliRequest::GetLogLevel(Some("core".into()))
        );
    }

    #[test]
    fn refusals_read_as_rtpengine_words_them() {
        assert_eq!(answer(""), "Unknown or incomplete command::\n");
        assert_eq!(answer("bogus"), "Unknown or incomplete command::bogus\n");
        assert_eq!(
            answer("list  numsessions"),
            "Unknown or incomplete command:: numsessions\n"
        );
        assert_eq!(
            answer("set bogus 1"),
            "Unknown or incomplete command::bogus 1\n"
        );
        for more in [
            "list",
            "get",
            "set",
            "terminate",
            "list sessions",
            "set maxsessions",
            "set loglevel x",
        ] {
            assert_eq!(answer(more), MORE_PARAMETERS, "{more}");
        }
        assert_eq!(
            answer("set maxsessions -5"),
            "Fail setting maxsessions to -5; either positive or -1 values allowed\n"
        );
        assert_eq!(
            answer("set maxsessions abc"),
            "Fail setting maxsessions to abc; no digists found\n"
        );
        assert_eq!(
            answer("set maxsessions 99999999999999999999"),
            "Fail setting maxsessions to 99999999999999999999; errno=34\n"
        );
        assert_eq!(
            answer("set timeout -3"),
            "Fail setting timeout to -3; errno=0\n"
        );
        assert_eq!(
            answer("set timeout 99999999999"),
            "Fail setting timeout to 99999999999; errno=0\n"
        );
    }

    #[test]
    fn hostile_bytes_do_not_panic() {
        for line in [
            &b"\xff\xfe set"[..],
            b"set maxsessions -",
            b"set loglevel \xc3",
            b"-",
        ] {
            let _ = parse(line);
        }
    }
}
