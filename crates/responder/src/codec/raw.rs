//! [`Raw`]: no framing; whatever is buffered is a frame.

use super::{CodecError, Decoded, Decoder};

/// No framing: every byte is handed on as it arrives; a frame is all the
/// bytes buffered, and an empty buffer needs more. Never fails.
///
/// ```
/// use sockmux_responder::{Decoded, Decoder, Raw};
///
/// assert_eq!(Raw.decode(b"abc")?, Decoded::Frame { payload: 0..3, consumed: 3 });
/// assert_eq!(Raw.decode(b"")?, Decoded::NeedMore { frame_len: None });
/// # Ok::<(), sockmux_responder::CodecError>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Raw;

impl Decoder for Raw {
    type Error = CodecError;

    /// All of `buf` is a frame; an empty `buf` needs more.
    ///
    /// ```
    /// use sockmux_responder::{Decoded, Decoder, Raw};
    ///
    /// let buf = b"\0\r\n";
    /// assert_eq!(Raw.decode(buf)?, Decoded::Frame { payload: 0..3, consumed: 3 });
    /// # Ok::<(), sockmux_responder::CodecError>(())
    /// ```
    fn decode(&mut self, buf: &[u8]) -> Result<Decoded, CodecError> {
        Ok(if buf.is_empty() {
            Decoded::NeedMore { frame_len: None }
        } else {
            Decoded::Frame {
                payload: 0..buf.len(),
                consumed: buf.len(),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_is_everything_buffered() {
        assert_eq!(
            Raw.decode(&[7; 100]),
            Ok(Decoded::Frame {
                payload: 0..100,
                consumed: 100
            })
        );
        assert_eq!(Raw.decode(&[]), Ok(Decoded::NeedMore { frame_len: None }));
    }
}
