//! (feature `stats`) What the table counts per socket and per loop:
//! events, bytes, I/O calls, spurious wake-ups, the poll's wait and busy
//! time, timers and wake-ups. Plain integers in the entry and the loop,
//! added to in the I/O and poll paths; nothing is allocated.

use std::time::{Duration, Instant};

use crate::ready::Ready;
use crate::{Sockets, Table, Token};

/// Buckets of [`LoopStats::events_per_poll`]: 0, 1, 2–3, 4–7, …,
/// 512–1023, and 1024 or more.
pub const EVENT_BUCKETS: usize = 12;

/// One socket's figures, as [`Table::socket_stats`] reads them.
///
/// Counted since the socket entered the table. "Spurious" counts the
/// reads (writes) that answered `WouldBlock` as the first call of their
/// kind after a `Read` (`Write`) event: the OS woke the loop for nothing,
/// or another call got the data first.
///
/// # Examples
///
/// ```
/// use sockmux_core::Sockets;
///
/// let mut sockets = Sockets::new()?;
/// let server = sockets.bind_udp("127.0.0.1:0")?;
/// let client = sockets.connect_udp(sockets.local_addr(server)?)?;
/// sockets.send(client, b"hello")?;
/// let stats = sockets.socket_stats(client)?;
/// assert_eq!((stats.writes, stats.bytes_out), (1, 5));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SocketStats {
    /// `Read` events delivered.
    pub read_events: u64,
    /// `Write` events delivered.
    pub write_events: u64,
    /// `Error` events delivered.
    pub error_events: u64,
    /// Bytes read or received through the table.
    pub bytes_in: u64,
    /// Bytes written or sent through the table.
    pub bytes_out: u64,
    /// Reads and receives that returned (bytes, a datagram, or the end of
    /// the stream).
    pub reads: u64,
    /// Writes and sends that took bytes.
    pub writes: u64,
    /// Reads that answered `WouldBlock` right after a `Read` event.
    pub spurious_reads: u64,
    /// Writes that answered `WouldBlock` right after a `Write` event.
    pub spurious_writes: u64,
    /// Time since the socket entered the table.
    pub age: Duration,
}

impl SocketStats {
    /// Events of every kind.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(sockmux_core::SocketStats::default().events(), 0);
    /// ```
    #[must_use]
    pub fn events(&self) -> u64 {
        self.read_events + self.write_events + self.error_events
    }
}

/// The loop's figures, as [`Sockets::loop_stats`] reads them.
///
/// A poll's time is split in two: *waiting* (inside
/// [`Sockets::poll`], mostly asleep in the OS) and *busy* (from one poll's
/// return to the next poll's start: the handlers' time). The loop's
/// utilisation is busy / (busy + waiting).
///
/// # Examples
///
/// ```
/// use sockmux_core::{Events, Sockets};
/// use std::time::Duration;
///
/// let mut sockets = Sockets::new()?;
/// let mut events = Events::with_capacity(8);
/// sockets.poll(&mut events, Some(Duration::from_millis(5)))?;
/// let stats = sockets.loop_stats();
/// assert_eq!(stats.polls, 1);
/// assert_eq!(stats.events_per_poll[0], 1); // it delivered nothing
/// assert!(stats.waiting >= Duration::from_millis(5));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LoopStats {
    /// Polls made.
    pub polls: u64,
    /// Events delivered, of every kind.
    pub events: u64,
    /// How many polls delivered 0, 1, 2–3, 4–7, … 512–1023 and 1024 or
    /// more events (bucket `i > 0` holds 2^(i-1) to 2^i - 1).
    pub events_per_poll: [u64; EVENT_BUCKETS],
    /// Time spent inside `poll`.
    pub waiting: Duration,
    /// Time spent between polls.
    pub busy: Duration,
    /// Timers scheduled (one-shot and periodic).
    pub timers_scheduled: u64,
    /// Timer events delivered (a periodic timer counts each time).
    pub timers_fired: u64,
    /// `Wake` events delivered.
    pub wakes: u64,
    /// `Signal` events delivered.
    pub signals: u64,
    /// Sockets in the ready queue when the last poll returned (sockets
    /// with readiness to report, or just served).
    pub ready_queue: usize,
    /// The most sockets the ready queue has held at a poll's return.
    pub ready_queue_max: usize,
}

impl LoopStats {
    /// busy / (busy + waiting), from 0 to 1 (0 before the first poll).
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(sockmux_core::LoopStats::default().utilisation(), 0.0);
    /// ```
    #[must_use]
    pub fn utilisation(&self) -> f64 {
        let total = self.busy + self.waiting;
        if total.is_zero() {
            0.0
        } else {
            self.busy.as_secs_f64() / total.as_secs_f64()
        }
    }

    /// The bucket of [`events_per_poll`](LoopStats::events_per_poll) that
    /// `n` events fall in.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_core::LoopStats;
    /// assert_eq!(LoopStats::bucket(0), 0);
    /// assert_eq!(LoopStats::bucket(1), 1);
    /// assert_eq!(LoopStats::bucket(3), 2);
    /// assert_eq!(LoopStats::bucket(1_000_000), 11);
    /// ```
    #[must_use]
    pub fn bucket(n: usize) -> usize {
        ((usize::BITS - n.leading_zeros()) as usize).min(EVENT_BUCKETS - 1)
    }
}

/// The counters kept in each table entry.
#[derive(Clone, Copy, Debug)]
pub(crate) struct EntryStats {
    pub(crate) created: Instant,
    pub(crate) read_events: u64,
    pub(crate) write_events: u64,
    pub(crate) error_events: u64,
    pub(crate) bytes_in: u64,
    pub(crate) bytes_out: u64,
    pub(crate) reads: u64,
    pub(crate) writes: u64,
    pub(crate) spurious_reads: u64,
    pub(crate) spurious_writes: u64,
    /// Kinds delivered as events with no I/O call of that kind since.
    pub(crate) armed: Ready,
}

impl EntryStats {
    pub(crate) fn new() -> EntryStats {
        EntryStats {
            created: Instant::now(),
            read_events: 0,
            write_events: 0,
            error_events: 0,
            bytes_in: 0,
            bytes_out: 0,
            reads: 0,
            writes: 0,
            spurious_reads: 0,
            spurious_writes: 0,
            armed: Ready::EMPTY,
        }
    }

    /// `Read` and/or `Write` events delivered (`kinds` has no ERROR).
    #[inline(always)]
    pub(crate) fn delivered(&mut self, kinds: Ready) {
        self.read_events += u64::from(kinds.contains(Ready::READABLE));
        self.write_events += u64::from(kinds.contains(Ready::WRITABLE));
        self.armed.insert(kinds);
    }

    /// An `Error` event delivered.
    #[inline]
    pub(crate) fn delivered_error(&mut self) {
        self.error_events += 1;
    }

    /// An I/O call of the kinds in `kinds` came back; `would_block` says
    /// whether it answered `WouldBlock`.
    #[inline(always)]
    pub(crate) fn called(&mut self, kinds: Ready, would_block: bool) {
        if would_block {
            let armed = self.armed & kinds;
            self.spurious_reads += u64::from(armed.contains(Ready::READABLE));
            self.spurious_writes += u64::from(armed.contains(Ready::WRITABLE));
        }
        self.armed.remove(kinds);
    }

    /// `n` bytes (or a datagram of `n` bytes) came in.
    #[inline(always)]
    pub(crate) fn read(&mut self, n: usize) {
        self.reads += 1;
        self.bytes_in += n as u64;
    }

    /// `n` bytes went out.
    #[inline(always)]
    pub(crate) fn wrote(&mut self, n: usize) {
        self.writes += 1;
        self.bytes_out += n as u64;
    }

    pub(crate) fn public(&self) -> SocketStats {
        SocketStats {
            read_events: self.read_events,
            write_events: self.write_events,
            error_events: self.error_events,
            bytes_in: self.bytes_in,
            bytes_out: self.bytes_out,
            reads: self.reads,
            writes: self.writes,
            spurious_reads: self.spurious_reads,
            spurious_writes: self.spurious_writes,
            age: self.created.elapsed(),
        }
    }
}

/// The counters kept by the loop.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct LoopCounters {
    pub(crate) stats: LoopStats,
    /// When the last poll returned.
    pub(crate) last_return: Option<Instant>,
}

impl LoopCounters {
    /// A poll begins: the time since the last one returned was busy.
    #[inline]
    pub(crate) fn poll_begins(&mut self) -> Instant {
        let now = Instant::now();
        if let Some(last) = self.last_return {
            self.stats.busy += now.saturating_duration_since(last);
        }
        now
    }

    /// A poll that began at `start` returns `events` events, with `queued`
    /// sockets in the ready queue.
    #[inline]
    pub(crate) fn poll_returns(&mut self, start: Instant, events: usize, queued: usize) {
        let now = Instant::now();
        self.stats.waiting += now.saturating_duration_since(start);
        self.last_return = Some(now);
        self.stats.polls += 1;
        self.stats.events += events as u64;
        self.stats.events_per_poll[LoopStats::bucket(events)] += 1;
        self.stats.ready_queue = queued;
        self.stats.ready_queue_max = self.stats.ready_queue_max.max(queued);
    }
}

impl<D> Table<D> {
    /// One socket's figures (feature `stats`).
    ///
    /// # Errors
    ///
    /// `NotFound` for a stale token.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_core::{Events, Sockets};
    /// use std::time::Duration;
    ///
    /// let mut sockets = Sockets::new()?;
    /// let server = sockets.bind_udp("127.0.0.1:0")?;
    /// let client = sockets.connect_udp(sockets.local_addr(server)?)?;
    /// sockets.send(client, b"abc")?;
    /// let mut events = Events::with_capacity(8);
    /// let mut buf = [0; 16];
    /// while sockets.socket_stats(server)?.reads == 0 {
    ///     sockets.poll(&mut events, Some(Duration::from_secs(5)))?;
    ///     if events.iter().any(|e| e == sockmux_core::Event::Read(server)) {
    ///         sockets.recv(server, &mut buf)?;
    ///     }
    /// }
    /// let stats = sockets.socket_stats(server)?;
    /// assert_eq!((stats.read_events, stats.bytes_in), (1, 3));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn socket_stats(&self, token: Token) -> std::io::Result<SocketStats> {
        Ok(self.entry(token)?.stats.public())
    }

    /// Every socket's figures, in slot order (feature `stats`); sort or
    /// filter them as needed.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut sockets = sockmux_core::Sockets::new()?;
    /// let server = sockets.bind_udp("127.0.0.1:0")?;
    /// let client = sockets.connect_udp(sockets.local_addr(server)?)?;
    /// sockets.send(client, b"abc")?;
    /// let busiest = sockets.all_socket_stats().max_by_key(|(_, s)| s.bytes_out);
    /// assert_eq!(busiest.map(|(t, _)| t), Some(client));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn all_socket_stats(&self) -> impl Iterator<Item = (Token, SocketStats)> + '_ {
        self.slab
            .iter()
            .map(|(key, entry)| (entry.token(key), entry.stats.public()))
    }
}

impl<D> Sockets<D> {
    /// The loop's figures (feature `stats`).
    ///
    /// # Examples
    ///
    /// ```
    /// let sockets = sockmux_core::Sockets::new()?;
    /// assert_eq!(sockets.loop_stats().polls, 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[must_use]
    pub fn loop_stats(&self) -> LoopStats {
        self.counters.stats
    }
}
