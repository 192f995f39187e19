//! The `http` example, in process: its modules (`examples/http/`) served
//! by a dispatcher on a thread of its own, on 127.0.0.1 port 0, and plain
//! TCP clients writing raw HTTP. Every status it answers, with the exact
//! status line and the headers that matter; keep-alive, HTTP/1.0,
//! pipelining, chunked uploads, `Connection: close`, the idle timeout; and
//! reliability row 19 (docs/reliability.md): random bytes, a 100 MiB header
//! line, a chunk size of `ffffffffffffffff`, each while another client is
//! served. Also the codec and the date formatting on their own.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

use sockmux::{Decoded, Decoder, Dispatcher};

mod util;
use util::served::Served;
use util::{Rng, LIMIT};

#[path = "../examples/http/codec.rs"]
#[allow(dead_code)]
mod codec;
#[path = "../examples/http/date.rs"]
#[allow(dead_code)]
mod date;
#[path = "../examples/http/request.rs"]
#[allow(dead_code)]
mod request;

use codec::{RequestCodec, RequestError, MAX_BODY, MAX_HEAD};

/// The example's server on a thread; stopped and joined when dropped.
struct Server;

impl Server {
    fn start() -> Served {
        Server::with_idle(Duration::from_secs(30))
    }

    fn with_idle(idle: Duration) -> Served {
        Served::start(move || {
            let mut dispatcher = Dispatcher::new(request::Shared::new())?;
            let listener = request::listen(&mut dispatcher, "127.0.0.1:0", idle)?;
            Ok((dispatcher, listener))
        })
    }
}

/// A fresh client gets 200 for `GET /`: the server is alive.
#[track_caller]
fn assert_serves(server: &Served) {
    let mut conn = server.connect();
    conn.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let r = Response::read(&mut BufReader::new(conn), false).expect("a response");
    assert_eq!(r.status, "HTTP/1.1 200 OK");
    assert_eq!(r.body, b"Hello, World!");
}

/// A response as a client reads it.
#[derive(Debug)]
struct Response {
    status: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    /// Reads one response (its body by `Content-Length`, none for a HEAD);
    /// `None` at the end of the stream before any byte.
    #[track_caller]
    fn read(r: &mut impl BufRead, head: bool) -> Option<Response> {
        let mut status = String::new();
        if r.read_line(&mut status).expect("a status line") == 0 {
            return None;
        }
        let status = status.trim_end().to_string();
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            r.read_line(&mut line).expect("a header line");
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(':').expect("name: value");
            headers.push((name.to_ascii_lowercase(), value.trim().to_string()));
        }
        let mut response = Response {
            status,
            headers,
            body: Vec::new(),
        };
        let len: usize = response
            .header("content-length")
            .expect("every response has a Content-Length")
            .parse()
            .unwrap();
        if !head {
            response.body = vec![0; len];
            r.read_exact(&mut response.body).expect("the body");
        }
        response.check_common_headers();
        Some(response)
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    #[track_caller]
    fn check_common_headers(&self) {
        assert_eq!(self.header("server"), Some("sockmux"), "{self:?}");
        let date = self.header("date").expect("a Date");
        assert_eq!(date.len(), 29, "{date:?}");
        assert!(
            date.ends_with(" GMT") && date.as_bytes()[3] == b',',
            "{date:?}"
        );
    }
}

/// Sends `request` on a fresh connection and reads one response.
#[track_caller]
fn one(server: &Served, request: &[u8]) -> (Response, BufReader<TcpStream>) {
    let mut conn = server.connect();
    conn.write_all(request).unwrap();
    let mut r = BufReader::new(conn);
    let head = request.starts_with(b"HEAD ");
    let response = Response::read(&mut r, head).expect("a response");
    (response, r)
}

/// Asserts the server closes the connection: the end of stream (or a
/// reset) comes, and no more bytes.
#[track_caller]
fn assert_closed(mut r: BufReader<TcpStream>) {
    let mut rest = Vec::new();
    match r.read_to_end(&mut rest) {
        Ok(_) => assert!(rest.is_empty(), "{:?}", String::from_utf8_lossy(&rest)),
        Err(e) => assert!(
            matches!(
                e.kind(),
                ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted
            ),
            "{e}"
        ),
    }
}

#[test]
fn get_root_and_json() {
    let server = Server::start();
    let (r, _) = one(&server, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(r.status, "HTTP/1.1 200 OK");
    assert_eq!(r.header("content-type"), Some("text/plain"));
    assert_eq!(r.header("content-length"), Some("13"));
    assert_eq!(r.header("connection"), None);
    assert_eq!(r.body, b"Hello, World!");
    let (r, _) = one(&server, b"GET /json HTTP/1.1\r\n\r\n");
    assert_eq!(r.status, "HTTP/1.1 200 OK");
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.body, br#"{"message":"Hello, World!"}"#);
    // The query is not part of the path.
    let (r, _) = one(&server, b"GET /json?x=1 HTTP/1.1\r\n\r\n");
    assert_eq!(r.status, "HTTP/1.1 200 OK");
}

#[test]
fn head_has_the_headers_of_get_and_no_body() {
    let server = Server::start();
    let mut conn = server.connect();
    // A GET right after the HEAD: its response follows the HEAD's headers
    // directly, so the HEAD sent no body.
    conn.write_all(b"HEAD / HTTP/1.1\r\n\r\nGET /json HTTP/1.1\r\n\r\n")
        .unwrap();
    let mut r = BufReader::new(conn);
    let head = Response::read(&mut r, true).unwrap();
    assert_eq!(head.status, "HTTP/1.1 200 OK");
    assert_eq!(head.header("content-length"), Some("13"));
    assert_eq!(head.header("content-type"), Some("text/plain"));
    let get = Response::read(&mut r, false).unwrap();
    assert_eq!(get.status, "HTTP/1.1 200 OK");
    assert_eq!(get.body, br#"{"message":"Hello, World!"}"#);
    let (head, _) = one(&server, b"HEAD /json HTTP/1.1\r\n\r\n");
    assert_eq!(head.header("content-length"), Some("27"));
    // Errors too: a HEAD gets their headers and no body.
    let mut conn = server.connect();
    conn.write_all(b"HEAD /nope HTTP/1.1\r\n\r\nHEAD /echo HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\n")
        .unwrap();
    let mut r = BufReader::new(conn);
    let head = Response::read(&mut r, true).unwrap();
    assert_eq!(head.status, "HTTP/1.1 404 Not Found");
    assert_eq!(head.header("content-length"), Some("10"));
    let head = Response::read(&mut r, true).unwrap();
    assert_eq!(head.status, "HTTP/1.1 405 Method Not Allowed");
    assert_eq!(head.header("allow"), Some("POST"));
    let get = Response::read(&mut r, false).unwrap();
    assert_eq!(get.body, b"Hello, World!");
}

#[test]
fn keep_alive_serves_two_requests_on_one_connection() {
    let server = Server::start();
    let (first, mut r) = one(&server, b"GET / HTTP/1.1\r\n\r\n");
    assert_eq!(first.status, "HTTP/1.1 200 OK");
    r.get_mut()
        .write_all(b"GET /json HTTP/1.1\r\n\r\n")
        .unwrap();
    let second = Response::read(&mut r, false).expect("a second response");
    assert_eq!(second.status, "HTTP/1.1 200 OK");
    assert_eq!(second.body, br#"{"message":"Hello, World!"}"#);
}

#[test]
fn http_1_0_closes_unless_keep_alive() {
    let server = Server::start();
    let (r, rest) = one(&server, b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!(r.status, "HTTP/1.1 200 OK");
    assert_eq!(r.header("connection"), Some("close"));
    assert_closed(rest);

    let (r, mut rest) = one(&server, b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert_eq!(r.header("connection"), Some("keep-alive"));
    rest.get_mut()
        .write_all(b"GET /json HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")
        .unwrap();
    let r = Response::read(&mut rest, false).unwrap();
    assert_eq!(r.body, br#"{"message":"Hello, World!"}"#);
}

#[test]
fn connection_close_is_honoured() {
    let server = Server::start();
    // The request after the close is never answered.
    let (r, rest) = one(
        &server,
        b"GET / HTTP/1.1\r\nConnection: close\r\n\r\nGET / HTTP/1.1\r\n\r\n",
    );
    assert_eq!(r.status, "HTTP/1.1 200 OK");
    assert_eq!(r.header("connection"), Some("close"));
    assert_closed(rest);
}

#[test]
fn sixteen_pipelined_requests_in_one_write_get_sixteen_answers_in_order() {
    let server = Server::start();
    let mut conn = server.connect();
    let mut requests = Vec::new();
    for i in 0..16 {
        requests.extend_from_slice(if i % 2 == 0 {
            b"GET / HTTP/1.1\r\n\r\n".as_slice()
        } else {
            b"GET /json HTTP/1.1\r\n\r\n".as_slice()
        });
    }
    requests.extend_from_slice(b"GET /last HTTP/1.1\r\nConnection: close\r\n\r\n");
    conn.write_all(&requests).unwrap();
    let mut r = BufReader::new(conn);
    for i in 0..16 {
        let response = Response::read(&mut r, false).unwrap();
        assert_eq!(response.status, "HTTP/1.1 200 OK", "response {i}");
        let want: &[u8] = if i % 2 == 0 {
            b"Hello, World!"
        } else {
            br#"{"message":"Hello, World!"}"#
        };
        assert_eq!(response.body, want, "response {i}");
    }
    let last = Response::read(&mut r, false).unwrap();
    assert_eq!(last.status, "HTTP/1.1 404 Not Found");
    assert_closed(r);
}

/// Thousands of pipelined requests (about 700 KiB of answers, more than
/// the stream queues before it pauses reading): every answer, in order,
/// then the close asked for.
#[test]
fn a_long_pipeline_is_answered_in_order() {
    let server = Server::start();
    let conn = server.connect();
    let mut requests = Vec::new();
    for i in 0..5000 {
        requests.extend_from_slice(match i % 3 {
            0 => b"GET / HTTP/1.1\r\n\r\n".as_slice(),
            1 => b"GET /json HTTP/1.1\r\n\r\n".as_slice(),
            _ => b"POST /echo HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc".as_slice(),
        });
    }
    requests.extend_from_slice(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n");
    let writer = {
        let mut conn = conn.try_clone().unwrap();
        std::thread::spawn(move || conn.write_all(&requests))
    };
    // Read while the writer writes (so that neither side's buffers can
    // block both): the answers come faster than a BufReader takes them.
    let mut r = BufReader::new(conn);
    for i in 0..5000 {
        let response = Response::read(&mut r, false).unwrap();
        let want: &[u8] = match i % 3 {
            0 => b"Hello, World!",
            1 => br#"{"message":"Hello, World!"}"#,
            _ => b"abc",
        };
        assert_eq!(response.body, want, "response {i}");
    }
    let last = Response::read(&mut r, false).unwrap();
    assert_eq!(last.header("connection"), Some("close"));
    assert_closed(r);
    writer.join().unwrap().unwrap();
}

#[test]
fn echo_returns_the_body_sent_with_a_length_or_chunked() {
    let server = Server::start();
    let (r, _) = one(
        &server,
        b"POST /echo HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
    );
    assert_eq!(r.status, "HTTP/1.1 200 OK");
    assert_eq!(r.body, b"hello");
    let (r, _) = one(&server, b"POST /echo HTTP/1.1\r\n\r\n");
    assert_eq!((r.status.as_str(), r.body.len()), ("HTTP/1.1 200 OK", 0));

    // Chunked, with an extension and a trailer, then a second request.
    let (r, mut rest) = one(
        &server,
        b"POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n\
          5\r\nhello\r\n1;ext=1\r\n,\r\nA\r\n world!!!!\r\n0\r\nTrailer: x\r\n\r\n\
          GET / HTTP/1.1\r\n\r\n",
    );
    assert_eq!(r.status, "HTTP/1.1 200 OK");
    assert_eq!(r.header("content-length"), Some("16"));
    assert_eq!(r.body, b"hello, world!!!!");
    let r = Response::read(&mut rest, false).unwrap();
    assert_eq!(r.body, b"Hello, World!");

    // A large body, larger than a read, both ways.
    let body = util::pattern(300_000, 3);
    let mut conn = server.connect();
    let mut request = format!(
        "POST /echo HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(&body);
    let writer = {
        let mut conn = conn.try_clone().unwrap();
        std::thread::spawn(move || conn.write_all(&request))
    };
    let r = Response::read(&mut BufReader::new(&mut conn), false).unwrap();
    writer.join().unwrap().unwrap();
    assert!(r.body == body, "the echo differs");
}

#[test]
fn every_error_status() {
    let server = Server::start();
    let cases: [(&[u8], &str); 13] = [
        (b"GET /nope HTTP/1.1\r\n\r\n", "HTTP/1.1 404 Not Found"),
        (
            b"POST / HTTP/1.1\r\n\r\n",
            "HTTP/1.1 405 Method Not Allowed",
        ),
        (
            b"DELETE /json HTTP/1.1\r\n\r\n",
            "HTTP/1.1 405 Method Not Allowed",
        ),
        (
            b"GET /echo HTTP/1.1\r\n\r\n",
            "HTTP/1.1 405 Method Not Allowed",
        ),
        (b"BREW / HTTP/1.1\r\n\r\n", "HTTP/1.1 501 Not Implemented"),
        (
            b"POST /echo HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
            "HTTP/1.1 501 Not Implemented",
        ),
        (
            b"GET / HTTP/2.0\r\n\r\n",
            "HTTP/1.1 505 HTTP Version Not Supported",
        ),
        (
            b"GET / HTTP/1.2\r\n\r\n",
            "HTTP/1.1 505 HTTP Version Not Supported",
        ),
        (
            b"\r\nGET / HTTP/3\r\n\r\n",
            "HTTP/1.1 505 HTTP Version Not Supported",
        ),
        (b"GET / HTTX/1.1\r\n\r\n", "HTTP/1.1 400 Bad Request"),
        (
            b"GET / HTTP/1.1\r\nNo colon\r\n\r\n",
            "HTTP/1.1 400 Bad Request",
        ),
        (
            b"POST /echo HTTP/1.1\r\nContent-Length: 2000000\r\n\r\n",
            "HTTP/1.1 413 Content Too Large",
        ),
        (
            b"POST /echo HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            "HTTP/1.1 400 Bad Request",
        ),
    ];
    for (request, status) in cases {
        let (r, rest) = one(&server, request);
        assert_eq!(r.status, status, "{:?}", String::from_utf8_lossy(request));
        let keeps = r.status.contains(" 404 ") || r.status.contains(" 405 ");
        if r.status.contains(" 405 ") {
            let allow = if request.ends_with(b"/echo HTTP/1.1\r\n\r\n") {
                "POST"
            } else {
                "GET, HEAD"
            };
            assert_eq!(r.header("allow"), Some(allow));
        }
        if keeps || r.status.contains(" 501 ") && request.starts_with(b"BREW") {
            assert_eq!(
                r.header("connection"),
                None,
                "{status} keeps the connection"
            );
        } else {
            // Input the codec refuses: answered, then closed.
            assert_eq!(r.header("connection"), Some("close"), "{status}");
            assert_closed(rest);
        }
    }

    // 431: too many headers, and a head over 8 KiB.
    let mut many = b"GET / HTTP/1.1\r\n".to_vec();
    for i in 0..70 {
        many.extend_from_slice(format!("X-{i}: y\r\n").as_bytes());
    }
    many.extend_from_slice(b"\r\n");
    let (r, rest) = one(&server, &many);
    assert_eq!(r.status, "HTTP/1.1 431 Request Header Fields Too Large");
    assert_closed(rest);
    let mut long = b"GET / HTTP/1.1\r\nX-Long: ".to_vec();
    long.resize(MAX_HEAD + 10, b'a');
    long.extend_from_slice(b"\r\n\r\n");
    let (r, rest) = one(&server, &long);
    assert_eq!(r.status, "HTTP/1.1 431 Request Header Fields Too Large");
    assert_closed(rest);
    assert_serves(&server);
}

#[test]
fn an_idle_connection_is_closed() {
    let server = Server::with_idle(Duration::from_millis(100));
    let (r, rest) = one(&server, b"GET / HTTP/1.1\r\n\r\n");
    assert_eq!(r.status, "HTTP/1.1 200 OK");
    // Nothing more sent: the server closes it (within the read timeout).
    assert_closed(rest);
}

/// Reliability row 19: random bytes get an answer or a close, never a
/// hang or a crash, and the server serves the next client.
#[test]
fn random_bytes_get_an_answer_or_a_close() {
    let server = Server::start();
    let mut rng = Rng::new(19);
    for round in 0..50 {
        let mut bytes = vec![0; 1 + rng.size(4096)];
        rng.fill(&mut bytes);
        if round % 2 == 1 {
            // A plausible start, random after it.
            bytes.splice(..0, b"POST /echo HTTP/1.1\r\n".iter().copied());
        }
        let mut conn = server.connect();
        // The server may close before reading it all: a reset is fine.
        let _ = conn.write_all(&bytes);
        let _ = conn.shutdown(Shutdown::Write);
        let mut back = Vec::new();
        match conn.read_to_end(&mut back) {
            Ok(_) => {}
            Err(e) => assert!(
                matches!(
                    e.kind(),
                    ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted
                ),
                "round {round}: {e}"
            ),
        }
        assert!(
            back.is_empty() || back.starts_with(b"HTTP/1.1 "),
            "round {round}: {:?}",
            String::from_utf8_lossy(&back)
        );
    }
    assert_serves(&server);
}

/// Reliability row 19: a header line of 100 MiB, streamed. The server
/// answers 431 (or closes) once 8 KiB are seen and reads no further: the
/// client's writes fail or block long before 100 MiB. Another client is
/// served meanwhile.
#[test]
fn a_100_mib_header_line_is_refused_without_being_buffered() {
    const TOTAL: usize = 100 << 20;
    let server = Server::start();
    let mut conn = server.connect();
    conn.set_write_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let writer = {
        let mut conn = conn.try_clone().unwrap();
        std::thread::spawn(move || {
            let mut sent = 0;
            if conn.write_all(b"GET / HTTP/1.1\r\nX-Huge: ").is_err() {
                return sent;
            }
            let garbage = vec![b'a'; 64 * 1024];
            while sent < TOTAL {
                match conn.write(&garbage) {
                    Ok(n) => sent += n,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(_) => break, // reset, or blocked past the timeout
                }
            }
            sent
        })
    };
    assert_serves(&server);
    let sent = writer.join().unwrap();
    assert!(sent < TOTAL, "the server read all {sent} bytes");
    // What came back, if anything did before the reset: the 431.
    let mut back = Vec::new();
    let _ = conn.read_to_end(&mut back);
    assert!(
        back.is_empty() || back.starts_with(b"HTTP/1.1 431 "),
        "{:?}",
        String::from_utf8_lossy(&back[..back.len().min(200)])
    );
    assert_serves(&server);
}

/// Reliability row 19: a chunk size of 2^64 - 1 is refused from its
/// digits (413), without a stall of another client.
#[test]
fn a_huge_chunk_size_is_refused_from_its_digits() {
    let server = Server::start();
    let mut conn = server.connect();
    // Nothing after the size line: the server must not wait for the data.
    conn.write_all(
        b"POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\n",
    )
    .unwrap();
    assert_serves(&server);
    let mut r = BufReader::new(conn);
    let response = Response::read(&mut r, false).expect("an answer");
    assert_eq!(response.status, "HTTP/1.1 413 Content Too Large");
    assert_closed(r);
    assert_serves(&server);
}

#[test]
fn the_codec_refuses_limits_from_the_bytes_that_announce_them() {
    let mut codec = RequestCodec::new();
    let error = |r: Result<Decoded, RequestError>| r.unwrap_err().status;
    assert_eq!(
        codec.decode(b"GET / HTTP/1.1\r\n"),
        Ok(Decoded::NeedMore { frame_len: None })
    );
    let head = b"POST /echo HTTP/1.1\r\nContent-Length: 4\r\n\r\n";
    assert_eq!(
        codec.decode(head),
        Ok(Decoded::NeedMore {
            frame_len: Some(head.len() + 4)
        })
    );
    let mut whole = head.to_vec();
    whole.extend_from_slice(b"bodyGET");
    assert_eq!(
        codec.decode(&whole),
        Ok(Decoded::Frame {
            payload: 0..head.len() + 4,
            consumed: head.len() + 4
        })
    );
    let too_long = format!(
        "POST / HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
        MAX_BODY + 1
    );
    assert_eq!(error(codec.decode(too_long.as_bytes())), 413);
    assert_eq!(
        error(codec.decode(b"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n")),
        413
    );
    let chunked = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
    let mut huge = chunked.to_vec();
    huge.extend_from_slice(b"fffff"); // 1 MiB - 1 so far: still fine
    assert_eq!(
        codec.decode(&huge),
        Ok(Decoded::NeedMore { frame_len: None })
    );
    huge.push(b'f'); // 16 MiB: refused before the line ends
    assert_eq!(error(codec.decode(&huge)), 413);
    let mut bad = chunked.to_vec();
    bad.extend_from_slice(b"zz\r\n");
    assert_eq!(error(codec.decode(&bad)), 400);
    let mut partial = vec![b'a'; MAX_HEAD - 1];
    assert_eq!(
        codec.decode(&partial),
        Ok(Decoded::NeedMore { frame_len: None })
    );
    partial.push(b'a');
    // Not even a method: malformed, whatever its length.
    assert!(matches!(error(codec.decode(&partial)), 400 | 431));
    let mut head = b"GET / HTTP/1.1\r\nX: ".to_vec();
    head.resize(MAX_HEAD, b'a');
    assert_eq!(error(codec.decode(&head)), 431);
}

#[test]
fn dates_are_imf_fixdates() {
    let cases: [(u64, &[u8; 29]); 5] = [
        (0, b"Thu, 01 Jan 1970 00:00:00 GMT"),
        (784_111_777, b"Sun, 06 Nov 1994 08:49:37 GMT"),
        (951_782_400, b"Tue, 29 Feb 2000 00:00:00 GMT"),
        (1_700_000_000, b"Tue, 14 Nov 2023 22:13:20 GMT"),
        (4_102_444_800, b"Fri, 01 Jan 2100 00:00:00 GMT"),
    ];
    for (secs, want) in cases {
        assert_eq!(
            &date::imf_fixdate(secs),
            want,
            "{secs}: {}",
            String::from_utf8_lossy(&date::imf_fixdate(secs))
        );
    }
}

/// The example as a program: `--help`, a bad argument (exit 2 with the
/// usage), and the line that says where it listens.
#[test]
fn the_binary_answers_help_and_bad_arguments() {
    use std::process::Command;
    use util::harness::{example_binary, output_within};

    let out = output_within(Command::new(example_binary("http")).arg("--help"));
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("usage: http"));
    let out = output_within(Command::new(example_binary("http")).args(["--port", "x"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("usage: http"));
}

/// `http --port 0` says where it listens, serves, and on SIGTERM stops
/// gracefully: exit 0 and its counts, after closing its connections.
#[test]
fn the_binary_serves_and_stops_gracefully_on_sigterm() {
    let server = util::example::Server::start("http", "warn");
    let mut conn = TcpStream::connect(server.addr()).unwrap();
    conn.set_read_timeout(Some(LIMIT)).unwrap();
    conn.write_all(b"GET /json HTTP/1.1\r\n\r\n").unwrap();
    let mut r = BufReader::new(conn);
    let response = Response::read(&mut r, false).unwrap();
    assert_eq!(response.body, br#"{"message":"Hello, World!"}"#);
    // SIGTERM (Unix; killed on Windows), then the exit and the counts; the
    // keep-alive connection is closed by the stop.
    server.stop_saying("http: stopped after 1 connections, 1 requests");
    if cfg!(unix) {
        assert_closed(r);
    }
}
