//! CPU time and memory of a process, from /proc.

/// CPU time of `pid` in microseconds: the nanosecond run times of its threads
/// (`/proc/PID/task/*/schedstat`), or, where schedstats are missing, user + system time from
/// `/proc/PID/stat`, which counts in 10 ms ticks (too coarse for a relay using 1 % of a core).
pub fn cpu_us(pid: u32) -> Option<u64> {
    task_schedstat_us(pid, 0).or_else(|| stat_cpu_us(pid))
}

fn stat_cpu_us(pid: u32) -> Option<u64> {
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
    task_schedstat_us(pid, 1)
}

/// Field `field` (0: on CPU, 1: waiting for a CPU; nanoseconds) of every thread's schedstat,
/// summed, in microseconds. None when `pid` is gone or has no schedstats.
fn task_schedstat_us(pid: u32, field: usize) -> Option<u64> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let (mut total_ns, mut read) = (0u64, 0);
    for t in tasks.flatten() {
        let path = t.path().join("schedstat");
        let Ok(s) = std::fs::read_to_string(path) else {
            continue; // the thread ended meanwhile
        };
        if let Some(v) = s
            .split_whitespace()
            .nth(field)
            .and_then(|v| v.parse::<u64>().ok())
        {
            total_ns += v;
            read += 1;
        }
    }
    (read > 0).then_some(total_ns / 1000)
}

/// Run time and run count of the BPF programs `pid` holds open (its XDP program), summed, from
/// `/proc/PID/fdinfo`. The kernel fills them in only while `kernel.bpf_stats_enabled` is 1.
/// XDP runs in softirq context, not in the relay's threads, so this is its share of the cost.
pub fn bpf_run(pid: u32) -> Option<(u64, u64)> {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fdinfo")).ok()?;
    let (mut ns, mut cnt, mut progs) = (0u64, 0u64, 0);
    for fd in fds.flatten() {
        let Ok(info) = std::fs::read_to_string(fd.path()) else {
            continue;
        };
        if !info.lines().any(|l| l.starts_with("prog_type:")) {
            continue;
        }
        progs += 1;
        for l in info.lines() {
            let mut kv = l.split(':');
            let (Some(k), Some(v)) = (kv.next(), kv.next()) else {
                continue;
            };
            let v: u64 = v.trim().parse().unwrap_or(0);
            match k {
                "run_time_ns" => ns += v,
                "run_cnt" => cnt += v,
                _ => {}
            }
        }
    }
    (progs > 0).then_some((ns, cnt))
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
