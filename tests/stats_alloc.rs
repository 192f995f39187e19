//! The figures of the `stats` feature cost no allocation: with them on (the
//! root crate's default), steady-state echo traffic through a `Stream` and
//! through a UDP responder allocates nothing per event, and reading the
//! figures (`dispatcher_stats`, `responder_stats`, `all_responder_stats`,
//! `loop_stats`, `socket_stats`, `all_socket_stats`, a histogram's
//! quantiles) allocates nothing either. Counted by a global allocator, on
//! this thread only, after a warm-up.

use std::hint::black_box;
use std::io::ErrorKind;

use sockmux::{
    Acceptor, Action, Context, Dispatcher, Event, Events, Protocol, Raw, Sockets, Stream, StreamIo,
    Token,
};

mod util;
use util::alloc::{allocations_in, assert_the_counter_counts, Counting};
use util::{poll_until, round_trip, turn_until_datagram, udp_peer, LIMIT};

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Echoes every chunk.
struct Echo;

impl Protocol<Option<Token>> for Echo {
    fn frame(&mut self, bytes: &[u8], io: &mut StreamIo<'_, '_, Option<Token>>) {
        io.write(bytes);
    }
}

/// Reads every figure the dispatcher has of `t` and of itself.
fn read_every_figure(dispatcher: &mut Dispatcher<Option<Token>>, t: Token) {
    let d = dispatcher.stats();
    black_box(d.handler_times.quantile(0.99));
    black_box(d.core.utilisation());
    black_box(&d);
    let sockets = dispatcher.sockets();
    black_box(sockets.dispatcher_stats());
    black_box(sockets.responder_stats(t).unwrap());
    black_box(sockets.socket_stats(t).unwrap());
    let slowest = sockets.all_responder_stats().max_by_key(|s| s.handler_time);
    black_box(slowest);
    let busiest = sockets.all_socket_stats().max_by_key(|(_, s)| s.bytes_out);
    black_box(busiest);
}

#[test]
fn a_stream_echo_with_stats_allocates_nothing_per_event_nor_to_read_them() {
    let mut dispatcher = Dispatcher::new(None).unwrap();
    let acceptor = Acceptor::new(|t: Token, cx: &mut Context<'_, Option<Token>>| {
        let socket = cx.sockets.socket(t).unwrap();
        socket2::SockRef::from(socket)
            .set_tcp_nodelay(true)
            .unwrap();
        *cx.state = Some(t);
        Stream::new(Raw, Echo)
    });
    let mut client = util::connect_to_acceptor(&mut dispatcher, acceptor);
    let message: Vec<u8> = (0..1000).map(|i| (i % 251) as u8).collect();
    let mut back = vec![0; 64 * 1024];
    for _ in 0..50 {
        round_trip(&mut dispatcher, &mut client, &message, &mut back);
    }
    let conn = dispatcher.state().expect("the connection");
    read_every_figure(&mut dispatcher, conn);
    let before = dispatcher.sockets().responder_stats(conn).unwrap();

    let rounds = 1000;
    let n = allocations_in(|| {
        for _ in 0..rounds {
            round_trip(&mut dispatcher, &mut client, &message, &mut back);
        }
    });
    assert_eq!(n, 0, "allocations in {rounds} round trips");
    let n = allocations_in(|| {
        for _ in 0..100 {
            read_every_figure(&mut dispatcher, conn);
        }
    });
    assert_eq!(n, 0, "allocations reading the figures");

    // The figures moved: they were counted, not compiled out.
    let after = dispatcher.sockets().responder_stats(conn).unwrap();
    let bytes = (rounds * message.len()) as u64;
    assert_eq!(after.io.bytes_in - before.io.bytes_in, bytes);
    assert_eq!(after.io.bytes_out - before.io.bytes_out, bytes);
    assert!(after.handler_calls >= before.handler_calls + rounds as u64);
}

#[test]
fn a_udp_echo_with_stats_allocates_nothing_per_event() {
    let echo = |event: Event, cx: &mut Context<'_, Option<Token>>| {
        if event == Event::Read(cx.token) {
            let mut buf = [0; 1500];
            loop {
                match cx.sockets.recv_from(cx.token, &mut buf) {
                    Ok((n, from)) => {
                        let _ = cx.sockets.send_to(cx.token, &buf[..n], from);
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) => panic!("recv_from: {e}"),
                }
            }
        }
        Action::Continue
    };
    let mut dispatcher = Dispatcher::new(None).unwrap();
    let t = dispatcher.sockets().bind_udp("127.0.0.1:0", echo).unwrap();
    let addr = dispatcher.sockets().local_addr(t).unwrap();
    let peer = udp_peer();
    peer.connect(addr).unwrap();
    let mut buf = [0; 1500];
    let mut one = |dispatcher: &mut Dispatcher<Option<Token>>| {
        peer.send(b"ping").unwrap();
        assert_eq!(turn_until_datagram(dispatcher, &peer, &mut buf), 4);
    };
    for _ in 0..50 {
        one(&mut dispatcher);
    }
    read_every_figure(&mut dispatcher, t);
    let before = dispatcher.sockets().socket_stats(t).unwrap();
    let n = allocations_in(|| {
        for _ in 0..1000 {
            one(&mut dispatcher);
        }
        read_every_figure(&mut dispatcher, t);
    });
    assert_eq!(n, 0);
    let after = dispatcher.sockets().socket_stats(t).unwrap();
    assert_eq!(after.reads - before.reads, 1000);
    assert_eq!(after.bytes_out - before.bytes_out, 4000);
}

#[test]
fn the_core_figures_allocate_nothing() {
    let mut sockets = Sockets::new().unwrap();
    let server = sockets.bind_udp("127.0.0.1:0").unwrap();
    let client = sockets
        .connect_udp(sockets.local_addr(server).unwrap())
        .unwrap();
    let mut events = Events::with_capacity(8);
    let mut buf = [0; 64];
    let mut one = |sockets: &mut Sockets| {
        sockets.send(client, b"x").unwrap();
        poll_until(sockets, &mut events, LIMIT, |s, e| {
            e == Event::Read(server) && s.recv(server, &mut buf).is_ok()
        });
    };
    for _ in 0..10 {
        one(&mut sockets);
    }
    let n = allocations_in(|| {
        for _ in 0..500 {
            one(&mut sockets);
            black_box(sockets.loop_stats());
            black_box(sockets.socket_stats(server).unwrap());
            black_box(
                sockets
                    .all_socket_stats()
                    .map(|(_, s)| s.reads)
                    .sum::<u64>(),
            );
        }
    });
    assert_eq!(n, 0);
    assert_eq!(sockets.socket_stats(server).unwrap().reads, 510);
}

#[test]
fn the_counter_sees_an_allocation() {
    assert_the_counter_counts();
}
