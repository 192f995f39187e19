//! [`Registry`]: the socket table as a responder sees it.

use std::fmt;
use std::io;
use std::net::ToSocketAddrs;
use std::ops::{Deref, DerefMut};

use sockmux_core::{Interest, IntoSocket, Table, Token};

use crate::dispatcher::{LoopState, Slot};
use crate::Responder;

/// The socket table as a responder sees it: the core [`Table`] (every
/// query and I/O call by token, through `Deref`), plus what differs with
/// responders: adding a socket *with its responder*, and removal that runs
/// the responder's [`closed`](Responder::closed) hook.
///
/// Reach it as [`Context::sockets`](crate::Context::sockets) inside a
/// handler, or through [`Dispatcher::sockets`](crate::Dispatcher::sockets)
/// outside the loop. The methods that add a socket have the names and
/// meanings of [`Sockets`](sockmux_core::Sockets)'s, with a responder as
/// their last argument.
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
/// // The core table's calls, on the same token.
/// assert!(sockets.local_addr(server)?.ip().is_loopback());
/// assert_eq!(sockets.len(), 1);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Registry<'a, S> {
    pub(crate) core: &'a mut LoopState<S>,
}

impl<S> Deref for Registry<'_, S> {
    type Target = Table<Slot<S>>;

    #[inline(always)]
    fn deref(&self) -> &Table<Slot<S>> {
        &self.core.sockets
    }
}

impl<S> DerefMut for Registry<'_, S> {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut Table<Slot<S>> {
        &mut self.core.sockets
    }
}

impl<S> fmt::Debug for Registry<'_, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("sockets", &self.core.sockets)
            .finish_non_exhaustive()
    }
}

impl<S> Registry<'_, S> {
    /// Adds a socket (a standard library socket, made non-blocking, or a
    /// [`Socket`](sockmux_core::Socket)) with an interest and the responder for its events;
    /// returns its token. The responder's
    /// [`registered`](Responder::registered) hook runs before its first
    /// event.
    ///
    /// # Errors
    ///
    /// As [`Sockets::register`](sockmux_core::Sockets::register): the OS error
    /// from registration; the socket and the responder are dropped (no hook
    /// runs).
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
        let token = self
            .core
            .sockets
            .register(socket, interest, Slot::default());
        self.core.attach(token, responder)
    }

    /// A bound UDP socket ([`Socket::bind_udp`](sockmux_core::Socket::bind_udp), the sketch's
    /// `bind_dgram`) with its responder, interested in reads.
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

    /// A UDP socket connected to `addr` ([`Socket::connect_udp`](sockmux_core::Socket::connect_udp), the
    /// sketch's `connect_dgram`) with its responder, interested in reads.
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

    /// A listening TCP socket ([`Socket::listen_tcp`](sockmux_core::Socket::listen_tcp)) with its responder,
    /// interested in reads: a `Read` is a connection to
    /// [`accept`](Registry::accept).
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

    /// [`listen_tcp`](Registry::listen_tcp) with a chosen backlog.
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
    /// let listener = dispatcher.sockets().listen_tcp_with_backlog("127.0.0.1:0", 16,
    ///     |_: Event, _: &mut Context<'_, ()>| Action::Continue)?;
    /// assert!(dispatcher.sockets().contains(listener));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn listen_tcp_with_backlog<R: Responder<S> + 'static>(
        &mut self,
        addr: impl ToSocketAddrs,
        backlog: u32,
        responder: R,
    ) -> io::Result<Token> {
        let token = self.core.sockets.listen_tcp_with_backlog(addr, backlog);
        self.core.attach(token, responder)
    }

    /// Starts a TCP connection without blocking ([`Socket::connect_tcp`](sockmux_core::Socket::connect_tcp))
    /// with its responder, interested in both directions: the first `Write`
    /// means connected; a failed connect raises one `Error`.
    ///
    /// # Errors
    ///
    /// The OS error if no connect could even start.
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

    /// Accepts one connection from a TCP or Unix listener and adds it with
    /// its responder, interested in reads; returns the new token (as
    /// [`Sockets::accept`](sockmux_core::Sockets::accept) does, with a
    /// responder). Use [`peer_addr`](Table::peer_addr) on the new token, or
    /// the responder's [`registered`](Responder::registered) hook, to look
    /// at the peer.
    ///
    /// # Errors
    ///
    /// `WouldBlock` when no connection waits (the `Read` is re-armed; the
    /// responder is dropped); `NotFound` for a stale token; `InvalidInput`
    /// for a socket that is not a listener; the OS error otherwise (e.g.
    /// out of descriptors: the listener's `Read` stays raised, so pause it,
    /// or the loop spins).
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
    ///         match cx.sockets.accept(t, conn) {
    ///             Ok(c) => cx.sockets.set_interest(c, Interest::WRITABLE).unwrap(),
    ///             Err(e) if e.kind() == ErrorKind::WouldBlock => {} // no one waits
    ///             Err(_) => return Action::Close, // e.g. out of descriptors
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
    pub fn accept<R: Responder<S> + 'static>(
        &mut self,
        listener: Token,
        responder: R,
    ) -> io::Result<Token> {
        let token = self.core.sockets.accept(listener);
        self.core.attach(token, responder)
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

    /// Asks for the [`notified`](Responder::notified) hook of `token`'s
    /// responder to run after the current call (outside the loop: at the
    /// start of the next turn): the way one handler hands work to another,
    /// through the shared state, and has it acted on at once. Notifying a
    /// socket already notified and not called yet changes nothing: it is
    /// called once. A socket removed before the call is skipped.
    ///
    /// # Errors
    ///
    /// `NotFound` for a stale or unknown token.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_core::{Event, Token};
    /// use sockmux_responder::{Action, Context, Dispatcher, Responder};
    ///
    /// /// Counts the notifications it got into the shared state.
    /// struct Counted;
    ///
    /// impl Responder<u32> for Counted {
    ///     fn ready(&mut self, _: Event, _: &mut Context<'_, u32>) -> Action {
    ///         Action::Continue
    ///     }
    ///     fn notified(&mut self, cx: &mut Context<'_, u32>) -> Action {
    ///         *cx.state += 1;
    ///         Action::Continue
    ///     }
    /// }
    ///
    /// let mut dispatcher = Dispatcher::new(0)?;
    /// let t: Token = dispatcher.sockets().bind_udp("127.0.0.1:0", Counted)?;
    /// dispatcher.sockets().notify(t)?;
    /// dispatcher.sockets().notify(t)?; // still one call
    /// dispatcher.turn(Some(std::time::Duration::ZERO))?;
    /// assert_eq!(*dispatcher.state(), 1);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn notify(&mut self, token: Token) -> io::Result<()> {
        self.core.sockets.data(token)?;
        self.core.notify(token);
        Ok(())
    }
}
