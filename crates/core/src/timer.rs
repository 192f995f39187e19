//! Timers: a binary heap of deadlines over a slab of live timers.
//!
//! Cancelling removes the timer from the slab at once and leaves its heap
//! entry behind as garbage, skipped when it surfaces; when garbage outgrows
//! the live timers the heap is rebuilt, so memory stays proportional to the
//! live timers whatever the schedule/cancel pattern. Schedule and cancel
//! are O(log n) amortised.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt;
use std::time::{Duration, Instant};

use log::trace;
use slab::Slab;

use crate::Sockets;

/// Names one timer in a [`Sockets`](crate::Sockets) table; carried by
/// [`Event::Timer`](crate::Event::Timer)(crate::Event::Timer).
///
/// Like [`Token`](crate::Token) it is generational: once a one-shot timer
/// has fired or any timer was cancelled, its id is stale and never names a
/// later timer.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// let mut sockets = sockmux_core::Sockets::new()?;
/// let a = sockets.timer_after(Duration::from_secs(1));
/// let b = sockets.timer_after(Duration::from_secs(1));
/// assert_ne!(a, b);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TimerId {
    key: u32,
    generation: u32,
}

impl fmt::Debug for TimerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TimerId({}.{})", self.key, self.generation)
    }
}

impl fmt::Display for TimerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "timer {}.{}", self.key, self.generation)
    }
}

#[derive(Debug)]
struct Timer {
    generation: u32,
    deadline: Instant,
    period: Option<Duration>,
}

/// A heap entry: deadline, then insertion order for ties (FIFO), then id.
type HeapEntry = Reverse<(Instant, u64, u32, u32)>;

#[derive(Debug, Default)]
pub(crate) struct Timers {
    live: Slab<Timer>,
    generations: Vec<u32>,
    heap: BinaryHeap<HeapEntry>,
    seq: u64,
}

impl Timers {
    pub(crate) fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    pub(crate) fn len(&self) -> usize {
        self.live.len()
    }

    pub(crate) fn insert(&mut self, deadline: Instant, period: Option<Duration>) -> TimerId {
        let key = self.live.vacant_key();
        // u32 keys: four billion live timers is past any memory anyway.
        let key32 = u32::try_from(key).expect("more than 2^32 live timers");
        if self.generations.len() <= key {
            self.generations.resize(key + 1, 0);
        }
        let generation = self.generations[key];
        self.live.insert(Timer {
            generation,
            deadline,
            period,
        });
        self.push(deadline, key32, generation);
        TimerId {
            key: key32,
            generation,
        }
    }

    fn push(&mut self, deadline: Instant, key: u32, generation: u32) {
        self.seq += 1;
        self.heap
            .push(Reverse((deadline, self.seq, key, generation)));
    }

    /// Cancels a pending timer; false if it had already fired (one-shot) or
    /// been cancelled.
    pub(crate) fn cancel(&mut self, id: TimerId) -> bool {
        let key = id.key as usize;
        match self.live.get(key) {
            Some(t) if t.generation == id.generation => {
                self.live.remove(key);
                self.generations[key] = id.generation.wrapping_add(1);
                self.collect_garbage();
                true
            }
            _ => false,
        }
    }

    #[cfg(test)]
    pub(crate) fn contains(&self, id: TimerId) -> bool {
        matches!(self.live.get(id.key as usize), Some(t) if t.generation == id.generation)
    }

    /// Rebuilds the heap when most of it is cancelled timers.
    fn collect_garbage(&mut self) {
        let garbage = self.heap.len() - self.live.len();
        if garbage > 64 && garbage > 2 * self.live.len() {
            let live = &self.live;
            self.heap.retain(|Reverse((_, _, key, generation))| {
                matches!(live.get(*key as usize), Some(t) if t.generation == *generation)
            });
        }
    }

    fn is_live(&self, key: u32, generation: u32) -> bool {
        matches!(self.live.get(key as usize), Some(t) if t.generation == generation)
    }

    /// The nearest live deadline.
    pub(crate) fn next_deadline(&mut self) -> Option<Instant> {
        while let Some(Reverse((deadline, _, key, generation))) = self.heap.peek().copied() {
            if self.is_live(key, generation) {
                return Some(deadline);
            }
            self.heap.pop();
        }
        None
    }

    /// Pops one timer due at `now`, re-arming it if periodic.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<TimerId> {
        loop {
            let Reverse((deadline, _, key, generation)) = *self.heap.peek()?;
            if !self.is_live(key, generation) {
                self.heap.pop();
                continue;
            }
            if deadline > now {
                return None;
            }
            self.heap.pop();
            let id = TimerId { key, generation };
            let timer = &mut self.live[key as usize];
            match timer.period {
                Some(period) => {
                    // From the previous deadline, not from now: no drift.
                    // Periods missed while the loop was busy are skipped.
                    let mut next = after(timer.deadline, period);
                    if next <= now {
                        let behind = now.duration_since(timer.deadline).as_nanos();
                        let periods = behind / period.as_nanos().max(1) + 1;
                        let skip = u32::try_from(periods)
                            .ok()
                            .and_then(|n| period.checked_mul(n))
                            .unwrap_or(Duration::MAX);
                        next = after(timer.deadline, skip);
                    }
                    timer.deadline = next;
                    self.push(next, key, generation);
                }
                None => {
                    self.live.remove(key as usize);
                    self.generations[key as usize] = generation.wrapping_add(1);
                }
            }
            return Some(id);
        }
    }

    #[cfg(test)]
    pub(crate) fn heap_len(&self) -> usize {
        self.heap.len()
    }
}

impl<D> Sockets<D> {
    /// Schedules a one-shot timer that fires [`Event::Timer`](crate::Event::Timer) once, no
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
        self.timer_at(after(Instant::now(), delay))
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
        #[cfg(feature = "stats")]
        {
            self.counters.stats.timers_scheduled += 1;
        }
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
        #[cfg(feature = "stats")]
        {
            self.counters.stats.timers_scheduled += 1;
        }
        self.timers
            .insert(after(Instant::now(), period), Some(period))
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
}

/// `t + d`; a `d` too long to add to an instant (`Duration::MAX`, as
/// "never") is a century.
pub(crate) fn after(t: Instant, d: Duration) -> Instant {
    const CENTURY: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
    t.checked_add(d)
        .unwrap_or_else(|| t.checked_add(CENTURY).unwrap_or(t))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cancelled_timers_leave_bounded_garbage() {
        let mut timers = Timers::default();
        let now = Instant::now();
        let keep = timers.insert(now + Duration::from_secs(3600), None);
        for i in 0..100_000u64 {
            let id = timers.insert(now + Duration::from_secs(60 + i), None);
            assert!(timers.cancel(id));
        }
        assert_eq!(timers.len(), 1);
        assert!(timers.heap_len() <= 66, "heap kept {}", timers.heap_len());
        assert!(timers.contains(keep));
    }

    #[test]
    fn due_timers_pop_in_deadline_order_and_periodic_ones_rearm() {
        let mut timers = Timers::default();
        let t0 = Instant::now();
        let late = timers.insert(t0 + Duration::from_millis(20), None);
        let early = timers.insert(t0 + Duration::from_millis(10), None);
        let tick = timers.insert(
            t0 + Duration::from_millis(5),
            Some(Duration::from_millis(5)),
        );
        let now = t0 + Duration::from_millis(20);
        let fired: Vec<_> = std::iter::from_fn(|| timers.pop_due(now)).collect();
        assert_eq!(fired, [tick, early, late]);
        assert!(!timers.contains(early));
        assert!(timers.contains(tick));
        // Missed periods were skipped: next deadline is after `now`.
        assert_eq!(timers.next_deadline(), Some(t0 + Duration::from_millis(25)));
        assert!(!timers.cancel(late), "a fired one-shot cannot be cancelled");
    }

    #[test]
    fn periodic_timer_does_not_drift_over_100_late_firings() {
        let mut timers = Timers::default();
        let t0 = Instant::now();
        let period = Duration::from_millis(10);
        let id = timers.insert(t0 + period, Some(period));
        for k in 1..=100u32 {
            let deadline = timers.next_deadline().unwrap();
            assert_eq!(deadline, t0 + period * k, "period {k}");
            // Every firing is handled 3 ms late; deadlines must not move.
            let late = deadline + Duration::from_millis(3);
            assert_eq!(timers.pop_due(late), Some(id));
            assert_eq!(timers.pop_due(late), None);
        }
    }
}
