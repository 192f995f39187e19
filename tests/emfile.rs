//! Row 10 of docs/reliability.md, out of descriptors on accept (EMFILE),
//! against the `tcp_echo` binary: run with a low descriptor limit (set in
//! the child before it runs the example) and filled up with connections,
//! with more connections waiting in the backlog, the server neither spins
//! nor stalls (the listener pauses, and retries after its pause or as soon as
//! a connection closes), connections already open keep echoing, and once
//! descriptors free up the waiting connections are accepted and served.
//!
//! Checked from outside, through the example's log (`RUST_LOG=debug`): one
//! `accept failed` warning per attempt, `pause over` and `a descriptor came
//! back` when the listener resumes, `connected` and `closed` per connection;
//! and through the bytes the clients get back and the count the server
//! prints when it stops. The other examples with a listener (`chat`, `kv`,
//! `http`) are run the same way: served until an accept fails, no more
//! than a failure per pause while out of descriptors, and the client
//! waiting in the backlog served once another leaves.
//!
//! Its own test binary with its own `main`: it counts the server's log lines
//! over a window of time, which is best done with no other test running.

mod util;

fn main() {
    #[cfg(unix)]
    util::harness::run_tests(util::harness::tests![unix:
        waiting_connections_are_accepted_once_descriptors_free_up,
        chat_pauses_out_of_descriptors_and_lets_a_waiting_member_in,
        kv_pauses_out_of_descriptors_and_serves_a_waiting_client,
        http_pauses_out_of_descriptors_and_serves_a_waiting_client,
    ]);
    // Windows has no per-process descriptor limit to run out of.
    #[cfg(not(unix))]
    util::harness::skip("no RLIMIT_NOFILE on this platform");
}

#[cfg(unix)]
mod unix {
    use std::io::{self, Read, Write};
    use std::net::{SocketAddr, TcpStream};
    use std::os::unix::process::CommandExt;
    use std::time::{Duration, Instant};

    use crate::util::example::{is, Server};
    use crate::util::rlimit::nofile;
    use crate::util::LIMIT;

    /// The server's soft descriptor limit: what it needs to start (about 7)
    /// and room for a few dozen connections.
    const DESCRIPTORS: u64 = 32;
    /// Connections left waiting in the backlog once the server is out of
    /// descriptors.
    const WAITING: usize = 4;
    /// How long the server's log is watched while it is out of descriptors.
    const STARVED: Duration = Duration::from_secs(2);

    /// `#N.G: connected`: a connection accepted.
    fn is_connected(line: &str) -> bool {
        is(line, "DEBUG", ": connected")
    }

    /// `accept failed: ...; pausing for 500ms`: out of descriptors. The
    /// acceptor logs every failure at debug level (and a warning at most
    /// every 10 s), so a spin would show here.
    fn is_failure(line: &str) -> bool {
        line.contains(" DEBUG ") && line.contains(": accept failed: ")
    }

    /// `pause over: accepting again`: the listener's timer ran out.
    fn is_pause_over(line: &str) -> bool {
        is(line, "DEBUG", "pause over: accepting again")
    }

    /// `a descriptor came back: accepting again`: a connection's close
    /// resumed the listener.
    fn is_descriptor_back(line: &str) -> bool {
        is(line, "DEBUG", "a descriptor came back: accepting again")
    }

    /// The pause a failure line announces (`...; pausing for 500ms`).
    #[track_caller]
    fn pause_of(failure: &str) -> Duration {
        let ms = failure
            .rsplit_once("pausing for ")
            .and_then(|(_, pause)| pause.strip_suffix("ms"))
            .and_then(|ms| ms.parse().ok())
            .unwrap_or_else(|| panic!("no pause in milliseconds in {failure:?}"));
        Duration::from_millis(ms)
    }

    /// User + system CPU time of process `pid`, from /proc (Linux): printed,
    /// not asserted.
    fn cpu_time(pid: u32) -> Option<Duration> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // After the command name, in parentheses: fields 3 on; utime and
        // stime are fields 14 and 15, in clock ticks.
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        let ticks: u64 =
            fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
        // SAFETY: sysconf only reads a configuration value.
        let per_second = u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).ok()?;
        Some(Duration::from_millis(ticks * 1000 / per_second.max(1)))
    }

    fn client(addr: SocketAddr) -> TcpStream {
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_nodelay(true).unwrap();
        stream.set_read_timeout(Some(LIMIT)).unwrap();
        stream
    }

    /// Sends `message` and reads it back; returns its length.
    #[track_caller]
    fn round_trip(stream: &mut TcpStream, message: &[u8]) -> usize {
        stream.write_all(message).unwrap();
        let mut back = vec![0; message.len()];
        stream.read_exact(&mut back).expect("the echo");
        assert_eq!(back, message);
        message.len()
    }

    /// Example `name` with its log at `rust_log`, under a soft limit of
    /// [`DESCRIPTORS`] set in the child.
    fn spawn_limited(name: &str, rust_log: &str) -> Server {
        let (_, hard) = nofile().unwrap();
        let limit = libc::rlimit {
            rlim_cur: DESCRIPTORS.min(hard) as libc::rlim_t,
            rlim_max: hard as libc::rlim_t,
        };
        let mut cmd = Server::command(name, rust_log);
        // SAFETY: the closure runs in the child between fork and exec, where
        // only async-signal-safe functions may be called. It calls
        // setrlimit(2), a plain system call, on a struct built before the
        // fork, and on failure reads errno (`last_os_error` allocates
        // nothing); it takes no lock and allocates nothing.
        unsafe {
            cmd.pre_exec(move || {
                if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
                    Ok(())
                } else {
                    Err(io::Error::last_os_error())
                }
            });
        }
        Server::spawn(name, &mut cmd)
    }

    pub(crate) fn waiting_connections_are_accepted_once_descriptors_free_up() {
        // The example's log and the library's acceptor's.
        let mut server = spawn_limited("tcp_echo", "tcp_echo=debug,sockmux_responder=debug");
        let addr = server.addr();
        let mut echoed = 0;

        // Connections one at a time, each accepted and echoed, until the
        // server has no descriptor for the next one: that one waits in the
        // backlog, and the server says why.
        let mut open = Vec::new();
        let (first_waiting, failure) = loop {
            assert!(
                open.len() < DESCRIPTORS as usize,
                "{} connections accepted under a limit of {DESCRIPTORS} descriptors",
                open.len()
            );
            let mut c = client(addr);
            let line = server.log().next_matching("an accept or its failure", |l| {
                is_connected(l) || is_failure(l)
            });
            if is_failure(&line) {
                break (c, line);
            }
            echoed += round_trip(&mut c, b"before");
            open.push(c);
        };
        let starved_since = Instant::now();
        assert!(
            failure.contains(&format!("(os error {})", libc::EMFILE)),
            "not out of descriptors: {failure}"
        );
        let pause = pause_of(&failure);
        assert!(open.len() > WAITING, "only {} connections fit", open.len());
        // connect needs no descriptor of the server's: the kernel completes
        // the handshakes and the connections wait in the backlog.
        let mut waiting = vec![first_waiting];
        waiting.extend((1..WAITING).map(|_| client(addr)));

        // No spin: accept fails, the listener pauses and retries after its
        // pause. Counted in log lines, not in CPU time, so that a loaded
        // machine cannot fail it: a server that spins logs a failure at
        // every turn (thousands in STARVED, however slow the machine), a
        // paused one a failure per pause.
        let cpu0 = cpu_time(server.pid());
        let lines = server
            .log()
            .during(STARVED.saturating_sub(starved_since.elapsed()));
        let starved = starved_since.elapsed();
        let cpu = cpu_time(server.pid())
            .zip(cpu0)
            .map(|(now, then)| format!("{:?}", now.saturating_sub(then)));
        let failures = 1 + lines.iter().filter(|l| is_failure(l)).count();
        println!(
            "emfile: {} connections filled {DESCRIPTORS} descriptors; {failures} accept failures \
             in {starved:?} (pauses of {pause:?}); server CPU {}",
            open.len(),
            cpu.as_deref().unwrap_or("unknown"),
        );
        // A failure starts each pause, and a pause ends no sooner than
        // `pause` later: (window / pause) + 1 at most; twice that allows for
        // lines that the pipe delivered late.
        let allowed = 2 * (starved.as_nanos() / pause.as_nanos() + 1) as usize;
        assert!(
            failures <= allowed,
            "the server spins out of descriptors: {failures} accept failures in {starved:?}, \
             where pauses of {pause:?} allow {allowed}"
        );
        assert!(
            !lines.iter().any(|l| is_connected(l)),
            "accepted without descriptors: {lines:?}"
        );
        // No stall: the pause ends and the listener tries again.
        if !lines.iter().any(|l| is_pause_over(l)) {
            server
                .log()
                .next_matching("the end of a pause", is_pause_over);
        }
        // The open connections keep echoing.
        for c in &mut open {
            echoed += round_trip(c, b"while out of descriptors");
        }

        // A connection closes and gives its descriptor back: the listener
        // resumes at once, not at the end of its pause, and one waiting
        // connection takes that descriptor. Read in the log's order, not
        // timed: after the close, the server accepts before any pause ends
        // (if its timer had already resumed the listener, the accept comes
        // next all the same).
        drop(open.pop());
        server
            .log()
            .next_matching("the server's close", |l| is(l, "DEBUG", ": closed"));
        let next = server
            .log()
            .next_matching("the listener resuming or accepting", |l| {
                is_connected(l) || is_pause_over(l) || is_descriptor_back(l)
            });
        assert!(
            !is_pause_over(&next),
            "a descriptor came back, but the listener waited for its pause to end; log:\n{}",
            server.log().tail()
        );
        if is_descriptor_back(&next) {
            server
                .log()
                .next_matching("a waiting connection accepted", is_connected);
        }
        // Only one: the server is out of descriptors again.
        let next = server.log().next_matching("an accept or its failure", |l| {
            is_connected(l) || is_failure(l)
        });
        assert!(is_failure(&next), "accepted without a descriptor: {next}");

        // Descriptors free up: the other waiting connections are accepted.
        let freed = Instant::now();
        open.truncate(open.len() - (WAITING - 1));
        server
            .log()
            .count(WAITING - 1, "waiting connections accepted", is_connected);
        println!(
            "emfile: the other {} waiting connections accepted {:?} after descriptors freed up",
            WAITING - 1,
            freed.elapsed()
        );
        for c in waiting.iter_mut().chain(&mut open) {
            echoed += round_trip(c, b"after");
        }
        let accepted = open.len() + WAITING + WAITING;
        server.stop_saying(&format!(
            "tcp_echo: stopped after {accepted} connections, {echoed} bytes echoed"
        ));
    }

    /// After `failure`, the first failed accept: checks it is `EMFILE`,
    /// watches the log for [`STARVED`], and fails if the acceptor tried
    /// more than about once per pause (a spin); returns the lines seen.
    #[track_caller]
    fn starves_without_spinning(server: &mut Server, failure: &str, what: &str) -> Vec<String> {
        let starved_since = Instant::now();
        assert!(
            failure.contains(&format!("(os error {})", libc::EMFILE)),
            "not out of descriptors: {failure}"
        );
        let pause = pause_of(failure);
        let lines = server
            .log()
            .during(STARVED.saturating_sub(starved_since.elapsed()));
        let starved = starved_since.elapsed();
        let failures = 1 + lines.iter().filter(|l| is_failure(l)).count();
        println!(
            "emfile: {what} out of descriptors: {failures} accept failures in {starved:?} \
             (pauses of {pause:?})"
        );
        let allowed = 2 * (starved.as_nanos() / pause.as_nanos() + 1) as usize;
        assert!(
            failures <= allowed,
            "{what}: spins out of descriptors: {failures} accept failures in {starved:?}, \
             where pauses of {pause:?} allow {allowed}"
        );
        lines
    }

    /// `chat` out of descriptors. It used to log the failed accept and
    /// return, and level semantics raised the listener's `Read` again at
    /// once: a spin at 78% CPU. Through the library's acceptor it pauses:
    /// at most a failure per pause in the window, and when a member leaves,
    /// a waiting one gets its descriptor and is greeted.
    pub(crate) fn chat_pauses_out_of_descriptors_and_lets_a_waiting_member_in() {
        let mut server = spawn_limited("chat", "chat=debug,sockmux_responder=debug");
        let addr = server.addr();
        let joined = |l: &str| is(l, "DEBUG", ": a member joined");
        let mut members = Vec::new();
        let (mut waiting, failure) = loop {
            assert!(
                members.len() < DESCRIPTORS as usize,
                "{} members accepted under a limit of {DESCRIPTORS} descriptors",
                members.len()
            );
            let c = client(addr);
            let line = server
                .log()
                .next_matching("a join or an accept failure", |l| {
                    joined(l) || is_failure(l)
                });
            if is_failure(&line) {
                break (c, line);
            }
            members.push(c);
        };
        let lines = starves_without_spinning(
            &mut server,
            &failure,
            &format!("chat with {} members", members.len()),
        );
        assert!(
            !lines.iter().any(|l| joined(l)),
            "joined without a descriptor: {lines:?}"
        );

        // A member leaves: the one waiting in the backlog is let in.
        drop(members.pop());
        server
            .log()
            .next_matching("the waiting member joining", joined);
        let mut greeting = [0; 64];
        let n = waiting.read(&mut greeting).expect("a greeting");
        let greeting = String::from_utf8_lossy(&greeting[..n]);
        assert!(greeting.contains("others here"), "{greeting:?}");
        drop(members);
        server.stop();
    }

    /// Sends one request and reads the whole reply the protocol promises;
    /// fails on a short or different reply.
    type Probe = fn(&mut TcpStream) -> io::Result<()>;

    /// A RESP `PING`, answered `+PONG`.
    fn ping(stream: &mut TcpStream) -> io::Result<()> {
        stream.write_all(b"*1\r\n$4\r\nPING\r\n")?;
        let mut back = [0; 7];
        stream.read_exact(&mut back)?;
        if &back != b"+PONG\r\n" {
            return Err(io::Error::other(format!("{back:?}")));
        }
        Ok(())
    }

    /// An HTTP `GET /`, answered `Hello, World!` (read up to its end).
    fn get(stream: &mut TcpStream) -> io::Result<()> {
        stream.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")?;
        let mut got = Vec::new();
        let mut buf = [0; 1024];
        while !got.ends_with(b"Hello, World!") {
            let n = stream.read(&mut buf)?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            got.extend_from_slice(&buf[..n]);
        }
        if !got.starts_with(b"HTTP/1.1 200 ") {
            return Err(io::Error::other(String::from_utf8_lossy(&got).into_owned()));
        }
        Ok(())
    }

    /// A protocol example out of descriptors: clients are served until an
    /// accept fails with `EMFILE`; then the acceptor pauses (at most a
    /// failure per pause in the window, no spin), and when a client leaves,
    /// the one waiting in the backlog is served.
    fn pauses_out_of_descriptors(name: &str, probe: Probe) {
        let mut server = spawn_limited(name, &format!("{name}=info,sockmux_responder=debug"));
        let addr = server.addr();
        let mut served = Vec::new();
        // Each new client's request runs on a thread of its own: it is
        // answered if the client was accepted, and waits in the backlog
        // otherwise, while the log says why.
        let (waiting, failure) = 'clients: loop {
            assert!(
                served.len() < DESCRIPTORS as usize,
                "{} clients served under a limit of {DESCRIPTORS} descriptors",
                served.len()
            );
            let (tx, rx) = std::sync::mpsc::channel();
            let mut c = client(addr);
            std::thread::spawn(move || {
                let result = probe(&mut c).map(|()| c);
                let _ = tx.send(result);
            });
            let deadline = Instant::now() + LIMIT;
            loop {
                match rx.try_recv() {
                    Ok(result) => {
                        served.push(result.expect("a served client's reply"));
                        continue 'clients;
                    }
                    Err(std::sync::mpsc::TryRecvError::Disconnected) => panic!("the probe died"),
                    Err(std::sync::mpsc::TryRecvError::Empty) => {}
                }
                let lines = server.log().during(Duration::from_millis(20));
                if let Some(line) = lines.into_iter().find(|l| is_failure(l)) {
                    break 'clients (rx, line);
                }
                assert!(
                    Instant::now() < deadline,
                    "client {} neither served nor refused: {}",
                    served.len() + 1,
                    server.log().tail()
                );
            }
        };
        starves_without_spinning(
            &mut server,
            &failure,
            &format!("{name} with {} clients", served.len()),
        );
        // A client leaves: the waiting one is accepted and answered.
        drop(served.pop());
        waiting
            .recv_timeout(LIMIT)
            .expect("the waiting client answered")
            .expect("a reply");
        drop(served);
        server.stop();
    }

    /// `kv` out of descriptors: see [`pauses_out_of_descriptors`].
    pub(crate) fn kv_pauses_out_of_descriptors_and_serves_a_waiting_client() {
        pauses_out_of_descriptors("kv", ping);
    }

    /// `http` out of descriptors: see [`pauses_out_of_descriptors`].
    pub(crate) fn http_pauses_out_of_descriptors_and_serves_a_waiting_client() {
        pauses_out_of_descriptors("http", get);
    }
}
