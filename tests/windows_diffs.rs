//! Where Windows differs from Linux, and how the table makes the two agree
//! (docs/windows.md). Every test here runs on both platforms unless it says
//! why not; the Windows leg runs them for `x86_64-pc-windows-gnu` under wine
//! (ci/windows.sh).

mod util;

use std::io::{ErrorKind, Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use sockmux::{Event, Events, Mode, Sockets, Token};
use util::{
    accept_one, events_during, freed_udp_addr, poll_until, recv_to_would_block, reset, LIMIT, QUIET,
};

/// Whether this program runs under wine, whose sockets are Linux's
/// underneath: ntdll exports `wine_get_version` there and nowhere else.
#[cfg(windows)]
fn under_wine() -> bool {
    use std::ffi::c_void;
    #[link(name = "kernel32")]
    extern "system" {
        fn GetModuleHandleA(name: *const u8) -> *mut c_void;
        fn GetProcAddress(module: *mut c_void, name: *const u8) -> *mut c_void;
    }
    // SAFETY: both names are NUL-terminated; ntdll is loaded in every
    // process and is never unloaded.
    unsafe {
        let ntdll = GetModuleHandleA(c"ntdll.dll".as_ptr().cast());
        !ntdll.is_null() && !GetProcAddress(ntdll, c"wine_get_version".as_ptr().cast()).is_null()
    }
}

#[cfg(not(windows))]
fn under_wine() -> bool {
    false
}

/// Polls `limit`'s worth (or until `stop` says so), trying a receive on
/// `token` after every poll, as a client that reads whenever it likes does.
/// Returns every event seen. Any receive result but `WouldBlock` fails the
/// test: an ICMP report is never a receive's own error.
fn poll_and_recv(
    sockets: &mut Sockets,
    events: &mut Events,
    token: Token,
    limit: Duration,
    mut stop: impl FnMut(&[Event]) -> bool,
) -> Vec<Event> {
    let deadline = Instant::now() + limit;
    let mut seen = Vec::new();
    while Instant::now() < deadline && !stop(&seen) {
        sockets
            .poll(events, Some(Duration::from_millis(20)))
            .unwrap();
        seen.extend(events.iter());
        let r = sockets.recv(token, &mut [0; 64]);
        assert_eq!(
            r.as_ref().map_err(|e| e.kind()),
            Err(ErrorKind::WouldBlock),
            "recv: {r:?}"
        );
    }
    seen
}

fn errors(seen: &[Event], token: Token) -> usize {
    seen.iter().filter(|&&e| e == Event::Error(token)).count()
}

// ---------------------------------------------------------------------------
// ICMP port unreachable on UDP.

/// Row 9 of docs/reliability.md: a connected UDP client whose server is
/// gone, then back. The port unreachable is one `Error` whose `take_error`
/// says `ConnectionRefused`, no receive or send fails, the socket lives, and
/// the exchange with the new server works.
///
/// Where it surfaces differs: Linux reports it through the poll (and then
/// nothing else: the socket is not readable); Windows hands it to the next
/// receive or send (`WSAECONNRESET`), where the table takes it. Wine does
/// neither: it keeps the error as the socket's pending error (`SO_ERROR`),
/// where only `take_error` finds it, with no `Error`.
#[test]
fn row09_udp_port_unreachable_on_a_connected_socket_is_one_error_and_the_socket_lives() {
    let mut sockets = Sockets::new().unwrap();
    let mut events = Events::with_capacity(16);
    let dead = freed_udp_addr();
    let client = sockets.connect_udp(dead).unwrap();
    sockets.send(client, b"anyone?").unwrap();
    // The ICMP reply comes back on loopback while the client polls and
    // tries to receive: wait for its Error (wine raises none, so there the
    // window is all there is).
    let wait = if under_wine() { QUIET } else { LIMIT };
    let mut seen = poll_and_recv(&mut sockets, &mut events, client, wait, |seen| {
        errors(seen, client) > 0
    });
    // Nothing more comes while the port stays dead.
    seen.extend(poll_and_recv(
        &mut sockets,
        &mut events,
        client,
        QUIET,
        |_| false,
    ));
    if !cfg!(windows) {
        assert_eq!(seen, [Event::Error(client)], "not readable, one error");
    }

    // A server appears on the port: the next send must go through.
    let Ok(server) = UdpSocket::bind(dead) else {
        // Another process took the freed port meanwhile: the exchange
        // cannot be checked, the report can.
        let err = sockets.take_error(client).unwrap().expect("a stored error");
        assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err}");
        return;
    };
    server.set_read_timeout(Some(LIMIT)).unwrap();
    sockets.send(client, b"ping").unwrap();
    let mut buf = [0u8; 16];
    let (n, from) = server.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"ping", "the first datagram was dropped");
    server.send_to(b"pong", from).unwrap();
    let mut got = Vec::new();
    poll_until(&mut sockets, &mut events, LIMIT, |s, e| {
        seen.push(e);
        if e == Event::Read(client) {
            match s.recv(client, &mut buf) {
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => panic!("recv: {e}"),
            }
        }
        !got.is_empty()
    });
    assert_eq!(got, b"pong");
    seen.extend(events_during(&mut sockets, &mut events, QUIET));
    seen.retain(|&e| e != Event::Read(client)); // the pong, level-triggered

    let n = errors(&seen, client);
    if under_wine() {
        assert!(n <= 1, "{seen:?}");
    } else {
        assert_eq!(n, 1, "{seen:?}");
    }
    let err = sockets.take_error(client).unwrap().expect("a stored error");
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err}");
    if !under_wine() {
        // Taken once, it is gone (wine does not clear SO_ERROR on reading).
        assert!(sockets.take_error(client).unwrap().is_none());
    }
    assert!(sockets.contains(client));
}

/// tokio-rs/tokio#2017: a UDP server replies to a client that has gone
/// away, and Windows hands the ICMP reply to the server's next
/// `recv_from`, even though the socket is not connected. The server must
/// not die of it: the next client's datagram arrives, and the report is at
/// most one `Error` (exactly one on Windows; none on Linux, and none under
/// wine, whose sockets are Linux's and ignore ICMP on unconnected sockets).
#[test]
fn udp_server_survives_replying_to_a_client_that_went_away() {
    let mut sockets = Sockets::new().unwrap();
    let mut events = Events::with_capacity(16);
    let server = sockets.bind_udp("127.0.0.1:0").unwrap();
    let addr = sockets.local_addr(server).unwrap();
    sockets.send_to(server, b"reply", freed_udp_addr()).unwrap();
    // Give the ICMP reply time to come back before the next client.
    let mut seen = events_during(&mut sockets, &mut events, QUIET);

    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client.send_to(b"hello", addr).unwrap();
    let mut got = None;
    let mut buf = [0u8; 16];
    poll_until(&mut sockets, &mut events, LIMIT, |s, e| {
        seen.push(e);
        if e == Event::Read(server) {
            match s.recv_from(server, &mut buf) {
                Ok((n, from)) => got = Some((buf[..n].to_vec(), from)),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => panic!("recv_from must not fail: {e}"),
            }
        }
        got.is_some()
    });
    seen.extend(events_during(&mut sockets, &mut events, QUIET));
    assert_eq!(got, Some((b"hello".to_vec(), client.local_addr().unwrap())));
    let n = errors(&seen, server);
    assert!(n <= 1, "{seen:?}");
    if n == 1 {
        let err = sockets.take_error(server).unwrap().expect("a stored error");
        assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err}");
    }
    if cfg!(windows) && !under_wine() {
        assert_eq!(n, 1, "Windows reports the port unreachable: {seen:?}");
    }
    // And the server answers the live client.
    sockets
        .send_to(server, b"hi", client.local_addr().unwrap())
        .unwrap();
    client.set_read_timeout(Some(LIMIT)).unwrap();
    let n = client.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"hi");
}

/// Windows only, because Linux differs on purpose: there a send that finds
/// a pending ICMP error fails with it (Linux semantics are kept, and the
/// poll normally takes the error first), while Windows hands the report to
/// whichever receive or send comes next, so the table takes it there. A
/// burst of sends to a dead port all go through, and the reports make one
/// `Error` at the next poll.
#[cfg(windows)]
#[test]
fn udp_burst_to_a_dead_port_all_sends_go_through_on_windows() {
    let mut sockets = Sockets::new().unwrap();
    let mut events = Events::with_capacity(16);
    let client = sockets.connect_udp(freed_udp_addr()).unwrap();
    for i in 0..20 {
        let r = sockets.send(client, b"anyone?");
        assert_eq!(r.map_err(|e| e.to_string()), Ok(7), "send {i}");
    }
    let seen = events_during(&mut sockets, &mut events, QUIET);
    assert_eq!(errors(&seen, client), 1, "{seen:?}");
    let err = sockets.take_error(client).unwrap().expect("a stored error");
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err}");
    assert!(sockets.contains(client));
}

// ---------------------------------------------------------------------------
// Datagrams longer than the buffer.

/// Linux cuts such a datagram to fit, Windows fails with `WSAEMSGSIZE`; the
/// table fails with `InvalidData` on both, the buffer holds the first part,
/// the datagram is gone and the next receive gets the next one.
#[test]
fn oversize_datagram_is_invalid_data_on_every_platform() {
    let mut sockets = Sockets::new().unwrap();
    let mut events = Events::with_capacity(16);
    let server = sockets.bind_udp("127.0.0.1:0").unwrap();
    let addr = sockets.local_addr(server).unwrap();
    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    let big: Vec<u8> = (0..100).collect();
    peer.send_to(&big, addr).unwrap();
    peer.send_to(b"0123456789", addr).unwrap(); // exactly fits
    peer.send_to(b"end", addr).unwrap();

    let mut results = Vec::new();
    let mut buf = [0u8; 10];
    poll_until(&mut sockets, &mut events, LIMIT, |s, e| {
        if e == Event::Read(server) {
            match s.recv_from(server, &mut buf) {
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => results.push(Err((e.kind(), buf.to_vec()))),
                Ok((n, from)) => results.push(Ok((buf[..n].to_vec(), from))),
            }
        }
        results.len() == 3
    });
    let from = peer.local_addr().unwrap();
    assert_eq!(
        results,
        vec![
            Err((ErrorKind::InvalidData, big[..10].to_vec())),
            Ok((b"0123456789".to_vec(), from)),
            Ok((b"end".to_vec(), from)),
        ]
    );
}

/// The same through `recv` on a connected socket, whose `Read` keeps coming
/// after the error (the error is not `WouldBlock`, so readiness stays).
#[test]
fn oversize_datagram_on_a_connected_socket_then_the_next_one() {
    let mut sockets = Sockets::new().unwrap();
    let mut events = Events::with_capacity(16);
    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    let client = sockets.connect_udp(peer.local_addr().unwrap()).unwrap();
    let client_addr = sockets.local_addr(client).unwrap();
    peer.send_to(&[7; 2000], client_addr).unwrap();
    peer.send_to(b"small", client_addr).unwrap();
    let mut buf = [0u8; 1000];
    let mut results = Vec::new();
    poll_until(&mut sockets, &mut events, LIMIT, |s, e| {
        if e == Event::Read(client) {
            match s.recv(client, &mut buf) {
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                other => results.push(other.map_err(|e| e.kind())),
            }
        }
        results.len() == 2
    });
    assert_eq!(results, vec![Err(ErrorKind::InvalidData), Ok(5)]);
    assert_eq!(&buf[..5], b"small");
}

/// Unix datagram sockets follow the same rule as UDP. Unix only: the table
/// holds no Unix-domain sockets on Windows.
#[cfg(unix)]
#[test]
fn oversize_unix_datagram_is_invalid_data_too() {
    let mut sockets = Sockets::new().unwrap();
    let (a, b) = std::os::unix::net::UnixDatagram::pair().unwrap();
    let t = sockets.add(a).unwrap();
    b.send(&[1; 64]).unwrap();
    b.send(b"ok").unwrap();
    let mut buf = [0u8; 8];
    let err = sockets.recv(t, &mut buf).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidData, "{err}");
    assert_eq!(buf, [1; 8]);
    assert_eq!(sockets.recv(t, &mut buf).unwrap(), 2);
}

// ---------------------------------------------------------------------------
// Resets: Windows reports them as an abort with no error code.

/// Data then a reset from the peer: `Read` comes before the one `Error`, the
/// bytes are read first, then the reset is `ConnectionReset`. On Linux one
/// OS event carries both; on Windows they may come in two reports (IOCP
/// completes the pending poll on the data), so `Read` may come twice.
#[test]
fn reset_after_data_reads_the_data_then_one_error() {
    let mut sockets = Sockets::new().unwrap();
    let mut events = Events::with_capacity(16);
    let listener = sockets.listen_tcp("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(sockets.local_addr(listener).unwrap()).unwrap();
    let conn = accept_one(&mut sockets, &mut events, listener);
    (&client).write_all(b"last words").unwrap();
    reset(client);

    let mut seen = Vec::new();
    poll_until(&mut sockets, &mut events, LIMIT, |_, e| {
        seen.push(e);
        e == Event::Error(conn)
    });
    seen.extend(events_during(&mut sockets, &mut events, QUIET));
    let first_read = seen.iter().position(|&e| e == Event::Read(conn));
    let error = seen.iter().position(|&e| e == Event::Error(conn));
    assert!(first_read < error, "Read before Error: {seen:?}");
    assert_eq!(errors(&seen, conn), 1, "{seen:?}");

    let mut buf = [0u8; 64];
    let n = sockets.read(conn, &mut buf).unwrap();
    assert_eq!(&buf[..n], b"last words");
    let err = match sockets.take_error(conn).unwrap() {
        Some(e) => e,
        None => sockets.read(conn, &mut buf).unwrap_err(),
    };
    assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}");
}

// ---------------------------------------------------------------------------
// Edge mode: Windows re-arms only after `WouldBlock`.

/// The edge-mode contract that holds everywhere: drain to `WouldBlock`, and
/// the next datagram raises one new `Read`.
#[test]
fn edge_mode_drained_to_wouldblock_reports_the_next_datagram() {
    let mut sockets = Sockets::new().unwrap();
    let mut events = Events::with_capacity(16);
    let server = sockets.bind_udp("127.0.0.1:0").unwrap();
    sockets.set_mode(server, Mode::Edge).unwrap();
    let addr = sockets.local_addr(server).unwrap();
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut buf = [0u8; 8];
    for round in [&b"a"[..], b"b"] {
        sender.send_to(round, addr).unwrap();
        let mut got = Vec::new();
        poll_until(&mut sockets, &mut events, LIMIT, |s, e| {
            if e == Event::Read(server) {
                recv_to_would_block(
                    &mut buf,
                    |b| s.recv(server, b),
                    |d| got.extend_from_slice(d),
                );
            }
            !got.is_empty()
        });
        assert_eq!(got, round);
        let later = events_during(&mut sockets, &mut events, QUIET);
        assert!(later.is_empty(), "one Read per edge: {later:?}");
    }
}

/// Windows only, because it is the difference itself: in edge mode, a
/// socket read but not drained to `WouldBlock` raises nothing more, not
/// even for new data (epoll raises a new edge for it; tests/table.rs).
#[cfg(windows)]
#[test]
fn edge_mode_not_drained_raises_nothing_new_on_windows() {
    let mut sockets = Sockets::new().unwrap();
    let mut events = Events::with_capacity(16);
    let server = sockets.bind_udp("127.0.0.1:0").unwrap();
    sockets.set_mode(server, Mode::Edge).unwrap();
    let addr = sockets.local_addr(server).unwrap();
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    sender.send_to(b"a", addr).unwrap();
    sender.send_to(b"b", addr).unwrap();
    poll_until(&mut sockets, &mut events, LIMIT, |_, e| {
        e == Event::Read(server)
    });
    let mut buf = [0u8; 8];
    assert_eq!(sockets.recv(server, &mut buf).unwrap(), 1);
    sender.send_to(b"c", addr).unwrap();
    let later = events_during(&mut sockets, &mut events, QUIET);
    assert!(!later.contains(&Event::Read(server)), "{later:?}");
    // Draining re-arms: everything is there.
    let mut got = Vec::new();
    recv_to_would_block(
        &mut buf,
        |b| sockets.recv(server, b),
        |d| got.extend_from_slice(d),
    );
    assert_eq!(got, b"bc");
}

// ---------------------------------------------------------------------------
// Rebinding a listener's port.

/// A server that closed its connections first leaves them in TIME_WAIT on
/// its port. `listen_tcp` rebinds it at once on every platform: on Unix it
/// sets `SO_REUSEADDR` for that, Windows needs no option.
#[test]
fn listen_tcp_rebinds_a_port_left_in_time_wait() {
    let mut sockets = Sockets::new().unwrap();
    let mut events = Events::with_capacity(16);
    let listener = sockets.listen_tcp("127.0.0.1:0").unwrap();
    let addr = sockets.local_addr(listener).unwrap();
    let mut client = TcpStream::connect(addr).unwrap();
    let conn = accept_one(&mut sockets, &mut events, listener);
    // The server closes first (its side goes to TIME_WAIT), then the client.
    drop(sockets.remove(conn).unwrap());
    client.set_read_timeout(Some(LIMIT)).unwrap();
    assert_eq!(client.read(&mut [0; 8]).unwrap(), 0);
    drop(client);
    drop(sockets.remove(listener).unwrap());
    // The client's FIN reaches the server's side, which then goes to
    // TIME_WAIT: at once on loopback, but not always before `drop` returns,
    // so it is waited for (never slept for) where it can be seen.

    // What the OS itself does for a bare socket with no option set. Linux:
    // once /proc/net/tcp shows the TIME_WAIT, a refusal.
    #[cfg(target_os = "linux")]
    {
        wait_for_time_wait(addr);
        let bare = bind_bare(addr);
        assert_eq!(
            bare.as_ref().map(|_| ()).map_err(|e| e.kind()),
            Err(ErrorKind::AddrInUse),
            "Linux refuses a port in TIME_WAIT without SO_REUSEADDR"
        );
    }
    // Windows: a bind, once the TIME_WAIT has come (until then the closing
    // connection holds the port, and the first tries may be refused).
    #[cfg(windows)]
    {
        let deadline = Instant::now() + LIMIT;
        let mut bare = bind_bare(addr);
        while bare.is_err() && Instant::now() < deadline {
            std::thread::yield_now();
            bare = bind_bare(addr);
        }
        assert!(bare.is_ok(), "Windows rebinds without options: {bare:?}");
    }

    let again = sockets.listen_tcp(addr).unwrap();
    assert_eq!(sockets.local_addr(again).unwrap(), addr);
    let _client = TcpStream::connect(addr).unwrap();
    poll_until(&mut sockets, &mut events, LIMIT, |_, e| {
        e == Event::Read(again)
    });
}

/// Waits until a connection on local address `addr` is in TIME_WAIT, as
/// `/proc/net/tcp` lists it (state `06`); panics after `LIMIT`.
#[cfg(target_os = "linux")]
#[track_caller]
fn wait_for_time_wait(addr: SocketAddr) {
    let SocketAddr::V4(v4) = addr else {
        panic!("{addr}: IPv4 only")
    };
    // The address as the kernel prints it: the IPv4 address as a
    // native-endian number, the port in host order, both in hex.
    let local = format!(
        "{:08X}:{:04X}",
        u32::from_ne_bytes(v4.ip().octets()),
        v4.port()
    );
    let deadline = Instant::now() + LIMIT;
    loop {
        let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
        let time_wait = table.lines().skip(1).any(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            fields.get(1) == Some(&local.as_str()) && fields.get(3) == Some(&"06")
        });
        if time_wait {
            return;
        }
        assert!(Instant::now() < deadline, "{addr} never in TIME_WAIT");
        std::thread::yield_now();
    }
}

/// A listening socket bound with no option at all, as the OS's default.
fn bind_bare(addr: SocketAddr) -> std::io::Result<socket2::Socket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
    socket.bind(&addr.into())?;
    socket.listen(8)?;
    Ok(socket)
}

/// No port sharing through `listen_tcp`: a second listener on a port in use
/// fails with `AddrInUse` everywhere. (On Windows, `SO_REUSEADDR` would let
/// it steal the port; that is why `listen_tcp` does not set it there.)
#[test]
fn listen_tcp_on_a_port_in_use_is_addr_in_use() {
    let mut sockets = Sockets::new().unwrap();
    let first = sockets.listen_tcp("127.0.0.1:0").unwrap();
    let addr = sockets.local_addr(first).unwrap();
    let err = sockets.listen_tcp(addr).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AddrInUse, "{err}");
    let std_listener = TcpListener::bind(addr);
    assert!(std_listener.is_err(), "std bound a port in use");
}

/// One listener per loop on one port, the kernel spreading connections:
/// `SO_REUSEPORT`, set by the caller and the socket handed to the table.
/// Linux only: Windows has no `SO_REUSEPORT` (socket2 offers none there),
/// and other Unixes do not spread connections.
#[cfg(target_os = "linux")]
#[test]
fn so_reuseport_listeners_share_a_port_on_linux() {
    use socket2::{Domain, Protocol, Socket, Type};
    let reuseport = |addr: SocketAddr| {
        let s = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).unwrap();
        s.set_reuse_port(true).unwrap();
        s.bind(&addr.into()).unwrap();
        s.listen(64).unwrap();
        TcpListener::from(s)
    };
    let mut sockets = Sockets::new().unwrap();
    let a = sockets
        .add(reuseport("127.0.0.1:0".parse().unwrap()))
        .unwrap();
    let addr = sockets.local_addr(a).unwrap();
    let b = sockets.add(reuseport(addr)).unwrap();
    assert_eq!(sockets.local_addr(b).unwrap(), addr);
    let _clients: Vec<TcpStream> = (0..32).map(|_| TcpStream::connect(addr).unwrap()).collect();
    let mut events = Events::with_capacity(16);
    let mut accepted = [0usize; 2];
    poll_until(&mut sockets, &mut events, LIMIT, |s, e| {
        for (i, &l) in [a, b].iter().enumerate() {
            if e == Event::Read(l) {
                while s.accept(l).is_ok() {
                    accepted[i] += 1;
                }
            }
        }
        accepted[0] + accepted[1] == 32
    });
    assert!(accepted[0] > 0 && accepted[1] > 0, "{accepted:?}");
}
