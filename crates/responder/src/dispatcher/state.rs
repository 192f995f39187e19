//! The dispatcher's private state and the engine that calls responders:
//! one call per event, hooks queued by a call run after it, graceful stops.

use std::any::Any;
use std::cell::Cell;
use std::collections::{HashMap, VecDeque};
use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;
use std::time::{Duration, Instant};

use log::{debug, error, trace};
use sockmux_core::{Event, Interest, Sockets, TimerId, Token};

use crate::{Action, Context, Registry, Responder};

/// A responder, boxed: the dispatcher holds one per socket.
pub(crate) type Boxed<S> = Box<dyn Responder<S>>;

/// What the dispatcher keeps for each socket, as the core table's
/// per-socket data: its responder and the timers it owns. Opaque: it
/// appears only as the `D` of the [`Table`](sockmux_core::Table) that a
/// [`Registry`] dereferences to.
pub struct Slot<S> {
    /// `None` only while the responder is being called (the dispatcher
    /// holds it then), or for an instant between registration and attach.
    pub(crate) responder: Option<Boxed<S>>,
    /// Timers this responder owns, cancelled when it closes.
    pub(crate) timers: Vec<TimerId>,
    /// The count of open connections of the capped acceptor that accepted
    /// this socket: decremented when it closes.
    pub(crate) counted: Option<Rc<ConnectionCount>>,
    /// The responder's type name, for logs and figures.
    pub(crate) name: &'static str,
    /// The responder's figures (feature `stats`).
    #[cfg(feature = "stats")]
    pub(crate) stats: crate::stats::SlotStats,
}

impl<S> Default for Slot<S> {
    fn default() -> Self {
        Slot {
            responder: None,
            timers: Vec::new(),
            counted: None,
            name: "(none)",
            #[cfg(feature = "stats")]
            stats: crate::stats::SlotStats::default(),
        }
    }
}

/// Open connections of a capped [`Acceptor`](crate::Acceptor), shared by the
/// acceptor and the slots of its connections.
#[derive(Debug)]
pub(crate) struct ConnectionCount {
    pub(crate) open: Cell<usize>,
    pub(crate) max: usize,
    pub(crate) listener: Token,
}

impl<S> std::fmt::Debug for Slot<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slot")
            .field("timers", &self.timers.len())
            .finish_non_exhaustive()
    }
}

/// Who owns a timer.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Owner {
    pub(crate) token: Token,
    pub(crate) periodic: bool,
}

/// Everything of the dispatcher but the shared state and the event buffer:
/// what a [`Registry`] and a [`Context`] reach into.
pub(crate) struct LoopState<S> {
    pub(crate) sockets: Sockets<Slot<S>>,
    pub(crate) owners: HashMap<TimerId, Owner>,
    /// Registered sockets whose `registered` hook has not run yet.
    pub(crate) registered: VecDeque<Token>,
    /// Removed responders whose `closed` hook has not run yet.
    pub(crate) closing: VecDeque<(Token, Boxed<S>)>,
    /// Sockets whose responders receive `Event::Wake` or an
    /// `Event::Signal`, with the event each receives.
    pub(crate) subscribers: Vec<(Token, Event)>,
    /// Listeners paused for want of descriptors: any close resumes them.
    pub(crate) paused_listeners: Vec<Token>,
    /// A socket accepted by an acceptor whose responder is being made: if
    /// the factory panics, the socket is removed with the acceptor's call.
    pub(crate) unattached: Option<Token>,
    /// `Context::stop` was called.
    pub(crate) stop: bool,
    /// A graceful stop was asked for from inside a handler, with its grace.
    pub(crate) stop_requested: Option<Duration>,
    /// The deadline of the graceful stop under way.
    pub(crate) stopping: Option<Instant>,
    /// Graceful stops begun so far (the multi-loop runner tells the other
    /// loops of one begun in its loop, however short).
    pub(crate) stops_begun: u64,
    /// The one read buffer every [`Stream`](crate::Stream) reads into (a
    /// stream keeps only a partial frame's bytes); empty until first used.
    pub(crate) scratch: Vec<u8>,
    /// The buffer a stream holds a pipeline's replies in, to write them
    /// with one call (and that [`StreamIo::write_with`] encodes into);
    /// empty between calls.
    ///
    /// [`StreamIo::write_with`]: crate::StreamIo::write_with
    pub(crate) batch: Vec<u8>,
    /// Sockets whose responder's `notified` hook is to run, each once.
    pub(crate) notified: VecDeque<Token>,
    /// The handlers' clock and the loop's figures (feature `stats`).
    #[cfg(feature = "stats")]
    pub(crate) clock: crate::stats::Clock,
    /// The graceful stop under way, as the drain report sees it.
    #[cfg(feature = "stats")]
    pub(crate) drain: crate::stats::Drain,
    /// The last graceful stop's report.
    #[cfg(feature = "stats")]
    pub(crate) drain_report: Option<crate::stats::DrainReport>,
    /// Sockets are being closed by the graceful stop's deadline.
    #[cfg(feature = "stats")]
    pub(crate) by_deadline: bool,
}

impl<S> LoopState<S> {
    pub(crate) fn new(sockets: Sockets<Slot<S>>) -> LoopState<S> {
        LoopState {
            sockets,
            owners: HashMap::new(),
            registered: VecDeque::new(),
            closing: VecDeque::new(),
            subscribers: Vec::new(),
            paused_listeners: Vec::new(),
            unattached: None,
            stop: false,
            stop_requested: None,
            stopping: None,
            stops_begun: 0,
            scratch: Vec::new(),
            batch: Vec::new(),
            notified: VecDeque::new(),
            #[cfg(feature = "stats")]
            clock: crate::stats::Clock::default(),
            #[cfg(feature = "stats")]
            drain: crate::stats::Drain::default(),
            #[cfg(feature = "stats")]
            drain_report: None,
            #[cfg(feature = "stats")]
            by_deadline: false,
        }
    }

    /// Removes a socket: closes it, cancels its timers and queues its
    /// responder's `closed` hook (unless the dispatcher holds the responder
    /// because it is being called: the dispatcher queues it after the call).
    pub(crate) fn remove(&mut self, token: Token) -> io::Result<()> {
        #[cfg(feature = "stats")]
        let bytes_out = match self.stopping {
            Some(_) => self.sockets.socket_stats(token).map_or(0, |s| s.bytes_out),
            None => 0,
        };
        let (socket, slot) = self.sockets.remove(token)?;
        drop(socket);
        #[cfg(feature = "stats")]
        {
            self.clock.closed(&slot.stats);
            if self.stopping.is_some() {
                self.drain.closed(token, &slot, bytes_out, self.by_deadline);
            }
        }
        if let Some(count) = slot.counted {
            let open = count.open.get().saturating_sub(1);
            count.open.set(open);
            if open + 1 == count.max {
                // It was full: room for one more. (A listener closed since
                // answers NotFound: nothing to resume then.)
                let _ = self
                    .sockets
                    .set_interest(count.listener, Interest::READABLE);
            }
        }
        for id in slot.timers {
            self.sockets.cancel_timer(id);
            self.owners.remove(&id);
        }
        if let Some(responder) = slot.responder {
            self.closing.push_back((token, responder));
        }
        if !self.subscribers.is_empty() {
            self.subscribers.retain(|&(t, _)| t != token);
        }
        if !self.paused_listeners.is_empty() {
            self.resume_listeners();
        }
        Ok(())
    }

    /// A descriptor came back: the listeners paused for want of one try
    /// again (a listener that fails again pauses again).
    #[cold]
    fn resume_listeners(&mut self) {
        for listener in std::mem::take(&mut self.paused_listeners) {
            if self
                .sockets
                .set_interest(listener, Interest::READABLE)
                .is_ok()
            {
                debug!("{listener}: a descriptor came back: accepting again");
            }
        }
    }

    /// Counts `conn` among the open connections of a capped acceptor.
    pub(crate) fn count_connection(&mut self, conn: Token, count: &Rc<ConnectionCount>) {
        if let Ok(slot) = self.sockets.data_mut(conn) {
            count.open.set(count.open.get() + 1);
            slot.counted = Some(Rc::clone(count));
        }
    }

    /// Resumes `listener` (paused by its acceptor) when any socket closes.
    pub(crate) fn resume_on_close(&mut self, listener: Token) {
        if !self.paused_listeners.contains(&listener) {
            self.paused_listeners.push(listener);
        }
    }

    /// Accepts one connection from `listener` into the table, with no
    /// responder yet: the caller attaches one (see [`LoopState::attach`]).
    pub(crate) fn accept_unattached(&mut self, listener: Token) -> io::Result<Token> {
        let conn = self.sockets.accept(listener)?;
        self.unattached = Some(conn);
        Ok(conn)
    }

    /// Gives a socket just added to the table its responder; its
    /// `registered` hook runs before its first event.
    pub(crate) fn attach<R: Responder<S> + 'static>(
        &mut self,
        token: io::Result<Token>,
        responder: R,
    ) -> io::Result<Token> {
        let token = token?;
        if self.unattached == Some(token) {
            self.unattached = None;
        }
        let slot = self.sockets.data_mut(token)?;
        slot.responder = Some(Box::new(responder));
        slot.name = std::any::type_name::<R>();
        self.registered.push_back(token);
        Ok(token)
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

    /// Subscribes `token`'s responder to `event` (once).
    pub(crate) fn subscribe(&mut self, token: Token, event: Event) {
        if !self.subscribers.contains(&(token, event)) {
            self.subscribers.push((token, event));
        }
    }

    /// Whether a hook or a graceful stop waits to be run.
    /// Takes the shared read buffer, at least `len` bytes long; give it
    /// back with [`put_scratch`](LoopState::put_scratch).
    pub(crate) fn take_scratch(&mut self, len: usize) -> Vec<u8> {
        let mut buf = std::mem::take(&mut self.scratch);
        if buf.len() < len {
            buf.resize(len, 0);
        }
        buf
    }

    /// Gives the shared read buffer back.
    pub(crate) fn put_scratch(&mut self, buf: Vec<u8>) {
        self.scratch = buf;
    }

    /// Debug builds: after a `Read` handler of `token`, warns (once per
    /// socket) of a misuse the core's probe found.
    #[cfg(debug_assertions)]
    #[inline]
    pub(crate) fn probe_after_read(&mut self, token: Token) {
        if let Some(misuse) = self.sockets.probe_after_read(token) {
            self.warn_misuse(token, misuse);
        }
    }

    #[cfg(debug_assertions)]
    #[cold]
    fn warn_misuse(&self, token: Token, misuse: sockmux_core::Misuse) {
        let name = self.sockets.data(token).map_or("(gone)", |slot| slot.name);
        match misuse {
            sockmux_core::Misuse::EdgeUndrained => log::warn!(
                "{token} ({name}): edge mode, and its Read handler returned before a read \
                 answered WouldBlock: bytes may be left that no event will announce \
                 (read until WouldBlock, or keep the socket in level mode)"
            ),
            sockmux_core::Misuse::LevelSpin => log::warn!(
                "{token} ({name}): {} Read events in a row, and its handler neither read \
                 nor dropped read interest: the loop spins on it (read, or set an \
                 interest without READABLE until it will)",
                sockmux_core::SPIN_EVENTS
            ),
            other => log::warn!("{token} ({name}): {other:?}"),
        }
    }

    /// A graceful stop is over: its report is made (feature `stats`).
    pub(crate) fn stop_ended(&mut self) {
        self.stopping = None;
        #[cfg(feature = "stats")]
        if let Some(report) = self.drain.end() {
            self.drain_report = Some(report);
        }
    }

    /// Queues a call of `token`'s `notified` hook, unless one is queued.
    pub(crate) fn notify(&mut self, token: Token) {
        if !self.notified.contains(&token) {
            self.notified.push_back(token);
        }
    }

    #[inline(always)]
    fn has_queued_work(&self) -> bool {
        !(self.closing.is_empty()
            && self.registered.is_empty()
            && self.notified.is_empty()
            && self.stop_requested.is_none())
    }
}

/// Calls the responder of `token` with `f`, then applies the action it
/// returns. False when the token is stale (its events are dropped).
pub(crate) fn call<S>(
    core: &mut LoopState<S>,
    state: &mut S,
    token: Token,
    f: impl FnOnce(&mut dyn Responder<S>, &mut Context<'_, S>) -> Action,
) -> bool {
    let Ok(slot) = core.sockets.data_mut(token) else {
        return false;
    };
    let Some(mut responder) = slot.responder.take() else {
        // Only the responder being called has no box in its slot, and calls
        // never nest.
        debug!("{token}: no responder attached");
        return false;
    };
    let result = panic::catch_unwind(AssertUnwindSafe(|| {
        let mut cx = Context {
            state,
            sockets: Registry { core: &mut *core },
            token,
            own: token,
        };
        f(&mut *responder, &mut cx)
    }));
    match result {
        Ok(action) => match core.sockets.data_mut(token) {
            Ok(slot) => {
                slot.responder = Some(responder);
                #[cfg(feature = "stats")]
                core.clock.charge(token, Some(slot));
                if action == Action::Close {
                    trace!("{token}: closed by its responder");
                    let _ = core.remove(token);
                }
            }
            // It removed its own socket during the call.
            Err(_) => {
                #[cfg(feature = "stats")]
                core.clock.charge::<S>(token, None);
                core.closing.push_back((token, responder));
            }
        },
        Err(payload) => {
            #[cfg(feature = "stats")]
            core.clock.charge::<S>(token, None);
            error!(
                "{token}: responder panicked: {}; closing its socket",
                panic_message(&*payload)
            );
            // The slot holds no responder now, so `remove` queues nothing.
            let _ = core.remove(token);
            core.closing.push_back((token, responder));
            // A connection accepted for a responder the panic never made.
            if let Some(orphan) = core.unattached.take() {
                let _ = core.remove(orphan);
            }
        }
    }
    true
}

/// Calls the responder of every socket subscribed to `event` (a wake-up
/// or a signal); forgets the subscriptions of sockets that are gone.
/// Returns how many were called.
pub(crate) fn call_subscribers<S>(core: &mut LoopState<S>, state: &mut S, event: Event) -> usize {
    let mut called = 0;
    let mut i = 0;
    while let Some(&entry) = core.subscribers.get(i) {
        let (token, wanted) = entry;
        if wanted != event {
            i += 1;
            continue;
        }
        if !call(core, state, token, |r, cx| r.ready(event, cx)) {
            // Its socket is gone.
            core.subscribers.swap_remove(i);
            continue;
        }
        called += 1;
        run_queued_work(core, state);
        // The call may have removed sockets, this one or others, and with
        // them their subscriptions (keeping the order): move on only if
        // the entry just served is still here, else what took its place
        // is next.
        if core.subscribers.get(i) == Some(&entry) {
            i += 1;
        }
    }
    called
}

/// Runs what the last call queued (hooks, a graceful stop asked for). The
/// common case, after nearly every event, is nothing to run, found without
/// a call.
#[inline(always)]
pub(crate) fn run_queued_work<S>(core: &mut LoopState<S>, state: &mut S) {
    if core.has_queued_work() {
        run_hooks_and_stop_requests(core, state);
    }
}

#[inline(never)]
fn run_hooks_and_stop_requests<S>(core: &mut LoopState<S>, state: &mut S) {
    // Hooks are timed from here, not from the last handler's return.
    #[cfg(feature = "stats")]
    core.clock.restart();
    loop {
        run_hooks(core, state);
        match core.stop_requested.take() {
            Some(grace) => start_graceful_stop(core, state, grace),
            None => return,
        }
    }
}

/// Starts a graceful stop (unless one is under way): sets its deadline and
/// calls every responder's `stop` hook.
pub(crate) fn start_graceful_stop<S>(core: &mut LoopState<S>, state: &mut S, grace: Duration) {
    if core.stopping.is_some() {
        return;
    }
    debug!(
        "stopping gracefully within {grace:?}: {} sockets",
        core.sockets.len()
    );
    core.stopping = Some(deadline_after(grace));
    core.stops_begun += 1;
    #[cfg(feature = "stats")]
    {
        core.drain.begin(&mut core.sockets);
        core.clock.restart();
    }
    let tokens: Vec<Token> = core.sockets.tokens().collect();
    for token in tokens {
        call(core, state, token, |r, cx| r.stop(cx));
        run_hooks(core, state);
    }
}

/// Runs the queued `closed` hooks, then the `registered` hooks (and, during
/// a graceful stop, the `stop` hook of each socket registered meanwhile),
/// until none is left.
pub(crate) fn run_hooks<S>(core: &mut LoopState<S>, state: &mut S) {
    loop {
        if let Some((token, responder)) = core.closing.pop_front() {
            let result = panic::catch_unwind(AssertUnwindSafe(|| {
                let mut responder = responder;
                let mut cx = Context {
                    state: &mut *state,
                    sockets: Registry { core: &mut *core },
                    token,
                    own: token,
                };
                responder.closed(&mut cx);
                drop(responder);
            }));
            // Its time goes to no socket; the next call is timed from here.
            #[cfg(feature = "stats")]
            core.clock.restart();
            if let Err(payload) = result {
                error!(
                    "{token}: responder panicked while closing: {}",
                    panic_message(&*payload)
                );
            }
        } else if let Some(token) = core.registered.pop_front() {
            call(core, state, token, |r, cx| r.registered(cx));
            if core.stopping.is_some() {
                call(core, state, token, |r, cx| r.stop(cx));
            }
        } else if let Some(token) = core.notified.pop_front() {
            // A socket removed since it was notified is skipped.
            call(core, state, token, |r, cx| r.notified(cx));
        } else {
            return;
        }
    }
}

/// The deadline `grace` from now. A grace too long to add to an instant
/// (`Duration::MAX`, as "take all the time needed") is a century.
fn deadline_after(grace: Duration) -> Instant {
    const CENTURY: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
    let now = Instant::now();
    now.checked_add(grace.min(CENTURY)).unwrap_or(now)
}

pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "a non-string payload"
    }
}
