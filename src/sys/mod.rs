//! The only module with unsafe code: thin wrappers over libc calls, each block with a SAFETY note.
//!
//! Socket I/O goes through libc's `recvmmsg`/`sendmmsg` symbols (never raw syscalls), so an
//! `LD_PRELOAD` shim can interpose them.
#![allow(unsafe_code)]

pub mod caps;
pub mod dgram;
pub mod epoll;
pub mod eventfd;
pub mod ifaddrs;
pub mod mmsg;
pub mod netns;
pub mod rlimit;
pub mod seccomp;
pub mod uring;
pub mod xdp;
pub mod xsk;
