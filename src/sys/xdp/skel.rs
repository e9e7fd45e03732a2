//! The libbpf-rs skeleton that build.rs generated from `bpf/relay.bpf.c` (object bytes included).
//! Generated code: its unsafe blocks carry no SAFETY notes and its style is not ours.
#![allow(
    clippy::all,
    clippy::pedantic,
    clippy::undocumented_unsafe_blocks,
    clippy::unwrap_used,
    unsafe_op_in_unsafe_fn,
    missing_docs,
    dead_code,
    non_camel_case_types,
    non_snake_case,
    unused_imports,
    unused_qualifications
)]

include!(concat!(env!("OUT_DIR"), "/relay.skel.rs"));
