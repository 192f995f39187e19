//! The socket table against rows 6, 7, 12, 13, 14 and 16 of
//! docs/reliability.md (row 9 is tested on both platforms in
//! `tests/windows_diffs.rs`; row 17 has its own binary: `tests/eintr.rs`),
//! plus the event order for one OS event, stale tokens with a one-event
//! buffer, and interest changes.

mod util;

use std::cell::Cell;
use std::io::{ErrorKind, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::rc::Rc;
use std::time::Duration;

use sockmux::{Event, Events, Interest, Mode, Sockets, Token};
use util::{
    accept_one, events_during, freed_tcp_addr, pattern, poll_until, recv_to_would_block, reset,
    LIMIT, QUIET,
};

/// A listener in the table and a connected pair: (listener, server side in
/// the table, client side as a blocking std stream).
fn tcp_pair<D: Default>(
    sockets: &mut Sockets<D>,
    events: &mut Events,
) -> (Token, Token, TcpStream) {
    let listener = sockets.listen_tcp("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(sockets.local_addr(listener).unwrap()).unwrap();
    let conn = accept_one(sockets, events, listener);
    (listener, conn, client)
}

// ---------------------------------------------------------------------------
// Row 6: readiness not drained.

/// Level mode re-raises `Read` until `WouldBlock`: a server that reads and
/// writes one small chunk per event still echoes 1 MiB sent in one write.
#[test]
fn row06_readiness_not_drained_one_mib_echoed_one_chunk_per_event() {
    let mut sockets = Sockets::new().unwrap();
    let mut events = Events::with_capacity(16);
    let (_listener, conn, mut client) = tcp_pair(&mut sockets, &mut events);
    let data = pattern(1 << 20, 6);
    let sent = data.clone();
    let peer = std::thread::spawn(move || {
        client.write_all(&sent).unwrap();
        let mut back = vec![0; sent.len()];
        client.read_exact(&mut back).unwrap();
        back
    });

    let mut pending: Vec<u8> = Vec::new();
    let mut echoed = 0;
    let mut buf = [0u8; 4096];
    poll_until(&mut sockets, &mut events, LIMIT, |s, e| {
        match e {
            Event::Read(t) if t == conn => match s.read(t, &mut buf) {
                Ok(0) => panic!("early end of stream"),
                Ok(n) => {
                    pending.extend_from_slice(&buf[..n]);
                    s.set_interest(t, Interest::BOTH).unwrap();
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => panic!("read: {e}"),
            },
            Event::Write(t) if t == conn => {
                let chunk = pending.len().min(4096);
                match s.write(t, &pending[..chunk]) {
                    Ok(n) => {
                        pending.drain(..n);
                        echoed += n;
                        if pending.is_empty() {
                            s.set_interest(t, Interest::READABLE).unwrap();
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    Err(e) => panic!("write: {e}"),
                }
            }
            _ => {}
        }
        echoed == data.len()
    });
    assert_eq!(peer.join().unwrap(), data);
}

/// 200 datagrams sent in a burst, one `recv` per `Read`: all 200 counted.
#[test]
fn row06_readiness_not_drained_200_datagram_burst_all_counted() {
    let mut sockets = Sockets::new().unwrap();
    let mut events = Events::with_capacity(16);
    let server = sockets.bind_udp("127.0.0.1:0").unwrap();
    let addr = sockets.local_addr(server).unwrap();
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..200u32 {
        sender.send_to(&i.to_be_bytes(), addr).unwrap();
    }
    let mut seen = Vec::new();
    let mut buf = [0u8; 64];
    poll_until(&mut sockets, &mut events, LIMIT, |s, e| {
        if e == Event::Read(server) {
            match s.recv(server, &mut buf) {
                Ok(n) => seen.push(u32::from_be_bytes(buf[..n].try_into().unwrap())),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => panic!("recv: {e}"),
            }
        }
        seen.len() == 200
    });
    assert_eq!(seen, (0..200).collect::<Vec<_>>());
}

/// 50 connections made at once, one `accept` per `Read`: all 50 accepted.
#[test]
fn row06_readiness_not_drained_50_connects_50_accepts() {
    let mut sockets = Sockets::new().unwrap();
    let mut events = Events::with_capacity(16);
    let listener = sockets.listen_tcp("127.0.0.1:0").unwrap();
    let addr = sockets.local_addr(listener).unwrap();
    let clients: Vec<TcpStream> = (0..50).map(|_| TcpStream::connect(addr).unwrap()).collect();
    let mut accepted = Vec::new();
    poll_until(&mut sockets, &mut events, LIMIT, |s, e| {
        if e == Event::Read(listener) {
            match s.accept(listener) {
                Ok(t) => accepted.push(t),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => panic!("accept: {e}"),
            }
        }
        accepted.len() == 50
    });
    let peers: std::collections::HashSet<SocketAddr> = accepted
        .iter()
        .map(|&t| sockets.peer_addr(t).unwrap())
        .collect();
    let locals: std::collections::HashSet<SocketAddr> =
        clients.iter().map(|c| c.local_addr().unwrap()).collect();
    assert_eq!(peers, locals);
}

/// Edge mode is raw mio: one event per OS report, so a socket that is not
/// drained is not reported again until something new arrives.
// Not on Windows: mio there re-arms a socket only after an operation
// answered WouldBlock, so a socket that was not drained raises no edge for
// new data. tests/windows_diffs.rs tests that difference and the edge-mode
// contract that holds on both.
#[test]
#[cfg_attr(windows, ignore = "mio on Windows re-arms only after WouldBlock")]
fn row06_edge_mode_reports_once_until_new_data() {
    let mut sockets = Sockets::new().unwrap();
    let mut events = Events::with_capacity(16);
    let server = sockets.bind_udp("127.0.0.1:0").unwrap();
    sockets.set_mode(server, Mode::Edge).unwrap();
    let addr = sockets.local_addr(server).unwrap();
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    sender.send_to(b"a", addr).unwrap();
    sender.send_to(b"b", addr).unwrap();
    let mut buf = [0u8; 8];
    poll_until(&mut sockets, &mut events, LIMIT, |_, e| {
        e == Event::Read(server)
    });
    assert_eq!(sockets.recv(server, &mut buf).unwrap(), 1); // one of two
    let later = events_during(&mut sockets, &mut events, QUIET);
    assert!(
        !later.contains(&Event::Read(server)),
        "edge mode re-raised: {later:?}"
    );
    // New data is a new edge; draining to WouldBlock then finds both.
    sender.send_to(b"c", addr).unwrap();
    poll_until(&mut sockets, &mut events, LIMIT, |_, e| {
        e == Event::Read(server)
    });
    let mut got = Vec::new();
    recv_to_would_block(
        &mut buf,
        |b| sockets.recv(server, b),
        |d| got.extend_from_slice(d),
    );
    assert_eq!(got, b"bc");
}

// ---------------------------------------------------------------------------
// Row 7: zero-length datagram.

#[test]
fn row07_zero_length_datagram_is_a_datagram_not_eof() {
    let mut sockets = Sockets::new().unwrap();
    let mut events = Events::with_capacity(16);
    let server = sockets.bind_udp("127.0.0.1:0").unwrap();
    let addr = sockets.local_addr(server).unwrap();
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    sender.send_to(&[], addr).unwrap();
    sender.send_to(b"after", addr).unwrap();
    let mut got: Vec<(usize, SocketAddr)> = Vec::new();
    let mut buf = [0u8; 64];
    poll_until(&mut sockets, &mut events, LIMIT, |s, e| {
        if e == Event::Read(server) {
            match s.recv_from(server, &mut buf) {
                Ok(r) => got.push(r),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => panic!("recv_from: {e}"),
            }
        }
        got.len() == 2
    });
    let from = sender.local_addr().unwrap();
    assert_eq!(got, vec![(0, from), (5, from)]);
    assert!(
        sockets.contains(server),
        "a 0-byte datagram must not close the socket"
    );
}

// ---------------------------------------------------------------------------
// Row 12: connect to a closed port.

#[test]
fn row12_connect_to_closed_port_is_one_error_and_queued_writes_fail() {
    let mut sockets = Sockets::new().unwrap();
    let mut events = Events::with_capacity(16);
    let conn = sockets.connect_tcp(freed_tcp_addr()).unwrap();
    // A write queued before the connect completes never counts as sent.
    let early = sockets.write(conn, b"queued");
    assert!(
        early.is_err(),
        "a write before the connect completed succeeded: {early:?}"
    );

    let mut seen = Vec::new();
    poll_until(&mut sockets, &mut events, LIMIT, |_, e| {
        seen.push(e);
        e == Event::Error(conn)
    });
    assert!(
        !seen.contains(&Event::Write(conn)),
        "a failed connect must not look connected: {seen:?}"
    );
    let err = sockets.take_error(conn).unwrap().expect("a stored error");
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err}");
    let write = sockets.write(conn, b"after");
    assert!(
        write.is_err(),
        "a write after the refusal succeeded: {write:?}"
    );
    let later = events_during(&mut sockets, &mut events, QUIET);
    assert!(
        !later.contains(&Event::Error(conn)),
        "the error surfaces once: {later:?}"
    );
    sockets.remove(conn).unwrap();
}

// ---------------------------------------------------------------------------
// Row 13: a handler removes its own socket.

/// Counts drops of the per-socket data.
#[derive(Default)]
struct DropCount(Option<Rc<Cell<u32>>>);

impl Drop for DropCount {
    fn drop(&mut self) {
        if let Some(count) = &self.0 {
            count.set(count.get() + 1);
        }
    }
}

#[test]
fn row13_handler_removes_its_own_socket_mid_batch() {
    let mut sockets: Sockets<DropCount> = Sockets::with_capacity(8).unwrap();
    let mut events = Events::with_capacity(16);
    let (_listener, conn, mut client) = tcp_pair(&mut sockets, &mut events);
    let drops = Rc::new(Cell::new(0));
    *sockets.data_mut(conn).unwrap() = DropCount(Some(drops.clone()));
    sockets.set_interest(conn, Interest::BOTH).unwrap();
    client.write_all(b"bye").unwrap();

    // Wait for a batch holding both Read and Write for the connection.
    let deadline = std::time::Instant::now() + LIMIT;
    loop {
        assert!(
            std::time::Instant::now() < deadline,
            "no batch with Read and Write"
        );
        sockets.poll(&mut events, Some(LIMIT)).unwrap();
        let batch: Vec<Event> = events.iter().collect();
        if batch.contains(&Event::Read(conn)) && batch.contains(&Event::Write(conn)) {
            break;
        }
    }
    let mut after_remove = Vec::new();
    let mut removed = false;
    for event in &events {
        if event.token() != Some(conn) {
            continue;
        }
        if removed {
            // The Write still in this batch names a stale token: every call
            // with it is refused, so it can reach no socket.
            after_remove.push(event);
            let err = sockets.write(conn, b"x").unwrap_err();
            assert_eq!(err.kind(), ErrorKind::NotFound);
            assert!(!sockets.contains(conn));
        } else if event == Event::Read(conn) {
            let (socket, data) = sockets.remove(conn).unwrap();
            drop((socket, data));
            removed = true;
            assert_eq!(drops.get(), 1);
        }
    }
    assert_eq!(after_remove, vec![Event::Write(conn)]);
    let later = events_during(&mut sockets, &mut events, QUIET);
    assert!(later.iter().all(|e| e.token() != Some(conn)), "{later:?}");
    // The peer sees the close.
    let mut rest = Vec::new();
    client.set_read_timeout(Some(LIMIT)).unwrap();
    let _ = client.read_to_end(&mut rest);
    drop(sockets);
    assert_eq!(drops.get(), 1, "the data is dropped exactly once");
}

// ---------------------------------------------------------------------------
// Row 14: remove another socket with a pending event (ABA).

/// A and B are readable in one batch. The handler of `first` removes
/// `second` and registers C, which reuses the freed key. C must never see an
/// event of the removed socket, whatever the order and the buffer size.
fn aba(first_is_a: bool, capacity: usize) {
    let mut sockets = Sockets::new().unwrap();
    let mut events = Events::with_capacity(capacity);
    let a = sockets.bind_udp("127.0.0.1:0").unwrap();
    let b = sockets.bind_udp("127.0.0.1:0").unwrap();
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    sender
        .send_to(b"to a", sockets.local_addr(a).unwrap())
        .unwrap();
    sender
        .send_to(b"to b", sockets.local_addr(b).unwrap())
        .unwrap();
    let (first, second) = if first_is_a { (a, b) } else { (b, a) };

    // Wait until one of them is reported; with a big buffer, wait until
    // both are in one batch.
    let deadline = std::time::Instant::now() + LIMIT;
    let c = 'found: loop {
        assert!(
            std::time::Instant::now() < deadline,
            "A and B never both readable"
        );
        sockets.poll(&mut events, Some(LIMIT)).unwrap();
        let batch: Vec<Event> = events.iter().collect();
        let both = batch.contains(&Event::Read(a)) && batch.contains(&Event::Read(b));
        let first_seen = batch.contains(&Event::Read(first));
        if (capacity == 1 && first_seen) || both {
            for event in batch {
                if event == Event::Read(first) {
                    sockets.remove(second).unwrap();
                    let c = sockets.bind_udp("127.0.0.1:0").unwrap();
                    assert_eq!(c.key(), second.key(), "the slab reuses the freed key");
                    assert_ne!(c, second);
                    // Anything later in this batch for `second` is stale.
                    break 'found c;
                }
            }
        }
        // With capacity 1 the other one may come first: drain it and retry.
        for event in &events {
            if let Event::Read(t) = event {
                if t != first {
                    let _ = sockets.recv(t, &mut [0; 16]);
                    let _ = sender.send_to(b"again", sockets.local_addr(t).unwrap());
                }
            }
        }
    };
    for event in &events {
        assert_ne!(
            event.token(),
            Some(c),
            "C got an event of B's in the same batch"
        );
        if event.token() == Some(second) {
            assert_eq!(
                sockets.recv(second, &mut [0; 16]).unwrap_err().kind(),
                ErrorKind::NotFound
            );
        }
    }
    // Later polls: `first` still has data; C has none and must see nothing,
    // and the stale socket's event kept in the table is dropped.
    let later = events_during(&mut sockets, &mut events, QUIET);
    assert!(
        later.iter().all(|e| e.token() != Some(c)),
        "C saw {later:?}"
    );
    assert!(
        later.iter().all(|e| e.token() != Some(second)),
        "stale {later:?}"
    );
    // C works as a socket of its own.
    sender
        .send_to(b"to c", sockets.local_addr(c).unwrap())
        .unwrap();
    let mut buf = [0u8; 16];
    let mut got = Vec::new();
    poll_until(&mut sockets, &mut events, LIMIT, |s, e| {
        if e == Event::Read(c) {
            if let Ok(n) = s.recv(c, &mut buf) {
                got.extend_from_slice(&buf[..n]);
            }
        }
        !got.is_empty()
    });
    assert_eq!(got, b"to c");
}

#[test]
fn row14_aba_a_removes_b_registers_c() {
    aba(true, 16);
}

#[test]
fn row14_aba_b_removes_a_registers_c() {
    aba(false, 16);
}

#[test]
fn row14_aba_with_an_event_buffer_of_one() {
    aba(true, 1);
    aba(false, 1);
}

/// Remove then add with a one-event buffer: the removed socket's readiness,
/// still queued in the table, never becomes an event of the new holder.
#[test]
fn stale_tokens_after_remove_then_add_with_buffer_of_one() {
    let mut sockets = Sockets::new().unwrap();
    let mut events = Events::with_capacity(1);
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    let socks: Vec<Token> = (0..4)
        .map(|_| sockets.bind_udp("127.0.0.1:0").unwrap())
        .collect();
    for &t in &socks {
        sender
            .send_to(b"x", sockets.local_addr(t).unwrap())
            .unwrap();
    }
    // One event per poll: the first one reported; the rest stay queued.
    poll_until(&mut sockets, &mut events, LIMIT, |_, e| {
        matches!(e, Event::Read(_))
    });
    assert_eq!(events.len(), 1);
    let reported = events.iter().next().unwrap().token().unwrap();
    let mut fresh = Vec::new();
    for &t in socks.iter().filter(|&&t| t != reported) {
        sockets.remove(t).unwrap();
        let new = sockets.bind_udp("127.0.0.1:0").unwrap();
        assert_eq!(new.key(), t.key());
        fresh.push(new);
    }
    for old in socks.iter().filter(|&&t| t != reported) {
        let err = sockets.local_addr(*old).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
        assert!(err.to_string().contains("stale"), "{err}");
    }
    let later = events_during(&mut sockets, &mut events, QUIET);
    for e in &later {
        let t = e.token().unwrap();
        assert!(
            !fresh.contains(&t),
            "a new socket got an old socket's event: {e:?}"
        );
        assert_eq!(t, reported, "{e:?}");
    }
}

// ---------------------------------------------------------------------------
// Row 16: spurious events.

/// The data is taken through a cloned handle after the OS reported it and
/// before the table polls: the `Read` comes, `recv` says `WouldBlock`, and
/// that is a no-op that re-arms the socket.
#[test]
fn row16_spurious_event_wouldblock_after_read_is_a_no_op() {
    let mut sockets = Sockets::new().unwrap();
    let mut events = Events::with_capacity(16);
    let std_socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    std_socket.set_nonblocking(true).unwrap();
    let clone = std_socket.try_clone().unwrap();
    let server = sockets.add(std_socket).unwrap();
    let addr = sockets.local_addr(server).unwrap();
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    // The table learns of the datagram while not interested, so it keeps
    // the readiness without reporting it (epoll itself re-checks readiness
    // before it reports, so the stale report has to be the table's own).
    sockets.set_interest(server, Interest::NONE).unwrap();
    sender.send_to(b"stolen", addr).unwrap();
    let quiet = events_during(&mut sockets, &mut events, QUIET);
    assert!(quiet.is_empty(), "{quiet:?}");
    // Drain through the clone (a nonblocking loop with a deadline: the
    // datagram is already on its way through loopback).
    let deadline = std::time::Instant::now() + LIMIT;
    let mut buf = [0u8; 16];
    loop {
        match clone.recv(&mut buf) {
            Ok(n) => {
                assert_eq!(&buf[..n], b"stolen");
                break;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                assert!(std::time::Instant::now() < deadline);
                std::thread::yield_now();
            }
            Err(e) => panic!("{e}"),
        }
    }
    sockets.set_interest(server, Interest::READABLE).unwrap();
    sockets.poll(&mut events, Some(Duration::ZERO)).unwrap();
    let seen: Vec<Event> = events.iter().collect();
    assert_eq!(
        seen,
        vec![Event::Read(server)],
        "the kept readiness is reported"
    );
    assert_eq!(
        sockets.recv(server, &mut buf).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
    let later = events_during(&mut sockets, &mut events, QUIET);
    assert!(later.is_empty(), "WouldBlock re-arms, no spin: {later:?}");
    // And the socket still works.
    sender.send_to(b"real", addr).unwrap();
    let mut got = 0;
    poll_until(&mut sockets, &mut events, LIMIT, |s, e| {
        if e == Event::Read(server) {
            got = s.recv(server, &mut buf).unwrap();
        }
        got > 0
    });
    assert_eq!(&buf[..got], b"real");
}

// ---------------------------------------------------------------------------
// Event order for one OS event (and row 1 at the table level).

/// Data then a reset arrive before the poll, so one OS event carries
/// readable and error: the table raises `Read` first, the bytes are read,
/// then the reset.
// Not on Windows: IOCP completes the pending poll as soon as the data
// arrives, so the reset comes in a second report and `Read` is raised
// before it twice. tests/windows_diffs.rs tests the order that holds on
// both platforms.
#[test]
#[cfg_attr(windows, ignore = "IOCP reports data and reset separately")]
fn event_order_read_write_error_for_one_os_event() {
    let mut sockets = Sockets::new().unwrap();
    let mut events = Events::with_capacity(16);
    let (_listener, conn, client) = tcp_pair(&mut sockets, &mut events);
    sockets.set_interest(conn, Interest::BOTH).unwrap();
    // Let the new connection's writability be reported and consumed first.
    let _ = events_during(&mut sockets, &mut events, Duration::from_millis(20));
    (&client).write_all(b"last words").unwrap();
    reset(client);
    let mut batch = Vec::new();
    poll_until(&mut sockets, &mut events, LIMIT, |_, e| {
        if e.token() == Some(conn) {
            batch.push(e);
        }
        e == Event::Error(conn)
    });
    let mine: Vec<Event> = batch
        .iter()
        .copied()
        .skip_while(|e| *e != Event::Read(conn))
        .collect();
    assert_eq!(
        mine,
        vec![Event::Read(conn), Event::Write(conn), Event::Error(conn)],
        "all events: {batch:?}"
    );
    let mut buf = [0u8; 64];
    let n = sockets.read(conn, &mut buf).unwrap();
    assert_eq!(
        &buf[..n],
        b"last words",
        "bytes before the reset come first"
    );
    let err = match sockets.take_error(conn).unwrap() {
        Some(e) => e,
        None => sockets.read(conn, &mut buf).unwrap_err(),
    };
    assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}");
    sockets.remove(conn).unwrap();
}

// ---------------------------------------------------------------------------
// Interest changes.

#[test]
fn interest_changes_take_effect_at_the_next_poll() {
    let mut sockets = Sockets::new().unwrap();
    let mut events = Events::with_capacity(16);
    let server = sockets.bind_udp("127.0.0.1:0").unwrap();
    let addr = sockets.local_addr(server).unwrap();
    assert_eq!(sockets.interest(server).unwrap(), Interest::READABLE);

    // Not interested: readiness is kept but not reported.
    sockets.set_interest(server, Interest::NONE).unwrap();
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .send_to(b"x", addr)
        .unwrap();
    let quiet = events_during(&mut sockets, &mut events, QUIET);
    assert!(quiet.is_empty(), "{quiet:?}");

    // Interested again: the kept readiness is reported at once.
    sockets.set_interest(server, Interest::READABLE).unwrap();
    sockets.poll(&mut events, Some(Duration::ZERO)).unwrap();
    assert_eq!(events.iter().collect::<Vec<_>>(), vec![Event::Read(server)]);

    // Writable: raised on every poll while interested (level), not after.
    sockets
        .set_interest(server, Interest::READABLE.add(Interest::WRITABLE))
        .unwrap();
    for _ in 0..3 {
        sockets.poll(&mut events, Some(LIMIT)).unwrap();
        let got: Vec<Event> = events.iter().collect();
        assert_eq!(got, vec![Event::Read(server), Event::Write(server)]);
    }
    sockets
        .set_interest(server, Interest::BOTH.remove(Interest::WRITABLE))
        .unwrap();
    sockets.recv(server, &mut [0; 8]).unwrap();
    // A datagram read does not prove the queue is empty: read to WouldBlock.
    let err = sockets.recv(server, &mut [0; 8]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WouldBlock);
    let quiet = events_during(&mut sockets, &mut events, QUIET);
    assert!(quiet.is_empty(), "{quiet:?}");
    assert!(sockets.interest(server).unwrap().is_readable());
    assert!(!sockets.interest(server).unwrap().is_writable());

    // Stale tokens are refused by set_interest too.
    sockets.remove(server).unwrap();
    let err = sockets
        .set_interest(server, Interest::READABLE)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
}
