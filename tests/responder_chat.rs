//! The `chat` example run as a binary, as a user runs it: lines are
//! broadcast to the other members; bad input (an overlong line, garbage, a
//! member that never reads) costs a bounded amount and never disturbs the
//! others. Checked from outside: what the members read, and the server's
//! log.

mod util;

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use util::example::{is, Server};
use util::{Rng, LIMIT};

/// `chat`'s longest line, as its error line says.
const MAX_LINE: usize = 4096;
/// `chat`'s bound on what it queues for one member (see its doc).
const MAX_QUEUED: usize = 256 * 1024;

/// `chat` on a port of its own, logging joins and leaves.
fn chat() -> Server {
    Server::start("chat", "chat=debug")
}

/// `chat` with `threads` loops (`--threads`), spread by the hand-off: the
/// least-loaded loop gets each member, so members that join one after the
/// other are on different loops and their lines cross (with
/// `SO_REUSEPORT`'s hash, three members share one loop a quarter of the
/// time).
fn chat_on(threads: usize) -> Server {
    let mut cmd = Server::command("chat", "chat=debug");
    cmd.args(["--threads", &threads.to_string(), "--hand-off"]);
    Server::spawn("chat", &mut cmd)
}

/// A chat client with blocking I/O and a read timeout.
struct Member {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    name: String,
    /// The line the server greeted it with.
    welcome: String,
}

impl Member {
    /// Connects and waits for the welcome line, so the server counts it as
    /// a member before anyone speaks.
    fn join(addr: SocketAddr) -> Member {
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(LIMIT)).unwrap();
        let name = stream.local_addr().unwrap().to_string();
        let mut member = Member {
            reader: BufReader::new(stream.try_clone().unwrap()),
            writer: stream,
            name,
            welcome: String::new(),
        };
        member.welcome = member.line();
        assert!(
            member
                .welcome
                .starts_with(&format!("* you are {}", member.name)),
            "{}",
            member.welcome
        );
        member
    }

    fn say(&mut self, line: &str) {
        self.writer.write_all(line.as_bytes()).unwrap();
        self.writer.write_all(b"\n").unwrap();
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        assert!(line.ends_with('\n'), "cut short: {line:?}");
        line.pop();
        line
    }
}

#[test]
fn each_line_goes_to_the_two_others_and_not_back() {
    each_line_goes_to_the_two_others_and_not_back_on(1);
}

/// As above, with two loops: lines cross from one loop to the other.
#[test]
fn each_line_goes_to_the_two_others_and_not_back_on_2_loops() {
    each_line_goes_to_the_two_others_and_not_back_on(2);
}

fn each_line_goes_to_the_two_others_and_not_back_on(threads: usize) {
    let mut server = chat_on(threads);
    let addr = server.addr();
    let mut members: Vec<Member> = (0..3).map(|_| Member::join(addr)).collect();
    assert_eq!(
        members[2].welcome,
        format!("* you are {}; 2 others here", members[2].name)
    );
    for round in 0..3 {
        for speaker in 0..3 {
            let text = format!("round {round}, {speaker} speaking");
            members[speaker].say(&text);
            let want = format!("{}: {text}", members[speaker].name);
            for (i, listener) in members.iter_mut().enumerate() {
                if i != speaker {
                    assert_eq!(listener.line(), want);
                }
            }
        }
    }
    // The speaker got nothing back: after a line from member 1, the next
    // thing member 0 reads is that line, not an echo of its own.
    members[0].say("from 0");
    members[1].say("from 1");
    let first = members[0].line();
    assert!(first.ends_with(": from 1"), "{first}");
    // CRLF from a telnet-style client is one line.
    members[2].writer.write_all(b"crlf\r\n").unwrap();
    let want = format!("{}: crlf", members[2].name);
    assert_eq!(members[0].line(), want);

    // Once they hang up, the member list empties: the log has each leave,
    // and a newcomer is told nobody else is here.
    drop(members);
    server
        .log()
        .count(3, "members leaving", |l| is(l, "DEBUG", " left"));
    let newcomer = Member::join(addr);
    assert_eq!(
        newcomer.welcome,
        format!("* you are {}; 0 others here", newcomer.name)
    );
    server.stop();
}

#[test]
fn an_overlong_line_gets_an_error_and_a_close_and_the_others_go_on() {
    let mut server = chat();
    let addr = server.addr();
    let mut a = Member::join(addr);
    let mut b = Member::join(addr);
    let mut bad = Member::join(addr);
    // A line of MAX_LINE bytes is a line.
    let longest = "y".repeat(MAX_LINE);
    a.say(&longest);
    assert_eq!(b.line(), format!("{}: {longest}", a.name));
    assert_eq!(bad.line(), format!("{}: {longest}", a.name));
    // No newline within the limit: refused after MAX_LINE bytes.
    bad.writer.write_all(&vec![b'x'; MAX_LINE + 1]).unwrap();
    let reply = bad.line();
    assert_eq!(reply, format!("error: line longer than {MAX_LINE} bytes"));
    let mut rest = Vec::new();
    let n = bad.reader.read_to_end(&mut rest).unwrap();
    assert_eq!(n, 0, "closed after the error: {rest:?}");
    server.log().next_matching("the refusal", |l| {
        is(
            l,
            "INFO",
            &format!("line longer than {MAX_LINE} bytes; closing"),
        )
    });
    // Nothing of it reached the others, and they still talk.
    a.say("still here");
    assert_eq!(b.line(), format!("{}: still here", a.name));
    server.stop();
}

/// Row 19 of docs/reliability.md: random bytes and a 100 MiB line. The server
/// answers with an error and closes, reading at most a bounded amount; it
/// never buffers the line.
#[test]
fn garbage_and_a_100_mib_line_are_refused_with_bounded_reads() {
    let mut server = chat();
    let addr = server.addr();
    let mut a = Member::join(addr);
    let mut b = Member::join(addr);
    let bad = Member::join(addr);
    let mut garbage = vec![0; 1 << 20];
    Rng::new(19).fill(&mut garbage);
    garbage.retain(|&b| b != b'\n');
    let start = Instant::now();
    let mut writer = bad.writer.try_clone().unwrap();
    // Wine does not always wake a send blocked when the reset arrives, nor
    // when the socket is shut down: the flood writes with a short timeout
    // and stops once the reader below is done.
    writer
        .set_write_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let flood_done = Arc::clone(&done);
    let flood = std::thread::spawn(move || {
        // A 100 MiB line: stops when the server closes (a reset or a broken
        // pipe), long before the end.
        let mut sent = 0usize;
        while sent < 100 << 20 {
            match writer.write(&garbage) {
                Ok(n) => sent += n,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    if flood_done.load(Ordering::SeqCst) {
                        break;
                    }
                }
                // After the reader's own shutdown any error ends it (Winsock
                // says WSAESHUTDOWN); before, only the server's close may.
                Err(_) if flood_done.load(Ordering::SeqCst) => break,
                Err(e) => {
                    assert!(
                        matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::BrokenPipe),
                        "{e}"
                    );
                    break;
                }
            }
        }
        sent
    });
    // The flooder sees its connection end: an error line then the end, or
    // a reset if the server closed with unread bytes.
    let mut reader = bad.reader;
    let mut got = Vec::new();
    if let Err(e) = reader.read_to_end(&mut got) {
        assert!(
            !matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
            "the server did not close the flooding connection within {LIMIT:?}"
        );
    }
    // The server is done with us: stop the flood and release a send still
    // blocked in it.
    done.store(true, Ordering::SeqCst);
    let _ = reader.get_ref().shutdown(std::net::Shutdown::Both);
    if !got.is_empty() {
        assert!(
            got.starts_with(b"error: line longer than"),
            "{:?}",
            &got[..got.len().min(80)]
        );
    }
    let sent = flood.join().unwrap();
    assert!(sent < 100 << 20, "the server took the whole 100 MiB line");
    assert!(start.elapsed() < LIMIT);
    // It was refused as an overlong line, not lost to an error.
    server.log().next_matching("the refusal", |l| {
        is(
            l,
            "INFO",
            &format!("line longer than {MAX_LINE} bytes; closing"),
        )
    });
    a.say("after the flood");
    assert_eq!(b.line(), format!("{}: after the flood", a.name));
    server.stop();
}

/// A member that never reads is dropped once its queue passes the bound;
/// the speaker and the other members are not held up.
#[test]
fn a_member_that_never_reads_is_dropped_at_its_queue_bound() {
    a_member_that_never_reads_is_dropped_at_its_queue_bound_on(1);
}

/// As above, with two loops: lines cross from one loop to the other.
#[test]
fn a_member_that_never_reads_is_dropped_at_its_queue_bound_on_2_loops() {
    a_member_that_never_reads_is_dropped_at_its_queue_bound_on(2);
}

fn a_member_that_never_reads_is_dropped_at_its_queue_bound_on(threads: usize) {
    let mut server = chat_on(threads);
    let addr = server.addr();
    let mut speaker = Member::join(addr);
    let mut reader = Member::join(addr);
    let sleeper = Member::join(addr);
    let line = "z".repeat(MAX_LINE - 100);
    let want = format!("{}: {line}", speaker.name);
    // Enough to fill the sleeper's kernel buffers (a few MiB on loopback)
    // and then its queue in the server, with room to spare.
    let lines = (MAX_QUEUED + (16 << 20)) / line.len();
    for _ in 0..lines {
        speaker.say(&line);
        // The reader keeps up all along.
        assert_eq!(reader.line(), want);
    }
    // The sleeper was dropped: what it reads now ends (after its backlog),
    // rather than timing out.
    let mut backlog = Vec::new();
    match (&sleeper.writer).read_to_end(&mut backlog) {
        Ok(_) => {}
        Err(e) => assert_eq!(e.kind(), ErrorKind::ConnectionReset, "{e}"),
    }
    assert!(backlog.len() <= MAX_QUEUED + (16 << 20));
    // Dropped once, for not reading: the speaker and the reader were not.
    server
        .log()
        .next_matching("the drop", |l| is(l, "WARN", ": does not read; dropped"));
    let drops = server
        .log()
        .seen()
        .iter()
        .filter(|l| is(l, "WARN", ": does not read; dropped"))
        .count();
    assert_eq!(drops, 1);
    speaker.say("still here");
    assert_eq!(reader.line(), format!("{}: still here", speaker.name));
    server.stop();
}
