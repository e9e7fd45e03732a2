//! Small builders for NG reply dictionaries.

use crate::control::bencode::{Dict, Value};

/// Inserts `key => value` into a reply dictionary.
pub fn dict_put(d: &mut Dict, key: &str, value: impl IntoValue) {
    d.insert(key.as_bytes().to_vec(), value.into_value());
}

/// `{result: ok}`.
pub fn ok_reply() -> Value {
    let mut d = Dict::new();
    dict_put(&mut d, "result", "ok");
    Value::Dict(d)
}

/// `{result: error, error-reason: reason}`.
pub fn error_reply(reason: &str) -> Value {
    let mut d = Dict::new();
    dict_put(&mut d, "result", "error");
    dict_put(&mut d, "error-reason", reason);
    Value::Dict(d)
}

/// Conversions used by the reply builders.
pub trait IntoValue {
    fn into_value(self) -> Value;
}

impl IntoValue for Value {
    fn into_value(self) -> Value {
        self
    }
}
impl IntoValue for &str {
    fn into_value(self) -> Value {
        Value::Bytes(self.as_bytes().to_vec())
    }
}
impl IntoValue for String {
    fn into_value(self) -> Value {
        Value::Bytes(self.into_bytes())
    }
}
impl IntoValue for i64 {
    fn into_value(self) -> Value {
        Value::Int(self)
    }
}
impl IntoValue for u64 {
    fn into_value(self) -> Value {
        Value::Int(i64::try_from(self).unwrap_or(i64::MAX))
    }
}
impl IntoValue for Dict {
    fn into_value(self) -> Value {
        Value::Dict(self)
    }
}
impl IntoValue for Vec<Value> {
    fn into_value(self) -> Value {
        Value::List(self)
    }
}
