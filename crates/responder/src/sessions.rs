//! [`UdpSessions`]: the datagram counterpart of the [`Acceptor`](crate::Acceptor):
//! one UDP socket, a [`Session`] per peer address.

use std::collections::HashMap;
use std::fmt;
use std::io::{self, ErrorKind};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use log::{debug, info, warn};
use sockmux_core::{Event, TimerId, Token};

use crate::{Action, Context, Responder};

/// Datagrams received per `Read` of the socket at most, by default.
pub const DEFAULT_DATAGRAMS_PER_EVENT: usize = 64;

/// How long a session may stay silent before it ends, by default.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// The size of the receive buffer shared by every session, by default:
/// larger than any UDP payload (65,507 bytes over IPv4), so no datagram is
/// cut short.
pub const DEFAULT_MAX_DATAGRAM: usize = 65_536;

/// The socket's kernel receive buffer (`SO_RCVBUF`) asked for on
/// registration, by default: 4 MiB. The kernel may grant less (on Linux, at
/// most `net.core.rmem_max`, reported doubled).
pub const DEFAULT_RECEIVE_BUFFER: usize = 4 << 20;

/// The state of one peer of a [`UdpSessions`] server: it receives each
/// datagram from its peer and replies through the [`Peer`] handle.
///
/// Only [`datagram`](Session::datagram) is required. A closure
/// `FnMut(&[u8], &mut Peer<'_, '_, S>) -> bool` is a session too.
///
/// # Examples
///
/// A session that numbers its peer's datagrams and ends at `bye`:
///
/// ```
/// use sockmux_responder::{Peer, Session, SessionEnd};
///
/// struct Numbered(u32);
///
/// impl Session<()> for Numbered {
///     fn datagram(&mut self, data: &[u8], peer: &mut Peer<'_, '_, ()>) -> bool {
///         self.0 += 1;
///         let _ = peer.send(self.0.to_string().as_bytes()); // UDP may drop it
///         data != b"bye"
///     }
///
///     fn ended(&mut self, why: SessionEnd, peer: &mut Peer<'_, '_, ()>) {
///         println!("{}: ended ({why:?}) after {} datagrams", peer.addr(), self.0);
///     }
/// }
/// # let _ = Numbered(0);
/// ```
pub trait Session<S> {
    /// Handles one datagram from this session's peer; returns whether to
    /// keep the session. `data` is borrowed from the server's one receive
    /// buffer (nothing is allocated per datagram) and is gone when this
    /// returns: copy what must outlive the call.
    ///
    /// Returning `false` ends the session ([`ended`](Session::ended) runs
    /// with [`SessionEnd::Finished`]); the peer's next datagram asks the
    /// factory for a new one.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_responder::{Peer, Session};
    ///
    /// /// Echoes every datagram; never ends by itself.
    /// struct Echo;
    ///
    /// impl Session<()> for Echo {
    ///     fn datagram(&mut self, data: &[u8], peer: &mut Peer<'_, '_, ()>) -> bool {
    ///         let _ = peer.send(data);
    ///         true
    ///     }
    /// }
    /// # let _ = Echo;
    /// ```
    fn datagram(&mut self, data: &[u8], peer: &mut Peer<'_, '_, S>) -> bool;

    /// The session ended, for the reason given; runs exactly once per
    /// session, then the session is dropped. A reply sent from here still
    /// goes out, except for [`SessionEnd::Closed`] outside a graceful stop
    /// (the socket is gone then). Does nothing by default.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_responder::{Peer, Session, SessionEnd};
    ///
    /// /// Tells its peer when it forgets it.
    /// struct Polite;
    ///
    /// impl Session<()> for Polite {
    ///     fn datagram(&mut self, _: &[u8], _: &mut Peer<'_, '_, ()>) -> bool {
    ///         true
    ///     }
    ///     fn ended(&mut self, why: SessionEnd, peer: &mut Peer<'_, '_, ()>) {
    ///         if why == SessionEnd::Idle {
    ///             let _ = peer.send(b"timed out");
    ///         }
    ///     }
    /// }
    /// # let _ = Polite;
    /// ```
    fn ended(&mut self, why: SessionEnd, peer: &mut Peer<'_, '_, S>) {
        let _ = (why, peer);
    }
}

/// A closure `FnMut(&[u8], &mut Peer<'_, '_, S>) -> bool` is a session with
/// the default [`ended`](Session::ended) hook.
///
/// # Examples
///
/// ```
/// use sockmux_responder::{Peer, UdpSessions};
///
/// // Every peer gets an echo session.
/// let echo = UdpSessions::new(|_: &mut Peer<'_, '_, ()>| {
///     Some(|data: &[u8], peer: &mut Peer<'_, '_, ()>| {
///         let _ = peer.send(data);
///         true
///     })
/// });
/// # let _ = echo;
/// ```
impl<S, F> Session<S> for F
where
    F: FnMut(&[u8], &mut Peer<'_, '_, S>) -> bool,
{
    fn datagram(&mut self, data: &[u8], peer: &mut Peer<'_, '_, S>) -> bool {
        self(data, peer)
    }
}

/// Why a [`Session`] ended, as its [`ended`](Session::ended) hook is told.
///
/// # Examples
///
/// ```
/// use sockmux_responder::SessionEnd;
///
/// let why = SessionEnd::Idle;
/// assert_ne!(why, SessionEnd::Closed);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SessionEnd {
    /// Its [`datagram`](Session::datagram) returned `false`.
    Finished,
    /// No datagram came from its peer for the
    /// [idle timeout](UdpSessions::idle_timeout).
    Idle,
    /// The server's socket closes: a graceful stop (the socket is still
    /// open, a last reply goes out), or any other close (replies fail with
    /// `NotFound`).
    Closed,
}

/// A session's peer, as its calls see it: the peer's address, a way to
/// reply, and the server's [`Context`] (the shared state, the table).
///
/// # Examples
///
/// ```
/// use sockmux_responder::Peer;
///
/// /// Replies with the peer's own address, and counts in the shared state.
/// fn whoami(_: &[u8], peer: &mut Peer<'_, '_, u64>) -> bool {
///     let addr = peer.addr().to_string();
///     if peer.send(addr.as_bytes()).is_ok() {
///         *peer.cx.state += 1;
///     }
///     true
/// }
/// # let _ = whoami;
/// ```
pub struct Peer<'a, 'cx, S> {
    /// The server's context: [`state`](Context::state) for the shared
    /// state, [`sockets`](Context::sockets) for the table (its
    /// [`token`](Context::token) is the server's socket).
    pub cx: &'a mut Context<'cx, S>,
    socket: Token,
    addr: SocketAddr,
}

impl<S> Peer<'_, '_, S> {
    /// The peer's address.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_responder::Peer;
    ///
    /// fn loopback_only(peer: &mut Peer<'_, '_, ()>) -> bool {
    ///     peer.addr().ip().is_loopback()
    /// }
    /// # let _ = loopback_only;
    /// ```
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The token of the server's UDP socket.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_responder::Peer;
    ///
    /// fn local(peer: &mut Peer<'_, '_, ()>) -> std::io::Result<std::net::SocketAddr> {
    ///     peer.cx.sockets.local_addr(peer.socket())
    /// }
    /// # let _ = local;
    /// ```
    #[must_use]
    pub fn socket(&self) -> Token {
        self.socket
    }

    /// Sends one datagram to the peer from the server's socket (a
    /// [`send_to`](sockmux_core::Table::send_to)).
    ///
    /// # Errors
    ///
    /// As [`send_to`](sockmux_core::Table::send_to): `WouldBlock` when the
    /// send buffer is full (UDP may drop, so may the caller), `NotFound`
    /// once the socket is closed, the OS error otherwise.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_responder::Peer;
    ///
    /// fn pong(data: &[u8], peer: &mut Peer<'_, '_, ()>) -> bool {
    ///     if data == b"ping" {
    ///         let _ = peer.send(b"pong");
    ///     }
    ///     true
    /// }
    /// # let _ = pong;
    /// ```
    pub fn send(&mut self, data: &[u8]) -> io::Result<usize> {
        self.cx.sockets.send_to(self.socket, data, self.addr)
    }
}

impl<S> fmt::Debug for Peer<'_, '_, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Peer")
            .field("addr", &self.addr)
            .field("socket", &self.socket)
            .finish_non_exhaustive()
    }
}

/// One live session and when its peer was last heard.
struct Live<T> {
    session: T,
    last: Instant,
}

/// The responder of a UDP socket that serves each peer address with its
/// own [`Session`], made by a factory: the datagram counterpart of the
/// [`Acceptor`](crate::Acceptor).
///
/// Every UDP server needs the same care, and this is it:
///
/// * **Routing.** Each datagram goes to the session of its sender's
///   address, found in a `HashMap`; a datagram from a new address calls
///   the factory, which makes the session or refuses the peer (`None`: the
///   datagram is dropped, and the peer's next datagram asks again). The
///   session replies through its [`Peer`] (`send_to` from the same socket).
/// * **No allocation per datagram.** Every datagram is received into one
///   buffer of [`max_datagram`](UdpSessions::max_datagram) bytes (64 KiB by
///   default: no UDP payload is longer), lent to the session; a datagram to
///   an existing session allocates nothing. A longer datagram (with a
///   smaller buffer) is dropped, logged at debug level.
/// * **Fairness.** At most [`per_event`](UdpSessions::per_event) datagrams
///   (64 by default) are received per `Read`; level semantics bring the
///   socket back next turn if more wait.
/// * **UDP errors do not kill the server.** A receive error (an ICMP port
///   unreachable reported for an earlier reply, say) and an `Error` event
///   are logged at debug level; the socket stays open.
/// * **Idle expiry.** A session whose peer sent nothing for
///   [`idle_timeout`](UdpSessions::idle_timeout) (60 s by default) ends
///   with [`SessionEnd::Idle`]. One periodic timer sweeps every session
///   each quarter of the timeout: O(sessions) per sweep, at a coarse period,
///   instead of a timer per session re-armed on every datagram. A session
///   thus ends between 1 and 1¼ timeouts after its last datagram (later if
///   the loop is late). The time of a datagram is read once per `Read`
///   event, not per datagram.
/// * **A cap.** With [`max_sessions`](UdpSessions::max_sessions), a new
///   peer is refused while that many sessions live: its datagram is dropped
///   (logged at debug level) and the factory is not called. Existing
///   sessions are never evicted for a newcomer: with spoofable source
///   addresses, eviction would let a flood of forged peers push out every
///   real one, while refusal only delays newcomers until sessions end or
///   expire. It also costs nothing, where finding the least recently active
///   session would cost a scan or an ordered index.
/// * **A kernel receive buffer large enough for a burst.** On registration
///   `SO_RCVBUF` is raised to
///   [`receive_buffer`](UdpSessions::receive_buffer) (4 MiB by default);
///   what the kernel granted is logged at info level (a warning if it could
///   not be set).
/// * **A graceful stop** ends every session with [`SessionEnd::Closed`]
///   while the socket is still open (a last reply goes out), then closes
///   the socket. Any other close ends them too, without the socket.
///
/// # Examples
///
/// An echo server that serves one datagram per peer, then stops:
///
/// ```
/// use sockmux_responder::{Dispatcher, Peer, UdpSessions};
/// use std::net::UdpSocket;
///
/// let sessions = UdpSessions::new(|_: &mut Peer<'_, '_, u32>| {
///     Some(|data: &[u8], peer: &mut Peer<'_, '_, u32>| {
///         let _ = peer.send(data);
///         *peer.cx.state += 1;
///         if *peer.cx.state == 2 {
///             peer.cx.stop();
///         }
///         false // one datagram per session
///     })
/// });
/// let mut dispatcher = Dispatcher::new(0)?;
/// let server = dispatcher.sockets().bind_udp("127.0.0.1:0", sessions)?;
/// let addr = dispatcher.sockets().local_addr(server)?;
/// let (a, b) = (UdpSocket::bind("127.0.0.1:0")?, UdpSocket::bind("127.0.0.1:0")?);
/// a.send_to(b"from a", addr)?;
/// b.send_to(b"from b", addr)?;
/// dispatcher.run_for(std::time::Duration::from_secs(10))?;
/// let mut buf = [0; 16];
/// let n = a.recv(&mut buf)?;
/// assert_eq!(&buf[..n], b"from a");
/// let n = b.recv(&mut buf)?;
/// assert_eq!(&buf[..n], b"from b");
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct UdpSessions<F, T> {
    factory: F,
    sessions: HashMap<SocketAddr, Live<T>>,
    buf: Vec<u8>,
    per_event: usize,
    idle: Duration,
    max_sessions: Option<usize>,
    receive_buffer: Option<usize>,
    /// The sweep's periodic timer, once registered.
    sweep: Option<TimerId>,
}

impl<F, T> UdpSessions<F, T> {
    /// A server that makes each new peer's session with `factory(peer)`
    /// (`None` refuses the peer), with the defaults: 64 datagrams per
    /// event, a 64 KiB receive buffer, sessions idle for 60 s expire, no
    /// cap, `SO_RCVBUF` raised to 4 MiB.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_responder::{Dispatcher, Peer, UdpSessions};
    ///
    /// // Serves loopback peers only.
    /// let sessions = UdpSessions::new(|peer: &mut Peer<'_, '_, ()>| {
    ///     peer.addr().ip().is_loopback().then_some(
    ///         |_: &[u8], _: &mut Peer<'_, '_, ()>| true,
    ///     )
    /// });
    /// let mut dispatcher = Dispatcher::new(())?;
    /// dispatcher.sockets().bind_udp("127.0.0.1:0", sessions)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new<S>(factory: F) -> UdpSessions<F, T>
    where
        F: FnMut(&mut Peer<'_, '_, S>) -> Option<T>,
        T: Session<S>,
    {
        UdpSessions {
            factory,
            sessions: HashMap::new(),
            buf: Vec::new(),
            per_event: DEFAULT_DATAGRAMS_PER_EVENT,
            idle: DEFAULT_IDLE_TIMEOUT,
            max_sessions: None,
            receive_buffer: Some(DEFAULT_RECEIVE_BUFFER),
            sweep: None,
        }
        .max_datagram(DEFAULT_MAX_DATAGRAM)
    }

    /// Receives at most `n` datagrams per `Read` of the socket (at least
    /// 1).
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_responder::{Peer, UdpSessions};
    ///
    /// let sessions = UdpSessions::new(|_: &mut Peer<'_, '_, ()>| {
    ///     Some(|_: &[u8], _: &mut Peer<'_, '_, ()>| true)
    /// })
    /// .per_event(16);
    /// # let _ = sessions;
    /// ```
    #[must_use]
    pub fn per_event(mut self, n: usize) -> UdpSessions<F, T> {
        self.per_event = n.max(1);
        self
    }

    /// The size of the one receive buffer (at least 1 byte): a longer
    /// datagram is dropped. The default, 65,536, fits any datagram; a
    /// protocol with small messages may save the memory.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_responder::{Peer, UdpSessions};
    ///
    /// let sessions = UdpSessions::new(|_: &mut Peer<'_, '_, ()>| {
    ///     Some(|_: &[u8], _: &mut Peer<'_, '_, ()>| true)
    /// })
    /// .max_datagram(1500);
    /// # let _ = sessions;
    /// ```
    #[must_use]
    pub fn max_datagram(mut self, bytes: usize) -> UdpSessions<F, T> {
        self.buf = vec![0; bytes.max(1)];
        self
    }

    /// Ends sessions whose peer sent nothing for `timeout` (at least 1 ms),
    /// checked every quarter of it: a session ends between 1 and 1¼
    /// timeouts after its last datagram.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_responder::{Peer, UdpSessions};
    /// use std::time::Duration;
    ///
    /// let sessions = UdpSessions::new(|_: &mut Peer<'_, '_, ()>| {
    ///     Some(|_: &[u8], _: &mut Peer<'_, '_, ()>| true)
    /// })
    /// .idle_timeout(Duration::from_secs(30));
    /// # let _ = sessions;
    /// ```
    #[must_use]
    pub fn idle_timeout(mut self, timeout: Duration) -> UdpSessions<F, T> {
        self.idle = timeout.max(Duration::from_millis(1));
        self
    }

    /// At most `n` sessions at once (at least 1): at the cap, a new peer's
    /// datagram is dropped without calling the factory; existing sessions
    /// are kept.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_responder::{Peer, UdpSessions};
    ///
    /// let sessions = UdpSessions::new(|_: &mut Peer<'_, '_, ()>| {
    ///     Some(|_: &[u8], _: &mut Peer<'_, '_, ()>| true)
    /// })
    /// .max_sessions(10_000);
    /// # let _ = sessions;
    /// ```
    #[must_use]
    pub fn max_sessions(mut self, n: usize) -> UdpSessions<F, T> {
        self.max_sessions = Some(n.max(1));
        self
    }

    /// The kernel receive buffer (`SO_RCVBUF`) to ask for on registration,
    /// or `None` to leave the system's default.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_responder::{Peer, UdpSessions};
    ///
    /// let sessions = UdpSessions::new(|_: &mut Peer<'_, '_, ()>| {
    ///     Some(|_: &[u8], _: &mut Peer<'_, '_, ()>| true)
    /// })
    /// .receive_buffer(Some(8 << 20));
    /// # let _ = sessions;
    /// ```
    #[must_use]
    pub fn receive_buffer(mut self, bytes: Option<usize>) -> UdpSessions<F, T> {
        self.receive_buffer = bytes;
        self
    }

    /// Whether the cap is reached.
    fn full(&self) -> bool {
        self.max_sessions
            .is_some_and(|max| self.sessions.len() >= max)
    }

    /// Ends every session with `why`.
    fn end_all<S>(&mut self, why: SessionEnd, cx: &mut Context<'_, S>)
    where
        T: Session<S>,
    {
        let socket = cx.token;
        for (addr, mut live) in self.sessions.drain() {
            let mut peer = Peer {
                cx: &mut *cx,
                socket,
                addr,
            };
            live.session.ended(why, &mut peer);
        }
    }
}

impl<F, T> fmt::Debug for UdpSessions<F, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UdpSessions")
            .field("sessions", &self.sessions.len())
            .field("max_datagram", &self.buf.len())
            .field("per_event", &self.per_event)
            .field("idle_timeout", &self.idle)
            .field("max_sessions", &self.max_sessions)
            .field("receive_buffer", &self.receive_buffer)
            .finish_non_exhaustive()
    }
}

/// Asks for a kernel receive buffer of `bytes`; returns what was granted.
fn raise_receive_buffer<S>(cx: &Context<'_, S>, bytes: usize) -> io::Result<usize> {
    let socket = socket2::SockRef::from(cx.sockets.socket(cx.token)?);
    socket.set_recv_buffer_size(bytes)?;
    socket.recv_buffer_size()
}

impl<S, F, T> Responder<S> for UdpSessions<F, T>
where
    F: FnMut(&mut Peer<'_, '_, S>) -> Option<T>,
    T: Session<S>,
{
    fn registered(&mut self, cx: &mut Context<'_, S>) -> Action {
        if let Some(bytes) = self.receive_buffer {
            match raise_receive_buffer(cx, bytes) {
                Ok(granted) => info!(
                    "{}: receive buffer: {bytes} bytes asked, {granted} granted",
                    cx.token
                ),
                Err(e) => warn!("{}: receive buffer of {bytes} bytes: {e}", cx.token),
            }
        }
        self.sweep = Some(cx.timer_every((self.idle / 4).max(Duration::from_millis(1))));
        Action::Continue
    }

    fn ready(&mut self, event: Event, cx: &mut Context<'_, S>) -> Action {
        let socket = match event {
            Event::Read(t) => t,
            Event::Error(t) => {
                // An ICMP report of an earlier reply, say: the socket lives.
                if let Ok(Some(e)) = cx.sockets.take_error(t) {
                    debug!("{t}: {e}");
                }
                return Action::Continue;
            }
            _ => return Action::Continue,
        };
        let now = Instant::now();
        for _ in 0..self.per_event {
            let (n, addr) = match cx.sockets.recv_from(socket, &mut self.buf) {
                Ok(got) => got,
                // Drained: the table waits for the next datagram.
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                // Longer than the buffer: gone; the next one is whole.
                Err(e) if e.kind() == ErrorKind::InvalidData => {
                    debug!("{socket}: {e}");
                    continue;
                }
                Err(e) => {
                    // The socket stays usable; the next turn tries again.
                    debug!("{socket}: receive: {e}");
                    break;
                }
            };
            let data = &self.buf[..n];
            let mut peer = Peer {
                cx: &mut *cx,
                socket,
                addr,
            };
            let keep = if let Some(live) = self.sessions.get_mut(&addr) {
                live.last = now;
                live.session.datagram(data, &mut peer)
            } else {
                if self.full() {
                    debug!(
                        "{socket}: {} sessions: datagram from new peer {addr} dropped",
                        self.sessions.len()
                    );
                    continue;
                }
                let Some(mut session) = (self.factory)(&mut peer) else {
                    debug!("{socket}: peer {addr} refused by the factory");
                    continue;
                };
                if session.datagram(data, &mut peer) {
                    let live = Live { session, last: now };
                    self.sessions.insert(addr, live);
                } else {
                    session.ended(SessionEnd::Finished, &mut peer);
                }
                continue;
            };
            if !keep {
                if let Some(mut live) = self.sessions.remove(&addr) {
                    live.session.ended(SessionEnd::Finished, &mut peer);
                }
            }
        }
        Action::Continue
    }

    fn timer(&mut self, id: TimerId, cx: &mut Context<'_, S>) -> Action {
        if self.sweep != Some(id) {
            return Action::Continue;
        }
        let (idle, now, socket) = (self.idle, Instant::now(), cx.token);
        self.sessions.retain(|&addr, live| {
            if now.saturating_duration_since(live.last) < idle {
                return true;
            }
            let mut peer = Peer {
                cx: &mut *cx,
                socket,
                addr,
            };
            live.session.ended(SessionEnd::Idle, &mut peer);
            false
        });
        Action::Continue
    }

    fn stop(&mut self, cx: &mut Context<'_, S>) -> Action {
        self.end_all(SessionEnd::Closed, cx);
        Action::Close
    }

    fn closed(&mut self, cx: &mut Context<'_, S>) {
        self.end_all(SessionEnd::Closed, cx);
    }
}
