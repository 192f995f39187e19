//! `LengthPrefixed`: the same frames however the input is cut, in every
//! width and byte order, and the frames (and the error) of a reference
//! parse; what `encode` writes decodes to what was encoded.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sockmux_fuzz::{check, feed};
use sockmux_responder::{CodecError, Endian, LengthPrefixed, Width};

fuzz_target!(|data: &[u8]| {
    let Some((&[config, m0, m1, seed], input)) = data.split_first_chunk::<4>() else {
        return;
    };
    let width = [Width::U8, Width::U16, Width::U32, Width::U64][usize::from(config & 3)];
    let endian = if config & 4 == 0 {
        Endian::Big
    } else {
        Endian::Little
    };
    // Usually a small maximum; now and then none at all (lowered by the
    // codec to what fits).
    let max = if config & 8 == 0 {
        usize::from(u16::from_le_bytes([m0, m1]) % 512)
    } else {
        usize::MAX
    };
    let codec = LengthPrefixed::new(width, endian, max);
    assert!(codec.max() <= max);
    let out = check(|| codec, input, u64::from(seed) << 8 | u64::from(config));

    // The reference parse.
    let n = width.len();
    let mut frames = Vec::new();
    let mut error = None;
    let mut rest = input;
    while rest.len() >= n {
        let mut bytes = [0; 8];
        let length = match endian {
            Endian::Big => {
                bytes[8 - n..].copy_from_slice(&rest[..n]);
                u64::from_be_bytes(bytes)
            }
            Endian::Little => {
                bytes[..n].copy_from_slice(&rest[..n]);
                u64::from_le_bytes(bytes)
            }
        };
        if length > codec.max() as u64 {
            error = Some(CodecError::FrameTooLong {
                max: codec.max(),
                length,
            });
            break;
        }
        let Some(payload) = rest[n..].get(..length as usize) else {
            break;
        };
        frames.push(payload.to_vec());
        rest = &rest[n + payload.len()..];
    }
    assert_eq!(out.frames, frames);
    assert_eq!(out.error, error);

    // Encoded back, the frames decode to themselves.
    let mut encoded = Vec::new();
    for f in &frames {
        codec.encode(f, &mut encoded).unwrap();
    }
    let again = feed(&mut { codec }, &encoded, || usize::MAX);
    assert_eq!(again.frames, frames);
    assert_eq!(again.error, None);
});
