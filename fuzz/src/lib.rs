//! What the codecs' fuzz targets check: a codec fed as a stream feeds it (bytes
//! appended in pieces, frames consumed) answers within the buffer it was
//! given, and finds the frames (and the error) it finds in one piece,
//! whether fed byte by byte or in pieces of seeded random sizes.

use std::fmt::Debug;

use sockmux_responder::{CodecError, Decoded, Decoder};

/// What a stream gets out of an input.
#[derive(Debug, PartialEq, Eq)]
pub struct Outcome<E = CodecError> {
    /// The frames' payloads, in order.
    pub frames: Vec<Vec<u8>>,
    /// The error that stopped the stream, if any.
    pub error: Option<E>,
}

/// Feeds `input` in pieces of the sizes `sizes` gives (0 is taken as 1),
/// checking every answer.
pub fn feed<D: Decoder>(
    decoder: &mut D,
    input: &[u8],
    sizes: impl FnMut() -> usize,
) -> Outcome<D::Error> {
    feed_inspecting(decoder, input, sizes, |_, _| {})
}

/// [`feed`], with `inspect` shown each answer other than an error and the
/// buffer it answered (for a target's own checks, such as its limits).
pub fn feed_inspecting<D: Decoder>(
    decoder: &mut D,
    input: &[u8],
    mut sizes: impl FnMut() -> usize,
    mut inspect: impl FnMut(&[u8], &Decoded),
) -> Outcome<D::Error> {
    let mut buf = Vec::new();
    let mut frames = Vec::new();
    let mut announced: Option<usize> = None;
    let mut rest = input;
    while !rest.is_empty() {
        let (piece, tail) = rest.split_at(sizes().clamp(1, rest.len()));
        rest = tail;
        buf.extend_from_slice(piece);
        loop {
            let answer = decoder.decode(&buf);
            if let Ok(decoded) = &answer {
                inspect(&buf, decoded);
            }
            match answer {
                Ok(Decoded::Frame { payload, consumed }) => {
                    assert!(consumed >= 1, "a frame of no bytes");
                    assert!(
                        consumed <= buf.len(),
                        "consumed {consumed} of {}",
                        buf.len()
                    );
                    assert!(payload.start <= payload.end, "{payload:?}");
                    assert!(payload.end <= consumed, "{payload:?} past {consumed}");
                    if let Some(len) = announced.take() {
                        assert_eq!(consumed, len, "announced {len}, took {consumed}");
                    }
                    frames.push(buf[payload].to_vec());
                    buf.drain(..consumed);
                }
                Ok(Decoded::NeedMore { frame_len }) => {
                    if let Some(len) = frame_len {
                        assert!(len > buf.len(), "needs {len}, has {}", buf.len());
                        if let Some(before) = announced {
                            assert_eq!(before, len, "the frame's length changed");
                        }
                        announced = Some(len);
                    }
                    break;
                }
                Err(error) => {
                    return Outcome {
                        frames,
                        error: Some(error),
                    }
                }
            }
        }
    }
    Outcome {
        frames,
        error: None,
    }
}

/// A xorshift generator of piece sizes from 1 to 64, from `seed`.
pub fn sizes(seed: u64) -> impl FnMut() -> usize {
    let mut state = seed | 1;
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % 64) as usize + 1
    }
}

/// Feeds `input` to fresh decoders from `new` in one piece, byte by byte
/// and in seeded pieces; panics unless all three find the same frames and
/// the same kind of error. Returns the outcome in one piece.
pub fn check<D: Decoder>(new: impl Fn() -> D, input: &[u8], seed: u64) -> Outcome<D::Error>
where
    D::Error: Debug,
{
    let whole = feed(&mut new(), input, || usize::MAX);
    for (how, cut) in [
        ("byte by byte", feed(&mut new(), input, || 1)),
        ("in pieces", feed(&mut new(), input, sizes(seed))),
    ] {
        assert_eq!(cut.frames, whole.frames, "{how}");
        assert_eq!(
            cut.error.as_ref().map(std::mem::discriminant),
            whole.error.as_ref().map(std::mem::discriminant),
            "{how}: {:?} vs {:?}",
            cut.error,
            whole.error
        );
    }
    whole
}
