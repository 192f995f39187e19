//! Helpers shared by the `responder_*` tests: turning a dispatcher with a
//! deadline, and a small deterministic random generator.
#![allow(dead_code)] // each test binary uses a different part of this module

use std::time::{Duration, Instant};

use sockmux::Dispatcher;

/// How long any single wait in a test may take before it fails. Longer on
/// Windows: under wine (ci/windows.sh) the 200 × 1 MiB echo alone takes
/// about 45 s, and past 60 s on a busy machine. A bound, not a wait.
pub(crate) const LIMIT: Duration = Duration::from_secs(if cfg!(windows) { 180 } else { 60 });

/// Turns the dispatcher until `done` holds, or panics after `limit`. Each
/// turn waits at most 20 ms, so a condition that changes on another thread
/// (a client finishing) is seen promptly; that wait is a poll timeout, never
/// a sleep.
#[track_caller]
pub(crate) fn turn_until<S>(
    dispatcher: &mut Dispatcher<S>,
    limit: Duration,
    mut done: impl FnMut(&mut Dispatcher<S>) -> bool,
) {
    let deadline = Instant::now() + limit;
    while !done(dispatcher) {
        assert!(Instant::now() < deadline, "timed out after {limit:?}");
        dispatcher
            .turn(Some(Duration::from_millis(20)))
            .expect("turn");
    }
}

/// xorshift64*: deterministic, seedable, good enough to pick chunk sizes.
#[derive(Clone, Debug, Default)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `1..=max`.
    pub(crate) fn size(&mut self, max: usize) -> usize {
        (self.next_u64() % max as u64) as usize + 1
    }

    pub(crate) fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let word = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
    }
}

/// FNV-1a, 64 bits, continued from `hash`.
pub(crate) fn fnv1a(mut hash: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// FNV-1a's starting value.
pub(crate) const FNV_START: u64 = 0xcbf2_9ce4_8422_2325;

/// Sends `message` from a non-blocking `client` and turns `dispatcher` on
/// this thread until all of it came back (checked byte for byte into
/// `back`, which allocates nothing); panics after `LIMIT`.
#[track_caller]
pub(crate) fn round_trip<S>(
    dispatcher: &mut Dispatcher<S>,
    client: &mut std::net::TcpStream,
    message: &[u8],
    back: &mut [u8],
) {
    use std::io::{ErrorKind, Read, Write};
    let deadline = Instant::now() + LIMIT;
    let (mut sent, mut got) = (0, 0);
    while got < message.len() {
        assert!(Instant::now() < deadline, "no echo within {LIMIT:?}");
        if sent < message.len() {
            match client.write(&message[sent..]) {
                Ok(n) => sent += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => panic!("client write: {e}"),
            }
        }
        dispatcher.turn(Some(Duration::from_millis(10))).unwrap();
        loop {
            match client.read(back) {
                Ok(0) => panic!("the server closed the connection"),
                Ok(n) => {
                    assert_eq!(back[..n], message[got..got + n]);
                    got += n;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => panic!("client read: {e}"),
            }
        }
    }
}
