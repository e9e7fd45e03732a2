//! Datagram receive/reply with the peer address kept opaque: the reply goes back to whatever
//! address the kernel (or an LD_PRELOAD shim that turns IP sockets into Unix sockets, as
//! rtpengine's test harness does) reported. Goes through libc's `recvmsg`/`sendmsg`, which such
//! shims interpose.

use std::io;
use std::mem::{size_of, MaybeUninit};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, BorrowedFd};

/// A peer address exactly as `recvmsg` returned it.
#[derive(Clone, Copy)]
pub struct PeerAddr {
    storage: libc::sockaddr_storage,
    len: libc::socklen_t,
}

impl PeerAddr {
    /// The address as an IP socket address, when it is one.
    pub fn ip(&self) -> Option<SocketAddr> {
        crate::sys::mmsg::to_socket_addr(&self.storage, self.len)
    }

    /// The address bytes exactly as the kernel (or a shim) filled them in, `len` bytes of the
    /// `sockaddr`: an opaque identity for peers that are not IP addresses.
    pub fn as_bytes(&self) -> &[u8] {
        let len = (self.len as usize).min(size_of::<libc::sockaddr_storage>());
        // SAFETY: `storage` is plain old data, initialised (zeroed, then filled by recvmsg), and
        // `len` is clamped to its size, so the slice stays inside it for `self`'s lifetime.
        unsafe {
            std::slice::from_raw_parts(
                (&self.storage as *const libc::sockaddr_storage).cast::<u8>(),
                len,
            )
        }
    }
}

impl std::fmt::Debug for PeerAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.ip() {
            Some(a) => write!(f, "{a}"),
            None => write!(f, "<family {}>", self.storage.ss_family),
        }
    }
}

/// Receives one datagram into `buf` (blocking, subject to the socket's read timeout).
pub fn recv_from(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<(usize, PeerAddr)> {
    // SAFETY: sockaddr_storage is plain old data; all-zero is a valid value.
    let mut storage: libc::sockaddr_storage = unsafe { MaybeUninit::zeroed().assume_init() };
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: msghdr is plain old data; all-zero is a valid empty header.
    let mut msg: libc::msghdr = unsafe { MaybeUninit::zeroed().assume_init() };
    msg.msg_name = (&mut storage as *mut libc::sockaddr_storage).cast();
    msg.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    // SAFETY: msg points at a live iovec over `buf` and at `storage`, both outliving the call.
    let n = unsafe { libc::recvmsg(fd.as_raw_fd(), &mut msg, 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let peer = PeerAddr {
        storage,
        len: msg.msg_namelen,
    };
    Ok((n as usize, peer))
}

/// Sends `data` to `peer` in one datagram.
pub fn send_to(fd: BorrowedFd<'_>, data: &[u8], peer: &PeerAddr) -> io::Result<usize> {
    let mut storage = peer.storage;
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    // SAFETY: msghdr is plain old data; all-zero is a valid empty header.
    let mut msg: libc::msghdr = unsafe { MaybeUninit::zeroed().assume_init() };
    msg.msg_name = (&mut storage as *mut libc::sockaddr_storage).cast();
    msg.msg_namelen = peer.len;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    // SAFETY: msg points at a live iovec over `data` (only read) and at a copy of the address.
    let n = unsafe { libc::sendmsg(fd.as_raw_fd(), &msg, 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

/// Undo a datagram socket's `connect()` (`connect` to `AF_UNSPEC`): it receives from any source
/// again and sends only where each packet says. A socket bound to an explicit port (as the
/// relay's media sockets are) keeps its address and port; one bound to port 0 loses the port
/// the kernel picked.
pub fn disconnect(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: sockaddr_storage is plain old data; all-zero is the AF_UNSPEC address.
    let storage: libc::sockaddr_storage = unsafe { MaybeUninit::zeroed().assume_init() };
    // SAFETY: `storage` lives across the call and the length given is within its size.
    let r = unsafe {
        libc::connect(
            fd.as_raw_fd(),
            (&storage as *const libc::sockaddr_storage).cast(),
            size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::net::UdpSocket;
    use std::os::fd::AsFd;

    #[test]
    fn replies_to_the_sender() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client
            .send_to(b"hello", server.local_addr().unwrap())
            .unwrap();
        let mut buf = [0u8; 64];
        let (n, peer) = super::recv_from(server.as_fd(), &mut buf).unwrap();
        assert_eq!(&buf[..n], b"hello");
        assert_eq!(peer.ip(), Some(client.local_addr().unwrap()));
        super::send_to(server.as_fd(), b"back", &peer).unwrap();
        let (n, from) = client.recv_from(&mut buf).unwrap();
        assert_eq!(
            (&buf[..n], from),
            (&b"back"[..], server.local_addr().unwrap())
        );
    }

    #[test]
    fn disconnect_takes_other_sources_again() {
        // An explicit port, as the relay binds its media sockets.
        let port = UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let server = UdpSocket::bind(("127.0.0.1", port)).unwrap();
        let (a, b) = (
            UdpSocket::bind("127.0.0.1:0").unwrap(),
            UdpSocket::bind("127.0.0.1:0").unwrap(),
        );
        let me = server.local_addr().unwrap();
        server.connect(a.local_addr().unwrap()).unwrap();
        server
            .set_read_timeout(Some(std::time::Duration::from_millis(100)))
            .unwrap();
        let mut buf = [0u8; 16];
        b.send_to(b"b", me).unwrap();
        assert!(server.recv_from(&mut buf).is_err(), "connected: only a");
        super::disconnect(server.as_fd()).unwrap();
        assert_eq!(server.local_addr().unwrap(), me, "still bound where it was");
        b.send_to(b"b2", me).unwrap();
        let (n, from) = server.recv_from(&mut buf).unwrap();
        assert_eq!((&buf[..n], from), (&b"b2"[..], b.local_addr().unwrap()));
    }
}
