//! The library's `Stream`: a responder that reads, frames, writes and
//! closes for a `Protocol`. The tests named `row_N_...` check rows of
//! docs/reliability.md at the library level; the others check the idle
//! timeouts and the graceful stop. The server runs on the test's thread;
//! clients run on their own threads with blocking sockets. No test waits
//! for time to pass except to observe that something does *not* happen
//! (the idle timeout of a client held back by backpressure).

mod util;

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::Duration;

use sockmux::{
    Acceptor, Action, CloseReason, Context, Decoder, Dispatcher, Endian, Idle, LengthPrefixed,
    Lines, Protocol, Raw, Stream, StreamIo, Token, Width, DEFAULT_HIGH_WATER,
    DEFAULT_READ_PER_EVENT,
};

use util::{fnv1a, read_to_end, send_pattern, turn_until, Rng, FNV_START, LIMIT};

/// What the tests' protocols record.
#[derive(Debug, Default)]
struct Log {
    opened: usize,
    /// Each closed connection: why, and the bytes never sent.
    closed: Vec<(CloseReason, usize)>,
    /// Bytes each connection's protocol wrote, in the order they closed.
    written: Vec<usize>,
    /// The most bytes ever queued right after a write.
    max_queued: usize,
    /// The longest frame seen.
    max_frame: usize,
    paused: usize,
    resumed: usize,
    /// Bytes queued when a graceful stop began.
    queued_at_stop: Vec<usize>,
    /// Idle calls.
    idle: Vec<Idle>,
    /// An idle call keeps the connection (the test has seen what it
    /// watched for, and a loaded machine may starve a client for longer
    /// than a short timeout).
    spare_idle: bool,
}

/// An echo protocol that records into [`Log`].
#[derive(Default)]
struct Echo {
    written: usize,
    /// Written once the stream opens.
    greeting: usize,
    /// Start a graceful stop at the first pause.
    stop_when_paused: bool,
}

impl Echo {
    fn write(&mut self, bytes: &[u8], io: &mut StreamIo<'_, '_, Log>) {
        io.write(bytes);
        self.written += bytes.len();
        let queued = io.queued();
        io.cx.state.max_queued = io.cx.state.max_queued.max(queued);
    }
}

impl Protocol<Log> for Echo {
    fn opened(&mut self, io: &mut StreamIo<'_, '_, Log>) {
        io.cx.state.opened += 1;
        let chunk = [7u8; 64 * 1024];
        let mut left = self.greeting;
        while left > 0 {
            let n = left.min(chunk.len());
            self.write(&chunk[..n], io);
            left -= n;
        }
    }

    fn frame(&mut self, frame: &[u8], io: &mut StreamIo<'_, '_, Log>) {
        io.cx.state.max_frame = io.cx.state.max_frame.max(frame.len());
        self.write(frame, io);
    }

    fn paused(&mut self, io: &mut StreamIo<'_, '_, Log>) {
        io.cx.state.paused += 1;
        if self.stop_when_paused {
            io.cx.stop_gracefully(LIMIT);
        }
    }

    fn resumed(&mut self, io: &mut StreamIo<'_, '_, Log>) {
        io.cx.state.resumed += 1;
    }

    fn idle(&mut self, idle: Idle, io: &mut StreamIo<'_, '_, Log>) -> Action {
        io.cx.state.idle.push(idle);
        if io.cx.state.spare_idle {
            return Action::Continue;
        }
        Action::Close
    }

    fn frame_error(&mut self, error: &io::Error, io: &mut StreamIo<'_, '_, Log>) {
        let reply = format!("error: {error}\n");
        self.write(reply.as_bytes(), io);
    }

    fn stopping(&mut self, io: &mut StreamIo<'_, '_, Log>) {
        let queued = io.queued();
        io.cx.state.queued_at_stop.push(queued);
    }

    fn closed(&mut self, reason: CloseReason, unsent: usize, cx: &mut Context<'_, Log>) {
        cx.state.closed.push((reason, unsent));
        cx.state.written.push(self.written);
    }
}

/// A dispatcher listening on a loopback port, with a stream made by
/// `stream` for each connection.
fn serve<C, F>(mut stream: F) -> (Dispatcher<Log>, SocketAddr)
where
    C: Decoder + 'static,
    F: FnMut() -> Stream<C, Echo> + 'static,
{
    let mut dispatcher = Dispatcher::new(Log::default()).unwrap();
    let listener = dispatcher
        .sockets()
        .listen_tcp(
            "127.0.0.1:0",
            Acceptor::new(move |_: Token, _: &mut Context<'_, Log>| stream()),
        )
        .unwrap();
    let addr = dispatcher.sockets().local_addr(listener).unwrap();
    (dispatcher, addr)
}

fn connect(addr: SocketAddr) -> TcpStream {
    let conn = TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(LIMIT)).unwrap();
    conn.set_write_timeout(Some(LIMIT)).unwrap();
    conn
}

/// Row 2: the client sends, then half-closes with echoes still to come:
/// every byte comes back, then the end of the stream.
#[test]
fn row_2_half_close_with_data_pending() {
    let (mut dispatcher, addr) = serve(|| Stream::new(Raw, Echo::default()));
    let client = thread::spawn(move || {
        let mut conn = connect(addr);
        let mut writer = conn.try_clone().unwrap();
        let sender = thread::spawn(move || {
            let hash = send_pattern(&mut writer, 4 << 20, 2, None).unwrap();
            writer.shutdown(Shutdown::Write).unwrap();
            hash
        });
        let back = read_to_end(&mut conn).unwrap();
        (sender.join().unwrap(), back)
    });
    turn_until(&mut dispatcher, LIMIT, |d| !d.state().closed.is_empty());
    let (sent_hash, (got, got_hash)) = client.join().unwrap();
    assert_eq!((got, got_hash), (4 << 20, sent_hash));
    let log = dispatcher.state();
    assert_eq!(log.closed, [(CloseReason::PeerClosed, 0)]);
    assert_eq!(log.written, [4 << 20]);
}

/// Row 3: the server has megabytes queued for a client that reads a
/// little and closes: the stream closes with a reset, and what it reports
/// unsent was never counted as sent (the client read no more than what the
/// socket took).
#[test]
fn row_3_peer_closes_while_output_is_queued() {
    let greeting = 32 << 20;
    let (mut dispatcher, addr) = serve(move || {
        Stream::new(
            Raw,
            Echo {
                greeting,
                ..Echo::default()
            },
        )
    });
    let mut conn = connect(addr);
    let mut first = vec![0; 1000];
    let client = thread::spawn(move || {
        conn.read_exact(&mut first).unwrap();
        // Unread bytes make the close a reset.
        drop(conn);
    });
    turn_until(&mut dispatcher, LIMIT, |d| !d.state().closed.is_empty());
    client.join().unwrap();
    let log = dispatcher.state();
    let (reason, unsent) = log.closed[0];
    assert_eq!(reason, CloseReason::Reset);
    assert!(unsent > 0, "32 MiB cannot all have left");
    assert_eq!(log.written, [greeting]);
    assert!(greeting - unsent >= 1000, "fewer bytes sent than read");
}

/// The thread of a [`slow_reader`]: the hash of what it sent, and the
/// length and hash of what it got back.
type SlowReader = thread::JoinHandle<(u64, (usize, u64))>;

/// A client that sends `bytes` (a pattern from `seed`), then its end, and
/// reads nothing until told to through the returned sender; then it reads
/// everything back. Joined, it gives the hash of what it sent and the
/// length and hash of what it got.
fn slow_reader(addr: SocketAddr, bytes: usize, seed: u64) -> (mpsc::Sender<()>, SlowReader) {
    let (go, start_reading) = mpsc::channel::<()>();
    let client = thread::spawn(move || {
        let mut conn = connect(addr);
        let mut writer = conn.try_clone().unwrap();
        let sender = thread::spawn(move || {
            let hash = send_pattern(&mut writer, bytes, seed, None).unwrap();
            writer.shutdown(Shutdown::Write).unwrap();
            hash
        });
        start_reading.recv().unwrap();
        let back = read_to_end(&mut conn).unwrap();
        (sender.join().unwrap(), back)
    });
    (go, client)
}

/// Row 4: a client sends 64 MiB and reads nothing until the server has
/// paused; while it stalls the loop dispatches next to nothing (no spin:
/// the CPU stays idle); the write queue never holds more than the
/// high-water mark plus one frame's echo (a frame here is at most one
/// event's read), and every byte comes back once the client reads.
#[test]
fn row_4_slow_reader() {
    let (mut dispatcher, addr) = serve(|| Stream::new(Raw, Echo::default()));
    let (go, client) = slow_reader(addr, 64 << 20, 4);
    turn_until(&mut dispatcher, LIMIT, |d| d.state().paused > 0);
    // Stalled: neither side moves, so the loop has nothing to do. A spin
    // (a `Read` or `Write` raised again and again with nothing to gain)
    // would dispatch thousands of events in these waits; a few stragglers
    // (a window update the kernel sends late) are all there may be.
    let mut stalled_events = 0;
    for _ in 0..5 {
        stalled_events += dispatcher.turn(Some(Duration::from_millis(40))).unwrap();
    }
    assert!(
        stalled_events <= 10,
        "{stalled_events} events while the reader stalls: the loop spins"
    );
    go.send(()).unwrap();
    turn_until(&mut dispatcher, LIMIT, |d| !d.state().closed.is_empty());
    let (sent_hash, (got, got_hash)) = client.join().unwrap();
    assert_eq!((got, got_hash), (64 << 20, sent_hash));
    let log = dispatcher.state();
    assert_eq!(log.closed, [(CloseReason::PeerClosed, 0)]);
    assert!(log.max_frame <= DEFAULT_READ_PER_EVENT);
    assert!(
        log.max_queued <= DEFAULT_HIGH_WATER + log.max_frame,
        "{} bytes queued",
        log.max_queued
    );
    assert!(log.max_queued >= DEFAULT_HIGH_WATER);
    assert!(log.resumed > 0);
}

/// Row 5: one client floods while another plays ping-pong: the ping-pong
/// client completes its round trips while the flood is running (the flood
/// goes on until they are done, so a starved ping-pong would hang the test
/// rather than pass), and the flood comes back intact.
#[test]
fn row_5_flood_and_ping_pong() {
    const TRIPS: u64 = 500;
    let (mut dispatcher, addr) = serve(|| Stream::new(Raw, Echo::default()));
    let done = Arc::new(AtomicBool::new(false));
    let flooded = Arc::new(AtomicU64::new(0));
    let flood = {
        let (done, flooded) = (Arc::clone(&done), Arc::clone(&flooded));
        thread::spawn(move || {
            let mut conn = connect(addr);
            let mut writer = conn.try_clone().unwrap();
            let sender = thread::spawn(move || {
                let mut rng = Rng::new(5);
                let mut buf = vec![0; 64 * 1024];
                let mut hash = FNV_START;
                let mut sent = 0u64;
                // At least 16 MiB, and until the ping-pong is done.
                while sent < 16 << 20 || !done.load(Ordering::Relaxed) {
                    rng.fill(&mut buf);
                    writer.write_all(&buf).unwrap();
                    hash = fnv1a(hash, &buf);
                    sent += buf.len() as u64;
                    flooded.store(sent, Ordering::Relaxed);
                }
                writer.shutdown(Shutdown::Write).unwrap();
                (sent, hash)
            });
            let back = read_to_end(&mut conn).unwrap();
            (sender.join().unwrap(), back)
        })
    };
    let ping = {
        let (done, flooded) = (Arc::clone(&done), Arc::clone(&flooded));
        thread::spawn(move || {
            // Start once the flood runs.
            while flooded.load(Ordering::Relaxed) < 1 << 20 {
                thread::yield_now();
            }
            let mut conn = connect(addr);
            conn.set_nodelay(true).unwrap();
            let mut back = [0; 8];
            for i in 0..TRIPS {
                conn.write_all(&i.to_le_bytes()).unwrap();
                conn.read_exact(&mut back).unwrap();
                assert_eq!(u64::from_le_bytes(back), i);
            }
            let during = flooded.load(Ordering::Relaxed);
            done.store(true, Ordering::Relaxed);
            during
        })
    };
    turn_until(&mut dispatcher, LIMIT, |d| d.state().closed.len() == 2);
    let flooded_during_ping = ping.join().unwrap();
    let ((sent, sent_hash), (got, got_hash)) = flood.join().unwrap();
    assert!(flooded_during_ping >= 1 << 20);
    assert_eq!((got as u64, got_hash), (sent, sent_hash));
    let log = dispatcher.state();
    assert!(log
        .closed
        .iter()
        .all(|&c| c == (CloseReason::PeerClosed, 0)));
}

/// Row 19, lines: a line longer than the codec's maximum is refused as
/// soon as the bytes prove it (no buffer grows for it), and the protocol's
/// error reply reaches the client before the end of the stream.
#[test]
fn row_19_oversize_line_is_rejected_with_a_reply_before_the_close() {
    let (mut dispatcher, addr) = serve(|| Stream::new(Lines::new(4096), Echo::default()));
    let client = thread::spawn(move || {
        let mut conn = connect(addr);
        conn.write_all(b"fine\n").unwrap();
        conn.write_all(&[b'x'; 5000]).unwrap();
        let mut back = String::new();
        conn.read_to_string(&mut back).unwrap();
        back
    });
    turn_until(&mut dispatcher, LIMIT, |d| !d.state().closed.is_empty());
    let back = client.join().unwrap();
    // The echo of "fine" (a payload, newline excluded), then the reply.
    assert!(back.starts_with("fineerror: line too long"), "{back:?}");
    assert!(back.ends_with('\n'));
    let log = dispatcher.state();
    assert_eq!(log.closed, [(CloseReason::LimitExceeded, 0)]);
    assert_eq!(log.max_frame, 4);
}

/// Row 19, length prefix: a 4-byte header announcing 4 GiB is refused
/// from the header alone, before any byte of the payload and before any
/// buffer grows for it; the reply comes before the close.
#[test]
fn row_19_four_gib_length_prefix_is_rejected_from_the_header() {
    let (mut dispatcher, addr) = serve(|| {
        Stream::new(
            LengthPrefixed::new(Width::U32, Endian::Big, 1 << 20),
            Echo::default(),
        )
    });
    let client = thread::spawn(move || {
        let mut conn = connect(addr);
        conn.write_all(&[0xff; 4]).unwrap();
        let mut back = String::new();
        conn.read_to_string(&mut back).unwrap();
        back
    });
    turn_until(&mut dispatcher, LIMIT, |d| !d.state().closed.is_empty());
    let back = client.join().unwrap();
    assert!(back.starts_with("error: "), "{back:?}");
    assert_eq!(dispatcher.state().closed, [(CloseReason::LimitExceeded, 0)]);
}

/// A client that connects and says nothing is closed by a read idle
/// timeout.
#[test]
fn idle_timeout_closes_a_silent_client() {
    let (mut dispatcher, addr) = serve(|| {
        Stream::new(Raw, Echo::default()).idle_timeout(Idle::Read, Duration::from_millis(100))
    });
    let mut conn = connect(addr);
    turn_until(&mut dispatcher, LIMIT, |d| !d.state().closed.is_empty());
    assert_eq!(conn.read(&mut [0; 8]).unwrap(), 0);
    let log = dispatcher.state();
    assert_eq!(log.idle, [Idle::Read]);
    assert_eq!(log.closed, [(CloseReason::Idle(Idle::Read), 0)]);
}

/// A client that floods and does not read holds the stream back by
/// backpressure: reading paused, echoes queued, nothing moving. That is
/// not idle, for any kind of timeout: it does not fire in a window of many
/// timeouts, and the transfer completes once the client reads.
#[test]
fn idle_timeout_spares_a_client_held_back_by_backpressure() {
    for kind in [Idle::Read, Idle::Write, Idle::Both] {
        held_back(kind);
    }
}

fn held_back(kind: Idle) {
    let timeout = Duration::from_millis(50);
    let (mut dispatcher, addr) =
        serve(move || Stream::new(Raw, Echo::default()).idle_timeout(kind, timeout));
    let (go, client) = slow_reader(addr, 32 << 20, 6);
    turn_until(&mut dispatcher, LIMIT, |d| d.state().paused > 0);
    // An observation window of ten timeouts, the stream held back all along.
    dispatcher.run_for(timeout * 10).unwrap();
    assert!(
        dispatcher.state().idle.is_empty(),
        "{kind:?} idle while held back"
    );
    assert!(dispatcher.state().closed.is_empty());
    dispatcher.state_mut().spare_idle = true;
    go.send(()).unwrap();
    turn_until(&mut dispatcher, LIMIT, |d| !d.state().closed.is_empty());
    let (sent_hash, (got, got_hash)) = client.join().unwrap();
    assert_eq!((got, got_hash), (32 << 20, sent_hash));
    assert_eq!(dispatcher.state().closed, [(CloseReason::PeerClosed, 0)]);
}

/// A graceful stop with megabytes queued: the stream reads no more,
/// writes out its queue, then closes; the client gets every byte.
#[test]
fn graceful_stop_flushes_the_queue() {
    let greeting = 32 << 20;
    let (mut dispatcher, addr) = serve(move || {
        Stream::new(
            Raw,
            Echo {
                greeting,
                ..Echo::default()
            },
        )
    });
    let (go, start_reading) = mpsc::channel::<()>();
    let client = thread::spawn(move || {
        let mut conn = connect(addr);
        start_reading.recv().unwrap();
        read_to_end(&mut conn).unwrap().0
    });
    turn_until(&mut dispatcher, LIMIT, |d| d.state().opened == 1);
    go.send(()).unwrap();
    dispatcher.stop_gracefully(LIMIT).unwrap();
    assert_eq!(client.join().unwrap(), greeting);
    let log = dispatcher.state();
    assert!(log.queued_at_stop[0] > 0);
    assert_eq!(log.closed, [(CloseReason::Stopped, 0)]);
}

/// A graceful stop whose deadline passes with bytes still queued (the
/// client reads nothing): `closed` reports them unsent, reason `Stopped`.
#[test]
fn graceful_stop_deadline_reports_the_unsent_bytes() {
    let greeting = 32 << 20;
    let (mut dispatcher, addr) = serve(move || {
        Stream::new(
            Raw,
            Echo {
                greeting,
                ..Echo::default()
            },
        )
    });
    let conn = connect(addr);
    turn_until(&mut dispatcher, LIMIT, |d| d.state().opened == 1);
    dispatcher
        .stop_gracefully(Duration::from_millis(50))
        .unwrap();
    drop(conn);
    let log = dispatcher.state();
    let queued = log.queued_at_stop[0];
    assert!(queued > 0);
    if cfg!(feature = "faults") {
        // A write that a fault plan cut short left room in the send
        // buffer at the stop, which the grace period used.
        let [(CloseReason::Stopped, unsent)] = log.closed[..] else {
            panic!("{:?}", log.closed);
        };
        assert!(0 < unsent && unsent <= queued, "{unsent} of {queued}");
    } else {
        assert_eq!(log.closed, [(CloseReason::Stopped, queued)]);
    }
}

/// A stream registered while connecting (`connect_tcp`): what it writes
/// from `opened` is sent once the connection completes, and it reads the
/// answer; a connect to a closed port closes it with `ConnectionRefused`.
#[test]
fn a_connecting_stream_writes_once_connected() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let mut dispatcher = Dispatcher::new(Log::default()).unwrap();
    let greeting = 5;
    dispatcher
        .sockets()
        .connect_tcp(
            addr,
            Stream::new(
                Raw,
                Echo {
                    greeting,
                    ..Echo::default()
                },
            ),
        )
        .unwrap();
    let server = thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        conn.set_read_timeout(Some(LIMIT)).unwrap();
        let mut hello = [0; 5];
        conn.read_exact(&mut hello).unwrap();
        conn.write_all(b"answer").unwrap();
        let mut back = [0; 6];
        conn.read_exact(&mut back).unwrap();
        (hello, back)
    });
    // Until the echo is out too (a write that a fault plan cut short or
    // refused goes out on a later turn).
    turn_until(&mut dispatcher, LIMIT, |d| {
        d.state().max_frame > 0 && server.is_finished()
    });
    let (hello, back) = server.join().unwrap();
    assert_eq!((&hello, &back), (&[7; 5], b"answer"));
    turn_until(&mut dispatcher, LIMIT, |d| !d.state().closed.is_empty());
    assert_eq!(dispatcher.state().closed, [(CloseReason::PeerClosed, 0)]);

    let mut dispatcher = Dispatcher::new(Log::default()).unwrap();
    dispatcher
        .sockets()
        .connect_tcp(util::freed_tcp_addr(), Stream::new(Raw, Echo::default()))
        .unwrap();
    turn_until(&mut dispatcher, LIMIT, |d| !d.state().closed.is_empty());
    assert_eq!(
        dispatcher.state().closed,
        [(CloseReason::Error(io::ErrorKind::ConnectionRefused), 0)]
    );
}

/// The bound holds within one `Read` event too: once a frame's reply
/// brings the queue to the high-water mark, the event reads no further
/// and no later frame is handed on until the queue drains. Here the read
/// that completes a frame (its length known from the header, so the read
/// asks for exactly its last byte) is followed, in the same event, by a
/// read of the next frame. Found by fuzz/fuzz_targets/write_queue.rs.
#[cfg(unix)]
#[test]
fn no_frame_is_handed_on_past_the_high_water_mark_in_one_read_event() {
    /// Answers each frame with 1 MiB; records the bytes queued as each
    /// frame comes in.
    struct Flood;
    impl Protocol<Vec<usize>> for Flood {
        fn frame(&mut self, _: &[u8], io: &mut StreamIo<'_, '_, Vec<usize>>) {
            let queued = io.queued();
            io.cx.state.push(queued);
            io.write(&vec![1; 1 << 20]);
        }
    }

    let (ours, mut peer) = std::os::unix::net::UnixStream::pair().unwrap();
    let mut dispatcher = Dispatcher::new(Vec::new()).unwrap();
    let codec = LengthPrefixed::new(Width::U32, Endian::Big, 16);
    dispatcher
        .sockets()
        .register(ours, sockmux::Interest::READABLE, Stream::new(codec, Flood))
        .unwrap();
    // Frame A's header and first byte: kept as an incomplete frame.
    peer.write_all(&[0, 0, 0, 2, b'a']).unwrap();
    for _ in 0..3 {
        dispatcher.turn(Some(Duration::from_millis(20))).unwrap();
    }
    assert!(dispatcher.state().is_empty());
    // A's last byte, then frame B whole.
    peer.write_all(&[b'a', 0, 0, 0, 1, b'b']).unwrap();
    turn_until(&mut dispatcher, LIMIT, |d| !d.state().is_empty());
    for _ in 0..3 {
        dispatcher.turn(Some(Duration::from_millis(20))).unwrap();
    }
    // The peer reads nothing: 1 MiB stays queued, far above the mark.
    assert_eq!(
        *dispatcher.state(),
        [0],
        "B handed on with A's reply queued"
    );
}

/// Whether no fault plan runs: bytes the client writes in one call reach
/// the stream in one read, and a small reply is taken whole, as on
/// loopback. A plan (`SOCKMUX_FAULTS`) cuts reads and writes short, and
/// then the pipeline tests check only what holds however the bytes are
/// grouped.
fn no_faults() -> bool {
    !(cfg!(feature = "faults") && std::env::var_os("SOCKMUX_FAULTS").is_some())
}

/// What the pipeline tests' protocol records.
#[derive(Debug, Default)]
struct Seen {
    /// `queued()` right after each frame's reply.
    queued: Vec<usize>,
    closed: Vec<(CloseReason, usize)>,
}

/// Answers each line by what it says: `big` with 100 KiB of `b`, `with`
/// with its reply encoded by `write_with`, `abort`, `shut` (a half-close
/// after the reply), `boom` (a panic after the reply); anything else is
/// echoed.
struct Pipelined;

impl Protocol<Seen> for Pipelined {
    fn frame(&mut self, line: &[u8], io: &mut StreamIo<'_, '_, Seen>) {
        match line {
            b"big" => io.write(&[b'b'; 100 * 1024]),
            b"with" => io.write_with(|buf, _| buf.extend_from_slice(b"w\n")),
            b"abort" => io.abort(),
            _ => io.write(&[line, b"\n"].concat()),
        }
        match line {
            b"shut" => io.shutdown(),
            b"boom" => panic!("a bug in the protocol"),
            _ => {}
        }
        let queued = io.queued();
        io.cx.state.queued.push(queued);
    }

    fn closed(&mut self, reason: CloseReason, unsent: usize, cx: &mut Context<'_, Seen>) {
        cx.state.closed.push((reason, unsent));
    }
}

/// A dispatcher with one [`Pipelined`] stream over loopback TCP, and the
/// client's end.
fn pipelined() -> (Dispatcher<Seen>, TcpStream) {
    pipelined_with(|stream| stream)
}

/// [`pipelined`], the stream set up by `setup`.
fn pipelined_with(
    setup: impl FnOnce(Stream<Lines, Pipelined>) -> Stream<Lines, Pipelined>,
) -> (Dispatcher<Seen>, TcpStream) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let client = connect(listener.local_addr().unwrap());
    let (accepted, _) = listener.accept().unwrap();
    let mut dispatcher = Dispatcher::new(Seen::default()).unwrap();
    dispatcher
        .sockets()
        .register(
            accepted,
            sockmux::Interest::READABLE,
            setup(Stream::new(Lines::new(1024), Pipelined)),
        )
        .unwrap();
    (dispatcher, client)
}

/// Reads until `expected.len()` bytes came (or the end), and checks them.
fn expect_reply(client: &mut TcpStream, expected: &[u8]) {
    let mut got = vec![0; expected.len()];
    client.read_exact(&mut got).unwrap();
    assert!(got == expected, "got {:?}", String::from_utf8_lossy(&got));
}

/// [`expect_reply`] on a thread while the loop turns (a write cut short
/// by a fault plan needs the loop to finish it).
fn turn_for_reply(dispatcher: &mut Dispatcher<Seen>, client: &TcpStream, expected: &[u8]) {
    let mut reader = client.try_clone().unwrap();
    let expected = expected.to_vec();
    let done = thread::spawn(move || expect_reply(&mut reader, &expected));
    turn_until(dispatcher, LIMIT, |_| done.is_finished());
    done.join().unwrap();
}

/// The replies to frames handed on from one read are held and written
/// together after the last (the protocol sees them as queued meanwhile); a
/// lone request's reply goes straight to the socket.
#[test]
fn a_pipeline_s_replies_are_written_together_in_order() {
    let (mut dispatcher, mut client) = pipelined();
    client.write_all(b"a\nbb\nwith\nc\n").unwrap();
    turn_until(&mut dispatcher, LIMIT, |d| d.state().queued.len() == 4);
    if no_faults() {
        assert_eq!(dispatcher.state().queued, [2, 5, 7, 9]);
    }
    turn_for_reply(&mut dispatcher, &client, b"a\nbb\nw\nc\n");

    client.write_all(b"alone\n").unwrap();
    turn_until(&mut dispatcher, LIMIT, |d| d.state().queued.len() == 5);
    if no_faults() {
        assert_eq!(dispatcher.state().queued[4], 0, "written through");
    }
    turn_for_reply(&mut dispatcher, &client, b"alone\n");
    client.write_all(b"with\n").unwrap();
    turn_until(&mut dispatcher, LIMIT, |d| d.state().queued.len() == 6);
    if no_faults() {
        assert_eq!(dispatcher.state().queued[5], 0, "written through");
    }
    turn_for_reply(&mut dispatcher, &client, b"w\n");
}

/// Held replies that reach the high-water mark go out at once; the socket
/// takes them, so the frames after them are handed on in the same pass
/// (a stop there would strand them: no `Read` comes for bytes already
/// read). Found by fuzz/fuzz_targets/write_queue.rs.
#[test]
fn held_replies_at_the_high_water_mark_do_not_strand_the_rest() {
    let (mut dispatcher, mut client) = pipelined_with(|s| s.water_marks(1, 4));
    client.write_all(b"aa\nbb\ncc\ndd\n").unwrap();
    turn_until(&mut dispatcher, LIMIT, |d| d.state().queued.len() == 4);
    turn_for_reply(&mut dispatcher, &client, b"aa\nbb\ncc\ndd\n");
}

/// A reply too large to hold goes out after the held ones, uncopied, and
/// the order holds.
#[test]
fn a_large_reply_in_a_pipeline_keeps_the_order() {
    let (mut dispatcher, mut client) = pipelined();
    client.write_all(b"1\nbig\n3\n").unwrap();
    let mut expected = b"1\n".to_vec();
    expected.extend_from_slice(&[b'b'; 100 * 1024]);
    expected.extend_from_slice(b"3\n");
    turn_for_reply(&mut dispatcher, &client, &expected);
}

/// A half-close in a pipeline sends what was written before it, then the
/// end; a later frame's reply is dropped and counted.
#[test]
fn a_shutdown_in_a_pipeline_sends_the_replies_before_it() {
    let (mut dispatcher, mut client) = pipelined();
    client.write_all(b"a\nshut\nb\n").unwrap();
    let reader = thread::spawn(move || {
        let mut all = Vec::new();
        client.read_to_end(&mut all).unwrap();
        (all, client)
    });
    turn_until(&mut dispatcher, LIMIT, |_| reader.is_finished());
    let (all, client) = reader.join().unwrap();
    assert_eq!(all, b"a\nshut\n");
    drop(client);
    turn_until(&mut dispatcher, LIMIT, |d| !d.state().closed.is_empty());
    assert_eq!(dispatcher.state().closed, [(CloseReason::PeerClosed, 2)]);
}

/// An abort in a pipeline drops the replies held so far, counted as
/// unsent, and sends none of them.
#[test]
fn an_abort_in_a_pipeline_drops_the_held_replies() {
    let (mut dispatcher, mut client) = pipelined();
    client.write_all(b"a\nbb\nabort\nc\n").unwrap();
    turn_until(&mut dispatcher, LIMIT, |d| !d.state().closed.is_empty());
    let mut all = Vec::new();
    let _ = client.read_to_end(&mut all); // an end or a reset
    if no_faults() {
        assert_eq!(dispatcher.state().closed, [(CloseReason::Aborted, 5)]);
        assert_eq!(all, b"");
    } else {
        // Replies written before the abort's line was read went out.
        let [(reason, unsent)] = dispatcher.state().closed[..] else {
            panic!("{:?}", dispatcher.state().closed);
        };
        assert_eq!(reason, CloseReason::Aborted);
        assert!(
            unsent <= 5 && b"a\nbb\n".starts_with(&all),
            "{unsent} {all:?}"
        );
    }
}

/// A protocol that panics in a pipeline loses its connection, and the
/// replies it held go nowhere: not to the next connection's pipeline.
#[test]
fn a_panic_in_a_pipeline_leaks_no_reply_to_another_connection() {
    let (mut dispatcher, mut first) = pipelined();
    first.write_all(b"secret\nboom\n").unwrap();
    turn_until(&mut dispatcher, LIMIT, |d| !d.state().closed.is_empty());
    let mut all = Vec::new();
    let _ = first.read_to_end(&mut all);
    if no_faults() {
        // Held with the panicking frame's pipeline: never sent. (When
        // reads are cut short, `secret` is answered before `boom` is read.)
        assert!(!all.starts_with(b"secret"), "got {all:?}");
    }

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut second = connect(listener.local_addr().unwrap());
    let (accepted, _) = listener.accept().unwrap();
    dispatcher
        .sockets()
        .register(
            accepted,
            sockmux::Interest::READABLE,
            Stream::new(Lines::new(1024), Pipelined),
        )
        .unwrap();
    second.write_all(b"x\ny\n").unwrap();
    let reader = thread::spawn(move || {
        expect_reply(&mut second, b"x\ny\n");
        second.shutdown(Shutdown::Write).unwrap();
        let mut rest = Vec::new();
        second.read_to_end(&mut rest).unwrap();
        rest
    });
    turn_until(&mut dispatcher, LIMIT, |_| reader.is_finished());
    assert_eq!(reader.join().unwrap(), b"");
}

/// State of [`pause_reading_holds_buffered_frames_until_resumed`]: the
/// lines handed on so far, and the stream's token.
#[derive(Debug, Default)]
struct Held {
    lines: Vec<Vec<u8>>,
    token: Option<Token>,
}

/// Echoes a line, then holds reading until notified.
struct OneAtATime;

impl Protocol<Held> for OneAtATime {
    fn frame(&mut self, line: &[u8], io: &mut StreamIo<'_, '_, Held>) {
        assert!(!io.reading_paused(), "a frame handed on while paused");
        io.cx.state.token = Some(io.token());
        io.cx.state.lines.push(line.to_vec());
        io.write(line);
        io.write(b"\n");
        io.pause_reading();
        assert!(io.reading_paused());
    }

    fn notified(&mut self, io: &mut StreamIo<'_, '_, Held>) {
        io.resume_reading();
    }
}

/// `StreamIo::pause_reading`: the lines a client sent in one write stay
/// buffered while the protocol holds reading, however long the loop turns,
/// and are handed on one at a time after each `resume_reading`, with no
/// new input.
#[test]
fn pause_reading_holds_buffered_frames_until_resumed() {
    let mut dispatcher = Dispatcher::new(Held::default()).unwrap();
    let listener = dispatcher
        .sockets()
        .listen_tcp(
            "127.0.0.1:0",
            Acceptor::new(|_: Token, _: &mut Context<'_, Held>| {
                Stream::new(Lines::new(64), OneAtATime)
            }),
        )
        .unwrap();
    let addr = dispatcher.sockets().local_addr(listener).unwrap();
    let mut conn = connect(addr);
    conn.write_all(b"a\nb\nc\n").unwrap();
    turn_until(&mut dispatcher, LIMIT, |d| !d.state().lines.is_empty());
    let mut echo = [0; 2];
    for (i, want) in [b"a", b"b", b"c"].iter().enumerate() {
        conn.read_exact(&mut echo).unwrap();
        assert_eq!(&echo[..1], *want);
        // Held: a few more turns hand on nothing.
        for _ in 0..5 {
            dispatcher.turn(Some(Duration::from_millis(1))).unwrap();
        }
        assert_eq!(dispatcher.state().lines.len(), i + 1);
        if i < 2 {
            let t = dispatcher.state().token.unwrap();
            dispatcher.sockets().notify(t).unwrap();
            turn_until(&mut dispatcher, LIMIT, |d| d.state().lines.len() == i + 2);
        }
    }
    assert_eq!(dispatcher.state().lines, [b"a", b"b", b"c"]);
}
