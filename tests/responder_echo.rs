//! The `tcp_echo` and `udp_echo` examples' responders under load: 200
//! connections each sending 1 MiB in random chunk sizes (checksummed, with
//! throughput printed), pipelined small messages, a half-close, a client
//! that never reads (memory stays bounded), and UDP datagrams of every size.

mod util;

#[path = "../examples/tcp_echo.rs"]
#[allow(dead_code)] // the example's `main` and argument parsing are unused here
mod tcp_echo;

#[path = "../examples/udp_echo.rs"]
#[allow(dead_code)] // the example's `main` and argument parsing are unused here
mod udp_echo;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use sockmux::{Dispatcher, Event, Events, Interest, Sockets};
use util::{fnv1a, turn_until, Rng, FNV_START, LIMIT};

const CONNECTIONS: usize = 200;
const PER_CONNECTION: usize = 1 << 20;
const MAX_CHUNK: usize = 64 * 1024;

/// One client connection of the load test.
#[derive(Default)]
struct Client {
    /// Where this connection's stream starts in the shared pattern.
    offset: usize,
    sent: usize,
    received: usize,
    sent_sum: u64,
    received_sum: u64,
    rng: Rng,
}

/// What the load test's client thread reports.
struct Report {
    bytes: usize,
    elapsed: Duration,
    mismatches: Vec<String>,
}

/// Runs `CONNECTIONS` clients on a sockmux table of their own: each writes
/// its 1 MiB in random chunk sizes, half-closes, and reads the echo in
/// random chunk sizes until the server closes. Every byte read is compared
/// with the byte sent at that position, and both directions are
/// checksummed.
fn load(addr: SocketAddr) -> Report {
    // One pattern, twice over, so that any window of a connection's stream
    // is one slice.
    let mut pattern = vec![0; 2 * PER_CONNECTION];
    Rng::new(1).fill(&mut pattern[..PER_CONNECTION]);
    pattern.copy_within(..PER_CONNECTION, PER_CONNECTION);

    let start = Instant::now();
    let mut sockets = Sockets::<Client>::with_capacity(CONNECTIONS).unwrap();
    for i in 0..CONNECTIONS {
        let t = sockets.connect_tcp(addr).unwrap();
        *sockets.data_mut(t).unwrap() = Client {
            offset: (i * 4099) % PER_CONNECTION,
            sent: 0,
            received: 0,
            sent_sum: FNV_START,
            received_sum: FNV_START,
            rng: Rng::new(i as u64 + 2),
        };
    }
    let mut events = Events::with_capacity(256);
    let mut buf = vec![0; MAX_CHUNK];
    let mut finished = 0;
    let mut mismatches = Vec::new();
    let deadline = start + LIMIT;
    while finished < CONNECTIONS {
        assert!(
            Instant::now() < deadline,
            "load: {finished} of {CONNECTIONS} done"
        );
        sockets
            .poll(&mut events, Some(Duration::from_millis(100)))
            .unwrap();
        for event in &events {
            match event {
                Event::Write(t) => {
                    for _ in 0..8 {
                        let c = sockets.data_mut(t).unwrap();
                        if c.sent == PER_CONNECTION {
                            sockets.shutdown(t, Shutdown::Write).unwrap();
                            sockets.set_interest(t, Interest::READABLE).unwrap();
                            break;
                        }
                        let chunk = c.rng.size(MAX_CHUNK).min(PER_CONNECTION - c.sent);
                        let from = c.offset + c.sent;
                        match sockets.write(t, &pattern[from..from + chunk]) {
                            Ok(n) => {
                                let c = sockets.data_mut(t).unwrap();
                                c.sent_sum = fnv1a(c.sent_sum, &pattern[from..from + n]);
                                c.sent += n;
                            }
                            // The send buffer is full: wait for the next Write.
                            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                            Err(e) => panic!("{t}: write: {e}"),
                        }
                    }
                }
                Event::Read(t) => {
                    let want = sockets.data_mut(t).unwrap().rng.size(MAX_CHUNK);
                    match sockets.read(t, &mut buf[..want]) {
                        Ok(0) => {
                            let c = sockets.data_mut(t).unwrap();
                            if c.received != PER_CONNECTION || c.received_sum != c.sent_sum {
                                mismatches.push(format!(
                                    "{t}: {} bytes back of {}, sums {:x} {:x}",
                                    c.received, c.sent, c.received_sum, c.sent_sum
                                ));
                            }
                            sockets.remove(t).unwrap();
                            finished += 1;
                        }
                        Ok(n) => {
                            let c = sockets.data_mut(t).unwrap();
                            let from = c.offset + c.received;
                            if buf[..n] != pattern[from..from + n] {
                                mismatches.push(format!("{t}: wrong bytes at {}", c.received));
                            }
                            c.received_sum = fnv1a(c.received_sum, &buf[..n]);
                            c.received += n;
                        }
                        // Drained: wait for the next Read.
                        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                        Err(e) => panic!("{t}: read: {e}"),
                    }
                }
                Event::Error(t) => panic!("{t}: {:?}", sockets.take_error(t)),
                _ => {}
            }
        }
    }
    Report {
        bytes: CONNECTIONS * PER_CONNECTION,
        elapsed: start.elapsed(),
        mismatches,
    }
}

#[test]
fn echo_200_connections_of_1_mib_in_random_chunks() {
    let mut dispatcher = Dispatcher::new(tcp_echo::Stats::default()).unwrap();
    let listener = tcp_echo::listen(&mut dispatcher, "127.0.0.1:0").unwrap();
    let addr = dispatcher.sockets().local_addr(listener).unwrap();
    let clients = std::thread::spawn(move || load(addr));
    turn_until(&mut dispatcher, LIMIT, |_| clients.is_finished());
    let report = clients.join().expect("the client thread");
    assert!(report.mismatches.is_empty(), "{:?}", report.mismatches);
    let mib = report.bytes as f64 / f64::from(1 << 20);
    println!(
        "echo: {CONNECTIONS} connections x 1 MiB echoed in {:?}: {:.1} MiB/s each way",
        report.elapsed,
        mib / report.elapsed.as_secs_f64()
    );
    // Every connection closed after its half-close; the listener is left.
    turn_until(&mut dispatcher, LIMIT, |d| d.sockets().len() == 1);
    let stats = dispatcher.state();
    assert_eq!(stats.accepted, CONNECTIONS as u64);
    assert_eq!(stats.echoed, (CONNECTIONS * PER_CONNECTION) as u64);
}

/// Serves on a thread of its own until `client` returns; returns what it
/// returned.
fn with_echo_server<T: Send + 'static>(client: impl FnOnce(SocketAddr) -> T + Send + 'static) -> T {
    let mut dispatcher = Dispatcher::new(tcp_echo::Stats::default()).unwrap();
    let listener = tcp_echo::listen(&mut dispatcher, "127.0.0.1:0").unwrap();
    let addr = dispatcher.sockets().local_addr(listener).unwrap();
    let client = std::thread::spawn(move || client(addr));
    turn_until(&mut dispatcher, LIMIT, |_| client.is_finished());
    client.join().expect("the client thread")
}

#[test]
fn pipelined_messages_come_back_whole_and_in_order() {
    with_echo_server(|addr| {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(LIMIT)).unwrap();
        let mut all = Vec::new();
        for i in 0..2000 {
            all.extend_from_slice(format!("message {i}\n").as_bytes());
        }
        // One write: the server sees many messages per read, and some cut
        // in two.
        stream.write_all(&all).unwrap();
        let mut back = vec![0; all.len()];
        stream.read_exact(&mut back).unwrap();
        assert_eq!(back, all);
    });
}

/// Row 2 of docs/reliability.md: half-close with data pending — everything
/// sent before the client's `shutdown(Write)` comes back, then the end.
#[test]
fn half_close_gets_every_byte_back_then_the_end() {
    with_echo_server(|addr| {
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(LIMIT)).unwrap();
        let mut writer = stream.try_clone().unwrap();
        let sender = std::thread::spawn(move || {
            let mut data = vec![0; 1 << 20];
            Rng::new(9).fill(&mut data);
            writer.write_all(&data).unwrap();
            writer.shutdown(Shutdown::Write).unwrap();
            data
        });
        let mut back = Vec::new();
        (&stream).read_to_end(&mut back).unwrap();
        assert_eq!(back, sender.join().unwrap());
    });
}

/// Row 4 of docs/reliability.md: a client that sends and never reads. The
/// server stops reading it at the high-water mark, so the client's writes
/// stall once the kernel buffers and the server's queue are full, far short
/// of what it offered; then, reading, it gets every byte back.
#[test]
fn a_client_that_never_reads_is_paused_at_the_high_water_mark() {
    let offered = 64 << 20;
    let accepted = with_echo_server(move |addr| {
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_nonblocking(true).unwrap();
        let chunk = vec![5; 64 * 1024];
        let mut sent = 0;
        // Writes until the server has stopped taking bytes for a while.
        let mut stalled_since: Option<Instant> = None;
        while sent < offered {
            match (&stream).write(&chunk) {
                Ok(n) => {
                    sent += n;
                    stalled_since = None;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    let since = *stalled_since.get_or_insert_with(Instant::now);
                    if since.elapsed() > Duration::from_millis(300) {
                        break;
                    }
                    std::thread::yield_now();
                }
                Err(e) => panic!("write: {e}"),
            }
        }
        // Now read everything back while sending nothing more.
        stream.set_nonblocking(false).unwrap();
        stream.set_read_timeout(Some(LIMIT)).unwrap();
        stream.shutdown(Shutdown::Write).unwrap();
        let mut back = Vec::new();
        (&stream).read_to_end(&mut back).unwrap();
        assert_eq!(back.len(), sent);
        assert!(back.iter().all(|&b| b == 5));
        sent
    });
    println!(
        "slow reader: the server took {} KiB of {} MiB offered",
        accepted >> 10,
        offered >> 20
    );
    assert!(accepted < offered / 2, "accepted {accepted} bytes");
}

#[test]
fn udp_echo_returns_datagrams_of_every_size() {
    let mut dispatcher = Dispatcher::new(udp_echo::Stats::default()).unwrap();
    let server = udp_echo::bind(&mut dispatcher, "127.0.0.1:0").unwrap();
    let addr = dispatcher.sockets().local_addr(server).unwrap();
    let client = std::thread::spawn(move || {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.connect(addr).unwrap();
        socket.set_read_timeout(Some(LIMIT)).unwrap();
        let mut buf = vec![0; 65_536];
        // One at a time: UDP may drop a burst, and this checks content.
        for size in [0, 1, 100, 1472, 9000, 65_507] {
            let mut datagram = vec![0; size];
            Rng::new(size as u64).fill(&mut datagram);
            socket.send(&datagram).unwrap();
            let n = socket.recv(&mut buf).unwrap();
            assert_eq!(&buf[..n], &datagram[..], "size {size}");
        }
    });
    turn_until(&mut dispatcher, LIMIT, |_| client.is_finished());
    client.join().expect("the client thread");
    assert_eq!(dispatcher.state().echoed, 6);
}
