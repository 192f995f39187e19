//! `Lines`: the same lines however the input is cut, and the lines (and the
//! error) of a plain reference split on `\n`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sockmux_fuzz::check;
use sockmux_responder::{CodecError, Lines};

fuzz_target!(|data: &[u8]| {
    let Some((&[max, s0, s1, s2], input)) = data.split_first_chunk::<4>() else {
        return;
    };
    // Small maxima: lines at, below and above the limit are all likely.
    let max = usize::from(max % 32);
    let seed = u64::from_le_bytes([s0, s1, s2, 0, 0, 0, 0, 0]);
    let out = check(|| Lines::new(max), input, seed);

    // The reference: split at every `\n`, drop a `\r` before it.
    let mut frames = Vec::new();
    let mut error = false;
    let mut rest = input;
    while let Some(newline) = rest.iter().position(|&b| b == b'\n') {
        let line = &rest[..newline];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.len() > max {
            error = true;
            break;
        }
        frames.push(line.to_vec());
        rest = &rest[newline + 1..];
    }
    if !error {
        // An unfinished line: too long once even a final `\r\n` could not
        // save it.
        let known = rest.strip_suffix(b"\r").unwrap_or(rest).len();
        error = known > max;
    }
    assert_eq!(out.frames, frames);
    if error {
        assert!(
            matches!(out.error, Some(CodecError::LineTooLong { max: m, length }) if m == max && length > max),
            "{out:?}"
        );
    } else {
        assert_eq!(out.error, None);
    }
});
