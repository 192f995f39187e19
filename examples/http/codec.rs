//! The framing of HTTP/1.1 requests: [`RequestCodec`], a [`Decoder`] that
//! cuts one whole request (head and body) out of a connection's read
//! buffer, and [`parse`], which it shares with the request handler.
//!
//! Every limit is checked as early as the bytes allow, before the stream's
//! buffer grows for what they announce: a head longer than [`MAX_HEAD`] or
//! with more than [`MAX_HEADERS`] headers is refused (431) once that many
//! bytes or headers are seen; a `Content-Length` above [`MAX_BODY`] from
//! the header alone (413); a chunk size from its digits, as soon as they
//! pass [`MAX_BODY`] (413), so `ffffffffffffffff` costs nothing. A chunked
//! body's bytes on the wire (sizes, extensions, trailers) are bounded too
//! ([`MAX_CHUNKED_WIRE`]).
//!
//! The decoder keeps no state: it parses the buffer from its start on each
//! call (the head is at most 8 KiB), so however the input is cut it finds
//! the same frames and the same errors.

use std::cell::RefCell;
use std::error::Error;
use std::fmt;
use std::io;
use std::ops::Range;
use std::rc::Rc;

use sockmux::{Decoded, Decoder};

/// The longest request head (request line, headers, blank line) accepted.
pub(crate) const MAX_HEAD: usize = 8 * 1024;
/// The most headers a request may have.
pub(crate) const MAX_HEADERS: usize = 64;
/// The longest body accepted (decoded, for a chunked one).
pub(crate) const MAX_BODY: usize = 1024 * 1024;
/// The most bytes a chunked body may take on the wire, framing included.
pub(crate) const MAX_CHUNKED_WIRE: usize = 2 * MAX_BODY;
/// The longest chunk-size line (size and extensions, CRLF excluded).
const MAX_CHUNK_LINE: usize = 256;

/// A request that can never be answered normally: the status to answer
/// with, and why. The connection closes after the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RequestError {
    /// 400, 413, 431, 501 or 505.
    pub(crate) status: u16,
    /// What was wrong, for the log and the response's body.
    pub(crate) why: &'static str,
}

impl RequestError {
    const fn new(status: u16, why: &'static str) -> RequestError {
        RequestError { status, why }
    }
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.status, self.why)
    }
}

impl Error for RequestError {}

impl From<RequestError> for io::Error {
    fn from(error: RequestError) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, error)
    }
}

/// How a request's body is framed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Body {
    /// No body, or an empty one.
    None,
    /// `Content-Length`: the body is `frame[range]`.
    Length(Range<usize>),
    /// `Transfer-Encoding: chunked`: the chunks lie in `frame[range]`
    /// (see [`chunks`]), and decode to `len` bytes.
    Chunked {
        /// Where the chunked body (sizes, data, trailers) lies.
        range: Range<usize>,
        /// The decoded body's length.
        len: usize,
    },
}

/// A complete request, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Request<'a> {
    /// The method, as sent.
    pub(crate) method: &'a str,
    /// The request target, as sent.
    pub(crate) target: &'a str,
    /// The minor version: 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub(crate) minor: u8,
    /// A `Connection: close` was sent.
    pub(crate) close: bool,
    /// A `Connection: keep-alive` was sent.
    pub(crate) keep_alive: bool,
    /// The body.
    pub(crate) body: Body,
    /// The bytes the whole request takes.
    pub(crate) len: usize,
}

impl Request<'_> {
    /// Whether the connection stays open after the response: HTTP/1.1
    /// unless `Connection: close`, HTTP/1.0 only with
    /// `Connection: keep-alive`.
    pub(crate) fn persistent(&self) -> bool {
        !self.close && (self.minor == 1 || self.keep_alive)
    }
}

/// A parsed request as offsets into its frame: what the codec found,
/// handed to the handler so that it does not parse the head again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Head {
    method: Range<usize>,
    target: Range<usize>,
    minor: u8,
    close: bool,
    keep_alive: bool,
    body: Body,
    len: usize,
}

impl Head {
    /// The head of `request`, parsed from `buf` (its offsets are from the
    /// start of `buf`).
    fn of(request: &Request<'_>, buf: &[u8]) -> Head {
        let base = buf.as_ptr() as usize;
        let range = |s: &str| {
            let start = s.as_ptr() as usize - base;
            start..start + s.len()
        };
        Head {
            method: range(request.method),
            target: range(request.target),
            minor: request.minor,
            close: request.close,
            keep_alive: request.keep_alive,
            body: request.body.clone(),
            len: request.len,
        }
    }

    /// The request again, borrowed from `frame`, the bytes it was parsed
    /// from; `None` if `frame` is not those bytes.
    pub(crate) fn request<'a>(&self, frame: &'a [u8]) -> Option<Request<'a>> {
        if frame.len() != self.len {
            return None;
        }
        let text = |r: &Range<usize>| std::str::from_utf8(frame.get(r.clone())?).ok();
        Some(Request {
            method: text(&self.method)?,
            target: text(&self.target)?,
            minor: self.minor,
            close: self.close,
            keep_alive: self.keep_alive,
            body: self.body.clone(),
            len: self.len,
        })
    }
}

/// Parses the request at the start of `buf`: `Ok(Some(request))` once all
/// of it is buffered, `Ok(None)` while more is needed (with the whole
/// request's length, when the head announces it), or the error to answer.
pub(crate) fn parse(buf: &[u8]) -> Result<Parsed<'_>, RequestError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let head = &buf[..buf.len().min(MAX_HEAD)];
    let head_len = match req.parse(head) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD => {
            return Err(RequestError::new(431, "request head too large"));
        }
        Ok(httparse::Status::Partial) => return Ok(Parsed::NeedMore(None)),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(RequestError::new(431, "too many headers"));
        }
        Err(httparse::Error::Version) => return Err(version_error(buf)),
        Err(_) => return Err(RequestError::new(400, "malformed request head")),
    };
    let (Some(method), Some(target), Some(minor)) = (req.method, req.path, req.version) else {
        return Err(RequestError::new(400, "malformed request line"));
    };
    let mut length: Option<u64> = None;
    let mut chunked = false;
    let (mut close, mut keep_alive) = (false, false);
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            let n = content_length(h.value)?;
            if length.is_some_and(|m| m != n) {
                return Err(RequestError::new(400, "conflicting Content-Length"));
            }
            length = Some(n);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            if chunked || !trim(h.value).eq_ignore_ascii_case(b"chunked") {
                return Err(RequestError::new(501, "unsupported Transfer-Encoding"));
            }
            chunked = true;
        } else if h.name.eq_ignore_ascii_case("connection") {
            for token in h.value.split(|&b| b == b',') {
                let token = trim(token);
                close |= token.eq_ignore_ascii_case(b"close");
                keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        }
    }
    let (body, len) = match (length, chunked) {
        (Some(_), true) => {
            return Err(RequestError::new(
                400,
                "both Content-Length and Transfer-Encoding",
            ))
        }
        (Some(n), false) => {
            if n > MAX_BODY as u64 {
                return Err(RequestError::new(413, "body too large"));
            }
            let end = head_len + n as usize;
            if buf.len() < end {
                return Ok(Parsed::NeedMore(Some(end)));
            }
            let body = if n == 0 {
                Body::None
            } else {
                Body::Length(head_len..end)
            };
            (body, end)
        }
        (None, true) => match scan_chunks(&buf[head_len..])? {
            Some((wire, len)) => (
                Body::Chunked {
                    range: head_len..head_len + wire,
                    len,
                },
                head_len + wire,
            ),
            None => return Ok(Parsed::NeedMore(None)),
        },
        (None, false) => (Body::None, head_len),
    };
    Ok(Parsed::Complete(Request {
        method,
        target,
        minor,
        close,
        keep_alive,
        body,
        len,
    }))
}

/// What [`parse`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Parsed<'a> {
    /// A whole request.
    Complete(Request<'a>),
    /// More bytes are needed; the whole request's length when known.
    NeedMore(Option<usize>),
}

/// The error for a version httparse refuses: 505 for a well-formed
/// `HTTP/<digit>...` other than 1.0 and 1.1, 400 for anything else.
fn version_error(buf: &[u8]) -> RequestError {
    // Empty lines before the request line are allowed (and skipped).
    let start = buf.iter().position(|&b| !matches!(b, b'\r' | b'\n'));
    let buf = &buf[start.unwrap_or(buf.len())..];
    let line = buf.split(|&b| b == b'\n').next().unwrap_or(buf);
    let mut fields = line.splitn(3, |&b| b == b' ');
    let version = fields.nth(2).unwrap_or(b"");
    match version {
        [b'H', b'T', b'T', b'P', b'/', d, ..] if d.is_ascii_digit() => {
            RequestError::new(505, "HTTP version not supported")
        }
        _ => RequestError::new(400, "malformed HTTP version"),
    }
}

/// A `Content-Length` value: decimal digits only.
fn content_length(value: &[u8]) -> Result<u64, RequestError> {
    let digits = trim(value);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(RequestError::new(400, "malformed Content-Length"));
    }
    let mut n: u64 = 0;
    for &d in digits {
        n = n * 10 + u64::from(d - b'0');
        if n > MAX_BODY as u64 {
            return Err(RequestError::new(413, "body too large"));
        }
    }
    Ok(n)
}

fn trim(bytes: &[u8]) -> &[u8] {
    bytes.trim_ascii()
}

/// One step of a chunked body.
enum Chunk {
    /// A chunk's data at `data` (relative to the start), the next chunk at
    /// `next`.
    Data { data: Range<usize>, next: usize },
    /// The last chunk and the trailers: the body ends at `end`.
    End { end: usize },
    /// Not all buffered yet.
    NeedMore,
}

/// The chunk at `body[at..]`; `decoded` (the bytes decoded so far) bounds
/// its size.
fn next_chunk(body: &[u8], at: usize, decoded: usize) -> Result<Chunk, RequestError> {
    let rest = &body[at..];
    // The size: hex digits, refused as soon as they pass the maximum.
    let mut size: usize = 0;
    let mut i = 0;
    while let Some(&b) = rest.get(i) {
        let digit = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            b'A'..=b'F' => b - b'A' + 10,
            _ => break,
        };
        size = size * 16 + usize::from(digit);
        if decoded + size > MAX_BODY {
            return Err(RequestError::new(413, "chunked body too large"));
        }
        i += 1;
        if i > MAX_CHUNK_LINE {
            return Err(RequestError::new(400, "chunk line too long"));
        }
    }
    if i == rest.len() {
        return Ok(Chunk::NeedMore);
    }
    if i == 0 {
        return Err(RequestError::new(400, "malformed chunk size"));
    }
    // Extensions (ignored) up to the CRLF.
    let line_end = match rest
        .iter()
        .take(MAX_CHUNK_LINE + 2)
        .position(|&b| b == b'\n')
    {
        Some(n) => n,
        None if rest.len() > MAX_CHUNK_LINE + 1 => {
            return Err(RequestError::new(400, "chunk line too long"));
        }
        None => return Ok(Chunk::NeedMore),
    };
    if line_end == 0
        || rest[line_end - 1] != b'\r'
        || !matches!(rest[i], b';' | b'\r' | b' ' | b'\t')
    {
        return Err(RequestError::new(400, "malformed chunk line"));
    }
    let start = at + line_end + 1;
    if size == 0 {
        // Trailers (ignored): lines up to an empty one.
        let mut at = start;
        loop {
            let rest = &body[at..];
            match rest.iter().position(|&b| b == b'\n') {
                Some(n) if n == 0 || rest[n - 1] != b'\r' => {
                    return Err(RequestError::new(400, "malformed trailer"));
                }
                Some(1) => return Ok(Chunk::End { end: at + 2 }),
                Some(n) => at += n + 1,
                None => return Ok(Chunk::NeedMore),
            }
            if at - start > MAX_HEAD {
                return Err(RequestError::new(431, "trailers too large"));
            }
        }
    }
    let data = start..start + size;
    let next = data.end + 2;
    match body.get(data.end..next) {
        None => Ok(Chunk::NeedMore),
        Some(b"\r\n") => Ok(Chunk::Data { data, next }),
        Some(_) => Err(RequestError::new(400, "chunk not followed by CRLF")),
    }
}

/// Scans a chunked body at the start of `body`: its length on the wire and
/// decoded once complete, `None` while more is needed.
fn scan_chunks(body: &[u8]) -> Result<Option<(usize, usize)>, RequestError> {
    let mut at = 0;
    let mut decoded = 0;
    let result = loop {
        match next_chunk(body, at, decoded)? {
            Chunk::Data { data, next } => {
                decoded += data.len();
                at = next;
            }
            Chunk::End { end } => break Some((end, decoded)),
            Chunk::NeedMore => break None,
        }
    };
    // What is buffered of the body, complete or not, within the bound.
    let seen = match result {
        Some((end, _)) => end,
        None => body.len(),
    };
    if seen > MAX_CHUNKED_WIRE {
        return Err(RequestError::new(413, "chunked body too large on the wire"));
    }
    Ok(result)
}

/// The data of each chunk of a complete chunked body (as [`Body::Chunked`]
/// finds it), in order.
pub(crate) fn chunks(body: &[u8]) -> impl Iterator<Item = &[u8]> + '_ {
    let mut at = 0;
    std::iter::from_fn(move || match next_chunk(body, at, 0) {
        Ok(Chunk::Data { data, next }) => {
            at = next;
            Some(&body[data])
        }
        _ => None,
    })
}

/// Frames whole requests: the payload is the whole request, head and body.
#[derive(Debug, Clone, Default)]
pub(crate) struct RequestCodec {
    /// The head of the frame just returned, for the handler.
    parsed: Rc<RefCell<Option<Head>>>,
}

impl RequestCodec {
    /// A codec; no request seen yet.
    pub(crate) fn new() -> RequestCodec {
        RequestCodec::default()
    }

    /// The head of the frame just returned (taken by the handler): shared
    /// with the request handler, which then does not parse it again.
    pub(crate) fn parsed(&self) -> Rc<RefCell<Option<Head>>> {
        self.parsed.clone()
    }
}

impl Decoder for RequestCodec {
    type Error = RequestError;

    fn decode(&mut self, buf: &[u8]) -> Result<Decoded, RequestError> {
        let head = match parse(buf)? {
            Parsed::Complete(request) => Head::of(&request, buf),
            Parsed::NeedMore(frame_len) => return Ok(Decoded::NeedMore { frame_len }),
        };
        let len = head.len;
        *self.parsed.borrow_mut() = Some(head);
        Ok(Decoded::Frame {
            payload: 0..len,
            consumed: len,
        })
    }
}
