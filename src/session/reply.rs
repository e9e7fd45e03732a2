//! A small helper for building NG reply dictionaries.

use crate::control::bencode::{Dict, Value};

/// Inserts `key => value` into a reply dictionary.
pub fn dict_put(d: &mut Dict, key: &str, value: impl Into<Value>) {
    d.insert(key.as_bytes().to_vec(), value.into());
}
