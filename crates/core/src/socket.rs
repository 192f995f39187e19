use std::io::{self, Read, Write};
use std::net::{self, SocketAddr};

use mio::event::Source;
use mio::net::{TcpListener, TcpStream, UdpSocket};
use mio::{Interest as MioInterest, Registry, Token as MioToken};

/// A socket held by the table.
///
/// The variants hold mio's non-blocking sockets; re-exporting them is the
/// honest choice, since they are what the OS is polled on. Reach one through
/// [`Sockets::socket`](crate::Sockets::socket) for queries such as
/// `local_addr` or socket options. Do I/O through the table's own calls
/// (`read`, `recv`, ..., or [`Sockets::io`](crate::Sockets::io)), which keep
/// the readiness bookkeeping right.
///
/// # Examples
///
/// ```
/// use sockmux_core::{Socket, Sockets};
///
/// let mut sockets = Sockets::new()?;
/// let t = sockets.bind_udp("127.0.0.1:0")?;
/// assert!(matches!(sockets.socket(t)?, Socket::Udp(_)));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum Socket {
    /// A UDP socket, bound or connected.
    Udp(UdpSocket),
    /// A listening TCP socket.
    TcpListener(TcpListener),
    /// A TCP connection (possibly still connecting).
    TcpStream(TcpStream),
    /// A listening Unix-domain stream socket.
    #[cfg(unix)]
    UnixListener(mio::net::UnixListener),
    /// A Unix-domain stream connection.
    #[cfg(unix)]
    UnixStream(mio::net::UnixStream),
    /// A Unix-domain datagram socket.
    #[cfg(unix)]
    UnixDatagram(mio::net::UnixDatagram),
}

/// What kind of socket an operation needed.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Need {
    Stream,
    Datagram,
    Udp,
    Listener,
}

impl Need {
    fn describe(self) -> &'static str {
        match self {
            Need::Stream => "a stream socket (TCP or Unix stream)",
            Need::Datagram => "a datagram socket (UDP or Unix datagram)",
            Need::Udp => "a UDP socket",
            Need::Listener => "a listening socket",
        }
    }
}

impl Socket {
    /// A short name of the socket's kind, for messages.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_core::Sockets;
    ///
    /// let mut sockets = Sockets::new()?;
    /// let t = sockets.listen_tcp("127.0.0.1:0")?;
    /// assert_eq!(sockets.socket(t)?.kind(), "TCP listener");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Socket::Udp(_) => "UDP socket",
            Socket::TcpListener(_) => "TCP listener",
            Socket::TcpStream(_) => "TCP stream",
            #[cfg(unix)]
            Socket::UnixListener(_) => "Unix listener",
            #[cfg(unix)]
            Socket::UnixStream(_) => "Unix stream",
            #[cfg(unix)]
            Socket::UnixDatagram(_) => "Unix datagram socket",
        }
    }

    /// The local address of an Internet socket.
    ///
    /// # Errors
    ///
    /// The OS error, or `InvalidInput` for a Unix-domain socket (use the
    /// socket's own `local_addr` for those).
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_core::Sockets;
    ///
    /// let mut sockets = Sockets::new()?;
    /// let t = sockets.bind_udp("127.0.0.1:0")?;
    /// assert!(sockets.socket(t)?.local_addr()?.port() != 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        match self {
            Socket::Udp(s) => s.local_addr(),
            Socket::TcpListener(s) => s.local_addr(),
            Socket::TcpStream(s) => s.local_addr(),
            #[cfg(unix)]
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a Unix-domain socket has no Internet address",
            )),
        }
    }

    /// The pending socket error (`SO_ERROR`), cleared by the call.
    pub(crate) fn take_os_error(&self) -> io::Result<Option<io::Error>> {
        match self {
            Socket::Udp(s) => s.take_error(),
            Socket::TcpListener(s) => s.take_error(),
            Socket::TcpStream(s) => s.take_error(),
            #[cfg(unix)]
            Socket::UnixListener(s) => s.take_error(),
            #[cfg(unix)]
            Socket::UnixStream(s) => s.take_error(),
            #[cfg(unix)]
            Socket::UnixDatagram(s) => s.take_error(),
        }
    }

    fn wrong_kind(&self, op: &str, need: Need) -> io::Error {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{op} needs {}, not a {}", need.describe(), self.kind()),
        )
    }

    #[inline]
    pub(crate) fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Socket::TcpStream(s) => s.read(buf),
            #[cfg(unix)]
            Socket::UnixStream(s) => s.read(buf),
            _ => Err(self.wrong_kind("read", Need::Stream)),
        }
    }

    #[inline]
    pub(crate) fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            // std's TcpStream already sends with MSG_NOSIGNAL.
            Socket::TcpStream(s) => s.write(buf),
            #[cfg(unix)]
            Socket::UnixStream(s) => nosigpipe::send(&*s, buf),
            _ => Err(self.wrong_kind("write", Need::Stream)),
        }
    }

    pub(crate) fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        match self {
            // writev(2) raises SIGPIPE on a closed peer: use sendmsg instead.
            #[cfg(unix)]
            Socket::TcpStream(s) => nosigpipe::send_vectored(&*s, bufs),
            #[cfg(not(unix))]
            Socket::TcpStream(s) => s.write_vectored(bufs),
            #[cfg(unix)]
            Socket::UnixStream(s) => nosigpipe::send_vectored(&*s, bufs),
            _ => Err(self.wrong_kind("write_vectored", Need::Stream)),
        }
    }

    pub(crate) fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Socket::Udp(s) => crate::datagram::recv(s, buf),
            #[cfg(unix)]
            Socket::UnixDatagram(s) => crate::datagram::recv(s, buf),
            _ => Err(self.wrong_kind("recv", Need::Datagram)),
        }
    }

    pub(crate) fn send(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Socket::Udp(s) => s.send(buf),
            #[cfg(unix)]
            Socket::UnixDatagram(s) => s.send(buf),
            _ => Err(self.wrong_kind("send", Need::Datagram)),
        }
    }

    pub(crate) fn recv_from(&mut self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        match self {
            Socket::Udp(s) => crate::datagram::recv_from(s, buf),
            _ => Err(self.wrong_kind("recv_from", Need::Udp)),
        }
    }

    pub(crate) fn send_to(&mut self, buf: &[u8], addr: SocketAddr) -> io::Result<usize> {
        match self {
            Socket::Udp(s) => s.send_to(buf, addr),
            _ => Err(self.wrong_kind("send_to", Need::Udp)),
        }
    }

    pub(crate) fn accept(&mut self) -> io::Result<Socket> {
        match self {
            Socket::TcpListener(s) => s.accept().map(|(s, _)| Socket::TcpStream(s)),
            #[cfg(unix)]
            Socket::UnixListener(s) => s.accept().map(|(s, _)| Socket::UnixStream(s)),
            _ => Err(self.wrong_kind("accept", Need::Listener)),
        }
    }

    pub(crate) fn peer_addr(&self) -> io::Result<SocketAddr> {
        match self {
            Socket::Udp(s) => s.peer_addr(),
            Socket::TcpStream(s) => s.peer_addr(),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("a {} has no Internet peer address", self.kind()),
            )),
        }
    }

    fn source(&mut self) -> &mut dyn Source {
        match self {
            Socket::Udp(s) => s,
            Socket::TcpListener(s) => s,
            Socket::TcpStream(s) => s,
            #[cfg(unix)]
            Socket::UnixListener(s) => s,
            #[cfg(unix)]
            Socket::UnixStream(s) => s,
            #[cfg(unix)]
            Socket::UnixDatagram(s) => s,
        }
    }
}

impl Source for Socket {
    fn register(
        &mut self,
        registry: &Registry,
        token: MioToken,
        interests: MioInterest,
    ) -> io::Result<()> {
        self.source().register(registry, token, interests)
    }

    fn reregister(
        &mut self,
        registry: &Registry,
        token: MioToken,
        interests: MioInterest,
    ) -> io::Result<()> {
        self.source().reregister(registry, token, interests)
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        self.source().deregister(registry)
    }
}

/// A socket the table can adopt: mio's sockets as they are, the standard
/// library's after switching them to non-blocking mode.
///
/// # Examples
///
/// ```
/// use sockmux_core::Sockets;
///
/// let mut sockets = Sockets::new()?;
/// let std_socket = std::net::UdpSocket::bind("127.0.0.1:0")?;
/// let t = sockets.add(std_socket)?; // set non-blocking, registered
/// assert!(sockets.contains(t));
/// # Ok::<(), std::io::Error>(())
/// ```
pub trait IntoSocket {
    /// Converts `self` into a non-blocking [`Socket`].
    ///
    /// # Errors
    ///
    /// The OS error from switching a standard socket to non-blocking mode.
    fn into_socket(self) -> io::Result<Socket>;
}

impl IntoSocket for Socket {
    fn into_socket(self) -> io::Result<Socket> {
        Ok(self)
    }
}

macro_rules! into_socket {
    ($variant:ident, $mio:ty, $std:ty) => {
        impl IntoSocket for $mio {
            fn into_socket(self) -> io::Result<Socket> {
                Ok(Socket::$variant(self))
            }
        }

        impl IntoSocket for $std {
            fn into_socket(self) -> io::Result<Socket> {
                self.set_nonblocking(true)?;
                Ok(Socket::$variant(<$mio>::from_std(self)))
            }
        }
    };
}

into_socket!(Udp, UdpSocket, net::UdpSocket);
into_socket!(TcpListener, TcpListener, net::TcpListener);
into_socket!(TcpStream, TcpStream, net::TcpStream);
#[cfg(unix)]
into_socket!(
    UnixListener,
    mio::net::UnixListener,
    std::os::unix::net::UnixListener
);
#[cfg(unix)]
into_socket!(
    UnixStream,
    mio::net::UnixStream,
    std::os::unix::net::UnixStream
);
#[cfg(unix)]
into_socket!(
    UnixDatagram,
    mio::net::UnixDatagram,
    std::os::unix::net::UnixDatagram
);

/// Stream writes that never raise SIGPIPE: a write to a closed peer must be
/// an `EPIPE` error, even in a process that restored SIGPIPE's default
/// action (which ends the process). Where `MSG_NOSIGNAL` exists it is passed
/// to `send`/`sendmsg`; elsewhere (Apple) std and mio set `SO_NOSIGPIPE`.
#[cfg(unix)]
mod nosigpipe {
    use std::io::{self, IoSlice};
    use std::os::fd::AsFd;

    #[cfg(not(target_vendor = "apple"))]
    const FLAGS: std::os::raw::c_int = libc::MSG_NOSIGNAL;
    #[cfg(target_vendor = "apple")]
    const FLAGS: std::os::raw::c_int = 0;

    pub(super) fn send(socket: &impl AsFd, buf: &[u8]) -> io::Result<usize> {
        socket2::SockRef::from(socket).send_with_flags(buf, FLAGS)
    }

    pub(super) fn send_vectored(socket: &impl AsFd, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        socket2::SockRef::from(socket).send_vectored_with_flags(bufs, FLAGS)
    }
}
