//! The live view of the server examples (feature `stats`), shared by all
//! of them: the line `--stats` prints every second, the table of the
//! busiest sockets `--stats-top` adds every ten seconds (and SIGUSR1 asks
//! for at once), and the Prometheus text the `http` example serves at
//! `/metrics`.
//!
//! A [`Live`] responder drives the printing: it owns a periodic timer,
//! and a timer needs a socket, so it holds one that never does anything
//! (a UDP socket on `127.0.0.1:0` with no interest, as the `kv` example's
//! sweeper). Each loop has its own, which reads that loop's figures: a
//! figure over the last second is the difference of two snapshots a
//! second apart. Nothing here runs per event.

use std::fmt::{self, Write as _};
use std::io::{self, Write as _};
use std::net::UdpSocket;
use std::time::{Duration, Instant};

use log::debug;
use sockmux::{
    Action, Context, DispatcherStats, Event, Histogram, Interest, Registry, Responder,
    ResponderStats, TimerId, Token,
};

/// How often the line is printed.
const PERIOD: Duration = Duration::from_secs(1);
/// With `--stats-top`, the table comes every this many lines.
const TOP_EVERY: u32 = 10;
/// Rows of the table.
const TOP: usize = 10;
/// Width of the table's responder column.
const NAME_WIDTH: usize = 30;

/// The bytes a loop's sockets moved and its open connections, for rates,
/// counters and gauges.
///
/// The bytes are the loop's totals (`LoopStats::bytes_in`/`bytes_out`),
/// which keep what closed sockets moved: exact, however short-lived the
/// connections.
#[derive(Debug, Default)]
pub(crate) struct Meter {
    /// Bytes in, in all, as of the last update.
    bytes_in: u64,
    /// Bytes out, in all, as of the last update.
    bytes_out: u64,
    /// Connections (TCP and Unix streams) open at the last update.
    connections: usize,
}

impl Meter {
    /// Reads the loop's bytes and counts its open connections.
    pub(crate) fn update<S>(&mut self, sockets: &Registry<'_, S>) {
        let core = sockets.dispatcher_stats().core;
        self.bytes_in = core.bytes_in;
        self.bytes_out = core.bytes_out;
        self.connections = sockets
            .tokens()
            .filter(|&t| {
                sockets
                    .socket(t)
                    .is_ok_and(|s| s.kind().ends_with("stream"))
            })
            .count();
    }
}

/// What the line compares: the figures of one moment.
#[derive(Debug)]
struct Snapshot {
    at: Instant,
    stats: DispatcherStats,
    bytes_in: u64,
    bytes_out: u64,
}

impl Snapshot {
    fn take<S>(sockets: &Registry<'_, S>, meter: &mut Meter) -> Snapshot {
        meter.update(sockets);
        Snapshot {
            at: Instant::now(),
            stats: sockets.dispatcher_stats(),
            bytes_in: meter.bytes_in,
            bytes_out: meter.bytes_out,
        }
    }
}

/// The responder of the live view: prints a line every second and, if
/// asked, the table of the busiest sockets every ten lines and on
/// SIGUSR1 (Unix).
#[derive(Debug)]
pub(crate) struct Live {
    /// `[loop i] ` before every line, with several loops.
    label: Option<usize>,
    /// Whether the table comes every ten lines.
    top: bool,
    timer: Option<TimerId>,
    lines: u32,
    last: Option<Snapshot>,
    meter: Meter,
    /// What is printed, formatted here first so it goes out in one write.
    out: String,
    /// The table's rows, kept between tables.
    rows: Vec<ResponderStats>,
}

impl Live {
    /// Registers the live view of the loop `sockets` belongs to (`label`:
    /// its index, to prefix its lines with, when there are several), with
    /// the table every ten lines if `top`.
    pub(crate) fn install<S>(
        sockets: &mut Registry<'_, S>,
        label: Option<usize>,
        top: bool,
    ) -> io::Result<()> {
        // A socket to own the timer: it never reads or writes.
        let holder = UdpSocket::bind("127.0.0.1:0")?;
        holder.set_nonblocking(true)?;
        let live = Live {
            label,
            top,
            timer: None,
            lines: 0,
            last: None,
            meter: Meter::default(),
            out: String::new(),
            rows: Vec::new(),
        };
        let t = sockets.register(holder, Interest::NONE, live)?;
        debug!("{t}: the live view");
        Ok(())
    }

    /// Formats the line of the last period into `self.out`.
    fn line(&mut self, now: &Snapshot) {
        let prefix = Prefix(self.label);
        let Some(last) = &self.last else { return };
        let secs = now.at.saturating_duration_since(last.at).as_secs_f64();
        let per_sec = |n: u64| if secs > 0.0 { n as f64 / secs } else { 0.0 };
        let (a, b) = (&last.stats, &now.stats);
        let events = b.core.events.saturating_sub(a.core.events);
        let busy = b.core.busy.saturating_sub(a.core.busy);
        let waiting = b.core.waiting.saturating_sub(a.core.waiting);
        let total = busy + waiting;
        let busy_pct = if total.is_zero() {
            0.0
        } else {
            100.0 * busy.as_secs_f64() / total.as_secs_f64()
        };
        let p99 = b.handler_times.since(&a.handler_times).quantile(0.99);
        let _ = writeln!(
            self.out,
            "{prefix}stats: {} conns, {:.0} events/s, {} in, {} out, loop {busy_pct:.0}% busy, \
             handler p99 {}",
            self.meter.connections,
            per_sec(events),
            Rate(per_sec(now.bytes_in.saturating_sub(last.bytes_in))),
            Rate(per_sec(now.bytes_out.saturating_sub(last.bytes_out))),
            Human(p99),
        );
    }

    /// Formats the table of the busiest sockets (by handler time over
    /// their life; this responder's own socket left out) into `self.out`.
    fn table<S>(&mut self, sockets: &Registry<'_, S>, own: Token) {
        let prefix = Prefix(self.label);
        self.rows.clear();
        self.rows
            .extend(sockets.all_responder_stats().filter(|s| s.token != own));
        let of = self.rows.len();
        self.rows
            .sort_unstable_by_key(|s| std::cmp::Reverse(s.handler_time));
        self.rows.truncate(TOP);
        let _ = writeln!(
            self.out,
            "{prefix}stats top: {} of {of} sockets by handler time",
            self.rows.len()
        );
        let _ = writeln!(
            self.out,
            "{prefix}  {:<10} {:<NAME_WIDTH$} {:>10} {:>12} {:>12} {:>13} {:>11} {:>9}",
            "token",
            "responder",
            "events",
            "bytes in",
            "bytes out",
            "handler total",
            "handler max",
            "queued"
        );
        for s in &self.rows {
            let _ = writeln!(
                self.out,
                "{prefix}  {:<10} {:<NAME_WIDTH$} {:>10} {:>12} {:>12} {:>13} {:>11} {:>9}",
                s.token.to_string(),
                short_type_name(s.responder, NAME_WIDTH),
                s.io.events(),
                s.io.bytes_in,
                s.io.bytes_out,
                Human(s.handler_time),
                Human(s.handler_max),
                s.queued
            );
        }
    }

    /// Writes `self.out` to the standard output in one call, and empties
    /// it.
    fn flush(&mut self) {
        let mut stdout = io::stdout().lock();
        if let Err(e) = stdout
            .write_all(self.out.as_bytes())
            .and_then(|()| stdout.flush())
        {
            debug!("stats: cannot write to the standard output: {e}");
        }
        self.out.clear();
    }
}

impl<S> Responder<S> for Live {
    fn registered(&mut self, cx: &mut Context<'_, S>) -> Action {
        self.timer = Some(cx.timer_every(PERIOD));
        #[cfg(unix)]
        if let Err(e) = cx.watch_signals(&[sockmux::Signal::User1]) {
            log::warn!("stats: cannot watch SIGUSR1 (no table on it): {e}");
        }
        self.last = Some(Snapshot::take(&cx.sockets, &mut self.meter));
        Action::Continue
    }

    fn ready(&mut self, event: Event, cx: &mut Context<'_, S>) -> Action {
        #[cfg(unix)]
        if event == Event::Signal(sockmux::Signal::User1) {
            self.table(&cx.sockets, cx.token);
            self.flush();
        }
        #[cfg(not(unix))]
        let _ = (event, cx);
        Action::Continue
    }

    fn timer(&mut self, id: TimerId, cx: &mut Context<'_, S>) -> Action {
        if self.timer != Some(id) {
            return Action::Continue;
        }
        let now = Snapshot::take(&cx.sockets, &mut self.meter);
        self.line(&now);
        self.last = Some(now);
        self.lines = self.lines.wrapping_add(1);
        if self.top && self.lines % TOP_EVERY == 0 {
            self.table(&cx.sockets, cx.token);
        }
        self.flush();
        Action::Continue
    }
}

/// `[loop i] ` for loop `i` of several, nothing for a lone loop.
#[derive(Clone, Copy, Debug)]
struct Prefix(Option<usize>);

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(i) => write!(f, "[loop {i}] "),
            None => Ok(()),
        }
    }
}

/// A byte rate with a decimal unit: `512 B/s`, `3.1 kB/s`, `3.1 MB/s`,
/// `1.2 GB/s`.
#[derive(Clone, Copy, Debug)]
struct Rate(f64);

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = self.0;
        if r < 1e3 {
            write!(f, "{r:.0} B/s")
        } else if r < 1e6 {
            write!(f, "{:.1} kB/s", r / 1e3)
        } else if r < 1e9 {
            write!(f, "{:.1} MB/s", r / 1e6)
        } else {
            write!(f, "{:.1} GB/s", r / 1e9)
        }
    }
}

/// A duration, short: `850ns`, `14µs`, `3.2ms`, `1.5s` (padded as a
/// string is, for the table).
#[derive(Clone, Copy, Debug)]
struct Human(Duration);

impl fmt::Display for Human {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ns = self.0.as_nanos() as f64;
        let (value, unit) = if ns < 1e3 {
            (ns, "ns")
        } else if ns < 1e6 {
            (ns / 1e3, "µs")
        } else if ns < 1e9 {
            (ns / 1e6, "ms")
        } else {
            (ns / 1e9, "s")
        };
        let text = if value < 10.0 && unit != "ns" {
            format!("{value:.1}{unit}")
        } else {
            format!("{value:.0}{unit}")
        };
        f.pad(&text)
    }
}

/// A type name without its module paths, cut to `width` characters:
/// `sockmux_responder::stream::Stream<sockmux_responder::codec::Raw,
/// tcp_echo::Echo>` is `Stream<Raw, Echo>`.
fn short_type_name(name: &str, width: usize) -> String {
    let mut out = String::with_capacity(name.len());
    // Where the path segment being copied began in `out`.
    let mut segment = 0;
    let mut chars = name.chars().peekable();
    while let Some(c) = chars.next() {
        if c == ':' && chars.peek() == Some(&':') {
            chars.next();
            out.truncate(segment);
        } else {
            out.push(c);
            if !(c.is_alphanumeric() || c == '_') {
                segment = out.len();
            }
        }
    }
    if out.chars().count() > width {
        out = out.chars().take(width - 1).collect();
        out.push('…');
    }
    out
}

/// Appends the loop's figures to `out` in Prometheus' text exposition
/// format (version 0.0.4): counters (`_total`), gauges, the events per
/// poll as a histogram (cumulative `le` buckets), and the handler time as
/// a summary (quantiles in seconds, `_sum`, `_count`). `meter` counts the
/// bytes.
#[allow(dead_code)] // only the http example serves it
pub(crate) fn prometheus<S>(sockets: &Registry<'_, S>, meter: &mut Meter, out: &mut String) {
    meter.update(sockets);
    let d = sockets.dispatcher_stats();
    let c = &d.core;
    let counters: [(&str, &str, u64); 8] = [
        ("sockmux_polls_total", "Polls of the loop.", c.polls),
        (
            "sockmux_events_total",
            "Events the polls delivered.",
            c.events,
        ),
        ("sockmux_turns_total", "Turns of the dispatcher.", d.turns),
        (
            "sockmux_timers_scheduled_total",
            "Timers scheduled.",
            c.timers_scheduled,
        ),
        (
            "sockmux_timers_fired_total",
            "Timer events delivered.",
            c.timers_fired,
        ),
        ("sockmux_wakes_total", "Wake events delivered.", c.wakes),
        (
            "sockmux_bytes_received_total",
            "Bytes read by the loop's sockets, closed ones included.",
            meter.bytes_in,
        ),
        (
            "sockmux_bytes_sent_total",
            "Bytes written by the loop's sockets, closed ones included.",
            meter.bytes_out,
        ),
    ];
    for (name, help, value) in counters {
        metric(out, name, "counter", help, value);
    }
    metric(
        out,
        "sockmux_signals_total",
        "counter",
        "Signal events delivered.",
        c.signals,
    );
    metric(
        out,
        "sockmux_loop_busy_seconds_total",
        "counter",
        "Time spent between polls (in handlers).",
        c.busy.as_secs_f64(),
    );
    metric(
        out,
        "sockmux_loop_waiting_seconds_total",
        "counter",
        "Time spent inside poll.",
        c.waiting.as_secs_f64(),
    );
    metric(
        out,
        "sockmux_handler_seconds_total",
        "counter",
        "Time spent in responders.",
        d.handler_time.as_secs_f64(),
    );
    let gauges: [(&str, &str, f64); 6] = [
        (
            "sockmux_sockets",
            "Sockets open in the loop (listeners included).",
            d.sockets as f64,
        ),
        (
            "sockmux_connections",
            "Connections (TCP and Unix streams) open in the loop.",
            meter.connections as f64,
        ),
        (
            "sockmux_loop_utilisation",
            "Busy time over busy and waiting time, since the start (0 to 1).",
            c.utilisation(),
        ),
        (
            "sockmux_ready_queue",
            "Sockets in the ready queue when the last poll returned.",
            c.ready_queue as f64,
        ),
        (
            "sockmux_ready_queue_max",
            "The most sockets the ready queue has held.",
            c.ready_queue_max as f64,
        ),
        (
            "sockmux_longest_turn_seconds",
            "The longest turn of the dispatcher.",
            d.longest_turn.as_secs_f64(),
        ),
    ];
    for (name, help, value) in gauges {
        metric(out, name, "gauge", help, value);
    }

    // Events per poll: bucket 0 holds 0, bucket i > 0 holds 2^(i-1) to
    // 2^i - 1, the last one the rest.
    let name = "sockmux_events_per_poll";
    let _ = writeln!(out, "# HELP {name} Events each poll delivered.");
    let _ = writeln!(out, "# TYPE {name} histogram");
    let mut cumulative = 0;
    let last = c.events_per_poll.len() - 1;
    for (i, n) in c.events_per_poll.iter().enumerate() {
        cumulative += n;
        if i < last {
            let le = (1u64 << i) - 1;
            let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {cumulative}");
        }
    }
    let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {cumulative}");
    let _ = writeln!(out, "{name}_sum {}", c.events);
    let _ = writeln!(out, "{name}_count {}", c.polls);

    summary(
        out,
        "sockmux_handler_seconds",
        "Time of each responder call.",
        &d.handler_times,
        d.handler_time,
    );
}

/// One metric of one sample, with its help and type.
fn metric(out: &mut String, name: &str, kind: &str, help: &str, value: impl fmt::Display) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    let _ = writeln!(out, "{name} {value}");
}

/// A summary of `times` (quantiles read from the histogram: each is the
/// top of its bucket, within 19% of the truth), whose sum is `sum`.
fn summary(out: &mut String, name: &str, help: &str, times: &Histogram, sum: Duration) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} summary");
    for q in ["0.5", "0.9", "0.99", "0.999"] {
        let value = times.quantile(q.parse().expect("a number"));
        let _ = writeln!(out, "{name}{{quantile=\"{q}\"}} {}", value.as_secs_f64());
    }
    let _ = writeln!(out, "{name}_sum {}", sum.as_secs_f64());
    let _ = writeln!(out, "{name}_count {}", times.count());
}
