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
//! together. `GET /metrics` is the exception: its body is formatted into
//! a `String` per scrape, by the [`Metrics`] the program gave (`main.rs`:
//! the loop's figures, with the `stats` feature; a 404 without).

use std::cell::RefCell;
use std::io;
use std::net::ToSocketAddrs;
use std::rc::Rc;
use std::time::Duration;

use log::debug;
use sockmux::{
    Acceptor, Action, CloseReason, Context, Dispatcher, Event, Idle, Protocol, Registry, Responder,
    Stream, StreamIo, TimerId, Token,
};

use crate::codec::{chunks, parse, Body, Head, Parsed, Request, RequestCodec, RequestError};
use crate::date::CachedDate;

/// The `Server` header's value.
const SERVER: &[u8] = b"sockmux";
/// How often the cached date is refreshed.
const DATE_PERIOD: Duration = Duration::from_secs(1);

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
    /// What `GET /metrics` answers; `None`: 404.
    pub(crate) metrics: Option<Metrics>,
}

/// Formats the figures `GET /metrics` serves (in Prometheus' text format)
/// into the string, with the loop's sockets at hand.
pub(crate) struct Metrics(pub(crate) Box<FormatMetrics>);

/// The function of [`Metrics`].
pub(crate) type FormatMetrics = dyn FnMut(&Registry<'_, Shared>, &mut String);

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Shared {
    /// No connections yet, the date now.
    pub(crate) fn new() -> Shared {
        Shared {
            date: CachedDate::now(),
            connections: 0,
            requests: 0,
            metrics: None,
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
    let mut r = Response::new(persistent, request.minor);
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
        ("GET" | "HEAD", "/metrics") if io.cx.state.metrics.is_some() => return metrics(r, io),
        (_, "/metrics") if io.cx.state.metrics.is_some() => r.error(
            405,
            b"Method Not Allowed",
            b"Allow: GET, HEAD\r\n",
            b"method not allowed",
        ),
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
            r.write_head(io);
            for chunk in chunks(&frame[range.clone()]) {
                io.write(chunk);
            }
            if !persistent {
                io.close();
            }
        }
    }
}

/// `GET /metrics`: the figures of [`Shared::metrics`] in Prometheus' text
/// format, then the server's own counters.
fn metrics(mut r: Response, io: &mut StreamIo<'_, '_, Shared>) {
    use std::fmt::Write as _;

    let cx = &mut *io.cx;
    let mut body = String::with_capacity(8 * 1024);
    if let Some(Metrics(format)) = cx.state.metrics.as_mut() {
        format(&cx.sockets, &mut body);
    }
    for (name, help, value) in [
        (
            "sockmux_http_connections_total",
            "Connections accepted.",
            cx.state.connections,
        ),
        (
            "sockmux_http_requests_total",
            "Requests answered, errors and this one included.",
            cx.state.requests,
        ),
    ] {
        let _ = write!(
            body,
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}\n"
        );
    }
    r.ok(b"text/plain; version=0.0.4", body.len());
    r.send(body.as_bytes(), io);
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
    let mut r = Response::new(false, 1);
    r.error(error.status, reason, b"", error.why.as_bytes());
    r.send(b"", io);
}

/// A response: its status line and headers, rendered with its body
/// straight into the stream's write buffer by [`Response::send`].
struct Response {
    persistent: bool,
    /// A response to a HEAD: the headers of a GET, never a body.
    head_only: bool,
    minor: u8,
    status: u16,
    reason: &'static [u8],
    content_type: &'static [u8],
    length: usize,
    /// Whole header lines after the common ones.
    extra: &'static [u8],
    /// An error's text (the body, with a line end).
    why: &'static [u8],
}

/// A body larger than this is written on its own, not copied after the
/// head.
const COPY_BODY: usize = 16 * 1024;

impl Response {
    fn new(persistent: bool, minor: u8) -> Response {
        Response {
            persistent,
            head_only: false,
            minor,
            status: 200,
            reason: b"OK",
            content_type: b"text/plain",
            length: 0,
            extra: b"",
            why: b"",
        }
    }

    /// A 200 with a body of `length` bytes (sent, or not for a HEAD, by
    /// [`Response::send`]).
    fn ok(&mut self, content_type: &'static [u8], length: usize) {
        self.content_type = content_type;
        self.length = length;
    }

    /// An error status with a short text body, `extra` headers (whole
    /// lines) after the common ones.
    fn error(
        &mut self,
        status: u16,
        reason: &'static [u8],
        extra: &'static [u8],
        why: &'static [u8],
    ) {
        self.status = status;
        self.reason = reason;
        self.content_type = b"text/plain";
        self.length = why.len() + 1;
        self.extra = extra;
        self.why = why;
    }

    /// Appends the status line and the headers.
    fn head(&self, out: &mut Vec<u8>, date: &[u8]) {
        out.extend_from_slice(b"HTTP/1.1 ");
        push_number(out, usize::from(self.status));
        out.push(b' ');
        out.extend_from_slice(self.reason);
        out.extend_from_slice(b"\r\nServer: ");
        out.extend_from_slice(SERVER);
        out.extend_from_slice(b"\r\nDate: ");
        out.extend_from_slice(date);
        out.extend_from_slice(b"\r\nContent-Type: ");
        out.extend_from_slice(self.content_type);
        out.extend_from_slice(b"\r\nContent-Length: ");
        push_number(out, self.length);
        out.extend_from_slice(b"\r\n");
        if !self.persistent {
            out.extend_from_slice(b"Connection: close\r\n");
        } else if self.minor == 0 {
            out.extend_from_slice(b"Connection: keep-alive\r\n");
        }
        out.extend_from_slice(self.extra);
        out.extend_from_slice(b"\r\n");
    }

    /// Writes the head alone (a body follows in pieces).
    fn write_head(&self, io: &mut StreamIo<'_, '_, Shared>) {
        io.write_with(|out, shared| self.head(out, shared.date.bytes()));
    }

    /// Writes the response with `body` (an error's text instead, and
    /// nothing for a HEAD), rendered in place; closes after it unless
    /// persistent.
    fn send(self, body: &[u8], io: &mut StreamIo<'_, '_, Shared>) {
        let body = match (self.head_only, self.why.is_empty()) {
            (true, _) => &b""[..],
            (false, true) => body,
            (false, false) => self.why,
        };
        let apart = body.len() > COPY_BODY;
        io.write_with(|out, shared| {
            self.head(out, shared.date.bytes());
            if !apart {
                out.extend_from_slice(body);
                if !self.why.is_empty() && !self.head_only {
                    out.push(b'\n');
                }
            }
        });
        if apart {
            io.write(body);
        }
        if !self.persistent {
            io.close();
        }
    }
}

/// Appends `n` in decimal.
fn push_number(out: &mut Vec<u8>, mut n: usize) {
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
    out.extend_from_slice(&digits[at..]);
}
