//! Bencode values (stub: the codec comes with its own change).
use std::collections::BTreeMap;

/// A bencode dictionary; keys are byte strings, kept sorted as rtpengine sends them.
pub type Dict = BTreeMap<Vec<u8>, Value>;

/// One bencode value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Int(i64),
    Bytes(Vec<u8>),
    List(Vec<Value>),
    Dict(Dict),
}
