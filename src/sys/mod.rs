//! The only module with unsafe code: thin wrappers over libc calls, each block with a SAFETY note.
#![allow(unsafe_code)]
