//! The `http` example's request codec (`examples/http/codec.rs`): never a
//! panic; never a buffer past its limits (a head is refused by 8 KiB, a
//! body's length from its header or its chunk sizes, a chunked body's
//! wire bytes by their bound); the same frames and the same error however
//! the input is cut; and every frame parses whole, to its own length, its
//! chunks decoding to the announced length.
//!
//! Most inputs follow the start of a request (a request line, a
//! `Content-Length`, a chunked head); some are blown up past the limits: a run of one byte inserted
//! (up to a few MiB), fed in large pieces only.
#![no_main]

#[path = "../../examples/http/codec.rs"]
#[allow(dead_code)]
mod codec;

use codec::{
    chunks, parse, Body, Parsed, RequestCodec, RequestError, MAX_BODY, MAX_CHUNKED_WIRE, MAX_HEAD,
};
use libfuzzer_sys::fuzz_target;
use sockmux_fuzz::sizes;
use sockmux_responder::{Decoded, Decoder};

/// What a stream gets out of an input.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    frames: Vec<Vec<u8>>,
    error: Option<RequestError>,
}

/// Feeds `input` in pieces of the sizes `sizes` gives, as a stream does,
/// checking every answer against the contract and the limits.
fn feed(input: &[u8], mut sizes: impl FnMut() -> usize) -> Outcome {
    let mut codec = RequestCodec::new();
    let mut buf = Vec::new();
    let mut frames = Vec::new();
    let mut announced: Option<usize> = None;
    let mut rest = input;
    while !rest.is_empty() {
        let (piece, tail) = rest.split_at(sizes().clamp(1, rest.len()));
        rest = tail;
        buf.extend_from_slice(piece);
        loop {
            match codec.decode(&buf) {
                Ok(Decoded::Frame { payload, consumed }) => {
                    assert!(consumed >= 1 && consumed <= buf.len());
                    assert_eq!(payload, 0..consumed, "the whole request");
                    assert!(consumed <= MAX_HEAD + MAX_CHUNKED_WIRE, "{consumed}");
                    if let Some(len) = announced.take() {
                        assert_eq!(consumed, len, "announced {len}, took {consumed}");
                    }
                    check_frame(&buf[..consumed]);
                    frames.push(buf[..consumed].to_vec());
                    buf.drain(..consumed);
                }
                Ok(Decoded::NeedMore { frame_len }) => {
                    match frame_len {
                        Some(len) => {
                            assert!(len > buf.len(), "needs {len}, has {}", buf.len());
                            assert!(len <= MAX_HEAD + MAX_BODY, "announced {len}");
                            if let Some(before) = announced {
                                assert_eq!(before, len, "the frame's length changed");
                            }
                            announced = Some(len);
                        }
                        // Unknown length: the buffer stays within the
                        // bounds (the head's, the chunked wire's).
                        None => assert!(
                            buf.len() <= MAX_HEAD + MAX_CHUNKED_WIRE,
                            "{} bytes buffered",
                            buf.len()
                        ),
                    }
                    break;
                }
                Err(error) => {
                    assert!(
                        matches!(error.status, 400 | 413 | 431 | 501 | 505),
                        "{error}"
                    );
                    return Outcome {
                        frames,
                        error: Some(error),
                    };
                }
            }
        }
    }
    Outcome {
        frames,
        error: None,
    }
}

/// A frame parses whole, to its length; a chunked body decodes to the
/// length announced.
fn check_frame(frame: &[u8]) {
    let Ok(Parsed::Complete(request)) = parse(frame) else {
        panic!("a frame that does not parse whole");
    };
    assert_eq!(request.len, frame.len());
    match request.body {
        Body::None => {}
        Body::Length(range) => assert!(range.end == frame.len() && range.len() <= MAX_BODY),
        Body::Chunked { range, len } => {
            assert!(len <= MAX_BODY);
            let decoded: usize = chunks(&frame[range]).map(<[u8]>::len).sum();
            assert_eq!(decoded, len);
        }
    }
}

/// Starts of requests the input may follow, so that the fuzzer spends its
/// time past the request line too.
const STARTS: [&[u8]; 4] = [
    b"",
    b"GET / HTTP/1.1\r\n",
    b"POST /echo HTTP/1.1\r\nContent-Length: ",
    b"POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
];

fuzz_target!(|data: &[u8]| {
    let Some((&[how, s0, s1, s2], input)) = data.split_first_chunk::<4>() else {
        return;
    };
    let seed = u64::from_le_bytes([s0, s1, s2, 0, 0, 0, 0, 0]);
    let mut prefixed = STARTS[usize::from(how >> 6)].to_vec();
    prefixed.extend_from_slice(input);
    let input = &prefixed[..];
    if how % 8 == 7 && input.len() >= 3 {
        // Blown up: `count` KiB (up to 3 MiB) of `byte` at `at`.
        let Some((&[byte, count], input)) = input.split_first_chunk::<2>() else {
            return;
        };
        let at = usize::from(how / 8 % 8) * input.len() / 7;
        let mut big = input[..at].to_vec();
        big.resize(at + usize::from(count) * 12 * 1024, byte);
        big.extend_from_slice(&input[at..]);
        let whole = feed(&big, || usize::MAX);
        let mut pieces = sizes(seed);
        let cut = feed(&big, || pieces() * 1024);
        assert_eq!(cut, whole);
        return;
    }
    let whole = feed(input, || usize::MAX);
    assert_eq!(feed(input, || 1), whole, "byte by byte");
    assert_eq!(feed(input, sizes(seed)), whole, "in pieces");
});
