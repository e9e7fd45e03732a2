//! CPU time and memory of a process, from /proc.

/// User + system CPU time of `pid` in microseconds.
pub fn cpu_us(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    let hz = 100; // USER_HZ is 100 on Linux for /proc/*/stat
    Some((utime + stime) * 1_000_000 / hz)
}

/// Time the threads of `pid` spent runnable but waiting for a CPU, in microseconds (summed over
/// its threads, from `/proc/PID/task/*/schedstat`). High values mean another process took the
/// CPU: the run measured a crowded machine.
pub fn runqueue_wait_us(pid: u32) -> Option<u64> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut total_ns = 0u64;
    for t in tasks.flatten() {
        let path = t.path().join("schedstat");
        let Ok(s) = std::fs::read_to_string(path) else {
            continue; // the thread ended meanwhile
        };
        total_ns += s
            .split_whitespace()
            .nth(1)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
    }
    Some(total_ns / 1000)
}

/// Resident set size of `pid` in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_own_cpu_and_rss() {
        let me = std::process::id();
        assert!(super::cpu_us(me).is_some());
        assert!(super::rss_kib(me).unwrap() > 0);
        assert!(super::runqueue_wait_us(me).is_some());
    }
}
