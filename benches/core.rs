//! Figures for the core table, printed, never asserted:
//!
//! - poll cost with one busy socket among 10, 1,000 and 10,000 idle ones
//!   (the ratio to 10 is the O(ready) check; the three tables are measured
//!   in turn, five rounds, medians, so drift hits them alike);
//! - timer schedule + cancel rate for 100,000 timers, and firing them;
//! - wake latency from another thread to the loop, p50 and p99;
//! - dispatch cost per event through a responder: the same datagram loop
//!   through the bare table and through a `Dispatcher`, the difference per
//!   event.
//!
//! `cargo bench --bench core` runs the full sizes; under `cargo test` (no
//! `--bench` argument) it runs a quick smoke pass with small sizes.

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use sockmux::{Action, Context, Dispatcher, Event, Events, Sockets, Token};

#[path = "../tests/util/mod.rs"]
mod util;

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let scale = if full { 1 } else { 100 };
    // 10,000 sockets need more descriptors than the usual soft limit of
    // 1024; without them the poll cost says where it stopped.
    #[cfg(unix)]
    let _ = util::rlimit::raise_nofile();
    poll_cost(&[10, 1_000, 10_000], 40_000 / scale);
    timers(100_000 / scale);
    wake_latency(20_000 / scale);
    dispatch_cost(200_000 / scale);
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// One iteration: a datagram is sent to the busy socket, the loop polls,
/// gets its `Read`, and reads until `WouldBlock`. The idle sockets are
/// registered and never ready. Per-iteration time should not depend on how
/// many idle sockets there are.
fn poll_cost(idle_counts: &[usize], iterations: usize) {
    let mut loops = Vec::new();
    for &idle in idle_counts {
        let mut sockets = Sockets::new().unwrap();
        let mut idle_tokens = Vec::with_capacity(idle);
        for _ in 0..idle {
            match sockets.bind_udp("127.0.0.1:0") {
                Ok(t) => idle_tokens.push(t),
                Err(e) => {
                    println!(
                        "poll cost: stopped at {} idle sockets: {e}",
                        idle_tokens.len()
                    );
                    break;
                }
            }
        }
        let busy = sockets.bind_udp("127.0.0.1:0").unwrap();
        let addr = sockets.local_addr(busy).unwrap();
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut events = Events::with_capacity(64);
        let mut buf = [0u8; 64];
        let run = move |n: usize| {
            let start = Instant::now();
            for _ in 0..n {
                sender.send_to(b"ping", addr).unwrap();
                let mut got = false;
                while !got {
                    sockets
                        .poll(&mut events, Some(Duration::from_secs(5)))
                        .unwrap();
                    for event in &events {
                        if event == Event::Read(busy) {
                            got |= util::recv_to_would_block(
                                &mut buf,
                                |b| sockets.recv(busy, b),
                                |_| {},
                            ) > 0;
                        }
                    }
                }
            }
            start.elapsed()
        };
        loops.push((
            idle_tokens,
            Box::new(run) as Box<dyn FnMut(usize) -> Duration>,
        ));
    }
    const ROUNDS: usize = 5;
    let mut per: Vec<Vec<f64>> = vec![Vec::new(); loops.len()];
    for (_, run) in &mut loops {
        run(iterations / 10); // warm up
    }
    for _ in 0..ROUNDS {
        for (i, (_, run)) in loops.iter_mut().enumerate() {
            per[i].push(run(iterations).as_secs_f64() * 1e9 / iterations as f64);
        }
    }
    let medians: Vec<f64> = per.into_iter().map(median).collect();
    println!(
        "poll cost, 1 busy socket (send + poll + recv to WouldBlock), median of {ROUNDS} rounds of {iterations}:"
    );
    for ((idle, _), per) in loops.iter().zip(&medians) {
        println!(
            "  {:>6} idle: {per:>8.0} ns/iteration  ratio to {}: {:.3}",
            idle.len(),
            loops[0].0.len(),
            per / medians[0]
        );
    }
}

fn timers(n: usize) {
    let mut sockets = Sockets::new().unwrap();
    // Schedule n, cancel n: the rate counts schedule+cancel pairs.
    let start = Instant::now();
    let ids: Vec<_> = (0..n)
        .map(|i| {
            sockets.timer_after(
                Duration::from_secs(3600) + Duration::from_nanos(i as u64 * 7919 % 1_000_000),
            )
        })
        .collect();
    let scheduled = start.elapsed();
    for id in &ids {
        assert!(sockets.cancel_timer(*id));
    }
    let both = start.elapsed();
    println!(
        "timers: {n} scheduled in {scheduled:?}, all cancelled by {both:?}: {:.2} M schedule+cancel pairs/s",
        n as f64 / both.as_secs_f64() / 1e6
    );
    // Fire n timers due now: how fast they come out as events.
    let now = Instant::now();
    for i in 0..n {
        sockets.timer_at(now + Duration::from_nanos(i as u64));
    }
    let mut events = Events::with_capacity(1024);
    let start = Instant::now();
    let mut fired = 0;
    while fired < n {
        sockets
            .poll(&mut events, Some(Duration::from_secs(5)))
            .unwrap();
        fired += events
            .iter()
            .filter(|e| matches!(e, Event::Timer(_)))
            .count();
    }
    println!(
        "timers: {n} due timers delivered as events in {:?} ({:.2} M/s)",
        start.elapsed(),
        n as f64 / start.elapsed().as_secs_f64() / 1e6
    );
}

/// Another thread stamps an `Instant`, sends it through the loop's channel
/// (which wakes the loop), and waits for the loop's answer before the next.
fn wake_latency(samples: usize) {
    let mut sockets = Sockets::new().unwrap();
    let (tx, rx) = sockets.channel::<Instant>().unwrap();
    let (ack_tx, ack_rx) = std::sync::mpsc::channel::<()>();
    let thread = std::thread::spawn(move || {
        for _ in 0..samples {
            tx.send(Instant::now()).unwrap();
            ack_rx.recv().unwrap();
        }
    });
    let mut events = Events::with_capacity(8);
    let mut latencies = Vec::with_capacity(samples);
    while latencies.len() < samples {
        sockets
            .poll(&mut events, Some(Duration::from_secs(5)))
            .unwrap();
        if events.iter().any(|e| e == Event::Wake) {
            while let Ok(sent) = rx.try_recv() {
                latencies.push(sent.elapsed());
                ack_tx.send(()).unwrap();
            }
        }
    }
    thread.join().unwrap();
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    println!(
        "wake latency (channel send on another thread -> message in the loop), {samples} samples: p50 {:?}, p99 {:?}, max {:?}",
        at(0.50),
        at(0.99),
        latencies[latencies.len() - 1]
    );
}

/// The datagram loop of `poll_cost` (no idle sockets), once through the
/// bare table and once through a dispatcher whose responder does the same
/// reads; the difference is what dispatching one event costs.
fn dispatch_cost(iterations: usize) {
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut buf = [0u8; 64];

    let mut sockets = Sockets::new().unwrap();
    let busy = sockets.bind_udp("127.0.0.1:0").unwrap();
    let addr = sockets.local_addr(busy).unwrap();
    let mut events = Events::with_capacity(64);
    let mut table = |n: usize| {
        let start = Instant::now();
        for _ in 0..n {
            sender.send_to(b"ping", addr).unwrap();
            let mut got = false;
            while !got {
                sockets
                    .poll(&mut events, Some(Duration::from_secs(5)))
                    .unwrap();
                for event in &events {
                    if event == Event::Read(busy) {
                        got |=
                            util::recv_to_would_block(&mut buf, |b| sockets.recv(busy, b), |_| {})
                                > 0;
                    }
                }
            }
        }
        start.elapsed()
    };

    let mut dispatcher = Dispatcher::with_event_capacity(0u64, 64).unwrap();
    let reader = |event: Event, cx: &mut Context<'_, u64>| {
        if let Event::Read(t) = event {
            let mut buf = [0u8; 64];
            if util::recv_to_would_block(&mut buf, |b| cx.sockets.recv(t, b), |_| {}) > 0 {
                *cx.state += 1;
            }
        }
        Action::Continue
    };
    let busy: Token = dispatcher
        .sockets()
        .bind_udp("127.0.0.1:0", reader)
        .unwrap();
    let addr = dispatcher.sockets().local_addr(busy).unwrap();
    let mut responder = |n: usize| {
        let start = Instant::now();
        for _ in 0..n {
            sender.send_to(b"ping", addr).unwrap();
            let before = *dispatcher.state();
            while *dispatcher.state() == before {
                dispatcher.turn(Some(Duration::from_secs(5))).unwrap();
            }
        }
        start.elapsed()
    };

    table(iterations / 10);
    responder(iterations / 10);
    let (mut bare, mut through) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        bare.push(table(iterations).as_secs_f64() * 1e9 / iterations as f64);
        through.push(responder(iterations).as_secs_f64() * 1e9 / iterations as f64);
    }
    let (bare, through) = (median(bare), median(through));
    println!(
        "dispatch cost, 1 datagram per event, median of 5 rounds of {iterations}: \
         table {bare:.0} ns/event, responder {through:.0} ns/event: {:+.0} ns per dispatched event",
        through - bare
    );
}
