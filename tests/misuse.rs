//! The misuse detector of debug builds (docs/observability.md): after a
//! `Read` event's handler returns, the dispatcher asks the table whether
//! the handler left an edge-mode socket undrained, or spins on a
//! level-mode socket it never reads, and logs one warning per socket,
//! naming its token and its responder's type.
//!
//! Its own binary: it installs a global logger that keeps every record
//! (the tests run in parallel, so each looks only for the lines that name
//! its own responder type). In release builds the detector is compiled
//! out: the same tests assert that nothing is logged (ci/test.sh runs
//! `cargo test --release --test misuse`).
//!
//! Last, the examples stay silent: each runs as a user runs it (debug
//! build, `RUST_LOG=warn`), serves some traffic (a flood that makes
//! `tcp_echo` pause reading, pipelined requests for `kv` and `http`), is
//! stopped, and its log has neither warning.

mod util;

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

use sockmux::{
    Acceptor, Action, Context, Dispatcher, Event, Interest, Mode, Protocol, Raw, Stream, StreamIo,
    Token, SPIN_EVENTS,
};

use util::example::Server;
use util::{recv_to_would_block, turn_until, udp_peer, LIMIT, QUIET};

/// What the edge-mode warning says.
const EDGE: &str = "edge mode, and its Read handler returned before a read answered WouldBlock";
/// What the spin warning says (after the number of events).
const SPIN: &str = "Read events in a row, and its handler neither read nor dropped read interest";

/// Every record logged in this process, as "LEVEL message".
static RECORDS: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct Keep;

impl log::Log for Keep {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::Level::Warn
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            let line = format!("{} {}", record.level(), record.args());
            RECORDS.lock().unwrap_or_else(|e| e.into_inner()).push(line);
        }
    }

    fn flush(&self) {}
}

fn install_logger() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        log::set_logger(&Keep).expect("the only logger");
        log::set_max_level(log::LevelFilter::Warn);
    });
}

/// The warnings logged so far that name `token` with responder type `name`
/// (the end of its type name: `"misuse::HalfReader"` ends with
/// `"HalfReader"`).
fn warnings_about(token: Token, name: &str) -> Vec<String> {
    let prefix = format!("WARN {token} (");
    let tail = format!("{name}): ");
    RECORDS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter(|l| l.starts_with(&prefix) && l.contains(&tail))
        .cloned()
        .collect()
}

/// Every warning logged so far that has `name` in a responder type name.
fn warnings_naming(name: &str) -> Vec<String> {
    RECORDS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter(|l| l.starts_with("WARN ") && l.contains("): ") && l.contains(name))
        .cloned()
        .collect()
}

/// How many datagrams the test responders received.
#[derive(Debug, Default)]
struct Got {
    datagrams: usize,
    events: usize,
}

/// Counts a `Read` event and receives one datagram (if there is one).
fn recv_one(cx: &mut Context<'_, Got>) {
    cx.state.events += 1;
    let mut buf = [0; 64];
    match cx.sockets.recv(cx.token, &mut buf) {
        Ok(_) => cx.state.datagrams += 1,
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        Err(e) => panic!("recv: {e}"),
    }
}

/// Wrong in edge mode: reads one datagram per `Read` event and returns.
struct HalfReader;

impl sockmux::Responder<Got> for HalfReader {
    fn ready(&mut self, event: Event, cx: &mut Context<'_, Got>) -> Action {
        if event == Event::Read(cx.token) {
            recv_one(cx);
        }
        Action::Continue
    }
}

/// Right in edge mode: reads until `WouldBlock`.
struct EdgeDrainer;

impl sockmux::Responder<Got> for EdgeDrainer {
    fn ready(&mut self, event: Event, cx: &mut Context<'_, Got>) -> Action {
        if event == Event::Read(cx.token) {
            cx.state.events += 1;
            let mut buf = [0; 64];
            cx.state.datagrams +=
                recv_to_would_block(&mut buf, |b| cx.sockets.recv(cx.token, b), |_| {});
        }
        Action::Continue
    }
}

/// Right in level mode: reads one datagram per event (the next event
/// brings the rest).
struct LevelReader;

impl sockmux::Responder<Got> for LevelReader {
    fn ready(&mut self, event: Event, cx: &mut Context<'_, Got>) -> Action {
        if event == Event::Read(cx.token) {
            recv_one(cx);
        }
        Action::Continue
    }
}

/// Wrong in level mode: never reads, keeps read interest.
struct Spinner;

impl sockmux::Responder<Got> for Spinner {
    fn ready(&mut self, event: Event, cx: &mut Context<'_, Got>) -> Action {
        if event == Event::Read(cx.token) {
            cx.state.events += 1;
        }
        Action::Continue
    }
}

/// Right in level mode without reading: drops read interest on its first
/// `Read` event (it would read later; here it never does).
struct Holder;

impl sockmux::Responder<Got> for Holder {
    fn ready(&mut self, event: Event, cx: &mut Context<'_, Got>) -> Action {
        if event == Event::Read(cx.token) {
            cx.state.events += 1;
            cx.sockets
                .set_interest(cx.token, Interest::WRITABLE)
                .unwrap();
        }
        Action::Continue
    }
}

/// A dispatcher with `responder` on a bound UDP socket in `mode`, a peer,
/// and the socket's token.
fn udp_case<R: sockmux::Responder<Got> + 'static>(
    responder: R,
    mode: Mode,
) -> (Dispatcher<Got>, UdpSocket, Token) {
    install_logger();
    let mut dispatcher = Dispatcher::new(Got::default()).unwrap();
    let t = dispatcher
        .sockets()
        .bind_udp("127.0.0.1:0", responder)
        .unwrap();
    dispatcher.sockets().set_mode(t, mode).unwrap();
    let peer = udp_peer();
    peer.connect(dispatcher.sockets().local_addr(t).unwrap())
        .unwrap();
    (dispatcher, peer, t)
}

/// What the detector should have logged about `token`: `want` in a debug
/// build, nothing in a release build.
#[track_caller]
fn assert_one_warning_or_none(token: Token, name: &str, want: &str) {
    let found = warnings_about(token, name);
    if cfg!(debug_assertions) {
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains(want), "{found:?}");
    } else {
        assert!(found.is_empty(), "a release build logged {found:?}");
    }
}

#[test]
fn an_undrained_edge_mode_socket_is_reported_once() {
    let (mut dispatcher, peer, t) = udp_case(HalfReader, Mode::Edge);
    // Two datagrams, one event (or two): one is read, one is left.
    peer.send(b"one").unwrap();
    peer.send(b"two").unwrap();
    turn_until(&mut dispatcher, LIMIT, |d| d.state().datagrams >= 1);
    // More datagrams, more edges, more events: still one warning. Not on
    // Windows: there an undrained socket gets no new edge, even for new
    // data (docs/windows.md), which is what the warning is about.
    if cfg!(not(windows)) {
        for i in 0..5 {
            peer.send(b"more").unwrap();
            turn_until(&mut dispatcher, LIMIT, |d| d.state().datagrams >= 2 + i);
        }
        assert!(dispatcher.state().events >= 6);
    }
    assert_one_warning_or_none(t, "HalfReader", EDGE);
    if cfg!(debug_assertions) {
        let line = &warnings_about(t, "HalfReader")[0];
        assert!(
            line.contains(&format!("{t} (misuse::HalfReader)")),
            "{line}"
        );
    }
}

#[test]
fn a_level_mode_handler_that_never_reads_is_reported_once_as_a_spin() {
    let (mut dispatcher, peer, t) = udp_case(Spinner, Mode::Level);
    peer.send(b"never read").unwrap();
    let enough = 3 * SPIN_EVENTS as usize;
    turn_until(&mut dispatcher, LIMIT, |d| d.state().events >= enough);
    assert_one_warning_or_none(t, "Spinner", SPIN);
    if cfg!(debug_assertions) {
        let line = &warnings_about(t, "Spinner")[0];
        assert!(line.contains(&format!("{SPIN_EVENTS} {SPIN}")), "{line}");
    }
}

/// Level mode, reading late: one datagram every `P`-th `Read` event, the
/// events between left alone (data still waiting).
struct Lazy<const P: usize>;

impl<const P: usize> sockmux::Responder<Got> for Lazy<P> {
    fn ready(&mut self, event: Event, cx: &mut Context<'_, Got>) -> Action {
        if event == Event::Read(cx.token) {
            cx.state.events += 1;
            if cx.state.events % P == 0 {
                let mut buf = [0; 64];
                cx.sockets.recv(cx.token, &mut buf).unwrap();
                cx.state.datagrams += 1;
            }
        }
        Action::Continue
    }
}

/// Three datagrams for a [`Lazy`] responder, turned until it read them.
fn lazy_case<const P: usize>() -> Token {
    let (mut dispatcher, peer, t) = udp_case(Lazy::<P>, Mode::Level);
    for _ in 0..3 {
        peer.send(b"late").unwrap();
    }
    turn_until(&mut dispatcher, LIMIT, |d| d.state().datagrams == 3);
    assert_eq!(dispatcher.state().events, 3 * P);
    t
}

#[test]
fn reading_at_the_spin_limit_is_not_a_spin() {
    // SPIN_EVENTS - 1 events without a read, then a read: never reported.
    const P: usize = SPIN_EVENTS as usize;
    let t = lazy_case::<P>();
    let found = warnings_about(t, &format!("Lazy<{P}>"));
    assert!(found.is_empty(), "{found:?}");
}

#[test]
fn reading_one_event_past_the_spin_limit_is_a_spin() {
    // SPIN_EVENTS events without a read: reported, once.
    const P: usize = SPIN_EVENTS as usize + 1;
    let t = lazy_case::<P>();
    assert_one_warning_or_none(t, &format!("Lazy<{P}>"), SPIN);
}

#[test]
fn correct_udp_handlers_are_not_reported() {
    let (mut edge, edge_peer, _) = udp_case(EdgeDrainer, Mode::Edge);
    let (mut level, level_peer, _) = udp_case(LevelReader, Mode::Level);
    let (mut holder, holder_peer, _) = udp_case(Holder, Mode::Level);
    for round in 1..=20 {
        for _ in 0..5 {
            edge_peer.send(b"e").unwrap();
            level_peer.send(b"l").unwrap();
        }
        turn_until(&mut edge, LIMIT, |d| d.state().datagrams >= 5 * round);
        turn_until(&mut level, LIMIT, |d| d.state().datagrams >= 5 * round);
    }
    holder_peer.send(b"h").unwrap();
    turn_until(&mut holder, LIMIT, |d| d.state().events >= 1);
    // It keeps write interest only: many turns, no Read.
    for _ in 0..2 * SPIN_EVENTS {
        holder.turn(Some(Duration::from_millis(1))).unwrap();
    }
    assert_eq!(holder.state().events, 1);
    for name in ["EdgeDrainer", "LevelReader", "Holder"] {
        let found = warnings_naming(name);
        assert!(found.is_empty(), "{name}: {found:?}");
    }
}

/// An echo protocol for the stream case.
struct Echo;

impl Protocol<Vec<Token>> for Echo {
    fn frame(&mut self, bytes: &[u8], io: &mut StreamIo<'_, '_, Vec<Token>>) {
        io.write(bytes);
    }
}

/// A `Stream` echo, including a client that stops reading (the stream
/// pauses, and drops read interest) then reads it all back.
#[test]
fn a_stream_is_not_reported_even_when_it_pauses() {
    install_logger();
    let mut dispatcher = Dispatcher::new(Vec::new()).unwrap();
    let acceptor = Acceptor::new(|t: Token, cx: &mut Context<'_, Vec<Token>>| {
        cx.state.push(t);
        Stream::new(Raw, Echo).water_marks(4 * 1024, 16 * 1024)
    });
    let mut client = util::connect_to_acceptor(&mut dispatcher, acceptor);
    let chunk = [3u8; 16 * 1024];
    let (mut sent, mut got) = (0usize, 0usize);
    let mut buf = vec![0; 64 * 1024];
    let deadline = Instant::now() + LIMIT;
    // Phase one: write 8 MiB without reading, as far as it goes (the
    // stream pauses, the kernel pushes back); phase two: read it all.
    let offered = 8 << 20;
    let mut stalled = 0;
    while sent < offered && stalled < 2 * SPIN_EVENTS {
        assert!(Instant::now() < deadline, "no progress in {LIMIT:?}");
        match client.write(&chunk) {
            Ok(n) => {
                sent += n;
                stalled = 0;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => stalled += 1,
            Err(e) => panic!("client write: {e}"),
        }
        dispatcher.turn(Some(Duration::from_millis(1))).unwrap();
    }
    while got < sent {
        assert!(
            Instant::now() < deadline,
            "{got} of {sent} back in {LIMIT:?}"
        );
        match client.read(&mut buf) {
            Ok(0) => panic!("the server closed"),
            Ok(n) => got += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => panic!("client read: {e}"),
        }
        dispatcher.turn(Some(Duration::from_millis(1))).unwrap();
    }
    let conn = dispatcher.state()[0];
    drop(client);
    turn_until(&mut dispatcher, LIMIT, |d| !d.sockets().contains(conn));
    for name in [
        "misuse::Echo>",
        "a_stream_is_not_reported_even_when_it_pauses",
    ] {
        let found = warnings_naming(name);
        assert!(found.is_empty(), "{name}: {found:?}");
    }
    let found = warnings_about(conn, "");
    assert!(found.is_empty(), "{found:?}");
}

// --- the examples stay silent ----------------------------------------------------

/// Runs example `name` (`RUST_LOG=warn`), lets `drive` serve traffic to
/// it, stops it, and checks its log has no detector warning.
fn silent(name: &str, drive: impl FnOnce(&mut Server)) {
    if !cfg!(debug_assertions) {
        // The examples' release binaries have no detector to hear.
        println!("{name}: release build, no detector to check");
        return;
    }
    let mut server = Server::start(name, "warn");
    drive(&mut server);
    if cfg!(not(unix)) {
        // It will be killed (no SIGTERM): a last look at what it logs.
        server.log().during(QUIET);
    }
    let mut lines = server.log().seen().to_vec();
    if let Some(rest) = server.stop() {
        lines.extend(rest);
    }
    let bad: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains(EDGE) || l.contains(SPIN))
        .collect();
    assert!(bad.is_empty(), "{name} warned: {bad:?}");
}

/// A blocking client of `server` with [`LIMIT`] on its reads and writes.
fn client(server: &Server) -> TcpStream {
    let conn = TcpStream::connect(server.addr()).unwrap();
    conn.set_read_timeout(Some(LIMIT)).unwrap();
    conn.set_write_timeout(Some(LIMIT)).unwrap();
    conn
}

/// Reads until `buf` holds `n` bytes.
#[track_caller]
fn read_exactly(conn: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0; n];
    conn.read_exact(&mut buf).unwrap();
    buf
}

#[test]
fn tcp_echo_stays_silent_even_paused() {
    silent("tcp_echo", |server| {
        let mut c = client(server);
        for len in [1, 1000, 100_000] {
            let message = vec![b'x'; len];
            c.write_all(&message).unwrap();
            assert_eq!(read_exactly(&mut c, len), message);
        }
        // A flood with no reads: more than the kernel's buffers and the
        // stream's high-water mark (256 KiB) hold, so the stream pauses;
        // then everything is read back.
        let flood = TcpStream::connect(server.addr()).unwrap();
        flood.set_nonblocking(true).unwrap();
        let chunk = vec![7u8; 64 * 1024];
        let offered = 64 << 20;
        let mut sent = 0;
        let mut stalled_since: Option<Instant> = None;
        while sent < offered {
            match (&flood).write(&chunk) {
                Ok(n) => {
                    sent += n;
                    stalled_since = None;
                }
                // The server took no byte for a while: it paused (or the
                // machine is slow; then it pauses later, as we read).
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    let since = *stalled_since.get_or_insert_with(Instant::now);
                    if since.elapsed() > QUIET {
                        break;
                    }
                    std::thread::yield_now();
                }
                Err(e) => panic!("write: {e}"),
            }
        }
        assert!(sent < offered, "the server took {sent} bytes unread");
        flood.set_nonblocking(false).unwrap();
        flood.set_read_timeout(Some(LIMIT)).unwrap();
        let mut flood = flood;
        let back = read_exactly(&mut flood, sent);
        assert!(back.iter().all(|&b| b == 7));
    });
}

#[test]
fn udp_echo_stays_silent() {
    silent("udp_echo", |server| {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.connect(server.addr()).unwrap();
        socket.set_read_timeout(Some(LIMIT)).unwrap();
        let mut buf = [0; 2048];
        for i in 0..50usize {
            let message = vec![i as u8; 1 + i * 20];
            socket.send(&message).unwrap();
            let n = socket.recv(&mut buf).unwrap();
            assert_eq!(&buf[..n], &message[..]);
        }
        // A burst: the server reads many datagrams per event. UDP may drop
        // some; what comes back within the quiet window is enough.
        for _ in 0..200 {
            socket.send(b"burst").unwrap();
        }
        socket.set_read_timeout(Some(QUIET)).unwrap();
        let mut back = 0;
        while back < 200 && socket.recv(&mut buf).is_ok() {
            back += 1;
        }
        assert!(back > 0);
    });
}

#[test]
fn chat_stays_silent() {
    silent("chat", |server| {
        let alice = client(server);
        let mut a = BufReader::new(alice.try_clone().unwrap());
        let mut line = String::new();
        a.read_line(&mut line).unwrap();
        assert!(line.starts_with("* you are"), "{line}");
        let bob = client(server);
        let mut b = BufReader::new(bob.try_clone().unwrap());
        line.clear();
        b.read_line(&mut line).unwrap();
        assert!(line.starts_with("* you are"), "{line}");
        // A hundred lines in one write, all delivered to the other.
        let said: String = (0..100).map(|i| format!("line {i}\n")).collect();
        (&alice).write_all(said.as_bytes()).unwrap();
        let mut seen = 0;
        while seen < 100 {
            line.clear();
            assert_ne!(b.read_line(&mut line).unwrap(), 0, "chat closed");
            if line.ends_with(&format!(": line {seen}\n")) {
                seen += 1;
            }
        }
        (&bob).write_all(b"bye\n").unwrap();
        loop {
            line.clear();
            assert_ne!(a.read_line(&mut line).unwrap(), 0, "chat closed");
            if line.ends_with(": bye\n") {
                break;
            }
        }
    });
}

#[test]
fn kv_stays_silent_pipelined() {
    silent("kv", |server| {
        let mut c = client(server);
        let mut request = Vec::new();
        let mut want = Vec::new();
        for i in 0..100 {
            let (k, v) = (format!("k{i}"), format!("value {i}"));
            request.extend_from_slice(
                format!(
                    "*3\r\n$3\r\nSET\r\n${}\r\n{k}\r\n${}\r\n{v}\r\n",
                    k.len(),
                    v.len()
                )
                .as_bytes(),
            );
            want.extend_from_slice(b"+OK\r\n");
            request.extend_from_slice(format!("GET {k}\r\n").as_bytes());
            want.extend_from_slice(format!("${}\r\n{v}\r\n", v.len()).as_bytes());
        }
        c.write_all(&request).unwrap();
        assert_eq!(read_exactly(&mut c, want.len()), want);
    });
}

#[test]
fn http_stays_silent_pipelined() {
    silent("http", |server| {
        let mut c = client(server);
        let request = b"GET /json HTTP/1.1\r\nHost: test\r\n\r\n".repeat(32);
        c.write_all(&request).unwrap();
        // Each answer has the same length (the same body and date length):
        // read until 32 status lines came.
        let mut got = Vec::new();
        let mut buf = [0; 4096];
        let status = b"HTTP/1.1 200 OK\r\n";
        let count = |bytes: &[u8]| bytes.windows(status.len()).filter(|w| w == status).count();
        let body = br#"{"message":"Hello, World!"}"#;
        let bodies = |bytes: &[u8]| bytes.windows(body.len()).filter(|w| w == body).count();
        while count(&got) < 32 || bodies(&got) < 32 {
            let n = c.read(&mut buf).unwrap();
            assert_ne!(n, 0, "http closed after {} answers", count(&got));
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(count(&got), 32);
    });
}
