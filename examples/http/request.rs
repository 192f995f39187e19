//! Request handling: the shared state ([`Shared`], with the cached date),
//! the listener ([`listen`]: the library's `Acceptor`, plus the timer that
//! refreshes the date), and each connection's [`Protocol`], [`Conn`],
//! which answers every request the codec frames.
//!
//! Responses are built on the stack: the status line, the headers (the
//! cached `Date` copied in, `Content-Length` formatted in place) and, when
//! it fits, the body, then written with one call. So a `GET /` allocates
//! nothing. The answers to a pipelined batch are gathered (in a buffer
//! each connection allocates once, when it first pipelines) and written
//! together.

use std::cell::RefCell;
use std::io;
use std::net::ToSocketAddrs;
use std::rc::Rc;
use std::time::Duration;

use log::debug;
use sockmux::{
    Acceptor, Action, CloseReason, Context, Dispatcher, Event, Idle, Protocol, Responder, Stream,
    StreamIo, TimerId, Token,
};

use crate::codec::{chunks, parse, Body, Head, Parsed, Request, RequestCodec, RequestError};
use crate::date::CachedDate;

/// The `Server` header's value.
const SERVER: &[u8] = b"sockmux";
/// How often the cached date is refreshed.
const DATE_PERIOD: Duration = Duration::from_secs(1);
/// Room on the stack for a response's head (and a small body).
const OUT_LEN: usize = 1024;

const HELLO: &[u8] = b"Hello, World!";
const JSON: &[u8] = br#"{"message":"Hello, World!"}"#;

/// What every connection shares.
#[derive(Debug)]
pub(crate) struct Shared {
    /// The `Date` header, refreshed every second.
    pub(crate) date: CachedDate,
    /// Connections accepted.
    pub(crate) connections: u64,
    /// Requests answered (errors included).
    pub(crate) requests: u64,
}

impl Shared {
    /// No connections yet, the date now.
    pub(crate) fn new() -> Shared {
        Shared {
            date: CachedDate::now(),
            connections: 0,
            requests: 0,
        }
    }
}

impl Default for Shared {
    fn default() -> Shared {
        Shared::new()
    }
}

/// Listens on `addr` with a [`Conn`] stream per connection, closed after
/// `idle` without a byte from the client; returns the listener's token.
pub(crate) fn listen(
    dispatcher: &mut Dispatcher<Shared>,
    addr: impl ToSocketAddrs,
    idle: Duration,
) -> io::Result<Token> {
    let acceptor = Acceptor::new(move |t: Token, cx: &mut Context<'_, Shared>| {
        // Responses are small writes: do not wait to fill a segment.
        if let Ok(socket) = cx.sockets.socket(t) {
            let _ = socket2::SockRef::from(socket).set_tcp_nodelay(true);
        }
        cx.state.connections += 1;
        debug!("{t}: connected");
        let codec = RequestCodec::new();
        let conn = Conn::new().with_parsed(codec.parsed());
        Stream::new(codec, conn).idle_timeout(Idle::Read, idle)
    });
    dispatcher.sockets().listen_tcp(
        addr,
        Listener {
            acceptor,
            date_timer: None,
        },
    )
}

/// The listener's responder: the library's acceptor, and the periodic
/// timer that refreshes the shared date (owned by the listener, so it
/// ends with it).
#[derive(Debug)]
struct Listener<A> {
    acceptor: A,
    date_timer: Option<TimerId>,
}

impl<A: Responder<Shared>> Responder<Shared> for Listener<A> {
    fn registered(&mut self, cx: &mut Context<'_, Shared>) -> Action {
        cx.state.date.refresh();
        self.date_timer = Some(cx.timer_every(DATE_PERIOD));
        self.acceptor.registered(cx)
    }

    fn ready(&mut self, event: Event, cx: &mut Context<'_, Shared>) -> Action {
        self.acceptor.ready(event, cx)
    }

    fn timer(&mut self, id: TimerId, cx: &mut Context<'_, Shared>) -> Action {
        if self.date_timer == Some(id) {
            cx.state.date.refresh();
            return Action::Continue;
        }
        self.acceptor.timer(id, cx)
    }

    fn notified(&mut self, cx: &mut Context<'_, Shared>) -> Action {
        self.acceptor.notified(cx)
    }

    fn stop(&mut self, cx: &mut Context<'_, Shared>) -> Action {
        self.acceptor.stop(cx)
    }

    fn closed(&mut self, cx: &mut Context<'_, Shared>) {
        self.acceptor.closed(cx);
    }
}

/// One connection's protocol: answers each request in order (the
/// stream writes the answers of a pipelined batch together).
#[derive(Debug, Default)]
pub(crate) struct Conn {
    /// The head the codec parsed for the frame it hands on, if it shares
    /// it ([`Conn::with_parsed`]): then the head is not parsed again.
    parsed: Option<Rc<RefCell<Option<Head>>>>,
}

impl Conn {
    /// A connection's protocol, which parses each request it is handed.
    pub(crate) fn new() -> Conn {
        Conn::default()
    }

    /// Takes each request's head from the codec that parsed it
    /// ([`RequestCodec::parsed`]).
    pub(crate) fn with_parsed(mut self, parsed: Rc<RefCell<Option<Head>>>) -> Conn {
        self.parsed = Some(parsed);
        self
    }
}

impl Protocol<Shared> for Conn {
    fn frame(&mut self, frame: &[u8], io: &mut StreamIo<'_, '_, Shared>) {
        io.cx.state.requests += 1;
        // The codec's parse of this frame, when it handed it on.
        let parsed = self.parsed.as_ref().and_then(|p| p.borrow_mut().take());
        if let Some(request) = parsed.as_ref().and_then(|head| head.request(frame)) {
            return answer(&request, frame, io);
        }
        match parse(frame) {
            Ok(Parsed::Complete(request)) => answer(&request, frame, io),
            // The codec framed it: it parses whole. Never panic on it.
            Ok(Parsed::NeedMore(_)) => refuse(RequestError::INCOMPLETE, io),
            Err(error) => refuse(error, io),
        }
    }

    /// Answers input the codec refused (400, 413, 431, 501, 505); the
    /// stream closes once the answer is written.
    fn frame_error(&mut self, error: &io::Error, io: &mut StreamIo<'_, '_, Shared>) {
        let error = error
            .get_ref()
            .and_then(|e| e.downcast_ref::<RequestError>())
            .copied()
            .unwrap_or(RequestError::INCOMPLETE);
        io.cx.state.requests += 1;
        refuse(error, io);
    }

    fn closed(&mut self, reason: CloseReason, unsent: usize, cx: &mut Context<'_, Shared>) {
        debug!("{}: closed ({reason:?}, {unsent} bytes unsent)", cx.token);
    }
}

impl RequestError {
    /// A frame that does not parse whole (which the codec never frames).
    const INCOMPLETE: RequestError = RequestError {
        status: 400,
        why: "malformed request",
    };
}

/// The methods this server knows of; others get 501.
const METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE", "CONNECT",
];

/// Answers a well-framed request.
fn answer(request: &Request<'_>, frame: &[u8], io: &mut StreamIo<'_, '_, Shared>) {
    let persistent = request.persistent();
    let head_only = request.method == "HEAD";
    let path = request.target.split('?').next().unwrap_or("");
    let mut r = Response::new(persistent, request.minor, &io.cx.state.date);
    r.head_only = head_only;
    let mut body: &[u8] = b"";
    match (request.method, path) {
        (m, _) if !METHODS.contains(&m) => {
            r.error(501, b"Not Implemented", b"", b"method not implemented")
        }
        ("GET" | "HEAD", "/") => {
            r.ok(b"text/plain", HELLO.len());
            body = HELLO;
        }
        ("GET" | "HEAD", "/json") => {
            r.ok(b"application/json", JSON.len());
            body = JSON;
        }
        (_, "/" | "/json") => r.error(
            405,
            b"Method Not Allowed",
            b"Allow: GET, HEAD\r\n",
            b"method not allowed",
        ),
        ("POST", "/echo") => return echo(r, &request.body, frame, io),
        (_, "/echo") => r.error(
            405,
            b"Method Not Allowed",
            b"Allow: POST\r\n",
            b"method not allowed",
        ),
        _ => r.error(404, b"Not Found", b"", b"not found"),
    }
    r.send(body, io);
}

/// `POST /echo`: the body back, decoded if it came chunked.
fn echo(mut r: Response, body: &Body, frame: &[u8], io: &mut StreamIo<'_, '_, Shared>) {
    match body {
        Body::None => {
            r.ok(b"application/octet-stream", 0);
            r.send(b"", io);
        }
        Body::Length(range) => {
            let body = &frame[range.clone()];
            r.ok(b"application/octet-stream", body.len());
            r.send(body, io);
        }
        Body::Chunked { range, len } => {
            r.ok(b"application/octet-stream", *len);
            let persistent = r.persistent;
            io.write(r.bytes());
            for chunk in chunks(&frame[range.clone()]) {
                io.write(chunk);
            }
            if !persistent {
                io.close();
            }
        }
    }
}

/// Answers `error` and closes once it is written.
fn refuse(error: RequestError, io: &mut StreamIo<'_, '_, Shared>) {
    debug!("{}: {error}", io.token());
    let reason: &[u8] = match error.status {
        400 => b"Bad Request",
        413 => b"Content Too Large",
        431 => b"Request Header Fields Too Large",
        501 => b"Not Implemented",
        505 => b"HTTP Version Not Supported",
        _ => b"Error",
    };
    let mut r = Response::new(false, 1, &io.cx.state.date);
    r.error(error.status, reason, b"", error.why.as_bytes());
    r.send(b"", io);
}

/// A response built on the stack.
struct Response {
    buf: [u8; OUT_LEN],
    len: usize,
    persistent: bool,
    /// A response to a HEAD: the headers of a GET, never a body.
    head_only: bool,
    minor: u8,
    date: [u8; crate::date::DATE_LEN],
}

impl Response {
    fn new(persistent: bool, minor: u8, date: &CachedDate) -> Response {
        Response {
            buf: [0; OUT_LEN],
            len: 0,
            persistent,
            head_only: false,
            minor,
            date: *date.bytes(),
        }
    }

    /// Appends `bytes` if they fit; returns whether they did. Every head
    /// fits (a few fixed headers); a body that does not is written on its
    /// own by [`Response::send`].
    fn push(&mut self, bytes: &[u8]) -> bool {
        match self.buf.get_mut(self.len..self.len + bytes.len()) {
            Some(room) => {
                room.copy_from_slice(bytes);
                self.len += bytes.len();
                true
            }
            None => false,
        }
    }

    fn push_number(&mut self, mut n: usize) {
        let mut digits = [0u8; 20];
        let mut at = digits.len();
        loop {
            at -= 1;
            digits[at] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        self.push(&digits[at..]);
    }

    /// The status line and the headers every response has.
    fn head(&mut self, status: u16, reason: &[u8], content_type: &[u8], length: usize) {
        self.push(b"HTTP/1.1 ");
        self.push_number(usize::from(status));
        self.push(b" ");
        self.push(reason);
        self.push(b"\r\nServer: ");
        self.push(SERVER);
        self.push(b"\r\nDate: ");
        let date = self.date;
        self.push(&date);
        self.push(b"\r\nContent-Type: ");
        self.push(content_type);
        self.push(b"\r\nContent-Length: ");
        self.push_number(length);
        self.push(b"\r\n");
        if !self.persistent {
            self.push(b"Connection: close\r\n");
        } else if self.minor == 0 {
            self.push(b"Connection: keep-alive\r\n");
        }
    }

    /// The head of a 200 with a body of `length` bytes (sent, or not for
    /// a HEAD, by [`Response::send`]).
    fn ok(&mut self, content_type: &[u8], length: usize) {
        self.head(200, b"OK", content_type, length);
        self.push(b"\r\n");
    }

    /// An error status with a short text body, `extra` headers (whole
    /// lines) after the common ones.
    fn error(&mut self, status: u16, reason: &[u8], extra: &[u8], why: &[u8]) {
        self.head(status, reason, b"text/plain", why.len() + 1);
        self.push(extra);
        self.push(b"\r\n");
        if !self.head_only {
            self.push(why);
            self.push(b"\n");
        }
    }

    fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// Writes the response and `body` (not for a HEAD), as one piece
    /// when the body fits on the stack; closes after it unless persistent.
    fn send(mut self, body: &[u8], io: &mut StreamIo<'_, '_, Shared>) {
        if self.head_only || self.push(body) {
            io.write(self.bytes());
        } else {
            io.write(self.bytes());
            io.write(body);
        }
        if !self.persistent {
            io.close();
        }
    }
}
