//! Every socket kind through the table, IPv6 loopback, poll timeouts, and
//! clear errors for stale tokens and wrong-kind calls.

mod util;

use std::io::{ErrorKind, Read as _, Write as _};
use std::net::{TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use sockmux::{Event, Events, Interest, Sockets};
use util::{accept_one, events_during, poll_until, read_to_would_block, LIMIT, QUIET};

#[test]
fn poll_with_a_timeout_returns_after_it_and_none_blocks_until_woken() {
    let mut sockets = Sockets::new().unwrap();
    let mut events = Events::with_capacity(8);
    let wait = Duration::from_millis(100);
    let start = Instant::now();
    assert_eq!(sockets.poll(&mut events, Some(wait)).unwrap(), 0);
    let took = start.elapsed();
    assert!(took >= wait, "returned early: {took:?}");
    // A bound for a hang, not a speed: how late it returns is the machine's.
    assert!(took < LIMIT, "returned after {took:?}");

    // None: blocks until something happens (here a wake from a thread that
    // first waits for a while).
    let waker = sockets.waker().unwrap();
    let delay = Duration::from_millis(50);
    let start = Instant::now();
    let thread = std::thread::spawn(move || {
        std::thread::sleep(delay);
        waker.wake().unwrap();
    });
    assert_eq!(sockets.poll(&mut events, None).unwrap(), 1);
    assert_eq!(events.iter().collect::<Vec<_>>(), vec![Event::Wake]);
    assert!(start.elapsed() >= delay);
    thread.join().unwrap();
}

#[test]
fn ipv6_loopback_tcp_and_udp() {
    let mut sockets = Sockets::new().unwrap();
    let mut events = Events::with_capacity(8);
    let Ok(udp) = sockets.bind_udp("[::1]:0") else {
        eprintln!("skipped: no IPv6 loopback on this machine");
        return;
    };
    let peer = UdpSocket::bind("[::1]:0").unwrap();
    peer.send_to(b"v6", sockets.local_addr(udp).unwrap())
        .unwrap();
    let mut got = 0;
    let mut buf = [0u8; 8];
    poll_until(&mut sockets, &mut events, LIMIT, |s, e| {
        if e == Event::Read(udp) {
            got = s.recv_from(udp, &mut buf).unwrap().0;
        }
        got > 0
    });
    assert_eq!(&buf[..got], b"v6");

    let listener = sockets.listen_tcp("[::1]:0").unwrap();
    let conn = sockets
        .connect_tcp(sockets.local_addr(listener).unwrap())
        .unwrap();
    let mut accepted = None;
    let mut connected = false;
    poll_until(&mut sockets, &mut events, LIMIT, |s, e| {
        match e {
            Event::Read(t) if t == listener => accepted = s.accept(t).ok().or(accepted),
            Event::Write(t) if t == conn => connected = true,
            Event::Error(t) => panic!("{t}: {:?}", s.take_error(t)),
            _ => {}
        }
        connected && accepted.is_some()
    });
    assert!(sockets.peer_addr(conn).unwrap().is_ipv6());
}

#[test]
fn connect_tcp_completes_as_write_and_data_flows_both_ways() {
    let mut sockets = Sockets::new().unwrap();
    let mut events = Events::with_capacity(8);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let conn = sockets.connect_tcp(listener.local_addr().unwrap()).unwrap();
    assert_eq!(sockets.interest(conn).unwrap(), Interest::BOTH);
    let (mut server, _) = listener.accept().unwrap();
    poll_until(&mut sockets, &mut events, LIMIT, |_, e| {
        e == Event::Write(conn)
    });
    assert_eq!(sockets.write(conn, b"hello").unwrap(), 5);
    sockets.set_interest(conn, Interest::READABLE).unwrap();
    let mut buf = [0u8; 5];
    server.read_exact(&mut buf).unwrap();
    server.write_all(b"world").unwrap();
    drop(server);
    let mut got = Vec::new();
    poll_until(&mut sockets, &mut events, LIMIT, |s, e| {
        // Until the end of stream.
        e == Event::Read(conn)
            && read_to_would_block(
                &mut buf,
                |b| s.read(conn, b),
                |chunk| got.extend_from_slice(chunk),
            )
    });
    assert_eq!(got, b"world");
    // After the end of stream the table stops raising Read for it.
    let after = events_during(&mut sockets, &mut events, QUIET);
    assert!(!after.contains(&Event::Read(conn)), "{after:?}");
}

#[test]
fn stale_tokens_are_refused_by_every_call() {
    let mut sockets = Sockets::new().unwrap();
    let t = sockets.bind_udp("127.0.0.1:0").unwrap();
    sockets.remove(t).unwrap();
    let mut buf = [0u8; 4];
    let addr = "127.0.0.1:9".parse().unwrap();
    let results: Vec<(&str, std::io::Error)> = vec![
        ("remove", sockets.remove(t).map(|_| ()).unwrap_err()),
        ("socket", sockets.socket(t).map(|_| ()).unwrap_err()),
        ("data", sockets.data(t).map(|_| ()).unwrap_err()),
        ("data_mut", sockets.data_mut(t).map(|_| ()).unwrap_err()),
        ("local_addr", sockets.local_addr(t).map(|_| ()).unwrap_err()),
        ("peer_addr", sockets.peer_addr(t).map(|_| ()).unwrap_err()),
        ("interest", sockets.interest(t).map(|_| ()).unwrap_err()),
        (
            "set_interest",
            sockets.set_interest(t, Interest::BOTH).unwrap_err(),
        ),
        ("mode", sockets.mode(t).map(|_| ()).unwrap_err()),
        (
            "set_mode",
            sockets.set_mode(t, sockmux::Mode::Edge).unwrap_err(),
        ),
        ("take_error", sockets.take_error(t).map(|_| ()).unwrap_err()),
        ("recv", sockets.recv(t, &mut buf).map(|_| ()).unwrap_err()),
        ("send", sockets.send(t, b"x").map(|_| ()).unwrap_err()),
        (
            "recv_from",
            sockets.recv_from(t, &mut buf).map(|_| ()).unwrap_err(),
        ),
        (
            "send_to",
            sockets.send_to(t, b"x", addr).map(|_| ()).unwrap_err(),
        ),
        ("read", sockets.read(t, &mut buf).map(|_| ()).unwrap_err()),
        ("write", sockets.write(t, b"x").map(|_| ()).unwrap_err()),
        ("accept", sockets.accept(t).map(|_| ()).unwrap_err()),
    ];
    for (call, err) in results {
        assert_eq!(err.kind(), ErrorKind::NotFound, "{call}: {err}");
        assert!(err.to_string().contains("stale"), "{call}: {err}");
    }
    assert!(!sockets.contains(t));
    assert!(sockets.is_empty());
}

#[test]
fn wrong_kind_calls_are_clear_errors_and_lose_nothing() {
    let mut sockets = Sockets::new().unwrap();
    let mut events = Events::with_capacity(8);
    let udp = sockets.bind_udp("127.0.0.1:0").unwrap();
    let listener = sockets.listen_tcp("127.0.0.1:0").unwrap();
    let mut buf = [0u8; 8];
    for err in [
        sockets.read(udp, &mut buf).unwrap_err(),
        sockets.write(udp, b"x").unwrap_err(),
        sockets.accept(udp).unwrap_err(),
        sockets.recv(listener, &mut buf).unwrap_err(),
        sockets.send(listener, b"x").unwrap_err(),
    ] {
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        assert!(err.to_string().contains("needs"), "{err}");
    }
    // The sockets still work.
    let mut client = TcpStream::connect(sockets.local_addr(listener).unwrap()).unwrap();
    client.write_all(b"x").unwrap();
    accept_one(&mut sockets, &mut events, listener);
    assert_eq!(sockets.len(), 3);
}

#[cfg(unix)]
#[test]
fn unix_stream_listener_and_datagram_sockets() {
    use std::os::unix::net::{UnixDatagram, UnixStream};
    let dir = std::env::temp_dir().join(format!("sockmux-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("listener.sock");
    let _ = std::fs::remove_file(&path);
    let mut sockets = Sockets::new().unwrap();
    let mut events = Events::with_capacity(8);

    let listener = sockets
        .add(std::os::unix::net::UnixListener::bind(&path).unwrap())
        .unwrap();
    assert_eq!(sockets.socket(listener).unwrap().kind(), "Unix listener");
    let mut client = UnixStream::connect(&path).unwrap();
    client.write_all(b"over unix").unwrap();
    let mut conn = None;
    let mut got = Vec::new();
    let mut buf = [0u8; 64];
    poll_until(&mut sockets, &mut events, LIMIT, |s, e| {
        match e {
            Event::Read(t) if t == listener => conn = s.accept(t).ok().or(conn),
            Event::Read(t) if Some(t) == conn => {
                if let Ok(n) = s.read(t, &mut buf) {
                    got.extend_from_slice(&buf[..n]);
                }
            }
            _ => {}
        }
        got.len() == 9
    });
    assert_eq!(got, b"over unix");
    let conn = conn.unwrap();
    assert_eq!(sockets.write(conn, b"back").unwrap(), 4);
    let mut back = [0u8; 4];
    client.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"back");

    let (a, b) = UnixDatagram::pair().unwrap();
    let dgram = sockets.add(a).unwrap();
    b.send(b"").unwrap(); // a 0-byte datagram is a datagram
    b.send(b"dgram").unwrap();
    let mut sizes = Vec::new();
    poll_until(&mut sockets, &mut events, LIMIT, |s, e| {
        if e == Event::Read(dgram) {
            while let Ok(n) = s.recv(dgram, &mut buf) {
                sizes.push(n);
            }
        }
        sizes.len() == 2
    });
    assert_eq!(sizes, vec![0, 5]);
    assert_eq!(sockets.send(dgram, b"reply").unwrap(), 5);
    let n = b.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"reply");
    for t in [conn, listener, dgram] {
        sockets.remove(t).unwrap();
    }
    let _ = std::fs::remove_dir_all(&dir);
}
