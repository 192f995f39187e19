use std::io::{self, Read, Write};
use std::net::{self, SocketAddr};

#[cfg(unix)]
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
#[cfg(windows)]
use std::os::windows::io::{AsRawSocket, AsSocket, BorrowedSocket, RawSocket};

use mio::event::Source;
use mio::net::{TcpListener, TcpStream, UdpSocket};

/// A socket held by the table: UDP, a TCP listener or stream, and on Unix
/// the three Unix-domain kinds.
///
/// It is opaque: the table polls it through mio, but no mio type is part of
/// the API. Reach it through [`Table::socket`](crate::Table::socket) for
/// queries; for socket options, borrow its descriptor (it implements
/// `AsFd`/`AsRawFd` on Unix, `AsSocket`/`AsRawSocket` on Windows), for
/// example with `socket2::SockRef::from(socket)`. Do I/O through the table's
/// own calls (`read`, `recv`, ..., or [`Table::io`](crate::Table::io)),
/// which keep the readiness bookkeeping right.
///
/// The constructors ([`bind_udp`](Socket::bind_udp),
/// [`listen_tcp`](Socket::listen_tcp), ...) open a socket without adding it
/// to a table; the table's methods of the same names open and add it.
///
/// # Examples
///
/// ```
/// use sockmux_core::Sockets;
///
/// let mut sockets = Sockets::new()?;
/// let t = sockets.bind_udp("127.0.0.1:0")?;
/// let socket = sockets.socket(t)?;
/// assert_eq!(socket.kind(), "UDP socket");
/// socket2::SockRef::from(socket).set_recv_buffer_size(1 << 20)?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct Socket {
    pub(crate) inner: Inner,
}

/// The mio socket behind a [`Socket`].
#[derive(Debug)]
pub(crate) enum Inner {
    Udp(UdpSocket),
    TcpListener(TcpListener),
    TcpStream(TcpStream),
    /// A TCP connect started by [`Socket::connect_tcp`], not yet in a table
    /// (which makes it a `TcpStream` and waits for the connect's outcome).
    /// A variant rather than a flag: a flag would make every table entry
    /// larger.
    TcpConnecting(TcpStream),
    #[cfg(unix)]
    UnixListener(mio::net::UnixListener),
    #[cfg(unix)]
    UnixStream(mio::net::UnixStream),
    #[cfg(unix)]
    UnixDatagram(mio::net::UnixDatagram),
}

impl From<Inner> for Socket {
    fn from(inner: Inner) -> Socket {
        Socket { inner }
    }
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
        match &self.inner {
            Inner::Udp(_) => "UDP socket",
            Inner::TcpListener(_) => "TCP listener",
            Inner::TcpStream(_) | Inner::TcpConnecting(_) => "TCP stream",
            #[cfg(unix)]
            Inner::UnixListener(_) => "Unix listener",
            #[cfg(unix)]
            Inner::UnixStream(_) => "Unix stream",
            #[cfg(unix)]
            Inner::UnixDatagram(_) => "Unix datagram socket",
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
        match &self.inner {
            Inner::Udp(s) => s.local_addr(),
            Inner::TcpListener(s) => s.local_addr(),
            Inner::TcpStream(s) | Inner::TcpConnecting(s) => s.local_addr(),
            #[cfg(unix)]
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a Unix-domain socket has no Internet address",
            )),
        }
    }

    /// The pending socket error (`SO_ERROR`), cleared by the call.
    pub(crate) fn take_os_error(&self) -> io::Result<Option<io::Error>> {
        match &self.inner {
            Inner::Udp(s) => s.take_error(),
            Inner::TcpListener(s) => s.take_error(),
            Inner::TcpStream(s) | Inner::TcpConnecting(s) => s.take_error(),
            #[cfg(unix)]
            Inner::UnixListener(s) => s.take_error(),
            #[cfg(unix)]
            Inner::UnixStream(s) => s.take_error(),
            #[cfg(unix)]
            Inner::UnixDatagram(s) => s.take_error(),
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
        match &mut self.inner {
            Inner::TcpStream(s) => s.read(buf),
            #[cfg(unix)]
            Inner::UnixStream(s) => s.read(buf),
            _ => Err(self.wrong_kind("read", Need::Stream)),
        }
    }

    #[inline]
    pub(crate) fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.inner {
            // std's TcpStream already sends with MSG_NOSIGNAL.
            Inner::TcpStream(s) => s.write(buf),
            #[cfg(unix)]
            Inner::UnixStream(s) => nosigpipe::send(&*s, buf),
            _ => Err(self.wrong_kind("write", Need::Stream)),
        }
    }

    pub(crate) fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        match &mut self.inner {
            // writev(2) raises SIGPIPE on a closed peer: use sendmsg instead.
            #[cfg(unix)]
            Inner::TcpStream(s) => nosigpipe::send_vectored(&*s, bufs),
            #[cfg(not(unix))]
            Inner::TcpStream(s) => s.write_vectored(bufs),
            #[cfg(unix)]
            Inner::UnixStream(s) => nosigpipe::send_vectored(&*s, bufs),
            _ => Err(self.wrong_kind("write_vectored", Need::Stream)),
        }
    }

    pub(crate) fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.inner {
            Inner::Udp(s) => crate::datagram::recv(s, buf),
            #[cfg(unix)]
            Inner::UnixDatagram(s) => crate::datagram::recv(s, buf),
            _ => Err(self.wrong_kind("recv", Need::Datagram)),
        }
    }

    pub(crate) fn send(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.inner {
            Inner::Udp(s) => s.send(buf),
            #[cfg(unix)]
            Inner::UnixDatagram(s) => s.send(buf),
            _ => Err(self.wrong_kind("send", Need::Datagram)),
        }
    }

    pub(crate) fn recv_from(&mut self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        match &mut self.inner {
            Inner::Udp(s) => crate::datagram::recv_from(s, buf),
            _ => Err(self.wrong_kind("recv_from", Need::Udp)),
        }
    }

    pub(crate) fn send_to(&mut self, buf: &[u8], addr: SocketAddr) -> io::Result<usize> {
        match &mut self.inner {
            Inner::Udp(s) => s.send_to(buf, addr),
            _ => Err(self.wrong_kind("send_to", Need::Udp)),
        }
    }

    pub(crate) fn accept(&mut self) -> io::Result<Socket> {
        match &mut self.inner {
            Inner::TcpListener(s) => s.accept().map(|(s, _)| Inner::TcpStream(s).into()),
            #[cfg(unix)]
            Inner::UnixListener(s) => s.accept().map(|(s, _)| Inner::UnixStream(s).into()),
            _ => Err(self.wrong_kind("accept", Need::Listener)),
        }
    }

    /// The peer address of a connected TCP stream or UDP socket.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a socket kind with no Internet peer;
    /// `NotConnected` when there is none; the OS error otherwise.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_core::Socket;
    ///
    /// let peer = std::net::UdpSocket::bind("127.0.0.1:0")?;
    /// let socket = Socket::connect_udp(peer.local_addr()?)?;
    /// assert_eq!(socket.peer_addr()?, peer.local_addr()?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        match &self.inner {
            Inner::Udp(s) => s.peer_addr(),
            Inner::TcpStream(s) | Inner::TcpConnecting(s) => s.peer_addr(),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("a {} has no Internet peer address", self.kind()),
            )),
        }
    }

    /// The socket as a table keeps it, and whether a TCP connect is still
    /// under way on it.
    pub(crate) fn into_entry(self) -> (Socket, bool) {
        match self.inner {
            Inner::TcpConnecting(s) => (Inner::TcpStream(s).into(), true),
            inner => (inner.into(), false),
        }
    }

    pub(crate) fn source(&mut self) -> &mut dyn Source {
        match &mut self.inner {
            Inner::Udp(s) => s,
            Inner::TcpListener(s) => s,
            Inner::TcpStream(s) | Inner::TcpConnecting(s) => s,
            #[cfg(unix)]
            Inner::UnixListener(s) => s,
            #[cfg(unix)]
            Inner::UnixStream(s) => s,
            #[cfg(unix)]
            Inner::UnixDatagram(s) => s,
        }
    }
}

/// A socket the table can adopt: the standard library's sockets, switched
/// to non-blocking mode, and a [`Socket`] made by its constructors.
///
/// A socket from elsewhere (another library, a descriptor inherited from a
/// parent process, `socket2`) comes in through the standard library type of
/// its kind: `std::net::TcpStream::from(owned_fd)` on Unix, `from(owned_socket)`
/// on Windows, or `socket2::Socket::into()`.
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
        impl IntoSocket for $std {
            fn into_socket(self) -> io::Result<Socket> {
                self.set_nonblocking(true)?;
                Ok(Inner::$variant(<$mio>::from_std(self)).into())
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

/// The descriptor of the socket, for socket options and queries (with
/// `socket2::SockRef`, say). I/O on it bypasses the table's bookkeeping.
#[cfg(unix)]
impl AsFd for Socket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match &self.inner {
            Inner::Udp(s) => s.as_fd(),
            Inner::TcpListener(s) => s.as_fd(),
            Inner::TcpStream(s) | Inner::TcpConnecting(s) => s.as_fd(),
            Inner::UnixListener(s) => s.as_fd(),
            Inner::UnixStream(s) => s.as_fd(),
            Inner::UnixDatagram(s) => s.as_fd(),
        }
    }
}

/// As [`AsFd`].
#[cfg(unix)]
impl AsRawFd for Socket {
    fn as_raw_fd(&self) -> RawFd {
        self.as_fd().as_raw_fd()
    }
}

/// The socket handle, for socket options and queries (with
/// `socket2::SockRef`, say). I/O on it bypasses the table's bookkeeping.
#[cfg(windows)]
impl AsSocket for Socket {
    fn as_socket(&self) -> BorrowedSocket<'_> {
        match &self.inner {
            Inner::Udp(s) => s.as_socket(),
            Inner::TcpListener(s) => s.as_socket(),
            Inner::TcpStream(s) | Inner::TcpConnecting(s) => s.as_socket(),
        }
    }
}

/// As [`AsSocket`].
#[cfg(windows)]
impl AsRawSocket for Socket {
    fn as_raw_socket(&self) -> RawSocket {
        self.as_socket().as_raw_socket()
    }
}

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
