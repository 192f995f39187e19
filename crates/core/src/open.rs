//! Opening sockets: the constructors of [`Socket`], by address.
//!
//! [`Sockets`](crate::Sockets) and the responder crate's registry have
//! methods of the same names that open a socket here and add it to their
//! table; these are for a caller that wants the socket first (to set an
//! option, or to add it with another interest).

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};

use crate::socket::Inner;
use crate::Socket;

/// Default listen backlog: the kernel caps it (Linux `somaxconn`, 4096 on
/// current kernels); mio's own default of 128 makes bursts of connects slow.
/// [`Socket::listen_tcp`] uses it; [`Socket::listen_tcp_with_backlog`] takes
/// another.
///
/// ```
/// assert!(sockmux_core::DEFAULT_BACKLOG >= 1024);
/// ```
pub const DEFAULT_BACKLOG: u32 = 4096;

impl Socket {
    /// Binds a UDP socket (the sketch's `bind_dgram`).
    ///
    /// Names are resolved with the blocking resolver; each address is tried
    /// in turn.
    ///
    /// # Errors
    ///
    /// The OS error from the last address tried (e.g. `AddrInUse`);
    /// `InvalidInput` if `addr` resolves to nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// let socket = sockmux_core::Socket::bind_udp("127.0.0.1:0")?;
    /// assert_ne!(socket.local_addr()?.port(), 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn bind_udp(addr: impl ToSocketAddrs) -> io::Result<Socket> {
        let socket = each_addr(addr, std::net::UdpSocket::bind)?;
        socket.set_nonblocking(true)?;
        Ok(Inner::Udp(mio::net::UdpSocket::from_std(socket)).into())
    }

    /// A UDP socket connected to `addr` (the sketch's `connect_dgram`),
    /// bound to an ephemeral port of the same address family.
    ///
    /// # Errors
    ///
    /// The OS error from binding or connecting, for the last address tried.
    ///
    /// # Examples
    ///
    /// ```
    /// let peer = std::net::UdpSocket::bind("127.0.0.1:0")?;
    /// let socket = sockmux_core::Socket::connect_udp(peer.local_addr()?)?;
    /// assert_eq!(socket.peer_addr()?, peer.local_addr()?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn connect_udp(addr: impl ToSocketAddrs) -> io::Result<Socket> {
        let socket = each_addr(addr, |addr| {
            let any: SocketAddr = if addr.is_ipv4() {
                (Ipv4Addr::UNSPECIFIED, 0).into()
            } else {
                (Ipv6Addr::UNSPECIFIED, 0).into()
            };
            let socket = std::net::UdpSocket::bind(any)?;
            socket.connect(addr)?;
            Ok(socket)
        })?;
        socket.set_nonblocking(true)?;
        Ok(Inner::Udp(mio::net::UdpSocket::from_std(socket)).into())
    }

    /// A listening TCP socket with the [`DEFAULT_BACKLOG`]. On Unix,
    /// `SO_REUSEADDR` is set so a restarted server can rebind at once;
    /// Windows needs no such option (and its `SO_REUSEADDR` means something
    /// else), so none is set there.
    ///
    /// # Errors
    ///
    /// The OS error from the last address tried.
    ///
    /// # Examples
    ///
    /// ```
    /// let listener = sockmux_core::Socket::listen_tcp("127.0.0.1:0")?;
    /// let _client = std::net::TcpStream::connect(listener.local_addr()?)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn listen_tcp(addr: impl ToSocketAddrs) -> io::Result<Socket> {
        Socket::listen_tcp_with_backlog(addr, DEFAULT_BACKLOG)
    }

    /// [`listen_tcp`](Socket::listen_tcp) with a chosen backlog.
    ///
    /// # Errors
    ///
    /// The OS error from the last address tried.
    ///
    /// # Examples
    ///
    /// ```
    /// let listener = sockmux_core::Socket::listen_tcp_with_backlog("127.0.0.1:0", 16)?;
    /// assert_eq!(listener.kind(), "TCP listener");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn listen_tcp_with_backlog(addr: impl ToSocketAddrs, backlog: u32) -> io::Result<Socket> {
        let listener = each_addr(addr, |addr| {
            use socket2::{Domain, Protocol, Type};
            let socket =
                socket2::Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
            #[cfg(not(windows))]
            socket.set_reuse_address(true)?;
            socket.bind(&addr.into())?;
            socket.listen(i32::try_from(backlog).unwrap_or(i32::MAX))?;
            socket.set_nonblocking(true)?;
            Ok(std::net::TcpListener::from(socket))
        })?;
        Ok(Inner::TcpListener(mio::net::TcpListener::from_std(listener)).into())
    }

    /// Starts a TCP connection without blocking. Added to a table, the
    /// socket's first `Write` says the connection is established, and a
    /// failed connect raises one `Error` (and no `Read` or `Write`).
    ///
    /// Each resolved address is tried in turn until a connect *starts*; one
    /// that starts and then fails is reported by the table, not here.
    ///
    /// # Errors
    ///
    /// The OS error if no connect could even start (for the last address
    /// tried); `InvalidInput` if `addr` resolves to nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// let socket = sockmux_core::Socket::connect_tcp(listener.local_addr()?)?;
    /// assert_eq!(socket.kind(), "TCP stream");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn connect_tcp(addr: impl ToSocketAddrs) -> io::Result<Socket> {
        let stream = each_addr(addr, mio::net::TcpStream::connect)?;
        Ok(Inner::TcpConnecting(stream).into())
    }
}

fn no_address() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        "the address resolved to nothing",
    )
}

/// Tries `f` on each resolved address; the last error if none works.
fn each_addr<T>(
    addr: impl ToSocketAddrs,
    mut f: impl FnMut(SocketAddr) -> io::Result<T>,
) -> io::Result<T> {
    let mut last = None;
    for addr in addr.to_socket_addrs()? {
        match f(addr) {
            Ok(t) => return Ok(t),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(no_address))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A list of addresses whose first cannot even start a connect (an
    /// IPv6 link-local address without a scope: Linux answers `EINVAL` at
    /// once, sending nothing) still connects through the second.
    #[test]
    #[cfg(target_os = "linux")]
    fn connect_tcp_tries_each_address() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let good = listener.local_addr().unwrap();
        let bad: SocketAddr = "[fe80::1]:9".parse().unwrap();
        assert!(mio::net::TcpStream::connect(bad).is_err(), "fails at once");
        let socket = Socket::connect_tcp(&[bad, good][..]).unwrap();
        assert!(socket.into_entry().1, "connecting");
        listener.accept().unwrap();
    }

    #[test]
    fn nothing_to_try_is_invalid_input() {
        let none: &[SocketAddr] = &[];
        let e = Socket::connect_tcp(none).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        let e = Socket::bind_udp(none).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    }
}
