//! The soak (issue 14, item 5; docs/reliability.md, "The soak"): a
//! single-threaded streams echo server (`Acceptor` + `Stream<Raw, _>`, as
//! `examples/tcp_echo.rs`) and a UDP echo on one dispatcher, on a thread of
//! their own, under about 2,000 mixed clients for 60 s (a duration set by
//! `SOCKMUX_SOAK_SECS`; `ci/test.sh` runs 10 s), then a 2 s idle tail.
//!
//! The clients are threads with blocking sockets, each running one session
//! after another until the load ends, of a kind drawn from the seed:
//! checksummed echo (round trips of up to 8 KiB every 0.5–1.5 s, then an
//! orderly end), half-closers (the same, then 64 KiB and `shutdown(Write)`
//! before reading the echo to its end), resetters (the same, then 16 KiB
//! and a reset, `SO_LINGER` 0), slow readers (1 MiB sent while the echo is
//! read 4 KiB every 10 ms: the server pauses them at its high-water mark)
//! and flooders (4 MiB each way as fast as they go). Sessions last 10–30 s
//! (the first 0–20 s), so the population of about 2,000 makes about 100 new
//! connections a second. Two more threads send bursts of 0- and 65,507-byte
//! datagrams to the UDP echo; the server itself connects to a dead port ten
//! times a second (each must fail with `ConnectionRefused`, row 12).
//!
//! Sampled every second and printed as a table: RSS, descriptors, the
//! server's table size, its CPU (its thread's, from `/proc`), new
//! connections, bytes checked. It passes when nothing panics (no thread, no
//! responder: the dispatcher logs a responder's panic as an error, and none
//! may be logged), every checksum matches, RSS and descriptors level off
//! (the peak of the second half of the load within a quarter of the first
//! half's, plus a margin; the load is measured from the end of the ramp,
//! when nine tenths of the clients are connected), and in the 2 s idle
//! tail the descriptors and the table are back at their count before the
//! load and the server's loop does not turn (at most 2 turns: a loop that
//! spins turns thousands of times). The tail's CPU is printed, not
//! asserted (no test asserts a CPU amount).
//!
//! Ignored by default: `cargo test --test soak -- --ignored` runs it;
//! `SOCKMUX_SOAK_SEED` replays a seed (the clients' draws; the machine's
//! timing is its own), `SOCKMUX_SOAK_CLIENTS` changes the
//! population, `SOCKMUX_SOAK_SVG=PATH` draws the samples as an SVG chart
//! (docs/soak-chart.svg). Its own binary with its own `main`: it raises
//! the descriptor limit, and its figures are the process's. Linux only
//! (`/proc`; see docs/windows.md).

mod util;

fn main() {
    let run = std::env::args().any(|a| a == "--ignored" || a == "--include-ignored");
    let listed = std::env::args().any(|a| a == "--list");
    #[cfg(target_os = "linux")]
    if run && !listed {
        util::harness::run_tests(util::harness::tests![linux: soak]);
        return;
    }
    #[cfg(not(target_os = "linux"))]
    if run && !listed {
        util::harness::skip("it reads /proc, which this platform lacks");
        return;
    }
    if listed {
        println!("soak: test");
        return;
    }
    println!("\nsoak: 0 passed; 1 ignored (run it with `cargo test --test soak -- --ignored`)\n");
}

#[cfg(target_os = "linux")]
mod linux {
    use std::collections::BTreeMap;
    use std::io::{self, ErrorKind, Read, Write};
    use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
    use std::sync::{mpsc, Arc, Barrier, Mutex, OnceLock};
    use std::thread;
    use std::time::{Duration, Instant};

    use sockmux::{
        Acceptor, Action, CloseReason, Context, Dispatcher, Event, Protocol, Raw, Receiver,
        Responder, Sender, Stream, StreamIo, TimerId, Token,
    };

    use crate::util::{
        fnv1a, read_to_end, read_to_end_slowly, reset, rlimit, send_pattern, Rng, FNV_START, LIMIT,
    };

    /// The population of client threads.
    const CLIENTS: usize = 2000;
    /// The load's length, in seconds, unless `SOCKMUX_SOAK_SECS` says.
    const SECS: u64 = 60;
    /// The idle tail.
    const TAIL: Duration = Duration::from_secs(2);
    /// The most turns the server's loop may make in the idle tail.
    const TAIL_TURNS: u64 = 2;
    /// The largest UDP payload over IPv4.
    const MAX_DATAGRAM: usize = 65_507;
    /// How often the server connects to a dead port.
    const DEAD_EVERY: Duration = Duration::from_millis(100);

    fn env_number(name: &str, default: u64) -> u64 {
        match std::env::var(name) {
            Ok(v) => v
                .parse()
                .unwrap_or_else(|_| panic!("{name}={v}: not a number")),
            Err(_) => default,
        }
    }

    // --- the server ------------------------------------------------------

    /// What the test tells the server, through a sockmux channel.
    #[derive(Debug)]
    enum Command {
        /// The load begins: start connecting to the dead port.
        Load,
        /// The load is over: stop connecting to it.
        Quiet,
        /// Leave the loop.
        Stop,
    }

    /// What the server's loop shows the sampler, updated after each turn.
    #[derive(Debug, Default)]
    struct Gauges {
        table: AtomicUsize,
        turns: AtomicU64,
        /// The server has stopped connecting to the dead port.
        quiet: std::sync::atomic::AtomicBool,
        /// The server thread's `/proc/self/task/TID` folder.
        task: OnceLock<String>,
    }

    /// The server's shared state: its counters.
    #[derive(Debug, Default)]
    struct Server {
        control: Option<Sender<Command>>,
        accepted: u64,
        /// Bytes written back to clients (what the sockets took).
        echoed: u64,
        /// Connections closed, by reason.
        closed: BTreeMap<String, u64>,
        dead_refused: u64,
        /// Dead-port connects that ended otherwise: a failure.
        dead_other: Vec<String>,
        datagrams: u64,
        /// Datagrams whose echo the socket did not take (a full buffer).
        datagrams_dropped: u64,
    }

    /// One connection's protocol: every chunk read is written back.
    #[derive(Debug, Default)]
    struct Echo {
        written: u64,
    }

    impl Protocol<Server> for Echo {
        fn frame(&mut self, bytes: &[u8], io: &mut StreamIo<'_, '_, Server>) {
            io.write(bytes);
            self.written += bytes.len() as u64;
        }

        fn closed(&mut self, reason: CloseReason, unsent: usize, cx: &mut Context<'_, Server>) {
            cx.state.echoed += self.written - unsent as u64;
            *cx.state.closed.entry(format!("{reason:?}")).or_default() += 1;
        }
    }

    /// The UDP echo, which also owns the control channel and the timer of
    /// the dead-port connects.
    struct UdpEcho {
        buf: Vec<u8>,
        control: Option<Receiver<Command>>,
        timer: Option<TimerId>,
        dead: SocketAddr,
        gauges: Arc<Gauges>,
    }

    impl Responder<Server> for UdpEcho {
        fn registered(&mut self, cx: &mut Context<'_, Server>) -> Action {
            let (tx, rx) = cx.channel().expect("a control channel");
            cx.state.control = Some(tx);
            self.control = Some(rx);
            Action::Continue
        }

        fn ready(&mut self, event: Event, cx: &mut Context<'_, Server>) -> Action {
            match event {
                Event::Read(t) => {
                    // A budget per event, as a server would.
                    for _ in 0..64 {
                        match cx.sockets.recv_from(t, &mut self.buf) {
                            Ok((n, from)) => {
                                cx.state.datagrams += 1;
                                match cx.sockets.send_to(t, &self.buf[..n], from) {
                                    Ok(_) => {}
                                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                                        cx.state.datagrams_dropped += 1;
                                    }
                                    Err(e) => panic!("udp echo send_to {from}: {e}"),
                                }
                            }
                            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                            Err(e) => panic!("udp echo recv_from: {e}"),
                        }
                    }
                }
                Event::Wake => {
                    let rx = self.control.as_ref().expect("made when registered");
                    while let Ok(command) = rx.try_recv() {
                        match command {
                            Command::Load => self.timer = Some(cx.timer_every(DEAD_EVERY)),
                            Command::Quiet => {
                                if let Some(id) = self.timer.take() {
                                    cx.cancel_timer(id);
                                }
                                self.gauges.quiet.store(true, Ordering::Relaxed);
                            }
                            Command::Stop => cx.stop(),
                        }
                    }
                }
                other => panic!("udp echo: unexpected {other:?}"),
            }
            Action::Continue
        }

        fn timer(&mut self, _: TimerId, cx: &mut Context<'_, Server>) -> Action {
            if let Err(e) = cx.sockets.connect_tcp(self.dead, DeadConnect) {
                cx.state.dead_other.push(format!("connect_tcp: {e}"));
            }
            Action::Continue
        }
    }

    /// A connect to a port nobody listens on: one `Error`, refused.
    struct DeadConnect;

    impl Responder<Server> for DeadConnect {
        fn ready(&mut self, event: Event, cx: &mut Context<'_, Server>) -> Action {
            match event {
                Event::Error(t) => match cx.sockets.take_error(t) {
                    Ok(Some(e)) if e.kind() == ErrorKind::ConnectionRefused => {
                        cx.state.dead_refused += 1;
                    }
                    other => cx.state.dead_other.push(format!("{other:?}")),
                },
                other => cx.state.dead_other.push(format!("{other:?}")),
            }
            Action::Close
        }
    }

    /// The server's addresses and control channel, once it runs.
    struct Started {
        tcp: SocketAddr,
        udp: SocketAddr,
        control: Sender<Command>,
    }

    /// The server thread: serves until told to stop, then hands back its
    /// counters.
    fn serve(gauges: Arc<Gauges>, dead: SocketAddr, started: mpsc::Sender<Started>) -> Server {
        let mut dispatcher = Dispatcher::with_capacity(Server::default(), 4096).unwrap();
        let acceptor = Acceptor::new(|t: Token, cx: &mut Context<'_, Server>| {
            if let Ok(socket) = cx.sockets.socket(t) {
                let _ = socket2::SockRef::from(socket).set_tcp_nodelay(true);
            }
            cx.state.accepted += 1;
            Stream::new(Raw, Echo::default())
        });
        let listener = dispatcher
            .sockets()
            .listen_tcp("127.0.0.1:0", acceptor)
            .unwrap();
        let udp = UdpEcho {
            buf: vec![0; MAX_DATAGRAM + 1],
            control: None,
            timer: None,
            dead,
            gauges: Arc::clone(&gauges),
        };
        let udp = dispatcher.sockets().bind_udp("127.0.0.1:0", udp).unwrap();
        let task = std::fs::read_link("/proc/thread-self").unwrap();
        gauges
            .task
            .set(format!("/proc/{}", task.display()))
            .unwrap();
        // The first turn runs the `registered` hooks: the channel is made.
        dispatcher.turn(Some(Duration::ZERO)).unwrap();
        let sockets = dispatcher.sockets();
        let tcp = sockets.local_addr(listener).unwrap();
        let udp = sockets.local_addr(udp).unwrap();
        gauges.table.store(sockets.len(), Ordering::Relaxed);
        let control = dispatcher.state_mut().control.take().unwrap();
        started.send(Started { tcp, udp, control }).unwrap();
        while !dispatcher.is_stopped() {
            // No timeout: an idle server sleeps until something happens.
            dispatcher.turn(None).unwrap();
            gauges.turns.fetch_add(1, Ordering::Relaxed);
            gauges
                .table
                .store(dispatcher.sockets().len(), Ordering::Relaxed);
        }
        dispatcher.into_state()
    }

    // --- the clients -----------------------------------------------------

    #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
    enum Kind {
        Echo,
        HalfCloser,
        Resetter,
        SlowReader,
        Flooder,
    }

    const KINDS: [Kind; 5] = [
        Kind::Echo,
        Kind::HalfCloser,
        Kind::Resetter,
        Kind::SlowReader,
        Kind::Flooder,
    ];

    impl Kind {
        /// Drawn by weight: echo 50%, half-closer 20%, resetter 20%, slow
        /// reader 5%, flooder 5%.
        fn draw(rng: &mut Rng) -> Kind {
            match rng.size(20) {
                1..=10 => Kind::Echo,
                11..=14 => Kind::HalfCloser,
                15..=18 => Kind::Resetter,
                19 => Kind::SlowReader,
                _ => Kind::Flooder,
            }
        }
    }

    /// What the clients share with the test.
    #[derive(Debug)]
    struct Load {
        tcp: SocketAddr,
        udp: SocketAddr,
        /// When the clients started.
        start: Instant,
        /// When the load ends, in milliseconds from `start` (none until
        /// the ramp is over): no session starts after it, and sessions
        /// under way end early.
        end_ms: AtomicU64,
        /// Connections made.
        opened: AtomicU64,
        /// Bytes whose checksum was checked on their way back.
        checked: AtomicU64,
        /// Sessions of each kind.
        sessions: [AtomicU64; 5],
        udp_sent: AtomicU64,
        /// Echoes of 0 and of 65,507 bytes received (each checked).
        udp_zero: AtomicU64,
        udp_full: AtomicU64,
        udp_lost: AtomicU64,
        /// Full echoes that came after they were counted lost.
        udp_late: AtomicU64,
        /// Client threads that ended.
        done: AtomicUsize,
        failures: Mutex<Vec<String>>,
    }

    impl Load {
        fn end(&self) -> Instant {
            self.start + Duration::from_millis(self.end_ms.load(Ordering::Relaxed))
        }

        fn over(&self) -> bool {
            Instant::now() >= self.end()
        }

        fn fail(&self, what: String) {
            let mut failures = self.failures.lock().unwrap();
            if failures.len() < 50 {
                failures.push(what);
            }
        }
    }

    fn connect(load: &Load) -> io::Result<TcpStream> {
        let conn = TcpStream::connect_timeout(&load.tcp, LIMIT)?;
        conn.set_read_timeout(Some(LIMIT))?;
        conn.set_write_timeout(Some(LIMIT))?;
        load.opened.fetch_add(1, Ordering::Relaxed);
        Ok(conn)
    }

    fn checksum_error(what: &str, sent: (usize, u64), got: (usize, u64)) -> io::Error {
        io::Error::other(format!(
            "{what}: sent {} bytes (checksum {:#x}), got back {} ({:#x})",
            sent.0, sent.1, got.0, got.1
        ))
    }

    /// Round trips of up to 8 KiB, 0.5–1.5 s apart, until `until`: each
    /// echo read whole and compared.
    fn converse(
        conn: &mut TcpStream,
        rng: &mut Rng,
        until: Instant,
        load: &Load,
    ) -> io::Result<()> {
        let mut out = vec![0; 8192];
        let mut back = vec![0; 8192];
        loop {
            let len = rng.size(out.len());
            rng.fill(&mut out[..len]);
            conn.write_all(&out[..len])?;
            conn.read_exact(&mut back[..len])?;
            let sent = fnv1a(FNV_START, &out[..len]);
            let got = fnv1a(FNV_START, &back[..len]);
            if sent != got {
                return Err(checksum_error("round trip", (len, sent), (len, got)));
            }
            load.checked.fetch_add(len as u64, Ordering::Relaxed);
            let pause = Duration::from_millis(500 + rng.size(1000) as u64);
            let left = until
                .min(load.end())
                .saturating_duration_since(Instant::now());
            if left <= pause {
                thread::sleep(left);
                return Ok(());
            }
            thread::sleep(pause);
        }
    }

    /// Sends `len` bytes from `seed` (see [`send_pattern`]), then
    /// `shutdown(Write)`; returns their checksum.
    fn send_all(mut conn: TcpStream, len: usize, seed: u64) -> io::Result<u64> {
        let hash = send_pattern(&mut conn, len, seed, None)?;
        conn.shutdown(Shutdown::Write)?;
        Ok(hash)
    }

    /// `len` bytes sent from a second thread while this one reads the echo
    /// `piece` by `piece` with `pause` between reads; checked.
    fn transfer(
        mut conn: TcpStream,
        len: usize,
        piece: usize,
        pause: Duration,
        rng: &mut Rng,
        load: &Load,
    ) -> io::Result<()> {
        let writer = conn.try_clone()?;
        let seed = rng.next_u64();
        let sender = thread::Builder::new()
            .stack_size(128 * 1024)
            .spawn(move || send_all(writer, len, seed))?;
        let got = read_to_end_slowly(&mut conn, piece, pause);
        let sent = sender.join().expect("the sender thread")?;
        let got = got?;
        if got != (len, sent) {
            return Err(checksum_error("transfer", (len, sent), got));
        }
        load.checked.fetch_add(len as u64, Ordering::Relaxed);
        Ok(())
    }

    fn session(kind: Kind, until: Instant, rng: &mut Rng, load: &Load) -> io::Result<()> {
        let mut conn = connect(load)?;
        match kind {
            Kind::Echo => {
                converse(&mut conn, rng, until, load)?;
                conn.shutdown(Shutdown::Write)?;
                match conn.read(&mut [0; 1])? {
                    0 => Ok(()),
                    _ => Err(io::Error::other("bytes after the last echo")),
                }
            }
            Kind::HalfCloser => {
                converse(&mut conn, rng, until, load)?;
                let seed = rng.next_u64();
                let sent = send_all(conn.try_clone()?, 64 * 1024, seed)?;
                let got = read_to_end(&mut conn)?;
                if got != (64 * 1024, sent) {
                    return Err(checksum_error("half-close", (64 * 1024, sent), got));
                }
                load.checked.fetch_add(64 * 1024, Ordering::Relaxed);
                Ok(())
            }
            Kind::Resetter => {
                converse(&mut conn, rng, until, load)?;
                let mut last = vec![0; 16 * 1024];
                rng.fill(&mut last);
                conn.write_all(&last)?;
                reset(conn);
                Ok(())
            }
            Kind::SlowReader => transfer(conn, 1 << 20, 4096, Duration::from_millis(10), rng, load),
            Kind::Flooder => transfer(conn, 4 << 20, 64 * 1024, Duration::ZERO, rng, load),
        }
    }

    /// One client thread: sessions until the load ends, the first after
    /// `delay` (the clients' first connects are spread over the ramp's
    /// first two seconds: 2,000 threads made runnable at once would keep
    /// the server's thread off the CPU for seconds).
    fn client(seed: u64, delay: Duration, load: &Load) {
        thread::sleep(delay);
        let mut rng = Rng::new(seed);
        // The first sessions end spread over 0–20 s, the next last 10–30 s:
        // about CLIENTS / 20 new connections a second from the start.
        let mut life = Duration::from_millis(rng.size(20_000) as u64);
        while !load.over() {
            let kind = Kind::draw(&mut rng);
            load.sessions[kind as usize].fetch_add(1, Ordering::Relaxed);
            let until = Instant::now() + life;
            if let Err(e) = session(kind, until, &mut rng, load) {
                load.fail(format!("{kind:?} (seed {seed}): {e}"));
            }
            life = Duration::from_millis(10_000 + rng.size(20_000) as u64);
        }
    }

    /// A UDP client: bursts of a 0-byte datagram, a 65,507-byte one and
    /// another 0-byte one. A full datagram carries its sequence number in
    /// its first 8 bytes, the rest made from it, so that its echo is
    /// checked whenever it comes; one that does not come within a second
    /// is counted lost (UDP may drop) and, if it comes later, late.
    fn udp_client(seed: u64, load: &Load) -> io::Result<()> {
        let socket = UdpSocket::bind("127.0.0.1:0")?;
        socket.connect(load.udp)?;
        socket.set_read_timeout(Some(Duration::from_secs(1)))?;
        let mut rng = Rng::new(seed);
        let mut full = vec![0; MAX_DATAGRAM];
        let mut want = vec![0; MAX_DATAGRAM];
        let mut buf = vec![0; MAX_DATAGRAM + 1];
        let fill = |seq: u64, out: &mut [u8]| {
            out[..8].copy_from_slice(&seq.to_le_bytes());
            Rng::new(seed ^ seq).fill(&mut out[8..]);
        };
        let mut seq = 0u64;
        while !load.over() {
            seq += 1;
            fill(seq, &mut full);
            socket.send(&[])?;
            socket.send(&full)?;
            socket.send(&[])?;
            load.udp_sent.fetch_add(3, Ordering::Relaxed);
            let mut left = 3;
            while left > 0 {
                match socket.recv(&mut buf) {
                    Ok(0) => load.udp_zero.fetch_add(1, Ordering::Relaxed),
                    Ok(n) => {
                        let echoed =
                            u64::from_le_bytes(buf[..8.min(n)].try_into().unwrap_or_default());
                        if n != MAX_DATAGRAM || echoed == 0 || echoed > seq {
                            load.fail(format!("udp: {n} bytes back, numbered {echoed}"));
                        } else {
                            fill(echoed, &mut want);
                            if fnv1a(FNV_START, &buf[..n]) != fnv1a(FNV_START, &want) {
                                load.fail(format!("udp: datagram {echoed} came back changed"));
                            }
                            load.checked.fetch_add(n as u64, Ordering::Relaxed);
                        }
                        if echoed != seq {
                            load.udp_late.fetch_add(1, Ordering::Relaxed);
                            continue;
                        }
                        load.udp_full.fetch_add(1, Ordering::Relaxed)
                    }
                    Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                        load.udp_lost.fetch_add(left, Ordering::Relaxed);
                        break;
                    }
                    Err(e) => return Err(e),
                };
                left -= 1;
            }
            thread::sleep(Duration::from_millis(50 + rng.size(100) as u64));
        }
        Ok(())
    }

    // --- the samples -----------------------------------------------------

    /// One sample of the process and the server.
    #[derive(Clone, Copy, Debug)]
    struct Sample {
        /// Seconds since the load began.
        t: f64,
        rss_kib: u64,
        fds: usize,
        table: usize,
        /// The server thread's CPU time so far.
        server_cpu: Duration,
        turns: u64,
        opened: u64,
        checked: u64,
    }

    fn rss_kib() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc/self/status")
    }

    fn descriptors() -> usize {
        std::fs::read_dir("/proc/self/fd").unwrap().count()
    }

    /// A thread's time on CPU: the first field of its `schedstat`, or
    /// `utime + stime` of its `stat` (whole clock ticks) without it.
    fn task_cpu(task: &str) -> Duration {
        if let Ok(schedstat) = std::fs::read_to_string(format!("{task}/schedstat")) {
            if let Some(ns) = schedstat
                .split_whitespace()
                .next()
                .and_then(|v| v.parse().ok())
            {
                return Duration::from_nanos(ns);
            }
        }
        let stat = std::fs::read_to_string(format!("{task}/stat")).unwrap();
        let rest = stat.rsplit_once(')').expect("a stat line").1;
        let fields: Vec<u64> = rest
            .split_whitespace()
            .skip(11)
            .take(2)
            .map(|v| v.parse().unwrap())
            .collect();
        // SAFETY: sysconf reads a constant of the system.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
        Duration::from_nanos((fields[0] + fields[1]) * 1_000_000_000 / hz)
    }

    fn sample(start: Instant, gauges: &Gauges, load: Option<&Load>) -> Sample {
        Sample {
            t: start.elapsed().as_secs_f64(),
            rss_kib: rss_kib(),
            fds: descriptors(),
            table: gauges.table.load(Ordering::Relaxed),
            server_cpu: task_cpu(gauges.task.get().unwrap()),
            turns: gauges.turns.load(Ordering::Relaxed),
            opened: load.map_or(0, |l| l.opened.load(Ordering::Relaxed)),
            checked: load.map_or(0, |l| l.checked.load(Ordering::Relaxed)),
        }
    }

    fn print_header() {
        println!(
            "{:>6} {:>9} {:>6} {:>6} {:>8} {:>7} {:>9} {:>11}",
            "t s", "RSS MiB", "fds", "table", "new/s", "CPU %", "turns/s", "checked MiB"
        );
    }

    fn print_row(s: &Sample, prev: &Sample) {
        let dt = (s.t - prev.t).max(1e-9);
        let cpu = (s.server_cpu - prev.server_cpu).as_secs_f64() / dt * 100.0;
        println!(
            "{:>6.1} {:>9.1} {:>6} {:>6} {:>8.0} {:>7.1} {:>9.0} {:>11.1}",
            s.t,
            s.rss_kib as f64 / 1024.0,
            s.fds,
            s.table,
            (s.opened - prev.opened) as f64 / dt,
            cpu,
            (s.turns - prev.turns) as f64 / dt,
            s.checked as f64 / (1 << 20) as f64,
        );
    }

    /// Waits until `done` holds, sampling every 100 ms; fails after
    /// [`LIMIT`].
    #[track_caller]
    fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + LIMIT;
        while !done() {
            assert!(Instant::now() < deadline, "{what}: not within {LIMIT:?}");
            thread::sleep(Duration::from_millis(100));
        }
    }

    // --- the test ----------------------------------------------------------

    /// Counts (and shows) what the library logs at warning and error level:
    /// a responder's panic is logged as an error.
    struct Alarms {
        errors: AtomicU64,
        warnings: AtomicU64,
    }

    static ALARMS: Alarms = Alarms {
        errors: AtomicU64::new(0),
        warnings: AtomicU64::new(0),
    };

    impl log::Log for Alarms {
        fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
            metadata.level() <= log::Level::Warn
        }

        fn log(&self, record: &log::Record<'_>) {
            if !self.enabled(record.metadata()) {
                return;
            }
            match record.level() {
                log::Level::Error => self.errors.fetch_add(1, Ordering::Relaxed),
                _ => self.warnings.fetch_add(1, Ordering::Relaxed),
            };
            eprintln!(
                "soak: {} {}: {}",
                record.level(),
                record.target(),
                record.args()
            );
        }

        fn flush(&self) {}
    }

    pub(crate) fn soak() {
        log::set_logger(&ALARMS).unwrap();
        log::set_max_level(log::LevelFilter::Warn);
        let secs = env_number("SOCKMUX_SOAK_SECS", SECS);
        let clients = env_number("SOCKMUX_SOAK_CLIENTS", CLIENTS as u64) as usize;
        let seed = env_number(
            "SOCKMUX_SOAK_SEED",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64,
        );
        println!(
            "soak: seed {seed} (SOCKMUX_SOAK_SEED={seed} replays it), {secs} s, {clients} clients"
        );

        // Both ends of every connection are in this process, and the
        // flooders and slow readers hold a second handle each.
        let need = 3 * clients as u64 + 256;
        let limit = rlimit::raise_nofile().unwrap();
        assert!(
            limit >= need,
            "RLIMIT_NOFILE hard limit {limit} is below {need}"
        );

        let dead = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let gauges = Arc::new(Gauges::default());
        let (tx, rx) = mpsc::channel();
        let server = {
            let gauges = Arc::clone(&gauges);
            thread::Builder::new()
                .name("soak-server".into())
                .spawn(move || serve(gauges, dead, tx))
                .unwrap()
        };
        let started = rx.recv_timeout(LIMIT).expect("the server started");
        let baseline = sample(Instant::now(), &gauges, None);
        println!(
            "soak: baseline: RSS {:.1} MiB, {} descriptors, {} sockets in the table",
            baseline.rss_kib as f64 / 1024.0,
            baseline.fds,
            baseline.table
        );

        // The client threads are made first, and wait: making 2,000
        // threads takes seconds on a busy machine, and is not the load.
        let spawning = Instant::now();
        let go = Arc::new(Barrier::new(clients + 3));
        let load: Arc<OnceLock<Load>> = Arc::new(OnceLock::new());
        let mut threads = Vec::new();
        for i in 0..clients + 2 {
            let (go, load) = (Arc::clone(&go), Arc::clone(&load));
            let seed = seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            let udp = i >= clients;
            let delay = Duration::from_secs(2) * i as u32 / clients as u32;
            let thread = thread::Builder::new()
                .stack_size(128 * 1024)
                .spawn(move || {
                    go.wait();
                    let load = load.get().expect("set before the start");
                    if udp {
                        if let Err(e) = udp_client(seed, load) {
                            load.fail(format!("udp client: {e}"));
                        }
                    } else {
                        client(seed, delay, load);
                    }
                    load.done.fetch_add(1, Ordering::Relaxed);
                })
                .unwrap();
            threads.push(thread);
        }
        println!(
            "soak: {} client threads made in {:.1} s",
            threads.len(),
            spawning.elapsed().as_secs_f64()
        );

        // The load.
        let start = Instant::now();
        let load = {
            let set = load.set(Load {
                tcp: started.tcp,
                udp: started.udp,
                start,
                // Far off, until the ramp is over.
                end_ms: AtomicU64::new(u64::MAX / 4),
                opened: AtomicU64::new(0),
                checked: AtomicU64::new(0),
                sessions: Default::default(),
                udp_sent: AtomicU64::new(0),
                udp_zero: AtomicU64::new(0),
                udp_full: AtomicU64::new(0),
                udp_lost: AtomicU64::new(0),
                udp_late: AtomicU64::new(0),
                done: AtomicUsize::new(0),
                failures: Mutex::new(Vec::new()),
            });
            assert!(set.is_ok());
            load.get().unwrap()
        };
        started.control.send(Command::Load).unwrap();
        go.wait();
        let baseline = Sample { t: 0.0, ..baseline };

        // The ramp: every client connects at once; the load is measured
        // from when the table holds nine tenths of them.
        print_header();
        let mut samples = vec![baseline];
        let mut next = start + Duration::from_secs(1);
        let ramp_deadline = start + LIMIT;
        while gauges.table.load(Ordering::Relaxed) < clients * 9 / 10 {
            assert!(
                Instant::now() < ramp_deadline,
                "the ramp: not over within {LIMIT:?}"
            );
            thread::sleep(
                next.saturating_duration_since(Instant::now())
                    .min(Duration::from_millis(100)),
            );
            if Instant::now() >= next {
                let s = sample(start, &gauges, Some(load));
                print_row(&s, samples.last().unwrap());
                samples.push(s);
                next += Duration::from_secs(1);
            }
        }
        let ramp = start.elapsed();
        let ramp_samples = samples.len();
        load.end_ms.store(
            (ramp + Duration::from_secs(secs)).as_millis() as u64,
            Ordering::Relaxed,
        );
        println!(
            "soak: ramp over after {:.1} s; the load runs {secs} s from here",
            ramp.as_secs_f64()
        );
        let mut next = Instant::now() + Duration::from_secs(1);
        while next <= load.end() {
            thread::sleep(next.saturating_duration_since(Instant::now()));
            let s = sample(start, &gauges, Some(load));
            print_row(&s, samples.last().unwrap());
            samples.push(s);
            next += Duration::from_secs(1);
        }
        let load_samples = samples.len();

        // The clients finish the sessions under way, then end.
        wait_for("the clients' end", || {
            load.done.load(Ordering::Relaxed) == threads.len()
        });
        for thread in threads {
            thread.join().expect("a client thread panicked");
        }
        started.control.send(Command::Quiet).unwrap();
        wait_for("the table and the descriptors back at baseline", || {
            gauges.quiet.load(Ordering::Relaxed)
                && gauges.table.load(Ordering::Relaxed) == baseline.table
                && descriptors() == baseline.fds
        });
        let drained = sample(start, &gauges, Some(load));
        print_row(&drained, samples.last().unwrap());
        samples.push(drained);

        // The idle tail.
        thread::sleep(TAIL);
        let tail = sample(start, &gauges, Some(load));
        print_row(&tail, &drained);
        samples.push(tail);
        let tail_turns = tail.turns - drained.turns;
        let tail_cpu = (tail.server_cpu - drained.server_cpu).as_secs_f64() / (tail.t - drained.t);

        started.control.send(Command::Stop).unwrap();
        let server = server.join().expect("the server thread panicked");

        // The figures.
        let during = &samples[ramp_samples..load_samples];
        let peak_rss = samples.iter().map(|s| s.rss_kib).max().unwrap();
        let peak_fds = samples.iter().map(|s| s.fds).max().unwrap();
        let peak_table = samples.iter().map(|s| s.table).max().unwrap();
        let checked = load.checked.load(Ordering::Relaxed);
        let sessions: Vec<String> = KINDS
            .iter()
            .map(|&k| {
                format!(
                    "{k:?} {}",
                    load.sessions[k as usize].load(Ordering::Relaxed)
                )
            })
            .collect();
        println!("soak: seed {seed}, {secs} s, {clients} clients");
        println!("soak: sessions: {}", sessions.join(", "));
        let measured = &samples[ramp_samples - 1..load_samples];
        let (first_s, last_s) = (measured[0], measured[measured.len() - 1]);
        println!(
            "soak: {} connections made, {:.0}/s after the ramp; {} accepted, closed {:?}",
            load.opened.load(Ordering::Relaxed),
            (last_s.opened - first_s.opened) as f64 / (last_s.t - first_s.t).max(1e-9),
            server.accepted,
            server.closed
        );
        println!(
            "soak: {:.1} MiB checked by the clients, {:.1} MiB echoed by the server",
            checked as f64 / (1 << 20) as f64,
            server.echoed as f64 / (1 << 20) as f64
        );
        println!(
            "soak: udp: {} sent, {} empty and {} of {MAX_DATAGRAM} bytes back, {} lost \
             ({} of them came late); the server echoed {} and dropped {}",
            load.udp_sent.load(Ordering::Relaxed),
            load.udp_zero.load(Ordering::Relaxed),
            load.udp_full.load(Ordering::Relaxed),
            load.udp_lost.load(Ordering::Relaxed),
            load.udp_late.load(Ordering::Relaxed),
            server.datagrams,
            server.datagrams_dropped
        );
        println!(
            "soak: dead-port connects refused: {}, otherwise: {}",
            server.dead_refused,
            server.dead_other.len()
        );
        println!(
            "soak: RSS peak {:.1} MiB, final {:.1} MiB; descriptors peak {peak_fds}, final {} \
             (baseline {}); table peak {peak_table}, final {}",
            peak_rss as f64 / 1024.0,
            tail.rss_kib as f64 / 1024.0,
            tail.fds,
            baseline.fds,
            tail.table
        );
        println!(
            "soak: idle tail ({:.1} s): {tail_turns} turns of the server's loop, its CPU {:.2}%",
            tail.t - drained.t,
            tail_cpu * 100.0
        );
        println!(
            "soak: logged {} errors, {} warnings",
            ALARMS.errors.load(Ordering::Relaxed),
            ALARMS.warnings.load(Ordering::Relaxed)
        );
        if let Ok(path) = std::env::var("SOCKMUX_SOAK_SVG") {
            let title = format!("soak: {clients} clients, {secs} s, then a 2 s idle tail");
            std::fs::write(&path, chart(&title, &samples, [ramp_samples, load_samples])).unwrap();
            println!("soak: chart written to {path}");
        }

        // The checks.
        let failures = load.failures.lock().unwrap();
        assert!(failures.is_empty(), "client failures: {failures:#?}");
        assert_eq!(
            ALARMS.errors.load(Ordering::Relaxed),
            0,
            "errors logged (a panic?)"
        );
        assert!(
            server.dead_other.is_empty(),
            "dead-port connects: {:?}",
            server.dead_other
        );
        assert!(server.dead_refused > 0, "no dead-port connect was made");
        assert!(
            load.udp_zero.load(Ordering::Relaxed) > 0 && load.udp_full.load(Ordering::Relaxed) > 0,
            "echoes of both datagram sizes"
        );
        assert!(checked > 0);
        let (first, second) = during.split_at(during.len() / 2);
        let peak = |s: &[Sample], f: fn(&Sample) -> u64| s.iter().map(f).max().unwrap_or(0);
        let (rss1, rss2) = (peak(first, |s| s.rss_kib), peak(second, |s| s.rss_kib));
        assert!(
            rss2 <= rss1 + rss1 / 4 + 16 * 1024,
            "RSS grows: peak {rss1} KiB in the first half of the load, {rss2} KiB in the second"
        );
        let (fds1, fds2) = (
            peak(first, |s| s.fds as u64),
            peak(second, |s| s.fds as u64),
        );
        assert!(
            fds2 <= fds1 + fds1 / 4 + 64,
            "descriptors grow: peak {fds1} in the first half of the load, {fds2} in the second"
        );
        assert_eq!(tail.table, baseline.table, "the table after the idle tail");
        assert_eq!(tail.fds, baseline.fds, "descriptors after the idle tail");
        assert!(
            tail_turns <= TAIL_TURNS,
            "the server's loop turned {tail_turns} times in the idle tail"
        );
    }

    // --- the chart ---------------------------------------------------------

    /// An SVG of the samples: RSS, descriptors, the table's size and new
    /// connections against time, one panel each, the end of the ramp and
    /// of the load marked.
    fn chart(title: &str, samples: &[Sample], marks: [usize; 2]) -> String {
        type Series = (&'static str, &'static str, fn(&Sample) -> f64);
        let series: [Series; 4] = [
            ("RSS, MiB", "#1f77b4", |s| s.rss_kib as f64 / 1024.0),
            ("descriptors", "#ff7f0e", |s| s.fds as f64),
            ("sockets in the table", "#2ca02c", |s| s.table as f64),
            ("new connections / s", "#d62728", |s| s.opened as f64),
        ];
        let (width, panel, left, top) = (720.0, 120.0, 60.0, 40.0);
        let plot_w = width - left - 20.0;
        let t_max = samples.last().map_or(1.0, |s| s.t).max(1.0);
        let marks = marks.map(|i| samples[i - 1].t);
        let mut svg = String::new();
        let height = top + panel * series.len() as f64 + 30.0;
        svg.push_str(&format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
             font-family=\"sans-serif\" font-size=\"11\">\n\
             <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
             <text x=\"{}\" y=\"22\" font-size=\"15\" text-anchor=\"middle\">{title}</text>\n",
            width / 2.0
        ));
        for (i, (name, color, value)) in series.iter().enumerate() {
            let y0 = top + panel * i as f64;
            let h = panel - 28.0;
            // The new-connection rate comes from the cumulative count.
            let points: Vec<(f64, f64)> = if i == 3 {
                samples
                    .windows(2)
                    .map(|w| {
                        (
                            w[1].t,
                            (value(&w[1]) - value(&w[0])) / (w[1].t - w[0].t).max(1e-9),
                        )
                    })
                    .collect()
            } else {
                samples.iter().map(|s| (s.t, value(s))).collect()
            };
            let max = points.iter().map(|p| p.1).fold(0.0, f64::max).max(1.0);
            // Coordinates to a tenth of a pixel.
            let x = |t: f64| ((left + t / t_max * plot_w) * 10.0).round() / 10.0;
            let y = |v: f64| ((y0 + 14.0 + h - v / max * h) * 10.0).round() / 10.0;
            svg.push_str(&format!(
                "<text x=\"{left}\" y=\"{}\">{name} (peak {max:.0})</text>\n\
                 <line x1=\"{left}\" y1=\"{}\" x2=\"{left}\" y2=\"{}\" stroke=\"#999\"/>\n\
                 <line x1=\"{left}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#999\"/>\n\
                 <text x=\"{}\" y=\"{}\" text-anchor=\"end\">{max:.0}</text>\n\
                 <text x=\"{}\" y=\"{}\" text-anchor=\"end\">0</text>\n",
                y0 + 10.0,
                y(max),
                y(0.0),
                y(0.0),
                left + plot_w,
                y(0.0),
                left - 4.0,
                y(max) + 4.0,
                left - 4.0,
                y(0.0),
            ));
            for t in marks {
                svg.push_str(&format!(
                    "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#bbb\" stroke-dasharray=\"4 3\"/>\n",
                    x(t),
                    y(max),
                    x(t),
                    y(0.0)
                ));
            }
            let line: Vec<String> = points
                .iter()
                .map(|&(t, v)| format!("{:.1},{:.1}", x(t), y(v)))
                .collect();
            svg.push_str(&format!(
                "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"1.5\" points=\"{}\"/>\n",
                line.join(" ")
            ));
        }
        let bottom = top + panel * series.len() as f64 + 6.0;
        svg.push_str(&format!(
            "<text x=\"{left}\" y=\"{bottom}\">0 s</text>\n\
             <text x=\"{}\" y=\"{bottom}\" text-anchor=\"middle\">ramp over</text>\n\
             <text x=\"{}\" y=\"{bottom}\" text-anchor=\"middle\">load over</text>\n\
             <text x=\"{}\" y=\"{bottom}\" text-anchor=\"end\">{t_max:.0} s</text>\n</svg>\n",
            (left + marks[0] / t_max * plot_w).round(),
            (left + marks[1] / t_max * plot_w).round(),
            left + plot_w
        ));
        svg
    }
}
