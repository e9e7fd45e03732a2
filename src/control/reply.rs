//! Reply dictionaries every command shares.

use crate::control::bencode::{dict, Value};

/// `{result: "error", error-reason: reason}`.
pub fn error_reply(reason: &str) -> Value {
    dict! { "result" => "error", "error-reason" => reason }
}

/// `{result: "ok"}`.
pub fn ok_reply() -> Value {
    dict! { "result" => "ok" }
}

/// `{result: "ok", warning: text}`: a non-fatal problem, e.g. deleting an unknown call.
pub fn warning_reply(text: &str) -> Value {
    dict! { "result" => "ok", "warning" => text }
}

/// `{result: "pong"}`.
pub fn pong_reply() -> Value {
    dict! { "result" => "pong" }
}

/// `{result: "load limit", message: text}` for clients that sent `supports: [load limit]`.
pub fn load_limit_reply(text: &str) -> Value {
    dict! { "result" => "load limit", "message" => text }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        assert_eq!(
            error_reply("Unknown call-id").encode(),
            b"d12:error-reason15:Unknown call-id6:result5:errore".to_vec()
        );
        assert_eq!(ok_reply().encode(), b"d6:result2:oke".to_vec());
        assert_eq!(pong_reply().encode(), b"d6:result4:ponge".to_vec());
        assert_eq!(
            warning_reply("w").get("warning").and_then(Value::as_str),
            Some("w")
        );
        assert_eq!(
            load_limit_reply("m").get("result").and_then(Value::as_str),
            Some("load limit")
        );
    }
}
