//! [`Dispatcher`]: the loop that hands each event to its responder. Its
//! private state and the engine that calls responders are in
//! `dispatcher/state.rs`.

use std::fmt;
use std::io;
use std::time::{Duration, Instant};

use log::{debug, trace, warn};
use sockmux_core::{Event, Events, Signal, Sockets, Token};

mod state;

pub use state::Slot;
use state::{call, call_subscribers, run_hooks, run_queued_work, start_graceful_stop};
pub(crate) use state::{panic_message, ConnectionCount, LoopState};

use crate::Registry;
#[cfg(doc)]
use crate::{Context, Responder};

/// Default size of the event buffer: events handled per turn at most.
const DEFAULT_EVENTS: usize = 1024;

/// The loop: polls the socket table and hands each event to the responder
/// registered for its token, with the shared state `S`.
///
/// Register sockets through [`sockets`](Dispatcher::sockets), then drive it
/// with [`run`](Dispatcher::run), [`run_for`](Dispatcher::run_for) or one
/// [`turn`](Dispatcher::turn) at a time; end it with
/// [`stop_gracefully`](Dispatcher::stop_gracefully).
///
/// # What the dispatcher guarantees
///
/// * A responder is never called while another call is under way; what a
///   handler asks for (close, register, remove) is applied when its call
///   returns, before the next event is dispatched.
/// * Events of a socket removed earlier in the batch are dropped; tokens
///   are generational, so a socket that reused the slot never sees them.
/// * [`Responder::closed`] runs exactly once for every socket that leaves
///   the table through the dispatcher, then the responder is dropped.
///   Dropping the dispatcher drops the remaining responders and closes
///   their sockets without calling any hook.
/// * A panicking responder is logged and closed; the rest go on.
/// * `Wake` and `Signal` events go to the responders that asked for them
///   ([`Context::channel`], [`Context::waker`],
///   [`Context::watch_signals`]), as `ready(Event::Wake)` or
///   `ready(Event::Signal(_))`.
///
/// # Examples
///
/// An echo server: the listener's [`Acceptor`](crate::Acceptor) registers a
/// `Conn` for each connection.
///
/// ```
/// use sockmux_core::{Event, Token};
/// use sockmux_responder::{Acceptor, Action, Context, Dispatcher, Responder};
/// use std::io::{ErrorKind, Read, Write};
///
/// struct Conn;
///
/// impl Responder<()> for Conn {
///     fn ready(&mut self, _: Event, cx: &mut Context<'_, ()>) -> Action {
///         let mut buf = [0; 1024];
///         match cx.sockets.read(cx.token, &mut buf) {
///             Ok(0) => Action::Close, // the peer is done
///             Ok(n) => {
///                 // A short demo: a real server keeps what could not be written.
///                 cx.sockets.write(cx.token, &buf[..n]).ok();
///                 Action::Continue
///             }
///             Err(e) if e.kind() == ErrorKind::WouldBlock => Action::Continue,
///             Err(_) => Action::Close,
///         }
///     }
/// }
///
/// let mut dispatcher = Dispatcher::new(())?;
/// let acceptor = Acceptor::new(|_: Token, _: &mut Context<'_, ()>| Conn);
/// let listener = dispatcher.sockets().listen_tcp("127.0.0.1:0", acceptor)?;
/// let addr = dispatcher.sockets().local_addr(listener)?;
/// let client = std::thread::spawn(move || -> std::io::Result<Vec<u8>> {
///     let mut stream = std::net::TcpStream::connect(addr)?;
///     stream.write_all(b"ping")?;
///     let mut reply = [0; 4];
///     stream.read_exact(&mut reply)?;
///     Ok(reply.to_vec())
/// });
/// while !client.is_finished() {
///     dispatcher.turn(Some(std::time::Duration::from_millis(10)))?;
/// }
/// assert_eq!(client.join().unwrap()?, b"ping");
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Dispatcher<S> {
    core: LoopState<S>,
    state: S,
    events: Events,
    /// Signals that begin a graceful stop, with its grace.
    stop_signals: Vec<Signal>,
    signal_grace: Duration,
}

impl<S> fmt::Debug for Dispatcher<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dispatcher")
            .field("sockets", &self.core.sockets)
            .field("timers", &self.core.owners.len())
            .field("stopping", &self.core.stopping)
            .finish_non_exhaustive()
    }
}

impl<S> Dispatcher<S> {
    /// A dispatcher with an empty table around the shared state `state`,
    /// handling up to 1024 events per turn.
    ///
    /// # Errors
    ///
    /// The OS error from creating the poller.
    ///
    /// # Examples
    ///
    /// ```
    /// let dispatcher = sockmux_responder::Dispatcher::new(String::from("state"))?;
    /// assert_eq!(dispatcher.state(), "state");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new(state: S) -> io::Result<Dispatcher<S>> {
        Dispatcher::with_event_capacity(state, DEFAULT_EVENTS)
    }

    /// A dispatcher handling at most `capacity` events per turn (at least
    /// 1); readiness that does not fit waits for the next turn.
    ///
    /// # Errors
    ///
    /// The OS error from creating the poller.
    ///
    /// # Examples
    ///
    /// ```
    /// let dispatcher = sockmux_responder::Dispatcher::with_event_capacity((), 1)?;
    /// # let _ = dispatcher;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn with_event_capacity(state: S, capacity: usize) -> io::Result<Dispatcher<S>> {
        Dispatcher::build(state, 0, capacity)
    }

    /// A dispatcher whose table has room for `sockets` sockets before it
    /// grows (as [`Sockets::with_capacity`]): a server that knows roughly
    /// how many connections it will hold allocates their slots once,
    /// instead of doubling a table as they come (which leaves the old,
    /// smaller tables' memory with the allocator).
    ///
    /// # Errors
    ///
    /// The OS error from creating the poller.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut dispatcher = sockmux_responder::Dispatcher::with_capacity((), 1024)?;
    /// assert!(dispatcher.sockets().is_empty());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn with_capacity(state: S, sockets: usize) -> io::Result<Dispatcher<S>> {
        Dispatcher::build(state, sockets, DEFAULT_EVENTS)
    }

    fn build(state: S, sockets: usize, events: usize) -> io::Result<Dispatcher<S>> {
        let core = LoopState::new(Sockets::<Slot<S>>::with_capacity(sockets)?);
        let mut dispatcher = Dispatcher::from_parts(core, state);
        dispatcher.events = Events::with_capacity(events);
        Ok(dispatcher)
    }

    /// A dispatcher around a table made (and filled) before its state.
    pub(crate) fn from_parts(core: LoopState<S>, state: S) -> Dispatcher<S> {
        Dispatcher {
            core,
            state,
            events: Events::with_capacity(DEFAULT_EVENTS),
            stop_signals: Vec::new(),
            signal_grace: Duration::ZERO,
        }
    }

    /// The table and the state, borrowed apart (as a [`Context`] holds
    /// them).
    pub(crate) fn parts(&mut self) -> (&mut LoopState<S>, &mut S) {
        (&mut self.core, &mut self.state)
    }

    /// Begins a graceful stop (unless one is under way) and returns: the
    /// caller turns the loop until the table is empty.
    pub(crate) fn begin_stop(&mut self, grace: Duration) {
        self.run_queued_work();
        start_graceful_stop(&mut self.core, &mut self.state, grace);
        self.run_queued_work();
    }

    /// The shared state.
    ///
    /// # Examples
    ///
    /// ```
    /// let dispatcher = sockmux_responder::Dispatcher::new(7)?;
    /// assert_eq!(*dispatcher.state(), 7);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[must_use]
    pub fn state(&self) -> &S {
        &self.state
    }

    /// The shared state, mutably (between turns).
    ///
    /// # Examples
    ///
    /// ```
    /// let mut dispatcher = sockmux_responder::Dispatcher::new(7)?;
    /// *dispatcher.state_mut() += 1;
    /// assert_eq!(*dispatcher.state(), 8);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn state_mut(&mut self) -> &mut S {
        &mut self.state
    }

    /// Drops the dispatcher (closing every socket, without hooks) and hands
    /// back the shared state.
    ///
    /// # Examples
    ///
    /// ```
    /// let dispatcher = sockmux_responder::Dispatcher::new(vec![1, 2])?;
    /// assert_eq!(dispatcher.into_state(), [1, 2]);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn into_state(self) -> S {
        self.state
    }

    /// The socket table, for registering sockets and asking about them
    /// between turns. Hooks of what is registered or removed here run at
    /// the start of the next turn.
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
    pub fn sockets(&mut self) -> Registry<'_, S> {
        Registry {
            core: &mut self.core,
        }
    }

    /// The dispatcher's figures (feature `stats`): as
    /// [`Registry::dispatcher_stats`].
    ///
    /// # Examples
    ///
    /// ```
    /// let dispatcher = sockmux_responder::Dispatcher::new(())?;
    /// assert_eq!(dispatcher.stats().turns, 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[cfg(feature = "stats")]
    #[must_use]
    pub fn stats(&self) -> crate::DispatcherStats {
        self.core.dispatcher_stats()
    }

    /// The report of the last graceful stop that completed (feature
    /// `stats`): per socket, what was written and what was cut off.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut dispatcher = sockmux_responder::Dispatcher::new(())?;
    /// assert!(dispatcher.drain_report().is_none());
    /// dispatcher.stop_gracefully(std::time::Duration::from_secs(1))?;
    /// assert_eq!(dispatcher.drain_report().map(|r| r.sockets.len()), Some(0));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[cfg(feature = "stats")]
    #[must_use]
    pub fn drain_report(&self) -> Option<&crate::DrainReport> {
        self.core.drain_report.as_ref()
    }

    /// Whether a responder called [`Context::stop`] (cleared when a run
    /// starts).
    ///
    /// # Examples
    ///
    /// ```
    /// let dispatcher = sockmux_responder::Dispatcher::new(())?;
    /// assert!(!dispatcher.is_stopped());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[must_use]
    pub fn is_stopped(&self) -> bool {
        self.core.stop
    }

    /// Turns the loop once: runs pending hooks, polls (waiting at most
    /// `timeout`, `None` for no limit but the timers'), and dispatches the
    /// events; returns how many reached a responder.
    ///
    /// # Errors
    ///
    /// The OS error from the poller. Errors of single sockets go to their
    /// responders as `Error` events, never here.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let mut dispatcher = sockmux_responder::Dispatcher::new(())?;
    /// assert_eq!(dispatcher.turn(Some(Duration::from_millis(1)))?, 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn turn(&mut self, timeout: Option<Duration>) -> io::Result<usize> {
        self.run_queued_work();
        let timeout = match self.core.stopping {
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                Some(timeout.map_or(left, |t| t.min(left)))
            }
            None => timeout,
        };
        self.core.sockets.poll(&mut self.events, timeout)?;
        #[cfg(feature = "stats")]
        self.core.clock.turn_begins();
        let mut dispatched = 0;
        for event in self.events.iter() {
            let (core, state) = (&mut self.core, &mut self.state);
            match event {
                Event::Read(token) | Event::Write(token) | Event::Error(token) => {
                    if call(core, state, token, |r, cx| r.ready(event, cx)) {
                        dispatched += 1;
                        #[cfg(debug_assertions)]
                        if let Event::Read(token) = event {
                            core.probe_after_read(token);
                        }
                    } else {
                        trace!("{event:?}: socket removed earlier in the batch, dropped");
                    }
                }
                Event::Timer(id) => {
                    let Some(owner) = core.owners.get(&id).copied() else {
                        trace!("{id}: no owner, dropped");
                        continue;
                    };
                    if !owner.periodic {
                        core.disown_timer(id);
                    }
                    if call(core, state, owner.token, |r, cx| r.timer(id, cx)) {
                        dispatched += 1;
                    }
                }
                Event::Wake => dispatched += call_subscribers(core, state, event),
                Event::Signal(signal) => {
                    if self.stop_signals.contains(&signal) {
                        match core.stopping {
                            None => {
                                debug!("{signal:?}: stopping gracefully");
                                core.stop_requested = Some(self.signal_grace);
                            }
                            Some(_) => {
                                warn!("{signal:?} again while stopping: closing everything now");
                                core.stopping = Some(Instant::now());
                            }
                        }
                    }
                    dispatched += call_subscribers(core, state, event);
                }
                other => trace!("{other:?}: not dispatched"),
            }
            run_queued_work(core, state);
        }
        #[cfg(feature = "stats")]
        self.core.clock.turn_ends();
        if let Some(deadline) = self.core.stopping {
            if Instant::now() >= deadline {
                self.close_all();
            }
            if self.core.sockets.is_empty() {
                debug!("graceful stop complete");
                self.core.stop_ended();
            }
        }
        Ok(dispatched)
    }

    /// Runs until a responder calls [`Context::stop`], a graceful stop
    /// completes, or the table is empty (nothing could happen any more).
    ///
    /// # Errors
    ///
    /// The OS error from the poller.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_core::{Event, Interest};
    /// use sockmux_responder::{Action, Context, Dispatcher};
    ///
    /// let mut dispatcher = Dispatcher::new(0)?;
    /// let mut sockets = dispatcher.sockets();
    /// let t = sockets.bind_udp("127.0.0.1:0", |_: Event, cx: &mut Context<'_, u32>| {
    ///     *cx.state += 1;
    ///     if *cx.state == 10 { Action::Close } else { Action::Continue }
    /// })?;
    /// sockets.set_interest(t, Interest::WRITABLE)?; // a Write every turn
    /// dispatcher.run()?;
    /// assert_eq!(*dispatcher.state(), 10);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn run(&mut self) -> io::Result<()> {
        self.run_until(None)
    }

    /// [`run`](Dispatcher::run), but for `duration` at most. Sockets stay
    /// open when time is up.
    ///
    /// # Errors
    ///
    /// The OS error from the poller.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_core::Event;
    /// use sockmux_responder::{Action, Context, Dispatcher};
    /// use std::time::{Duration, Instant};
    ///
    /// let mut dispatcher = Dispatcher::new(())?;
    /// dispatcher.sockets().bind_udp("127.0.0.1:0",
    ///     |_: Event, _: &mut Context<'_, ()>| Action::Continue)?;
    /// let start = Instant::now();
    /// dispatcher.run_for(Duration::from_millis(20))?; // nothing happens
    /// assert!(start.elapsed() >= Duration::from_millis(20));
    /// assert_eq!(dispatcher.sockets().len(), 1);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn run_for(&mut self, duration: Duration) -> io::Result<()> {
        // A duration too long to add to an instant is "no limit".
        self.run_until(Instant::now().checked_add(duration))
    }

    fn run_until(&mut self, deadline: Option<Instant>) -> io::Result<()> {
        self.core.stop = false;
        loop {
            self.run_queued_work();
            if self.core.stop || self.core.sockets.is_empty() {
                return Ok(());
            }
            let timeout = match deadline {
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Ok(());
                    }
                    Some(left)
                }
                None => None,
            };
            self.turn(timeout)?;
        }
    }

    /// Stops gracefully and returns when every socket is closed: each
    /// responder's [`stop`](Responder::stop) hook runs, the loop runs on
    /// until the table is empty, and whatever is still open after `grace`
    /// is closed (with its `closed` hook, and a warning in the log). What a
    /// responder does on `stop` is its own: by default it closes at once;
    /// an [`Acceptor`](crate::Acceptor) closes its listener; a connection
    /// that queues output should flush it, then close.
    ///
    /// # Errors
    ///
    /// The OS error from the poller.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_core::Event;
    /// use sockmux_responder::{Action, Context, Dispatcher};
    /// use std::time::Duration;
    ///
    /// let mut dispatcher = Dispatcher::new(())?;
    /// dispatcher.sockets().listen_tcp("127.0.0.1:0",
    ///     |_: Event, _: &mut Context<'_, ()>| Action::Continue)?;
    /// dispatcher.stop_gracefully(Duration::from_secs(5))?;
    /// assert!(dispatcher.sockets().is_empty());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn stop_gracefully(&mut self, grace: Duration) -> io::Result<()> {
        self.run_queued_work();
        start_graceful_stop(&mut self.core, &mut self.state, grace);
        while !self.core.sockets.is_empty() {
            self.turn(None)?;
        }
        self.run_queued_work();
        if self.core.stopping.is_some() {
            self.core.stop_ended();
        }
        Ok(())
    }

    /// Watches process signals (see [`Sockets::watch_signals`]) and begins
    /// a graceful stop with `grace` when one arrives; a second one while
    /// stopping closes everything at once.
    ///
    /// # Errors
    ///
    /// The OS error from installing the handler.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_core::Signal;
    /// use std::time::Duration;
    ///
    /// let mut dispatcher = sockmux_responder::Dispatcher::new(())?;
    /// dispatcher.stop_on_signals(&[Signal::Terminate], Duration::from_secs(5))?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn stop_on_signals(&mut self, signals: &[Signal], grace: Duration) -> io::Result<()> {
        self.core.sockets.watch_signals(signals)?;
        self.stop_signals.extend_from_slice(signals);
        self.signal_grace = grace;
        Ok(())
    }

    /// Runs the hooks and the graceful stop that calls or registrations
    /// since the last event queued.
    pub(crate) fn run_queued_work(&mut self) {
        run_queued_work(&mut self.core, &mut self.state);
    }

    fn close_all(&mut self) {
        let tokens: Vec<Token> = self.core.sockets.tokens().collect();
        if !tokens.is_empty() {
            warn!(
                "stop deadline passed: closing {} sockets still open",
                tokens.len()
            );
        }
        #[cfg(feature = "stats")]
        {
            self.core.by_deadline = true;
        }
        for token in tokens {
            let _ = self.core.remove(token);
        }
        #[cfg(feature = "stats")]
        {
            self.core.by_deadline = false;
        }
        run_hooks(&mut self.core, &mut self.state);
    }
}
