//! `Loops`, the multi-loop runner, in process: connections spread over the
//! loops (`SO_REUSEPORT` on Linux: every loop gets some of 1,000; the
//! hand-off: the busiest loop has at most 1.2 times the connections of the
//! idlest), a chat line that crosses loops, a graceful stop of all the
//! loops that flushes every queued byte, a panic in one loop's handler
//! that leaves the others serving, and start-up errors. The hand-off tests
//! run everywhere, Windows (wine) included.

mod util;

use std::io::{self, BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use sockmux::{
    Action, Context, Event, Handle, Lines, Loops, Protocol, Raw, Server, Setup, Spread, Stream,
    StreamIo, Token,
};
use util::LIMIT;

/// Connections per test of the spread, opened in waves of [`WAVE`] (held
/// open until the whole wave is served, then closed), so that the test
/// never holds more than 2 × `WAVE` descriptors (client and server ends).
const CONNECTIONS: usize = 1000;
const WAVE: usize = 250;

/// A client connection, with [`LIMIT`] on its reads and writes.
#[track_caller]
fn connect(addr: SocketAddr) -> TcpStream {
    let conn = TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(LIMIT)).unwrap();
    conn.set_write_timeout(Some(LIMIT)).unwrap();
    conn
}

/// Each connection is told the index of its loop (one byte), then echoed
/// line by line; the line `panic` makes its handler panic.
#[derive(Debug)]
struct Told(u8);

impl Protocol<usize> for Told {
    fn opened(&mut self, io: &mut StreamIo<'_, '_, usize>) {
        *io.cx.state += 1;
        io.write(&[self.0]);
    }

    fn frame(&mut self, line: &[u8], io: &mut StreamIo<'_, '_, usize>) {
        assert_ne!(line, b"panic", "told to panic");
        io.write(line);
        io.write(b"\n");
    }
}

/// `count` loops spreading connections as `spread`; each serves [`Told`]
/// and counts its connections in its state.
fn told_server(count: usize, spread: Spread) -> io::Result<Server<usize, ()>> {
    Loops::new(count)
        .spread(spread)
        .serve("127.0.0.1:0", |setup: &mut Setup<'_, usize, ()>| {
            let me = u8::try_from(setup.index()).expect("few loops");
            setup.on_connection(move |_: Token, _: &mut Context<'_, usize>| {
                Stream::new(Lines::new(1024), Told(me))
            });
            Ok(0)
        })
}

/// Opens [`CONNECTIONS`] connections in waves and returns how many each
/// loop served, as the clients were told. Each wave starts when the
/// loops have seen the last one's closes: the hand-off balances open
/// connections, so a loop slow to see its closes would otherwise get
/// fewer of the next wave (rightly, but this counts connections given).
#[track_caller]
fn spread_over(server: &Server<usize, ()>) -> Vec<usize> {
    let addr = server.local_addr().expect("listening");
    let mut served = vec![0; server.count()];
    for _ in 0..CONNECTIONS / WAVE {
        let mut wave: Vec<TcpStream> = (0..WAVE).map(|_| connect(addr)).collect();
        for conn in &mut wave {
            let mut loop_index = [0];
            conn.read_exact(&mut loop_index).unwrap();
            served[usize::from(loop_index[0])] += 1;
        }
        drop(wave);
        let deadline = Instant::now() + LIMIT;
        while server.open().iter().any(|&n| n > 0) {
            assert!(
                Instant::now() < deadline,
                "closes unseen: {:?}",
                server.open()
            );
            std::thread::yield_now();
        }
    }
    served
}

/// With `SO_REUSEPORT`, the kernel gives every loop some of the
/// connections.
#[cfg(any(target_os = "linux", target_os = "android"))]
#[test]
fn reuse_port_gives_every_loop_some_of_1000_connections() {
    let server = told_server(4, Spread::ReusePort).unwrap();
    let served = spread_over(&server);
    println!("SO_REUSEPORT, 4 loops, {CONNECTIONS} connections: {served:?}");
    assert_eq!(served.iter().sum::<usize>(), CONNECTIONS);
    assert!(served.iter().all(|&n| n > 0), "a loop got none: {served:?}");
    let accepted: Vec<usize> = server.accepted().iter().map(|&n| n as usize).collect();
    assert_eq!(accepted, served, "the server's counts agree");
    server.stop(LIMIT);
    assert_eq!(server.join().unwrap(), served, "each loop's own count");
}

/// `Spread::ReusePort` off Linux is refused with a clear error.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
#[test]
fn reuse_port_off_linux_is_unsupported() {
    let e = told_server(2, Spread::ReusePort).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
}

/// The hand-off gives each connection to the least-loaded loop: the
/// busiest has at most 1.2 times the connections of the idlest.
#[test]
fn hand_off_spreads_1000_connections_evenly() {
    let server = told_server(4, Spread::HandOff).unwrap();
    let served = spread_over(&server);
    println!("hand-off, 4 loops, {CONNECTIONS} connections: {served:?}");
    assert_eq!(served.iter().sum::<usize>(), CONNECTIONS);
    let (max, min) = (served.iter().max().unwrap(), served.iter().min().unwrap());
    assert!(*min > 0 && *max * 10 <= *min * 12, "uneven: {served:?}");
    server.stop(LIMIT);
    assert_eq!(server.join().unwrap(), served);
}

/// A chat split over loops: each loop keeps its own members; a line goes
/// to the loop's other members directly and, as a message, to every other
/// loop, which gives it to its members.
mod chat {
    use super::*;

    /// One loop's state.
    pub(super) struct Room {
        pub(super) me: usize,
        pub(super) others: Vec<Handle<Vec<u8>>>,
        pub(super) members: Vec<Token>,
        /// Lines received from other loops.
        pub(super) crossed: usize,
    }

    /// Writes `line` to every member of this loop but `except`.
    fn deliver(
        room: &Room,
        sockets: &mut sockmux::Registry<'_, Room>,
        line: &[u8],
        except: Option<Token>,
    ) {
        for &t in room.members.iter().filter(|&&t| Some(t) != except) {
            // Short lines to idle test clients: the socket takes them whole.
            let _ = sockets.write(t, line);
        }
    }

    pub(super) struct Member;

    impl Protocol<Room> for Member {
        fn opened(&mut self, io: &mut StreamIo<'_, '_, Room>) {
            let t = io.token();
            io.cx.state.members.push(t);
            io.write(format!("loop {}\n", io.cx.state.me).as_bytes());
        }

        fn frame(&mut self, line: &[u8], io: &mut StreamIo<'_, '_, Room>) {
            let mut line = line.to_vec();
            line.push(b'\n');
            let from = io.token();
            deliver(io.cx.state, &mut io.cx.sockets, &line, Some(from));
            for other in &io.cx.state.others {
                other.send(line.clone()).unwrap();
            }
        }

        fn closed(&mut self, _: sockmux::CloseReason, _: usize, cx: &mut Context<'_, Room>) {
            let t = cx.token;
            cx.state.members.retain(|&m| m != t);
        }
    }

    pub(super) fn server(count: usize) -> io::Result<Server<Room, Vec<u8>>> {
        Loops::new(count)
            .messages::<Vec<u8>>()
            .spread(Spread::HandOff)
            .serve("127.0.0.1:0", |setup| {
                let me = setup.index();
                let others = setup
                    .handles()
                    .iter()
                    .filter(|h| h.index() != me)
                    .cloned()
                    .collect();
                setup.on_connection(|_: Token, _: &mut Context<'_, Room>| {
                    Stream::new(Lines::new(1024), Member)
                });
                setup.on_message(|line: Vec<u8>, room: &mut Room, sockets| {
                    room.crossed += 1;
                    deliver(room, sockets, &line, None);
                });
                Ok(Room {
                    me,
                    others,
                    members: Vec::new(),
                    crossed: 0,
                })
            })
    }
}

/// The line a member reads next.
#[track_caller]
fn line_of(reader: &mut BufReader<TcpStream>) -> String {
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    line
}

#[test]
fn a_chat_line_crosses_loops() {
    let server = chat::server(2).unwrap();
    let addr = server.local_addr().unwrap();
    let mut alice = BufReader::new(connect(addr));
    let alice_loop = line_of(&mut alice);
    let mut bob = BufReader::new(connect(addr));
    let bob_loop = line_of(&mut bob);
    assert_ne!(alice_loop, bob_loop, "the hand-off put them on two loops");

    alice.get_mut().write_all(b"hello from alice\n").unwrap();
    assert_eq!(line_of(&mut bob), "hello from alice\n");
    bob.get_mut().write_all(b"and bob\n").unwrap();
    assert_eq!(line_of(&mut alice), "and bob\n");

    server.stop(LIMIT);
    let rooms = server.join().unwrap();
    assert_eq!(rooms.iter().map(|r| r.crossed).sum::<usize>(), 2);
    assert!(rooms.iter().all(|r| r.members.is_empty()), "all closed");
}

/// Bytes each connection is given at once, more than the socket buffers
/// take: most of it waits in the stream's queue when the stop comes.
const QUEUED: usize = 8 << 20;

/// Writes [`QUEUED`] bytes of a pattern on opening; counts the bytes the
/// socket took when the stream closes.
struct Flood;

impl Protocol<usize> for Flood {
    fn opened(&mut self, io: &mut StreamIo<'_, '_, usize>) {
        let bytes: Vec<u8> = (0..QUEUED).map(|i| (i % 251) as u8).collect();
        io.write(&bytes);
    }

    fn frame(&mut self, _: &[u8], _: &mut StreamIo<'_, '_, usize>) {}

    fn closed(&mut self, _: sockmux::CloseReason, unsent: usize, cx: &mut Context<'_, usize>) {
        *cx.state += QUEUED - unsent;
    }
}

/// A graceful stop of every loop flushes every connection's queue before
/// closing it: each client reads all its bytes, then the end.
#[test]
fn a_graceful_stop_of_all_loops_flushes_everything() {
    let server = Loops::new(2)
        .spread(Spread::HandOff)
        .serve("127.0.0.1:0", |setup: &mut Setup<'_, usize, ()>| {
            setup.on_connection(|_: Token, _: &mut Context<'_, usize>| Stream::new(Raw, Flood));
            Ok(0)
        })
        .unwrap();
    let addr = server.local_addr().unwrap();
    let mut clients: Vec<TcpStream> = (0..4).map(|_| connect(addr)).collect();
    // Every connection has begun: its first byte is here.
    for client in &mut clients {
        let mut first = [0];
        client.read_exact(&mut first).unwrap();
        assert_eq!(first, [0]);
    }
    assert_eq!(server.open(), [2, 2]);
    server.stop(LIMIT);
    let readers: Vec<_> = clients
        .into_iter()
        .map(|mut client| {
            std::thread::spawn(move || {
                let mut rest = Vec::new();
                client.read_to_end(&mut rest).unwrap();
                rest
            })
        })
        .collect();
    for reader in readers {
        let rest = reader.join().unwrap();
        assert_eq!(rest.len(), QUEUED - 1, "every byte, then the end");
        assert!(rest
            .iter()
            .enumerate()
            .all(|(i, &b)| b == ((i + 1) % 251) as u8));
    }
    let sent = server.join().unwrap();
    assert_eq!(sent, [2 * QUEUED, 2 * QUEUED], "nothing left unsent");
}

/// A handler that panics in one loop closes its own connection; the other
/// loop's connections, and new ones on both loops, are served.
#[test]
fn a_panic_in_one_loops_handler_leaves_the_others_serving() {
    let server = told_server(2, Spread::HandOff).unwrap();
    let addr = server.local_addr().unwrap();
    let mut a = BufReader::new(connect(addr));
    let mut b = BufReader::new(connect(addr));
    let (mut la, mut lb) = ([0], [0]);
    a.read_exact(&mut la).unwrap();
    b.read_exact(&mut lb).unwrap();
    assert_ne!(la, lb, "two loops");

    a.get_mut().write_all(b"panic\n").unwrap();
    let mut rest = Vec::new();
    a.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "closed after the panic: {rest:?}");

    b.get_mut().write_all(b"still here\n").unwrap();
    assert_eq!(line_of(&mut b), "still here\n");
    // The panicking loop serves new connections too.
    for _ in 0..2 {
        let mut c = BufReader::new(connect(addr));
        c.read_exact(&mut [0]).unwrap();
        c.get_mut().write_all(b"new\n").unwrap();
        assert_eq!(line_of(&mut c), "new\n");
    }
    server.stop(LIMIT);
    assert_eq!(server.join().unwrap().iter().sum::<usize>(), 4);
}

/// A panicking message handler is logged; the loop takes the next message.
#[test]
fn a_panic_in_a_message_handler_leaves_the_loop_running() {
    let server = Loops::new(2)
        .messages::<u32>()
        .start(|setup| {
            setup.on_message(|n: u32, seen: &mut Vec<u32>, _| {
                assert_ne!(n, 0, "told to panic");
                seen.push(n);
            });
            Ok(Vec::new())
        })
        .unwrap();
    for n in [1, 0, 2] {
        server.handles()[1].send(n).unwrap();
    }
    server.handles()[0].send(3).unwrap();
    // The stop is mail too: it comes after the messages sent before it.
    server.stop(LIMIT);
    assert_eq!(server.join().unwrap(), [vec![3], vec![1, 2]]);
}

/// A graceful stop begun by a handler in one loop stops them all.
#[test]
fn a_stop_begun_in_one_loop_stops_every_loop() {
    let server = Loops::new(3)
        .serve("127.0.0.1:0", |setup: &mut Setup<'_, (), ()>| {
            setup.on_connection(|t: Token, cx: &mut Context<'_, ()>| {
                let _ = cx.sockets.set_interest(t, sockmux::Interest::WRITABLE);
                |_: Event, cx: &mut Context<'_, ()>| {
                    cx.stop_gracefully(Duration::from_secs(1));
                    Action::Close
                }
            });
            Ok(())
        })
        .unwrap();
    let mut conn = connect(server.local_addr().unwrap());
    assert_eq!(conn.read(&mut [0; 8]).unwrap(), 0, "closed");
    assert_eq!(server.join().unwrap().len(), 3);
}

/// A failing setup fails the start, with the loop's index; every loop is
/// stopped.
#[test]
fn a_failing_setup_fails_the_start() {
    let e = Loops::new(3)
        .start(|setup: &mut Setup<'_, (), ()>| match setup.index() {
            2 => Err(io::Error::new(ErrorKind::AddrInUse, "taken")),
            _ => Ok(()),
        })
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AddrInUse);
    assert_eq!(e.to_string(), "loop 2: taken");

    let e = Loops::new(2)
        .start(|setup: &mut Setup<'_, (), ()>| {
            assert!(setup.index() != 1, "panics");
            Ok(())
        })
        .unwrap_err();
    assert!(e.to_string().starts_with("loop 1: setup panicked"), "{e}");
}

/// `serve` needs `on_connection` in every loop's setup.
#[test]
fn serve_without_on_connection_is_invalid_input() {
    let e = Loops::new(2)
        .spread(Spread::HandOff)
        .serve("127.0.0.1:0", |_: &mut Setup<'_, (), ()>| Ok(()))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
}

/// A message sent to a loop that has ended is refused, not lost silently.
#[test]
fn sending_to_an_ended_loop_is_broken_pipe() {
    let server = Loops::new(1).messages::<u8>().start(|_| Ok(())).unwrap();
    let handle = server.handles()[0].clone();
    server.stop(Duration::ZERO);
    server.join().unwrap();
    assert_eq!(handle.send(1).unwrap_err().kind(), ErrorKind::BrokenPipe);
}
