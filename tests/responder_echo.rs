//! The `tcp_echo` and `udp_echo` examples run as binaries, as a user runs
//! them, under load: 200 connections each sending 1 MiB in random chunk
//! sizes (checksummed, with throughput printed), pipelined small messages, a
//! half-close, a client that never reads (memory stays bounded), and UDP
//! datagrams of every size. Each test checks what the clients get back, and
//! the server's log and its last line, on SIGTERM, of what it counted
//! (Unix; under Windows the server is killed instead). The TCP tests run
//! twice: with one loop, and with two (`--threads 2`, each loop busy).

mod util;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use sockmux::{Event, Events, Interest, Sockets};
use util::example::{is, Server};
use util::{fnv1a, Rng, FNV_START, LIMIT};

/// `tcp_echo` on a port of its own with `threads` loops, logging every
/// connection and close.
fn tcp_echo(threads: usize) -> Server {
    tcp_echo_with(&["--threads", &threads.to_string()])
}

/// `tcp_echo` with `args`, logging every connection and close.
fn tcp_echo_with(args: &[&str]) -> Server {
    let mut cmd = Server::command("tcp_echo", "tcp_echo=debug");
    cmd.args(args);
    Server::spawn("tcp_echo", &mut cmd)
}

/// What `tcp_echo` says when it stops.
fn tcp_echo_stopped(connections: usize, bytes: usize) -> String {
    format!("tcp_echo: stopped after {connections} connections, {bytes} bytes echoed")
}

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

/// With one loop, then with two (spread the platform's way: by
/// `SO_REUSEPORT` on Linux, by the hand-off elsewhere), then on Linux with
/// two by the hand-off: one after the other, not side by side as separate
/// tests would run (under wine each takes tens of seconds alone).
#[test]
fn echo_200_connections_of_1_mib_in_random_chunks() {
    echo_200_connections(&["--threads", "1"]);
    echo_200_connections(&["--threads", "2"]);
    if cfg!(target_os = "linux") {
        echo_200_connections(&["--threads", "2", "--hand-off"]);
    }
}

/// The load test against `tcp_echo ARGS`.
fn echo_200_connections(args: &[&str]) {
    let threads: usize = args[1].parse().unwrap();
    let mut server = tcp_echo_with(args);
    let report = load(server.addr());
    assert!(report.mismatches.is_empty(), "{:?}", report.mismatches);
    let mib = report.bytes as f64 / f64::from(1 << 20);
    println!(
        "echo: {CONNECTIONS} connections x 1 MiB echoed in {:?}: {:.1} MiB/s each way",
        report.elapsed,
        mib / report.elapsed.as_secs_f64()
    );
    // Each client saw its echo end: the server closed every connection
    // after its half-close, and its log says so.
    server.log().count(CONNECTIONS, "connections closed", |l| {
        is(l, "DEBUG", ": closed")
    });
    let stopped = tcp_echo_stopped(CONNECTIONS, CONNECTIONS * PER_CONNECTION);
    let Some(rest) = server.stop() else {
        return; // Windows: killed, no last lines
    };
    assert!(rest.contains(&stopped), "{rest:?}");
    if threads > 1 {
        // Every loop had its share: `connections per loop: [a, b]`.
        let spread = rest
            .iter()
            .find_map(|l| l.split_once("connections per loop: [").map(|(_, s)| s))
            .unwrap_or_else(|| panic!("no spread in {rest:?}"));
        let per_loop: Vec<usize> = spread
            .trim_end_matches(']')
            .split(", ")
            .map(|n| n.parse().unwrap())
            .collect();
        println!("echo {args:?}: connections per loop: {per_loop:?}");
        assert_eq!(per_loop.len(), threads);
        assert_eq!(per_loop.iter().sum::<usize>(), CONNECTIONS);
        assert!(
            per_loop.iter().all(|&n| n > 0),
            "a loop was idle: {per_loop:?}"
        );
    }
}

#[test]
fn pipelined_messages_come_back_whole_and_in_order() {
    pipelined_messages_come_back_whole_and_in_order_on(1);
}

#[test]
fn pipelined_messages_come_back_whole_and_in_order_on_2_loops() {
    pipelined_messages_come_back_whole_and_in_order_on(2);
}

fn pipelined_messages_come_back_whole_and_in_order_on(threads: usize) {
    let server = tcp_echo(threads);
    let mut stream = TcpStream::connect(server.addr()).unwrap();
    stream.set_read_timeout(Some(LIMIT)).unwrap();
    let mut all = Vec::new();
    for i in 0..2000 {
        all.extend_from_slice(format!("message {i}\n").as_bytes());
    }
    // One write: the server sees many messages per read, and some cut in
    // two.
    stream.write_all(&all).unwrap();
    let mut back = vec![0; all.len()];
    stream.read_exact(&mut back).unwrap();
    assert_eq!(back, all);
    server.stop_saying(&tcp_echo_stopped(1, all.len()));
}

/// Row 2 of docs/reliability.md: half-close with data pending — everything
/// sent before the client's `shutdown(Write)` comes back, then the end.
#[test]
fn half_close_gets_every_byte_back_then_the_end() {
    half_close_gets_every_byte_back_then_the_end_on(1);
}

#[test]
fn half_close_gets_every_byte_back_then_the_end_on_2_loops() {
    half_close_gets_every_byte_back_then_the_end_on(2);
}

fn half_close_gets_every_byte_back_then_the_end_on(threads: usize) {
    let mut server = tcp_echo(threads);
    let stream = TcpStream::connect(server.addr()).unwrap();
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
    // The end came from the server closing its side.
    server
        .log()
        .next_matching("close", |l| is(l, "DEBUG", ": closed"));
    server.stop_saying(&tcp_echo_stopped(1, 1 << 20));
}

/// Row 4 of docs/reliability.md: a client that sends and never reads. The
/// server stops reading it at the high-water mark, so the client's writes
/// stall once the kernel buffers and the server's queue are full, far short
/// of what it offered; then, reading, it gets every byte back.
#[test]
fn a_client_that_never_reads_is_paused_at_the_high_water_mark() {
    a_client_that_never_reads_is_paused_at_the_high_water_mark_on(1);
}

#[test]
fn a_client_that_never_reads_is_paused_at_the_high_water_mark_on_2_loops() {
    a_client_that_never_reads_is_paused_at_the_high_water_mark_on(2);
}

fn a_client_that_never_reads_is_paused_at_the_high_water_mark_on(threads: usize) {
    let offered = 64 << 20;
    let server = tcp_echo(threads);
    let stream = TcpStream::connect(server.addr()).unwrap();
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
    println!(
        "slow reader: the server took {} KiB of {} MiB offered",
        sent >> 10,
        offered >> 20
    );
    assert!(sent < offered / 2, "accepted {sent} bytes");
    server.stop_saying(&tcp_echo_stopped(1, sent));
}

#[test]
fn udp_echo_returns_datagrams_of_every_size() {
    let server = Server::start("udp_echo", "udp_echo=debug");
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.connect(server.addr()).unwrap();
    // Under a fault plan a send the plan refuses drops the echo, as UDP
    // may: then the datagram goes again, a second later.
    let faults = cfg!(feature = "faults") && std::env::var_os("SOCKMUX_FAULTS").is_some();
    let wait = if faults {
        Duration::from_secs(1)
    } else {
        LIMIT
    };
    socket.set_read_timeout(Some(wait)).unwrap();
    let mut buf = vec![0; 65_536];
    // One at a time: UDP may drop a burst, and this checks content.
    let sizes = [0, 1, 100, 1472, 9000, 65_507];
    let deadline = Instant::now() + LIMIT;
    for size in sizes {
        let mut datagram = vec![0; size];
        Rng::new(size as u64).fill(&mut datagram);
        let n = loop {
            assert!(Instant::now() < deadline, "no echo of {size} bytes");
            socket.send(&datagram).unwrap();
            match socket.recv(&mut buf) {
                Err(e)
                    if faults
                        && matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                other => break other.unwrap(),
            }
        };
        assert_eq!(&buf[..n], &datagram[..], "size {size}");
    }
    if faults {
        server.stop();
    } else {
        server.stop_saying(&format!(
            "udp_echo: stopped after {} datagrams echoed, 0 dropped",
            sizes.len()
        ));
    }
}
