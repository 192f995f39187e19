//! Row 11 of docs/reliability.md, 10,000 connections, against the `tcp_echo`
//! example's responders: a client process opens 10,000 connections, sends a
//! message on each and reads every echo back, while the server's event buffer
//! holds only 256 events; every connection is accepted, echoed and, once the
//! client is gone, closed.
//!
//! Its own test binary with its own `main`: it raises the process's
//! descriptor limit, and it runs itself again as the client process (20,000
//! descriptors in one process would meet the usual hard limit).

mod util;

#[cfg(unix)]
#[path = "../examples/tcp_echo.rs"]
#[allow(dead_code)] // the example's `main` and argument parsing
mod tcp_echo;

fn main() {
    #[cfg(unix)]
    match std::env::var("SOCKMUX_MANY_CLIENT_OF") {
        Ok(addr) => unix::client(&addr),
        Err(_) => util::harness::run_tests(util::harness::tests![unix:
            ten_thousand_connections_are_accepted_and_echoed,
        ]),
    }
    #[cfg(not(unix))]
    util::harness::skip("it raises RLIMIT_NOFILE, which this platform lacks");
}

#[cfg(unix)]
mod unix {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    use sockmux::Dispatcher;

    use crate::tcp_echo;
    use crate::util::{rlimit, turn_until, LIMIT};

    const CONNECTIONS: usize = 10_000;
    /// Smaller than the number of sockets ready at once.
    const EVENT_CAPACITY: usize = 256;

    fn message(i: usize) -> String {
        format!("connection {i:05}\n")
    }

    /// Raises the soft descriptor limit to the hard one; fails if that
    /// cannot hold `need` descriptors.
    fn raise_nofile(need: u64) {
        let limit = rlimit::raise_nofile().unwrap();
        assert!(
            limit >= need,
            "RLIMIT_NOFILE hard limit {limit} is below {need}"
        );
    }

    /// The client process: connects everything, then sends on every
    /// connection, then reads every echo back.
    pub(crate) fn client(addr: &str) {
        raise_nofile(CONNECTIONS as u64 + 64);
        let mut streams: Vec<TcpStream> = (0..CONNECTIONS)
            .map(|i| {
                let s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {i}: {e}"));
                s.set_read_timeout(Some(LIMIT)).unwrap();
                s
            })
            .collect();
        for (i, s) in streams.iter_mut().enumerate() {
            s.write_all(message(i).as_bytes()).unwrap();
        }
        let mut back = [0u8; 64];
        for (i, s) in streams.iter_mut().enumerate() {
            let want = message(i);
            s.read_exact(&mut back[..want.len()])
                .unwrap_or_else(|e| panic!("echo {i}: {e}"));
            assert_eq!(&back[..want.len()], want.as_bytes(), "echo {i}");
        }
    }

    pub(crate) fn ten_thousand_connections_are_accepted_and_echoed() {
        raise_nofile(CONNECTIONS as u64 + 64);
        let mut dispatcher =
            Dispatcher::with_event_capacity(tcp_echo::Stats::default(), EVENT_CAPACITY).unwrap();
        let listener = tcp_echo::listen(&mut dispatcher, "127.0.0.1:0").unwrap();
        let addr = dispatcher.sockets().local_addr(listener).unwrap();

        let start = Instant::now();
        let mut child = Command::new(std::env::current_exe().unwrap())
            .env("SOCKMUX_MANY_CLIENT_OF", addr.to_string())
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let mut most = 0;
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if start.elapsed() > LIMIT {
                let _ = child.kill();
                panic!("the client did not finish within {LIMIT:?}");
            }
            dispatcher.turn(Some(Duration::from_millis(20))).unwrap();
            most = most.max(dispatcher.sockets().len() - 1);
        };
        assert!(status.success(), "the client failed: {status:?}");
        let echoed_in = start.elapsed();
        // The client is gone: every connection ends and is closed.
        turn_until(&mut dispatcher, LIMIT, |d| d.sockets().len() == 1);
        let stats = dispatcher.state();
        println!(
            "many_connections: {CONNECTIONS} connections accepted and echoed in {echoed_in:?} \
             (at most {most} open at once, event buffer {EVENT_CAPACITY}); all closed after {:?}",
            start.elapsed()
        );
        assert_eq!(stats.accepted, CONNECTIONS as u64);
        let bytes: usize = (0..CONNECTIONS).map(|i| message(i).len()).sum();
        assert_eq!(stats.echoed, bytes as u64);
    }
}
