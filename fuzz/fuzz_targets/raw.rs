//! `Raw`: whatever the pieces, the frames put back together are the input,
//! and there is never an error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sockmux_fuzz::{feed, sizes};
use sockmux_responder::Raw;

fuzz_target!(|data: &[u8]| {
    let Some((&seed, input)) = data.split_first_chunk::<8>() else {
        return;
    };
    for out in [
        feed(&mut Raw, input, || usize::MAX),
        feed(&mut Raw, input, || 1),
        feed(&mut Raw, input, sizes(u64::from_le_bytes(seed))),
    ] {
        assert_eq!(out.error, None);
        assert!(out.frames.iter().all(|f| !f.is_empty()));
        assert_eq!(out.frames.concat(), input);
    }
});
