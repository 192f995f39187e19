//! [`CodecError`]: a frame the codecs can never accept.

use std::error::Error;
use std::fmt;
use std::io;

/// A frame that can never be accepted: which limit it passed, and what was
/// seen. The connection's data cannot be framed past it.
///
/// Converts to an [`io::Error`] of kind
/// [`InvalidData`](io::ErrorKind::InvalidData) that keeps it as its source.
///
/// ```
/// use sockmux_responder::{CodecError, Decoder, Endian, LengthPrefixed, Width};
/// use std::io;
///
/// let mut codec = LengthPrefixed::new(Width::U32, Endian::Big, 1 << 20);
/// // A 4 GiB frame announced: refused from its header alone.
/// let error = codec.decode(&[0xff, 0xff, 0xff, 0xff]).unwrap_err();
/// assert_eq!(error, CodecError::FrameTooLong { max: 1 << 20, length: 0xffff_ffff });
/// assert_eq!(
///     error.to_string(),
///     "frame too long: its length field says 4294967295 bytes, the maximum is 1048576",
/// );
/// let error = io::Error::from(error);
/// assert_eq!(error.kind(), io::ErrorKind::InvalidData);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CodecError {
    /// A line longer than the maximum of [`Lines`](crate::Lines): at least
    /// `length` bytes of payload without a newline.
    LineTooLong {
        /// The longest payload accepted, terminator excluded.
        max: usize,
        /// The payload bytes seen so far (the line may be longer still).
        length: usize,
    },
    /// A frame whose length field declares more than the maximum of its
    /// codec (or more than fits in memory).
    FrameTooLong {
        /// The longest payload accepted.
        max: usize,
        /// The payload length the header declares.
        length: u64,
    },
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            CodecError::LineTooLong { max, length } => write!(
                f,
                "line too long: {length} bytes without a newline, the maximum is {max}"
            ),
            CodecError::FrameTooLong { max, length } => write!(
                f,
                "frame too long: its length field says {length} bytes, the maximum is {max}"
            ),
        }
    }
}

impl Error for CodecError {}

impl From<CodecError> for io::Error {
    fn from(error: CodecError) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_the_limit_and_what_was_seen() {
        let e = CodecError::LineTooLong { max: 3, length: 4 };
        assert_eq!(
            e.to_string(),
            "line too long: 4 bytes without a newline, the maximum is 3"
        );
    }

    #[test]
    fn io_error_is_invalid_data_with_the_codec_error_inside() {
        let e = io::Error::from(CodecError::FrameTooLong { max: 1, length: 2 });
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        let inner = e.get_ref().unwrap().downcast_ref::<CodecError>();
        assert_eq!(inner, Some(&CodecError::FrameTooLong { max: 1, length: 2 }));
    }
}
