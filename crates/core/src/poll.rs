//! The poll engine: waiting on mio, folding each OS report into the
//! table's readiness bits, and turning readiness, wake-ups, signals and due
//! timers into [`Event`]s, at a cost that follows the number of ready
//! sockets, never the number registered.

use std::io;
use std::time::{Duration, Instant};

use log::{debug, trace};
use slab::Slab;

use crate::ready::Ready;
use crate::selector::RawEvent;
use crate::table::{enqueue, Entry, Queue, CONNECTING, EOF};
use crate::{Event, Events, Mode, Signal, Sockets, Table, Token};

/// mio tokens outside the slab's range (slab keys fit in u32).
pub(crate) const WAKE_KEY: usize = usize::MAX;
#[cfg(unix)]
pub(crate) const SIGNAL_KEY: usize = usize::MAX - 1;

impl<D> Sockets<D> {
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
        #[cfg(feature = "stats")]
        let begun = self.counters.poll_begins();
        let result = self.poll_events(events, timeout);
        #[cfg(feature = "stats")]
        self.counters
            .poll_returns(begun, events.len(), self.table.queue.tokens.len());
        result
    }

    /// [`poll`](Sockets::poll) without the figures.
    #[inline(always)]
    fn poll_events(&mut self, events: &mut Events, timeout: Option<Duration>) -> io::Result<usize> {
        events.clear();
        // The clock is read only to wait on with the time left, and never
        // for a zero timeout.
        let start = match timeout {
            Some(t) if !t.is_zero() => Some(Instant::now()),
            _ => None,
        };
        let mut left = timeout;
        loop {
            let reports = self.poll_once(events, left)?;
            // OS reports that raised no event (readiness nobody asked for;
            // on Windows every `WouldBlock` re-arms a socket and mio reports
            // its whole state again) do not end the wait: 0 events means
            // that the timeout passed.
            let done = !events.is_empty() || reports == 0 || left == Some(Duration::ZERO);
            // A record keeps this decision (it depends on the clock), and
            // its replay takes it from there.
            #[cfg(feature = "faults")]
            let done = crate::hooks::done_waiting(&self.table.hooks, done)?;
            if done {
                return Ok(events.len());
            }
            trace!("{reports} os reports raised no event: waiting on");
            if let (Some(start), Some(t)) = (start, timeout) {
                left = Some(t.saturating_sub(start.elapsed()));
            }
        }
    }

    /// One wait for readiness; returns the number of OS reports.
    // Inlined by hand: the crate is split by module, and rustc splits its
    // code generation the same way; without the hint these per-poll calls
    // stop being inlined into `poll` (16 more instructions per request in
    // the echo benchmark).
    #[inline]
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
    /// left. Costs O(queued), never O(table), and O(1) when I/O calls
    /// drained every socket served (the everyday case of a busy server).
    #[inline]
    fn prune_queue(&mut self) -> bool {
        let Table { slab, queue, .. } = &mut self.table;
        if queue.clear_if_drained() {
            return false;
        }
        // Compacts in place, keeping the order (a hand-written `retain`:
        // this runs once per event).
        let mut kept = 0;
        for i in 0..queue.tokens.len() {
            let token = queue.tokens[i];
            if let Some(entry) = slab.get_mut(token.key()) {
                if entry.generation == token.generation() {
                    if entry.reportable().is_empty() {
                        entry.queued = 0;
                        // A socket cut short by a full buffer starts afresh.
                        entry.skip = Ready::EMPTY;
                    } else {
                        entry.drained = false;
                        queue.tokens[kept] = token;
                        kept += 1;
                    }
                }
            }
        }
        queue.tokens.truncate(kept);
        queue.drained = 0;
        kept != 0
    }

    /// Waits for OS reports and folds each into the table as it is read
    /// (see [`apply`]); retries `Interrupted` with the time left. Returns
    /// the number of reports.
    #[inline]
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
            tracing: tracing(),
        };
        let result = loop {
            let Sockets {
                selector, table, ..
            } = self;
            #[cfg(feature = "faults")]
            let hooks = table.hooks.clone();
            let Table { slab, queue, .. } = table;
            #[cfg(feature = "faults")]
            let result = match &hooks {
                Some(hooks) => crate::hooks::select(hooks, selector, left, slab, |slab, event| {
                    apply(slab, queue, &mut special, &mut straight, events, event);
                }),
                None => selector.select_each(left, |event| {
                    apply(slab, queue, &mut special, &mut straight, events, event);
                }),
            };
            #[cfg(not(feature = "faults"))]
            let result = {
                let fold = |event| apply(slab, queue, &mut special, &mut straight, events, event);
                selector.select_each(left, fold)
            };
            match result {
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
    #[inline]
    fn emit_special(&mut self, events: &mut Events) {
        if self.woken && !events.is_full() {
            events.push(Event::Wake);
            self.woken = false;
            #[cfg(feature = "stats")]
            {
                self.counters.stats.wakes += 1;
            }
        }
        for signal in Signal::ALL {
            if self.signals_pending & signal.bit() != 0 && !events.is_full() {
                debug!("signal {signal:?}");
                events.push(Event::Signal(signal));
                self.signals_pending &= !signal.bit();
                #[cfg(feature = "stats")]
                {
                    self.counters.stats.signals += 1;
                }
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
                #[cfg(feature = "stats")]
                {
                    self.counters.stats.timers_fired += 1;
                }
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
    #[inline]
    fn emit(&mut self, events: &mut Events, delivered: usize) {
        let queued = self.table.queue.tokens.len();
        // The first `delivered` were served straight from the OS reports.
        let mut served = delivered;
        let tracing = tracing();
        for &token in &self.table.queue.tokens[delivered..] {
            if events.is_full() {
                break;
            }
            let entry = match self.table.slab.get_mut(token.key()) {
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
                push_io_events(entry, token, kinds, events, tracing);
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
                    #[cfg(feature = "stats")]
                    entry.stats.delivered_error();
                } else {
                    #[cfg(feature = "stats")]
                    entry.stats.delivered(kind);
                    #[cfg(debug_assertions)]
                    if kind == Ready::READABLE {
                        entry.probe.read_delivered();
                    }
                    if entry.mode == Mode::Edge {
                        entry.ready.remove(kind);
                    }
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
            self.table.queue.tokens.rotate_left(served);
        }
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
    queue: &mut Queue,
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
    if straight.tracing {
        trace_os(token, r);
    }
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
    if !straight.on || queue.contains(entry) {
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
    queue.push(entry, token);
    if !events.has_room_beyond(2) {
        // `emit` delivers this one and the rest, in queue order.
        straight.on = false;
        return;
    }
    // Delivered now, as `emit` would, without looking it up again.
    push_io_events(entry, token, kinds, events, straight.tracing);
    straight.delivered += 1;
}

/// Pushes a socket's `Read` then `Write`, as `kinds` says (never `Error`),
/// into a buffer with room for both; in edge mode, what was delivered is
/// not raised again before a new edge. Shared by `emit` and `apply`.
#[inline(always)]
fn push_io_events<D>(
    entry: &mut Entry<D>,
    token: Token,
    kinds: Ready,
    events: &mut Events,
    tracing: bool,
) {
    if tracing {
        trace_events(token, kinds);
    }
    if kinds.contains(Ready::READABLE) {
        events.push(Event::Read(token));
    }
    if kinds.contains(Ready::WRITABLE) {
        events.push(Event::Write(token));
    }
    #[cfg(feature = "stats")]
    entry.stats.delivered(kinds);
    #[cfg(debug_assertions)]
    if kinds.contains(Ready::READABLE) {
        entry.probe.read_delivered();
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
    /// [`tracing`], read once per wait.
    tracing: bool,
}

/// The `trace!` of an OS report, out of line: its arguments are not spilled
/// for it in the hot path.
#[cold]
#[inline(never)]
fn trace_os(token: Token, r: Ready) {
    trace!("{token}: os {r:?}");
}

/// The `trace!` of a socket's `Read`/`Write` events, out of line.
#[cold]
#[inline(never)]
fn trace_events(token: Token, kinds: Ready) {
    trace!("{token}: events {kinds:?}");
}

/// Whether `trace!` may log: its dynamic level check, read once per wait
/// (or per `emit`) instead of once per report and event, for the macros
/// of the per-socket hot path (they keep their own check).
#[inline]
fn tracing() -> bool {
    log::Level::Trace <= log::max_level()
}

/// [`apply`] for a socket at the end of its stream, still connecting, or
/// reported with an error.
#[cold]
#[inline(never)]
fn apply_rare<D>(queue: &mut Queue, entry: &mut Entry<D>, token: Token, mut r: Ready) {
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
