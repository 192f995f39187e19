//! [`Sockets`]: the core loop. It owns a [`Table`] of sockets (and
//! dereferences to it for their I/O), adds and removes sockets, keeps their
//! user data, and polls (`poll.rs`); its timers, waker and signals live in
//! `timer.rs`, `waker.rs` and `signal.rs`.

use std::fmt;
use std::io;
use std::net::ToSocketAddrs;
use std::ops::{Deref, DerefMut};

use log::debug;

#[cfg(test)]
use crate::selector::Selector;
use crate::selector::{MioSelector, Poller};
use crate::signal::Watch;
use crate::socket::IntoSocket;
use crate::timer::Timers;
use crate::{Interest, Socket, Table, Token, Waker};

/// The socket table: sockets in a slab, named by generational [`Token`]s,
/// whose OS readiness becomes [`Event`](crate::Event) values.
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
    pub(crate) table: Table<D>,
    pub(crate) selector: Poller,
    pub(crate) timers: Timers,
    /// The loop's one mio waker, made on first use and shared.
    pub(crate) waker: Option<Waker>,
    /// A wake-up not yet delivered.
    pub(crate) woken: bool,
    pub(crate) signals: Option<Watch>,
    /// Watched signals that arrived and are not yet delivered, as bits.
    pub(crate) signals_pending: u8,
    /// The loop's figures (feature `stats`).
    #[cfg(feature = "stats")]
    pub(crate) counters: crate::stats::LoopCounters,
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
    /// let t = sockets.register(
    ///     std::net::UdpSocket::bind("127.0.0.1:0")?,
    ///     sockmux_core::Interest::READABLE,
    ///     "the server".to_string(),
    /// )?;
    /// assert_eq!(sockets.data(t)?, "the server");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn with_capacity(capacity: usize) -> io::Result<Sockets<D>> {
        #[cfg(feature = "faults")]
        {
            let mut sockets = Sockets::with_poller(Poller::Mio(MioSelector::new()?), capacity);
            if let Some(plan) = crate::FaultPlan::from_env()? {
                sockets.set_fault_plan(plan)?;
            }
            Ok(sockets)
        }
        #[cfg(not(feature = "faults"))]
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
            table: Table::with_capacity(capacity),
            selector,
            timers: Timers::default(),
            waker: None,
            woken: false,
            signals: None,
            signals_pending: 0,
            #[cfg(feature = "stats")]
            counters: crate::stats::LoopCounters::default(),
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
    /// let socket = std::net::UdpSocket::bind("127.0.0.1:0")?;
    /// let t = sockets.register(socket, Interest::BOTH, ())?;
    /// assert_eq!(sockets.interest(t)?, Interest::BOTH);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn register<S: IntoSocket>(
        &mut self,
        socket: S,
        interest: Interest,
        data: D,
    ) -> io::Result<Token> {
        let selector = &self.selector;
        self.table
            .insert(socket.into_socket()?, interest, data, |socket, key| {
                selector.register(socket, key)
            })
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
        let mut entry = self.table.remove(token)?;
        #[cfg(feature = "stats")]
        self.counters.closed(&entry.stats);
        #[cfg(feature = "faults")]
        crate::hooks::removed(&self.table.hooks, token);
        if let Err(e) = self.selector.deregister(&mut entry.socket) {
            debug!("{token}: deregister failed: {e}");
        }
        debug!("{token}: removed {}", entry.socket.kind());
        Ok((entry.socket, entry.data))
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
    /// let t = sockets.register(std::net::UdpSocket::bind("127.0.0.1:0")?,
    ///     sockmux_core::Interest::READABLE, 7)?;
    /// assert_eq!(*sockets.data(t)?, 7);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[inline]
    pub fn data(&self, token: Token) -> io::Result<&D> {
        Ok(&self.table.entry(token)?.data)
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
    #[inline]
    pub fn data_mut(&mut self, token: Token) -> io::Result<&mut D> {
        Ok(&mut self.table.entry_mut(token)?.data)
    }
}

impl<D: Default> Sockets<D> {
    /// Adopts a socket (a standard library socket, made non-blocking, or a
    /// [`Socket`]). Interest starts as [`Interest::READABLE`].
    ///
    /// # Errors
    ///
    /// As [`register`](Sockets::register).
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
        self.register(socket, Interest::READABLE, D::default())
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
        self.add(Socket::bind_udp(addr)?)
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
        self.add(Socket::connect_udp(addr)?)
    }

    /// A listening TCP socket with the [`DEFAULT_BACKLOG`](crate::DEFAULT_BACKLOG), interested in
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
        self.add(Socket::listen_tcp(addr)?)
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
        self.add(Socket::listen_tcp_with_backlog(addr, backlog)?)
    }

    /// Starts a TCP connection without blocking. Interest starts as
    /// [`Interest::BOTH`]: the first `Write` says the connection is
    /// established; a failed connect raises one `Error` (and no `Read` or
    /// `Write`), whose cause [`take_error`](crate::Table::take_error) hands back.
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
        self.register(Socket::connect_tcp(addr)?, Interest::BOTH, D::default())
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
        let socket = self.table.accept_socket(token)?;
        self.register(socket, Interest::READABLE, D::default())
    }
}

/// The table's queries and I/O, on the loop itself: `sockets.read(t, buf)`.
impl<D> Deref for Sockets<D> {
    type Target = Table<D>;

    #[inline(always)]
    fn deref(&self) -> &Table<D> {
        &self.table
    }
}

impl<D> DerefMut for Sockets<D> {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut Table<D> {
        &mut self.table
    }
}

impl<D> fmt::Debug for Sockets<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sockets")
            .field("len", &self.table.slab.len())
            .field("queued", &self.table.queue.tokens.len())
            .field("timers", &self.timers.len())
            .finish_non_exhaustive()
    }
}
