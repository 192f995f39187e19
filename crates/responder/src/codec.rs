//! Framing codecs: the [`Decoder`] trait that cuts frames out of a
//! connection's read buffer, what it answers ([`Decoded`]), and the codecs
//! this crate provides ([`Raw`], [`Lines`], [`LengthPrefixed`]).
//!
//! A decoder only *looks* at the bytes buffered so far: it answers where
//! the next frame's payload lies in the buffer and how many bytes the frame
//! takes, and the owner of the buffer (a stream) hands the payload on as a
//! borrowed `&buf[range]` and consumes the frame. No decoder here
//! allocates.

mod error;
mod length;
mod lines;
mod raw;

pub use error::CodecError;
pub use length::{Endian, LengthPrefixed, Width};
pub use lines::Lines;
pub use raw::Raw;

use std::io;
use std::ops::Range;

/// What a [`Decoder`] found at the start of the buffer.
///
/// ```
/// use sockmux_responder::{Decoded, Decoder, Lines};
///
/// let mut lines = Lines::new(80);
/// let buf = b"hello\r\nwor";
/// let Decoded::Frame { payload, consumed } = lines.decode(buf)? else {
///     panic!("a whole line is buffered");
/// };
/// assert_eq!(&buf[payload], b"hello");
/// assert_eq!(consumed, 7);
/// // The stream drops the first `consumed` bytes; "wor" needs more.
/// assert_eq!(lines.decode(&buf[consumed..])?, Decoded::NeedMore { frame_len: None });
/// # Ok::<(), sockmux_responder::CodecError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Decoded {
    /// A complete frame: its payload is `buf[payload]`, and the frame
    /// (payload, header, terminator) is the first `consumed` bytes of the
    /// buffer.
    ///
    /// `payload` lies within `0..consumed`, and `consumed` is at least 1 and
    /// at most the buffer's length.
    Frame {
        /// Where the payload lies in the buffer.
        payload: Range<usize>,
        /// How many bytes at the start of the buffer the frame takes.
        consumed: usize,
    },
    /// No complete frame yet: call again once more bytes are buffered.
    NeedMore {
        /// The length of the whole frame (header included), when already
        /// known, for example from a length header; always more than the
        /// buffer's length. The buffer may grow to exactly this and no
        /// further for this frame.
        frame_len: Option<usize>,
    },
}

/// Cuts frames out of the bytes buffered from a connection: the user's own
/// framing, or one of [`Raw`], [`Lines`] and [`LengthPrefixed`].
///
/// The owner of the buffer calls [`decode`](Decoder::decode) with the bytes
/// buffered so far; on [`Decoded::Frame`] it hands on `&buf[payload]` and
/// drops the first `consumed` bytes, and calls again (more frames may be
/// buffered); on [`Decoded::NeedMore`] it reads more and calls again with
/// the same bytes followed by the new ones; on an error the connection's
/// data can never be framed and it closes the connection.
///
/// A decoder may rely on that order to remember how far it has looked (as
/// [`Lines`] does, so that a long line is scanned once, not once per read):
/// between two calls, the buffer either only grew at its end (after
/// `NeedMore`) or lost exactly the first `consumed` bytes of the frame just
/// returned (and may have grown too).
///
/// A decoder for messages of a 2-byte big-endian length followed by that
/// many bytes, no more than 512:
///
/// ```
/// use sockmux_responder::{CodecError, Decoded, Decoder};
///
/// struct Short;
///
/// impl Decoder for Short {
///     type Error = CodecError;
///
///     fn decode(&mut self, buf: &[u8]) -> Result<Decoded, CodecError> {
///         let Some(&[hi, lo]) = buf.get(..2) else {
///             return Ok(Decoded::NeedMore { frame_len: None });
///         };
///         let len = usize::from(u16::from_be_bytes([hi, lo]));
///         if len > 512 {
///             // From the header alone, before the payload arrives.
///             return Err(CodecError::FrameTooLong { max: 512, length: len as u64 });
///         }
///         if buf.len() < 2 + len {
///             return Ok(Decoded::NeedMore { frame_len: Some(2 + len) });
///         }
///         Ok(Decoded::Frame { payload: 2..2 + len, consumed: 2 + len })
///     }
/// }
///
/// let buf = [0, 3, b'a', b'b', b'c', 0, 9, b'x'];
/// assert_eq!(Short.decode(&buf)?, Decoded::Frame { payload: 2..5, consumed: 5 });
/// assert_eq!(Short.decode(&buf[5..])?, Decoded::NeedMore { frame_len: Some(11) });
/// assert!(Short.decode(&[2, 1]).is_err());
/// # Ok::<(), CodecError>(())
/// ```
pub trait Decoder {
    /// What [`decode`](Decoder::decode) returns for data that can never be
    /// framed (a frame longer than the decoder accepts, a malformed
    /// header); the stream closes the connection with it, as an
    /// [`io::Error`].
    ///
    /// The codecs of this crate use [`CodecError`], whose `io::Error` is of
    /// kind `InvalidData`:
    ///
    /// ```
    /// use sockmux_responder::{Decoder, Lines};
    /// use std::io;
    ///
    /// let error = Lines::new(4).decode(b"too long").unwrap_err();
    /// let error: io::Error = error.into();
    /// assert_eq!(error.kind(), io::ErrorKind::InvalidData);
    /// ```
    type Error: Into<io::Error>;

    /// Looks at `buf`, the start of the bytes buffered so far, and answers
    /// a complete frame, that more bytes are needed, or an error.
    ///
    /// An error must be found as early as possible: as soon as the bytes
    /// seen prove that the frame can never be accepted (a declared length
    /// above the maximum, from the header alone), before the frame's bytes
    /// arrive and before the buffer grows for them.
    ///
    /// ```
    /// use sockmux_responder::{Decoded, Decoder, Endian, LengthPrefixed, Width};
    ///
    /// let mut codec = LengthPrefixed::new(Width::U16, Endian::Big, 1024);
    /// assert_eq!(codec.decode(&[0])?, Decoded::NeedMore { frame_len: None });
    /// assert_eq!(codec.decode(&[0, 2, b'h'])?, Decoded::NeedMore { frame_len: Some(4) });
    /// assert_eq!(
    ///     codec.decode(&[0, 2, b'h', b'i', 0])?,
    ///     Decoded::Frame { payload: 2..4, consumed: 4 },
    /// );
    /// assert!(codec.decode(&[0xff, 0xff]).is_err()); // 65535 > 1024
    /// # Ok::<(), sockmux_responder::CodecError>(())
    /// ```
    fn decode(&mut self, buf: &[u8]) -> Result<Decoded, Self::Error>;
}
