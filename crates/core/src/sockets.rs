use std::fmt;
use std::io::{self, IoSlice};
use std::net::{Shutdown, SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

use log::{debug, trace};
use slab::Slab;

use crate::ready::Ready;
#[cfg(test)]
use crate::selector::Selector;
use crate::selector::{MioSelector, Poller, RawEvent};
use crate::signal::Watch;
use crate::socket::IntoSocket;
use crate::timer::Timers;
use crate::waker::{channel, Receiver, Sender};
use crate::{Event, Events, Interest, Mode, Signal, Socket, TimerId, Token, Waker};

/// Default listen backlog: the kernel caps it (Linux `somaxconn`, 4096 on
/// current kernels); mio's own default of 128 makes bursts of connects slow.
/// [`Sockets::listen_tcp`] uses it; [`Sockets::listen_tcp_with_backlog`]
/// takes another.
///
/// ```
/// assert!(sockmux_core::DEFAULT_BACKLOG >= 1024);
/// ```
pub const DEFAULT_BACKLOG: u32 = 4096;

/// Whether a short read or write on a stream proves it drained. True where
/// the poller is edge-triggered on the socket itself (epoll, kqueue): a new
/// arrival raises a new edge, so clearing early loses nothing and saves one
/// `WouldBlock` system call per request. On Windows, mio re-arms readiness
/// only after an operation answered `WouldBlock`.
const SHORT_IO_DRAINS: bool = cfg!(not(windows));

/// mio tokens outside the slab's range (slab keys fit in u32).
pub(crate) const WAKE_KEY: usize = usize::MAX;
#[cfg(unix)]
const SIGNAL_KEY: usize = usize::MAX - 1;

/// [`Entry::state`]: a TCP connect not yet completed or failed.
const CONNECTING: u8 = 1;
/// [`Entry::state`]: the end of the stream was read. A later read-closed
/// report repeats it (epoll's edges carry every ready bit, and mio on
/// Windows may report the FIN again) and raises no `Read`.
const EOF: u8 = 2;

/// One socket in the table.
struct Entry<D> {
    socket: Socket,
    data: D,
    generation: u32,
    interest: Interest,
    mode: Mode,
    /// READABLE / WRITABLE as the table believes them; READ_CLOSED sticks
    /// until the end of the stream has been read. On Windows, WRITE_CLOSED
    /// sticks once a reset has been reported.
    ready: Ready,
    /// Kinds already delivered in a round that the event buffer cut short.
    skip: Ready,
    /// In the ready queue.
    queued: bool,
    /// [`CONNECTING`] and [`EOF`], in one byte so that the OS report of an
    /// established socket is told from the rare cases with one test.
    state: u8,
    error: Option<io::Error>,
    /// `error` not yet reported as an `Error` event.
    error_new: bool,
}

impl<D> Entry<D> {
    fn token(&self, key: usize) -> Token {
        // Keys are checked to fit in u32 at insertion.
        Token::new(key as u32, self.generation)
    }

    /// The kinds of event this entry would raise now. Bit operations only:
    /// it runs several times per event.
    #[inline]
    fn reportable(&self) -> Ready {
        // from_interest has only READABLE/WRITABLE bits: READ_CLOSED drops.
        let io = self.ready & Ready::from_interest(self.interest);
        if self.error_new {
            io | Ready::ERROR
        } else {
            io
        }
    }

    fn set_error(&mut self, token: Token, error: io::Error) {
        debug!("{token}: error: {error}");
        self.error = Some(error);
        self.error_new = true;
    }
}

/// The socket table: sockets in a slab, named by generational [`Token`]s,
/// whose OS readiness becomes [`Event`] values.
///
/// `D` is per-socket user data (`()` by default), reached with
/// [`data`](Sockets::data) and [`data_mut`](Sockets::data_mut).
///
/// # Examples
///
/// The sketch's loop: poll, then `match` each event with guards and call back
/// into the table in the same loop body.
///
/// ```
/// use sockmux_core::{Event, Events, Interest, Sockets};
/// use std::time::Duration;
///
/// let mut sockets = Sockets::new()?;
/// let server = sockets.bind_udp("127.0.0.1:0")?;
/// let client = sockets.connect_udp(sockets.local_addr(server)?)?;
/// sockets.set_interest(client, Interest::WRITABLE)?;
///
/// let mut events = Events::with_capacity(64);
/// let (mut sent, mut received) = (0, 0);
/// while received < 3 {
///     sockets.poll(&mut events, Some(Duration::from_secs(5)))?;
///     for event in &events {
///         match event {
///             Event::Write(t) if t == client => {
///                 sockets.send(t, format!("{sent}").as_bytes())?;
///                 sent += 1;
///                 if sent == 3 {
///                     sockets.remove(t)?;
///                 }
///             }
///             Event::Read(t) if t == server => match sockets.recv(t, &mut [0; 64]) {
///                 Ok(_) => received += 1,
///                 // Level semantics: the read that finds nothing re-arms.
///                 Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
///                 Err(e) => return Err(e),
///             },
///             _ => {}
///         }
///     }
/// }
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Sockets<D = ()> {
    slab: Slab<Entry<D>>,
    /// Generation of every slot ever used, indexed by key.
    generations: Vec<u32>,
    /// Sockets that may have readiness left to report (O(ready) polling),
    /// in delivery order. A socket stays in it after its events are
    /// delivered, until a poll finds it has nothing left to report; an
    /// entry's `queued` flag says whether its token is in it.
    queue: Vec<Token>,
    selector: Poller,
    timers: Timers,
    /// The loop's one mio waker, made on first use and shared.
    waker: Option<Waker>,
    /// A wake-up not yet delivered.
    woken: bool,
    signals: Option<Watch>,
    /// Watched signals that arrived and are not yet delivered, as bits.
    signals_pending: u8,
}

impl Sockets<()> {
    /// An empty table without per-socket data.
    ///
    /// # Errors
    ///
    /// The OS error from creating the poller (epoll, kqueue, IOCP).
    ///
    /// # Examples
    ///
    /// ```
    /// let sockets = sockmux_core::Sockets::new()?;
    /// assert!(sockets.is_empty());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new() -> io::Result<Sockets<()>> {
        Sockets::with_capacity(0)
    }
}

impl<D> Sockets<D> {
    /// An empty table with room for `capacity` sockets before it grows; name
    /// `D` here to keep user data per socket.
    ///
    /// # Errors
    ///
    /// The OS error from creating the poller.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_core::Sockets;
    ///
    /// let mut sockets = Sockets::<String>::with_capacity(16)?;
    /// let t = sockets.insert(
    ///     std::net::UdpSocket::bind("127.0.0.1:0")?,
    ///     sockmux_core::Interest::READABLE,
    ///     "the server".to_string(),
    /// )?;
    /// assert_eq!(sockets.data(t)?, "the server");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn with_capacity(capacity: usize) -> io::Result<Sockets<D>> {
        Ok(Sockets::with_poller(
            Poller::Mio(MioSelector::new()?),
            capacity,
        ))
    }

    /// A table over a test selector (see `fault_tests`).
    #[cfg(test)]
    pub(crate) fn with_selector(selector: Box<dyn Selector>, capacity: usize) -> Sockets<D> {
        Sockets::with_poller(Poller::Seam(selector), capacity)
    }

    fn with_poller(selector: Poller, capacity: usize) -> Sockets<D> {
        Sockets {
            slab: Slab::with_capacity(capacity),
            generations: Vec::with_capacity(capacity),
            queue: Vec::with_capacity(capacity.max(64)),
            selector,
            timers: Timers::default(),
            waker: None,
            woken: false,
            signals: None,
            signals_pending: 0,
        }
    }

    /// Registers a socket with an interest and user data; returns its token.
    ///
    /// The socket is registered with the OS once, for both directions;
    /// interest is the table's filter and can change at no cost.
    ///
    /// # Errors
    ///
    /// The OS error from registration or from making a standard socket
    /// non-blocking; `OutOfMemory` past 2^32 sockets. The socket is closed.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_core::{Interest, Sockets};
    ///
    /// let mut sockets = Sockets::new()?;
    /// let socket = mio::net::UdpSocket::bind("127.0.0.1:0".parse().unwrap())?;
    /// let t = sockets.insert(socket, Interest::BOTH, ())?;
    /// assert_eq!(sockets.interest(t)?, Interest::BOTH);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn insert<S: IntoSocket>(
        &mut self,
        socket: S,
        interest: Interest,
        data: D,
    ) -> io::Result<Token> {
        self.insert_socket(socket.into_socket()?, interest, data, false)
    }

    fn insert_socket(
        &mut self,
        mut socket: Socket,
        interest: Interest,
        data: D,
        connecting: bool,
    ) -> io::Result<Token> {
        let vacant = self.slab.vacant_entry();
        let key = vacant.key();
        let key32 = u32::try_from(key)
            .map_err(|_| io::Error::new(io::ErrorKind::OutOfMemory, "the socket table is full"))?;
        if self.generations.len() <= key {
            self.generations.resize(key + 1, 0);
        }
        let generation = self.generations[key];
        self.selector.register(&mut socket, key)?;
        let token = Token::new(key32, generation);
        debug!("{token}: register {} {interest:?}", socket.kind());
        vacant.insert(Entry {
            socket,
            data,
            generation,
            interest,
            mode: Mode::Level,
            ready: Ready::EMPTY,
            skip: Ready::EMPTY,
            queued: false,
            state: if connecting { CONNECTING } else { 0 },
            error: None,
            error_new: false,
        });
        Ok(token)
    }

    /// Removes a socket from the table and hands it back with its data;
    /// dropping the socket closes it. The token becomes stale at once: events
    /// for it still in the caller's buffer are rejected by every call, and
    /// none is raised again.
    ///
    /// # Errors
    ///
    /// `NotFound` for a stale or unknown token.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut sockets = sockmux_core::Sockets::new()?;
    /// let t = sockets.bind_udp("127.0.0.1:0")?;
    /// let (socket, ()) = sockets.remove(t)?;
    /// drop(socket); // closed
    /// assert_eq!(sockets.remove(t).unwrap_err().kind(), std::io::ErrorKind::NotFound);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn remove(&mut self, token: Token) -> io::Result<(Socket, D)> {
        self.entry(token)?;
        let mut entry = self.slab.remove(token.key());
        if let Err(e) = self.selector.deregister(&mut entry.socket) {
            debug!("{token}: deregister failed: {e}");
        }
        let generation = &mut self.generations[token.key()];
        *generation = generation.wrapping_add(1);
        debug!("{token}: removed {}", entry.socket.kind());
        Ok((entry.socket, entry.data))
    }

    /// Whether `token` names a socket in the table (it is not stale).
    ///
    /// # Examples
    ///
    /// ```
    /// let mut sockets = sockmux_core::Sockets::new()?;
    /// let t = sockets.bind_udp("127.0.0.1:0")?;
    /// assert!(sockets.contains(t));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[must_use]
    pub fn contains(&self, token: Token) -> bool {
        self.entry(token).is_ok()
    }

    /// How many sockets the table holds.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut sockets = sockmux_core::Sockets::new()?;
    /// sockets.bind_udp("127.0.0.1:0")?;
    /// assert_eq!(sockets.len(), 1);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[must_use]
    pub fn len(&self) -> usize {
        self.slab.len()
    }

    /// Whether the table holds no socket.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(sockmux_core::Sockets::new()?.is_empty());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.slab.is_empty()
    }

    /// The tokens of every socket in the table, in key order.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut sockets = sockmux_core::Sockets::new()?;
    /// let a = sockets.bind_udp("127.0.0.1:0")?;
    /// let b = sockets.bind_udp("127.0.0.1:0")?;
    /// assert_eq!(sockets.tokens().collect::<Vec<_>>(), [a, b]);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn tokens(&self) -> impl Iterator<Item = Token> + '_ {
        self.slab.iter().map(|(key, entry)| entry.token(key))
    }

    fn entry(&self, token: Token) -> io::Result<&Entry<D>> {
        match self.slab.get(token.key()) {
            Some(entry) if entry.generation == token.generation() => Ok(entry),
            _ => Err(stale(token)),
        }
    }

    fn entry_mut(&mut self, token: Token) -> io::Result<&mut Entry<D>> {
        match self.slab.get_mut(token.key()) {
            Some(entry) if entry.generation == token.generation() => Ok(entry),
            _ => Err(stale(token)),
        }
    }

    /// The socket behind a token, for queries and socket options.
    ///
    /// # Errors
    ///
    /// `NotFound` for a stale or unknown token.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut sockets = sockmux_core::Sockets::new()?;
    /// let t = sockets.bind_udp("127.0.0.1:0")?;
    /// assert_eq!(sockets.socket(t)?.kind(), "UDP socket");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn socket(&self, token: Token) -> io::Result<&Socket> {
        Ok(&self.entry(token)?.socket)
    }

    /// The user data of a socket.
    ///
    /// # Errors
    ///
    /// `NotFound` for a stale or unknown token.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut sockets = sockmux_core::Sockets::<u32>::with_capacity(1)?;
    /// let t = sockets.insert(std::net::UdpSocket::bind("127.0.0.1:0")?,
    ///     sockmux_core::Interest::READABLE, 7)?;
    /// assert_eq!(*sockets.data(t)?, 7);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn data(&self, token: Token) -> io::Result<&D> {
        Ok(&self.entry(token)?.data)
    }

    /// The user data of a socket, mutably.
    ///
    /// # Errors
    ///
    /// `NotFound` for a stale or unknown token.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut sockets = sockmux_core::Sockets::<u32>::with_capacity(1)?;
    /// let t = sockets.bind_udp("127.0.0.1:0")?;
    /// *sockets.data_mut(t)? += 1;
    /// assert_eq!(*sockets.data(t)?, 1);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn data_mut(&mut self, token: Token) -> io::Result<&mut D> {
        Ok(&mut self.entry_mut(token)?.data)
    }

    /// The local address of an Internet socket (for guards such as "the
    /// socket on port 9876", as in the sketch).
    ///
    /// # Errors
    ///
    /// `NotFound` for a stale token; `InvalidInput` for a Unix socket; the
    /// OS error otherwise.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut sockets = sockmux_core::Sockets::new()?;
    /// let t = sockets.bind_udp("127.0.0.1:0")?;
    /// assert!(sockets.local_addr(t)?.ip().is_loopback());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn local_addr(&self, token: Token) -> io::Result<SocketAddr> {
        self.entry(token)?.socket.local_addr()
    }

    /// The peer address of a connected TCP stream or UDP socket.
    ///
    /// # Errors
    ///
    /// `NotFound` for a stale token; `InvalidInput` for a socket kind with no
    /// Internet peer; `NotConnected` when there is none.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut sockets = sockmux_core::Sockets::new()?;
    /// let server = sockets.bind_udp("127.0.0.1:0")?;
    /// let addr = sockets.local_addr(server)?;
    /// let client = sockets.connect_udp(addr)?;
    /// assert_eq!(sockets.peer_addr(client)?, addr);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn peer_addr(&self, token: Token) -> io::Result<SocketAddr> {
        self.entry(token)?.socket.peer_addr()
    }

    /// The interest of a socket.
    ///
    /// # Errors
    ///
    /// `NotFound` for a stale or unknown token.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_core::Interest;
    /// let mut sockets = sockmux_core::Sockets::new()?;
    /// let t = sockets.bind_udp("127.0.0.1:0")?;
    /// assert_eq!(sockets.interest(t)?, Interest::READABLE);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn interest(&self, token: Token) -> io::Result<Interest> {
        Ok(self.entry(token)?.interest)
    }

    /// Changes which events a socket raises. No system call: readiness the
    /// table already knows of is reported by the next poll when the new
    /// interest covers it.
    ///
    /// # Errors
    ///
    /// `NotFound` for a stale or unknown token.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_core::{Event, Events, Interest, Sockets};
    /// use std::time::Duration;
    ///
    /// let mut sockets = Sockets::new()?;
    /// let t = sockets.bind_udp("127.0.0.1:0")?;
    /// sockets.set_interest(t, Interest::WRITABLE)?; // "I have data to send"
    /// let mut events = Events::with_capacity(4);
    /// sockets.poll(&mut events, Some(Duration::from_secs(5)))?;
    /// assert_eq!(events.iter().next(), Some(Event::Write(t)));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_interest(&mut self, token: Token, interest: Interest) -> io::Result<()> {
        let entry = self.entry_mut(token)?;
        entry.interest = interest;
        trace!("{token}: interest {interest:?}");
        self.enqueue(token);
        Ok(())
    }

    /// The readiness mode of a socket.
    ///
    /// # Errors
    ///
    /// `NotFound` for a stale or unknown token.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut sockets = sockmux_core::Sockets::new()?;
    /// let t = sockets.bind_udp("127.0.0.1:0")?;
    /// assert_eq!(sockets.mode(t)?, sockmux_core::Mode::Level);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn mode(&self, token: Token) -> io::Result<Mode> {
        Ok(self.entry(token)?.mode)
    }

    /// Switches a socket between level (default) and edge reporting.
    ///
    /// # Errors
    ///
    /// `NotFound` for a stale or unknown token.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_core::Mode;
    /// let mut sockets = sockmux_core::Sockets::new()?;
    /// let t = sockets.bind_udp("127.0.0.1:0")?;
    /// sockets.set_mode(t, Mode::Edge)?;
    /// assert_eq!(sockets.mode(t)?, Mode::Edge);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_mode(&mut self, token: Token, mode: Mode) -> io::Result<()> {
        self.entry_mut(token)?.mode = mode;
        Ok(())
    }

    /// Hands back the error behind an `Error` event, or else the socket's
    /// pending OS error (`SO_ERROR`); `None` when there is none.
    ///
    /// # Errors
    ///
    /// `NotFound` for a stale or unknown token; the OS error from asking.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut sockets = sockmux_core::Sockets::new()?;
    /// let t = sockets.bind_udp("127.0.0.1:0")?;
    /// assert!(sockets.take_error(t)?.is_none());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn take_error(&mut self, token: Token) -> io::Result<Option<io::Error>> {
        let entry = self.entry_mut(token)?;
        entry.error_new = false;
        match entry.error.take() {
            Some(e) => Ok(Some(e)),
            None => entry.socket.take_os_error(),
        }
    }

    fn enqueue(&mut self, token: Token) {
        if let Some(entry) = self.slab.get_mut(token.key()) {
            enqueue(&mut self.queue, entry, token);
        }
    }

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
    /// use sockmux_core::{Interest, Socket, Sockets};
    /// use std::io::ErrorKind;
    ///
    /// let mut sockets = Sockets::new()?;
    /// let t = sockets.bind_udp("127.0.0.1:0")?;
    /// let peeked = sockets.io(t, Interest::READABLE, |socket| match socket {
    ///     Socket::Udp(udp) => udp.peek(&mut [0; 8]),
    ///     _ => unreachable!("t is a UDP socket"),
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
        let entry = self.entry_mut(token)?;
        retry(entry, Ready::from_interest(interest), |s| f(s))
    }

    /// Reads from a stream (TCP or Unix). `Ok(0)` with a non-empty buffer is
    /// the end of the stream, never an error.
    ///
    /// # Errors
    ///
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
        let entry = self.entry_mut(token)?;
        let n = retry(entry, Ready::READABLE, |s| s.read(buf))?;
        if n == 0 && !buf.is_empty() {
            // The end of the stream was read: report it no more.
            entry.ready.remove(Ready::READABLE | Ready::READ_CLOSED);
            entry.state |= EOF;
        } else if SHORT_IO_DRAINS && n < buf.len() && !entry.ready.contains(Ready::READ_CLOSED) {
            // Short read: the receive buffer is empty (see SHORT_IO_DRAINS).
            // With the peer's FIN already seen, keep Read raised so that the
            // end of the stream is read too.
            entry.ready.remove(Ready::READABLE);
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
        let entry = self.entry_mut(token)?;
        let n = retry(entry, Ready::WRITABLE, |s| s.write(buf))?;
        if SHORT_IO_DRAINS && n < buf.len() {
            entry.ready.remove(Ready::WRITABLE);
        }
        Ok(n)
    }

    /// Writes several buffers to a stream with one system call.
    ///
    /// # Errors
    ///
    /// As [`write`](Sockets::write).
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
        let entry = self.entry_mut(token)?;
        let n = retry(entry, Ready::WRITABLE, |s| s.write_vectored(bufs))?;
        let len: usize = bufs.iter().map(|b| b.len()).sum();
        if SHORT_IO_DRAINS && n < len {
            entry.ready.remove(Ready::WRITABLE);
        }
        Ok(n)
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
        match &self.entry(token)?.socket {
            Socket::TcpStream(s) => s.shutdown(how),
            #[cfg(unix)]
            Socket::UnixStream(s) => s.shutdown(how),
            other => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("shutdown needs a stream socket, not a {}", other.kind()),
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
    /// [`take_error`](Sockets::take_error) and raises one
    /// [`Event::Error`], and the socket stays usable. On Linux only a
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
        let entry = self.entry_mut(token)?;
        let r = datagram_io(entry, token, Ready::READABLE, |s| s.recv(buf));
        #[cfg(windows)]
        self.enqueue(token);
        r
    }

    /// Sends one datagram on a connected UDP or Unix datagram socket.
    ///
    /// On Windows, an ICMP report about an earlier datagram that surfaces
    /// here is taken as in [`recv`](Sockets::recv): kept, one
    /// [`Event::Error`], and the send is made again.
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
        let entry = self.entry_mut(token)?;
        let r = datagram_io(entry, token, Ready::WRITABLE, |s| s.send(buf));
        #[cfg(windows)]
        self.enqueue(token);
        r
    }

    /// Receives one datagram on a UDP socket, with the sender's address.
    ///
    /// # Errors
    ///
    /// As [`recv`](Sockets::recv); `InvalidInput` for a non-UDP socket.
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
        let entry = self.entry_mut(token)?;
        let r = datagram_io(entry, token, Ready::READABLE, |s| s.recv_from(buf));
        #[cfg(windows)]
        self.enqueue(token);
        r
    }

    /// Sends one datagram from a UDP socket to `addr`.
    ///
    /// # Errors
    ///
    /// As [`send`](Sockets::send); `InvalidInput` for a non-UDP socket.
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
        let entry = self.entry_mut(token)?;
        let r = datagram_io(entry, token, Ready::WRITABLE, |s| s.send_to(buf, addr));
        #[cfg(windows)]
        self.enqueue(token);
        r
    }

    /// Waits for readiness and fills `events` with at most its capacity;
    /// returns how many were delivered (0 only on timeout).
    ///
    /// `None` waits until something is ready; `Some(d)` returns within `d`
    /// (plus scheduling slack). When a socket is still ready from earlier
    /// (level mode) the poll does not sleep. An interrupted wait (`EINTR`)
    /// is retried with the time left, and so is a wait that ended on OS
    /// reports that raise no event (readiness outside a socket's interest).
    ///
    /// # Errors
    ///
    /// The OS error from the poller (never `Interrupted`).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let mut sockets = sockmux_core::Sockets::new()?;
    /// let mut events = sockmux_core::Events::with_capacity(8);
    /// let n = sockets.poll(&mut events, Some(Duration::from_millis(1)))?;
    /// assert_eq!(n, 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn poll(&mut self, events: &mut Events, timeout: Option<Duration>) -> io::Result<usize> {
        events.clear();
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        loop {
            let left = match deadline {
                Some(deadline) => Some(deadline.saturating_duration_since(Instant::now())),
                None => timeout, // forever, or too far away to add
            };
            let reports = self.poll_once(events, left)?;
            // OS reports that raised no event (readiness nobody asked for;
            // on Windows every `WouldBlock` re-arms a socket and mio reports
            // its whole state again) do not end the wait: 0 events means
            // that the timeout passed.
            if !events.is_empty() || reports == 0 || left == Some(Duration::ZERO) {
                return Ok(events.len());
            }
            trace!("{reports} os reports raised no event: waiting on");
        }
    }

    /// One wait for readiness; returns the number of OS reports.
    fn poll_once(&mut self, events: &mut Events, timeout: Option<Duration>) -> io::Result<usize> {
        let pending = self.prune_queue() || self.woken || self.signals_pending != 0;
        let timeout = if pending {
            Some(Duration::ZERO)
        } else {
            self.timer_timeout(timeout)
        };
        // Straight delivery (see `apply`) only when no socket waits in the
        // queue and nothing special is known to be due: then the order of
        // the OS reports is the queue's order and nothing is overtaken.
        let direct = !pending && timeout != Some(Duration::ZERO);
        let (reports, delivered) = self.select(timeout, events, direct)?;
        let before = events.len();
        self.emit_special(events);
        let specials = events.len() - before;
        if delivered > 0 && specials > 0 {
            // Wake-ups, signals and timers that came due during the wait
            // still go in front of the sockets delivered straight.
            events.move_last_to_front(specials);
        }
        self.emit(events, delivered);
        Ok(reports)
    }

    /// The poll timeout, shortened to the nearest timer deadline.
    fn timer_timeout(&mut self, timeout: Option<Duration>) -> Option<Duration> {
        let Some(deadline) = self.timers.next_deadline() else {
            return timeout;
        };
        // mio rounds a timeout up to the poller's resolution (whole
        // milliseconds for epoll), so the loop never wakes just before the
        // deadline and spins on zero-length waits.
        let wait = deadline.saturating_duration_since(Instant::now());
        Some(timeout.map_or(wait, |t| t.min(wait)))
    }

    /// Drops queue entries with nothing left to report; says whether any is
    /// left. Costs O(queued), never O(table).
    fn prune_queue(&mut self) -> bool {
        // Compacts in place, keeping the order (a hand-written `retain`:
        // this runs once per event).
        let mut kept = 0;
        for i in 0..self.queue.len() {
            let token = self.queue[i];
            if let Some(entry) = self.slab.get_mut(token.key()) {
                if entry.generation == token.generation() {
                    if entry.reportable().is_empty() {
                        entry.queued = false;
                        // A socket cut short by a full buffer starts afresh.
                        entry.skip = Ready::EMPTY;
                    } else {
                        self.queue[kept] = token;
                        kept += 1;
                    }
                }
            }
        }
        self.queue.truncate(kept);
        kept != 0
    }

    /// Waits for OS reports and folds each into the table as it is read
    /// (see [`apply`]); retries `Interrupted` with the time left. Returns
    /// the number of reports.
    fn select(
        &mut self,
        timeout: Option<Duration>,
        events: &mut Events,
        direct: bool,
    ) -> io::Result<(usize, usize)> {
        let start = match timeout {
            Some(t) if !t.is_zero() => Some(Instant::now()),
            _ => None,
        };
        let mut left = timeout;
        let mut special = Special::default();
        let mut straight = Straight {
            on: direct,
            delivered: 0,
        };
        let result = loop {
            let Sockets {
                selector,
                slab,
                queue,
                ..
            } = self;
            let fold = |event| apply(slab, queue, &mut special, &mut straight, events, event);
            match selector.select_each(left, fold) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                    trace!("poll interrupted, retrying");
                    if let (Some(start), Some(t)) = (start, timeout) {
                        left = Some(t.saturating_sub(start.elapsed()));
                    }
                }
                other => break other,
            }
        };
        if special.woken {
            trace!("wake-up");
            self.woken = true;
            // Ctrl-C on Windows comes through the waker.
            #[cfg(windows)]
            self.drain_signals();
        }
        if special.signalled {
            self.drain_signals();
        }
        result.map(|reports| (reports, straight.delivered))
    }

    /// Delivers wake-ups, signals and due timers, ahead of socket events:
    /// they are few, and a busy server must not starve them.
    fn emit_special(&mut self, events: &mut Events) {
        if self.woken && !events.is_full() {
            events.push(Event::Wake);
            self.woken = false;
        }
        for signal in Signal::ALL {
            if self.signals_pending & signal.bit() != 0 && !events.is_full() {
                debug!("signal {signal:?}");
                events.push(Event::Signal(signal));
                self.signals_pending &= !signal.bit();
            }
        }
        if !self.timers.is_empty() {
            let now = Instant::now();
            while !events.is_full() {
                let Some(id) = self.timers.pop_due(now) else {
                    break;
                };
                trace!("{id} fired");
                events.push(Event::Timer(id));
            }
        }
    }

    fn drain_signals(&mut self) {
        if let Some(watch) = &mut self.signals {
            self.signals_pending |= watch.drain();
        }
    }

    /// Moves readiness from the queue into `events`, in queue order, at most
    /// once per socket, `Read` then `Write` then `Error`. Served sockets stay
    /// queued (level mode raises them again until I/O clears them); the
    /// next poll's `prune_queue` drops those with nothing left.
    fn emit(&mut self, events: &mut Events, delivered: usize) {
        let queued = self.queue.len();
        // The first `delivered` were served straight from the OS reports.
        let mut served = delivered;
        for &token in &self.queue[delivered..] {
            if events.is_full() {
                break;
            }
            let entry = match self.slab.get_mut(token.key()) {
                Some(entry) if entry.generation == token.generation() => entry,
                _ => {
                    served += 1; // removed since it was queued: pruned next poll
                    continue;
                }
            };
            let mut kinds = entry.reportable();
            kinds.remove(entry.skip);
            if !kinds.contains(Ready::ERROR) && events.has_room_beyond(1) {
                // The everyday case: the whole socket fits.
                push_io_events(entry, token, kinds, events);
                entry.skip = Ready::EMPTY;
                served += 1;
                continue;
            }
            let mut cut_short = false;
            for kind in [Ready::READABLE, Ready::WRITABLE, Ready::ERROR] {
                if !kinds.contains(kind) {
                    continue;
                }
                if events.is_full() {
                    cut_short = true;
                    break;
                }
                let event = if kind == Ready::READABLE {
                    Event::Read(token)
                } else if kind == Ready::WRITABLE {
                    Event::Write(token)
                } else {
                    Event::Error(token)
                };
                trace!("{token}: event {event:?}");
                events.push(event);
                entry.skip.insert(kind);
                if kind == Ready::ERROR {
                    entry.error_new = false;
                } else if entry.mode == Mode::Edge {
                    entry.ready.remove(kind);
                }
            }
            if cut_short {
                break; // the rest of this socket comes first next poll
            }
            entry.skip = Ready::EMPTY;
            served += 1;
        }
        if served < queued {
            // The buffer filled: round robin, the sockets served go behind
            // those still waiting (O(queued), only when the buffer is full).
            self.queue.rotate_left(served);
        }
    }

    /// Schedules a one-shot timer that fires [`Event::Timer`] once, no
    /// sooner than `delay` from now.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_core::{Event, Events, Sockets};
    /// use std::time::{Duration, Instant};
    ///
    /// let mut sockets = Sockets::new()?;
    /// let start = Instant::now();
    /// let timer = sockets.timer_after(Duration::from_millis(20));
    /// let mut events = Events::with_capacity(8);
    /// while !events.iter().any(|e| e == Event::Timer(timer)) {
    ///     sockets.poll(&mut events, None)?; // the timer bounds the wait
    /// }
    /// assert!(start.elapsed() >= Duration::from_millis(20));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn timer_after(&mut self, delay: Duration) -> TimerId {
        self.timer_at(Instant::now() + delay)
    }

    /// Schedules a one-shot timer for `deadline`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let mut sockets = sockmux_core::Sockets::new()?;
    /// let id = sockets.timer_at(Instant::now() + Duration::from_secs(10));
    /// assert!(sockets.cancel_timer(id));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn timer_at(&mut self, deadline: Instant) -> TimerId {
        let id = self.timers.insert(deadline, None);
        trace!("{id} at {deadline:?}");
        id
    }

    /// Schedules a periodic timer: it fires every `period`, first one
    /// `period` from now. Each deadline is the previous deadline plus the
    /// period, so it does not drift; periods missed while the loop was busy
    /// are skipped, not fired in a burst.
    ///
    /// # Panics
    ///
    /// If `period` is zero.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_core::{Event, Events, Sockets};
    /// use std::time::Duration;
    ///
    /// let mut sockets = Sockets::new()?;
    /// let tick = sockets.timer_every(Duration::from_millis(5));
    /// let mut events = Events::with_capacity(8);
    /// let mut ticks = 0;
    /// while ticks < 3 {
    ///     sockets.poll(&mut events, None)?;
    ///     ticks += events.iter().filter(|&e| e == Event::Timer(tick)).count();
    /// }
    /// sockets.cancel_timer(tick);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn timer_every(&mut self, period: Duration) -> TimerId {
        assert!(
            !period.is_zero(),
            "a periodic timer needs a non-zero period"
        );
        self.timers.insert(Instant::now() + period, Some(period))
    }

    /// Cancels a timer; returns whether it was still pending (false for a
    /// one-shot timer that already fired, or a timer already cancelled).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let mut sockets = sockmux_core::Sockets::new()?;
    /// let id = sockets.timer_after(Duration::from_secs(1));
    /// assert!(sockets.cancel_timer(id));
    /// assert!(!sockets.cancel_timer(id));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn cancel_timer(&mut self, id: TimerId) -> bool {
        let cancelled = self.timers.cancel(id);
        trace!("{id} cancelled: {cancelled}");
        cancelled
    }

    /// A handle that wakes this loop from any thread (see [`Waker`]). Every
    /// call returns a clone of the one waker of the loop.
    ///
    /// # Errors
    ///
    /// The OS error from creating the waker (first call only).
    ///
    /// # Examples
    ///
    /// ```
    /// let mut sockets = sockmux_core::Sockets::new()?;
    /// let waker = sockets.waker()?;
    /// std::thread::spawn(move || waker.wake()).join().unwrap()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn waker(&mut self) -> io::Result<Waker> {
        if let Some(waker) = &self.waker {
            return Ok(waker.clone());
        }
        let inner = mio::Waker::new(self.selector.registry(), mio::Token(WAKE_KEY))?;
        let waker = Waker::new(std::sync::Arc::new(inner));
        self.waker = Some(waker.clone());
        Ok(waker)
    }

    /// An unbounded channel into the loop: each send wakes the loop with
    /// [`Event::Wake`]; on it, drain the [`Receiver`].
    ///
    /// # Errors
    ///
    /// The OS error from creating the loop's waker.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut sockets = sockmux_core::Sockets::new()?;
    /// let (tx, rx) = sockets.channel()?;
    /// tx.send(1u8)?;
    /// assert_eq!(rx.try_recv(), Ok(1));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn channel<T>(&mut self) -> io::Result<(Sender<T>, Receiver<T>)> {
        Ok(channel(self.waker()?, None))
    }

    /// A bounded channel into the loop: [`Sender::send`] blocks while
    /// `bound` messages wait (backpressure), [`Sender::try_send`] hands the
    /// message back.
    ///
    /// # Errors
    ///
    /// The OS error from creating the loop's waker.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut sockets = sockmux_core::Sockets::new()?;
    /// let (tx, rx) = sockets.sync_channel(2)?;
    /// tx.send('a')?;
    /// assert_eq!(rx.try_recv(), Ok('a'));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn sync_channel<T>(&mut self, bound: usize) -> io::Result<(Sender<T>, Receiver<T>)> {
        Ok(channel(self.waker()?, Some(bound)))
    }

    /// Delivers the given process signals as [`Event::Signal`] instead of
    /// their default action (which, for these, ends the process). Call again
    /// to add more. See [`Signal`] for what each platform raises.
    ///
    /// # Errors
    ///
    /// The OS error from installing the handler; on Windows, an error if
    /// another Ctrl-C handler was installed in the process.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_core::{Signal, Sockets};
    /// let mut sockets = Sockets::new()?;
    /// sockets.watch_signals(&[Signal::Terminate])?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn watch_signals(&mut self, signals: &[Signal]) -> io::Result<()> {
        if self.signals.is_none() {
            #[cfg(unix)]
            let watch = Watch::new(self.selector.registry(), SIGNAL_KEY)?;
            #[cfg(windows)]
            let watch = Watch::new(self.waker()?)?;
            self.signals = Some(watch);
        }
        let watch = self.signals.as_mut().expect("set above");
        for &signal in signals {
            watch.add(signal)?;
            debug!("watching {signal:?}");
        }
        Ok(())
    }
}

impl<D: Default> Sockets<D> {
    /// Adopts a socket: mio's, or the standard library's (made non-blocking).
    /// Interest starts as [`Interest::READABLE`].
    ///
    /// # Errors
    ///
    /// As [`insert`](Sockets::insert).
    ///
    /// # Examples
    ///
    /// ```
    /// let mut sockets = sockmux_core::Sockets::new()?;
    /// let t = sockets.add(std::net::TcpListener::bind("127.0.0.1:0")?)?;
    /// assert_eq!(sockets.socket(t)?.kind(), "TCP listener");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn add<S: IntoSocket>(&mut self, socket: S) -> io::Result<Token> {
        self.insert(socket, Interest::READABLE, D::default())
    }

    /// Binds a UDP socket (the sketch's `bind_dgram`), interested in reads.
    ///
    /// Names are resolved with the blocking resolver; each address is tried
    /// in turn.
    ///
    /// # Errors
    ///
    /// The OS error from the last address tried (e.g. `AddrInUse`).
    ///
    /// # Examples
    ///
    /// ```
    /// let mut sockets = sockmux_core::Sockets::new()?;
    /// let t = sockets.bind_udp("127.0.0.1:0")?;
    /// assert_ne!(sockets.local_addr(t)?.port(), 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn bind_udp(&mut self, addr: impl ToSocketAddrs) -> io::Result<Token> {
        let socket = each_addr(addr, std::net::UdpSocket::bind)?;
        self.add(socket)
    }

    /// A UDP socket connected to `addr` (the sketch's `connect_dgram`),
    /// bound to an ephemeral port, interested in reads.
    ///
    /// # Errors
    ///
    /// The OS error from binding or connecting.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut sockets = sockmux_core::Sockets::new()?;
    /// let server = sockets.bind_udp("127.0.0.1:0")?;
    /// let client = sockets.connect_udp(sockets.local_addr(server)?)?;
    /// assert_eq!(sockets.peer_addr(client)?, sockets.local_addr(server)?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn connect_udp(&mut self, addr: impl ToSocketAddrs) -> io::Result<Token> {
        let socket = each_addr(addr, |addr| {
            let any: SocketAddr = if addr.is_ipv4() {
                (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
            } else {
                (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
            };
            let socket = std::net::UdpSocket::bind(any)?;
            socket.connect(addr)?;
            Ok(socket)
        })?;
        self.add(socket)
    }

    /// A listening TCP socket with the [`DEFAULT_BACKLOG`], interested in
    /// reads (a `Read` means a connection to [`accept`](Sockets::accept)).
    /// On Unix, `SO_REUSEADDR` is set so a restarted server can rebind at
    /// once; Windows needs no such option (and its `SO_REUSEADDR` means
    /// something else), so none is set there.
    ///
    /// # Errors
    ///
    /// The OS error from the last address tried.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut sockets = sockmux_core::Sockets::new()?;
    /// let listener = sockets.listen_tcp("127.0.0.1:0")?;
    /// let addr = sockets.local_addr(listener)?;
    /// let _client = std::net::TcpStream::connect(addr)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn listen_tcp(&mut self, addr: impl ToSocketAddrs) -> io::Result<Token> {
        self.listen_tcp_with_backlog(addr, DEFAULT_BACKLOG)
    }

    /// [`listen_tcp`](Sockets::listen_tcp) with a chosen backlog.
    ///
    /// # Errors
    ///
    /// The OS error from the last address tried.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut sockets = sockmux_core::Sockets::new()?;
    /// let listener = sockets.listen_tcp_with_backlog("127.0.0.1:0", 16)?;
    /// assert!(sockets.contains(listener));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn listen_tcp_with_backlog(
        &mut self,
        addr: impl ToSocketAddrs,
        backlog: u32,
    ) -> io::Result<Token> {
        let listener = each_addr(addr, |addr| {
            use socket2::{Domain, Protocol, Type};
            let socket =
                socket2::Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
            #[cfg(not(windows))]
            socket.set_reuse_address(true)?;
            socket.bind(&addr.into())?;
            socket.listen(i32::try_from(backlog).unwrap_or(i32::MAX))?;
            Ok(std::net::TcpListener::from(socket))
        })?;
        self.add(listener)
    }

    /// Starts a TCP connection without blocking. Interest starts as
    /// [`Interest::BOTH`]: the first `Write` says the connection is
    /// established; a failed connect raises one `Error` (and no `Read` or
    /// `Write`), whose cause [`take_error`](Sockets::take_error) hands back.
    ///
    /// # Errors
    ///
    /// The OS error if the connect could not even start; `InvalidInput` if
    /// `addr` resolves to nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_core::{Event, Events, Sockets};
    /// use std::time::Duration;
    ///
    /// let mut sockets = Sockets::new()?;
    /// let listener = sockets.listen_tcp("127.0.0.1:0")?;
    /// let conn = sockets.connect_tcp(sockets.local_addr(listener)?)?;
    /// let mut events = Events::with_capacity(8);
    /// loop {
    ///     sockets.poll(&mut events, Some(Duration::from_secs(5)))?;
    ///     if events.iter().any(|e| e == Event::Write(conn)) {
    ///         break; // connected
    ///     }
    /// }
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn connect_tcp(&mut self, addr: impl ToSocketAddrs) -> io::Result<Token> {
        let addr = addr.to_socket_addrs()?.next().ok_or_else(no_address)?;
        let stream = mio::net::TcpStream::connect(addr)?;
        self.insert_socket(
            Socket::TcpStream(stream),
            Interest::BOTH,
            D::default(),
            true,
        )
    }

    /// Accepts one connection from a TCP or Unix listener and registers it,
    /// interested in reads; returns the new token.
    ///
    /// # Errors
    ///
    /// `WouldBlock` when no connection waits (readiness is cleared);
    /// `NotFound` for a stale token; `InvalidInput` for a socket that is not
    /// a listener; the OS error otherwise (e.g. out of descriptors).
    ///
    /// # Examples
    ///
    /// ```
    /// let mut sockets = sockmux_core::Sockets::new()?;
    /// let listener = sockets.listen_tcp("127.0.0.1:0")?;
    /// let _client = std::net::TcpStream::connect(sockets.local_addr(listener)?)?;
    /// let conn = loop {
    ///     match sockets.accept(listener) {
    ///         Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::yield_now(),
    ///         other => break other?,
    ///     }
    /// };
    /// assert_eq!(sockets.socket(conn)?.kind(), "TCP stream");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn accept(&mut self, token: Token) -> io::Result<Token> {
        let entry = self.entry_mut(token)?;
        let socket = retry(entry, Ready::READABLE, Socket::accept)?;
        self.insert_socket(socket, Interest::READABLE, D::default(), false)
    }
}

impl<D> fmt::Debug for Sockets<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sockets")
            .field("len", &self.slab.len())
            .field("queued", &self.queue.len())
            .field("timers", &self.timers.len())
            .finish_non_exhaustive()
    }
}

/// OS reports for keys outside the table, seen during one wait.
#[derive(Default)]
struct Special {
    /// The waker's key was reported.
    woken: bool,
    /// The signal pipe's key was reported (Unix).
    signalled: bool,
}

/// Folds one OS report into the socket's readiness bits and queues the
/// socket. Runs once per report, straight from the OS buffer: the common
/// case (an established socket, no error flag) is a few bit operations,
/// the rest goes to [`apply_rare`].
#[inline]
fn apply<D>(
    slab: &mut Slab<Entry<D>>,
    queue: &mut Vec<Token>,
    special: &mut Special,
    straight: &mut Straight,
    events: &mut Events,
    event: RawEvent,
) {
    // Sockets first: the waker's and signals' keys are past any slot.
    let Some(entry) = slab.get_mut(event.key) else {
        apply_special(special, event.key);
        return;
    };
    let token = entry.token(event.key);
    let r = event.ready;
    trace!("{token}: os {r:?}");
    // WRITE_CLOSED is rare only on Windows, where it stands for a reset.
    let rare = Ready::ERROR
        | if cfg!(windows) {
            Ready::WRITE_CLOSED
        } else {
            Ready::EMPTY
        };
    if entry.state != 0 || r.intersects(rare) {
        // Queued behind the sockets delivered so far: none after it may
        // be delivered ahead of it.
        straight.on = false;
        apply_rare(queue, entry, token, r);
        return;
    }
    // Readable or read-closed sets readable (plus read-closed);
    // writable or write-closed sets writable.
    entry.ready.insert(r.to_io_readiness());
    if !straight.on || entry.queued {
        // Queued already (then delivered already, or waiting), or the
        // queue's order must be kept: `emit` serves it.
        enqueue(queue, entry, token);
        return;
    }
    let kinds = entry.reportable();
    if kinds.is_empty() {
        return;
    }
    if kinds.contains(Ready::ERROR) {
        // An error not yet reported: `emit` orders it after Read and Write.
        straight.on = false;
        enqueue(queue, entry, token);
        return;
    }
    // Queued as `enqueue` would: level mode raises it again next poll
    // until I/O clears it, and `prune_queue` drops it when nothing is left.
    entry.queued = true;
    queue.push(token);
    if !events.has_room_beyond(2) {
        // `emit` delivers this one and the rest, in queue order.
        straight.on = false;
        return;
    }
    // Delivered now, as `emit` would, without looking it up again.
    push_io_events(entry, token, kinds, events);
    straight.delivered += 1;
}

/// Pushes a socket's `Read` then `Write`, as `kinds` says (never `Error`),
/// into a buffer with room for both; in edge mode, what was delivered is
/// not raised again before a new edge. Shared by `emit` and `apply`.
#[inline(always)]
fn push_io_events<D>(entry: &mut Entry<D>, token: Token, kinds: Ready, events: &mut Events) {
    trace!("{token}: events {kinds:?}");
    if kinds.contains(Ready::READABLE) {
        events.push(Event::Read(token));
    }
    if kinds.contains(Ready::WRITABLE) {
        events.push(Event::Write(token));
    }
    if entry.mode == Mode::Edge {
        entry.ready.remove(kinds);
    }
}

/// Straight delivery during one wait: while `on`, a socket reported for
/// the first time this poll is delivered by `apply` at once, and the
/// first `delivered` tokens of the queue are those.
struct Straight {
    on: bool,
    delivered: usize,
}

/// [`apply`] for a socket at the end of its stream, still connecting, or
/// reported with an error.
#[cold]
#[inline(never)]
fn apply_rare<D>(queue: &mut Vec<Token>, entry: &mut Entry<D>, token: Token, mut r: Ready) {
    if entry.state & EOF != 0 {
        r.remove(Ready::READABLE | Ready::READ_CLOSED);
    }
    if entry.state & CONNECTING != 0 {
        if !r.intersects(Ready::WRITABLE | Ready::ERROR | Ready::WRITE_CLOSED) {
            return;
        }
        // The connect finished: SO_ERROR says whether it failed, and a
        // peer address says it succeeded (mio's documented check).
        let failure = match entry.socket.take_os_error() {
            Ok(Some(e)) | Err(e) => Some(e),
            Ok(None) => match entry.socket.peer_addr() {
                Ok(_) => None,
                Err(e) if e.kind() == io::ErrorKind::NotConnected => {
                    if r.intersects(Ready::ERROR | Ready::WRITE_CLOSED) {
                        Some(io::Error::from(io::ErrorKind::ConnectionRefused))
                    } else {
                        return; // still connecting: a spurious wake-up
                    }
                }
                Err(e) => Some(e),
            },
        };
        entry.state &= !CONNECTING;
        if let Some(e) = failure {
            // A failed connect raises Error alone, never Read or Write.
            entry.set_error(token, e);
            enqueue(queue, entry, token);
            return;
        }
        debug!("{token}: connected");
    } else if r.contains(Ready::ERROR) {
        match entry.socket.take_os_error() {
            Ok(Some(e)) | Err(e) => entry.set_error(token, e),
            Ok(None) => trace!("{token}: error flag without a pending error"),
        }
    }
    // mio on Windows reports a reset (AFD_POLL_ABORT) as read- and
    // write-closed without the error flag; write-closed comes from
    // nothing else on an established stream. Report it once.
    #[cfg(windows)]
    if r.contains(Ready::WRITE_CLOSED)
        && !r.contains(Ready::ERROR)
        && !entry.ready.contains(Ready::WRITE_CLOSED)
    {
        entry.ready.insert(Ready::WRITE_CLOSED);
        let e = crate::windows::reset_error(entry.socket.take_os_error());
        entry.set_error(token, e);
    }
    entry.ready.insert(r.to_io_readiness());
    enqueue(queue, entry, token);
}

/// An OS report for a key outside the table: the waker, signals, or a
/// socket removed since the OS queued the report.
#[cold]
fn apply_special(special: &mut Special, key: usize) {
    if key == WAKE_KEY {
        special.woken = true;
        return;
    }
    #[cfg(unix)]
    if key == SIGNAL_KEY {
        special.signalled = true;
        return;
    }
    trace!("os event for unknown key {key}: ignored");
}

/// Queues an entry that has something to report and is not queued yet.
#[inline]
fn enqueue<D>(queue: &mut Vec<Token>, entry: &mut Entry<D>, token: Token) {
    if !entry.queued && !entry.reportable().is_empty() {
        entry.queued = true;
        queue.push(token);
    }
}

/// Runs one I/O call on an entry: retries `Interrupted`, clears `clear` on
/// `WouldBlock`. The success path is inlined into every I/O call; errors
/// go through [`retry_failed`], out of line.
#[inline(always)]
fn retry<D, R>(
    entry: &mut Entry<D>,
    clear: Ready,
    mut f: impl FnMut(&mut Socket) -> io::Result<R>,
) -> io::Result<R> {
    match f(&mut entry.socket) {
        Ok(r) => Ok(r),
        Err(e) => retry_failed(entry, clear, e, f),
    }
}

#[cold]
#[inline(never)]
fn retry_failed<D, R>(
    entry: &mut Entry<D>,
    clear: Ready,
    mut error: io::Error,
    mut f: impl FnMut(&mut Socket) -> io::Result<R>,
) -> io::Result<R> {
    loop {
        match error.kind() {
            io::ErrorKind::Interrupted => match f(&mut entry.socket) {
                Ok(r) => return Ok(r),
                Err(e) => error = e,
            },
            io::ErrorKind::WouldBlock => {
                entry.ready.remove(clear);
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
    token: Token,
    clear: Ready,
    f: impl FnMut(&mut Socket) -> io::Result<R>,
) -> io::Result<R> {
    #[cfg(windows)]
    let mut f = f;
    #[cfg(windows)]
    if matches!(entry.socket, Socket::Udp(_)) {
        use crate::windows::{icmp_error, is_icmp_report, ICMP_REPORTS_PER_CALL};
        for _ in 1..ICMP_REPORTS_PER_CALL {
            match retry(entry, clear, &mut f) {
                Err(e) if is_icmp_report(&e) => entry.set_error(token, icmp_error(e)),
                other => return other,
            }
        }
    }
    #[cfg(not(windows))]
    let _ = token;
    retry(entry, clear, f)
}

fn stale(token: Token) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("token {token} is stale or unknown: its socket was removed"),
    )
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
