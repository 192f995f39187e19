//! RESP2, the Redis protocol, on the wire: [`Resp`], the [`Decoder`] that
//! cuts whole commands (multibulk `*N\r\n$len\r\n...\r\n` or an inline
//! line such as `PING\r\n`) out of the read buffer; [`Args`], the
//! arguments of a command, read from the frame without allocating; and the
//! reply writers.
//!
//! The limits are Redis's, checked before a byte of what they bound is
//! buffered: a bulk string of at most 512 MiB (`proto-max-bulk-len`), an
//! inline line (and a count or length line) of at most 64 KiB. Redis
//! accepts up to `INT_MAX` arguments in a command; this server accepts at
//! most 1024 × 1024, so that a command's scan stays bounded. A whole
//! command of more than 1 GiB (many large arguments) is refused too, as
//! Redis's `client-query-buffer-limit` closes such a client.

// Included by `#[path]` from the tests and the fuzz target, which use
// different parts of it.
#![allow(dead_code)]

use std::cell::RefCell;
use std::error::Error;
use std::fmt;
use std::io;
use std::rc::Rc;

use sockmux::{Decoded, Decoder};

/// The longest bulk string accepted, as Redis's `proto-max-bulk-len`.
pub(crate) const MAX_BULK: usize = 512 * 1024 * 1024;
/// The most arguments in one command (Redis: `INT_MAX`).
pub(crate) const MAX_ARGS: usize = 1024 * 1024;
/// The longest whole command, as Redis's `client-query-buffer-limit`.
pub(crate) const MAX_QUERY: usize = 1024 * 1024 * 1024;
/// The longest inline command, count line or length line, as Redis's
/// `PROTO_INLINE_MAX_SIZE`.
pub(crate) const MAX_INLINE: usize = 64 * 1024;

/// Input that can never be a command: Redis's protocol errors, worded as
/// Redis words them. The connection closes after the error reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProtocolError {
    /// An inline command longer than [`MAX_INLINE`].
    TooBigInline,
    /// An inline command with a quote that does not close (or a closing
    /// quote followed by something else than a space).
    UnbalancedQuotes,
    /// A `*count` line longer than [`MAX_INLINE`].
    TooBigMbulkCount,
    /// A `*count` that is not a number or more than [`MAX_ARGS`].
    InvalidMultibulkLength,
    /// A `$length` line longer than [`MAX_INLINE`].
    TooBigBulkCount,
    /// A `$length` that is not a number, negative or more than
    /// [`MAX_BULK`].
    InvalidBulkLength,
    /// An argument of a multibulk command that does not start with `$`.
    ExpectedDollar(u8),
    /// A command whose lengths add up to more than [`MAX_QUERY`]: Redis
    /// closes such a client without a reply.
    TooBigQuery,
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Protocol error: ")?;
        match *self {
            ProtocolError::TooBigInline => f.write_str("too big inline request"),
            ProtocolError::UnbalancedQuotes => f.write_str("unbalanced quotes in request"),
            ProtocolError::TooBigMbulkCount => f.write_str("too big mbulk count string"),
            ProtocolError::InvalidMultibulkLength => f.write_str("invalid multibulk length"),
            ProtocolError::TooBigBulkCount => f.write_str("too big bulk count string"),
            ProtocolError::InvalidBulkLength => f.write_str("invalid bulk length"),
            ProtocolError::ExpectedDollar(got) => {
                write!(f, "expected '$', got '{}'", char::from(got))
            }
            ProtocolError::TooBigQuery => write!(f, "a command longer than {MAX_QUERY} bytes"),
        }
    }
}

impl Error for ProtocolError {}

impl From<ProtocolError> for io::Error {
    fn from(error: ProtocolError) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, error)
    }
}

/// Parses a whole signed decimal number as Redis's `string2ll` does: no
/// sign but `-`, no leading zero, no space, no overflow.
pub(crate) fn parse_int(s: &[u8]) -> Option<i64> {
    let (negative, digits) = match s {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, s),
    };
    match digits {
        [] => return None,
        [b'0'] if !negative => return Some(0),
        [b'0', ..] => return None,
        _ => {}
    }
    // Accumulate negatively: i64::MIN has no positive counterpart.
    let mut n: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_sub(i64::from(d - b'0'))?;
    }
    if negative {
        Some(n)
    } else {
        n.checked_neg()
    }
}

/// The RESP2 command decoder: a frame is one whole command, its payload
/// the command's bytes (a multibulk command from its `*`, an inline one
/// without its line end), for [`Args`] to read.
///
/// It remembers how far it scanned a multibulk command that is not
/// complete yet, so that a command of many arguments arriving in many
/// reads is scanned once.
#[derive(Debug, Default)]
pub(crate) struct Resp {
    scan: Scan,
    /// Where the arguments of the frame just returned lie, for the
    /// protocol ([`Resp::index`]).
    index: Rc<RefCell<Index>>,
}

impl Resp {
    /// A decoder at the start of a command.
    pub(crate) fn new() -> Resp {
        Resp::default()
    }

    /// Where the arguments of each frame lie, as the scan found them, set
    /// with each frame (empty for an inline command or one of more than
    /// [`INDEXED`] arguments): the protocol reads the arguments from it
    /// ([`Args::indexed`]) instead of parsing the frame again.
    pub(crate) fn index(&self) -> Rc<RefCell<Index>> {
        Rc::clone(&self.index)
    }
}

/// The most arguments of a command whose places the decoder keeps.
pub(crate) const INDEXED: usize = 8;

/// Where a multibulk command's arguments lie in its frame: start and
/// length of each.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Index {
    len: usize,
    spans: [(u32, u32); INDEXED],
}

impl Index {
    /// The arguments' places (none when not indexed).
    pub(crate) fn spans(&self) -> &[(u32, u32)] {
        &self.spans[..self.len]
    }
}

/// Where the scan of a command stands.
#[derive(Debug, Default)]
struct Scan {
    /// The argument count of the command being scanned.
    count: usize,
    /// Within a multibulk command: where the next argument starts...
    pos: usize,
    /// ...and how many are left (0: not within one).
    left: usize,
}

impl Scan {
    fn command(&mut self, buf: &[u8], index: &mut Index) -> Result<Decoded, ProtocolError> {
        match buf.first() {
            None => Ok(Decoded::NeedMore { frame_len: None }),
            Some(b'*') => self.multibulk(buf, index).inspect_err(|_| self.left = 0),
            Some(_) => self.inline(buf),
        }
    }

    fn multibulk(&mut self, buf: &[u8], index: &mut Index) -> Result<Decoded, ProtocolError> {
        if self.left == 0 {
            let (count, cr) = match plain_number(buf, 1, MAX_ARGS) {
                Some((count, cr)) => (count as i64, cr),
                None => match count(buf)? {
                    Some(found) => found,
                    None => return Ok(Decoded::NeedMore { frame_len: None }),
                },
            };
            if cr + 1 >= buf.len() {
                return Ok(Decoded::NeedMore { frame_len: None });
            }
            let end = cr + 2;
            if count <= 0 {
                // An empty command: Redis skips it.
                return Ok(frame(end));
            }
            self.pos = end;
            self.left = count as usize;
            self.count = count as usize;
        }
        while self.left > 0 {
            let at = self.pos;
            let Some(&first) = buf.get(at) else {
                return Ok(Decoded::NeedMore { frame_len: None });
            };
            if first != b'$' {
                return Err(ProtocolError::ExpectedDollar(first));
            }
            let (len, cr) = match plain_number(buf, at + 1, MAX_BULK) {
                Some(found) => found,
                None => {
                    let Some(cr) = find(buf, at + 1, b'\r') else {
                        if buf.len() - at > MAX_INLINE {
                            return Err(ProtocolError::TooBigBulkCount);
                        }
                        return Ok(Decoded::NeedMore { frame_len: None });
                    };
                    if cr - at > MAX_INLINE {
                        return Err(ProtocolError::TooBigBulkCount);
                    }
                    let len = parse_int(&buf[at + 1..cr])
                        .filter(|&len| (0..=MAX_BULK as i64).contains(&len))
                        .ok_or(ProtocolError::InvalidBulkLength)?;
                    (len as usize, cr)
                }
            };
            let end = cr + 2 + len + 2;
            if end > MAX_QUERY {
                return Err(ProtocolError::TooBigQuery);
            }
            if end > buf.len() {
                // The whole frame's length is known at its last argument.
                let frame_len = (self.left == 1).then_some(end);
                return Ok(Decoded::NeedMore { frame_len });
            }
            let nth = self.count - self.left;
            if let Some(span) = index.spans.get_mut(nth) {
                // Within MAX_QUERY: fits.
                *span = ((cr + 2) as u32, len as u32);
            }
            self.pos = end;
            self.left -= 1;
        }
        let end = self.pos;
        self.pos = 0;
        index.len = if self.count <= INDEXED { self.count } else { 0 };
        Ok(frame(end))
    }

    fn inline(&mut self, buf: &[u8]) -> Result<Decoded, ProtocolError> {
        let Some(newline) = find(buf, 0, b'\n') else {
            if buf.len() > MAX_INLINE {
                return Err(ProtocolError::TooBigInline);
            }
            return Ok(Decoded::NeedMore { frame_len: None });
        };
        if newline > MAX_INLINE {
            return Err(ProtocolError::TooBigInline);
        }
        let line = &buf[..newline];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let mut words = Inline { line, at: 0 };
        while let Some(word) = words.word() {
            word?;
        }
        Ok(Decoded::Frame {
            payload: 0..line.len(),
            consumed: newline + 1,
        })
    }
}

/// The argument count of a multibulk command, read with Redis's checks
/// and errors: the count and where its `\r` is; `None` while the line is
/// not all there.
fn count(buf: &[u8]) -> Result<Option<(i64, usize)>, ProtocolError> {
    let Some(cr) = find(buf, 1, b'\r') else {
        if buf.len() > MAX_INLINE {
            return Err(ProtocolError::TooBigMbulkCount);
        }
        return Ok(None);
    };
    if cr > MAX_INLINE {
        return Err(ProtocolError::TooBigMbulkCount);
    }
    let count = parse_int(&buf[1..cr]).ok_or(ProtocolError::InvalidMultibulkLength)?;
    if count > MAX_ARGS as i64 {
        return Err(ProtocolError::InvalidMultibulkLength);
    }
    Ok(Some((count, cr)))
}

fn frame(end: usize) -> Decoded {
    Decoded::Frame {
        payload: 0..end,
        consumed: end,
    }
}

/// The everyday number of a `$` or `*` line, read in one pass: the
/// digits from `from` up to a `\r`, with no sign and no leading zero, at
/// most `max`; returns it and where its `\r` is. `None` for anything else
/// (not all there yet, signed, too large, not a number), which the
/// careful path ([`find`], then [`parse_int`]) then judges, with Redis's
/// errors.
#[inline]
fn plain_number(buf: &[u8], from: usize, max: usize) -> Option<(usize, usize)> {
    let digits = buf.get(from..)?;
    let mut n: u64 = 0;
    // Ten digits exceed any limit here: the careful path decides.
    for (i, &d) in digits.iter().enumerate().take(11) {
        if d == b'\r' {
            let plain = i == 1 || (i > 1 && digits[0] != b'0');
            return (plain && n <= max as u64).then_some((n as usize, from + i));
        }
        if !d.is_ascii_digit() {
            return None;
        }
        n = n * 10 + u64::from(d - b'0');
    }
    None
}

fn find(buf: &[u8], from: usize, byte: u8) -> Option<usize> {
    buf.get(from..)?
        .iter()
        .position(|&b| b == byte)
        .map(|i| from + i)
}

impl Decoder for Resp {
    type Error = ProtocolError;

    fn decode(&mut self, buf: &[u8]) -> Result<Decoded, ProtocolError> {
        // The places go straight where the protocol reads them; they are
        // read only with the frame this call returns.
        let mut index = self.index.borrow_mut();
        index.len = 0;
        self.scan.command(buf, &mut index)
    }
}

/// The words of an inline command: separated by spaces, a word in double
/// quotes (where `\` escapes the next byte) or single quotes may hold
/// spaces. Escapes are kept as they are (`"a\"b"` is the word `a\"b`):
/// unlike Redis, this server does not decode them, so that a word is
/// always a slice of the frame.
struct Inline<'a> {
    line: &'a [u8],
    at: usize,
}

impl<'a> Inline<'a> {
    fn word(&mut self) -> Option<Result<&'a [u8], ProtocolError>> {
        let line = self.line;
        while self.at < line.len() && line[self.at].is_ascii_whitespace() {
            self.at += 1;
        }
        let start = self.at;
        let quote = *line.get(start)?;
        if quote != b'"' && quote != b'\'' {
            while self.at < line.len() && !line[self.at].is_ascii_whitespace() {
                self.at += 1;
            }
            return Some(Ok(&line[start..self.at]));
        }
        let mut i = start + 1;
        loop {
            match line.get(i) {
                None => {
                    self.at = line.len();
                    return Some(Err(ProtocolError::UnbalancedQuotes));
                }
                Some(b'\\') if i + 1 < line.len() => i += 2,
                Some(&b) if b == quote => break,
                Some(_) => i += 1,
            }
        }
        // The closing quote must end the word.
        if line.get(i + 1).is_some_and(|b| !b.is_ascii_whitespace()) {
            self.at = line.len();
            return Some(Err(ProtocolError::UnbalancedQuotes));
        }
        self.at = i + 1;
        Some(Ok(&line[start + 1..i]))
    }
}

/// The arguments of a command, read from a frame of [`Resp`] as they are
/// iterated: no allocation, whatever their number.
#[derive(Debug, Clone)]
pub(crate) struct Args<'a> {
    frame: &'a [u8],
    at: usize,
    /// Multibulk: the arguments left; inline: `usize::MAX`.
    left: usize,
    /// The places of the arguments left, when the decoder gave them.
    spans: &'a [(u32, u32)],
}

impl<'a> Args<'a> {
    /// The arguments of `frame`, a payload [`Resp`] cut.
    pub(crate) fn new(frame: &'a [u8]) -> Args<'a> {
        if frame.first() == Some(&b'*') {
            let (count, cr) = plain_number(frame, 1, MAX_ARGS).unwrap_or_else(|| {
                let cr = find(frame, 1, b'\r').unwrap_or(frame.len());
                (parse_int(&frame[1..cr]).unwrap_or(0).max(0) as usize, cr)
            });
            Args {
                frame,
                at: cr + 2,
                left: count,
                spans: &[],
            }
        } else {
            Args {
                frame,
                at: 0,
                left: usize::MAX,
                spans: &[],
            }
        }
    }

    /// The arguments of `frame` at the places `spans` the decoder found
    /// for it ([`Resp::index`]); parsed from the frame as by
    /// [`Args::new`] when there are none.
    pub(crate) fn indexed(frame: &'a [u8], spans: &'a [(u32, u32)]) -> Args<'a> {
        if spans.is_empty() {
            return Args::new(frame);
        }
        Args {
            frame,
            at: 0,
            left: spans.len(),
            spans,
        }
    }

    /// How many arguments are left.
    pub(crate) fn len(&self) -> usize {
        if self.left == usize::MAX {
            self.clone().count()
        } else {
            self.left
        }
    }

    /// Whether no argument is left.
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<'a> Iterator for Args<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.left == usize::MAX {
            let mut words = Inline {
                line: self.frame,
                at: self.at,
            };
            let word = words.word().and_then(Result::ok);
            self.at = words.at;
            return word;
        }
        if self.left == 0 {
            return None;
        }
        if let Some((&(start, len), rest)) = self.spans.split_first() {
            self.spans = rest;
            self.left -= 1;
            let start = start as usize;
            return self.frame.get(start..start + len as usize);
        }
        let (len, cr) = match plain_number(self.frame, self.at + 1, MAX_BULK) {
            Some(found) => found,
            None => {
                let cr = find(self.frame, self.at, b'\r')?;
                (parse_int(self.frame.get(self.at + 1..cr)?)? as usize, cr)
            }
        };
        let start = cr + 2;
        let arg = self.frame.get(start..start + len)?;
        self.at = start + len + 2;
        self.left -= 1;
        Some(arg)
    }
}

/// Appends `+text\r\n`.
pub(crate) fn simple(out: &mut Vec<u8>, text: &str) {
    out.push(b'+');
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Appends `+OK\r\n`.
pub(crate) fn ok(out: &mut Vec<u8>) {
    out.extend_from_slice(b"+OK\r\n");
}

/// Appends `-text\r\n` (`text` starts with its code: `ERR ...`); a line
/// end in it becomes a space, as Redis does.
pub(crate) fn error(out: &mut Vec<u8>, text: &str) {
    out.push(b'-');
    out.extend(
        text.bytes()
            .map(|b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
    );
    out.extend_from_slice(b"\r\n");
}

/// Appends `:n\r\n`.
pub(crate) fn integer(out: &mut Vec<u8>, n: i64) {
    header(out, b':', n.is_negative(), n.unsigned_abs());
}

/// Appends a bulk string.
pub(crate) fn bulk(out: &mut Vec<u8>, bytes: &[u8]) {
    match bytes.len() {
        // A one-digit length: a header of a known size, no digit loop.
        n @ 0..=9 => out.extend_from_slice(&[b'$', b'0' + n as u8, b'\r', b'\n']),
        n => header(out, b'$', false, n as u64),
    }
    out.extend_from_slice(bytes);
    out.extend_from_slice(b"\r\n");
}

/// Appends `prefix`, the number (`-` first if `negative`) in decimal and
/// `\r\n`, without the formatting machinery (a reply's header is written
/// for every command).
fn header(out: &mut Vec<u8>, prefix: u8, negative: bool, mut n: u64) {
    let mut digits = [0u8; 24];
    let mut at = digits.len() - 2;
    digits[at..].copy_from_slice(b"\r\n");
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if negative {
        at -= 1;
        digits[at] = b'-';
    }
    at -= 1;
    digits[at] = prefix;
    out.extend_from_slice(&digits[at..]);
}

/// Appends the nil bulk string, `$-1\r\n`.
pub(crate) fn nil(out: &mut Vec<u8>) {
    out.extend_from_slice(b"$-1\r\n");
}

/// Appends the header of an array of `n` elements.
pub(crate) fn array(out: &mut Vec<u8>, n: usize) {
    header(out, b'*', false, n as u64);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_integers_as_redis() {
        assert_eq!(parse_int(b"0"), Some(0));
        assert_eq!(parse_int(b"-12"), Some(-12));
        assert_eq!(parse_int(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_int(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [
            &b""[..],
            b"-",
            b"01",
            b"+1",
            b" 1",
            b"-0",
            b"9223372036854775808",
        ] {
            assert_eq!(parse_int(bad), None, "{bad:?}");
        }
    }
}
