//! A `Stream`'s write queue, driven by a real `Dispatcher` over a Unix
//! socket pair with small buffers, the peer played by the target on the
//! same thread (non-blocking). The input is a script: water marks, a
//! codec, a read budget, then steps (the peer queues a frame, sends some
//! of its bytes, reads some, the loop turns once). Each frame asks the
//! protocol for a few writes of pattern bytes. Checked:
//!
//! * order: the peer receives exactly the bytes the protocol wrote, each
//!   once, in order;
//! * bound: a frame is never handed on with more than the high-water mark
//!   queued (exactly: below it, or at it after a resume when low == high),
//!   so the queue never holds more than the high mark plus what one frame
//!   writes;
//! * marks: `paused` comes with at least the high mark queued, `resumed`
//!   with at most the low mark, alternating, `paused` first; once the peer
//!   has read everything the stream is not paused, and every frame sent
//!   was handed on.
#![no_main]

use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use sockmux_core::Interest;
use sockmux_responder::{
    CloseReason, Context, Dispatcher, Endian, LengthPrefixed, Protocol, Raw, Stream, StreamIo,
    Width,
};

/// What the protocol records; checked by the target between turns.
#[derive(Debug, Default)]
struct Record {
    low: usize,
    high: usize,
    /// Every byte the protocol wrote, in order.
    written: Vec<u8>,
    /// Payload bytes handed to `frame`.
    payload_seen: usize,
    paused: bool,
    pauses: usize,
    max_queued: usize,
    closed: Option<CloseReason>,
    /// The first property broken (hooks run under the dispatcher's
    /// `catch_unwind`, so they record instead of panicking).
    violation: Option<String>,
}

impl Record {
    fn fail(&mut self, what: String) {
        self.violation.get_or_insert(what);
    }
}

/// The byte at `offset` of the protocol's output: not periodic over any
/// short span, so lost, repeated or swapped writes show.
fn pattern(offset: usize) -> u8 {
    ((offset as u32).wrapping_mul(0x9E37_79B1) >> 24) as u8
}

/// Each of a frame's first bytes (at most [`WRITES`]) asks for one write
/// of `8 * byte` pattern bytes (0 to 2,040).
const WRITES: usize = 4;

struct Writer;

impl Protocol<Record> for Writer {
    fn frame(&mut self, frame: &[u8], io: &mut StreamIo<'_, '_, Record>) {
        let entry = io.queued();
        let rec = &mut *io.cx.state;
        rec.payload_seen += frame.len();
        let (low, high) = (rec.low, rec.high);
        if rec.paused {
            rec.fail(format!("frame handed on while paused ({entry} queued)"));
        }
        // Frames stop once the queue reaches `high`; a resume at `low`
        // hands on buffered frames, at `high` itself when low == high.
        if !(entry < high || (low == high && entry == high)) {
            rec.fail(format!(
                "frame handed on with {entry} bytes queued (low {low}, high {high})"
            ));
        }
        let mut this_frame = 0;
        let mut buf = [0u8; 8 * 255];
        for &b in frame.iter().take(WRITES) {
            let n = 8 * usize::from(b);
            let start = io.cx.state.written.len();
            for (i, byte) in buf[..n].iter_mut().enumerate() {
                *byte = pattern(start + i);
            }
            io.cx.state.written.extend_from_slice(&buf[..n]);
            io.write(&buf[..n]);
            this_frame += n;
            let queued = io.queued();
            let rec = &mut *io.cx.state;
            rec.max_queued = rec.max_queued.max(queued);
            if queued > high + this_frame {
                rec.fail(format!(
                    "{queued} bytes queued, past high {high} + this frame's {this_frame}"
                ));
            }
            if queued > entry + this_frame {
                rec.fail(format!(
                    "{queued} bytes queued after writing {this_frame} onto {entry}"
                ));
            }
        }
    }

    fn paused(&mut self, io: &mut StreamIo<'_, '_, Record>) {
        let queued = io.queued();
        let rec = &mut *io.cx.state;
        if rec.paused {
            rec.fail(format!("paused twice in a row ({queued} queued)"));
        }
        if queued < rec.high {
            rec.fail(format!("paused with {queued} queued, high {}", rec.high));
        }
        rec.paused = true;
        rec.pauses += 1;
    }

    fn resumed(&mut self, io: &mut StreamIo<'_, '_, Record>) {
        let queued = io.queued();
        let rec = &mut *io.cx.state;
        if !rec.paused {
            rec.fail(format!("resumed without a pause ({queued} queued)"));
        }
        if queued > rec.low {
            rec.fail(format!("resumed with {queued} queued, low {}", rec.low));
        }
        rec.paused = false;
    }

    fn closed(&mut self, reason: CloseReason, _unsent: usize, cx: &mut Context<'_, Record>) {
        cx.state.closed = Some(reason);
    }
}

/// Reads the script's numbers, 0 once the input is used up.
struct Script<'a>(&'a [u8]);

impl Script<'_> {
    fn byte(&mut self) -> u8 {
        let Some((&b, rest)) = self.0.split_first() else {
            return 0;
        };
        self.0 = rest;
        b
    }

    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }
}

/// The peer: its socket, the bytes it has still to send, what it got.
struct Peer {
    conn: UnixStream,
    outbox: Vec<u8>,
    /// Payload bytes of the frames fully or partly in `outbox` or sent.
    payload_sent: usize,
    received: Vec<u8>,
}

impl Peer {
    /// Sends up to `max` bytes of the outbox, as far as the socket takes.
    fn send(&mut self, max: usize) {
        let n = max.min(self.outbox.len());
        if n == 0 {
            return;
        }
        match self.conn.write(&self.outbox[..n]) {
            Ok(n) => {
                self.outbox.drain(..n);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => panic!("peer write: {e}"),
        }
    }

    /// Reads up to `max` bytes, as far as there are some.
    fn read(&mut self, max: usize) {
        let mut buf = [0u8; 16 * 1024];
        let mut left = max;
        while left > 0 {
            let want = left.min(buf.len());
            match self.conn.read(&mut buf[..want]) {
                Ok(0) => panic!("the stream closed its end"),
                Ok(n) => {
                    self.received.extend_from_slice(&buf[..n]);
                    left -= n;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => panic!("peer read: {e}"),
            }
        }
    }
}

/// The most steps of a script, and of frames.
const MAX_STEPS: usize = 256;
const MAX_FRAMES: usize = 64;
/// Turns allowed for the final drain (each moves at least a socket
/// buffer's worth when anything is left).
const DRAIN_TURNS: usize = 4096;

fn turn(dispatcher: &mut Dispatcher<Record>) {
    dispatcher.turn(Some(Duration::ZERO)).expect("turn");
    if let Some(v) = &dispatcher.state().violation {
        panic!("{v}; {:?}", dispatcher.state().closed);
    }
    if let Some(reason) = dispatcher.state().closed {
        panic!("the stream closed: {reason:?}");
    }
}

fuzz_target!(|data: &[u8]| {
    let mut script = Script(data);
    let low = usize::from(script.u16() % 4097);
    let high = (low + usize::from(script.u16() % 4097)).max(1);
    let config = script.byte();
    let length_prefixed = config & 1 == 0;
    let read_per_event =
        [1, 7, 64, 1000, 4096, 65536, 100_000, 200_000][usize::from(config >> 1) & 7];

    let (ours, theirs) = UnixStream::pair().expect("socketpair");
    // Small buffers, so that a few KiB fill them (the kernel rounds up to
    // its minimum, a few KiB).
    for s in [&ours, &theirs] {
        let s = socket2::SockRef::from(s);
        s.set_send_buffer_size(1).expect("SO_SNDBUF");
        s.set_recv_buffer_size(1).expect("SO_RCVBUF");
    }
    theirs.set_nonblocking(true).expect("nonblocking");
    let mut peer = Peer {
        conn: theirs,
        outbox: Vec::new(),
        payload_sent: 0,
        received: Vec::new(),
    };

    let mut dispatcher = Dispatcher::new(Record {
        low,
        high,
        ..Record::default()
    })
    .expect("dispatcher");
    let codec = LengthPrefixed::new(Width::U8, Endian::Big, 255);
    if length_prefixed {
        let stream = Stream::new(codec, Writer)
            .water_marks(low, high)
            .read_per_event(read_per_event);
        dispatcher
            .sockets()
            .register(ours, Interest::READABLE, stream)
    } else {
        let stream = Stream::new(Raw, Writer)
            .water_marks(low, high)
            .read_per_event(read_per_event);
        dispatcher
            .sockets()
            .register(ours, Interest::READABLE, stream)
    }
    .expect("register");
    turn(&mut dispatcher);

    let mut frames = 0;
    for _ in 0..MAX_STEPS {
        if script.0.is_empty() {
            break;
        }
        let op = script.byte();
        match op & 3 {
            // The peer queues a frame of 1 to 4 write sizes.
            0 if frames < MAX_FRAMES => {
                frames += 1;
                let k = usize::from(op >> 2) % WRITES + 1;
                let payload: Vec<u8> = (0..k).map(|_| script.byte()).collect();
                if length_prefixed {
                    codec.encode(&payload, &mut peer.outbox).expect("encode");
                } else {
                    peer.outbox.extend_from_slice(&payload);
                }
                peer.payload_sent += payload.len();
            }
            0 => {}
            // The peer sends some of what it queued.
            1 => peer.send(usize::from(op >> 2) * 64 + 1),
            2 => peer.read(usize::from(script.u16())),
            _ => turn(&mut dispatcher),
        }
    }

    // The peer sends the rest and reads everything.
    let mut turns = 0;
    loop {
        peer.send(usize::MAX);
        turn(&mut dispatcher);
        peer.read(usize::MAX);
        let rec = dispatcher.state();
        let done = peer.outbox.is_empty()
            && rec.payload_seen == peer.payload_sent
            && peer.received.len() >= rec.written.len();
        if done {
            break;
        }
        turns += 1;
        assert!(
            turns < DRAIN_TURNS,
            "no end after {turns} turns: {} of {} bytes to send left, {} of {} payload bytes \
             handed on, {} of {} bytes received, paused {}",
            peer.outbox.len(),
            peer.payload_sent + peer.outbox.len(),
            rec.payload_seen,
            peer.payload_sent,
            peer.received.len(),
            rec.written.len(),
            rec.paused,
        );
    }
    let rec = dispatcher.state();
    assert_eq!(peer.received.len(), rec.written.len(), "bytes received");
    if let Some(at) = (0..rec.written.len()).find(|&i| peer.received[i] != rec.written[i]) {
        panic!("byte {at} of {} differs", rec.written.len());
    }
    assert!(!rec.paused, "everything written out, and still paused");
    assert!(rec.max_queued <= high + 8 * 255 * WRITES);
});
