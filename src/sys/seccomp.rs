//! A seccomp filter that refuses `io_uring_setup` with EPERM, as Docker's default profile does
//! (Docker ≥ 25). Lets tests and operators check the io_uring fallback on any host.

use std::io;
use std::os::unix::process::CommandExt;
use std::process::Command;

/// Four classic-BPF instructions: load the syscall number, refuse io_uring_setup, allow all else.
fn filter() -> [libc::sock_filter; 4] {
    let stmt = |code: u32, k: u32| libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    };
    [
        // seccomp_data.nr is the first field.
        stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0),
        libc::sock_filter {
            code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
            jt: 0,
            jf: 1,
            k: libc::SYS_io_uring_setup as u32,
        },
        stmt(
            libc::BPF_RET | libc::BPF_K,
            libc::SECCOMP_RET_ERRNO | (libc::EPERM as u32),
        ),
        stmt(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_ALLOW),
    ]
}

/// Make `cmd`'s child refuse `io_uring_setup` with EPERM (set in the child before exec, with
/// `no_new_privs`, so no privilege is needed).
pub fn deny_io_uring_on_exec(cmd: &mut Command) -> &mut Command {
    let prog = filter();
    let hook = move || -> io::Result<()> {
        let fprog = libc::sock_fprog {
            len: prog.len() as u16,
            filter: prog.as_ptr() as *mut libc::sock_filter,
        };
        // SAFETY: prctl with integer arguments only; called in the forked child before exec.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fprog` points at `prog`, a valid filter that outlives the call (the kernel
        // copies it); prctl is async-signal-safe, so fine between fork and exec.
        let rc = unsafe {
            libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER,
                &fprog as *const libc::sock_fprog,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    };
    // SAFETY: the hook allocates nothing and only calls prctl, which is async-signal-safe.
    unsafe { cmd.pre_exec(hook) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn child_is_refused_io_uring() {
        // `true` runs fine under the filter: everything but io_uring_setup is allowed.
        let st = deny_io_uring_on_exec(&mut Command::new("true"))
            .status()
            .expect("spawn");
        assert!(st.success());
        let f = filter();
        assert_eq!(f[1].k, libc::SYS_io_uring_setup as u32);
        assert_eq!(f[2].k & 0xffff, libc::EPERM as u32);
    }
}
