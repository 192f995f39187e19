//! Row 10 of docs/reliability.md, out of descriptors on accept (EMFILE),
//! against the `tcp_echo` example's responders: with the process out of
//! descriptors and connections waiting in the backlog, the loop neither spins
//! nor stalls (the listener pauses and retries on a timer), connections
//! already open keep echoing, and once descriptors free up the waiting
//! connections are accepted and served.
//!
//! Its own test binary with its own `main`: the descriptor limit is
//! process-wide.

mod util;

#[cfg(unix)]
#[path = "../examples/tcp_echo.rs"]
#[allow(dead_code)] // the example's `main` and argument parsing
mod tcp_echo;

fn main() {
    // RUST_LOG=debug shows the listener pausing and resuming.
    env_logger::init();
    #[cfg(unix)]
    util::harness::run_tests(util::harness::tests![unix:
        waiting_connections_are_accepted_once_descriptors_free_up,
    ]);
    // Windows has no per-process descriptor limit to run out of.
    #[cfg(not(unix))]
    util::harness::skip("no RLIMIT_NOFILE on this platform");
}

#[cfg(unix)]
mod unix {
    use std::fs::File;
    use std::net::{SocketAddr, TcpStream};
    use std::time::{Duration, Instant};

    use socket2::{Domain, Socket, Type};
    use sockmux::Dispatcher;

    use crate::tcp_echo::{self, ACCEPT_PAUSE};
    use crate::util::rlimit::{nofile, set_nofile};
    use crate::util::{round_trip, turn_until, LIMIT};

    const OPEN: usize = 3;
    const WAITING: usize = 4;
    /// How long the loop runs out of descriptors while its events are
    /// counted.
    const STARVED: Duration = Duration::from_secs(1);

    /// User + system CPU time of this process: printed, not asserted.
    fn cpu_time() -> Duration {
        // SAFETY: getrusage fills the zeroed struct it is given.
        let usage = unsafe {
            let mut usage: libc::rusage = std::mem::zeroed();
            assert_eq!(libc::getrusage(libc::RUSAGE_SELF, &mut usage), 0);
            usage
        };
        let tv = |t: libc::timeval| {
            Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
        };
        tv(usage.ru_utime) + tv(usage.ru_stime)
    }

    fn client(addr: SocketAddr) -> TcpStream {
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_nodelay(true).unwrap();
        stream.set_nonblocking(true).unwrap();
        stream
    }

    pub(crate) fn waiting_connections_are_accepted_once_descriptors_free_up() {
        let mut dispatcher = Dispatcher::new(tcp_echo::Stats::default()).unwrap();
        let listener = tcp_echo::listen(&mut dispatcher, "127.0.0.1:0").unwrap();
        let addr = dispatcher.sockets().local_addr(listener).unwrap();
        let mut back = vec![0; 4096];

        let mut open: Vec<TcpStream> = (0..OPEN).map(|_| client(addr)).collect();
        for c in &mut open {
            round_trip(&mut dispatcher, c, b"before", &mut back);
        }
        assert_eq!(dispatcher.sockets().len(), 1 + OPEN);
        // The waiting clients' sockets are made now: there will be no
        // descriptor for them later.
        let waiting: Vec<Socket> = (0..WAITING)
            .map(|_| Socket::new(Domain::IPV4, Type::STREAM, None).unwrap())
            .collect();

        // Out of descriptors: a low soft limit, filled up.
        let (saved, hard) = nofile().unwrap();
        set_nofile(256.min(hard)).unwrap();
        let mut filler = Vec::new();
        loop {
            match File::open("/dev/null") {
                Ok(f) => filler.push(f),
                Err(e) if e.raw_os_error() == Some(libc::EMFILE) => break,
                Err(e) => panic!("open /dev/null: {e}"),
            }
        }
        // connect needs no new descriptor; the kernel completes the
        // handshakes and the connections wait in the listener's backlog.
        for s in &waiting {
            s.connect(&addr.into()).unwrap();
        }

        // No spin: accept fails, the listener pauses and retries on a timer.
        // Counted in events, not in CPU time, so that a loaded machine
        // cannot fail it: a loop that spins has the listener's Read at
        // every turn (thousands of them in STARVED, however slow the
        // machine), while a paused listener has at most a timer and one
        // more failed Read per ACCEPT_PAUSE.
        let (cpu0, start) = (cpu_time(), Instant::now());
        let (mut turns, mut dispatched) = (0, 0);
        while start.elapsed() < STARVED {
            dispatched += dispatcher.turn(Some(Duration::from_millis(50))).unwrap();
            turns += 1;
        }
        let (cpu, starved) = (cpu_time() - cpu0, start.elapsed());
        println!(
            "emfile: {} descriptors filled; {dispatched} events in {turns} turns and {cpu:?} \
             of CPU over {starved:?} out of descriptors",
            filler.len(),
        );
        let pauses = (starved.as_nanos() / ACCEPT_PAUSE.as_nanos()) as usize + 1;
        assert!(
            dispatched <= 2 * pauses,
            "the loop spins out of descriptors: {dispatched} events in {turns} turns \
             over {starved:?}, where pauses of {ACCEPT_PAUSE:?} allow {}",
            2 * pauses
        );
        assert_eq!(
            dispatcher.sockets().len(),
            1 + OPEN,
            "nothing accepted without descriptors"
        );
        // No stall: the open connections keep echoing.
        for c in &mut open {
            round_trip(&mut dispatcher, c, b"while out of descriptors", &mut back);
        }

        // A connection closes and gives its descriptor back: the listener
        // resumes at once, not at the end of its pause, and one waiting
        // connection takes that descriptor. The server's side of the
        // connection sees the end and closes, and its close resumes the
        // listener in that same turn: checked then, not timed.
        drop(open.pop());
        let closed = Instant::now();
        turn_until(&mut dispatcher, LIMIT, |d| {
            d.sockets().len() == OPEN || d.state().accepted > OPEN as u64
        });
        assert!(
            dispatcher.state().accepted > OPEN as u64
                || dispatcher
                    .sockets()
                    .interest(listener)
                    .unwrap()
                    .is_readable(),
            "a descriptor came back, but the listener still waits for its timer"
        );
        turn_until(&mut dispatcher, LIMIT, |d| {
            // The client's descriptor came back too: one or two accepted.
            d.state().accepted > OPEN as u64
        });
        println!(
            "emfile: a connection closed; a waiting one accepted {:?} later",
            closed.elapsed()
        );

        // Descriptors free up: the other waiting connections are accepted.
        drop(filler);
        let freed = Instant::now();
        turn_until(&mut dispatcher, LIMIT, |d| {
            d.sockets().len() == OPEN + WAITING
        });
        println!(
            "emfile: the {WAITING} waiting connections accepted {:?} after descriptors freed up",
            freed.elapsed()
        );
        set_nofile(saved).unwrap();
        for s in waiting {
            let mut c: TcpStream = s.into();
            c.set_nonblocking(true).unwrap();
            round_trip(&mut dispatcher, &mut c, b"after", &mut back);
        }
        for c in &mut open {
            round_trip(&mut dispatcher, c, b"after", &mut back);
        }
    }
}
