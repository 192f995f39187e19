//! The framing codecs fed as a stream feeds them: the bytes arrive in
//! pieces, the buffer is decoded, each frame consumed, more appended. Cut
//! anywhere, the input yields the same frames (and the same error) as in one
//! piece; an oversize frame is refused before its bytes arrive.

use std::mem::discriminant;

use sockmux::{CodecError, Decoded, Decoder, Endian, LengthPrefixed, Lines, Raw, Width};

/// What a stream gets out of an input: its frames, then the error that
/// stopped it, if any.
#[derive(Debug)]
struct Outcome {
    frames: Vec<Vec<u8>>,
    error: Option<CodecError>,
    /// The buffer's length when the error came.
    buffered_at_error: usize,
}

/// Feeds `input` to `decoder` in pieces cut at `cuts` (increasing), as a
/// stream would, checking every answer against the buffer it was given.
#[track_caller]
fn feed(decoder: &mut impl Decoder<Error = CodecError>, input: &[u8], cuts: &[usize]) -> Outcome {
    let mut buf = Vec::new();
    let mut frames = Vec::new();
    let mut announced: Option<usize> = None;
    let ends = cuts.iter().copied().chain([input.len()]);
    let mut start = 0;
    for end in ends {
        buf.extend_from_slice(&input[start..end]);
        start = end;
        loop {
            match decoder.decode(&buf) {
                Ok(Decoded::Frame { payload, consumed }) => {
                    assert!(
                        consumed >= 1 && consumed <= buf.len(),
                        "{consumed} of {}",
                        buf.len()
                    );
                    assert!(payload.start <= payload.end && payload.end <= consumed);
                    if let Some(len) = announced.take() {
                        assert_eq!(consumed, len, "the frame's length changed");
                    }
                    frames.push(buf[payload].to_vec());
                    buf.drain(..consumed);
                }
                Ok(Decoded::NeedMore { frame_len }) => {
                    if let Some(len) = frame_len {
                        assert!(len > buf.len(), "needs {len}, has {}", buf.len());
                        assert!(
                            announced.is_none_or(|a| a == len),
                            "the frame's length changed"
                        );
                        announced = Some(len);
                    }
                    break;
                }
                Err(error) => {
                    return Outcome {
                        frames,
                        error: Some(error),
                        buffered_at_error: buf.len(),
                    }
                }
            }
        }
    }
    Outcome {
        frames,
        error: None,
        buffered_at_error: 0,
    }
}

/// Every way to cut `input` in two, and in single bytes, gives the frames
/// (and the kind of error) of `input` in one piece. Returns the latter.
#[track_caller]
fn same_frames_however_cut<D: Decoder<Error = CodecError>>(
    new: impl Fn() -> D,
    input: &[u8],
) -> Outcome {
    let whole = feed(&mut new(), input, &[]);
    let singles: Vec<usize> = (1..input.len()).collect();
    let cuttings = (0..=input.len()).map(|i| vec![i]).chain([singles]);
    for cuts in cuttings {
        let cut = feed(&mut new(), input, &cuts);
        assert_eq!(cut.frames, whole.frames, "cut at {cuts:?}");
        assert_eq!(
            cut.error.map(|e| discriminant(&e)),
            whole.error.map(|e| discriminant(&e)),
            "cut at {cuts:?}"
        );
    }
    whole
}

#[test]
fn lines_cut_anywhere_are_the_same_lines() {
    let input = b"first\r\nsecond\n\n\r\nlone\rcr\r\r\n12345678\nlast";
    let whole = same_frames_however_cut(|| Lines::new(8), input);
    let expected: [&[u8]; 6] = [b"first", b"second", b"", b"", b"lone\rcr\r", b"12345678"];
    assert_eq!(whole.frames, expected);
    assert_eq!(whole.error, None);
}

#[test]
fn a_long_line_cut_anywhere_is_refused_after_the_same_lines() {
    for input in [
        &b"ok\r\n123456789\n"[..],
        b"ok\n12345678\r\r\n",
        b"ok\n123456789",
    ] {
        let whole = same_frames_however_cut(|| Lines::new(8), input);
        assert_eq!(whole.frames, [b"ok"], "{input:?}");
        assert!(
            matches!(whole.error, Some(CodecError::LineTooLong { max: 8, .. })),
            "{input:?}"
        );
    }
}

#[test]
fn a_long_line_is_refused_as_soon_as_max_plus_one_bytes_lack_a_newline() {
    // Byte by byte: the error comes with the 9th byte of payload, or the
    // 10th after a CR.
    let input = b"123456789\n";
    let out = feed(
        &mut Lines::new(8),
        input,
        &(1..input.len()).collect::<Vec<_>>(),
    );
    assert_eq!(
        out.error,
        Some(CodecError::LineTooLong { max: 8, length: 9 })
    );
    assert_eq!(out.buffered_at_error, 9);
    let input = b"12345678\rx";
    let out = feed(
        &mut Lines::new(8),
        input,
        &(1..input.len()).collect::<Vec<_>>(),
    );
    assert_eq!(
        out.error,
        Some(CodecError::LineTooLong { max: 8, length: 10 })
    );
    assert_eq!(out.buffered_at_error, 10);
}

#[test]
fn raw_frames_cut_anywhere_put_back_together_are_the_input() {
    let input = b"any bytes \0\r\n at all";
    for i in 0..=input.len() {
        let out = feed(&mut Raw, input, &[i]);
        assert_eq!(out.frames.concat(), input);
        let expected = if i == 0 || i == input.len() { 1 } else { 2 };
        assert_eq!(out.frames.len(), expected);
    }
    let out = feed(&mut Raw, input, &(1..input.len()).collect::<Vec<_>>());
    assert_eq!(out.frames.len(), input.len());
}

const WIDTHS: [Width; 4] = [Width::U8, Width::U16, Width::U32, Width::U64];
const ENDIANS: [Endian; 2] = [Endian::Big, Endian::Little];

#[test]
fn length_prefixed_cut_anywhere_is_the_same_frames_in_every_width_and_endian() {
    let payloads: [&[u8]; 5] = [b"hello", b"", &[0xff; 40], b"\n", &[0; 255]];
    for width in WIDTHS {
        for endian in ENDIANS {
            let codec = LengthPrefixed::new(width, endian, 255);
            let mut input = Vec::new();
            for p in payloads {
                codec.encode(p, &mut input).unwrap();
            }
            let whole = same_frames_however_cut(|| codec, &input);
            assert_eq!(whole.frames, payloads, "{width:?} {endian:?}");
            assert_eq!(whole.error, None);
        }
    }
}

#[test]
fn an_oversize_frame_is_refused_from_its_header_however_cut() {
    for width in WIDTHS {
        for endian in ENDIANS {
            let codec = LengthPrefixed::new(width, endian, 100);
            let mut input = Vec::new();
            codec.encode(b"ok", &mut input).unwrap();
            LengthPrefixed::new(width, endian, 101)
                .write_header(101, &mut input)
                .unwrap();
            input.extend_from_slice(&[7; 101]);
            let whole = same_frames_however_cut(|| codec, &input);
            assert_eq!(whole.frames, [b"ok"]);
            assert_eq!(
                whole.error,
                Some(CodecError::FrameTooLong {
                    max: 100,
                    length: 101
                })
            );
            // Byte by byte: refused as soon as the header is in.
            let cuts: Vec<usize> = (1..input.len()).collect();
            let out = feed(&mut { codec }, &input, &cuts);
            assert_eq!(out.buffered_at_error, width.len(), "{width:?} {endian:?}");
        }
    }
}

#[test]
fn a_4_gib_frame_is_refused_with_only_its_header_buffered() {
    let four_gib: u64 = 1 << 32;
    let mut codec = LengthPrefixed::new(Width::U32, Endian::Big, 1 << 20);
    assert_eq!(
        codec.decode(&[0xff; 4]),
        Err(CodecError::FrameTooLong {
            max: 1 << 20,
            length: four_gib - 1
        })
    );
    for endian in ENDIANS {
        let mut codec = LengthPrefixed::new(Width::U64, endian, 1 << 20);
        let header = match endian {
            Endian::Big => four_gib.to_be_bytes(),
            Endian::Little => four_gib.to_le_bytes(),
        };
        assert_eq!(
            codec.decode(&header[..7]),
            Ok(Decoded::NeedMore { frame_len: None })
        );
        assert_eq!(
            codec.decode(&header),
            Err(CodecError::FrameTooLong {
                max: 1 << 20,
                length: four_gib
            })
        );
    }
}

#[test]
fn max_exactly_is_accepted_one_more_is_refused() {
    for width in WIDTHS {
        for endian in ENDIANS {
            let codec = LengthPrefixed::new(width, endian, 50);
            let mut input = Vec::new();
            codec.encode(&[1; 50], &mut input).unwrap();
            let out = feed(&mut { codec }, &input, &[]);
            assert_eq!(out.frames, [vec![1; 50]]);
            assert_eq!(out.error, None);
            assert!(codec.encode(&[1; 51], &mut input).is_err());
        }
    }
    for terminator in ["\n", "\r\n"] {
        let out = feed(
            &mut Lines::new(3),
            format!("abc{terminator}").as_bytes(),
            &[],
        );
        assert_eq!(out.frames, [b"abc"]);
        let out = feed(
            &mut Lines::new(3),
            format!("abcd{terminator}").as_bytes(),
            &[],
        );
        assert_eq!(
            out.error,
            Some(CodecError::LineTooLong { max: 3, length: 4 })
        );
    }
}

#[test]
fn codec_errors_close_with_invalid_data() {
    let error = Lines::new(1).decode(b"abc").unwrap_err();
    let error = std::io::Error::from(error);
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidData);
    assert_eq!(
        error.to_string(),
        "line too long: 3 bytes without a newline, the maximum is 1"
    );
}
