//! (feature `stats`) What the table counts per socket and per loop:
//! events, bytes, I/O calls, spurious wake-ups, the poll's wait and busy
//! time, timers and wake-ups. Plain integers in the entry and the loop,
//! added to in the I/O and poll paths; nothing is allocated.

use std::time::{Duration, Instant};

use crate::ready::Ready;
use crate::{Sockets, Table, Token};

/// The clock the figures are taken with: nanoseconds on the monotonic
/// clock from an arbitrary start, as a plain integer (cheaper to read and
/// subtract than an [`Instant`]: the figures read it once per handler
/// call). Never goes back; comparable only within one process.
///
/// # Examples
///
/// ```
/// let a = sockmux_core::clock_ns();
/// let b = sockmux_core::clock_ns();
/// assert!(b >= a);
/// ```
#[inline]
#[must_use]
pub fn clock_ns() -> u64 {
    #[cfg(unix)]
    {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid timespec to write; CLOCK_MONOTONIC exists
        // on every Unix mio supports, so the call cannot fail.
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
        (ts.tv_sec as u64)
            .wrapping_mul(1_000_000_000)
            .wrapping_add(ts.tv_nsec as u64)
    }
    #[cfg(not(unix))]
    {
        static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        u64::try_from(START.get_or_init(Instant::now).elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

/// Femtoseconds in a nanosecond: the unit of [`Ticks::tick_fs`].
pub const FS_PER_NS: u64 = 1_000_000;

/// The clock of the handlers' times: the CPU's time-stamp counter where
/// Linux itself keeps time with it (x86-64 with the `tsc` clock source,
/// constant-rate and synchronised across cores; a read is one
/// instruction), else [`clock_ns`]. The counter's rate is measured once
/// per process, against the monotonic clock over 5 ms, when the first
/// clock is made; so the same ticks always make the same duration.
///
/// # Examples
///
/// ```
/// use sockmux_core::Ticks;
/// use std::time::Duration;
///
/// let ticks = Ticks::new();
/// let start = ticks.now();
/// std::thread::sleep(Duration::from_millis(20));
/// let spent = Ticks::duration(ticks.now() - start, ticks.tick_fs());
/// assert!(spent >= Duration::from_millis(19));
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Ticks {
    tsc: bool,
    /// Femtoseconds per tick.
    fs: u64,
}

impl Default for Ticks {
    fn default() -> Self {
        Ticks::new()
    }
}

impl Ticks {
    /// A clock (the first one of a process on the time-stamp counter takes
    /// 5 ms, to measure its rate).
    ///
    /// # Examples
    ///
    /// ```
    /// let ticks = sockmux_core::Ticks::new();
    /// let first = ticks.now();
    /// assert!(ticks.now() >= first);
    /// ```
    #[must_use]
    pub fn new() -> Ticks {
        match tsc_rate() {
            Some(fs) => Ticks { tsc: true, fs },
            None => Ticks {
                tsc: false,
                fs: FS_PER_NS,
            },
        }
    }

    #[inline(always)]
    fn read(tsc: bool) -> u64 {
        #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
        if tsc {
            return rdtsc();
        }
        let _ = tsc;
        clock_ns()
    }

    /// The time now, in ticks (monotonic).
    ///
    /// # Examples
    ///
    /// ```
    /// let ticks = sockmux_core::Ticks::new();
    /// let (a, b) = (ticks.now(), ticks.now());
    /// assert!(b >= a);
    /// ```
    #[inline(always)]
    #[must_use]
    pub fn now(&self) -> u64 {
        Ticks::read(self.tsc)
    }

    /// Femtoseconds per tick ([`FS_PER_NS`] when ticks are nanoseconds).
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(sockmux_core::Ticks::new().tick_fs() > 0);
    /// ```
    #[must_use]
    pub fn tick_fs(&self) -> u64 {
        self.fs
    }

    /// `ticks` as a duration, at `tick_fs` femtoseconds a tick.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_core::{Ticks, FS_PER_NS};
    /// assert_eq!(Ticks::duration(1_500, FS_PER_NS).as_nanos(), 1_500);
    /// ```
    #[must_use]
    pub fn duration(ticks: u64, tick_fs: u64) -> Duration {
        let ns = u128::from(ticks) * u128::from(tick_fs) / u128::from(FS_PER_NS);
        Duration::from_nanos(u64::try_from(ns).unwrap_or(u64::MAX))
    }
}

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
#[inline(always)]
fn rdtsc() -> u64 {
    // SAFETY: RDTSC exists on every x86-64 processor and only reads a
    // counter. (Safe to call in newer Rust releases, hence the allowance.)
    #[allow(unused_unsafe)]
    unsafe {
        std::arch::x86_64::_rdtsc()
    }
}

/// Femtoseconds per tick of the time-stamp counter, measured once, if the
/// kernel keeps time with it (then it is constant-rate and synchronised
/// across cores); `None` elsewhere.
fn tsc_rate() -> Option<u64> {
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    {
        static RATE: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
        *RATE.get_or_init(|| {
            let source = std::fs::read_to_string(
                "/sys/devices/system/clocksource/clocksource0/current_clocksource",
            );
            if !source.is_ok_and(|s| s.trim() == "tsc") {
                return None;
            }
            let (t0, n0) = (rdtsc(), clock_ns());
            std::thread::sleep(Duration::from_millis(5));
            let (t1, n1) = (rdtsc(), clock_ns());
            let (ticks, ns) = (t1.wrapping_sub(t0), n1.saturating_sub(n0));
            if ticks == 0 || ns == 0 {
                return None;
            }
            u64::try_from(u128::from(ns) * u128::from(FS_PER_NS) / u128::from(ticks))
                .ok()
                .filter(|&fs| fs > 0)
        })
    }
    #[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
    None
}

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
    /// Reads, receives and accepts that returned (bytes, a datagram, the
    /// end of the stream, a connection), and [`Table::io`] calls for
    /// reading that returned.
    pub reads: u64,
    /// Writes and sends that took bytes, and [`Table::io`] calls for
    /// writing that returned.
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
    /// Bytes read or received through every socket of the loop, those
    /// closed since included.
    pub bytes_in: u64,
    /// Bytes written or sent through every socket of the loop, those
    /// closed since included.
    pub bytes_out: u64,
    /// Sockets that entered the table (registered, added, accepted).
    pub sockets_opened: u64,
    /// Sockets that left it.
    pub sockets_closed: u64,
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
    /// `reads` when the last `Read` event was delivered; [`NOT_ARMED`]
    /// once a `WouldBlock` was counted.
    reads_at_event: u64,
    /// `writes` when the last `Write` event was delivered, likewise.
    writes_at_event: u64,
}

/// [`EntryStats::reads_at_event`]: no event since the last spurious call.
const NOT_ARMED: u64 = u64::MAX;

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
            reads_at_event: NOT_ARMED,
            writes_at_event: NOT_ARMED,
        }
    }

    /// `Read` and/or `Write` events delivered (`kinds` has no ERROR).
    #[inline(always)]
    pub(crate) fn delivered(&mut self, kinds: Ready) {
        if kinds.contains(Ready::READABLE) {
            self.read_events += 1;
            self.reads_at_event = self.reads;
        }
        if kinds.contains(Ready::WRITABLE) {
            self.write_events += 1;
            self.writes_at_event = self.writes;
        }
    }

    /// An `Error` event delivered.
    #[inline]
    pub(crate) fn delivered_error(&mut self) {
        self.error_events += 1;
    }

    /// An I/O call of the kinds in `kinds` answered `WouldBlock`: spurious
    /// if no call of its kind returned since the last event of that kind
    /// (counted once per event).
    #[inline]
    pub(crate) fn would_block(&mut self, kinds: Ready) {
        if kinds.contains(Ready::READABLE) && self.reads_at_event == self.reads {
            self.spurious_reads += 1;
            self.reads_at_event = NOT_ARMED;
        }
        if kinds.contains(Ready::WRITABLE) && self.writes_at_event == self.writes {
            self.spurious_writes += 1;
            self.writes_at_event = NOT_ARMED;
        }
    }

    /// A call through [`Table::io`] returned: a read and/or a write call,
    /// as its interest says (its bytes are not known).
    #[inline]
    pub(crate) fn io_call(&mut self, interest: crate::Interest) {
        self.reads += u64::from(interest.is_readable());
        self.writes += u64::from(interest.is_writable());
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

/// The counters kept by the loop ([`LoopStats`] but the times, kept in
/// nanoseconds of [`clock_ns`]).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct LoopCounters {
    pub(crate) stats: LoopStats,
    waiting_ns: u64,
    busy_ns: u64,
    /// Bytes of the sockets closed so far.
    closed_in: u64,
    closed_out: u64,
    /// When the last poll returned (0: no poll yet).
    last_return: u64,
}

impl LoopCounters {
    /// A socket left the table: its bytes stay in the loop's.
    #[inline]
    pub(crate) fn closed(&mut self, entry: &EntryStats) {
        self.closed_in += entry.bytes_in;
        self.closed_out += entry.bytes_out;
        self.stats.sockets_closed += 1;
    }

    /// A poll begins: the time since the last one returned was busy.
    #[inline]
    pub(crate) fn poll_begins(&mut self) -> u64 {
        let now = clock_ns();
        if self.last_return != 0 {
            self.busy_ns += now.saturating_sub(self.last_return);
        }
        now
    }

    /// A poll that began at `start` returns `events` events, with `queued`
    /// sockets in the ready queue.
    #[inline]
    pub(crate) fn poll_returns(&mut self, start: u64, events: usize, queued: usize) {
        let now = clock_ns();
        self.waiting_ns += now.saturating_sub(start);
        self.last_return = now.max(1);
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
    /// The loop's figures (feature `stats`). Reading them walks the table
    /// once (for the bytes of the open sockets).
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
        let c = &self.counters;
        let (open_in, open_out) = self.table.slab.iter().fold((0, 0), |(i, o), (_, e)| {
            (i + e.stats.bytes_in, o + e.stats.bytes_out)
        });
        LoopStats {
            waiting: Duration::from_nanos(c.waiting_ns),
            busy: Duration::from_nanos(c.busy_ns),
            bytes_in: c.closed_in + open_in,
            bytes_out: c.closed_out + open_out,
            sockets_opened: c.stats.sockets_closed + self.table.slab.len() as u64,
            ..c.stats
        }
    }
}
