//! Helpers shared by the integration tests: polling with a deadline.
#![allow(dead_code, unreachable_pub)]

use std::time::{Duration, Instant};

use sockmux::{Event, Events, Sockets};

/// How long any single test may wait for something that should happen.
pub const LIMIT: Duration = Duration::from_secs(20);

/// Polls and hands every event to `f` until `f` returns `true`; panics if
/// that takes longer than `limit`. Returns the number of polls made.
#[track_caller]
pub fn poll_until<D>(
    sockets: &mut Sockets<D>,
    events: &mut Events,
    limit: Duration,
    mut f: impl FnMut(&mut Sockets<D>, Event) -> bool,
) -> usize {
    let deadline = Instant::now() + limit;
    let mut polls = 0;
    loop {
        let now = Instant::now();
        assert!(
            now < deadline,
            "timed out after {limit:?} and {polls} polls"
        );
        sockets.poll(events, Some(deadline - now)).expect("poll");
        polls += 1;
        for event in events.iter() {
            if f(sockets, event) {
                return polls;
            }
        }
    }
}

/// Every event of the next polls for `quiet`: used to assert that nothing
/// more happens (the wait is the assertion's window, not a synchronisation).
pub fn events_during<D>(
    sockets: &mut Sockets<D>,
    events: &mut Events,
    quiet: Duration,
) -> Vec<Event> {
    let deadline = Instant::now() + quiet;
    let mut seen = Vec::new();
    loop {
        let now = Instant::now();
        if now >= deadline {
            return seen;
        }
        sockets.poll(events, Some(deadline - now)).expect("poll");
        seen.extend(events.iter());
    }
}

/// A deterministic pseudo-random byte stream (xorshift), for checksummed
/// transfers.
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// An example's binary: `target/<profile>/examples/NAME`, beside the
/// `deps` folder that holds the running test (cargo builds examples before
/// it runs integration tests).
pub fn example_binary(name: &str) -> std::path::PathBuf {
    let test_binary = std::env::current_exe().unwrap();
    let deps = test_binary.parent().unwrap();
    let path = deps
        .parent()
        .unwrap()
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(path.is_file(), "no {}", path.display());
    path
}
