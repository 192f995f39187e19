//! Test support shared by the integration tests, in one place (as mio does
//! with its `tests/util`):
//!
//! - the one deadline ([`LIMIT`]) and the one quiet window ([`QUIET`]);
//! - polling a table and turning a dispatcher until something happens;
//! - reading or receiving until `WouldBlock`, accepting one connection, an
//!   echo round trip that allocates nothing;
//! - addresses nobody listens on (freed ports); UDP peers and waiting for
//!   a datagram while turning a dispatcher;
//! - one seeded random generator ([`Rng`]) and one checksum ([`fnv1a`]);
//!   sending their pattern and reading to the end with its checksum;
//! - [`harness`]: the `main` of the `harness = false` binaries, the
//!   examples' binaries, child processes with a deadline;
//! - [`served`]: a dispatcher serving on a thread of its own, stopped and
//!   joined when dropped;
//! - [`example`]: a server example run as a child process, its address, its
//!   log read with deadlines, its graceful stop and last lines;
//! - [`clients`]: whether a real client (socat, redis-cli, curl, wrk, ...)
//!   is installed, and whether CI requires it;
//! - [`alloc`]: the counting allocator of the zero-allocation tests (also
//!   used by `crates/bench/tests/alloc.rs`, by `#[path]`);
//! - [`rlimit`] (Unix): `RLIMIT_NOFILE` (also used by the bench crate, by
//!   `#[path]`).
//!
//! Every helper that fails a test is `#[track_caller]`: the failure names
//! the test's line, not this file's.

// Every test binary compiles this module and uses a different part of it:
// what one binary leaves unused is used by another.
#![allow(dead_code)]

pub(crate) mod alloc;
pub(crate) mod clients;
pub(crate) mod example;
pub(crate) mod harness;
#[cfg(unix)]
pub(crate) mod rlimit;
pub(crate) mod served;

use std::io::{self, ErrorKind, Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use sockmux::{Dispatcher, Event, Events, Responder, Sockets, Token};

/// How long any single wait in a test may take before it fails: a bound
/// for a hang, never a measure of speed, so it is long. Longer on Windows:
/// under wine (ci/windows.sh) the 200 × 1 MiB echo alone takes about 45 s,
/// and past 60 s on a busy machine.
pub(crate) const LIMIT: Duration = Duration::from_secs(if cfg!(windows) { 180 } else { 60 });

/// The window of an assertion that nothing (more) happens. It is what the
/// assertion can see, not a synchronisation: a slow machine can make it miss
/// a late event, never fail a correct program.
pub(crate) const QUIET: Duration = Duration::from_millis(150);

/// Polls and hands every event to `f` until `f` returns `true`; panics if
/// that takes longer than `limit`. Returns the number of polls made.
#[track_caller]
pub(crate) fn poll_until<D>(
    sockets: &mut Sockets<D>,
    events: &mut Events,
    limit: Duration,
    mut f: impl FnMut(&mut Sockets<D>, Event) -> bool,
) -> usize {
    let deadline = Instant::now() + limit;
    let mut polls = 0;
    loop {
        let now = Instant::now();
        assert!(
            now < deadline,
            "timed out after {limit:?} and {polls} polls"
        );
        sockets.poll(events, Some(deadline - now)).expect("poll");
        polls += 1;
        for event in events.iter() {
            if f(sockets, event) {
                return polls;
            }
        }
    }
}

/// Every event of the polls made during `quiet` (see [`QUIET`]): used to
/// assert that nothing more happens.
#[track_caller]
pub(crate) fn events_during<D>(
    sockets: &mut Sockets<D>,
    events: &mut Events,
    quiet: Duration,
) -> Vec<Event> {
    let deadline = Instant::now() + quiet;
    let mut seen = Vec::new();
    loop {
        let now = Instant::now();
        if now >= deadline {
            return seen;
        }
        sockets.poll(events, Some(deadline - now)).expect("poll");
        seen.extend(events.iter());
    }
}

/// Turns the dispatcher until `done` holds, or panics after `limit`. Each
/// turn waits at most 20 ms, so a condition that changes on another thread
/// (a client finishing) is seen promptly; that wait is a poll timeout, never
/// a sleep.
#[track_caller]
pub(crate) fn turn_until<S>(
    dispatcher: &mut Dispatcher<S>,
    limit: Duration,
    mut done: impl FnMut(&mut Dispatcher<S>) -> bool,
) {
    let deadline = Instant::now() + limit;
    while !done(dispatcher) {
        assert!(Instant::now() < deadline, "timed out after {limit:?}");
        dispatcher
            .turn(Some(Duration::from_millis(20)))
            .expect("turn");
    }
}

/// Reads a stream with `read` into `buf` until it answers `WouldBlock`,
/// handing each chunk to `each`; returns whether the stream ended (a read
/// of 0 bytes, after which it reads no more). Any other error fails the
/// test. Allocates nothing.
#[track_caller]
pub(crate) fn read_to_would_block(
    buf: &mut [u8],
    mut read: impl FnMut(&mut [u8]) -> io::Result<usize>,
    mut each: impl FnMut(&[u8]),
) -> bool {
    loop {
        match read(buf) {
            Ok(0) => return true,
            Ok(n) => each(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => return false,
            Err(e) => panic!("read: {e}"),
        }
    }
}

/// Receives datagrams with `recv` into `buf` until it answers `WouldBlock`,
/// handing each one (an empty one too: it is a datagram, not an end) to
/// `each`; returns how many came. Any other error fails the test.
#[track_caller]
pub(crate) fn recv_to_would_block(
    buf: &mut [u8],
    mut recv: impl FnMut(&mut [u8]) -> io::Result<usize>,
    mut each: impl FnMut(&[u8]),
) -> usize {
    let mut count = 0;
    loop {
        match recv(buf) {
            Ok(n) => {
                each(&buf[..n]);
                count += 1;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return count,
            Err(e) => panic!("recv: {e}"),
        }
    }
}

/// Polls until `listener` has a connection waiting and accepts it; panics
/// after [`LIMIT`] or on an accept error other than `WouldBlock`.
#[track_caller]
pub(crate) fn accept_one<D: Default>(
    sockets: &mut Sockets<D>,
    events: &mut Events,
    listener: Token,
) -> Token {
    let mut conn = None;
    poll_until(sockets, events, LIMIT, |s, e| {
        if e == Event::Read(listener) {
            match s.accept(listener) {
                Ok(t) => conn = Some(t),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => panic!("accept: {e}"),
            }
        }
        conn.is_some()
    });
    conn.unwrap()
}

/// Listens on loopback with `acceptor` (the listener's responder, an
/// `Acceptor` as a rule) and connects a client to it: the
/// client is non-blocking, with `TCP_NODELAY`; the dispatcher accepts it
/// on its next turns.
#[track_caller]
pub(crate) fn connect_to_acceptor<S>(
    dispatcher: &mut Dispatcher<S>,
    acceptor: impl Responder<S> + 'static,
) -> TcpStream {
    let listener = dispatcher
        .sockets()
        .listen_tcp("127.0.0.1:0", acceptor)
        .unwrap();
    let addr = dispatcher.sockets().local_addr(listener).unwrap();
    let client = TcpStream::connect(addr).unwrap();
    client.set_nodelay(true).unwrap();
    client.set_nonblocking(true).unwrap();
    client
}

/// Sends `message` from a non-blocking `client` and turns `dispatcher` on
/// this thread until all of it came back (checked byte for byte into
/// `back`, which allocates nothing); panics after [`LIMIT`].
#[track_caller]
pub(crate) fn round_trip<S>(
    dispatcher: &mut Dispatcher<S>,
    client: &mut TcpStream,
    message: &[u8],
    back: &mut [u8],
) {
    let deadline = Instant::now() + LIMIT;
    let (mut sent, mut got) = (0, 0);
    while got < message.len() {
        assert!(Instant::now() < deadline, "no echo within {LIMIT:?}");
        if sent < message.len() {
            match client.write(&message[sent..]) {
                Ok(n) => sent += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => panic!("client write: {e}"),
            }
        }
        dispatcher.turn(Some(Duration::from_millis(10))).unwrap();
        let ended = read_to_would_block(
            back,
            |b| client.read(b),
            |chunk| {
                assert_eq!(chunk, &message[got..got + chunk.len()]);
                got += chunk.len();
            },
        );
        assert!(!ended, "the server closed the connection");
    }
}

/// Closes `stream` with a reset (`SO_LINGER` 0): the peer gets an RST, not
/// a FIN, and bytes not yet read are dropped.
pub(crate) fn reset(stream: TcpStream) {
    socket2::SockRef::from(&stream)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(stream);
}

/// A TCP address nobody listens on: bound to port 0, read, closed.
pub(crate) fn freed_tcp_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// A UDP address nobody listens on: bound to port 0, read, closed. A
/// datagram sent there draws an ICMP port unreachable.
pub(crate) fn freed_udp_addr() -> SocketAddr {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// A test's UDP peer: a non-blocking socket bound to a free loopback port.
pub(crate) fn udp_peer() -> UdpSocket {
    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    peer.set_nonblocking(true).unwrap();
    peer
}

/// Turns `dispatcher` until one datagram reaches the non-blocking `peer`;
/// returns its length in `buf`. Panics after [`LIMIT`] or on a receive
/// error other than `WouldBlock`. Allocates nothing.
#[track_caller]
pub(crate) fn turn_until_datagram<S>(
    dispatcher: &mut Dispatcher<S>,
    peer: &UdpSocket,
    buf: &mut [u8],
) -> usize {
    let deadline = Instant::now() + LIMIT;
    loop {
        match peer.recv(buf) {
            Ok(n) => return n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => panic!("peer recv: {e}"),
        }
        assert!(Instant::now() < deadline, "no datagram within {LIMIT:?}");
        dispatcher
            .turn(Some(Duration::from_millis(10)))
            .expect("turn");
    }
}

/// The tests' one random generator: xorshift64*, deterministic, seeded,
/// good enough to pick chunk sizes and fill buffers.
#[derive(Clone, Debug, Default)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `1..=max`.
    pub(crate) fn size(&mut self, max: usize) -> usize {
        (self.next_u64() % max as u64) as usize + 1
    }

    pub(crate) fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let word = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
    }
}

/// `len` bytes of [`Rng`] output from `seed`, for checksummed transfers.
pub(crate) fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut bytes = vec![0; len];
    Rng::new(seed).fill(&mut bytes);
    bytes
}

/// FNV-1a, 64 bits, continued from `hash` (start from [`FNV_START`]): the
/// same however the bytes are cut into calls.
pub(crate) fn fnv1a(mut hash: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// FNV-1a's starting value.
pub(crate) const FNV_START: u64 = 0xcbf2_9ce4_8422_2325;

/// Sends `len` bytes of [`Rng`] output from `seed` in pieces of 64 KiB at
/// most; returns their checksum ([`fnv1a`]). Stops early when `stop` is
/// set (the checksum is then of what was sent).
pub(crate) fn send_pattern(
    conn: &mut TcpStream,
    len: usize,
    seed: u64,
    stop: Option<&std::sync::atomic::AtomicBool>,
) -> io::Result<u64> {
    let mut rng = Rng::new(seed);
    let mut buf = vec![0; 64 * 1024];
    let (mut sent, mut hash) = (0, FNV_START);
    while sent < len && !stop.is_some_and(|s| s.load(std::sync::atomic::Ordering::Relaxed)) {
        let n = buf.len().min(len - sent);
        rng.fill(&mut buf[..n]);
        conn.write_all(&buf[..n])?;
        hash = fnv1a(hash, &buf[..n]);
        sent += n;
    }
    Ok(hash)
}

/// Reads to the end of the stream; returns the bytes read and their
/// checksum ([`fnv1a`]).
pub(crate) fn read_to_end(conn: &mut TcpStream) -> io::Result<(usize, u64)> {
    read_to_end_slowly(conn, 64 * 1024, Duration::ZERO)
}

/// [`read_to_end`] as a slow reader: at most `piece` bytes per read, and a
/// `pause` after each.
pub(crate) fn read_to_end_slowly(
    conn: &mut TcpStream,
    piece: usize,
    pause: Duration,
) -> io::Result<(usize, u64)> {
    let mut buf = vec![0; piece];
    let (mut got, mut hash) = (0, FNV_START);
    loop {
        match conn.read(&mut buf)? {
            0 => return Ok((got, hash)),
            n => {
                got += n;
                hash = fnv1a(hash, &buf[..n]);
                if !pause.is_zero() {
                    std::thread::sleep(pause);
                }
            }
        }
    }
}
