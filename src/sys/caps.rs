//! The capabilities this process holds, for messages that say what is missing and for choices
//! that depend on them (e.g. locked-memory limits do not apply with CAP_IPC_LOCK).

pub const CAP_NET_ADMIN: u32 = 12;
pub const CAP_IPC_LOCK: u32 = 14;
pub const CAP_SYS_ADMIN: u32 = 21;
pub const CAP_BPF: u32 = 39;

/// Is `cap` in this process's effective set? False when /proc cannot tell.
pub fn effective(cap: u32) -> bool {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return false;
    };
    effective_in(&status, cap)
}

fn effective_in(status: &str, cap: u32) -> bool {
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .is_some_and(|eff| cap < 64 && eff & (1u64 << cap) != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_effective_set() {
        let status = "Name:\tx\nCapInh:\t0000000000000000\nCapEff:\t0000000000005000\n";
        assert!(effective_in(status, CAP_NET_ADMIN));
        assert!(effective_in(status, CAP_IPC_LOCK));
        assert!(!effective_in(status, CAP_SYS_ADMIN));
        assert!(!effective_in("CapEff:\tzz\n", CAP_NET_ADMIN));
        assert!(!effective_in(status, 64));
    }
}
