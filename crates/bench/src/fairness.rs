//! The fairness load: flood connections that keep the server's echo path
//! saturated, next to one ping-pong connection whose round trips are timed.
//!
//! Each flood connection has a writer thread sending 64 KiB writes as fast as
//! the socket takes them and a reader thread reading the echo back; both keep
//! an FNV-1a checksum, compared once the flood has stopped and every byte
//! sent has come back. The ping-pong connection (`TCP_NODELAY`, blocking)
//! sends one small request at a time and records the exact latency of every
//! round trip after the warm-up. Every wait is bounded: a server that stops
//! answering ends the load with an error.

use std::fmt;
use std::fmt::Write as _;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::report::median;

/// Bytes per flood write.
pub const FLOOD_WRITE: usize = 64 * 1024;

/// Longest time with no progress (no ping-pong reply, or no echoed flood
/// byte while some are owed) before the load gives up.
pub const STALL: Duration = Duration::from_secs(10);

/// How often a blocked call wakes up to look at the clock and the stop flag.
const TICK: Duration = Duration::from_millis(100);

/// What to run, where, and for how long.
#[derive(Clone, Debug)]
pub struct FairnessConfig {
    /// The echo server.
    pub addr: SocketAddr,
    /// Flood connections.
    pub floods: usize,
    /// Bytes per ping-pong request (and per reply).
    pub ping_size: usize,
    /// Time before measuring starts (the flood runs, round trips are not
    /// recorded).
    pub warmup: Duration,
    /// How long to measure.
    pub secs: Duration,
}

/// What one fairness load measured.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FairnessReport {
    /// Ping-pong round trips completed while measuring.
    pub round_trips: u64,
    /// Median round trip.
    pub p50: Duration,
    /// 99th percentile round trip.
    pub p99: Duration,
    /// Slowest round trip.
    pub max: Duration,
    /// Flood bytes echoed back while measuring (all flood connections).
    pub flood_bytes: u64,
    /// Length of the measured window.
    pub elapsed: Duration,
    /// Flood bytes sent in all (warm-up and drain included).
    pub flood_sent: u64,
    /// Whether, on every flood connection, every byte sent came back and
    /// the checksums of what was sent and what came back agree.
    pub checksum_ok: bool,
}

impl FairnessReport {
    /// Flood MiB echoed per second over the window.
    #[must_use]
    pub fn flood_mib_per_sec(&self) -> f64 {
        self.flood_bytes as f64 / (1024.0 * 1024.0) / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Parses the line [`Display`](fmt::Display) writes.
    ///
    /// # Errors
    ///
    /// `InvalidData` naming the field that is missing or malformed.
    pub fn parse(line: &str) -> io::Result<FairnessReport> {
        let need = |name: &str| -> io::Result<u64> {
            line.split_whitespace()
                .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| {
                    io::Error::new(
                        ErrorKind::InvalidData,
                        format!("no {name}= in fairness report {line:?}"),
                    )
                })
        };
        Ok(FairnessReport {
            round_trips: need("round_trips")?,
            p50: Duration::from_nanos(need("p50_ns")?),
            p99: Duration::from_nanos(need("p99_ns")?),
            max: Duration::from_nanos(need("max_ns")?),
            flood_bytes: need("flood_bytes")?,
            elapsed: Duration::from_nanos(need("elapsed_ns")?),
            flood_sent: need("flood_sent")?,
            checksum_ok: need("checksum_ok")? == 1,
        })
    }
}

/// One line of `key=value` fields, read back by [`FairnessReport::parse`].
impl fmt::Display for FairnessReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "round_trips={} p50_ns={} p99_ns={} max_ns={} flood_bytes={} elapsed_ns={} flood_sent={} checksum_ok={}",
            self.round_trips,
            self.p50.as_nanos(),
            self.p99.as_nanos(),
            self.max.as_nanos(),
            self.flood_bytes,
            self.elapsed.as_nanos(),
            self.flood_sent,
            u8::from(self.checksum_ok)
        )
    }
}

/// FNV-1a, 64-bit, fed in pieces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fnv1a(u64);

impl Default for Fnv1a {
    fn default() -> Fnv1a {
        Fnv1a(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv1a {
    /// Adds bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    /// The checksum so far.
    #[must_use]
    pub fn value(self) -> u64 {
        self.0
    }
}

/// What one flood connection's threads agree on.
struct Flood {
    /// Bytes read back so far.
    received: AtomicU64,
    /// Set by the main thread: the writer stops.
    stop: AtomicBool,
    /// Set by either thread when it gives up: the other stops too.
    failed: AtomicBool,
}

/// The writer's result: bytes sent, their checksum.
type Sent = (u64, Fnv1a);

fn stalled(what: &str) -> io::Error {
    io::Error::new(
        ErrorKind::TimedOut,
        format!("{what}: no progress for {STALL:?}"),
    )
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

fn flood_writer(mut stream: TcpStream, flood: &Flood, id: usize) -> io::Result<Sent> {
    stream.set_write_timeout(Some(TICK))?;
    // A buffer that differs from one write to the next (its first 8 bytes
    // count the writes), so a repeated or lost chunk changes the checksum.
    let mut buf: Vec<u8> = (0..FLOOD_WRITE)
        .map(|i| (i.wrapping_mul(131) ^ id.wrapping_mul(17)) as u8)
        .collect();
    let (mut sent, mut sum, mut chunk) = (0u64, Fnv1a::default(), 0u64);
    let mut last_progress = Instant::now();
    while !flood.stop.load(Ordering::Relaxed) && !flood.failed.load(Ordering::Relaxed) {
        chunk += 1;
        buf[..8].copy_from_slice(&chunk.to_le_bytes());
        let mut done = 0;
        while done < buf.len() {
            match stream.write(&buf[done..]) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(n) => {
                    sum.update(&buf[done..done + n]);
                    done += n;
                    sent += n as u64;
                    last_progress = Instant::now();
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if is_timeout(&e) => {
                    if flood.stop.load(Ordering::Relaxed) || flood.failed.load(Ordering::Relaxed) {
                        return Ok((sent, sum));
                    }
                    if last_progress.elapsed() > STALL {
                        return Err(stalled(&format!("flood {id}, writing")));
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }
    Ok((sent, sum))
}

/// Reads the echo until `total` (once the writer has said it) has come back.
fn flood_reader(
    mut stream: TcpStream,
    flood: &Flood,
    total: &std::sync::mpsc::Receiver<u64>,
    id: usize,
) -> io::Result<Fnv1a> {
    stream.set_read_timeout(Some(TICK))?;
    let mut buf = vec![0u8; FLOOD_WRITE];
    let (mut received, mut sum) = (0u64, Fnv1a::default());
    let mut target = None;
    let mut last_progress = Instant::now();
    loop {
        if target.is_none() {
            target = total.try_recv().ok();
        }
        if target.is_some_and(|t| received >= t) {
            return Ok(sum);
        }
        if flood.failed.load(Ordering::Relaxed) {
            return Ok(sum);
        }
        match stream.read(&mut buf) {
            Ok(0) => {
                return Err(io::Error::new(
                    ErrorKind::UnexpectedEof,
                    format!("flood {id}: the server closed the connection after {received} bytes"),
                ))
            }
            Ok(n) => {
                sum.update(&buf[..n]);
                received += n as u64;
                flood.received.store(received, Ordering::Relaxed);
                last_progress = Instant::now();
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if is_timeout(&e) => {
                if last_progress.elapsed() > STALL {
                    return Err(stalled(&format!(
                        "flood {id}, reading the echo ({received} bytes back)"
                    )));
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// One flood connection's threads.
struct FloodConn {
    state: Arc<Flood>,
    writer: thread::JoinHandle<io::Result<Sent>>,
    reader: thread::JoinHandle<io::Result<Fnv1a>>,
    total: std::sync::mpsc::Sender<u64>,
}

fn start_flood(addr: SocketAddr, id: usize) -> io::Result<FloodConn> {
    let stream = TcpStream::connect_timeout(&addr, STALL)?;
    let state = Arc::new(Flood {
        received: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        failed: AtomicBool::new(false),
    });
    let (total, total_rx) = std::sync::mpsc::channel();
    let (w_stream, r_stream) = (stream.try_clone()?, stream);
    let w_state = Arc::clone(&state);
    let writer = thread::Builder::new()
        .name(format!("flood-{id}-write"))
        .spawn(move || {
            let r = flood_writer(w_stream, &w_state, id);
            if r.is_err() {
                w_state.failed.store(true, Ordering::Relaxed);
            }
            r
        })?;
    let r_state = Arc::clone(&state);
    let reader = thread::Builder::new()
        .name(format!("flood-{id}-read"))
        .spawn(move || {
            let r = flood_reader(r_stream, &r_state, &total_rx, id);
            if r.is_err() {
                r_state.failed.store(true, Ordering::Relaxed);
            }
            r
        })?;
    Ok(FloodConn {
        state,
        writer,
        reader,
        total,
    })
}

fn joined<T>(handle: thread::JoinHandle<io::Result<T>>) -> io::Result<T> {
    handle
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("a flood thread panicked")))
}

/// The ping-pong connection: one request in flight, every round trip timed.
fn ping_pong(
    addr: SocketAddr,
    size: usize,
    warmup: Duration,
    window: Duration,
    floods: &[FloodConn],
) -> io::Result<(Vec<u64>, Duration, u64)> {
    let mut stream = TcpStream::connect_timeout(&addr, STALL)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(TICK))?;
    stream.set_write_timeout(Some(TICK))?;
    let mut msg: Vec<u8> = (0..size)
        .map(|i| (i.wrapping_mul(29) ^ 0x5a) as u8)
        .collect();
    let mut reply = vec![0u8; size];
    let mut samples: Vec<u64> = Vec::with_capacity((window.as_secs_f64() * 50_000.0) as usize);
    let flood_received = || -> u64 {
        floods
            .iter()
            .map(|f| f.state.received.load(Ordering::Relaxed))
            .sum()
    };
    let failed = || {
        floods
            .iter()
            .any(|f| f.state.failed.load(Ordering::Relaxed))
    };
    let begin = Instant::now();
    let (mut measuring, mut window_start, mut flood_start) = (false, begin, 0);
    let mut seq = 0u64;
    loop {
        let now = Instant::now();
        if !measuring && now.duration_since(begin) >= warmup {
            measuring = true;
            window_start = now;
            flood_start = flood_received();
        }
        if measuring && now.duration_since(window_start) >= window {
            let elapsed = now.duration_since(window_start);
            return Ok((samples, elapsed, flood_received() - flood_start));
        }
        if failed() {
            // The flood's error is the one reported.
            return Ok((samples, now.duration_since(window_start), 0));
        }
        seq += 1;
        let n = size.min(8);
        msg[..n].copy_from_slice(&seq.to_le_bytes()[..n]);
        let started = Instant::now();
        let mut done = 0;
        while done < size {
            match stream.write(&msg[done..]) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(k) => done += k,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if is_timeout(&e) && started.elapsed() <= STALL => {}
                Err(e) if is_timeout(&e) => return Err(stalled("ping-pong, writing")),
                Err(e) => return Err(e),
            }
        }
        let mut got = 0;
        while got < size {
            match stream.read(&mut reply[got..]) {
                Ok(0) => {
                    return Err(io::Error::new(
                        ErrorKind::UnexpectedEof,
                        "ping-pong: the server closed the connection",
                    ))
                }
                Ok(k) => got += k,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if is_timeout(&e) && started.elapsed() <= STALL => {}
                Err(e) if is_timeout(&e) => {
                    return Err(stalled(&format!("ping-pong, waiting for reply {seq}")))
                }
                Err(e) => return Err(e),
            }
        }
        let took = started.elapsed();
        if reply != msg {
            return Err(io::Error::new(
                ErrorKind::InvalidData,
                format!("ping-pong: reply {seq} differs from its request"),
            ));
        }
        if measuring {
            samples.push(took.as_nanos() as u64);
        }
    }
}

/// Runs one fairness load and reports it.
///
/// # Errors
///
/// A connect or I/O error, an echo that differs from what was sent, or a
/// server that makes no progress for [`STALL`].
///
/// # Panics
///
/// If `floods` or `ping_size` is zero.
pub fn run_fairness(config: &FairnessConfig) -> io::Result<FairnessReport> {
    assert!(
        config.floods > 0 && config.ping_size > 0,
        "floods and ping_size must be positive"
    );
    let mut floods = Vec::with_capacity(config.floods);
    for id in 0..config.floods {
        floods.push(start_flood(config.addr, id)?);
    }
    let pinged = ping_pong(
        config.addr,
        config.ping_size,
        config.warmup,
        config.secs,
        &floods,
    );
    // Stop the flood, whatever happened, and collect it; if the ping-pong
    // failed, without waiting for the echo owed.
    for f in &floods {
        f.state.stop.store(true, Ordering::Relaxed);
        if pinged.is_err() {
            f.state.failed.store(true, Ordering::Relaxed);
        }
    }
    if let Err(e) = pinged {
        for f in floods {
            let _ = joined(f.writer);
            let _ = joined(f.reader);
        }
        return Err(e);
    }
    let mut flood_error = None;
    let (mut flood_sent, mut checksum_ok) = (0u64, true);
    for (id, f) in floods.into_iter().enumerate() {
        let sent = joined(f.writer);
        if let Ok((n, _)) = &sent {
            let _ = f.total.send(*n);
        } else {
            f.state.failed.store(true, Ordering::Relaxed);
        }
        let received = joined(f.reader);
        match (sent, received) {
            (Ok((n, a)), Ok(b)) => {
                flood_sent += n;
                let back = f.state.received.load(Ordering::Relaxed);
                if back != n || a != b {
                    checksum_ok = false;
                    eprintln!(
                        "flood {id}: sent {n} bytes (FNV-1a {:016x}), got {back} back ({:016x})",
                        a.value(),
                        b.value()
                    );
                }
            }
            (Err(e), _) | (_, Err(e)) => {
                flood_error.get_or_insert(e);
            }
        }
    }
    if let Some(e) = flood_error {
        return Err(e);
    }
    let (mut samples, elapsed, flood_bytes) = pinged?;
    samples.sort_unstable();
    let at = |q: f64| {
        let i = ((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len().max(1)) - 1;
        Duration::from_nanos(samples.get(i).copied().unwrap_or(0))
    };
    Ok(FairnessReport {
        round_trips: samples.len() as u64,
        p50: at(0.50),
        p99: at(0.99),
        max: Duration::from_nanos(samples.last().copied().unwrap_or(0)),
        flood_bytes,
        elapsed,
        flood_sent,
        checksum_ok,
    })
}

/// The bar for the ping-pong's p99 next to a flood.
pub const P99_BAR: Duration = Duration::from_millis(50);

/// Medians over the repetitions of one server's fairness load.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FairnessSummary {
    /// Ping-pong round trips per run.
    pub round_trips: f64,
    /// Median round trip, µs.
    pub p50_us: f64,
    /// 99th percentile round trip, µs.
    pub p99_us: f64,
    /// Slowest round trip, µs.
    pub max_us: f64,
    /// Flood MiB echoed per second.
    pub flood_mib_s: f64,
    /// Whether every run's flood came back intact.
    pub checksum_ok: bool,
    /// How many runs the medians are over.
    pub runs: usize,
}

impl FairnessSummary {
    /// Medians of `runs`; `None` without runs.
    #[must_use]
    pub fn of(runs: &[FairnessReport]) -> Option<FairnessSummary> {
        let of = |f: &dyn Fn(&FairnessReport) -> f64| median(runs.iter().map(f).collect());
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        Some(FairnessSummary {
            round_trips: of(&|r| r.round_trips as f64)?,
            p50_us: of(&|r| us(r.p50))?,
            p99_us: of(&|r| us(r.p99))?,
            max_us: of(&|r| us(r.max))?,
            flood_mib_s: of(&FairnessReport::flood_mib_per_sec)?,
            checksum_ok: runs.iter().all(|r| r.checksum_ok),
            runs: runs.len(),
        })
    }
}

/// The fairness table (Markdown), one row per server; the first row is the
/// baseline of the p99 ratio. Then one line per server against
/// [`P99_BAR`].
#[must_use]
pub fn fairness_table(rows: &[(String, Vec<FairnessReport>)]) -> String {
    let mut out = String::from(
        "| server | ping-pong round trips | p50 µs | p99 µs | p99 ×mio | max µs | flood MiB/s echoed | checksum ok |\n\
         |---|---:|---:|---:|---:|---:|---:|---|\n",
    );
    let summaries: Vec<(&str, Option<FairnessSummary>)> = rows
        .iter()
        .map(|(label, runs)| (label.as_str(), FairnessSummary::of(runs)))
        .collect();
    let base = summaries.first().and_then(|(_, s)| *s);
    for (label, s) in &summaries {
        let Some(s) = s else {
            let _ = writeln!(out, "| {label} | – | – | – | – | – | – | no run |");
            continue;
        };
        let ratio = match base {
            Some(b) if b.p99_us > 0.0 => format!("{:.2}", s.p99_us / b.p99_us),
            _ => "–".into(),
        };
        let _ = writeln!(
            out,
            "| {label} | {:.0} | {:.0} | {:.0} | {ratio} | {:.0} | {:.0} | {} |",
            s.round_trips,
            s.p50_us,
            s.p99_us,
            s.max_us,
            s.flood_mib_s,
            if s.checksum_ok { "yes" } else { "NO" }
        );
    }
    let bar_us = P99_BAR.as_secs_f64() * 1e6;
    let _ = writeln!(
        out,
        "\nBar (ping-pong p99 next to the flood under {} ms, flood intact):",
        P99_BAR.as_millis()
    );
    for (label, s) in &summaries {
        if let Some(s) = s {
            let _ = writeln!(
                out,
                "  {label:<13} p99 {:.2} ms: {}{}",
                s.p99_us / 1e3,
                if s.p99_us < bar_us {
                    "under 50 ms, met"
                } else {
                    "NOT under 50 ms"
                },
                if s.checksum_ok {
                    ""
                } else {
                    "; flood checksum MISMATCH"
                }
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_the_reference_and_is_piecewise() {
        let mut h = Fnv1a::default();
        h.update(b"");
        assert_eq!(h.value(), 0xcbf2_9ce4_8422_2325);
        h.update(b"a");
        assert_eq!(h.value(), 0xaf63_dc4c_8601_ec8c);
        let (mut whole, mut parts) = (Fnv1a::default(), Fnv1a::default());
        whole.update(b"foobar");
        parts.update(b"foo");
        parts.update(b"bar");
        assert_eq!(whole, parts);
        assert_eq!(whole.value(), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn the_report_line_reads_back() {
        let report = FairnessReport {
            round_trips: 1234,
            p50: Duration::from_micros(80),
            p99: Duration::from_micros(900),
            max: Duration::from_millis(3),
            flood_bytes: 5 << 30,
            elapsed: Duration::from_secs(4),
            flood_sent: 6 << 30,
            checksum_ok: true,
        };
        assert_eq!(FairnessReport::parse(&report.to_string()).unwrap(), report);
        assert!((report.flood_mib_per_sec() - 1280.0).abs() < 1e-9);
        assert!(FairnessReport::parse("round_trips=1").is_err());
    }

    #[test]
    fn the_table_gives_ratios_to_the_first_row_and_the_bar() {
        let run = |p99_ms: u64, ok: bool| FairnessReport {
            round_trips: 1000,
            p50: Duration::from_micros(100),
            p99: Duration::from_millis(p99_ms),
            max: Duration::from_millis(p99_ms * 2),
            flood_bytes: 400 << 20,
            elapsed: Duration::from_secs(2),
            flood_sent: 500 << 20,
            checksum_ok: ok,
        };
        let table = fairness_table(&[
            ("mio".into(), vec![run(2, true), run(4, true), run(3, true)]),
            ("sockmux".into(), vec![run(60, false)]),
            ("gone".into(), vec![]),
        ]);
        assert!(
            table.contains("| mio | 1000 | 100 | 3000 | 1.00 | 6000 | 200 | yes |"),
            "{table}"
        );
        assert!(
            table.contains("| sockmux | 1000 | 100 | 60000 | 20.00 | 120000 | 200 | NO |"),
            "{table}"
        );
        assert!(table.contains("| gone | – |"), "{table}");
        assert!(
            table.contains("mio           p99 3.00 ms: under 50 ms, met\n"),
            "{table}"
        );
        assert!(
            table.contains("sockmux       p99 60.00 ms: NOT under 50 ms; flood checksum MISMATCH"),
            "{table}"
        );
    }
}
