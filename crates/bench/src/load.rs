//! The load generator: N connections doing S-byte ping-pong on one mio
//! thread, every echoed byte checked against what was sent.

use std::fmt;
use std::io::{self, ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

use crate::procfs::ProcStats;

/// How long a load runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Run {
    /// Measure for this long, after the warm-up.
    For(Duration),
    /// Exactly this many requests in all, no warm-up (for counting).
    Requests(u64),
}

/// What to send, where, and for how long.
#[derive(Clone, Debug)]
pub struct LoadConfig {
    /// The echo server.
    pub addr: SocketAddr,
    /// Connections, each with one request in flight.
    pub conns: usize,
    /// Bytes per request (and per reply).
    pub size: usize,
    /// Requests before measuring starts (ignored by [`Run::Requests`]).
    pub warmup: Duration,
    /// How long to measure.
    pub run: Run,
    /// The server's process, to sample its CPU time and peak memory.
    pub server_pid: Option<u32>,
}

/// What one load measured.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LoadReport {
    /// Requests completed (reply fully received and checked) while measuring.
    pub requests: u64,
    /// Length of the measured window.
    pub elapsed: Duration,
    /// Median request latency (write of the first byte to the last byte back).
    pub p50: Duration,
    /// 99th percentile latency.
    pub p99: Duration,
    /// Server CPU time (user + system) spent in the window.
    pub server_cpu: Option<Duration>,
    /// Server peak resident memory (`VmHWM`) at the end, KiB.
    pub server_peak_rss_kib: Option<u64>,
}

impl LoadReport {
    /// Requests per second over the window.
    #[must_use]
    pub fn requests_per_sec(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Server CPU microseconds per request.
    #[must_use]
    pub fn cpu_us_per_request(&self) -> Option<f64> {
        let cpu = self.server_cpu?;
        Some(cpu.as_secs_f64() * 1e6 / self.requests.max(1) as f64)
    }

    /// Parses the line [`Display`](fmt::Display) writes.
    ///
    /// # Errors
    ///
    /// `InvalidData` naming the field that is missing or malformed.
    pub fn parse(line: &str) -> io::Result<LoadReport> {
        let field = |name: &str| -> Option<u64> {
            line.split_whitespace()
                .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
                .and_then(|v| v.parse().ok())
        };
        let need = |name: &str| {
            field(name).ok_or_else(|| {
                io::Error::new(
                    ErrorKind::InvalidData,
                    format!("no {name}= in load report {line:?}"),
                )
            })
        };
        Ok(LoadReport {
            requests: need("requests")?,
            elapsed: Duration::from_nanos(need("elapsed_ns")?),
            p50: Duration::from_nanos(need("p50_ns")?),
            p99: Duration::from_nanos(need("p99_ns")?),
            server_cpu: field("server_cpu_ns").map(Duration::from_nanos),
            server_peak_rss_kib: field("server_peak_rss_kib"),
        })
    }
}

/// One line of `key=value` fields, read back by [`LoadReport::parse`].
impl fmt::Display for LoadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "requests={} elapsed_ns={} p50_ns={} p99_ns={}",
            self.requests,
            self.elapsed.as_nanos(),
            self.p50.as_nanos(),
            self.p99.as_nanos()
        )?;
        if let Some(cpu) = self.server_cpu {
            write!(f, " server_cpu_ns={}", cpu.as_nanos())?;
        }
        if let Some(kib) = self.server_peak_rss_kib {
            write!(f, " server_peak_rss_kib={kib}")?;
        }
        Ok(())
    }
}

/// One client connection and its request in flight.
struct Client {
    stream: TcpStream,
    /// The request; its first 8 bytes carry the sequence number, so a
    /// reply to an older request cannot pass for this one.
    msg: Vec<u8>,
    seq: u64,
    written: usize,
    received: usize,
    started: Instant,
    busy: bool,
}

impl Client {
    fn start(&mut self, now: Instant) -> io::Result<()> {
        self.seq += 1;
        let n = self.msg.len().min(8);
        self.msg[..n].copy_from_slice(&self.seq.to_le_bytes()[..n]);
        self.written = 0;
        self.received = 0;
        self.started = now;
        self.busy = true;
        self.write()
    }

    fn write(&mut self) -> io::Result<()> {
        while self.written < self.msg.len() {
            match self.stream.write(&self.msg[self.written..]) {
                Ok(n) => self.written += n,
                // Send buffer full: the writable edge resumes it.
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Reads what is there; true when the reply is complete.
    fn read(&mut self, buf: &mut [u8], id: usize) -> io::Result<bool> {
        loop {
            match self.stream.read(buf) {
                Ok(0) => {
                    return Err(io::Error::new(
                        ErrorKind::UnexpectedEof,
                        format!("connection {id}: server closed it"),
                    ))
                }
                Ok(n) => {
                    let expected = self.msg.get(self.received..self.received + n);
                    if expected != Some(&buf[..n]) || !self.busy {
                        return Err(io::Error::new(
                            ErrorKind::InvalidData,
                            format!(
                                "connection {id}, request {}: {n} bytes at offset {} differ from what was sent",
                                self.seq, self.received
                            ),
                        ));
                    }
                    self.received += n;
                    if self.received == self.msg.len() {
                        self.busy = false;
                        return Ok(true);
                    }
                }
                // Drained: the readable edge brings the rest.
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// Longest time with no reply at all before the load gives up.
const STALL: Duration = Duration::from_secs(10);

/// Runs one load and reports it.
///
/// # Errors
///
/// A connect or I/O error, a reply that differs from its request, or a
/// server that stalls for 10 s.
///
/// # Panics
///
/// If `conns` or `size` is zero.
pub fn run_load(config: &LoadConfig) -> io::Result<LoadReport> {
    assert!(
        config.conns > 0 && config.size > 0,
        "conns and size must be positive"
    );
    let mut poll = Poll::new()?;
    let mut clients = Vec::with_capacity(config.conns);
    for id in 0..config.conns {
        let stream = std::net::TcpStream::connect(config.addr)?;
        stream.set_nodelay(true)?;
        stream.set_nonblocking(true)?;
        let mut stream = TcpStream::from_std(stream);
        poll.registry().register(
            &mut stream,
            Token(id),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        let msg = (0..config.size)
            .map(|i| (i.wrapping_mul(31) ^ id.wrapping_mul(7)) as u8)
            .collect();
        clients.push(Client {
            stream,
            msg,
            seq: 0,
            written: 0,
            received: 0,
            started: Instant::now(),
            busy: false,
        });
    }

    let expected = match config.run {
        Run::For(d) => (d.as_secs_f64() * 300_000.0) as usize,
        Run::Requests(n) => n as usize,
    };
    let mut latencies: Vec<u64> = Vec::with_capacity(expected.min(1 << 24));
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; config.size.max(64 * 1024)];

    let begin = Instant::now();
    let (mut measuring, mut window_start, mut stats_start) = match config.run {
        Run::For(_) if !config.warmup.is_zero() => (false, begin, None),
        _ => (true, begin, sample(config.server_pid)?),
    };
    let mut issued = 0u64;
    let mut completed = 0u64;
    let limit = match config.run {
        Run::Requests(n) => n,
        Run::For(_) => u64::MAX,
    };
    for client in &mut clients {
        if issued < limit {
            issued += 1;
            client.start(begin)?;
        }
    }
    let mut last_progress = begin;
    loop {
        poll.poll(&mut events, Some(Duration::from_millis(50)))?;
        let now = Instant::now();
        for event in &events {
            let id = event.token().0;
            let client = &mut clients[id];
            if event.is_writable() && client.busy && client.written < client.msg.len() {
                client.write()?;
            }
            let readable = event.is_readable() || event.is_read_closed() || event.is_error();
            if readable && client.read(&mut buf, id)? {
                last_progress = now;
                if measuring {
                    completed += 1;
                    latencies.push(now.duration_since(client.started).as_nanos() as u64);
                }
                if issued < limit {
                    issued += 1;
                    client.start(now)?;
                }
            }
        }
        match config.run {
            Run::For(window) => {
                if !measuring && now.duration_since(begin) >= config.warmup {
                    measuring = true;
                    window_start = now;
                    stats_start = sample(config.server_pid)?;
                } else if measuring && now.duration_since(window_start) >= window {
                    break;
                }
            }
            Run::Requests(n) => {
                if completed == n {
                    break;
                }
            }
        }
        if now.duration_since(last_progress) > STALL {
            return Err(io::Error::new(
                ErrorKind::TimedOut,
                format!("no reply for {STALL:?}"),
            ));
        }
    }
    let elapsed = window_start.elapsed();
    let stats_end = sample(config.server_pid)?;
    drop(clients);

    latencies.sort_unstable();
    let at = |q: f64| {
        let i = ((latencies.len() as f64 * q).ceil() as usize).clamp(1, latencies.len().max(1)) - 1;
        Duration::from_nanos(latencies.get(i).copied().unwrap_or(0))
    };
    let (server_cpu, server_peak_rss_kib) = match (stats_start, stats_end) {
        (Some(a), Some(b)) => (Some(b.cpu.saturating_sub(a.cpu)), Some(b.peak_rss_kib)),
        _ => (None, None),
    };
    Ok(LoadReport {
        requests: completed,
        elapsed,
        p50: at(0.50),
        p99: at(0.99),
        server_cpu,
        server_peak_rss_kib,
    })
}

fn sample(pid: Option<u32>) -> io::Result<Option<ProcStats>> {
    pid.map(ProcStats::read).transpose()
}
