//! [`Lines`]: frames terminated by LF or CRLF, with a maximum length.

use super::{CodecError, Decoded, Decoder};

/// Lines terminated by `\n` or `\r\n`; the payload excludes the terminator
/// (a `\r` not followed by `\n` is part of the line).
///
/// A line whose payload is longer than [`max`](Lines::max) is an error as
/// soon as the bytes buffered prove it: more than `max` bytes without a
/// newline (`max + 1` when the last of them is a `\r` that may start a
/// `\r\n`). The buffer never has to grow past `max + 2` bytes for a line.
///
/// A line is scanned once however many reads it takes to arrive: the codec
/// remembers how far it looked (see [`Decoder`]'s contract).
///
/// ```
/// use sockmux_responder::{CodecError, Decoded, Decoder, Lines};
///
/// let mut lines = Lines::new(5);
/// assert_eq!(lines.decode(b"hello\r\n")?, Decoded::Frame { payload: 0..5, consumed: 7 });
/// assert_eq!(lines.decode(b"\n")?, Decoded::Frame { payload: 0..0, consumed: 1 });
/// assert_eq!(
///     lines.decode(b"hello!"),
///     Err(CodecError::LineTooLong { max: 5, length: 6 }),
/// );
/// # Ok::<(), CodecError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Lines {
    max: usize,
    /// Bytes at the start of the buffer known to hold no `\n`.
    scanned: usize,
}

impl Lines {
    /// Lines of at most `max` bytes, the terminator excluded.
    ///
    /// ```
    /// use sockmux_responder::{Decoded, Decoder, Lines};
    ///
    /// let mut lines = Lines::new(0); // empty lines only
    /// assert_eq!(lines.decode(b"\r\n")?, Decoded::Frame { payload: 0..0, consumed: 2 });
    /// assert!(lines.decode(b"x").is_err());
    /// # Ok::<(), sockmux_responder::CodecError>(())
    /// ```
    pub fn new(max: usize) -> Lines {
        Lines { max, scanned: 0 }
    }

    /// The longest payload accepted, terminator excluded.
    ///
    /// ```
    /// use sockmux_responder::Lines;
    ///
    /// assert_eq!(Lines::new(1024).max(), 1024);
    /// ```
    pub fn max(&self) -> usize {
        self.max
    }
}

impl Decoder for Lines {
    type Error = CodecError;

    /// The first line of `buf`, if its terminator is buffered; an error if
    /// the line is already longer than the maximum.
    ///
    /// ```
    /// use sockmux_responder::{Decoded, Decoder, Lines};
    ///
    /// let mut lines = Lines::new(16);
    /// let mut buf = b"GET / HTTP/1.1\r".to_vec();
    /// assert_eq!(lines.decode(&buf)?, Decoded::NeedMore { frame_len: None });
    /// buf.extend_from_slice(b"\nHost: x\r\n");
    /// let Decoded::Frame { payload, consumed } = lines.decode(&buf)? else { panic!() };
    /// assert_eq!(&buf[payload], b"GET / HTTP/1.1");
    /// buf.drain(..consumed);
    /// let Decoded::Frame { payload, .. } = lines.decode(&buf)? else { panic!() };
    /// assert_eq!(&buf[payload], b"Host: x");
    /// # Ok::<(), sockmux_responder::CodecError>(())
    /// ```
    fn decode(&mut self, buf: &[u8]) -> Result<Decoded, CodecError> {
        // A shorter buffer than last time breaks the contract: look again
        // from the start rather than skip bytes.
        let from = if self.scanned <= buf.len() {
            self.scanned
        } else {
            0
        };
        // A line within the limit has its `\n` among the first `max + 2`
        // bytes; past them, nothing needs looking at.
        let window = &buf[..buf.len().min(self.max.saturating_add(2))];
        let found = window[from.min(window.len())..]
            .iter()
            .position(|&b| b == b'\n');
        let length = match found {
            Some(i) => {
                let newline = from + i;
                let end = if newline > 0 && buf[newline - 1] == b'\r' {
                    newline - 1
                } else {
                    newline
                };
                if end <= self.max {
                    self.scanned = 0;
                    return Ok(Decoded::Frame {
                        payload: 0..end,
                        consumed: newline + 1,
                    });
                }
                end
            }
            // The payload so far: all the window, but a last `\r` may yet
            // be a terminator's.
            None => match window.last() {
                Some(b'\r') => window.len() - 1,
                _ => window.len(),
            },
        };
        if length > self.max {
            self.scanned = 0;
            return Err(CodecError::LineTooLong {
                max: self.max,
                length,
            });
        }
        self.scanned = buf.len();
        Ok(Decoded::NeedMore { frame_len: None })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(payload: std::ops::Range<usize>, consumed: usize) -> Result<Decoded, CodecError> {
        Ok(Decoded::Frame { payload, consumed })
    }

    const MORE: Result<Decoded, CodecError> = Ok(Decoded::NeedMore { frame_len: None });

    #[test]
    fn lf_and_crlf_both_end_a_line_and_are_left_out() {
        let mut lines = Lines::new(10);
        assert_eq!(lines.decode(b"ab\ncd"), frame(0..2, 3));
        assert_eq!(lines.decode(b"ab\r\ncd"), frame(0..2, 4));
        // A lone CR is payload.
        assert_eq!(lines.decode(b"a\rb\n"), frame(0..3, 4));
        assert_eq!(lines.decode(b"a\r\r\n"), frame(0..2, 4));
    }

    #[test]
    fn empty_lines() {
        let mut lines = Lines::new(10);
        assert_eq!(lines.decode(b"\n\n"), frame(0..0, 1));
        assert_eq!(lines.decode(b"\r\n"), frame(0..0, 2));
        assert_eq!(lines.decode(b""), MORE);
        assert_eq!(lines.decode(b"\r"), MORE);
    }

    #[test]
    fn max_exactly_is_accepted_one_more_is_not() {
        for terminator in [&b"\n"[..], b"\r\n"] {
            let mut at_max = b"12345".to_vec();
            at_max.extend_from_slice(terminator);
            assert_eq!(Lines::new(5).decode(&at_max), frame(0..5, at_max.len()));
            let mut over = b"123456".to_vec();
            over.extend_from_slice(terminator);
            assert_eq!(
                Lines::new(5).decode(&over),
                Err(CodecError::LineTooLong { max: 5, length: 6 })
            );
        }
    }

    #[test]
    fn too_long_as_soon_as_more_than_max_bytes_lack_a_newline() {
        let mut lines = Lines::new(5);
        assert_eq!(lines.decode(b"12345"), MORE);
        // A CR may still be the start of CRLF.
        assert_eq!(lines.decode(b"12345\r"), MORE);
        assert_eq!(lines.decode(b"12345\r\n"), frame(0..5, 7));
        assert_eq!(
            Lines::new(5).decode(b"123456"),
            Err(CodecError::LineTooLong { max: 5, length: 6 })
        );
        assert_eq!(
            Lines::new(5).decode(b"12345\rx"),
            Err(CodecError::LineTooLong { max: 5, length: 7 })
        );
        assert_eq!(
            Lines::new(5).decode(b"123456\r\n"),
            Err(CodecError::LineTooLong { max: 5, length: 6 })
        );
        // Far past the limit: only the window is looked at.
        let long = vec![b'x'; 1 << 20];
        assert_eq!(
            Lines::new(5).decode(&long),
            Err(CodecError::LineTooLong { max: 5, length: 7 })
        );
        assert_eq!(
            Lines::new(5).decode(b"1234567\n"),
            Err(CodecError::LineTooLong { max: 5, length: 7 })
        );
    }

    #[test]
    fn remembers_how_far_it_looked_and_restarts_after_a_frame() {
        let mut lines = Lines::new(100);
        let buf = b"abcdef\nxy\n";
        for end in 1..=6 {
            assert_eq!(lines.decode(&buf[..end]), MORE);
            assert_eq!(lines.scanned, end);
        }
        assert_eq!(lines.decode(&buf[..8]), frame(0..6, 7));
        assert_eq!(lines.scanned, 0);
        assert_eq!(lines.decode(&buf[7..]), frame(0..2, 3));
        // A shorter buffer than promised: looked at from the start again.
        lines.decode(b"abcdef").unwrap();
        assert_eq!(lines.decode(b"a\n"), frame(0..1, 2));
    }

    #[test]
    fn the_largest_max_does_not_overflow() {
        let mut lines = Lines::new(usize::MAX);
        assert_eq!(lines.decode(b"abc"), MORE);
        assert_eq!(lines.decode(b"abc\r\n"), frame(0..3, 5));
    }
}
