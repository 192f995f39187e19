//! [`Acceptor`]: a listener's responder that accepts connections, makes a
//! responder for each, and survives running out of descriptors.

use std::cell::Cell;
use std::fmt;
use std::io::{self, ErrorKind};
use std::rc::Rc;
use std::time::{Duration, Instant};

use log::{debug, warn};
use sockmux_core::{Event, Interest, TimerId, Token};

use crate::dispatcher::ConnectionCount;
use crate::{Action, Context, Responder};

/// Connections accepted per `Read` of the listener at most, by default.
pub const DEFAULT_ACCEPTS_PER_EVENT: usize = 64;

/// How long a listener pauses after an accept error, by default; nginx
/// waits as long.
pub const DEFAULT_ACCEPT_PAUSE: Duration = Duration::from_millis(500);

/// The shortest time between two warnings of failed accepts; failures in
/// between are counted and logged at debug level.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// The responder of a TCP or Unix listener: accepts connections and
/// registers, for each, the responder that `factory` makes.
///
/// Every listener needs the same care, and this is it:
///
/// * **Fairness.** At most [`per_event`](Acceptor::per_event) connections
///   (64 by default) are accepted per `Read`; level semantics bring the
///   listener back next turn if more wait.
/// * **Out of descriptors** (`EMFILE`, `ENFILE`, `ENOBUFS`, or any other
///   accept error): level semantics would raise the listener's `Read`
///   again at once, a spin at full CPU. The acceptor pauses the listener
///   instead (interest `NONE`) and tries again after
///   [`pause`](Acceptor::pause) (500 ms by default, as nginx), or as soon
///   as any socket of the table closes and gives a descriptor back,
///   whichever comes first. Connections already open are served all along.
///   The error is logged: every one at debug level, and a warning at most
///   every 10 s with the count.
/// * **A cap.** With [`max_connections`](Acceptor::max_connections), the
///   listener pauses while that many of its connections are open (the
///   kernel's backlog holds the rest) and resumes when one closes.
/// * **A graceful stop** closes the listener (the default
///   [`stop`](Responder::stop)), so no connection comes in while the others
///   drain.
///
/// The factory is called once per accepted connection, with its token
/// (already in the table: ask it for its `peer_addr`, set socket options)
/// and the listener's context (the shared state, the registry).
///
/// # Examples
///
/// A server that greets each client and closes:
///
/// ```
/// use sockmux_core::{Event, Interest, Token};
/// use sockmux_responder::{Acceptor, Action, Context, Dispatcher};
/// use std::io::Read;
///
/// let greeter = |event: Event, cx: &mut Context<'_, u32>| {
///     if let Event::Write(t) = event {
///         let _ = cx.sockets.write(t, b"hello\n");
///         *cx.state += 1;
///         return Action::Close;
///     }
///     Action::Continue
/// };
/// let acceptor = Acceptor::new(move |t: Token, cx: &mut Context<'_, u32>| {
///     cx.sockets.set_interest(t, Interest::WRITABLE).expect("t is new");
///     greeter
/// });
/// let mut dispatcher = Dispatcher::new(0)?;
/// let listener = dispatcher.sockets().listen_tcp("127.0.0.1:0", acceptor)?;
/// let addr = dispatcher.sockets().local_addr(listener)?;
/// let client = std::thread::spawn(move || -> std::io::Result<String> {
///     let mut reply = String::new();
///     std::net::TcpStream::connect(addr)?.read_to_string(&mut reply)?;
///     Ok(reply)
/// });
/// while !client.is_finished() {
///     dispatcher.turn(Some(std::time::Duration::from_millis(10)))?;
/// }
/// assert_eq!(client.join().unwrap()?, "hello\n");
/// assert_eq!(*dispatcher.state(), 1);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Acceptor<F> {
    factory: F,
    per_event: usize,
    pause: Duration,
    /// With a cap: the count of open connections, shared with their slots
    /// (the dispatcher decrements it when one closes).
    count: Option<Rc<ConnectionCount>>,
    max_connections: Option<usize>,
    /// The timer of a pause after an accept error.
    paused: Option<TimerId>,
    /// When the last warning was logged, and failures since.
    last_warning: Option<Instant>,
    unwarned: u64,
}

impl<F> Acceptor<F> {
    /// An acceptor that registers `factory(token, cx)` for each connection,
    /// with the defaults: 64 accepts per event, a pause of 500 ms after an
    /// accept error, no cap.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_core::{Event, Token};
    /// use sockmux_responder::{Acceptor, Action, Context, Dispatcher};
    ///
    /// let acceptor = Acceptor::new(|_: Token, _: &mut Context<'_, ()>| {
    ///     |_: Event, _: &mut Context<'_, ()>| Action::Continue
    /// });
    /// let mut dispatcher = Dispatcher::new(())?;
    /// dispatcher.sockets().listen_tcp("127.0.0.1:0", acceptor)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new(factory: F) -> Acceptor<F> {
        Acceptor {
            factory,
            per_event: DEFAULT_ACCEPTS_PER_EVENT,
            pause: DEFAULT_ACCEPT_PAUSE,
            max_connections: None,
            count: None,
            paused: None,
            last_warning: None,
            unwarned: 0,
        }
    }

    /// Accepts at most `n` connections per `Read` of the listener (at
    /// least 1).
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_core::{Event, Token};
    /// use sockmux_responder::{Acceptor, Action, Context};
    ///
    /// let acceptor = Acceptor::new(|_: Token, _: &mut Context<'_, ()>| {
    ///     |_: Event, _: &mut Context<'_, ()>| Action::Continue
    /// })
    /// .per_event(16);
    /// # let _ = acceptor;
    /// ```
    #[must_use]
    pub fn per_event(mut self, n: usize) -> Acceptor<F> {
        self.per_event = n.max(1);
        self
    }

    /// How long the listener pauses after an accept error, unless a socket
    /// closes sooner.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_core::{Event, Token};
    /// use sockmux_responder::{Acceptor, Action, Context};
    /// use std::time::Duration;
    ///
    /// let acceptor = Acceptor::new(|_: Token, _: &mut Context<'_, ()>| {
    ///     |_: Event, _: &mut Context<'_, ()>| Action::Continue
    /// })
    /// .pause(Duration::from_secs(1));
    /// # let _ = acceptor;
    /// ```
    #[must_use]
    pub fn pause(mut self, pause: Duration) -> Acceptor<F> {
        self.pause = pause;
        self
    }

    /// At most `n` connections of this acceptor open at once (at least 1):
    /// the listener pauses at `n` and resumes when one closes; meanwhile
    /// the kernel's backlog holds new connections.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_core::{Event, Token};
    /// use sockmux_responder::{Acceptor, Action, Context};
    ///
    /// let acceptor = Acceptor::new(|_: Token, _: &mut Context<'_, ()>| {
    ///     |_: Event, _: &mut Context<'_, ()>| Action::Continue
    /// })
    /// .max_connections(10_000);
    /// # let _ = acceptor;
    /// ```
    #[must_use]
    pub fn max_connections(mut self, n: usize) -> Acceptor<F> {
        self.max_connections = Some(n.max(1));
        self
    }

    /// Whether the cap is reached.
    fn full(&self) -> bool {
        self.count
            .as_ref()
            .is_some_and(|count| count.open.get() >= count.max)
    }

    /// An accept failed: pause the listener, and log.
    fn failed<S>(&mut self, listener: Token, e: &io::Error, cx: &mut Context<'_, S>) {
        debug!(
            "{listener}: accept failed: {e}; pausing for {:?}",
            self.pause
        );
        self.unwarned += 1;
        let now = Instant::now();
        if self
            .last_warning
            .is_none_or(|at| now.duration_since(at) >= WARN_EVERY)
        {
            warn!(
                "{listener}: accept failed: {e} ({} times since the last warning); \
                 pausing the listener for {:?} at a time",
                self.unwarned, self.pause
            );
            self.last_warning = Some(now);
            self.unwarned = 0;
        }
        let _ = cx.sockets.set_interest(listener, Interest::NONE);
        // A close anywhere in the table resumes it sooner.
        cx.sockets.core.resume_on_close(listener);
        if self.paused.is_none() {
            self.paused = Some(cx.timer_after(self.pause));
        }
    }
}

impl<F> fmt::Debug for Acceptor<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Acceptor")
            .field("per_event", &self.per_event)
            .field("pause", &self.pause)
            .field("max_connections", &self.max_connections)
            .field("open", &self.count.as_ref().map(|c| c.open.get()))
            .field("paused", &self.paused.is_some())
            .finish_non_exhaustive()
    }
}

impl<F> Acceptor<F> {
    /// Accepts at most [`per_event`](Acceptor::per_event) connections from
    /// `listener`, each through `admit`, which returns the connection's
    /// token if it joined this table (to count it against the cap), and
    /// `WouldBlock` when no connection is left; any other error pauses the
    /// listener.
    pub(crate) fn accept_batch<S>(
        &mut self,
        listener: Token,
        cx: &mut Context<'_, S>,
        mut admit: impl FnMut(&mut F, &mut Context<'_, S>) -> io::Result<Option<Token>>,
    ) {
        if let (Some(max), None) = (self.max_connections, &self.count) {
            self.count = Some(Rc::new(ConnectionCount {
                open: Cell::new(0),
                max,
                listener,
            }));
        }
        for _ in 0..self.per_event {
            if self.full() {
                debug!(
                    "{listener}: {:?} connections open: pausing",
                    self.max_connections
                );
                let _ = cx.sockets.set_interest(listener, Interest::NONE);
                break;
            }
            match admit(&mut self.factory, cx) {
                Ok(Some(conn)) => {
                    if let Some(count) = &self.count {
                        cx.sockets.core.count_connection(conn, count);
                    }
                }
                Ok(None) => {}
                // Nobody else waits: the table re-arms the listener.
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => {
                    self.failed(listener, &e, cx);
                    break;
                }
            }
        }
    }

    /// A timer fired: if it ends a pause, the listener accepts again.
    pub(crate) fn timer_fired<S>(&mut self, id: TimerId, cx: &mut Context<'_, S>) {
        if self.paused == Some(id) {
            self.paused = None;
            debug!("{}: pause over: accepting again", cx.token);
            let _ = cx.sockets.set_interest(cx.token, Interest::READABLE);
        }
    }
}

impl<S, F, R> Responder<S> for Acceptor<F>
where
    F: FnMut(Token, &mut Context<'_, S>) -> R,
    R: Responder<S> + 'static,
{
    fn ready(&mut self, event: Event, cx: &mut Context<'_, S>) -> Action {
        let Event::Read(listener) = event else {
            return Action::Continue;
        };
        self.accept_batch(listener, cx, |factory, cx| {
            let conn = cx.sockets.core.accept_unattached(listener)?;
            let responder = factory(conn, cx);
            match cx.sockets.core.attach(Ok(conn), responder) {
                Ok(_) => Ok(Some(conn)),
                Err(e) => {
                    debug!("{conn}: gone before its responder: {e}");
                    Ok(None)
                }
            }
        });
        Action::Continue
    }

    fn timer(&mut self, id: TimerId, cx: &mut Context<'_, S>) -> Action {
        self.timer_fired(id, cx);
        Action::Continue
    }
}
