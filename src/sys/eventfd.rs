//! An eventfd used to wake a worker blocked in `epoll_wait`.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// A non-blocking eventfd counter. `Send + Sync`: the control thread notifies, the worker drains.
#[derive(Debug)]
pub struct EventFd {
    file: File,
}

impl EventFd {
    pub fn new() -> io::Result<EventFd> {
        // SAFETY: eventfd takes no pointers; the flags are valid constants.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just returned by eventfd, is open, and nothing else owns it.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(EventFd {
            file: File::from(owned),
        })
    }

    /// Add one to the counter, making the fd readable. Never blocks; a saturated counter is
    /// already readable, so EAGAIN is ignored.
    pub fn notify(&self) {
        let _ = (&self.file).write(&1u64.to_ne_bytes());
    }

    /// Reset the counter to zero.
    pub fn drain(&self) {
        let mut b = [0u8; 8];
        let _ = (&self.file).read(&mut b);
    }
}

impl AsRawFd for EventFd {
    fn as_raw_fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }
}
