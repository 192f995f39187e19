//! Zero heap allocations per event in steady state: TCP ping-pong on
//! loopback through one `Sockets` table (`poll`, `read`, `write`), counted
//! by a global allocator. After a warm-up, any allocation fails the test.
//!
//! Unix only: the bar is measured where the benchmarks run (epoll).
#![cfg(unix)]

use std::io::ErrorKind;
use std::time::{Duration, Instant};

use sockmux_core::{Event, Events, Interest, Sockets, Token};

// The counting allocator of the root package's tests, one file for both:
// a test of this crate cannot use the root's `tests/util` as a module.
#[path = "../../../tests/util/alloc.rs"]
mod alloc;
use alloc::{allocations_in, assert_the_counter_counts, Counting};

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn the_counter_sees_an_allocation() {
    assert_the_counter_counts();
}

/// A client and the server's end of one connection, both in `sockets`.
struct Pair {
    sockets: Sockets,
    client: Token,
    server: Token,
    events: Events,
}

/// A bound for a hang, never a measure of speed (as `LIMIT` of the root
/// package's `tests/util`).
const LIMIT: Duration = Duration::from_secs(60);

fn connect() -> Pair {
    let mut sockets = Sockets::new().unwrap();
    let listener = sockets.listen_tcp("127.0.0.1:0").unwrap();
    let client = sockets
        .connect_tcp(sockets.local_addr(listener).unwrap())
        .unwrap();
    let mut events = Events::with_capacity(64);
    let (mut server, mut connected) = (None, false);
    let start = Instant::now();
    while server.is_none() || !connected {
        assert!(start.elapsed() < LIMIT, "no connection within {LIMIT:?}");
        sockets.poll(&mut events, Some(LIMIT)).unwrap();
        for event in &events {
            match event {
                Event::Read(t) if t == listener => match sockets.accept(t) {
                    Ok(conn) => server = Some(conn),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    Err(e) => panic!("accept: {e}"),
                },
                Event::Write(t) if t == client => connected = true,
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    // Small echoes must not wait for delayed acknowledgements (Nagle).
    for t in [client, server.unwrap()] {
        let socket = sockets.socket(t).unwrap();
        socket2::SockRef::from(socket)
            .set_tcp_nodelay(true)
            .unwrap();
    }
    sockets.set_interest(client, Interest::READABLE).unwrap();
    sockets.set_interest(listener, Interest::NONE).unwrap();
    Pair {
        sockets,
        client,
        server: server.unwrap(),
        events,
    }
}

impl Pair {
    /// One request of `message.len()` bytes from the client, echoed by the
    /// server; the server reads in `chunk`-byte reads, so a chunk smaller
    /// than the message leaves `Read` raised (level mode) for the next poll.
    fn round_trip(&mut self, message: &[u8], chunk: usize, buf: &mut [u8]) {
        assert_eq!(
            self.sockets.write(self.client, message).unwrap(),
            message.len()
        );
        let (mut echoed, mut back) = (0, 0);
        let start = Instant::now();
        while back < message.len() {
            assert!(start.elapsed() < LIMIT, "no echo within {LIMIT:?}");
            self.sockets.poll(&mut self.events, Some(LIMIT)).unwrap();
            for event in &self.events {
                match event {
                    Event::Read(t) if t == self.server => {
                        match self.sockets.read(t, &mut buf[..chunk]) {
                            Ok(n) => {
                                assert!(n > 0, "the client closed");
                                let sent = self.sockets.write(t, &buf[..n]).unwrap();
                                assert_eq!(sent, n, "a short write on loopback");
                                echoed += n;
                            }
                            // The level event found nothing left: re-armed.
                            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                            Err(e) => panic!("server read: {e}"),
                        }
                    }
                    Event::Read(t) if t == self.client => {
                        match self.sockets.read(t, &mut buf[..]) {
                            Ok(n) => {
                                assert!(n > 0, "the server closed");
                                assert_eq!(&buf[..n], &message[back..back + n]);
                                back += n;
                            }
                            // Nothing there after all: re-armed.
                            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                            Err(e) => panic!("client read: {e}"),
                        }
                    }
                    other => panic!("unexpected {other:?}"),
                }
            }
        }
        assert_eq!(echoed, message.len());
    }
}

fn steady_state_allocations(size: usize, chunk: usize, rounds: usize) -> u64 {
    let mut pair = connect();
    let message: Vec<u8> = (0..size).map(|i| (i * 7) as u8).collect();
    let mut buf = vec![0u8; 64 * 1024];
    for _ in 0..100 {
        pair.round_trip(&message, chunk, &mut buf);
    }
    allocations_in(|| {
        for _ in 0..rounds {
            pair.round_trip(&message, chunk, &mut buf);
        }
    })
}

#[test]
fn echo_through_the_table_allocates_nothing_per_event() {
    let n = steady_state_allocations(64, 64 * 1024, 2_000);
    assert_eq!(n, 0, "{n} heap allocations in 2,000 64-byte round trips");
}

#[test]
fn level_reraised_reads_allocate_nothing() {
    // 4 KiB read 1 KiB at a time: three full reads keep Read raised.
    let n = steady_state_allocations(4096, 1024, 500);
    assert_eq!(n, 0, "{n} heap allocations in 500 4 KiB round trips");
}
