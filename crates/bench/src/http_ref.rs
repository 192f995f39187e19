//! The floor for HTTP: a hand-written HTTP/1.1 server on raw mio, as a
//! careful user would write it for a "Hello, World!" benchmark. One thread,
//! a slab of connections, edge-triggered reads drained to `WouldBlock`,
//! request heads parsed with `httparse`, every complete request of a read
//! answered into one output buffer written once (pipelined requests cost
//! one write), keep-alive as HTTP/1.1 and 1.0 define it, a `Date` header
//! formatted once per second.
//!
//! It answers `GET` and `HEAD` of `/` with `Hello, World!` and anything
//! else with 404; a malformed head gets 400 and a close, a head over
//! 64 KiB gets 431 and a close. Request bodies announced by
//! `Content-Length` are skipped; chunked bodies are not supported (411).

use std::io::{self, ErrorKind, Read, Write};
use std::net::TcpListener as StdListener;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Registry, Token};
use slab::Slab;

/// The listener's token, outside the slab's range.
const LISTENER: Token = Token(usize::MAX);
/// The longest request head kept while it is incomplete.
const MAX_HEAD: usize = 64 * 1024;
/// Output waiting for a slow reader beyond this stops reading.
const MAX_OUTPUT: usize = 1024 * 1024;
/// The body of every 200 response.
const HELLO: &[u8] = b"Hello, World!";

struct Conn {
    stream: TcpStream,
    /// Bytes of an incomplete request (empty, without memory, otherwise).
    input: Vec<u8>,
    /// Response bytes the socket did not take yet.
    output: Vec<u8>,
    /// Body bytes still to skip.
    skip: usize,
    /// Close once `output` is written.
    closing: bool,
    interest: Interest,
}

/// Serves HTTP on `listener` forever with raw mio.
///
/// # Errors
///
/// An OS error from the poller or from accepting.
pub fn serve_http_mio(listener: StdListener) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    let mut listener = TcpListener::from_std(listener);
    let mut poll = Poll::new()?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    let mut events = Events::with_capacity(1024);
    let mut conns: Slab<Conn> = Slab::with_capacity(1024);
    let mut buf = vec![0u8; 64 * 1024];
    let mut date = HttpDate::now();
    loop {
        match poll.poll(&mut events, Some(Duration::from_secs(1))) {
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            other => other?,
        }
        date.refresh();
        for event in &events {
            if event.token() == LISTENER {
                accept_all(&listener, poll.registry(), &mut conns)?;
                continue;
            }
            let key = event.token().0;
            let Some(conn) = conns.get_mut(key) else {
                continue;
            };
            if !serve(conn, poll.registry(), key, &mut buf, &date) {
                let mut conn = conns.remove(key);
                let _ = poll.registry().deregister(&mut conn.stream);
            }
        }
    }
}

fn accept_all(
    listener: &TcpListener,
    registry: &Registry,
    conns: &mut Slab<Conn>,
) -> io::Result<()> {
    loop {
        match listener.accept() {
            Ok((mut stream, _)) => {
                let entry = conns.vacant_entry();
                registry.register(&mut stream, Token(entry.key()), Interest::READABLE)?;
                entry.insert(Conn {
                    stream,
                    input: Vec::new(),
                    output: Vec::new(),
                    skip: 0,
                    closing: false,
                    interest: Interest::READABLE,
                });
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Flushes, reads and answers what the connection allows; false once it
/// is to be closed.
fn serve(
    conn: &mut Conn,
    registry: &Registry,
    key: usize,
    buf: &mut [u8],
    date: &HttpDate,
) -> bool {
    if !flush(conn) {
        return false;
    }
    while !conn.closing && conn.output.len() < MAX_OUTPUT {
        match conn.stream.read(buf) {
            Ok(0) => return false,
            Ok(n) => {
                if conn.input.is_empty() {
                    let used = answer(conn, &buf[..n], date);
                    conn.input.extend_from_slice(&buf[used..n]);
                } else {
                    conn.input.extend_from_slice(&buf[..n]);
                    let input = std::mem::take(&mut conn.input);
                    let used = answer(conn, &input, date);
                    conn.input = input;
                    conn.input.drain(..used);
                    if conn.input.is_empty() {
                        conn.input = Vec::new();
                    }
                }
                if conn.input.len() > MAX_HEAD {
                    respond(conn, date, "431 Request Header Fields Too Large", b"", true);
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    if !flush(conn) {
        return false;
    }
    if conn.closing && conn.output.is_empty() {
        return false;
    }
    let want = match (
        conn.output.is_empty(),
        conn.closing || conn.output.len() >= MAX_OUTPUT,
    ) {
        (true, _) => Interest::READABLE,
        (false, false) => Interest::READABLE | Interest::WRITABLE,
        (false, true) => Interest::WRITABLE,
    };
    if want != conn.interest {
        conn.interest = want;
        if registry
            .reregister(&mut conn.stream, Token(key), want)
            .is_err()
        {
            return false;
        }
    }
    true
}

/// Answers every complete request at the start of `input`; returns the
/// bytes used.
fn answer(conn: &mut Conn, input: &[u8], date: &HttpDate) -> usize {
    let mut at = 0;
    while at < input.len() && !conn.closing {
        if conn.skip > 0 {
            let n = conn.skip.min(input.len() - at);
            conn.skip -= n;
            at += n;
            continue;
        }
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut request = httparse::Request::new(&mut headers);
        match request.parse(&input[at..]) {
            Ok(httparse::Status::Complete(head)) => {
                at += head;
                let version = request.version.unwrap_or(1);
                let mut keep_alive = version == 1;
                let mut body = 0usize;
                let mut chunked = false;
                for h in request.headers.iter() {
                    if h.name.eq_ignore_ascii_case("connection") {
                        if h.value.eq_ignore_ascii_case(b"close") {
                            keep_alive = false;
                        } else if h.value.eq_ignore_ascii_case(b"keep-alive") {
                            keep_alive = true;
                        }
                    } else if h.name.eq_ignore_ascii_case("content-length") {
                        body = std::str::from_utf8(h.value)
                            .ok()
                            .and_then(|v| v.trim().parse().ok())
                            .unwrap_or(usize::MAX);
                    } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                        chunked = true;
                    }
                }
                if chunked {
                    respond(conn, date, "411 Length Required", b"", true);
                    break;
                }
                if body == usize::MAX {
                    respond(conn, date, "400 Bad Request", b"", true);
                    break;
                }
                conn.skip = body;
                let head_only = request.method == Some("HEAD");
                let found =
                    request.path == Some("/") && matches!(request.method, Some("GET" | "HEAD"));
                let (status, body) = if found {
                    ("200 OK", HELLO)
                } else {
                    ("404 Not Found", &b""[..])
                };
                respond(
                    conn,
                    date,
                    status,
                    if head_only { &b""[..] } else { body },
                    !keep_alive,
                );
                if head_only && found {
                    // HEAD: the length of the GET's body, without it.
                    fix_head_length(conn);
                }
            }
            Ok(httparse::Status::Partial) => break,
            Err(_) => {
                respond(conn, date, "400 Bad Request", b"", true);
                break;
            }
        }
    }
    if conn.closing {
        input.len()
    } else {
        at
    }
}

/// Appends one response; `close` sends `Connection: close` and closes once
/// written.
fn respond(conn: &mut Conn, date: &HttpDate, status: &str, body: &[u8], close: bool) {
    let out = &mut conn.output;
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_bytes());
    out.extend_from_slice(b"\r\nServer: mio\r\nDate: ");
    out.extend_from_slice(date.as_bytes());
    out.extend_from_slice(b"\r\nContent-Type: text/plain\r\nContent-Length: ");
    let mut digits = [0u8; 20];
    out.extend_from_slice(format_len(body.len(), &mut digits));
    if close {
        out.extend_from_slice(b"\r\nConnection: close");
        conn.closing = true;
    }
    out.extend_from_slice(b"\r\n\r\n");
    out.extend_from_slice(body);
}

/// A HEAD response says the GET's length: rewrite the `Content-Length: 0`
/// just appended.
fn fix_head_length(conn: &mut Conn) {
    let tail = b"Content-Length: 0\r\n";
    if let Some(at) = conn.output.windows(tail.len()).rposition(|w| w == tail) {
        let mut digits = [0u8; 20];
        let len = format_len(HELLO.len(), &mut digits).to_vec();
        let start = at + b"Content-Length: ".len();
        conn.output.splice(start..start + 1, len);
    }
}

/// `n` in decimal, in `digits`.
fn format_len(mut n: usize, digits: &mut [u8; 20]) -> &[u8] {
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &digits[i..];
        }
    }
}

/// Writes pending output until done or `WouldBlock`.
fn flush(conn: &mut Conn) -> bool {
    let mut done = 0;
    while done < conn.output.len() {
        match conn.stream.write(&conn.output[done..]) {
            Ok(0) => return false,
            Ok(n) => done += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    conn.output.drain(..done);
    if conn.output.is_empty() && conn.output.capacity() > 64 * 1024 {
        conn.output = Vec::new();
    }
    true
}

/// The `Date` header's value (IMF-fixdate), formatted once per second.
#[derive(Debug)]
pub struct HttpDate {
    second: u64,
    text: [u8; 29],
}

impl HttpDate {
    /// The date now.
    #[must_use]
    pub fn now() -> HttpDate {
        let mut date = HttpDate {
            second: u64::MAX,
            text: [b' '; 29],
        };
        date.refresh();
        date
    }

    /// Formats the date again if the second changed.
    pub fn refresh(&mut self) {
        let second = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        if second != self.second {
            self.second = second;
            self.text = imf_fixdate(second);
        }
    }

    /// The formatted date, such as `Sun, 06 Nov 1994 08:49:37 GMT`.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.text
    }
}

/// Seconds since the Unix epoch as an IMF-fixdate (RFC 9110, 5.6.7).
#[must_use]
pub fn imf_fixdate(secs: u64) -> [u8; 29] {
    const DAYS: [&[u8; 3]; 7] = [b"Thu", b"Fri", b"Sat", b"Sun", b"Mon", b"Tue", b"Wed"];
    const MONTHS: [&[u8; 3]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (hour, minute, second) = (rem / 3600, rem % 3600 / 60, rem % 60);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let mut out = [0u8; 29];
    out[..3].copy_from_slice(DAYS[(days % 7) as usize]);
    out[3..5].copy_from_slice(b", ");
    two(&mut out[5..7], day as u64);
    out[7] = b' ';
    out[8..11].copy_from_slice(MONTHS[(month - 1) as usize]);
    out[11] = b' ';
    let year = year as u64;
    two(&mut out[12..14], year / 100);
    two(&mut out[14..16], year % 100);
    out[16] = b' ';
    two(&mut out[17..19], hour);
    out[19] = b':';
    two(&mut out[20..22], minute);
    out[22] = b':';
    two(&mut out[23..25], second);
    out[25..29].copy_from_slice(b" GMT");
    out
}

fn two(out: &mut [u8], n: u64) {
    out[0] = b'0' + (n / 10 % 10) as u8;
    out[1] = b'0' + (n % 10) as u8;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_dates_as_rfc_9110_does() {
        assert_eq!(&imf_fixdate(784_111_777), b"Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(&imf_fixdate(0), b"Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(&imf_fixdate(951_782_400), b"Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(
            &imf_fixdate(1_796_083_199),
            b"Mon, 30 Nov 2026 23:59:59 GMT"
        );
    }

    #[test]
    fn formats_lengths_in_decimal() {
        let mut digits = [0; 20];
        assert_eq!(format_len(0, &mut digits), b"0");
        assert_eq!(format_len(13, &mut digits), b"13");
        assert_eq!(
            format_len(usize::MAX, &mut digits),
            usize::MAX.to_string().as_bytes()
        );
    }
}
