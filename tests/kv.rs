//! The `kv` example (a Redis-protocol key-value server), in process: its
//! modules included by `#[path]`, a dispatcher on a thread of its own
//! serving plain TCP clients that write RESP. Every command's exact reply
//! bytes, pipelining, inline commands, expiry, and bad input (reliability
//! row 19): random bytes, lengths and counts past the limits, a huge bulk
//! string announced, each answered with Redis's error and a close (or
//! waited for within the limits), never a stall of another client. Last,
//! the example's binary itself: `--help`, a bad flag, a PING, SIGTERM.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use sockmux::Dispatcher;

#[path = "../examples/kv/conn.rs"]
mod conn;
#[path = "../examples/kv/resp.rs"]
mod resp;
#[path = "../examples/kv/store.rs"]
mod store;
mod util;

use util::served::Served;
use util::{Rng, LIMIT};

/// A kv server on a thread of its own, stopped when dropped.
struct Server;

impl Server {
    fn start() -> Served {
        Served::start(|| {
            let mut dispatcher = Dispatcher::new(store::Store::new())?;
            let listener = conn::listen(&mut dispatcher, "127.0.0.1:0")?;
            Ok((dispatcher, listener))
        })
    }
}

/// A command as clients send it: a multibulk array of bulk strings.
fn cmd(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n{arg}\r\n", arg.len()).as_bytes());
    }
    out
}

/// Reads exactly `n` bytes (within [`LIMIT`]).
#[track_caller]
fn read_n(conn: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0; n];
    conn.read_exact(&mut buf)
        .unwrap_or_else(|e| panic!("reading {n} bytes: {e}"));
    buf
}

/// Sends `request` and checks that the reply is exactly `want`.
#[track_caller]
fn check(conn: &mut TcpStream, request: &[u8], want: &str) {
    conn.write_all(request).unwrap();
    let got = read_n(conn, want.len());
    assert_eq!(
        String::from_utf8_lossy(&got),
        want,
        "reply to {:?}",
        String::from_utf8_lossy(request)
    );
}

/// Everything up to the server's close (within [`LIMIT`]); a reset counts
/// as a close.
#[track_caller]
fn read_to_close(conn: &mut TcpStream) -> Vec<u8> {
    let mut all = Vec::new();
    let mut buf = [0; 4096];
    loop {
        match conn.read(&mut buf) {
            Ok(0) => return all,
            Ok(n) => all.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted
                ) =>
            {
                return all
            }
            Err(e) => panic!("no close within {LIMIT:?} ({e}); got {all:?}"),
        }
    }
}

/// Checks that a new client gets `PONG`: the server is not stalled.
#[track_caller]
fn still_serves(server: &Served) {
    check(&mut server.connect(), &cmd(&["PING"]), "+PONG\r\n");
}

#[test]
fn every_command_replies_as_redis() {
    let server = Server::start();
    let mut c = server.connect();
    let cases: &[(&[&str], &str)] = &[
        (&["PING"], "+PONG\r\n"),
        (&["ping", "hello"], "$5\r\nhello\r\n"),
        (
            &["PING", "a", "b"],
            "-ERR wrong number of arguments for 'ping' command\r\n",
        ),
        (&["ECHO", "hi there"], "$8\r\nhi there\r\n"),
        (
            &["ECHO"],
            "-ERR wrong number of arguments for 'echo' command\r\n",
        ),
        (&["GET", "k"], "$-1\r\n"),
        (&["SET", "k", "v"], "+OK\r\n"),
        (&["GET", "k"], "$1\r\nv\r\n"),
        (&["SET", "k", ""], "+OK\r\n"),
        (&["GET", "k"], "$0\r\n\r\n"),
        (
            &["GET"],
            "-ERR wrong number of arguments for 'get' command\r\n",
        ),
        (
            &["GET", "a", "b"],
            "-ERR wrong number of arguments for 'get' command\r\n",
        ),
        (
            &["foo", "a", "b"],
            "-ERR unknown command 'foo', with args beginning with: 'a' 'b' \r\n",
        ),
        (
            &["foo"],
            "-ERR unknown command 'foo', with args beginning with: \r\n",
        ),
        (&["SET", "k", "v", "NX"], "$-1\r\n"),
        (&["SET", "new", "1", "XX"], "$-1\r\n"),
        (&["SET", "new", "1", "NX"], "+OK\r\n"),
        (&["SET", "k", "v2", "XX"], "+OK\r\n"),
        (&["SET", "k", "v3", "GET"], "$2\r\nv2\r\n"),
        (&["SET", "k", "v", "NX", "XX"], "-ERR syntax error\r\n"),
        (&["SET", "k", "v", "foo"], "-ERR syntax error\r\n"),
        (&["SET", "k", "v", "EX"], "-ERR syntax error\r\n"),
        (
            &["SET", "k", "v", "EX", "10", "PX", "10"],
            "-ERR syntax error\r\n",
        ),
        (
            &["SET", "k", "v", "EX", "x"],
            "-ERR value is not an integer or out of range\r\n",
        ),
        (
            &["SET", "k", "v", "EX", "0"],
            "-ERR invalid expire time in 'set' command\r\n",
        ),
        (
            &["SET", "k", "v", "PX", "-5"],
            "-ERR invalid expire time in 'set' command\r\n",
        ),
        (
            &["SET", "k", "v", "EX", "9223372036854775807"],
            "-ERR invalid expire time in 'set' command\r\n",
        ),
        (&["SET", "k", "v", "EX", "100"], "+OK\r\n"),
        (&["SET", "k", "v"], "+OK\r\n"),
        (&["TTL", "k"], ":-1\r\n"),
        (&["TTL", "nothing"], ":-2\r\n"),
        (&["PTTL", "nothing"], ":-2\r\n"),
        (&["INCR", "n"], ":1\r\n"),
        (&["INCRBY", "n", "41"], ":42\r\n"),
        (&["DECR", "n"], ":41\r\n"),
        (&["DECRBY", "n", "50"], ":-9\r\n"),
        (&["GET", "n"], "$2\r\n-9\r\n"),
        (
            &["INCR", "k"],
            "-ERR value is not an integer or out of range\r\n",
        ),
        (
            &["INCRBY", "n", "x"],
            "-ERR value is not an integer or out of range\r\n",
        ),
        (
            &["INCRBY", "n", "01"],
            "-ERR value is not an integer or out of range\r\n",
        ),
        (&["SET", "big", "9223372036854775807"], "+OK\r\n"),
        (
            &["INCR", "big"],
            "-ERR increment or decrement would overflow\r\n",
        ),
        (
            &["INCR"],
            "-ERR wrong number of arguments for 'incr' command\r\n",
        ),
        (&["MSET", "a", "1", "b", "2"], "+OK\r\n"),
        (
            &["MSET", "a", "1", "b"],
            "-ERR wrong number of arguments for 'mset' command\r\n",
        ),
        (
            &["MGET", "a", "b", "zz"],
            "*3\r\n$1\r\n1\r\n$1\r\n2\r\n$-1\r\n",
        ),
        (&["EXISTS", "a", "a", "zz"], ":2\r\n"),
        (&["DEL", "a", "b", "zz"], ":2\r\n"),
        (&["EXISTS", "a"], ":0\r\n"),
        (&["EXPIRE", "n", "100"], ":1\r\n"),
        (&["EXPIRE", "n", "200", "NX"], ":0\r\n"),
        (&["EXPIRE", "n", "200", "GT"], ":1\r\n"),
        (&["EXPIRE", "zz", "100"], ":0\r\n"),
        (
            &["EXPIRE", "n", "x"],
            "-ERR value is not an integer or out of range\r\n",
        ),
        (
            &["EXPIRE", "n", "10", "foo"],
            "-ERR Unsupported option foo\r\n",
        ),
        (
            &["EXPIRE", "n", "10", "NX", "XX"],
            "-ERR NX and XX, GT or LT options at the same time are not compatible\r\n",
        ),
        (
            &["EXPIRE", "n", "9223372036854775807"],
            "-ERR invalid expire time in 'expire' command\r\n",
        ),
        (&["PERSIST", "n"], ":1\r\n"),
        (&["PERSIST", "n"], ":0\r\n"),
        (&["TTL", "n"], ":-1\r\n"),
        (&["EXPIRE", "n", "0"], ":1\r\n"),
        (&["EXISTS", "n"], ":0\r\n"),
        (&["DBSIZE"], ":3\r\n"),
        (&["SELECT", "0"], "+OK\r\n"),
        (&["COMMAND", "DOCS"], "*0\r\n"),
        (&["COMMAND"], "*0\r\n"),
        (&["CLIENT", "SETNAME", "me"], "+OK\r\n"),
        (
            &["CLIENT", "foo"],
            "-ERR unknown subcommand 'foo'. Try CLIENT HELP.\r\n",
        ),
        (
            &["HELLO", "3"],
            "-ERR unknown command 'HELLO', with args beginning with: '3' \r\n",
        ),
        (
            &["CONFIG", "GET", "appendonly"],
            "*2\r\n$10\r\nappendonly\r\n$2\r\nno\r\n",
        ),
        (&["FLUSHDB"], "+OK\r\n"),
        (&["DBSIZE"], ":0\r\n"),
    ];
    for (args, want) in cases {
        check(&mut c, &cmd(args), want);
        // Expiry times: a TTL counts down while the test runs.
        match args {
            ["SET", "k", "v", "EX", "100"] => check_ttl(&mut c, "TTL", "k", 100),
            ["EXPIRE", "n", "100"] => check_ttl(&mut c, "TTL", "n", 100),
            ["EXPIRE", "n", "200", "GT"] => check_ttl(&mut c, "PTTL", "n", 200_000),
            _ => {}
        }
    }
    // QUIT: its +OK, then the close.
    c.write_all(&cmd(&["QUIT"])).unwrap();
    assert_eq!(read_to_close(&mut c), b"+OK\r\n");
}

#[test]
fn a_hundred_pipelined_commands_are_answered_in_order() {
    let server = Server::start();
    let mut c = server.connect();
    let (mut request, mut want) = (Vec::new(), String::new());
    for i in 0..100 {
        if i % 2 == 0 {
            request.extend(cmd(&["SET", &format!("key{i}"), &format!("value{i}")]));
            want.push_str("+OK\r\n");
        } else {
            let key = format!("key{}", i - 1);
            let value = format!("value{}", i - 1);
            request.extend(cmd(&["GET", &key]));
            want.push_str(&format!("${}\r\n{value}\r\n", value.len()));
        }
    }
    check(&mut c, &request, &want);
    // The same, byte by byte: commands split anywhere.
    for &b in &request {
        c.write_all(&[b]).unwrap();
    }
    assert_eq!(String::from_utf8_lossy(&read_n(&mut c, want.len())), want);
}

#[test]
fn inline_commands_as_typed_in_telnet() {
    let server = Server::start();
    let mut c = server.connect();
    check(&mut c, b"PING\r\n", "+PONG\r\n");
    check(&mut c, b"ping\n", "+PONG\r\n");
    check(
        &mut c,
        b"\r\n\r\nSET  a   b\r\nGET a\r\n",
        "+OK\r\n$1\r\nb\r\n",
    );
    check(
        &mut c,
        b"SET \"two words\" 'x y'\r\nGET \"two words\"\r\n",
        "+OK\r\n$3\r\nx y\r\n",
    );
    check(
        &mut c,
        b"nope 1\r\n",
        "-ERR unknown command 'nope', with args beginning with: '1' \r\n",
    );
    c.write_all(b"GET \"open\r\nPING\r\n").unwrap();
    assert_eq!(
        read_to_close(&mut c),
        b"-ERR Protocol error: unbalanced quotes in request\r\n"
    );
}

/// Sends `request` and checks that the reply is `want`, then the close.
#[track_caller]
fn refused(server: &Served, request: &[u8], want: &str) {
    let mut c = server.connect();
    // The server may close before taking it all: the reply says.
    let _ = c.write_all(request);
    assert_eq!(String::from_utf8_lossy(&read_to_close(&mut c)), want);
    still_serves(server);
}

#[test]
fn bad_lengths_and_counts_get_redis_errors_and_a_close() {
    let server = Server::start();
    let bulk = "-ERR Protocol error: invalid bulk length\r\n";
    let multibulk = "-ERR Protocol error: invalid multibulk length\r\n";
    refused(&server, b"*1\r\n$4294967295\r\n", bulk);
    refused(&server, b"*1\r\n$-2\r\n", bulk);
    refused(&server, b"*1\r\n$x\r\n", bulk);
    // 512 MiB is accepted (and waited for); one more byte is not.
    refused(&server, b"*1\r\n$536870913\r\n", bulk);
    refused(&server, b"*1000000000\r\n", multibulk);
    refused(&server, b"*1048577\r\n", multibulk);
    refused(&server, b"*-x\r\n", multibulk);
    refused(
        &server,
        b"*1\r\nGET\r\n",
        "-ERR Protocol error: expected '$', got 'G'\r\n",
    );
    // Replies to the commands before the bad one come first.
    let mut request = cmd(&["PING"]);
    request.extend_from_slice(b"*1\r\n$-2\r\n");
    refused(&server, &request, &format!("+PONG\r\n{bulk}"));
    // Lines without an end, past 64 KiB.
    let long = vec![b'a'; 64 * 1024 + 1];
    refused(
        &server,
        &long,
        "-ERR Protocol error: too big inline request\r\n",
    );
    let mut count = b"*".to_vec();
    count.extend_from_slice(&vec![b'1'; 64 * 1024 + 1]);
    refused(
        &server,
        &count,
        "-ERR Protocol error: too big mbulk count string\r\n",
    );
    let mut length = b"*1\r\n$".to_vec();
    length.extend_from_slice(&vec![b'1'; 64 * 1024 + 1]);
    refused(
        &server,
        &length,
        "-ERR Protocol error: too big bulk count string\r\n",
    );
}

#[test]
fn a_huge_bulk_announced_stalls_no_other_client() {
    let server = Server::start();
    // 100 MiB announced, a few bytes sent: the server waits for the rest
    // (within Redis's 512 MiB), reading only what comes.
    let mut slow = server.connect();
    slow.write_all(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$104857600\r\nabc")
        .unwrap();
    still_serves(&server);
    // A client that sends its command a byte at a time: others go on.
    let mut trickle = server.connect();
    trickle.write_all(b"*2\r\n$3\r\nGE").unwrap();
    still_serves(&server);
    trickle.write_all(b"T\r\n$1\r\nk\r\n").unwrap();
    assert_eq!(read_n(&mut trickle, 5), b"$-1\r\n");
    // The half-sent command is dropped at the end of stream.
    slow.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_to_close(&mut slow), b"");
    check(&mut server.connect(), &cmd(&["EXISTS", "k"]), ":0\r\n");
}

#[test]
fn random_bytes_get_an_error_or_replies_never_a_stall() {
    let server = Server::start();
    let mut rng = Rng::new(19);
    for round in 0..50 {
        let mut garbage = vec![0; rng.size(4096)];
        rng.fill(&mut garbage);
        if round % 2 == 0 {
            // Some that look like RESP, to go deeper.
            garbage[0] = b'*';
        }
        let mut c = server.connect();
        let _ = c.write_all(&garbage);
        // Whatever it was: the server answers, closes, or waits for more;
        // at our end of stream it closes.
        let _ = c.shutdown(Shutdown::Write);
        read_to_close(&mut c);
        still_serves(&server);
    }
}

#[test]
fn keys_expire_on_access_and_by_the_sweep() {
    let server = Server::start();
    let mut c = server.connect();
    check(&mut c, &cmd(&["SET", "k", "v", "PX", "50"]), "+OK\r\n");
    let deadline = Instant::now() + LIMIT;
    loop {
        c.write_all(&cmd(&["GET", "k"])).unwrap();
        // `$-1\r\n` or `$1\r\nv\r\n`: the first 5 bytes tell.
        if read_n(&mut c, 5) == b"$-1\r\n" {
            break;
        }
        assert_eq!(read_n(&mut c, 2), b"\r\n");
        assert!(
            Instant::now() < deadline,
            "k did not expire within {LIMIT:?}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    // Never read again: the sweep removes them.
    check(
        &mut c,
        &cmd(&["MSET", "a", "1", "b", "2", "c", "3"]),
        "+OK\r\n",
    );
    check(&mut c, &cmd(&["PEXPIRE", "a", "20"]), ":1\r\n");
    check(&mut c, &cmd(&["SET", "b", "2", "PX", "20"]), "+OK\r\n");
    let deadline = Instant::now() + LIMIT;
    loop {
        c.write_all(&cmd(&["DBSIZE"])).unwrap();
        if read_n(&mut c, 4) == b":1\r\n" {
            break;
        }
        assert!(Instant::now() < deadline, "no sweep within {LIMIT:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
    check(&mut c, &cmd(&["GET", "c"]), "$1\r\n3\r\n");
}

#[test]
fn the_example_answers_help_and_refuses_bad_flags() {
    use std::process::Command;
    use util::harness::{example_binary, output_within};
    let help = output_within(Command::new(example_binary("kv")).arg("--help"));
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).starts_with("usage: kv"));
    let bad = output_within(Command::new(example_binary("kv")).arg("--nope"));
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn the_example_serves_and_stops_on_sigterm() {
    let mut server = util::example::Server::start("kv", "kv=debug");
    let mut c = TcpStream::connect(server.addr()).unwrap();
    c.set_read_timeout(Some(LIMIT)).unwrap();
    check(&mut c, &cmd(&["SET", "k", "v"]), "+OK\r\n");
    check(&mut c, b"GET k\r\n", "$1\r\nv\r\n");
    server
        .log()
        .next_matching("a connection logged", |l| l.ends_with(": connected"));
    drop(c);
    server.stop_saying("kv: stopped after 2 commands, with 1 keys");
}

/// Sends `TTL key` (or `PTTL`) and checks the reply is an integer in
/// `1..=max`: time passes between the command that set it and this one.
#[track_caller]
fn check_ttl(conn: &mut TcpStream, command: &str, key: &str, max: i64) {
    conn.write_all(&cmd(&[command, key])).unwrap();
    let mut line = Vec::new();
    while !line.ends_with(b"\r\n") {
        line.extend(read_n(conn, 1));
    }
    let text = String::from_utf8_lossy(&line);
    let n: i64 = text
        .strip_prefix(':')
        .and_then(|t| t.trim_end().parse().ok())
        .unwrap_or_else(|| panic!("{command} {key}: {text:?}"));
    assert!((1..=max).contains(&n), "{command} {key}: {n}");
}
