//! The figures of the `stats` feature (docs/observability.md) checked
//! against known traffic: datagrams and bytes counted on both sides, a
//! stream's bytes equal to what its client sent and got, a spurious read
//! made on purpose, a handler that sleeps a known time (its max, the
//! longest turn and who made it), the loop's timers, wake-ups, polls and
//! turns, a stream's queue and pause, and the report of a graceful stop
//! (flushed, or cut off by the deadline).
//!
//! Loopback and port 0 only; every wait has a deadline ([`LIMIT`]); no
//! sleep synchronises anything (the one sleep is the slow handler's, the
//! thing measured); no duration or rate has an upper bound asserted.

mod util;

use std::io::{ErrorKind, Read, Write};
use std::mem::MaybeUninit;
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use sockmux::{
    Acceptor, Action, Context, Dispatcher, Event, Events, LoopStats, Protocol, Raw, Sockets,
    Stream, StreamIo, Token, Waker,
};

use util::{poll_until, read_to_would_block, recv_to_would_block, round_trip, turn_until, LIMIT};

/// Sizes of the datagrams the UDP tests send: N of them, M bytes in all.
const SIZES: [usize; 6] = [1, 17, 512, 1000, 1472, 64];

#[test]
fn udp_datagrams_and_bytes_are_counted_on_both_sides() {
    let mut sockets = Sockets::new().unwrap();
    let server = sockets.bind_udp("127.0.0.1:0").unwrap();
    let client = sockets
        .connect_udp(sockets.local_addr(server).unwrap())
        .unwrap();
    let total: usize = SIZES.iter().sum();
    let payload = vec![0xa5; *SIZES.iter().max().unwrap()];
    for &n in &SIZES {
        assert_eq!(sockets.send(client, &payload[..n]).unwrap(), n);
    }
    let sent = sockets.socket_stats(client).unwrap();
    assert_eq!(sent.writes, SIZES.len() as u64);
    assert_eq!(sent.bytes_out, total as u64);
    assert_eq!((sent.reads, sent.bytes_in), (0, 0));

    let mut events = Events::with_capacity(16);
    let mut buf = [0; 2048];
    let (mut got, mut bytes) = (0, 0);
    poll_until(&mut sockets, &mut events, LIMIT, |s, e| {
        if e == Event::Read(server) {
            got += recv_to_would_block(&mut buf, |b| s.recv(server, b), |d| bytes += d.len());
        }
        got == SIZES.len()
    });
    assert_eq!(bytes, total);
    let received = sockets.socket_stats(server).unwrap();
    assert!(received.read_events >= 1, "{received:?}");
    assert_eq!(received.reads, SIZES.len() as u64, "{received:?}");
    assert_eq!(received.bytes_in, total as u64, "{received:?}");
    assert_eq!((received.writes, received.bytes_out), (0, 0));
    assert_eq!(received.events(), received.read_events);
    assert_eq!(received.error_events, 0);

    // The iterator has both, with the same figures (but for the age).
    let all: Vec<(Token, _)> = sockets.all_socket_stats().collect();
    assert_eq!(all.len(), 2);
    let of = |t: Token| all.iter().find(|(u, _)| *u == t).unwrap().1;
    assert_eq!(
        (of(server).reads, of(server).bytes_in),
        (received.reads, received.bytes_in)
    );
    assert_eq!(
        (of(client).writes, of(client).bytes_out),
        (sent.writes, sent.bytes_out)
    );
    // The loop's totals: both sockets' bytes.
    let before = sockets.loop_stats();
    assert_eq!(
        (before.bytes_in, before.bytes_out),
        (total as u64, total as u64)
    );
    assert_eq!((before.sockets_opened, before.sockets_closed), (2, 0));
    // A stale token has no figures, but its bytes stay in the loop's.
    let (_, ()) = sockets.remove(client).unwrap();
    assert_eq!(
        sockets.socket_stats(client).unwrap_err().kind(),
        ErrorKind::NotFound
    );
    let after = sockets.loop_stats();
    assert_eq!(
        (after.bytes_in, after.bytes_out),
        (total as u64, total as u64)
    );
    assert_eq!((after.sockets_opened, after.sockets_closed), (2, 1));
}

/// A `Read` event whose datagram is taken behind the table's back: the
/// table's receive answers `WouldBlock`, a spurious read; a second one is
/// not (no event came in between).
#[test]
fn a_read_that_finds_nothing_after_a_read_event_is_spurious() {
    let mut sockets = Sockets::new().unwrap();
    let server = sockets.bind_udp("127.0.0.1:0").unwrap();
    let client = sockets
        .connect_udp(sockets.local_addr(server).unwrap())
        .unwrap();
    sockets.send(client, b"stolen").unwrap();
    let mut events = Events::with_capacity(8);
    poll_until(&mut sockets, &mut events, LIMIT, |_, e| {
        e == Event::Read(server)
    });
    let mut raw = [MaybeUninit::<u8>::uninit(); 64];
    let n = socket2::SockRef::from(sockets.socket(server).unwrap())
        .recv(&mut raw)
        .unwrap();
    assert_eq!(n, 6);
    let mut buf = [0; 64];
    for _ in 0..2 {
        let err = sockets.recv(server, &mut buf).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::WouldBlock);
    }
    let stats = sockets.socket_stats(server).unwrap();
    assert_eq!(stats.spurious_reads, 1, "{stats:?}");
    assert_eq!((stats.reads, stats.bytes_in), (0, 0), "{stats:?}");
    assert!(stats.read_events >= 1, "{stats:?}");
    assert_eq!(stats.spurious_writes, 0, "{stats:?}");
}

#[test]
fn core_loop_figures_count_polls_events_timers_and_wakes() {
    let mut sockets = Sockets::new().unwrap();
    let waker = sockets.waker().unwrap();
    let timer = sockets.timer_after(Duration::from_millis(1));
    let mut events = Events::with_capacity(8);
    let (mut polls, mut delivered, mut fired, mut woken) = (0u64, 0u64, false, false);
    let other = thread::spawn(move || waker.wake().unwrap());
    let deadline = Instant::now() + LIMIT;
    while !(fired && woken) {
        assert!(
            Instant::now() < deadline,
            "no timer and wake-up in {LIMIT:?}"
        );
        sockets
            .poll(&mut events, Some(Duration::from_millis(20)))
            .unwrap();
        polls += 1;
        for e in events.iter() {
            delivered += 1;
            fired |= e == Event::Timer(timer);
            woken |= e == Event::Wake;
        }
    }
    other.join().unwrap();
    let stats = sockets.loop_stats();
    assert_eq!(stats.polls, polls, "{stats:?}");
    assert_eq!(stats.events, delivered, "{stats:?}");
    assert_eq!(
        stats.events_per_poll.iter().sum::<u64>(),
        polls,
        "{stats:?}"
    );
    assert_eq!(
        (stats.timers_scheduled, stats.timers_fired),
        (1, 1),
        "{stats:?}"
    );
    assert!(stats.wakes >= 1, "{stats:?}");
    assert_eq!(stats.signals, 0);
    check_utilisation(&stats);
}

/// The events-per-poll buckets: one poll of nothing, one of three events
/// (bucket 2, "2 to 3").
#[test]
fn events_per_poll_fall_in_their_log2_bucket() {
    let mut sockets = Sockets::new().unwrap();
    let mut events = Events::with_capacity(16);
    sockets
        .poll(&mut events, Some(Duration::from_millis(1)))
        .unwrap();
    let stats = sockets.loop_stats();
    assert_eq!(stats.events_per_poll[0], 1);
    // Three sockets writable at once: one poll delivers their three events.
    let server = sockets.bind_udp("127.0.0.1:0").unwrap();
    let addr = sockets.local_addr(server).unwrap();
    let mut want = Vec::new();
    for _ in 0..3 {
        let t = sockets.connect_udp(addr).unwrap();
        sockets
            .set_interest(t, sockmux::Interest::WRITABLE)
            .unwrap();
        want.push(t);
    }
    let deadline = Instant::now() + LIMIT;
    let n = loop {
        assert!(Instant::now() < deadline, "no Write events in {LIMIT:?}");
        sockets
            .poll(&mut events, Some(Duration::from_millis(20)))
            .unwrap();
        let n = events.iter().count();
        if n > 0 {
            break n;
        }
    };
    let stats = sockets.loop_stats();
    assert_eq!(
        stats.events_per_poll[LoopStats::bucket(n)],
        1,
        "{n}: {stats:?}"
    );
    assert_eq!(stats.events_per_poll.iter().sum::<u64>(), stats.polls);
    assert_eq!(stats.events, n as u64);
    assert!(stats.ready_queue_max >= 1, "{stats:?}");
}

#[track_caller]
fn check_utilisation(stats: &LoopStats) {
    let u = stats.utilisation();
    assert!((0.0..=1.0).contains(&u), "utilisation {u}: {stats:?}");
    assert!(!(stats.busy + stats.waiting).is_zero(), "{stats:?}");
}

// --- the dispatcher's figures ---------------------------------------------------

/// How long the slow handler sleeps.
const NAP: Duration = Duration::from_millis(50);

/// A test-only responder that reads its datagrams, then sleeps [`NAP`].
struct Sleeper;

impl sockmux::Responder<Counts> for Sleeper {
    fn ready(&mut self, event: Event, cx: &mut Context<'_, Counts>) -> Action {
        if event == Event::Read(cx.token) {
            let mut buf = [0; 64];
            cx.state.slow +=
                recv_to_would_block(&mut buf, |b| cx.sockets.recv(cx.token, b), |_| {});
            thread::sleep(NAP);
        }
        Action::Continue
    }
}

/// A test-only responder that reads its datagrams and returns at once.
struct Quick;

impl sockmux::Responder<Counts> for Quick {
    fn ready(&mut self, event: Event, cx: &mut Context<'_, Counts>) -> Action {
        if event == Event::Read(cx.token) {
            let mut buf = [0; 64];
            cx.state.quick +=
                recv_to_would_block(&mut buf, |b| cx.sockets.recv(cx.token, b), |_| {});
        }
        Action::Continue
    }
}

#[derive(Debug, Default)]
struct Counts {
    slow: usize,
    quick: usize,
}

#[test]
fn a_handler_that_sleeps_is_the_max_the_longest_turn_and_the_top() {
    let mut dispatcher = Dispatcher::new(Counts::default()).unwrap();
    let slow = dispatcher
        .sockets()
        .bind_udp("127.0.0.1:0", Sleeper)
        .unwrap();
    let quick = dispatcher.sockets().bind_udp("127.0.0.1:0", Quick).unwrap();
    let peer = util::udp_peer();
    let slow_addr = dispatcher.sockets().local_addr(slow).unwrap();
    let quick_addr = dispatcher.sockets().local_addr(quick).unwrap();
    for _ in 0..3 {
        peer.send_to(b"q", quick_addr).unwrap();
        turn_until(&mut dispatcher, LIMIT, |d| d.state().quick > 0);
        dispatcher.state_mut().quick = 0;
    }
    peer.send_to(b"s", slow_addr).unwrap();
    turn_until(&mut dispatcher, LIMIT, |d| d.state().slow == 1);
    for _ in 0..3 {
        peer.send_to(b"q", quick_addr).unwrap();
        turn_until(&mut dispatcher, LIMIT, |d| d.state().quick > 0);
        dispatcher.state_mut().quick = 0;
    }

    let sockets = dispatcher.sockets();
    let s = sockets.responder_stats(slow).unwrap();
    assert_eq!(s.token, slow);
    assert!(s.responder.ends_with("Sleeper"), "{s:?}");
    assert!(s.handler_max >= NAP, "{s:?}");
    assert!(s.handler_time >= s.handler_max, "{s:?}");
    assert!(s.handler_calls >= 1, "{s:?}");
    assert_eq!((s.io.reads, s.io.bytes_in), (1, 1), "{s:?}");
    assert_eq!((s.queued, s.paused), (0, Duration::ZERO), "{s:?}");
    let q = sockets.responder_stats(quick).unwrap();
    assert!(q.responder.ends_with("Quick"), "{q:?}");
    assert!(q.handler_calls >= 6, "{q:?}");
    assert_eq!((q.io.reads, q.io.bytes_in), (6, 6), "{q:?}");

    let d = sockets.dispatcher_stats();
    assert!(d.longest_turn >= NAP, "{d:?}");
    let (by, name, took) = d.longest_turn_by.expect("a longest turn");
    assert_eq!(by, slow, "{d:?}");
    assert!(name.ends_with("Sleeper"), "{d:?}");
    assert!(took >= NAP && took <= d.longest_turn, "{d:?}");
    assert!(d.handler_time >= NAP, "{d:?}");
    assert!(d.handler_times.count() >= 7, "{d:?}");
    assert!(d.handler_times.quantile(1.0) >= NAP, "{d:?}");
    assert_eq!(d.sockets, 2);

    // The top by handler time: the sleeper first.
    let mut top: Vec<_> = sockets.all_responder_stats().collect();
    assert_eq!(top.len(), 2);
    top.sort_by_key(|s| std::cmp::Reverse(s.handler_time));
    assert_eq!(top[0].token, slow, "{top:?}");
    assert_eq!(top[1].token, quick, "{top:?}");
    assert_eq!(dispatcher.stats(), dispatcher.sockets().dispatcher_stats());
}

/// What [`Ticker`] saw.
#[derive(Debug, Default)]
struct Ticks {
    timers: usize,
    wakes: usize,
    waker: Option<Waker>,
}

/// A test-only responder that schedules three timers and takes the loop's
/// waker when registered, and counts what comes.
struct Ticker;

impl sockmux::Responder<Ticks> for Ticker {
    fn registered(&mut self, cx: &mut Context<'_, Ticks>) -> Action {
        for ms in 1..=3 {
            cx.timer_after(Duration::from_millis(ms));
        }
        cx.state.waker = Some(cx.waker().unwrap());
        Action::Continue
    }

    fn ready(&mut self, event: Event, cx: &mut Context<'_, Ticks>) -> Action {
        if event == Event::Wake {
            cx.state.wakes += 1;
        }
        Action::Continue
    }

    fn timer(&mut self, _: sockmux::TimerId, cx: &mut Context<'_, Ticks>) -> Action {
        cx.state.timers += 1;
        Action::Continue
    }
}

#[test]
fn dispatcher_figures_count_turns_polls_timers_and_wakes() {
    let mut dispatcher = Dispatcher::new(Ticks::default()).unwrap();
    dispatcher
        .sockets()
        .bind_udp("127.0.0.1:0", Ticker)
        .unwrap();
    let mut turns = 0u64;
    let deadline = Instant::now() + LIMIT;
    while dispatcher.state().timers < 3 {
        assert!(Instant::now() < deadline, "3 timers not fired in {LIMIT:?}");
        dispatcher.turn(Some(Duration::from_millis(20))).unwrap();
        turns += 1;
    }
    let waker = dispatcher.state().waker.clone().expect("the waker");
    let other = thread::spawn(move || waker.wake().unwrap());
    while dispatcher.state().wakes == 0 {
        assert!(Instant::now() < deadline, "no wake-up in {LIMIT:?}");
        dispatcher.turn(Some(Duration::from_millis(20))).unwrap();
        turns += 1;
    }
    other.join().unwrap();

    let d = dispatcher.stats();
    assert_eq!(d.turns, turns, "{d:?}");
    assert_eq!(d.core.polls, turns, "{d:?}");
    assert_eq!(d.core.events_per_poll.iter().sum::<u64>(), d.core.polls);
    assert_eq!(
        (d.core.timers_scheduled, d.core.timers_fired),
        (3, 3),
        "{d:?}"
    );
    assert_eq!(d.core.wakes, dispatcher.state().wakes as u64, "{d:?}");
    assert!(d.core.events >= 4, "{d:?}");
    // The registered hook, three timers and the wake-up at least.
    assert!(d.handler_times.count() >= 5, "{d:?}");
    check_utilisation(&d.core);
}

// --- streams ---------------------------------------------------------------------

/// What the stream tests' state records.
#[derive(Debug, Default)]
struct Conns {
    /// Connections accepted, in order.
    tokens: Vec<Token>,
    paused: usize,
    resumed: usize,
    /// Each closed connection's bytes never sent, as its protocol heard.
    unsent: Vec<usize>,
}

/// Echoes every chunk; counts pauses and resumes.
struct Echo;

impl Protocol<Conns> for Echo {
    fn frame(&mut self, bytes: &[u8], io: &mut StreamIo<'_, '_, Conns>) {
        io.write(bytes);
    }

    fn paused(&mut self, io: &mut StreamIo<'_, '_, Conns>) {
        io.cx.state.paused += 1;
    }

    fn resumed(&mut self, io: &mut StreamIo<'_, '_, Conns>) {
        io.cx.state.resumed += 1;
    }

    fn closed(&mut self, _: sockmux::CloseReason, unsent: usize, cx: &mut Context<'_, Conns>) {
        cx.state.unsent.push(unsent);
    }
}

/// Low and high water marks of the streams that must pause.
const LOW: usize = 16 * 1024;
const HIGH: usize = 64 * 1024;

/// A dispatcher with an echo listener whose streams pause at [`HIGH`], a
/// non-blocking client connected, and the connection's token.
fn echo_server() -> (Dispatcher<Conns>, TcpStream, Token) {
    let mut dispatcher = Dispatcher::new(Conns::default()).unwrap();
    let acceptor = Acceptor::new(|t: Token, cx: &mut Context<'_, Conns>| {
        cx.state.tokens.push(t);
        Stream::new(Raw, Echo).water_marks(LOW, HIGH)
    });
    let listener = dispatcher
        .sockets()
        .listen_tcp("127.0.0.1:0", acceptor)
        .unwrap();
    let addr = dispatcher.sockets().local_addr(listener).unwrap();
    let client = TcpStream::connect(addr).unwrap();
    client.set_nonblocking(true).unwrap();
    turn_until(&mut dispatcher, LIMIT, |d| !d.state().tokens.is_empty());
    let conn = dispatcher.state().tokens[0];
    (dispatcher, client, conn)
}

/// Writes from `client` (which never reads) until the connection's stream
/// pauses; returns the bytes sent.
fn flood_until_paused(dispatcher: &mut Dispatcher<Conns>, client: &mut TcpStream) -> u64 {
    let chunk = [0x5a; 16 * 1024];
    let mut sent = 0u64;
    let deadline = Instant::now() + LIMIT;
    while dispatcher.state().paused == 0 {
        assert!(Instant::now() < deadline, "no pause in {LIMIT:?}");
        match client.write(&chunk) {
            Ok(n) => sent += n as u64,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => panic!("client write: {e}"),
        }
        dispatcher.turn(Some(Duration::from_millis(5))).unwrap();
    }
    sent
}

#[test]
fn a_stream_counts_the_bytes_its_client_sent_and_got() {
    let (mut dispatcher, mut client, conn) = echo_server();
    let mut back = vec![0; 64 * 1024];
    let mut total = 0;
    for len in [1, 100, 4096, 50_000, 7] {
        let message: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        round_trip(&mut dispatcher, &mut client, &message, &mut back);
        total += len as u64;
    }
    let s = dispatcher.sockets().responder_stats(conn).unwrap();
    assert!(s.responder.contains("Stream"), "{s:?}");
    assert_eq!(s.io.bytes_in, total, "{s:?}");
    assert_eq!(s.io.bytes_out, total, "{s:?}");
    assert!(s.io.reads >= 5 && s.io.writes >= 5, "{s:?}");
    assert!(s.io.read_events >= 5, "{s:?}");
    assert!(s.handler_calls >= s.io.read_events, "{s:?}");
    assert_eq!(s.queued, 0, "{s:?}");
    assert_eq!(s.paused, Duration::ZERO, "{s:?}");
    // The client's end: it closes, the stream reads the end of the stream.
    drop(client);
    turn_until(&mut dispatcher, LIMIT, |d| !d.sockets().contains(conn));
}

#[test]
fn a_stream_whose_client_does_not_read_queues_pauses_and_resumes() {
    let (mut dispatcher, mut client, conn) = echo_server();
    flood_until_paused(&mut dispatcher, &mut client);
    let s = dispatcher.sockets().responder_stats(conn).unwrap();
    assert!(s.queued >= HIGH, "{s:?}");
    // The pause under way counts: let the loop turn until it shows.
    turn_until(&mut dispatcher, LIMIT, |d| {
        d.sockets().responder_stats(conn).unwrap().paused > Duration::ZERO
    });
    // The client reads: the queue drains to the low-water mark, reading
    // resumes.
    let mut buf = vec![0; 64 * 1024];
    let deadline = Instant::now() + LIMIT;
    while dispatcher.state().resumed == 0 {
        assert!(Instant::now() < deadline, "no resume in {LIMIT:?}");
        let ended = read_to_would_block(&mut buf, |b| client.read(b), |_| {});
        assert!(!ended);
        dispatcher.turn(Some(Duration::from_millis(5))).unwrap();
    }
    let after = dispatcher.sockets().responder_stats(conn).unwrap();
    assert!(after.paused > Duration::ZERO, "{after:?}");
    // Reading again, it may pause again; while it is not paused, the
    // figure stands still.
    let state = dispatcher.state();
    if state.paused == state.resumed {
        let later = dispatcher.sockets().responder_stats(conn).unwrap();
        assert_eq!(later.paused, after.paused, "{later:?}");
    }
}

#[test]
fn a_graceful_stop_reports_the_queued_bytes_flushed() {
    let (mut dispatcher, mut client, conn) = echo_server();
    flood_until_paused(&mut dispatcher, &mut client);
    let queued = dispatcher.sockets().responder_stats(conn).unwrap().queued;
    assert!(queued > 0);
    // The client reads everything, on a thread of its own, while the
    // dispatcher stops on this one.
    client.set_nonblocking(false).unwrap();
    client.set_read_timeout(Some(LIMIT)).unwrap();
    let reader = thread::spawn(move || {
        let mut buf = vec![0; 64 * 1024];
        let mut got = 0u64;
        // The end of the stream, or a reset (the server may close with
        // bytes of ours unread): either way, the server is done.
        while let Ok(n @ 1..) = client.read(&mut buf) {
            got += n as u64;
        }
        got
    });
    dispatcher.stop_gracefully(LIMIT).unwrap();
    let got = reader.join().unwrap();
    let report = dispatcher.drain_report().expect("a report").clone();
    let d = report
        .sockets
        .iter()
        .find(|d| d.token == conn)
        .unwrap_or_else(|| panic!("{conn} not in {report:?}"));
    assert!(d.responder.contains("Stream"), "{d:?}");
    assert_eq!(d.queued_at_stop, queued, "{d:?}");
    assert!(d.written >= queued as u64, "{d:?}");
    assert_eq!(d.cut_off, 0, "{d:?}");
    assert!(!d.by_deadline, "{d:?}");
    assert!(got > 0, "the client got nothing");
    // The listener closed too, with nothing queued.
    assert_eq!(report.sockets.len(), 2, "{report:?}");
    assert_eq!(report.cut_off(), 0);
    assert!(report.written() >= queued as u64);
}

#[test]
fn a_graceful_stop_reports_what_the_deadline_cut_off() {
    let (mut dispatcher, mut client, conn) = echo_server();
    flood_until_paused(&mut dispatcher, &mut client);
    let queued = dispatcher.sockets().responder_stats(conn).unwrap().queued;
    let grace = Duration::from_millis(200);
    // The client never reads: only the deadline ends the stop.
    dispatcher.stop_gracefully(grace).unwrap();
    let report = dispatcher.drain_report().expect("a report");
    let d = report
        .sockets
        .iter()
        .find(|d| d.token == conn)
        .unwrap_or_else(|| panic!("{conn} not in {report:?}"));
    assert_eq!(d.queued_at_stop, queued, "{d:?}");
    assert!(d.by_deadline, "{d:?}");
    assert!(d.cut_off > 0, "{d:?}");
    assert!(report.cut_off() >= d.cut_off);
    // The report's clock starts just after the deadline is set: it ran
    // for about the grace (a generous lower bound, for a loaded machine).
    assert!(report.took >= grace / 2, "{report:?}");
    drop(client);
}

/// A stream that closes itself during the stop with bytes still queued
/// (its client reset the connection: the flush fails) cut those bytes off
/// as surely as the deadline would: the report says so, with the count
/// its protocol was told.
#[test]
fn a_graceful_stop_reports_what_a_reset_cut_off() {
    let (mut dispatcher, mut client, conn) = echo_server();
    flood_until_paused(&mut dispatcher, &mut client);
    let queued = dispatcher.sockets().responder_stats(conn).unwrap().queued;
    util::reset(client);
    dispatcher.stop_gracefully(LIMIT).unwrap();
    let unsent = dispatcher.state().unsent.clone();
    assert_eq!(unsent.len(), 1, "{unsent:?}");
    assert!(unsent[0] > 0, "{unsent:?}");
    let report = dispatcher.drain_report().expect("a report");
    let d = report
        .sockets
        .iter()
        .find(|d| d.token == conn)
        .unwrap_or_else(|| panic!("{conn} not in {report:?}"));
    assert_eq!(d.queued_at_stop, queued, "{d:?}");
    assert!(!d.by_deadline, "{d:?}");
    assert_eq!(
        d.cut_off, unsent[0],
        "{d:?}: the protocol was told {unsent:?}"
    );
}
