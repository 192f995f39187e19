//! The `kv` example's RESP decoder: never a panic; the same commands (and
//! the same error) however the input is cut; never a frame length asked
//! for past the limits (a bulk string of `MAX_BULK` after a length line of
//! `MAX_INLINE`); and the arguments of each command read back from its
//! frame as the decoder framed them, and as the decoder found them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sockmux_fuzz::check;
use sockmux_responder::{Decoded, Decoder};

#[allow(dead_code)]
#[path = "../../examples/kv/resp.rs"]
mod resp;

use resp::{Args, Resp, MAX_BULK, MAX_INLINE};

fuzz_target!(|data: &[u8]| {
    let Some((&[s0, s1, s2], input)) = data.split_first_chunk::<3>() else {
        return;
    };
    let seed = u64::from_le_bytes([s0, s1, s2, 0, 0, 0, 0, 0]);
    let out = check(Resp::new, input, seed);

    for frame in &out.frames {
        let args = Args::new(frame);
        let n = args.len();
        assert_eq!(args.count(), n, "{frame:?}");
        if frame.first() == Some(&b'*') {
            // The count the header says, each argument as long as its
            // length line says: so the sizes add up to the frame's.
            let args: Vec<&[u8]> = Args::new(frame).collect();
            let header = frame.iter().position(|&b| b == b'\r').unwrap() + 2;
            let sizes: usize = args
                .iter()
                .map(|a| 1 + a.len().to_string().len() + 2 + a.len() + 2)
                .sum();
            assert!(header + sizes <= frame.len(), "{frame:?}");
        } else if !frame.iter().any(|&b| b == b'"' || b == b'\'') {
            let words: Vec<&[u8]> = frame
                .split(|b| b.is_ascii_whitespace())
                .filter(|w| !w.is_empty())
                .collect();
            assert_eq!(Args::new(frame).collect::<Vec<_>>(), words);
        }
    }

    // Fed byte by byte: an announced frame length never asks for more
    // than one bulk string and its length line past what is buffered; the
    // places of the arguments the decoder kept while scanning a command
    // in pieces give the arguments a parse of the frame gives.
    let mut decoder = Resp::new();
    let index = decoder.index();
    let mut buf = Vec::new();
    for &b in input {
        buf.push(b);
        loop {
            match decoder.decode(&buf) {
                Ok(Decoded::Frame { payload, consumed }) => {
                    let frame = &buf[payload];
                    let kept = index.borrow();
                    let indexed: Vec<&[u8]> = Args::indexed(frame, kept.spans()).collect();
                    assert_eq!(indexed, Args::new(frame).collect::<Vec<_>>(), "{frame:?}");
                    buf.drain(..consumed);
                }
                Ok(Decoded::NeedMore { frame_len }) => {
                    if let Some(len) = frame_len {
                        assert!(len - buf.len() <= MAX_BULK + MAX_INLINE + 4, "{len}");
                    }
                    break;
                }
                Err(_) => return,
            }
        }
    }
});
