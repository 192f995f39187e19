//! Decoding allocates nothing: every codec, fed as a stream feeds it (a
//! buffer with room enough, bytes appended, frames consumed), under a
//! counting global allocator.

use sockmux::{CodecError, Decoded, Decoder, Endian, LengthPrefixed, Lines, Raw, Width};

mod util;
use util::alloc::{allocations_in, Counting};

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Feeds `input` in `chunk`-byte pieces into `buf` (cleared, its capacity
/// kept), consuming each frame; returns the frames' total payload length.
fn feed(
    decoder: &mut impl Decoder<Error = CodecError>,
    input: &[u8],
    chunk: usize,
    buf: &mut Vec<u8>,
) -> usize {
    buf.clear();
    let mut payload_bytes = 0;
    for piece in input.chunks(chunk) {
        buf.extend_from_slice(piece);
        while let Decoded::Frame { payload, consumed } = decoder.decode(buf).unwrap() {
            payload_bytes += payload.len();
            buf.drain(..consumed);
        }
    }
    payload_bytes
}

#[test]
fn the_counter_counts() {
    // Else the test below could not fail.
    let n = allocations_in(|| drop(std::hint::black_box(vec![0u8; 16])));
    assert_eq!(n, 1);
}

#[test]
fn decoding_allocates_nothing() {
    let mut lines_in = Vec::new();
    for i in 0..100 {
        lines_in.extend_from_slice(if i % 2 == 0 { b"a line\r\n" } else { b"\n" });
    }
    let mut length_in = Vec::new();
    for width in [Width::U8, Width::U16, Width::U32, Width::U64] {
        for endian in [Endian::Big, Endian::Little] {
            let codec = LengthPrefixed::new(width, endian, 200);
            let mut input = Vec::new();
            for len in 0..=200 {
                codec.encode(&vec![len as u8; len], &mut input).unwrap();
            }
            length_in.push((codec, input));
        }
    }
    let mut buf = Vec::with_capacity(64 * 1024);

    let mut total = 0;
    let allocations = allocations_in(|| {
        for chunk in [1, 3, 1000] {
            total += feed(&mut Lines::new(10), &lines_in, chunk, &mut buf);
            total += feed(&mut Raw, &lines_in, chunk, &mut buf);
            for (codec, input) in &length_in {
                total += feed(&mut { *codec }, input, chunk, &mut buf);
            }
        }
    });
    assert_eq!(allocations, 0);
    // All of it was decoded.
    let per_chunking = 50 * 6 + lines_in.len() + 8 * (200 * 201 / 2);
    assert_eq!(total, 3 * per_chunking);
}
