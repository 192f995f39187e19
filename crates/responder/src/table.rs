use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::io::{self, IoSlice};
use std::net::{Shutdown, SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

use log::debug;
use sockmux_core::{Interest, IntoSocket, Socket, Sockets, TimerId, Token};

use crate::Responder;

/// A responder, boxed: the dispatcher holds one per socket.
pub(crate) type Boxed<S> = Box<dyn Responder<S>>;

/// The per-socket data the dispatcher keeps in the core table.
pub(crate) struct Slot<S> {
    /// `None` only while the responder is being called (the dispatcher
    /// holds it then), or for an instant between registration and attach.
    pub(crate) responder: Option<Boxed<S>>,
    /// Timers this responder owns, cancelled when it closes.
    pub(crate) timers: Vec<TimerId>,
}

impl<S> Default for Slot<S> {
    fn default() -> Self {
        Slot {
            responder: None,
            timers: Vec::new(),
        }
    }
}

/// Who owns a timer.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Owner {
    pub(crate) token: Token,
    pub(crate) periodic: bool,
}

/// Everything of the dispatcher but the shared state and the event buffer.
pub(crate) struct Core<S> {
    pub(crate) sockets: Sockets<Slot<S>>,
    pub(crate) owners: HashMap<TimerId, Owner>,
    /// Registered sockets whose `registered` hook has not run yet.
    pub(crate) registered: VecDeque<Token>,
    /// Removed responders whose `closed` hook has not run yet.
    pub(crate) closing: VecDeque<(Token, Boxed<S>)>,
    /// `Context::stop` was called.
    pub(crate) stop: bool,
    /// A graceful stop was asked for from inside a handler, with its grace.
    pub(crate) stop_gracefully: Option<Duration>,
    /// The deadline of the graceful stop under way.
    pub(crate) stopping: Option<Instant>,
}

impl<S> Core<S> {
    pub(crate) fn new(sockets: Sockets<Slot<S>>) -> Core<S> {
        Core {
            sockets,
            owners: HashMap::new(),
            registered: VecDeque::new(),
            closing: VecDeque::new(),
            stop: false,
            stop_gracefully: None,
            stopping: None,
        }
    }

    /// Removes a socket: closes it, cancels its timers and queues its
    /// responder's `closed` hook (unless the dispatcher holds the responder
    /// because it is being called: the dispatcher queues it after the call).
    pub(crate) fn remove(&mut self, token: Token) -> io::Result<()> {
        let (socket, slot) = self.sockets.remove(token)?;
        drop(socket);
        for id in slot.timers {
            self.sockets.cancel_timer(id);
            self.owners.remove(&id);
        }
        if let Some(responder) = slot.responder {
            self.closing.push_back((token, responder));
        }
        Ok(())
    }

    /// Records a new timer of `token`'s; a timer of a socket that is gone
    /// is cancelled at once.
    pub(crate) fn own_timer(&mut self, token: Token, id: TimerId, periodic: bool) -> TimerId {
        match self.sockets.data_mut(token) {
            Ok(slot) => {
                slot.timers.push(id);
                self.owners.insert(id, Owner { token, periodic });
            }
            Err(_) => {
                debug!("{id} made by closed {token}: cancelled");
                self.sockets.cancel_timer(id);
            }
        }
        id
    }

    /// Forgets a timer (fired one-shot, or cancelled); returns its owner.
    pub(crate) fn disown_timer(&mut self, id: TimerId) -> Option<Owner> {
        let owner = self.owners.remove(&id)?;
        if let Ok(slot) = self.sockets.data_mut(owner.token) {
            slot.timers.retain(|&t| t != id);
        }
        Some(owner)
    }

    fn attach<R: Responder<S> + 'static>(
        &mut self,
        token: io::Result<Token>,
        responder: R,
    ) -> io::Result<Token> {
        let token = token?;
        self.sockets.data_mut(token)?.responder = Some(Box::new(responder));
        self.registered.push_back(token);
        Ok(token)
    }
}

/// The socket table as a responder sees it: the I/O of [`sockmux_core::Sockets`]
/// on any token, plus registration with a responder and removal that runs
/// the `closed` hook.
///
/// Reach it as [`Context::sockets`](crate::Context::sockets) inside a
/// handler, or through [`Dispatcher::sockets`](crate::Dispatcher::sockets)
/// outside the loop. The I/O calls are the core table's, with the same
/// level-semantics bookkeeping: `WouldBlock` re-arms the event, and a stale
/// token answers `NotFound`.
///
/// # Examples
///
/// ```
/// use sockmux_core::Event;
/// use sockmux_responder::{Action, Context, Dispatcher};
///
/// let mut dispatcher = Dispatcher::new(())?;
/// let mut sockets = dispatcher.sockets();
/// let server = sockets.bind_udp("127.0.0.1:0", |_: Event, _: &mut Context<'_, ()>| {
///     Action::Continue
/// })?;
/// assert!(sockets.local_addr(server)?.ip().is_loopback());
/// assert_eq!(sockets.len(), 1);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Table<'a, S> {
    pub(crate) core: &'a mut Core<S>,
}

impl<S> fmt::Debug for Table<'_, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Table")
            .field("sockets", &self.core.sockets)
            .finish_non_exhaustive()
    }
}

impl<S> Table<'_, S> {
    /// Registers a socket (mio's or the standard library's, see
    /// [`IntoSocket`]) with an interest and the responder for its events;
    /// returns its token. The responder's
    /// [`registered`](Responder::registered) hook runs before its first
    /// event.
    ///
    /// # Errors
    ///
    /// As [`Sockets::insert`]: the OS error from registration; the socket
    /// and the responder are dropped (no hook runs).
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_core::{Event, Interest};
    /// use sockmux_responder::{Action, Context, Dispatcher};
    ///
    /// let mut dispatcher = Dispatcher::new(())?;
    /// let socket = std::net::UdpSocket::bind("127.0.0.1:0")?;
    /// let t = dispatcher.sockets().register(socket, Interest::READABLE,
    ///     |_: Event, _: &mut Context<'_, ()>| Action::Continue)?;
    /// assert!(dispatcher.sockets().contains(t));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn register<R: Responder<S> + 'static>(
        &mut self,
        socket: impl IntoSocket,
        interest: Interest,
        responder: R,
    ) -> io::Result<Token> {
        let token = self.core.sockets.insert(socket, interest, Slot::default());
        self.core.attach(token, responder)
    }

    /// A listening TCP socket (see [`Sockets::listen_tcp`]) with its
    /// responder, interested in reads: a `Read` is a connection to
    /// [`accept`](Table::accept).
    ///
    /// # Errors
    ///
    /// The OS error from binding (e.g. `AddrInUse`).
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_core::Event;
    /// use sockmux_responder::{Action, Context, Dispatcher};
    ///
    /// let mut dispatcher = Dispatcher::new(())?;
    /// let listener = dispatcher.sockets().listen_tcp("127.0.0.1:0",
    ///     |_: Event, _: &mut Context<'_, ()>| Action::Continue)?;
    /// let addr = dispatcher.sockets().local_addr(listener)?;
    /// let _client = std::net::TcpStream::connect(addr)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn listen_tcp<R: Responder<S> + 'static>(
        &mut self,
        addr: impl ToSocketAddrs,
        responder: R,
    ) -> io::Result<Token> {
        let token = self.core.sockets.listen_tcp(addr);
        self.core.attach(token, responder)
    }

    /// A bound UDP socket (the sketch's `bind_dgram`) with its responder,
    /// interested in reads.
    ///
    /// # Errors
    ///
    /// The OS error from binding.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_core::Event;
    /// use sockmux_responder::{Action, Context, Dispatcher};
    ///
    /// let mut dispatcher = Dispatcher::new(())?;
    /// let t = dispatcher.sockets().bind_udp("127.0.0.1:0",
    ///     |_: Event, _: &mut Context<'_, ()>| Action::Continue)?;
    /// assert_ne!(dispatcher.sockets().local_addr(t)?.port(), 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn bind_udp<R: Responder<S> + 'static>(
        &mut self,
        addr: impl ToSocketAddrs,
        responder: R,
    ) -> io::Result<Token> {
        let token = self.core.sockets.bind_udp(addr);
        self.core.attach(token, responder)
    }

    /// A UDP socket connected to `addr` (the sketch's `connect_dgram`) with
    /// its responder, interested in reads.
    ///
    /// # Errors
    ///
    /// The OS error from binding or connecting.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_core::Event;
    /// use sockmux_responder::{Action, Context, Dispatcher};
    ///
    /// let idle = |_: Event, _: &mut Context<'_, ()>| Action::Continue;
    /// let mut dispatcher = Dispatcher::new(())?;
    /// let mut sockets = dispatcher.sockets();
    /// let server = sockets.bind_udp("127.0.0.1:0", idle)?;
    /// let client = sockets.connect_udp(sockets.local_addr(server)?, idle)?;
    /// assert_eq!(sockets.peer_addr(client)?, sockets.local_addr(server)?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn connect_udp<R: Responder<S> + 'static>(
        &mut self,
        addr: impl ToSocketAddrs,
        responder: R,
    ) -> io::Result<Token> {
        let token = self.core.sockets.connect_udp(addr);
        self.core.attach(token, responder)
    }

    /// Starts a TCP connection without blocking (see
    /// [`Sockets::connect_tcp`]), interested in both directions: the first
    /// `Write` means connected; a failed connect raises one `Error`.
    ///
    /// # Errors
    ///
    /// The OS error if the connect could not even start.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_core::{Event, Interest};
    /// use sockmux_responder::{Action, Context, Dispatcher};
    ///
    /// let mut dispatcher = Dispatcher::new(false)?;
    /// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// dispatcher.sockets().connect_tcp(listener.local_addr()?,
    ///     |event: Event, cx: &mut Context<'_, bool>| {
    ///         if let Event::Write(t) = event {
    ///             *cx.state = true; // connected
    ///             cx.sockets.set_interest(t, Interest::READABLE).ok();
    ///             cx.stop();
    ///         }
    ///         Action::Continue
    ///     })?;
    /// dispatcher.run_for(std::time::Duration::from_secs(10))?;
    /// assert!(*dispatcher.state());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn connect_tcp<R: Responder<S> + 'static>(
        &mut self,
        addr: impl ToSocketAddrs,
        responder: R,
    ) -> io::Result<Token> {
        let token = self.core.sockets.connect_tcp(addr);
        self.core.attach(token, responder)
    }

    /// Accepts one connection from a TCP or Unix listener, unregistered:
    /// hand it to [`register`](Table::register) with its responder.
    ///
    /// # Errors
    ///
    /// `WouldBlock` when no connection waits (the `Read` is re-armed);
    /// `NotFound` for a stale token; `InvalidInput` for a socket that is not
    /// a listener; the OS error otherwise (e.g. out of descriptors).
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_core::{Event, Interest};
    /// use sockmux_responder::{Action, Context, Dispatcher};
    /// use std::io::ErrorKind;
    ///
    /// let conn = |_: Event, cx: &mut Context<'_, u32>| {
    ///     *cx.state += 1;
    ///     cx.stop();
    ///     Action::Close
    /// };
    /// let listener = move |event: Event, cx: &mut Context<'_, u32>| {
    ///     if let Event::Read(t) = event {
    ///         match cx.sockets.accept(t) {
    ///             Ok(socket) => {
    ///                 cx.sockets.register(socket, Interest::WRITABLE, conn).ok();
    ///             }
    ///             Err(e) if e.kind() == ErrorKind::WouldBlock => {} // no one waits
    ///             Err(_) => return Action::Close,
    ///         }
    ///     }
    ///     Action::Continue
    /// };
    /// let mut dispatcher = Dispatcher::new(0)?;
    /// let t = dispatcher.sockets().listen_tcp("127.0.0.1:0", listener)?;
    /// let _client = std::net::TcpStream::connect(dispatcher.sockets().local_addr(t)?)?;
    /// dispatcher.run_for(std::time::Duration::from_secs(10))?;
    /// assert_eq!(*dispatcher.state(), 1);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn accept(&mut self, listener: Token) -> io::Result<Socket> {
        self.core
            .sockets
            .io(listener, Interest::READABLE, |socket| match socket {
                Socket::TcpListener(l) => l.accept().map(|(s, _)| Socket::TcpStream(s)),
                #[cfg(unix)]
                Socket::UnixListener(l) => l.accept().map(|(s, _)| Socket::UnixStream(s)),
                other => Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("accept needs a listening socket, not a {}", other.kind()),
                )),
            })
    }

    /// Removes a socket and closes it; its responder's
    /// [`closed`](Responder::closed) hook runs after the current call (or,
    /// outside the loop, at the start of the next turn). Events of the
    /// socket still in the batch are dropped.
    ///
    /// A handler may remove its own socket this way, or any other.
    ///
    /// # Errors
    ///
    /// `NotFound` for a stale or unknown token (e.g. removed already).
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_core::Event;
    /// use sockmux_responder::{Action, Context, Dispatcher};
    ///
    /// let mut dispatcher = Dispatcher::new(())?;
    /// let t = dispatcher.sockets().bind_udp("127.0.0.1:0",
    ///     |_: Event, _: &mut Context<'_, ()>| Action::Continue)?;
    /// dispatcher.sockets().remove(t)?;
    /// assert!(dispatcher.sockets().remove(t).is_err());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn remove(&mut self, token: Token) -> io::Result<()> {
        self.core.remove(token)
    }

    /// Whether `token` names a socket in the table.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_core::Event;
    /// use sockmux_responder::{Action, Context, Dispatcher};
    ///
    /// let mut dispatcher = Dispatcher::new(())?;
    /// let t = dispatcher.sockets().bind_udp("127.0.0.1:0",
    ///     |_: Event, _: &mut Context<'_, ()>| Action::Continue)?;
    /// assert!(dispatcher.sockets().contains(t));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[must_use]
    pub fn contains(&self, token: Token) -> bool {
        self.core.sockets.contains(token)
    }

    /// How many sockets the table holds.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut dispatcher = sockmux_responder::Dispatcher::new(())?;
    /// assert_eq!(dispatcher.sockets().len(), 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[must_use]
    pub fn len(&self) -> usize {
        self.core.sockets.len()
    }

    /// Whether the table holds no socket.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut dispatcher = sockmux_responder::Dispatcher::new(())?;
    /// assert!(dispatcher.sockets().is_empty());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.core.sockets.is_empty()
    }

    /// The tokens of every socket in the table, in key order.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_core::Event;
    /// use sockmux_responder::{Action, Context, Dispatcher};
    ///
    /// let mut dispatcher = Dispatcher::new(())?;
    /// let t = dispatcher.sockets().bind_udp("127.0.0.1:0",
    ///     |_: Event, _: &mut Context<'_, ()>| Action::Continue)?;
    /// assert_eq!(dispatcher.sockets().tokens().collect::<Vec<_>>(), [t]);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn tokens(&self) -> impl Iterator<Item = sockmux_core::Token> + '_ {
        self.core.sockets.tokens()
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
    /// use sockmux_core::Event;
    /// use sockmux_responder::{Action, Context, Dispatcher};
    ///
    /// let mut dispatcher = Dispatcher::new(())?;
    /// let t = dispatcher.sockets().listen_tcp("127.0.0.1:0",
    ///     |_: Event, _: &mut Context<'_, ()>| Action::Continue)?;
    /// assert_eq!(dispatcher.sockets().socket(t)?.kind(), "TCP listener");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn socket(&self, token: Token) -> io::Result<&Socket> {
        self.core.sockets.socket(token)
    }

    /// The local address of an Internet socket.
    ///
    /// # Errors
    ///
    /// `NotFound` for a stale token; `InvalidInput` for a Unix socket.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_core::Event;
    /// use sockmux_responder::{Action, Context, Dispatcher};
    ///
    /// let mut dispatcher = Dispatcher::new(())?;
    /// let t = dispatcher.sockets().bind_udp("127.0.0.1:0",
    ///     |_: Event, _: &mut Context<'_, ()>| Action::Continue)?;
    /// assert!(dispatcher.sockets().local_addr(t)?.ip().is_loopback());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn local_addr(&self, token: Token) -> io::Result<SocketAddr> {
        self.core.sockets.local_addr(token)
    }

    /// The peer address of a connected TCP stream or UDP socket.
    ///
    /// # Errors
    ///
    /// `NotFound` for a stale token; `NotConnected` when there is no peer.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_core::Event;
    /// use sockmux_responder::{Action, Context, Dispatcher};
    ///
    /// let peer = std::net::UdpSocket::bind("127.0.0.1:0")?;
    /// let mut dispatcher = Dispatcher::new(())?;
    /// let t = dispatcher.sockets().connect_udp(peer.local_addr()?,
    ///     |_: Event, _: &mut Context<'_, ()>| Action::Continue)?;
    /// assert_eq!(dispatcher.sockets().peer_addr(t)?, peer.local_addr()?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn peer_addr(&self, token: Token) -> io::Result<SocketAddr> {
        self.core.sockets.peer_addr(token)
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
    /// use sockmux_core::{Event, Interest};
    /// use sockmux_responder::{Action, Context, Dispatcher};
    ///
    /// let mut dispatcher = Dispatcher::new(())?;
    /// let t = dispatcher.sockets().bind_udp("127.0.0.1:0",
    ///     |_: Event, _: &mut Context<'_, ()>| Action::Continue)?;
    /// assert_eq!(dispatcher.sockets().interest(t)?, Interest::READABLE);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn interest(&self, token: Token) -> io::Result<Interest> {
        self.core.sockets.interest(token)
    }

    /// Changes which events a socket raises (no system call): add
    /// `WRITABLE` when there is something to send, drop `READABLE` to stop
    /// reading a peer whose replies pile up.
    ///
    /// # Errors
    ///
    /// `NotFound` for a stale or unknown token.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_core::{Event, Interest};
    /// use sockmux_responder::{Action, Context, Dispatcher};
    ///
    /// let mut dispatcher = Dispatcher::new(())?;
    /// let mut sockets = dispatcher.sockets();
    /// let t = sockets.bind_udp("127.0.0.1:0", |_: Event, _: &mut Context<'_, ()>| {
    ///     Action::Continue
    /// })?;
    /// sockets.set_interest(t, Interest::BOTH)?;
    /// assert_eq!(sockets.interest(t)?, Interest::BOTH);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[inline]
    pub fn set_interest(&mut self, token: Token, interest: Interest) -> io::Result<()> {
        self.core.sockets.set_interest(token, interest)
    }

    /// Hands back the error behind an `Error` event (see
    /// [`Sockets::take_error`]).
    ///
    /// # Errors
    ///
    /// `NotFound` for a stale or unknown token; the OS error from asking.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_core::Event;
    /// use sockmux_responder::{Action, Context, Dispatcher};
    ///
    /// let mut dispatcher = Dispatcher::new(())?;
    /// let t = dispatcher.sockets().bind_udp("127.0.0.1:0",
    ///     |_: Event, _: &mut Context<'_, ()>| Action::Continue)?;
    /// assert!(dispatcher.sockets().take_error(t)?.is_none());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn take_error(&mut self, token: Token) -> io::Result<Option<io::Error>> {
        self.core.sockets.take_error(token)
    }

    /// Runs an I/O closure on a socket with the table's bookkeeping (see
    /// [`Sockets::io`]): for calls the table does not wrap.
    ///
    /// # Errors
    ///
    /// `NotFound` for a stale token; whatever the closure returns.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_core::{Event, Interest, Socket};
    /// use sockmux_responder::{Action, Context, Dispatcher};
    ///
    /// let mut dispatcher = Dispatcher::new(())?;
    /// let mut sockets = dispatcher.sockets();
    /// let t = sockets.bind_udp("127.0.0.1:0", |_: Event, _: &mut Context<'_, ()>| {
    ///     Action::Continue
    /// })?;
    /// let ttl = sockets.io(t, Interest::NONE, |socket| match socket {
    ///     Socket::Udp(udp) => udp.ttl(),
    ///     _ => unreachable!("a UDP socket"),
    /// })?;
    /// assert!(ttl > 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn io<R>(
        &mut self,
        token: Token,
        interest: Interest,
        f: impl FnMut(&mut Socket) -> io::Result<R>,
    ) -> io::Result<R> {
        self.core.sockets.io(token, interest, f)
    }

    /// Reads from a stream; `Ok(0)` is a clean end of the stream (see
    /// [`Sockets::read`]).
    ///
    /// A reset is never mistaken for an end: the table fetches a socket's
    /// error as soon as the OS reports it, after which the OS reads the
    /// stream as ended. So where the core read answers `Ok(0)`, this one
    /// asks the table for a pending error first and returns that instead
    /// (once: the error is taken, and the socket's `Error` event finds
    /// nothing more). The bytes that came before the reset are read first.
    ///
    /// # Errors
    ///
    /// `WouldBlock` when nothing is there (the `Read` is re-armed);
    /// `NotFound` for a stale token; the OS error otherwise (e.g.
    /// `ConnectionReset`).
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_core::{Event, Interest};
    /// use sockmux_responder::{Action, Context, Dispatcher};
    /// use std::io::Write;
    ///
    /// let reader = |_: Event, cx: &mut Context<'_, Vec<u8>>| {
    ///     let mut buf = [0; 64];
    ///     match cx.sockets.read(cx.token(), &mut buf) {
    ///         Ok(0) => { cx.stop(); Action::Close } // end of stream
    ///         Ok(n) => { cx.state.extend_from_slice(&buf[..n]); Action::Continue }
    ///         Err(_) => Action::Continue, // WouldBlock: wait for more
    ///     }
    /// };
    /// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// let mut peer = std::net::TcpStream::connect(listener.local_addr()?)?;
    /// let mut dispatcher = Dispatcher::new(Vec::new())?;
    /// dispatcher.sockets().register(listener.accept()?.0, Interest::READABLE, reader)?;
    /// peer.write_all(b"hello")?;
    /// drop(peer);
    /// dispatcher.run_for(std::time::Duration::from_secs(10))?;
    /// assert_eq!(dispatcher.state(), b"hello");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    // Inlined into the responder: a call costs more than this wrapper.
    #[inline]
    pub fn read(&mut self, token: Token, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.core.sockets.read(token, buf)?;
        if n == 0 && !buf.is_empty() {
            return self.end_of_stream(token);
        }
        Ok(n)
    }

    /// What a read that saw the end of the stream returns: the error the
    /// socket holds (a reset seen with the FIN, say), else `Ok(0)`.
    #[cold]
    #[inline(never)]
    fn end_of_stream(&mut self, token: Token) -> io::Result<usize> {
        match self.core.sockets.take_error(token)? {
            Some(e) => Err(e),
            None => Ok(0),
        }
    }

    /// Writes to a stream; may write only part of `buf`.
    ///
    /// # Errors
    ///
    /// `WouldBlock` when the send buffer is full (the `Write` is re-armed);
    /// `NotFound` for a stale token; the OS error otherwise (e.g.
    /// `BrokenPipe`).
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_core::{Event, Interest};
    /// use sockmux_responder::{Action, Context, Dispatcher};
    ///
    /// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// let stream = std::net::TcpStream::connect(listener.local_addr()?)?;
    /// let mut dispatcher = Dispatcher::new(())?;
    /// let mut sockets = dispatcher.sockets();
    /// let t = sockets.register(stream, Interest::NONE, |_: Event, _: &mut Context<'_, ()>| {
    ///     Action::Continue
    /// })?;
    /// assert_eq!(sockets.write(t, b"hi")?, 2);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[inline]
    pub fn write(&mut self, token: Token, buf: &[u8]) -> io::Result<usize> {
        self.core.sockets.write(token, buf)
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
    /// use sockmux_core::{Event, Interest};
    /// use sockmux_responder::{Action, Context, Dispatcher};
    /// use std::io::IoSlice;
    ///
    /// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// let stream = std::net::TcpStream::connect(listener.local_addr()?)?;
    /// let mut dispatcher = Dispatcher::new(())?;
    /// let mut sockets = dispatcher.sockets();
    /// let t = sockets.register(stream, Interest::NONE, |_: Event, _: &mut Context<'_, ()>| {
    ///     Action::Continue
    /// })?;
    /// let n = sockets.write_vectored(t, &[IoSlice::new(b"he"), IoSlice::new(b"llo")])?;
    /// assert_eq!(n, 5);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn write_vectored(&mut self, token: Token, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.core.sockets.write_vectored(token, bufs)
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
    /// use sockmux_core::{Event, Interest};
    /// use sockmux_responder::{Action, Context, Dispatcher};
    ///
    /// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// let stream = std::net::TcpStream::connect(listener.local_addr()?)?;
    /// let mut dispatcher = Dispatcher::new(())?;
    /// let mut sockets = dispatcher.sockets();
    /// let t = sockets.register(stream, Interest::NONE, |_: Event, _: &mut Context<'_, ()>| {
    ///     Action::Continue
    /// })?;
    /// sockets.shutdown(t, std::net::Shutdown::Write)?; // the peer reads end of stream
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn shutdown(&mut self, token: Token, how: Shutdown) -> io::Result<()> {
        self.core.sockets.shutdown(token, how)
    }

    /// Receives one datagram; `Ok(0)` is an empty datagram.
    ///
    /// # Errors
    ///
    /// `WouldBlock` when no datagram is queued (the `Read` is re-armed);
    /// `NotFound` for a stale token; the OS error otherwise.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_core::Event;
    /// use sockmux_responder::{Action, Context, Dispatcher};
    ///
    /// let mut dispatcher = Dispatcher::new(())?;
    /// let mut sockets = dispatcher.sockets();
    /// let t = sockets.bind_udp("127.0.0.1:0", |_: Event, _: &mut Context<'_, ()>| {
    ///     Action::Continue
    /// })?;
    /// let e = sockets.recv(t, &mut [0; 8]).unwrap_err();
    /// assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn recv(&mut self, token: Token, buf: &mut [u8]) -> io::Result<usize> {
        self.core.sockets.recv(token, buf)
    }

    /// Sends one datagram on a connected datagram socket.
    ///
    /// # Errors
    ///
    /// `WouldBlock` when the send buffer is full; `NotFound` for a stale
    /// token; the OS error otherwise (e.g. `ConnectionRefused`).
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_core::Event;
    /// use sockmux_responder::{Action, Context, Dispatcher};
    ///
    /// let idle = |_: Event, _: &mut Context<'_, ()>| Action::Continue;
    /// let mut dispatcher = Dispatcher::new(())?;
    /// let mut sockets = dispatcher.sockets();
    /// let server = sockets.bind_udp("127.0.0.1:0", idle)?;
    /// let client = sockets.connect_udp(sockets.local_addr(server)?, idle)?;
    /// assert_eq!(sockets.send(client, b"0")?, 1);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn send(&mut self, token: Token, buf: &[u8]) -> io::Result<usize> {
        self.core.sockets.send(token, buf)
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
    /// use sockmux_core::Event;
    /// use sockmux_responder::{Action, Context, Dispatcher};
    ///
    /// let mut dispatcher = Dispatcher::new(())?;
    /// let mut sockets = dispatcher.sockets();
    /// let t = sockets.bind_udp("127.0.0.1:0", |_: Event, _: &mut Context<'_, ()>| {
    ///     Action::Continue
    /// })?;
    /// let e = sockets.recv_from(t, &mut [0; 8]).unwrap_err();
    /// assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn recv_from(&mut self, token: Token, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.core.sockets.recv_from(token, buf)
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
    /// use sockmux_core::Event;
    /// use sockmux_responder::{Action, Context, Dispatcher};
    ///
    /// let peer = std::net::UdpSocket::bind("127.0.0.1:0")?;
    /// let mut dispatcher = Dispatcher::new(())?;
    /// let mut sockets = dispatcher.sockets();
    /// let t = sockets.bind_udp("127.0.0.1:0", |_: Event, _: &mut Context<'_, ()>| {
    ///     Action::Continue
    /// })?;
    /// assert_eq!(sockets.send_to(t, b"hey", peer.local_addr()?)?, 3);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn send_to(&mut self, token: Token, buf: &[u8], addr: SocketAddr) -> io::Result<usize> {
        self.core.sockets.send_to(token, buf, addr)
    }
}
