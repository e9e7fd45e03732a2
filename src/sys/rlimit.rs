//! Resource limits the relay raises to what it may: open files (every media port is a socket,
//! so a busy relay needs tens of thousands of descriptors, four per two-party call) and locked
//! memory (the AF_XDP sockets' frame memory counts against it).

use std::io;

/// Raise the soft `RLIMIT_NOFILE` to the hard limit; returns the soft limit now in force.
pub fn raise_nofile() -> io::Result<u64> {
    raise(libc::RLIMIT_NOFILE)
}

/// Raise the soft `RLIMIT_MEMLOCK` to the hard limit; returns the bytes now allowed
/// (`u64::MAX`: unlimited).
pub fn raise_memlock() -> io::Result<u64> {
    raise(libc::RLIMIT_MEMLOCK)
}

fn raise(resource: libc::__rlimit_resource_t) -> io::Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit for the duration of the call.
    if unsafe { libc::getrlimit(resource, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if lim.rlim_cur < lim.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: `raised` is a valid rlimit read only by the call.
        if unsafe { libc::setrlimit(resource, &raised) } != 0 {
            return Err(io::Error::last_os_error());
        }
        lim.rlim_cur = lim.rlim_max;
    }
    Ok(lim.rlim_cur)
}

#[cfg(test)]
mod tests {
    #[test]
    fn soft_limit_reaches_the_hard_one() {
        let now = super::raise_nofile().expect("rlimit");
        assert!(now >= 1, "{now}");
        let mem = super::raise_memlock().expect("rlimit");
        assert!(mem >= 4096, "{mem}");
    }
}
