//! Network namespaces by name (`ip netns add NAME` makes `/run/netns/NAME`): enter one on the
//! current thread. Sockets keep the namespace they were created in, so a thread can step into
//! a namespace, open sockets there and hand them back; tests and the bench build topologies
//! this way without running each party as its own process.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

/// Move the calling thread into the named network namespace.
pub fn enter(name: &str) -> io::Result<()> {
    if name.is_empty() || name.contains('/') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("bad network namespace name {name:?}"),
        ));
    }
    let file = File::open(format!("/run/netns/{name}"))?;
    // SAFETY: `file` is an open namespace fd for the duration of the call; setns takes no
    // pointers and affects only the calling thread.
    let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Run `f` on a new thread that first enters namespace `name`; the caller's thread stays where
/// it is.
pub fn run_in<T, F>(name: &str, f: F) -> io::Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let name = name.to_owned();
    std::thread::spawn(move || enter(&name).map(|()| f()))
        .join()
        .map_err(|_| io::Error::other("thread in network namespace panicked"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_paths_and_missing_names() {
        assert!(enter("../etc").is_err());
        assert!(enter("").is_err());
        assert!(run_in("rtprelay-no-such-namespace", || ()).is_err());
    }
}
