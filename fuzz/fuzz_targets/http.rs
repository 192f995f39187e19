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
use sockmux_fuzz::{feed_inspecting, sizes, Outcome};
use sockmux_responder::Decoded;

/// Feeds `input` to a fresh codec in pieces of the sizes `sizes` gives,
/// as a stream does (see `sockmux_fuzz::feed`), checking the codec's limits
/// and every frame on the way.
fn feed(input: &[u8], sizes: impl FnMut() -> usize) -> Outcome<RequestError> {
    let out = feed_inspecting(&mut RequestCodec::new(), input, sizes, |buf, answer| {
        match answer {
            Decoded::Frame { payload, consumed } => {
                assert_eq!(*payload, 0..*consumed, "the whole request");
                assert!(*consumed <= MAX_HEAD + MAX_CHUNKED_WIRE, "{consumed}");
                check_frame(&buf[..*consumed]);
            }
            Decoded::NeedMore {
                frame_len: Some(len),
            } => assert!(*len <= MAX_HEAD + MAX_BODY, "announced {len}"),
            // Unknown length: the buffer stays within the bounds (the
            // head's, the chunked wire's).
            Decoded::NeedMore { frame_len: None } => assert!(
                buf.len() <= MAX_HEAD + MAX_CHUNKED_WIRE,
                "{} bytes buffered",
                buf.len()
            ),
        }
    });
    if let Some(error) = &out.error {
        assert!(
            matches!(error.status, 400 | 413 | 431 | 501 | 505),
            "{error}"
        );
    }
    out
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
