//! Row 11 of docs/reliability.md, 10,000 connections, against the `tcp_echo`
//! binary: the test opens 10,000 connections, sends a message on each and
//! reads every echo back; every connection is accepted, echoed and, once the
//! client hangs up, closed. The server's event buffer (the dispatcher's
//! default, 1,024 events) is far smaller than the number of sockets ready at
//! once: the server is stopped (SIGSTOP) while all 10,000 messages are sent,
//! so that its first poll after SIGCONT finds them all ready.
//!
//! Checked from outside: every echo byte for byte, the server's log
//! (`RUST_LOG=debug`: 10,000 `connected` lines, then 10,000 `closed`), and
//! the count it prints when it stops.
//!
//! Its own test binary with its own `main`: it raises the process's
//! descriptor limit (10,000 client sockets here, and as many in the server,
//! which inherits the limit).

mod util;

fn main() {
    #[cfg(unix)]
    util::harness::run_tests(util::harness::tests![unix:
        ten_thousand_connections_are_accepted_and_echoed,
    ]);
    #[cfg(not(unix))]
    util::harness::skip("it raises RLIMIT_NOFILE, which this platform lacks");
}

#[cfg(unix)]
mod unix {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::time::Instant;

    use crate::util::example::{is, Server};
    use crate::util::{rlimit, LIMIT};

    const CONNECTIONS: usize = 10_000;

    fn message(i: usize) -> String {
        format!("connection {i:05}\n")
    }

    pub(crate) fn ten_thousand_connections_are_accepted_and_echoed() {
        // Raised before the server starts: it inherits the limit.
        let need = CONNECTIONS as u64 + 64;
        let limit = rlimit::raise_nofile().unwrap();
        assert!(
            limit >= need,
            "RLIMIT_NOFILE hard limit {limit} is below {need}"
        );
        let mut server = Server::start("tcp_echo", "tcp_echo=debug");
        let start = Instant::now();
        let mut streams: Vec<TcpStream> = (0..CONNECTIONS)
            .map(|i| {
                let s = TcpStream::connect(server.addr())
                    .unwrap_or_else(|e| panic!("connect {i}: {e}"));
                s.set_read_timeout(Some(LIMIT)).unwrap();
                s
            })
            .collect();
        server
            .log()
            .count(CONNECTIONS, "connections accepted", |l| {
                is(l, "DEBUG", ": connected")
            });
        let accepted_in = start.elapsed();

        // Every message sent while the server cannot run: at SIGCONT all
        // 10,000 connections are readable at once.
        server.signal(libc::SIGSTOP);
        let sent = (|| {
            for (i, s) in streams.iter_mut().enumerate() {
                s.write_all(message(i).as_bytes())?;
            }
            std::io::Result::Ok(())
        })();
        server.signal(libc::SIGCONT);
        sent.unwrap();
        let mut back = [0u8; 64];
        for (i, s) in streams.iter_mut().enumerate() {
            let want = message(i);
            s.read_exact(&mut back[..want.len()])
                .unwrap_or_else(|e| panic!("echo {i}: {e}"));
            assert_eq!(&back[..want.len()], want.as_bytes(), "echo {i}");
        }
        let echoed_in = start.elapsed();

        // The client hangs up: every connection ends and is closed.
        drop(streams);
        server.log().count(CONNECTIONS, "connections closed", |l| {
            is(l, "DEBUG", ": closed")
        });
        println!(
            "many_connections: {CONNECTIONS} connections accepted in {accepted_in:?}, \
             echoed by {echoed_in:?}, all closed by {:?}",
            start.elapsed()
        );
        let bytes: usize = (0..CONNECTIONS).map(|i| message(i).len()).sum();
        server.stop_saying(&format!(
            "tcp_echo: stopped after {CONNECTIONS} connections, {bytes} bytes echoed"
        ));
    }
}
