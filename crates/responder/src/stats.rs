//! (feature `stats`) The dispatcher's figures: time in each handler per
//! socket and per loop, the longest turn and who made it, streams' queued
//! bytes and paused time, and the report of a graceful stop. Read them
//! through [`Registry::dispatcher_stats`], [`Registry::responder_stats`],
//! [`Registry::all_responder_stats`] (a handler reaches them through
//! `cx.sockets`, a program through [`Dispatcher::sockets`]). Nothing is
//! allocated per event: the counters are fields of the slot and the loop.

use std::fmt;
use std::time::{Duration, Instant};

use sockmux_core::{clock_ns, LoopStats, SocketStats, Ticks, Token};

use crate::dispatcher::{LoopState, Slot};
#[cfg(doc)]
use crate::Dispatcher;
use crate::Registry;

/// Sub-buckets per power of two in a [`Histogram`].
const SUB: usize = 4;
/// Buckets of a [`Histogram`]: 4 per power of two up to 2^64 units; a
/// power of two in length, so that a masked index needs no bounds check.
const BUCKETS: usize = 256;

/// A histogram of durations: four buckets per power of two (a quantile
/// read from it is the top of its bucket, at most 25% above the truth),
/// fixed size, no allocation.
///
/// # Examples
///
/// ```
/// use sockmux_responder::Histogram;
/// use std::time::Duration;
///
/// let mut h = Histogram::default();
/// for us in 1..=100 {
///     h.record(Duration::from_micros(us));
/// }
/// assert_eq!(h.count(), 100);
/// let p99 = h.quantile(0.99);
/// assert!(p99 >= Duration::from_micros(99) && p99 <= Duration::from_micros(120));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Histogram {
    buckets: [u64; BUCKETS],
    /// The unit the buckets count in, in femtoseconds: a nanosecond, or
    /// the dispatcher's clock tick.
    unit_fs: u64,
}

/// Femtoseconds in a nanosecond.
const FS_PER_NS: u64 = sockmux_core::FS_PER_NS;

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            buckets: [0; BUCKETS],
            unit_fs: FS_PER_NS,
        }
    }
}

impl fmt::Debug for Histogram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Histogram")
            .field("count", &self.count())
            .field("p50", &self.quantile(0.5))
            .field("p99", &self.quantile(0.99))
            .finish()
    }
}

impl Histogram {
    /// The bucket of `units`: 4 * the power of two below it, plus the next
    /// two bits. Read off a float's exponent and mantissa, a handful of
    /// instructions (0 counts as 1; above 2^24 the float's rounding may put
    /// a value at the top of a bucket into the next).
    #[inline]
    fn bucket(units: u64) -> usize {
        // Below 2^63 the conversion is one instruction; the wrapping
        // differences the dispatcher records always are.
        let bits = (units.max(1) as i64 as f32).to_bits();
        // Exponent (bias 127) and the mantissa's top two bits: 4 * 127 for
        // 1. The mask changes nothing for the values that occur but spares
        // the bounds check.
        ((bits >> 21) as usize).wrapping_sub(4 * 127) & (BUCKETS - 1)
    }

    /// The largest value in bucket `i`.
    fn upper(i: usize) -> u64 {
        let (power, sub) = (i / SUB, (i % SUB) as u128);
        // The bucket ends (excluded) at 2^power * (5 + sub) / 4.
        let end4 = (5 + sub) << power;
        u64::try_from(end4.div_ceil(4) - 1).unwrap_or(u64::MAX)
    }

    /// Counts one duration.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut h = sockmux_responder::Histogram::default();
    /// h.record(std::time::Duration::from_millis(3));
    /// assert_eq!(h.count(), 1);
    /// ```
    #[inline]
    pub fn record(&mut self, d: Duration) {
        let units = d.as_nanos() * u128::from(FS_PER_NS) / u128::from(self.unit_fs.max(1));
        self.record_units(u64::try_from(units).unwrap_or(u64::MAX));
    }

    #[inline]
    fn record_units(&mut self, units: u64) {
        self.buckets[Histogram::bucket(units)] += 1;
    }

    /// A duration in this histogram's units.
    fn duration(&self, units: u64) -> Duration {
        let ns = u128::from(units) * u128::from(self.unit_fs) / u128::from(FS_PER_NS);
        Duration::from_nanos(u64::try_from(ns).unwrap_or(u64::MAX))
    }

    /// Durations counted.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(sockmux_responder::Histogram::default().count(), 0);
    /// ```
    #[must_use]
    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }

    /// The duration below which a fraction `q` (0 to 1) of the counted
    /// durations fall: the top of the bucket holding it. Zero when empty.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let mut h = sockmux_responder::Histogram::default();
    /// h.record(Duration::from_micros(10));
    /// let p = h.quantile(0.5);
    /// assert!(p >= Duration::from_micros(10) && p < Duration::from_micros(12));
    /// ```
    #[must_use]
    pub fn quantile(&self, q: f64) -> Duration {
        let count = self.count();
        if count == 0 {
            return Duration::ZERO;
        }
        let rank = ((q.clamp(0.0, 1.0) * count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, &n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return self.duration(Histogram::upper(i));
            }
        }
        self.duration(Histogram::upper(BUCKETS - 1))
    }

    /// What was counted since `earlier` (an older copy of this
    /// histogram): for figures over the last second, say.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let mut h = sockmux_responder::Histogram::default();
    /// h.record(Duration::from_secs(1));
    /// let then = h.clone();
    /// h.record(Duration::from_micros(5));
    /// let last = h.since(&then);
    /// assert_eq!(last.count(), 1);
    /// assert!(last.quantile(1.0) < Duration::from_micros(6));
    /// ```
    #[must_use]
    pub fn since(&self, earlier: &Histogram) -> Histogram {
        let mut out = Histogram {
            unit_fs: self.unit_fs,
            ..Histogram::default()
        };
        for (i, b) in out.buckets.iter_mut().enumerate() {
            *b = self.buckets[i].saturating_sub(earlier.buckets[i]);
        }
        out
    }
}

/// One socket's figures as the dispatcher sees it: the core table's
/// ([`SocketStats`]: events, bytes, calls) and the responder's (time in
/// its handler, a stream's queued bytes and paused time).
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
/// let stats = dispatcher.sockets().responder_stats(t)?;
/// assert_eq!(stats.token, t);
/// assert_eq!(stats.handler_calls, 0);
/// assert!(stats.responder.contains("closure"));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ResponderStats {
    /// The socket.
    pub token: Token,
    /// The responder's type name.
    pub responder: &'static str,
    /// The core table's figures of the socket.
    pub io: SocketStats,
    /// Calls of the responder (events, timers and hooks).
    pub handler_calls: u64,
    /// Time spent in them.
    pub handler_time: Duration,
    /// The longest of them.
    pub handler_max: Duration,
    /// A [`Stream`](crate::Stream)'s bytes queued for writing (as of its
    /// last call that queued or flushed); 0 for other responders.
    pub queued: usize,
    /// How long a [`Stream`](crate::Stream)'s reading has been paused by
    /// its water marks, in all (the pause under way included).
    pub paused: Duration,
}

/// The dispatcher's figures: the core loop's ([`LoopStats`]: polls, events
/// per poll, waiting and busy time, timers, wake-ups) and the handlers'.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// let mut dispatcher = sockmux_responder::Dispatcher::new(())?;
/// dispatcher.turn(Some(Duration::from_millis(1)))?;
/// let stats = dispatcher.sockets().dispatcher_stats();
/// assert_eq!(stats.turns, 1);
/// assert_eq!(stats.core.polls, 1);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DispatcherStats {
    /// The core loop's figures.
    pub core: LoopStats,
    /// Turns of the dispatcher.
    pub turns: u64,
    /// Responder calls, and the time each took.
    pub handler_times: Histogram,
    /// Time spent in responders in all.
    pub handler_time: Duration,
    /// The longest turn: from the poll's return to the last handler's.
    pub longest_turn: Duration,
    /// The slowest handler of the longest turn: its socket, responder type
    /// and time.
    pub longest_turn_by: Option<(Token, &'static str, Duration)>,
    /// Sockets open now.
    pub sockets: usize,
}

/// A responder's figures, kept in its slot (handler times in ticks of
/// [`Ticks`], pauses in nanoseconds of [`clock_ns`]).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct SlotStats {
    pub(crate) calls: u64,
    pub(crate) time: u64,
    pub(crate) max: u64,
    pub(crate) queued: usize,
    pub(crate) paused: u64,
    /// When the pause under way began (0: not paused).
    pub(crate) paused_since: u64,
    /// Bytes queued and bytes written in all when a graceful stop began.
    pub(crate) at_stop: Option<(usize, u64)>,
}

impl SlotStats {
    fn paused_now(&self) -> Duration {
        let current = match self.paused_since {
            0 => 0,
            since => clock_ns().saturating_sub(since),
        };
        Duration::from_nanos(self.paused + current)
    }
}

/// The dispatcher's clock and counters, in ticks of [`Ticks`].
#[derive(Clone, Debug)]
pub(crate) struct Clock {
    ticks: Ticks,
    /// When the last handler returned (or the poll, or a hook run began).
    mark: u64,
    turn_start: u64,
    /// The slowest call of the turn under way: its time, socket, type.
    turn_max: u64,
    turn_max_by: Option<(Token, &'static str)>,
    turns: u64,
    hist: Histogram,
    /// Handler time of the sockets closed so far, and of calls charged to
    /// no socket (the open sockets' is in their slots).
    closed_time: u64,
    longest_turn: u64,
    longest_turn_by: Option<(Token, &'static str, u64)>,
}

impl Default for Clock {
    fn default() -> Self {
        let ticks = Ticks::new();
        let now = ticks.now();
        Clock {
            ticks,
            mark: now,
            turn_start: now,
            turn_max: 0,
            turn_max_by: None,
            turns: 0,
            hist: Histogram::default(),
            closed_time: 0,
            longest_turn: 0,
            longest_turn_by: None,
        }
    }
}

impl Clock {
    /// The poll returned: a turn's handlers begin.
    #[inline]
    pub(crate) fn turn_begins(&mut self) {
        self.mark = self.ticks.now();
        self.turn_start = self.mark;
        self.turn_max = 0;
        self.turn_max_by = None;
    }

    /// The turn's handlers are done (as of the last one's return).
    #[inline]
    pub(crate) fn turn_ends(&mut self) {
        self.turns += 1;
        let turn = self.mark.wrapping_sub(self.turn_start);
        if turn > self.longest_turn {
            self.record_longest_turn(turn);
        }
    }

    #[cold]
    fn record_longest_turn(&mut self, turn: u64) {
        self.longest_turn = turn;
        let slowest = self.turn_max;
        self.longest_turn_by = self.turn_max_by.map(|(t, name)| (t, name, slowest));
    }

    /// A socket whose handlers took `time` in all closed.
    #[inline]
    pub(crate) fn closed(&mut self, slot: &SlotStats) {
        self.closed_time += slot.time;
    }

    /// Starts timing from now (before hooks run outside a turn's events).
    #[inline]
    pub(crate) fn restart(&mut self) {
        self.mark = self.ticks.now();
    }

    /// A responder call just returned: charges it the time since the mark.
    #[inline]
    pub(crate) fn charge<S>(&mut self, token: Token, slot: Option<&mut Slot<S>>) {
        let now = self.ticks.now();
        // The clock is monotonic: never below the mark.
        let spent = now.wrapping_sub(self.mark);
        self.mark = now;
        self.hist.record_units(spent);
        let name = match slot {
            Some(slot) => {
                let s = &mut slot.stats;
                s.calls += 1;
                s.time += spent;
                s.max = s.max.max(spent);
                slot.name
            }
            None => {
                self.closed_time += spent;
                "(closed)"
            }
        };
        if spent > self.turn_max {
            self.turn_max = spent;
            self.turn_max_by = Some((token, name));
        }
    }

    /// A converter of ticks to durations, at the rate measured now.
    fn durations(&self) -> impl Fn(u64) -> Duration {
        let fs = self.ticks.tick_fs();
        move |ticks| Ticks::duration(ticks, fs)
    }
}

/// What a graceful stop did to one socket, in a [`DrainReport`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Drained {
    /// The socket.
    pub token: Token,
    /// Its responder's type name.
    pub responder: &'static str,
    /// Bytes it had queued when the stop began.
    pub queued_at_stop: usize,
    /// Bytes written to it from the stop's start to its close.
    pub written: u64,
    /// Bytes still queued when it closed: cut off, never sent.
    pub cut_off: usize,
    /// Closed by the grace deadline rather than by its responder.
    pub by_deadline: bool,
}

/// The summary of a graceful stop, per socket: what was flushed and what
/// was cut off. [`Dispatcher::drain_report`] returns the last one; the
/// dispatcher also logs it (`info!`, a line per socket that had bytes
/// queued or was cut off at `debug!`).
///
/// # Examples
///
/// ```
/// use sockmux_core::Event;
/// use sockmux_responder::{Action, Context, Dispatcher};
/// use std::time::Duration;
///
/// let mut dispatcher = Dispatcher::new(())?;
/// dispatcher.sockets().bind_udp("127.0.0.1:0",
///     |_: Event, _: &mut Context<'_, ()>| Action::Continue)?;
/// dispatcher.stop_gracefully(Duration::from_secs(1))?;
/// let report = dispatcher.drain_report().expect("a stop ran");
/// assert_eq!(report.sockets.len(), 1);
/// assert_eq!(report.cut_off(), 0);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DrainReport {
    /// Every socket that closed during the stop, in the order they closed.
    pub sockets: Vec<Drained>,
    /// How long the stop took.
    pub took: Duration,
}

impl DrainReport {
    /// Bytes written during the stop, in all.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(sockmux_responder::DrainReport::default().written(), 0);
    /// ```
    #[must_use]
    pub fn written(&self) -> u64 {
        self.sockets.iter().map(|d| d.written).sum()
    }

    /// Bytes cut off, in all.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(sockmux_responder::DrainReport::default().cut_off(), 0);
    /// ```
    #[must_use]
    pub fn cut_off(&self) -> usize {
        self.sockets.iter().map(|d| d.cut_off).sum()
    }
}

/// A graceful stop under way: what each socket had when it began.
#[derive(Debug, Default)]
pub(crate) struct Drain {
    began: Option<Instant>,
    report: DrainReport,
}

impl Drain {
    /// A stop begins: notes every socket's queue and bytes out.
    pub(crate) fn begin<S>(&mut self, sockets: &mut sockmux_core::Sockets<Slot<S>>) {
        let tokens: Vec<Token> = sockets.tokens().collect();
        for t in tokens {
            let out = sockets.socket_stats(t).map_or(0, |s| s.bytes_out);
            if let Ok(slot) = sockets.data_mut(t) {
                slot.stats.at_stop = Some((slot.stats.queued, out));
            }
        }
        self.began = Some(Instant::now());
        self.report = DrainReport::default();
    }

    /// `token` leaves the table during the stop.
    pub(crate) fn closed<S>(
        &mut self,
        token: Token,
        slot: &Slot<S>,
        bytes_out: u64,
        by_deadline: bool,
    ) {
        if self.began.is_none() {
            return;
        }
        // A socket opened during the stop had nothing then.
        let (queued_at_stop, out_at_stop) = slot.stats.at_stop.unwrap_or((0, 0));
        self.report.sockets.push(Drained {
            token,
            responder: slot.name,
            queued_at_stop,
            written: bytes_out.saturating_sub(out_at_stop),
            cut_off: slot.stats.queued,
            by_deadline,
        });
    }

    /// The stop is over: the report, logged.
    pub(crate) fn end(&mut self) -> Option<DrainReport> {
        let began = self.began.take()?;
        let mut report = std::mem::take(&mut self.report);
        report.took = began.elapsed();
        for d in &report.sockets {
            if d.queued_at_stop > 0 || d.cut_off > 0 || d.by_deadline {
                log::debug!(
                    "drain: {} ({}): {} bytes queued at the stop, {} written, {} cut off{}",
                    d.token,
                    d.responder,
                    d.queued_at_stop,
                    d.written,
                    d.cut_off,
                    if d.by_deadline {
                        ", closed by the deadline"
                    } else {
                        ""
                    }
                );
            }
        }
        log::info!(
            "graceful stop: {} sockets closed in {:?}, {} bytes written, {} cut off ({} by the deadline)",
            report.sockets.len(),
            report.took,
            report.written(),
            report.cut_off(),
            report.sockets.iter().filter(|d| d.by_deadline).count()
        );
        Some(report)
    }
}

impl<S> Registry<'_, S> {
    /// The dispatcher's figures (feature `stats`).
    ///
    /// # Examples
    ///
    /// ```
    /// let mut dispatcher = sockmux_responder::Dispatcher::new(())?;
    /// let stats = dispatcher.sockets().dispatcher_stats();
    /// assert_eq!((stats.turns, stats.sockets), (0, 0));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[must_use]
    pub fn dispatcher_stats(&self) -> DispatcherStats {
        self.core.dispatcher_stats()
    }

    /// One socket's figures (feature `stats`).
    ///
    /// # Errors
    ///
    /// `NotFound` for a stale token.
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
    /// assert_eq!(dispatcher.sockets().responder_stats(t)?.io.bytes_in, 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn responder_stats(&self, token: Token) -> std::io::Result<ResponderStats> {
        let slot = self.core.sockets.data(token)?;
        let io = self.core.sockets.socket_stats(token)?;
        Ok(responder_stats(
            token,
            slot,
            io,
            &self.core.clock.durations(),
        ))
    }

    /// Every socket's figures, in slot order (feature `stats`): sort them
    /// by any field for a "top".
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_core::Event;
    /// use sockmux_responder::{Action, Context, Dispatcher};
    ///
    /// let mut dispatcher = Dispatcher::new(())?;
    /// for _ in 0..3 {
    ///     dispatcher.sockets().bind_udp("127.0.0.1:0",
    ///         |_: Event, _: &mut Context<'_, ()>| Action::Continue)?;
    /// }
    /// let mut all: Vec<_> = dispatcher.sockets().all_responder_stats().collect();
    /// all.sort_by_key(|s| std::cmp::Reverse(s.handler_time));
    /// assert_eq!(all.len(), 3);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn all_responder_stats(&self) -> impl Iterator<Item = ResponderStats> + '_ {
        let sockets = &self.core.sockets;
        let durations = self.core.clock.durations();
        sockets.all_socket_stats().filter_map(move |(token, io)| {
            let slot = sockets.data(token).ok()?;
            Some(responder_stats(token, slot, io, &durations))
        })
    }

    /// A stream's queue and pause, noted in its slot.
    pub(crate) fn note_stream(&mut self, token: Token, queued: usize, paused: bool) {
        if let Ok(slot) = self.core.sockets.data_mut(token) {
            let s = &mut slot.stats;
            s.queued = queued;
            match (paused, s.paused_since) {
                (true, 0) => s.paused_since = clock_ns().max(1),
                (false, since) if since != 0 => {
                    s.paused += clock_ns().saturating_sub(since);
                    s.paused_since = 0;
                }
                _ => {}
            }
        }
    }
}

fn responder_stats<S>(
    token: Token,
    slot: &Slot<S>,
    io: SocketStats,
    durations: &impl Fn(u64) -> Duration,
) -> ResponderStats {
    ResponderStats {
        token,
        responder: slot.name,
        io,
        handler_calls: slot.stats.calls,
        handler_time: durations(slot.stats.time),
        handler_max: durations(slot.stats.max),
        queued: slot.stats.queued,
        paused: slot.stats.paused_now(),
    }
}

impl<S> LoopState<S> {
    pub(crate) fn dispatcher_stats(&self) -> DispatcherStats {
        let c = &self.clock;
        let durations = c.durations();
        let open: u64 = self
            .sockets
            .tokens()
            .filter_map(|t| self.sockets.data(t).ok())
            .map(|slot| slot.stats.time)
            .sum();
        DispatcherStats {
            core: self.sockets.loop_stats(),
            turns: c.turns,
            handler_times: Histogram {
                unit_fs: c.ticks.tick_fs(),
                ..c.hist.clone()
            },
            handler_time: durations(c.closed_time + open),
            longest_turn: durations(c.longest_turn),
            longest_turn_by: c
                .longest_turn_by
                .map(|(t, name, ticks)| (t, name, durations(ticks))),
            sockets: self.sockets.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Histogram;

    #[test]
    fn buckets_are_ordered_and_hold_their_values() {
        let mut last = 0;
        for ns in (0..5000u64).chain([1 << 20, (1 << 20) + 1, 3 << 30, u64::MAX / 2]) {
            let b = Histogram::bucket(ns);
            assert!(b >= last || ns > 5000, "{ns}: bucket {b} after {last}");
            last = b;
            if b < super::BUCKETS - 1 {
                assert!(Histogram::upper(b) >= ns, "{ns} above bucket {b}'s top");
                if b > 0 && ns < 1 << 24 {
                    assert!(Histogram::upper(b - 1) < ns, "{ns} fits bucket {}", b - 1);
                }
            }
        }
    }
}
