//! Timers in the event stream: never early, periodic without drift, cancel,
//! and 100,000 timers firing in deadline order.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use sockmux::{Event, Events, Sockets, TimerId};

mod util;
use util::{Rng, LIMIT};

/// Polls until `until` is true of the timer events seen, or panics after
/// `LIMIT`. Returns each timer event with the instant it was seen.
#[track_caller]
fn collect_timers(
    sockets: &mut Sockets,
    mut until: impl FnMut(&[(TimerId, Instant)]) -> bool,
) -> Vec<(TimerId, Instant)> {
    let deadline = Instant::now() + LIMIT;
    let mut events = Events::with_capacity(1024);
    let mut seen = Vec::new();
    while !until(&seen) {
        assert!(
            Instant::now() < deadline,
            "timed out; saw {} timers",
            seen.len()
        );
        sockets
            .poll(&mut events, Some(Duration::from_millis(100)))
            .unwrap();
        let now = Instant::now();
        for event in &events {
            if let Event::Timer(id) = event {
                seen.push((id, now));
            }
        }
    }
    seen
}

#[test]
fn timer_never_fires_before_its_deadline() {
    let mut sockets = Sockets::new().unwrap();
    let start = Instant::now();
    let deadlines: HashMap<TimerId, Instant> = (1..=50u64)
        .map(|ms| {
            let at = start + Duration::from_millis(ms);
            (sockets.timer_at(at), at)
        })
        .collect();
    let seen = collect_timers(&mut sockets, |s| s.len() == 50);
    let mut lateness: Vec<Duration> = seen
        .iter()
        .map(|(id, at)| {
            let deadline = deadlines[id];
            assert!(*at >= deadline, "{id} fired {:?} early", deadline - *at);
            *at - deadline
        })
        .collect();
    lateness.sort();
    // Reported, not asserted: lateness depends on the machine's load.
    println!(
        "timer lateness over 50 timers: p50 {:?}, max {:?}",
        lateness[25], lateness[49]
    );
}

#[test]
fn periodic_timer_fires_100_periods_never_early() {
    let mut sockets = Sockets::new().unwrap();
    let period = Duration::from_millis(2);
    let start = Instant::now();
    let tick = sockets.timer_every(period);
    let seen = collect_timers(&mut sockets, |s| s.len() == 100);
    let mut last = start;
    for (k, (id, at)) in seen.iter().enumerate() {
        assert_eq!(*id, tick);
        // The k-th firing is no earlier than its own deadline, start + k*period.
        assert!(*at >= start + period * (k as u32 + 1), "firing {k} early");
        assert!(*at >= last);
        last = *at;
    }
    let elapsed = last - start;
    println!(
        "100 periods of {period:?}: {elapsed:?} ({:?} per period)",
        elapsed / 100
    );
    assert!(sockets.cancel_timer(tick));
    assert!(!sockets.cancel_timer(tick));
}

#[test]
fn cancelled_timer_never_fires_and_fired_one_cannot_be_cancelled() {
    let mut sockets = Sockets::new().unwrap();
    let cancelled = sockets.timer_after(Duration::from_millis(10));
    let fired = sockets.timer_after(Duration::from_millis(20));
    assert!(sockets.cancel_timer(cancelled));
    let seen = collect_timers(&mut sockets, |s| !s.is_empty());
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].0, fired);
    assert!(!sockets.cancel_timer(fired), "already fired");
    // Nothing else is pending: the poll sleeps its full timeout.
    let mut events = Events::with_capacity(8);
    let before = Instant::now();
    sockets
        .poll(&mut events, Some(Duration::from_millis(30)))
        .unwrap();
    assert!(events.is_empty(), "{events:?}");
    assert!(before.elapsed() >= Duration::from_millis(30));
}

/// A delay or a period too long for an `Instant` (`Duration::MAX`) is a
/// timer that never fires, not a panic; it can be cancelled, and a timer
/// due soon still fires past it.
#[test]
fn a_timer_of_duration_max_never_fires_and_can_be_cancelled() {
    let mut sockets = Sockets::new().unwrap();
    let never = sockets.timer_after(Duration::MAX);
    let never_periodic = sockets.timer_every(Duration::MAX);
    let soon = sockets.timer_after(Duration::from_millis(5));
    let seen = collect_timers(&mut sockets, |s| !s.is_empty());
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].0, soon);
    let quiet = util::events_during(&mut sockets, &mut Events::with_capacity(8), util::QUIET);
    assert!(quiet.is_empty(), "{quiet:?}");
    assert!(sockets.cancel_timer(never));
    assert!(sockets.cancel_timer(never_periodic));
}

#[test]
fn poll_timeout_is_bounded_by_the_nearest_timer() {
    let mut sockets = Sockets::new().unwrap();
    let start = Instant::now();
    let t = sockets.timer_after(Duration::from_millis(30));
    let mut events = Events::with_capacity(8);
    // Asked to wait for an hour, the poll wakes for the timer.
    while events.is_empty() {
        sockets
            .poll(&mut events, Some(Duration::from_secs(3600)))
            .unwrap();
        // A bound for a hang: past the timer, it would sleep the hour.
        assert!(start.elapsed() < LIMIT, "slept past the timer");
    }
    assert_eq!(events.iter().collect::<Vec<_>>(), [Event::Timer(t)]);
    assert!(start.elapsed() >= Duration::from_millis(30));
}

#[test]
fn hundred_thousand_timers_half_cancelled_fire_once_in_deadline_order() {
    let mut sockets = Sockets::new().unwrap();
    let start = Instant::now() + Duration::from_millis(50);
    let mut deadlines = HashMap::new();
    let mut ids = Vec::with_capacity(100_000);
    // Deadlines over 200 ms, inserted in a scrambled order.
    let mut rng = Rng::new(1);
    for _ in 0..100_000 {
        let at = start + Duration::from_micros(rng.next_u64() % 200_000);
        let id = sockets.timer_at(at);
        deadlines.insert(id, at);
        ids.push(id);
    }
    for id in ids.iter().step_by(2) {
        assert!(sockets.cancel_timer(*id));
        deadlines.remove(id);
    }
    let seen = collect_timers(&mut sockets, |s| s.len() >= 50_000);
    assert_eq!(seen.len(), 50_000);
    let mut fired = HashMap::new();
    let mut previous = start;
    for (id, _) in &seen {
        let deadline = *deadlines
            .get(id)
            .unwrap_or_else(|| panic!("{id} was cancelled but fired"));
        assert!(fired.insert(*id, ()).is_none(), "{id} fired twice");
        assert!(deadline >= previous, "{id} out of deadline order");
        previous = deadline;
    }
    // And nothing more comes.
    let mut events = Events::with_capacity(8);
    sockets
        .poll(&mut events, Some(Duration::from_millis(20)))
        .unwrap();
    assert!(events.is_empty());
}
