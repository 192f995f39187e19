//! Fault plans and record/replay on whole programs (the `faults` feature;
//! docs/testing.md): a line-answering responder program recorded under a
//! seeded plan and replayed from its record with the same handler calls
//! and output; the bug a plan finds in a handler that takes one read for a
//! whole line, and its replay; and the `tcp_echo` example under the plan
//! in `SOCKMUX_FAULTS` (or one of its own), with the count of each fault
//! it injected.

mod util;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use sockmux::{
    Acceptor, Action, Context, Dispatcher, Event, FaultPlan, Interest, Responder, Token,
};
use util::example::Server;
use util::{fnv1a, Rng, FNV_START, LIMIT};

/// What the program's handlers did, in order, and what they wrote.
#[derive(Debug, Default, PartialEq)]
struct Trace {
    calls: Vec<String>,
    output: Vec<u8>,
}

/// A connection that answers each line with the line in capitals.
/// `whole_lines`: it keeps a partial line until its end comes; without,
/// it takes whatever one read returns for a whole line (the bug).
struct Lines {
    whole_lines: bool,
    input: Vec<u8>,
    output: Vec<u8>,
    ended: bool,
}

impl Lines {
    fn answer(&mut self, line: &[u8]) {
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        self.output.extend(line.to_ascii_uppercase());
        self.output.push(b'\n');
    }

    fn take(&mut self, bytes: &[u8]) {
        if !self.whole_lines {
            self.answer(bytes);
            return;
        }
        self.input.extend_from_slice(bytes);
        while let Some(end) = self.input.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.input.drain(..=end).collect();
            self.answer(&line);
        }
    }
}

impl Responder<Trace> for Lines {
    fn ready(&mut self, event: Event, cx: &mut Context<'_, Trace>) -> Action {
        let t = cx.token;
        cx.state.calls.push(format!("{event:?}"));
        if let Event::Read(_) = event {
            let mut buf = [0; 4096];
            loop {
                match cx.sockets.read(t, &mut buf) {
                    Ok(0) => {
                        cx.state.calls.push(format!("{t}: end"));
                        self.ended = true;
                        break;
                    }
                    Ok(n) => {
                        cx.state.calls.push(format!("{t}: read {n}"));
                        self.take(&buf[..n]);
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) => {
                        cx.state.calls.push(format!("{t}: read error {e}"));
                        return Action::Close;
                    }
                }
            }
        }
        while !self.output.is_empty() {
            match cx.sockets.write(t, &self.output) {
                Ok(n) => {
                    cx.state.calls.push(format!("{t}: wrote {n}"));
                    cx.state.output.extend(self.output.drain(..n));
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => {
                    cx.state.calls.push(format!("{t}: write error {e}"));
                    return Action::Close;
                }
            }
        }
        if self.ended && self.output.is_empty() {
            return Action::Close;
        }
        let interest = if self.output.is_empty() {
            Interest::READABLE
        } else {
            Interest::BOTH
        };
        match cx.sockets.set_interest(t, interest) {
            Ok(()) => Action::Continue,
            Err(_) => Action::Close,
        }
    }

    fn closed(&mut self, cx: &mut Context<'_, Trace>) {
        cx.state.calls.push(format!("{}: closed", cx.token));
    }
}

/// The program: a dispatcher with a listener whose connections are
/// [`Lines`]; its address.
fn program(
    whole_lines: bool,
    prepare: impl FnOnce(&mut Dispatcher<Trace>),
) -> (Dispatcher<Trace>, SocketAddr) {
    let mut dispatcher = Dispatcher::new(Trace::default()).unwrap();
    prepare(&mut dispatcher);
    let acceptor = Acceptor::new(move |_: Token, _: &mut Context<'_, Trace>| Lines {
        whole_lines,
        input: Vec::new(),
        output: Vec::new(),
        ended: false,
    });
    let listener = dispatcher
        .sockets()
        .listen_tcp("127.0.0.1:0", acceptor)
        .unwrap();
    let addr = dispatcher.sockets().local_addr(listener).unwrap();
    (dispatcher, addr)
}

const CLIENTS: u64 = 4;
const LINES: usize = 30;

/// The lines client `seed` sends.
fn lines_of(seed: u64) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    let mut text = Vec::new();
    for i in 0..LINES {
        let words = rng.size(6);
        for w in 0..words {
            if w > 0 {
                text.push(b' ');
            }
            text.extend(format!("line{i}word{w}").bytes());
        }
        text.push(b'\n');
    }
    text
}

/// How a client sends its lines.
#[derive(Clone, Copy)]
enum Sending {
    /// Each line with one write, then wait for its answer (a dialogue):
    /// on loopback, each arrives whole.
    Lines,
    /// In random pieces of 1 to 40 bytes.
    Pieces,
}

/// A client: sends its lines, half-closes, and reads the answers to the
/// end.
fn client(addr: SocketAddr, seed: u64, sending: Sending) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut conn = TcpStream::connect(addr).unwrap();
        conn.set_read_timeout(Some(LIMIT)).unwrap();
        conn.set_nodelay(true).unwrap();
        let text = lines_of(seed);
        let mut rng = Rng::new(seed + 100);
        let mut answers = Vec::new();
        let mut at = 0;
        while at < text.len() {
            let n = match sending {
                Sending::Lines => text[at..].iter().position(|&b| b == b'\n').unwrap() + 1,
                Sending::Pieces => rng.size(40).min(text.len() - at),
            };
            conn.write_all(&text[at..at + n]).unwrap();
            at += n;
            if let Sending::Lines = sending {
                // Its answer (or what the server says for it).
                let lines = text[..at].iter().filter(|&&b| b == b'\n').count();
                let mut buf = [0; 256];
                while answers.iter().filter(|&&b| b == b'\n').count() < lines {
                    match conn.read(&mut buf).unwrap() {
                        0 => break,
                        n => answers.extend_from_slice(&buf[..n]),
                    }
                }
            }
        }
        conn.shutdown(Shutdown::Write).unwrap();
        conn.read_to_end(&mut answers).unwrap();
        answers
    })
}

/// Runs the program under `plan` with its clients, recording to `record`;
/// the trace and what each client got.
fn serve_lines(
    whole_lines: bool,
    plan: &FaultPlan,
    record: &Path,
    sending: Sending,
) -> (Trace, Vec<Vec<u8>>) {
    let (mut dispatcher, addr) = program(whole_lines, |d| {
        d.sockets().record(record).unwrap();
        d.sockets().set_fault_plan(plan.clone()).unwrap();
    });
    let clients: Vec<_> = (0..CLIENTS)
        .map(|seed| client(addr, seed, sending))
        .collect();
    let deadline = Instant::now() + LIMIT;
    // Until every connection is closed and every client is done.
    while !(dispatcher.sockets().len() == 1 && clients.iter().all(|c| c.is_finished())) {
        assert!(
            Instant::now() < deadline,
            "{:?}",
            dispatcher.state().calls.last()
        );
        dispatcher.turn(Some(Duration::from_millis(10))).unwrap();
    }
    let got = clients.into_iter().map(|c| c.join().unwrap()).collect();
    let counts = dispatcher.sockets().fault_counts().unwrap();
    eprintln!("{plan}: injected {counts}");
    (dispatcher.into_state(), got)
}

/// Replays the program from `record` to its end; the trace.
fn replay_lines(whole_lines: bool, record: &Path) -> Trace {
    let (mut dispatcher, _) = program(whole_lines, |d| d.sockets().replay(record).unwrap());
    let deadline = Instant::now() + LIMIT;
    loop {
        assert!(Instant::now() < deadline, "the replay did not end");
        match dispatcher.turn(Some(Duration::from_millis(10))) {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => break,
            Err(e) => panic!("{e}"),
        }
    }
    dispatcher.into_state()
}

/// The answers a correct program gives client `seed`.
fn answers_of(seed: u64) -> Vec<u8> {
    lines_of(seed).to_ascii_uppercase()
}

/// A file of the test's own in the temporary directory, removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str) -> TempFile {
        TempFile(std::env::temp_dir().join(format!("sockmux-{name}-{}", std::process::id())))
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The plan in `SOCKMUX_FAULTS` (ci/faults.sh), or else `default`.
fn plan_or(default: &str) -> FaultPlan {
    FaultPlan::from_env()
        .unwrap()
        .unwrap_or_else(|| default.parse().unwrap())
}

#[test]
fn a_recorded_run_replays_with_the_same_handler_calls_and_output() {
    // No `emfile`: the acceptor's pause after it is a timer, and timers
    // fire by the clock in a replay.
    let mut plan =
        plan_or("seed=11,short=0.5,delay=0.3,split=0.5,spurious=0.2,wouldblock=0.1,interrupt=0.1");
    if plan.to_string().contains("emfile") {
        plan = "seed=11,short=0.5,delay=0.3,split=0.5,spurious=0.2,wouldblock=0.1"
            .parse()
            .unwrap();
    }
    let record = TempFile::new("replay-test");
    let (recorded, got) = serve_lines(true, &plan, &record.0, Sending::Lines);
    for (seed, answers) in got.iter().enumerate() {
        assert!(
            *answers == answers_of(seed as u64),
            "{plan}: client {seed} got {:?}",
            String::from_utf8_lossy(answers)
        );
    }
    let replayed = replay_lines(true, &record.0);
    assert!(
        recorded.calls.len() > 4 * CLIENTS as usize,
        "{:?}",
        recorded.calls
    );
    assert_eq!(replayed.calls, recorded.calls);
    assert!(replayed.output == recorded.output);
    // And again: a replay is the same every time.
    assert_eq!(replay_lines(true, &record.0), recorded);
}

#[test]
fn a_plan_finds_the_handler_that_takes_a_read_for_a_line_and_the_replay_shows_it_again() {
    // Without faults, lines sent whole arrive whole: the handler passes.
    let record = TempFile::new("whole-lines-bug");
    let (_, got) = serve_lines(false, &FaultPlan::new(42), &record.0, Sending::Lines);
    for seed in 0..CLIENTS {
        assert!(got[seed as usize] == answers_of(seed));
    }
    let plan = FaultPlan::new(42).short(0.3);
    let (recorded, got) = serve_lines(false, &plan, &record.0, Sending::Lines);
    // Reads cut short: some answers are made of broken lines.
    let wrong: Vec<_> = (0..CLIENTS)
        .filter(|&seed| got[seed as usize] != answers_of(seed))
        .collect();
    assert!(
        !wrong.is_empty(),
        "{plan} found no bug: {:?}",
        recorded.calls
    );
    // The replay hands the handler the very same reads.
    let replayed = replay_lines(false, &record.0);
    assert_eq!(replayed, recorded);
    // The handler that keeps partial lines is right under the same plan.
    let fixed = TempFile::new("whole-lines-fixed");
    let (_, got) = serve_lines(true, &plan, &fixed.0, Sending::Lines);
    for seed in 0..CLIENTS {
        assert!(got[seed as usize] == answers_of(seed));
    }
}

#[test]
fn a_replay_that_diverges_says_where() {
    let plan = FaultPlan::new(5).short(0.5);
    let record = TempFile::new("diverges");
    serve_lines(true, &plan, &record.0, Sending::Pieces);
    // Another program from the same record: no listener first.
    let mut dispatcher = Dispatcher::new(Trace::default()).unwrap();
    dispatcher.sockets().replay(&record.0).unwrap();
    let e = dispatcher
        .sockets()
        .bind_udp("127.0.0.1:0", |_: Event, _: &mut Context<'_, Trace>| {
            Action::Continue
        })
        .and_then(|t| dispatcher.sockets().recv(t, &mut [0; 8]))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidData, "{e}");
    assert!(e.to_string().contains("the replay diverged"), "{e}");
    // Not a record at all.
    let junk = TempFile::new("junk");
    std::fs::write(&junk.0, b"junk").unwrap();
    let mut dispatcher = Dispatcher::new(()).unwrap();
    let e = dispatcher.sockets().replay(&junk.0).unwrap_err();
    assert!(e.to_string().contains("not a sockmux record"), "{e}");
}

/// `tcp_echo` under a plan: 16 clients of 256 KiB each, checksummed, get
/// every byte back in order; the server's log at its stop gives the count
/// of each fault it injected (printed: ci/faults.sh shows it).
#[test]
fn tcp_echo_under_the_plan_echoes_every_byte_and_counts_its_faults() {
    let plan = plan_or("seed=21,short=0.3,delay=0.2,split=0.3,spurious=0.1,wouldblock=0.1,interrupt=0.1,emfile=0.02");
    let server = tcp_echo_under(&plan);
    let addr = server.addr();
    let clients: Vec<_> = (0..16u64)
        .map(|seed| {
            std::thread::spawn(move || {
                let mut conn = TcpStream::connect(addr).unwrap();
                conn.set_read_timeout(Some(LIMIT)).unwrap();
                let reader = conn.try_clone().unwrap();
                let len = 256 << 10;
                let echo = std::thread::spawn(move || {
                    let mut reader = reader;
                    let (mut got, mut sum) = (0, FNV_START);
                    let mut buf = [0; 8192];
                    loop {
                        match reader.read(&mut buf).unwrap() {
                            0 => return (got, sum),
                            n => {
                                got += n;
                                sum = fnv1a(sum, &buf[..n]);
                            }
                        }
                    }
                });
                let mut rng = Rng::new(seed);
                let mut buf = vec![0; len];
                rng.fill(&mut buf);
                conn.write_all(&buf).unwrap();
                conn.shutdown(Shutdown::Write).unwrap();
                let (got, sum) = echo.join().unwrap();
                assert_eq!((got, sum), (len, fnv1a(FNV_START, &buf)), "client {seed}");
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    if let Some(counts) = stop_with_counts(server) {
        assert!(!counts.contains("(0 in all)"), "{counts}");
    }
}

/// The `tcp_echo` example under `plan`, logging its faults.
fn tcp_echo_under(plan: &FaultPlan) -> Server {
    let mut cmd = Server::command("tcp_echo", "warn");
    cmd.env("SOCKMUX_FAULTS", plan.to_string());
    Server::spawn("tcp_echo", &mut cmd)
}

/// Stops `server` (Unix: gracefully) and prints its line of fault counts;
/// the line, where there is a graceful stop.
fn stop_with_counts(server: Server) -> Option<String> {
    let lines = server.stop()?;
    let counts = lines
        .iter()
        .find(|l| l.contains("injected"))
        .unwrap_or_else(|| panic!("no counts in {lines:?}"));
    let counts = &counts[counts.find("SOCKMUX_FAULTS").unwrap_or(0)..];
    eprintln!("tcp_echo: {counts}");
    Some(counts.to_string())
}

/// `tcp_echo` under resets, ends and failing accepts (faults that lose
/// bytes on purpose): clients see their connections cut, the server does
/// not panic or spin, still echoes on a connection the plan spares, and
/// exits cleanly with its counts.
#[test]
fn tcp_echo_survives_resets_ends_and_failing_accepts() {
    let plan: FaultPlan = "seed=31,short=0.3,reset=0.05,end=0.05,emfile=0.1"
        .parse()
        .unwrap();
    let server = tcp_echo_under(&plan);
    let addr = server.addr();
    let clients: Vec<_> = (0..20u64)
        .map(|seed| {
            std::thread::spawn(move || {
                let mut conn = TcpStream::connect(addr).unwrap();
                conn.set_read_timeout(Some(LIMIT)).unwrap();
                conn.set_write_timeout(Some(LIMIT)).unwrap();
                let mut buf = vec![0; 64 << 10];
                Rng::new(seed).fill(&mut buf);
                // Cut off or not, the server answers within the limit.
                if conn.write_all(&buf).is_ok() {
                    let _ = conn.shutdown(Shutdown::Write);
                }
                let mut sink = Vec::new();
                let _ = conn.read_to_end(&mut sink);
                assert!(sink.len() <= buf.len() && sink[..] == buf[..sink.len()]);
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    // Still serving: some connection gets its echo whole.
    let deadline = Instant::now() + LIMIT;
    loop {
        assert!(Instant::now() < deadline, "no echo came back whole");
        let Ok(mut conn) = TcpStream::connect(addr) else {
            continue;
        };
        conn.set_read_timeout(Some(LIMIT)).unwrap();
        let mut echo = Vec::new();
        if conn.write_all(b"ping\n").is_ok()
            && conn.shutdown(Shutdown::Write).is_ok()
            && conn.read_to_end(&mut echo).is_ok()
            && echo == b"ping\n"
        {
            break;
        }
    }
    if let Some(counts) = stop_with_counts(server) {
        assert!(!counts.contains(" reset=0 end=0"), "{counts}");
    }
}
