//! The I/O path: every read, write, receive and send through the table,
//! with the readiness bookkeeping that gives level semantics over mio's
//! edges (see the crate documentation).

use std::io::{self, IoSlice};
use std::net::{Shutdown, SocketAddr};

#[cfg(feature = "faults")]
use crate::hooks::Op;
use crate::ready::Ready;
use crate::socket::Inner;
use crate::table::{Entry, Queue, EOF};
use crate::{Interest, Socket, Table, Token};

/// Whether a short read or write on a stream proves it drained. True where
/// the poller is edge-triggered on the socket itself (epoll, kqueue): a new
/// arrival raises a new edge, so clearing early loses nothing and saves one
/// `WouldBlock` system call per request. On Windows, mio re-arms readiness
/// only after an operation answered `WouldBlock`.
const SHORT_IO_DRAINS: bool = cfg!(not(windows));

impl<D> Table<D> {
    /// Runs an I/O closure on a socket with the table's bookkeeping: a
    /// `WouldBlock` answer clears the readiness named by `interest` (so the
    /// event is not raised again until the OS reports a new edge), and
    /// `Interrupted` is retried. Use it for any call the table does not
    /// wrap (vectored I/O, `peek`, ancillary data, ...).
    ///
    /// # Errors
    ///
    /// `NotFound` for a stale token; whatever the closure returns.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_core::{Interest, Sockets};
    /// use std::io::ErrorKind;
    /// use std::mem::MaybeUninit;
    ///
    /// let mut sockets = Sockets::new()?;
    /// let t = sockets.bind_udp("127.0.0.1:0")?;
    /// let mut buf = [MaybeUninit::new(0u8); 8];
    /// // A peek, through socket2: the table does not wrap it.
    /// let peeked = sockets.io(t, Interest::READABLE, |socket| {
    ///     socket2::SockRef::from(&*socket).peek(&mut buf)
    /// });
    /// assert_eq!(peeked.unwrap_err().kind(), ErrorKind::WouldBlock);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn io<R>(
        &mut self,
        token: Token,
        interest: Interest,
        mut f: impl FnMut(&mut Socket) -> io::Result<R>,
    ) -> io::Result<R> {
        #[cfg(feature = "faults")]
        let mut call = self.begin(token, Op::Io, 0)?;
        let (entry, queue) = self.entry_and_queue(token)?;
        #[cfg(feature = "faults")]
        let mut f = |s: &mut Socket| call.run_io(|| f(s));
        let r = retry(entry, queue, Ready::from_interest(interest), |s| f(s))?;
        #[cfg(feature = "stats")]
        entry.stats.io_call(interest);
        Ok(r)
    }

    /// Reads from a stream (TCP or Unix). `Ok(0)` with a non-empty buffer is
    /// the clean end of the stream, never an error.
    ///
    /// A reset is never mistaken for an end: the table fetches a socket's
    /// error as soon as the OS reports it, after which the OS reads the
    /// stream as ended. So where the OS read answers 0 bytes, this call
    /// returns the error the table keeps instead, if it keeps one (once:
    /// the error is taken, and the socket's `Error` event, if not raised
    /// yet, is not raised). The bytes that came before the reset are read
    /// first.
    ///
    /// # Errors
    /// `WouldBlock` when nothing is there (readiness is cleared);
    /// `NotFound` for a stale token; `InvalidInput` for a socket that is not
    /// a stream; the OS error otherwise (e.g. `ConnectionReset`).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::Write;
    /// let mut sockets = sockmux_core::Sockets::new()?;
    /// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// let mut peer = std::net::TcpStream::connect(listener.local_addr()?)?;
    /// let t = sockets.add(listener.accept()?.0)?;
    /// peer.write_all(b"hello")?;
    /// drop(peer);
    /// let mut buf = [0; 16];
    /// let mut got = Vec::new();
    /// loop {
    ///     match sockets.read(t, &mut buf) {
    ///         Ok(0) => break, // end of stream
    ///         Ok(n) => got.extend_from_slice(&buf[..n]),
    ///         Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::yield_now(),
    ///         Err(e) => return Err(e),
    ///     }
    /// }
    /// assert_eq!(got, b"hello");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    // Always inlined: a call costs more than the bookkeeping it wraps.
    #[inline(always)]
    pub fn read(&mut self, token: Token, buf: &mut [u8]) -> io::Result<usize> {
        #[cfg(feature = "faults")]
        let mut call = self.begin(token, Op::Read, buf.len())?;
        #[cfg(feature = "faults")]
        let buf = &mut buf[..call.len()];
        let (entry, queue) = self.entry_and_queue(token)?;
        #[cfg(not(feature = "faults"))]
        let n = retry(entry, queue, Ready::READABLE, |s| s.read(buf))?;
        #[cfg(feature = "faults")]
        let n = retry(entry, queue, Ready::READABLE, |s| {
            call.run_read(buf, |b| s.read(b))
        })?;
        #[cfg(feature = "stats")]
        entry.stats.read(n);
        if n == 0 && !buf.is_empty() {
            // The end of the stream was read: report it no more. An error
            // the table keeps (a reset reported with the FIN) comes instead
            // of a clean end. No call here: this is the hot path's shape.
            entry.ready.remove(Ready::READABLE | Ready::READ_CLOSED);
            entry.state |= EOF;
            #[cfg(debug_assertions)]
            {
                entry.probe.undrained = false;
            }
            if let Some(e) = entry.error.take() {
                entry.error_new = false;
                return Err(e);
            }
        } else if SHORT_IO_DRAINS && n < buf.len() && !entry.ready.contains(Ready::READ_CLOSED) {
            // Short read: the receive buffer is empty (see SHORT_IO_DRAINS).
            // With the peer's FIN already seen, keep Read raised so that the
            // end of the stream is read too.
            entry.ready.remove(Ready::READABLE);
            queue.note_cleared(entry);
            #[cfg(debug_assertions)]
            {
                entry.probe.undrained = false;
            }
        }
        Ok(n)
    }

    /// Writes to a stream (TCP or Unix); may write only part of `buf`.
    ///
    /// # Errors
    ///
    /// `WouldBlock` when the send buffer is full (readiness is cleared);
    /// `NotFound` for a stale token; `InvalidInput` for a socket that is not
    /// a stream; the OS error otherwise (e.g. `BrokenPipe`).
    ///
    /// # Examples
    ///
    /// ```
    /// let mut sockets = sockmux_core::Sockets::new()?;
    /// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// let t = sockets.add(std::net::TcpStream::connect(listener.local_addr()?)?)?;
    /// assert_eq!(sockets.write(t, b"hi")?, 2);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    // Always inlined: a call costs more than the bookkeeping it wraps.
    #[inline(always)]
    pub fn write(&mut self, token: Token, buf: &[u8]) -> io::Result<usize> {
        #[cfg(feature = "faults")]
        let mut call = self.begin(token, Op::Write, buf.len())?;
        #[cfg(feature = "faults")]
        let buf = &buf[..call.len()];
        let (entry, queue) = self.entry_and_queue(token)?;
        #[cfg(not(feature = "faults"))]
        let n = retry(entry, queue, Ready::WRITABLE, |s| s.write(buf))?;
        #[cfg(feature = "faults")]
        let n = retry(entry, queue, Ready::WRITABLE, |s| call.run(|| s.write(buf)))?;
        #[cfg(feature = "stats")]
        entry.stats.wrote(n);
        if SHORT_IO_DRAINS && n < buf.len() {
            entry.ready.remove(Ready::WRITABLE);
            queue.note_cleared(entry);
        }
        Ok(n)
    }

    /// Writes several buffers to a stream with one system call.
    ///
    /// # Errors
    ///
    /// As [`write`](Table::write).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::IoSlice;
    /// let mut sockets = sockmux_core::Sockets::new()?;
    /// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// let t = sockets.add(std::net::TcpStream::connect(listener.local_addr()?)?)?;
    /// let n = sockets.write_vectored(t, &[IoSlice::new(b"he"), IoSlice::new(b"llo")])?;
    /// assert_eq!(n, 5);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn write_vectored(&mut self, token: Token, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        #[cfg(feature = "faults")]
        let (mut call, cut);
        #[cfg(feature = "faults")]
        let bufs = {
            let len = bufs.iter().map(|b| b.len()).sum();
            call = self.begin(token, Op::WriteVectored, len)?;
            cut = crate::hooks::cut_slices(bufs, call.len());
            &cut[..]
        };
        let (entry, queue) = self.entry_and_queue(token)?;
        #[cfg(not(feature = "faults"))]
        let n = retry(entry, queue, Ready::WRITABLE, |s| s.write_vectored(bufs))?;
        #[cfg(feature = "faults")]
        let n = retry(entry, queue, Ready::WRITABLE, |s| {
            call.run(|| s.write_vectored(bufs))
        })?;
        #[cfg(feature = "stats")]
        entry.stats.wrote(n);
        let len: usize = bufs.iter().map(|b| b.len()).sum();
        if SHORT_IO_DRAINS && n < len {
            entry.ready.remove(Ready::WRITABLE);
            queue.note_cleared(entry);
        }
        Ok(n)
    }

    /// Accepts one connection from a listener without adding it to this
    /// table: for a program that hands connections to another loop (on
    /// another thread), which adds it to its own table with
    /// [`Sockets::register`](crate::Sockets::register). The listener's
    /// readiness is kept as by [`Sockets::accept`](crate::Sockets::accept).
    ///
    /// # Errors
    ///
    /// `WouldBlock` when no connection waits; `NotFound` for a stale token;
    /// `InvalidInput` for a socket that is not a listener; the OS error
    /// otherwise (`EMFILE` and the like).
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_core::{Interest, Sockets};
    ///
    /// let mut sockets = Sockets::new()?;
    /// let listener = sockets.listen_tcp("127.0.0.1:0")?;
    /// let _client = std::net::TcpStream::connect(sockets.local_addr(listener)?)?;
    /// let conn = loop {
    ///     match sockets.accept_socket(listener) {
    ///         Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::yield_now(),
    ///         other => break other?,
    ///     }
    /// };
    /// // Another loop, on another thread, takes it.
    /// let other = std::thread::spawn(move || -> std::io::Result<usize> {
    ///     let mut sockets = Sockets::new()?;
    ///     sockets.register(conn, Interest::READABLE, ())?;
    ///     Ok(sockets.len())
    /// });
    /// assert_eq!(other.join().unwrap()?, 1);
    /// assert_eq!(sockets.len(), 1, "only the listener here");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn accept_socket(&mut self, listener: Token) -> io::Result<Socket> {
        #[cfg(feature = "faults")]
        let mut call = self.begin(listener, Op::Accept, 0)?;
        let (entry, queue) = self.entry_and_queue(listener)?;
        #[cfg(not(feature = "faults"))]
        let accept = Socket::accept;
        #[cfg(feature = "faults")]
        let accept = |s: &mut Socket| call.run_accept(|| s.accept());
        let socket = retry(entry, queue, Ready::READABLE, accept)?;
        #[cfg(feature = "stats")]
        entry.stats.read(0);
        Ok(socket)
    }

    /// Shuts down the read, write or both halves of a stream.
    ///
    /// # Errors
    ///
    /// `NotFound` for a stale token; `InvalidInput` for a socket that is not
    /// a stream; the OS error otherwise.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut sockets = sockmux_core::Sockets::new()?;
    /// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// let t = sockets.add(std::net::TcpStream::connect(listener.local_addr()?)?)?;
    /// sockets.shutdown(t, std::net::Shutdown::Write)?; // the peer reads end of stream
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn shutdown(&mut self, token: Token, how: Shutdown) -> io::Result<()> {
        let socket = &self.entry(token)?.socket;
        match &socket.inner {
            Inner::TcpStream(s) => s.shutdown(how),
            #[cfg(unix)]
            Inner::UnixStream(s) => s.shutdown(how),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("shutdown needs a stream socket, not a {}", socket.kind()),
            )),
        }
    }

    /// Receives one datagram on a UDP or Unix datagram socket. `Ok(0)` is an
    /// empty datagram, not an end.
    ///
    /// A datagram longer than `buf` fails the call with `InvalidData` on
    /// every platform (Unix would cut it to fit without a word, Windows fails
    /// with `WSAEMSGSIZE`): the datagram is dropped, `buf` holds its first
    /// `buf.len()` bytes, and the next call returns the next datagram.
    ///
    /// An ICMP report about an earlier datagram (port unreachable) is not
    /// this call's failure: the table keeps it for
    /// [`take_error`](Table::take_error) and raises one
    /// [`Event::Error`](crate::Event::Error), and the socket stays usable. On Linux only a
    /// connected UDP socket learns of it, through the poll; Windows hands it
    /// to the next receive or send on any UDP socket, connected or not, and
    /// there the table takes it and makes the call again.
    ///
    /// # Errors
    ///
    /// `WouldBlock` when no datagram is queued (readiness is cleared);
    /// `InvalidData` for a datagram longer than `buf`; `NotFound` for a
    /// stale token; `InvalidInput` for a socket that is not a datagram
    /// socket; the OS error otherwise (e.g. `ConnectionRefused` on Linux, on
    /// a connected UDP socket whose peer is gone, when the call comes before
    /// the poll that would have reported it).
    ///
    /// # Examples
    ///
    /// ```
    /// let mut sockets = sockmux_core::Sockets::new()?;
    /// let t = sockets.bind_udp("127.0.0.1:0")?;
    /// let e = sockets.recv(t, &mut [0; 8]).unwrap_err();
    /// assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// A datagram too long for the buffer, then one that fits:
    ///
    /// ```
    /// use std::io::ErrorKind;
    ///
    /// let mut sockets = sockmux_core::Sockets::new()?;
    /// let t = sockets.bind_udp("127.0.0.1:0")?;
    /// let peer = std::net::UdpSocket::bind("127.0.0.1:0")?;
    /// peer.send_to(b"too long", sockets.local_addr(t)?)?;
    /// peer.send_to(b"ok", sockets.local_addr(t)?)?;
    /// let mut buf = [0; 3];
    /// let mut recv = |buf: &mut [u8]| loop {
    ///     match sockets.recv(t, buf) {
    ///         Err(e) if e.kind() == ErrorKind::WouldBlock => std::thread::yield_now(),
    ///         other => break other,
    ///     }
    /// };
    /// assert_eq!(recv(&mut buf).unwrap_err().kind(), ErrorKind::InvalidData);
    /// assert_eq!(&buf, b"too");
    /// assert_eq!(recv(&mut buf)?, 2);
    /// assert_eq!(&buf[..2], b"ok");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn recv(&mut self, token: Token, buf: &mut [u8]) -> io::Result<usize> {
        #[cfg(feature = "faults")]
        let mut call = self.begin(token, Op::Recv, buf.len())?;
        let (entry, queue) = self.entry_and_queue(token)?;
        #[cfg(not(feature = "faults"))]
        let r = datagram_io(entry, queue, token, Ready::READABLE, |s| s.recv(buf));
        #[cfg(feature = "faults")]
        let r = datagram_io(entry, queue, token, Ready::READABLE, |s| {
            call.run_read(buf, |b| s.recv(b))
        });
        #[cfg(feature = "stats")]
        if let Ok(n) = &r {
            entry.stats.read(*n);
        }
        #[cfg(windows)]
        self.enqueue(token);
        r
    }

    /// Sends one datagram on a connected UDP or Unix datagram socket.
    ///
    /// On Windows, an ICMP report about an earlier datagram that surfaces
    /// here is taken as in [`recv`](Table::recv): kept, one
    /// [`Event::Error`](crate::Event::Error), and the send is made again.
    ///
    /// # Errors
    ///
    /// `WouldBlock` when the send buffer is full (readiness is cleared);
    /// `NotFound` for a stale token; `InvalidInput` for a socket that is not
    /// a datagram socket; the OS error otherwise (e.g. `ConnectionRefused`
    /// on Linux, before the poll that would have reported it).
    ///
    /// # Examples
    ///
    /// ```
    /// let mut sockets = sockmux_core::Sockets::new()?;
    /// let server = sockets.bind_udp("127.0.0.1:0")?;
    /// let client = sockets.connect_udp(sockets.local_addr(server)?)?;
    /// assert_eq!(sockets.send(client, b"0")?, 1);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn send(&mut self, token: Token, buf: &[u8]) -> io::Result<usize> {
        #[cfg(feature = "faults")]
        let mut call = self.begin(token, Op::Send, buf.len())?;
        let (entry, queue) = self.entry_and_queue(token)?;
        #[cfg(not(feature = "faults"))]
        let r = datagram_io(entry, queue, token, Ready::WRITABLE, |s| s.send(buf));
        #[cfg(feature = "faults")]
        let r = datagram_io(entry, queue, token, Ready::WRITABLE, |s| {
            call.run(|| s.send(buf))
        });
        #[cfg(feature = "stats")]
        if let Ok(n) = &r {
            entry.stats.wrote(*n);
        }
        #[cfg(windows)]
        self.enqueue(token);
        r
    }

    /// Receives one datagram on a UDP socket, with the sender's address.
    ///
    /// # Errors
    ///
    /// As [`recv`](Table::recv); `InvalidInput` for a non-UDP socket.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut sockets = sockmux_core::Sockets::new()?;
    /// let t = sockets.bind_udp("127.0.0.1:0")?;
    /// let peer = std::net::UdpSocket::bind("127.0.0.1:0")?;
    /// peer.send_to(b"x", sockets.local_addr(t)?)?;
    /// let mut buf = [0; 8];
    /// let (n, from) = loop {
    ///     match sockets.recv_from(t, &mut buf) {
    ///         Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::yield_now(),
    ///         other => break other?,
    ///     }
    /// };
    /// assert_eq!((n, from), (1, peer.local_addr()?));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn recv_from(&mut self, token: Token, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        #[cfg(feature = "faults")]
        let mut call = self.begin(token, Op::RecvFrom, buf.len())?;
        let (entry, queue) = self.entry_and_queue(token)?;
        #[cfg(not(feature = "faults"))]
        let r = datagram_io(entry, queue, token, Ready::READABLE, |s| s.recv_from(buf));
        #[cfg(feature = "faults")]
        let r = datagram_io(entry, queue, token, Ready::READABLE, |s| {
            call.run_recv_from(buf, |b| s.recv_from(b))
        });
        #[cfg(feature = "stats")]
        if let Ok((n, _)) = &r {
            entry.stats.read(*n);
        }
        #[cfg(windows)]
        self.enqueue(token);
        r
    }

    /// Sends one datagram from a UDP socket to `addr`.
    ///
    /// # Errors
    ///
    /// As [`send`](Table::send); `InvalidInput` for a non-UDP socket.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut sockets = sockmux_core::Sockets::new()?;
    /// let t = sockets.bind_udp("127.0.0.1:0")?;
    /// let peer = std::net::UdpSocket::bind("127.0.0.1:0")?;
    /// assert_eq!(sockets.send_to(t, b"hey", peer.local_addr()?)?, 3);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn send_to(&mut self, token: Token, buf: &[u8], addr: SocketAddr) -> io::Result<usize> {
        #[cfg(feature = "faults")]
        let mut call = self.begin(token, Op::SendTo, buf.len())?;
        let (entry, queue) = self.entry_and_queue(token)?;
        #[cfg(not(feature = "faults"))]
        let r = datagram_io(entry, queue, token, Ready::WRITABLE, |s| {
            s.send_to(buf, addr)
        });
        #[cfg(feature = "faults")]
        let r = datagram_io(entry, queue, token, Ready::WRITABLE, |s| {
            call.run(|| s.send_to(buf, addr))
        });
        #[cfg(feature = "stats")]
        if let Ok(n) = &r {
            entry.stats.wrote(*n);
        }
        #[cfg(windows)]
        self.enqueue(token);
        r
    }
}

/// Runs one I/O call on an entry: retries `Interrupted`, clears `clear` on
/// `WouldBlock`. The success path is inlined into every I/O call; errors
/// go through [`retry_failed`], out of line.
#[inline(always)]
fn retry<D, R>(
    entry: &mut Entry<D>,
    queue: &mut Queue,
    clear: Ready,
    mut f: impl FnMut(&mut Socket) -> io::Result<R>,
) -> io::Result<R> {
    match f(&mut entry.socket) {
        Ok(r) => {
            #[cfg(debug_assertions)]
            if clear.contains(Ready::READABLE) {
                entry.probe.untouched = false;
            }
            Ok(r)
        }
        Err(e) => retry_failed(entry, queue, clear, e, f),
    }
}

#[cold]
#[inline(never)]
fn retry_failed<D, R>(
    entry: &mut Entry<D>,
    queue: &mut Queue,
    clear: Ready,
    mut error: io::Error,
    mut f: impl FnMut(&mut Socket) -> io::Result<R>,
) -> io::Result<R> {
    #[cfg(debug_assertions)]
    if clear.contains(Ready::READABLE) {
        entry.probe.untouched = false;
    }
    loop {
        match error.kind() {
            io::ErrorKind::Interrupted => match f(&mut entry.socket) {
                Ok(r) => return Ok(r),
                Err(e) => error = e,
            },
            io::ErrorKind::WouldBlock => {
                #[cfg(feature = "stats")]
                entry.stats.would_block(clear);
                #[cfg(debug_assertions)]
                if clear.contains(Ready::READABLE) {
                    entry.probe.undrained = false;
                }
                entry.ready.remove(clear);
                queue.note_cleared(entry);
                return Err(error);
            }
            _ => return Err(error),
        }
    }
}

/// [`retry`] for the datagram calls. On Windows, an ICMP report about an
/// earlier datagram that a UDP socket returns from this call becomes the
/// socket's stored error (one `Error` event; the caller enqueues) and the
/// call is made again: Winsock hands such reports to whichever receive or
/// send comes next, and a server must not die of a client that went away.
fn datagram_io<D, R>(
    entry: &mut Entry<D>,
    queue: &mut Queue,
    token: Token,
    clear: Ready,
    f: impl FnMut(&mut Socket) -> io::Result<R>,
) -> io::Result<R> {
    #[cfg(windows)]
    let mut f = f;
    #[cfg(windows)]
    if matches!(entry.socket.inner, Inner::Udp(_)) {
        use crate::windows::{icmp_error, is_icmp_report, ICMP_REPORTS_PER_CALL};
        for _ in 1..ICMP_REPORTS_PER_CALL {
            match retry(entry, queue, clear, &mut f) {
                Err(e) if is_icmp_report(&e) => entry.set_error(token, icmp_error(e)),
                other => return other,
            }
        }
    }
    #[cfg(not(windows))]
    let _ = token;
    retry(entry, queue, clear, f)
}
