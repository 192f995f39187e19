//! Receiving datagrams, with one behaviour on every platform for a datagram
//! longer than the buffer.
//!
//! Unix cuts such a datagram to fit and says so only in `recvmsg`'s
//! `MSG_TRUNC` flag; Windows fails the receive with `WSAEMSGSIZE` (the buffer
//! holds the first part, the rest is gone). Either way the datagram is lost,
//! so the table reports it alike: the receive fails with [`truncated`], and
//! the next receive returns the next datagram.

use std::io;

/// The error for a datagram longer than the buffer: `InvalidData`.
pub(crate) fn truncated(len: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!(
            "a datagram longer than the {len}-byte buffer was dropped \
             (its first {len} bytes are in the buffer)"
        ),
    )
}

#[cfg(unix)]
mod imp {
    use std::io;
    use std::mem::MaybeUninit;
    use std::net::SocketAddr;
    use std::os::fd::AsFd;

    use socket2::{MaybeUninitSlice, SockRef};

    use super::truncated;

    /// The buffer as socket2 takes it.
    fn uninit(buf: &mut [u8]) -> &mut [MaybeUninit<u8>] {
        // SAFETY: `MaybeUninit<u8>` has the layout of `u8`, and socket2's
        // receive calls never write uninitialised bytes into the buffer (the
        // promise documented on `Socket::recv_vectored`), so the slice stays
        // initialised for its owner.
        unsafe { &mut *(std::ptr::from_mut::<[u8]>(buf) as *mut [MaybeUninit<u8>]) }
    }

    pub(crate) fn recv(socket: &impl AsFd, buf: &mut [u8]) -> io::Result<usize> {
        let len = buf.len();
        let mut bufs = [MaybeUninitSlice::new(uninit(buf))];
        let (n, flags) = SockRef::from(socket).recv_vectored(&mut bufs)?;
        if flags.is_truncated() {
            return Err(truncated(len));
        }
        Ok(n)
    }

    pub(crate) fn recv_from(socket: &impl AsFd, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        let len = buf.len();
        let mut bufs = [MaybeUninitSlice::new(uninit(buf))];
        let (n, flags, from) = SockRef::from(socket).recv_from_vectored(&mut bufs)?;
        if flags.is_truncated() {
            return Err(truncated(len));
        }
        let from = from.as_socket().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                "sender is not an Internet address",
            )
        })?;
        Ok((n, from))
    }
}

/// Through mio's own calls: on Windows, mio re-arms readiness only when one
/// of them answers `WouldBlock`.
#[cfg(windows)]
mod imp {
    use std::io;
    use std::net::SocketAddr;

    use mio::net::UdpSocket;

    use super::truncated;

    /// `WSAEMSGSIZE`: the datagram did not fit.
    const WSAEMSGSIZE: i32 = 10040;

    fn map(e: io::Error, len: usize) -> io::Error {
        if e.raw_os_error() == Some(WSAEMSGSIZE) {
            truncated(len)
        } else {
            e
        }
    }

    pub(crate) fn recv(socket: &UdpSocket, buf: &mut [u8]) -> io::Result<usize> {
        let len = buf.len();
        socket.recv(buf).map_err(|e| map(e, len))
    }

    pub(crate) fn recv_from(socket: &UdpSocket, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        let len = buf.len();
        socket.recv_from(buf).map_err(|e| map(e, len))
    }
}

pub(crate) use imp::{recv, recv_from};
