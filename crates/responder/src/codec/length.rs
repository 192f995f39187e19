//! [`LengthPrefixed`]: frames led by a 1, 2, 4 or 8-byte length field.

use super::{CodecError, Decoded, Decoder};

/// The size of a length field.
///
/// ```
/// use sockmux_responder::Width;
///
/// assert_eq!(Width::U32.len(), 4);
/// assert_eq!(Width::U8.max_length(), 255);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Width {
    /// One byte: lengths up to 255.
    U8,
    /// Two bytes: lengths up to 65535.
    U16,
    /// Four bytes: lengths up to 2³² − 1.
    U32,
    /// Eight bytes: lengths up to 2⁶⁴ − 1.
    U64,
}

impl Width {
    /// The field's size in bytes: 1, 2, 4 or 8.
    ///
    /// ```
    /// use sockmux_responder::Width;
    ///
    /// assert_eq!([Width::U8, Width::U16, Width::U64].map(Width::len), [1, 2, 8]);
    /// ```
    #[allow(clippy::len_without_is_empty)] // never empty
    pub const fn len(self) -> usize {
        match self {
            Width::U8 => 1,
            Width::U16 => 2,
            Width::U32 => 4,
            Width::U64 => 8,
        }
    }

    /// The largest length the field can hold.
    ///
    /// ```
    /// use sockmux_responder::Width;
    ///
    /// assert_eq!(Width::U16.max_length(), 65535);
    /// assert_eq!(Width::U64.max_length(), u64::MAX);
    /// ```
    pub const fn max_length(self) -> u64 {
        match self {
            Width::U8 => u8::MAX as u64,
            Width::U16 => u16::MAX as u64,
            Width::U32 => u32::MAX as u64,
            Width::U64 => u64::MAX,
        }
    }
}

/// The byte order of a length field.
///
/// ```
/// use sockmux_responder::{Endian, LengthPrefixed, Width};
///
/// let mut out = Vec::new();
/// LengthPrefixed::new(Width::U16, Endian::Little, 1024).write_header(258, &mut out)?;
/// assert_eq!(out, [2, 1]);
/// # Ok::<(), sockmux_responder::CodecError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endian {
    /// Most significant byte first (network byte order).
    Big,
    /// Least significant byte first.
    Little,
}

/// Frames made of a length field ([`Width`] bytes, in [`Endian`] order) and
/// that many bytes of payload; the payload is the frame less its header.
///
/// A length above the maximum is an error from the header alone, before
/// any of the payload arrives, as is a frame that would not fit in memory:
/// the maximum is lowered, if need be, to what the field can hold and to
/// what fits in a `usize` with the header.
///
/// ```
/// use sockmux_responder::{CodecError, Decoded, Decoder, Endian, LengthPrefixed, Width};
///
/// let mut codec = LengthPrefixed::new(Width::U32, Endian::Big, 64 * 1024);
/// let buf = [0, 0, 0, 2, b'h', b'i'];
/// assert_eq!(codec.decode(&buf)?, Decoded::Frame { payload: 4..6, consumed: 6 });
/// // The header of a 4 GiB frame is enough to refuse it.
/// assert_eq!(
///     codec.decode(&[0xff; 4]),
///     Err(CodecError::FrameTooLong { max: 64 * 1024, length: u32::MAX.into() }),
/// );
/// # Ok::<(), CodecError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LengthPrefixed {
    width: Width,
    endian: Endian,
    max: usize,
}

impl LengthPrefixed {
    /// Frames with a `width`-byte length field in `endian` order and
    /// payloads of at most `max` bytes (lowered to
    /// [`width.max_length()`](Width::max_length) and to `usize::MAX` less
    /// the header if above them).
    ///
    /// ```
    /// use sockmux_responder::{Endian, LengthPrefixed, Width};
    ///
    /// assert_eq!(LengthPrefixed::new(Width::U32, Endian::Big, 1 << 20).max(), 1 << 20);
    /// assert_eq!(LengthPrefixed::new(Width::U8, Endian::Big, 1 << 20).max(), 255);
    /// assert_eq!(LengthPrefixed::new(Width::U64, Endian::Big, usize::MAX).max(), usize::MAX - 8);
    /// ```
    pub fn new(width: Width, endian: Endian, max: usize) -> LengthPrefixed {
        let by_field = usize::try_from(width.max_length()).unwrap_or(usize::MAX);
        let max = max.min(by_field).min(usize::MAX - width.len());
        LengthPrefixed { width, endian, max }
    }

    /// The size of the length field.
    ///
    /// ```
    /// use sockmux_responder::{Endian, LengthPrefixed, Width};
    ///
    /// assert_eq!(LengthPrefixed::new(Width::U16, Endian::Big, 10).width(), Width::U16);
    /// ```
    pub fn width(&self) -> Width {
        self.width
    }

    /// The byte order of the length field.
    ///
    /// ```
    /// use sockmux_responder::{Endian, LengthPrefixed, Width};
    ///
    /// assert_eq!(LengthPrefixed::new(Width::U16, Endian::Little, 10).endian(), Endian::Little);
    /// ```
    pub fn endian(&self) -> Endian {
        self.endian
    }

    /// The longest payload accepted, header excluded.
    ///
    /// ```
    /// use sockmux_responder::{Endian, LengthPrefixed, Width};
    ///
    /// assert_eq!(LengthPrefixed::new(Width::U16, Endian::Big, 100_000).max(), 65535);
    /// ```
    pub fn max(&self) -> usize {
        self.max
    }

    /// Appends to `out` the header of a payload of `payload_len` bytes; an
    /// error, and nothing appended, if the payload is longer than the
    /// maximum.
    ///
    /// ```
    /// use sockmux_responder::{Endian, LengthPrefixed, Width};
    ///
    /// let codec = LengthPrefixed::new(Width::U32, Endian::Big, 1024);
    /// let mut out = Vec::new();
    /// codec.write_header(5, &mut out)?;
    /// out.extend_from_slice(b"hello");
    /// assert_eq!(out, b"\0\0\0\x05hello");
    /// assert!(codec.write_header(1025, &mut out).is_err());
    /// # Ok::<(), sockmux_responder::CodecError>(())
    /// ```
    pub fn write_header(&self, payload_len: usize, out: &mut Vec<u8>) -> Result<(), CodecError> {
        if payload_len > self.max {
            return Err(CodecError::FrameTooLong {
                max: self.max,
                length: payload_len as u64,
            });
        }
        // Fits the field: the maximum does.
        let bytes = match self.endian {
            Endian::Big => (payload_len as u64).to_be_bytes(),
            Endian::Little => (payload_len as u64).to_le_bytes(),
        };
        let n = self.width.len();
        out.extend_from_slice(match self.endian {
            Endian::Big => &bytes[8 - n..],
            Endian::Little => &bytes[..n],
        });
        Ok(())
    }

    /// Appends to `out` a whole frame: the header, then `payload`.
    ///
    /// ```
    /// use sockmux_responder::{Decoded, Decoder, Endian, LengthPrefixed, Width};
    ///
    /// let mut codec = LengthPrefixed::new(Width::U8, Endian::Big, 255);
    /// let mut out = Vec::new();
    /// codec.encode(b"hi", &mut out)?;
    /// assert_eq!(out, b"\x02hi");
    /// assert_eq!(codec.decode(&out)?, Decoded::Frame { payload: 1..3, consumed: 3 });
    /// # Ok::<(), sockmux_responder::CodecError>(())
    /// ```
    pub fn encode(&self, payload: &[u8], out: &mut Vec<u8>) -> Result<(), CodecError> {
        self.write_header(payload.len(), out)?;
        out.extend_from_slice(payload);
        Ok(())
    }
}

impl Decoder for LengthPrefixed {
    type Error = CodecError;

    /// The first frame of `buf` if all of it is buffered; once the header
    /// is, the frame's whole length, or an error if it is too long.
    ///
    /// ```
    /// use sockmux_responder::{Decoded, Decoder, Endian, LengthPrefixed, Width};
    ///
    /// let mut codec = LengthPrefixed::new(Width::U16, Endian::Little, 1000);
    /// assert_eq!(codec.decode(&[3])?, Decoded::NeedMore { frame_len: None });
    /// assert_eq!(codec.decode(&[3, 0, b'a'])?, Decoded::NeedMore { frame_len: Some(5) });
    /// assert_eq!(codec.decode(b"\x03\0abc")?, Decoded::Frame { payload: 2..5, consumed: 5 });
    /// # Ok::<(), sockmux_responder::CodecError>(())
    /// ```
    fn decode(&mut self, buf: &[u8]) -> Result<Decoded, CodecError> {
        let n = self.width.len();
        let Some(header) = buf.get(..n) else {
            return Ok(Decoded::NeedMore { frame_len: None });
        };
        let mut bytes = [0; 8];
        let length = match self.endian {
            Endian::Big => {
                bytes[8 - n..].copy_from_slice(header);
                u64::from_be_bytes(bytes)
            }
            Endian::Little => {
                bytes[..n].copy_from_slice(header);
                u64::from_le_bytes(bytes)
            }
        };
        if length > self.max as u64 {
            return Err(CodecError::FrameTooLong {
                max: self.max,
                length,
            });
        }
        // No overflow: `max` leaves room for the header.
        let end = n + length as usize;
        Ok(if buf.len() < end {
            Decoded::NeedMore {
                frame_len: Some(end),
            }
        } else {
            Decoded::Frame {
                payload: n..end,
                consumed: end,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WIDTHS: [Width; 4] = [Width::U8, Width::U16, Width::U32, Width::U64];
    const ENDIANS: [Endian; 2] = [Endian::Big, Endian::Little];

    #[test]
    fn every_width_and_endian_reads_what_it_writes() {
        for width in WIDTHS {
            for endian in ENDIANS {
                let mut codec = LengthPrefixed::new(width, endian, 300);
                let payload = vec![0xa5; codec.max().min(255)];
                let mut out = Vec::new();
                codec.encode(&payload, &mut out).unwrap();
                assert_eq!(out.len(), width.len() + payload.len());
                assert_eq!(
                    codec.decode(&out),
                    Ok(Decoded::Frame {
                        payload: width.len()..out.len(),
                        consumed: out.len()
                    }),
                    "{width:?} {endian:?}"
                );
            }
        }
    }

    #[test]
    fn byte_order_on_the_wire() {
        let header = |width, endian| {
            let mut out = Vec::new();
            LengthPrefixed::new(width, endian, usize::MAX)
                .write_header(0x0102, &mut out)
                .unwrap();
            out
        };
        assert_eq!(header(Width::U16, Endian::Big), [1, 2]);
        assert_eq!(header(Width::U16, Endian::Little), [2, 1]);
        assert_eq!(header(Width::U32, Endian::Big), [0, 0, 1, 2]);
        assert_eq!(header(Width::U32, Endian::Little), [2, 1, 0, 0]);
        assert_eq!(header(Width::U64, Endian::Big), [0, 0, 0, 0, 0, 0, 1, 2]);
        assert_eq!(header(Width::U64, Endian::Little), [2, 1, 0, 0, 0, 0, 0, 0]);
        let mut out = Vec::new();
        LengthPrefixed::new(Width::U8, Endian::Little, 255)
            .write_header(0xfe, &mut out)
            .unwrap();
        assert_eq!(out, [0xfe]);
    }

    #[test]
    fn max_exactly_is_accepted_one_more_is_refused_from_the_header() {
        for width in WIDTHS {
            for endian in ENDIANS {
                let mut codec = LengthPrefixed::new(width, endian, 200);
                let mut at_max = Vec::new();
                codec.write_header(200, &mut at_max).unwrap();
                assert_eq!(
                    codec.decode(&at_max),
                    Ok(Decoded::NeedMore {
                        frame_len: Some(width.len() + 200)
                    })
                );
                let mut over = Vec::new();
                LengthPrefixed::new(width, endian, 201)
                    .write_header(201, &mut over)
                    .unwrap();
                assert_eq!(
                    codec.decode(&over),
                    Err(CodecError::FrameTooLong {
                        max: 200,
                        length: 201
                    })
                );
                assert_eq!(
                    codec.write_header(201, &mut Vec::new()),
                    Err(CodecError::FrameTooLong {
                        max: 200,
                        length: 201
                    })
                );
            }
        }
    }

    #[test]
    fn a_partial_header_needs_more_of_unknown_length() {
        for width in WIDTHS {
            let mut codec = LengthPrefixed::new(width, Endian::Big, 10);
            for len in 0..width.len() {
                assert_eq!(
                    codec.decode(&[0; 8][..len]),
                    Ok(Decoded::NeedMore { frame_len: None })
                );
            }
            // An empty payload is a frame of the header alone.
            assert_eq!(
                codec.decode(&[0; 8][..width.len()]),
                Ok(Decoded::Frame {
                    payload: width.len()..width.len(),
                    consumed: width.len()
                })
            );
        }
    }

    #[test]
    fn lengths_that_do_not_fit_memory_are_refused() {
        let mut codec = LengthPrefixed::new(Width::U64, Endian::Little, usize::MAX);
        assert_eq!(
            codec.decode(&[0xff; 8]),
            Err(CodecError::FrameTooLong {
                max: usize::MAX - 8,
                length: u64::MAX
            })
        );
        let fits = (usize::MAX - 8) as u64;
        assert_eq!(
            codec.decode(&fits.to_le_bytes()),
            Ok(Decoded::NeedMore {
                frame_len: Some(usize::MAX)
            })
        );
    }
}
