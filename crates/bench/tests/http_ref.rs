//! The raw mio HTTP reference of the protocol benchmark answers as an
//! HTTP/1.1 server must: keep-alive, pipelined requests in order, HEAD
//! without a body, 404, `Connection: close` and HTTP/1.0 closing, 400 for
//! a malformed head.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start() -> (Killed, SocketAddr) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_http_server"))
        .args(["--port", "0"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("printed {line:?}"))
        .parse()
        .unwrap();
    (Killed(child), addr)
}

fn connect(addr: SocketAddr) -> TcpStream {
    let conn = TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    conn
}

/// Reads until the server closes; the whole text.
fn read_all(conn: &mut TcpStream) -> String {
    let mut text = String::new();
    conn.read_to_string(&mut text).unwrap();
    text
}

#[test]
fn answers_keep_alive_pipelined_and_closing_requests() {
    let (_server, addr) = start();

    // Three pipelined requests in one write, the last one closing.
    let mut conn = connect(addr);
    conn.write_all(
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n\
          HEAD / HTTP/1.1\r\nHost: x\r\n\r\n\
          GET /nothing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let text = read_all(&mut conn);
    // Bodies end without a line break: find each status line by its start.
    let statuses: Vec<&str> = text
        .match_indices("HTTP/1.1 ")
        .filter_map(|(at, _)| text[at..].split("\r\n").next())
        .collect();
    assert_eq!(
        statuses,
        [
            "HTTP/1.1 200 OK",
            "HTTP/1.1 200 OK",
            "HTTP/1.1 404 Not Found"
        ],
        "{text}"
    );
    assert_eq!(
        text.matches("Hello, World!").count(),
        1,
        "HEAD has no body: {text}"
    );
    assert_eq!(text.matches("Content-Length: 13\r\n").count(), 2, "{text}");
    assert!(text.contains("Connection: close\r\n"), "{text}");
    assert!(text.contains(" GMT\r\n"), "a Date header: {text}");

    // HTTP/1.0 closes after one response; a malformed head gets 400.
    let mut conn = connect(addr);
    conn.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    assert!(read_all(&mut conn).starts_with("HTTP/1.1 200 OK\r\n"));
    let mut conn = connect(addr);
    conn.write_all(b"\x01\x02 garbage\r\n\r\n").unwrap();
    conn.shutdown(Shutdown::Write).unwrap();
    assert!(read_all(&mut conn).starts_with("HTTP/1.1 400 Bad Request\r\n"));
}
