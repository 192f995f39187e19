//! [`Stream`]: a responder that owns one TCP or Unix connection's buffers
//! and calls a [`Protocol`] with frames cut by a [`Decoder`].

mod io;
mod protocol;

pub use io::StreamIo;
pub use protocol::{CloseReason, Idle, Protocol};

use std::fmt;
use std::time::Duration;

use log::debug;
use sockmux_core::{Event, Interest, TimerId};

use crate::{Action, Context, Decoded, Decoder, Responder};
use io::{Ending, Output, HOLD_NONE, HOLD_ON, HOLD_RELEASED};

/// The default low-water mark: reading resumes once the write queue
/// drains to this many bytes.
pub const DEFAULT_LOW_WATER: usize = 64 * 1024;
/// The default high-water mark: reading pauses once the write queue holds
/// this many bytes.
pub const DEFAULT_HIGH_WATER: usize = 256 * 1024;
/// The default number of bytes one stream reads per event at most.
pub const DEFAULT_READ_PER_EVENT: usize = 64 * 1024;

/// Size of the read buffer shared by every stream of a dispatcher.
const SCRATCH_LEN: usize = 64 * 1024;
/// Bits of `Stream::hold`.
const PAUSED: u8 = 1;
const PEER_EOF: u8 = 2;
const STOPPING: u8 = 4;
/// How many idle checks make one idle timeout.
const IDLE_CHECKS: u32 = 4;

/// A responder for one stream connection (TCP or Unix) that reads,
/// buffers, frames and writes for a [`Protocol`]: the protocol sees whole
/// frames and writes replies, and never a read loop, a `WouldBlock` or an
/// interest.
///
/// Register it for an accepted connection (the factory of an
/// [`Acceptor`](crate::Acceptor) returns one) or a connecting one
/// ([`Registry::connect_tcp`](crate::Registry::connect_tcp)): bytes
/// written before the connection completes are queued (the socket answers
/// `WouldBlock`) and written once it does; a failed connect closes the
/// stream with [`CloseReason::Error`] (`ConnectionRefused`).
///
/// # Reading
///
/// Each `Read` event reads at most [`read_per_event`](Stream::read_per_event)
/// bytes (64 KiB by default), so a peer that floods cannot starve the
/// others: level semantics bring its `Read` back on the next turn. A read
/// that comes back short ends the event, with no extra call to see
/// `WouldBlock` (on Linux a short read proves the socket drained).
///
/// Bytes are read into one buffer shared by every stream of the
/// dispatcher, and frames are handed to the protocol from there; a stream
/// keeps only the bytes of an incomplete frame, in a buffer that grows as
/// that frame needs it and is freed once the frame is complete: to exactly
/// the frame's length when the codec knows it from a header
/// ([`Decoded::NeedMore`]), by one read (at most the budget) at a time
/// otherwise, so never past the codec's maximum plus one read. So an idle connection holds no buffer, and a frame
/// split across reads costs one allocation. The decoder sees its buffer
/// as its contract says: grown at the end after `NeedMore`, short of
/// exactly the frame consumed after a frame.
///
/// # Writing
///
/// [`StreamIo::write`] writes through at once; only what the socket does
/// not take is queued (in a ring, written out with one vectored call), and
/// the queue's memory is freed when it drains. The replies to frames that
/// follow each other in one read (a pipeline) are held in a buffer the
/// dispatcher's streams share and written together after the last of
/// them, with one call: a lone request's reply is never copied or held.
/// [`StreamIo::write_with`] encodes a reply straight into that buffer. When the queue reaches the
/// high-water mark the stream stops reading that peer (and calling
/// [`Protocol::frame`]) and calls [`Protocol::paused`]; when it drains to
/// the low-water mark it calls [`Protocol::resumed`], hands on the frames
/// already buffered and reads again. So the queue never holds more than
/// the high-water mark plus one frame's reply (unless the protocol writes
/// from other hooks). The stream sets its socket's interest itself, from
/// whether it reads (not paused, not ended, not closing) and whether
/// anything is queued.
///
/// # Ending
///
/// * The peer's end of stream reaches [`Protocol::peer_closed`]; by default
///   the stream closes once flushed, but the protocol may keep writing.
/// * [`StreamIo::shutdown`] sends the end of stream once the queue drains;
///   [`StreamIo::close`] closes once the queue drains;
///   [`StreamIo::abort`] closes now.
/// * Input the codec refuses reaches [`Protocol::frame_error`], which may
///   write an error reply; the stream closes once that is written.
/// * A graceful stop ([`Responder::stop`]) stops reading, calls
///   [`Protocol::stopping`], writes out the queue and closes; what is still
///   queued at the dispatcher's deadline is reported as unsent.
/// * An I/O error or reset closes at once.
///
/// [`Protocol::closed`] then runs exactly once with the [`CloseReason`] and
/// the bytes never sent.
///
/// # Idle timeouts
///
/// [`idle_timeout`](Stream::idle_timeout) closes (by default, see
/// [`Protocol::idle`]) a connection idle for a timeout. Reads and writes
/// only bump counters; a periodic timer of the stream, every quarter of
/// the timeout, compares them with the last check. So no clock is read
/// and no timer moved per request, and the timeout fires between 1 and
/// 1.25 times the timeout after the last activity (plus the loop's timer
/// latency). A connection held back by backpressure (reading paused,
/// or bytes queued that the peer has not taken yet) is not idle.
///
/// # Examples
///
/// A line echo server with an idle timeout:
///
/// ```
/// use std::io::{BufRead, BufReader, Write};
/// use std::time::Duration;
/// use sockmux_core::Token;
/// use sockmux_responder::{Acceptor, Context, Dispatcher, Idle, Lines, Protocol, Stream, StreamIo};
///
/// struct Echo;
///
/// impl Protocol<u32> for Echo {
///     fn frame(&mut self, line: &[u8], io: &mut StreamIo<'_, '_, u32>) {
///         io.write(line);
///         io.write(b"\n");
///         *io.cx.state += 1;
///     }
/// }
///
/// let mut dispatcher = Dispatcher::new(0u32)?;
/// let listener = dispatcher.sockets().listen_tcp(
///     "127.0.0.1:0",
///     Acceptor::new(|_: Token, _: &mut Context<'_, u32>| {
///         Stream::new(Lines::new(4096), Echo).idle_timeout(Idle::Read, Duration::from_secs(60))
///     }),
/// )?;
/// let addr = dispatcher.sockets().local_addr(listener)?;
/// let client = std::thread::spawn(move || -> std::io::Result<String> {
///     let mut conn = std::net::TcpStream::connect(addr)?;
///     conn.write_all(b"hello\n")?;
///     let mut line = String::new();
///     BufReader::new(conn).read_line(&mut line)?;
///     Ok(line)
/// });
/// while *dispatcher.state() == 0 {
///     dispatcher.turn(Some(Duration::from_secs(10)))?;
/// }
/// dispatcher.stop_gracefully(Duration::from_secs(10))?;
/// assert_eq!(client.join().unwrap()?, "hello\n");
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Stream<C, P> {
    codec: C,
    protocol: P,
    /// An incomplete frame's bytes (empty, without memory, otherwise).
    partial: Vec<u8>,
    /// The frame length the codec announced for `partial`, if it did.
    frame_len: Option<usize>,
    /// `partial` may hold complete frames not handed on yet (reading
    /// paused, or an end decided, in the middle of a read).
    undecoded: bool,
    out: Output,
    low: usize,
    high: usize,
    read_per_event: usize,
    /// What holds reading back: [`PAUSED`], [`PEER_EOF`], [`STOPPING`]
    /// (one byte, so the per-event checks test them at once).
    hold: u8,
    interest: Interest,
    /// The idle timeout's state, boxed: most streams have none, and a
    /// connection's memory is what a server of many holds.
    idle: Option<Box<IdleCheck>>,
    /// Counts reads that brought bytes (for the idle check).
    reads: u64,
}

/// A stream's idle timeout: what it watches, its timer, and what the last
/// check saw.
struct IdleCheck {
    kind: Idle,
    timeout: Duration,
    timer: Option<TimerId>,
    /// Counters seen by the last check (reads, writes).
    seen: (u64, u64),
    /// Checks since each side (read, write) last moved.
    quiet: (u32, u32),
}

impl<C, P> fmt::Debug for Stream<C, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stream")
            .field("buffered", &self.partial.len())
            .field("queued", &self.out.queue.len())
            .field("paused", &(self.hold & PAUSED != 0))
            .field("peer_eof", &(self.hold & PEER_EOF != 0))
            .finish_non_exhaustive()
    }
}

impl<C: Decoder, P> Stream<C, P> {
    /// A stream that cuts frames with `codec` and hands them to
    /// `protocol`; water marks [`DEFAULT_LOW_WATER`] and
    /// [`DEFAULT_HIGH_WATER`], [`DEFAULT_READ_PER_EVENT`] bytes read per
    /// event, no idle timeout.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_responder::{Protocol, Raw, Stream, StreamIo};
    ///
    /// struct Echo;
    /// impl Protocol<()> for Echo {
    ///     fn frame(&mut self, bytes: &[u8], io: &mut StreamIo<'_, '_, ()>) {
    ///         io.write(bytes);
    ///     }
    /// }
    ///
    /// let stream = Stream::new(Raw, Echo);
    /// # let _ = stream;
    /// ```
    pub fn new(codec: C, protocol: P) -> Stream<C, P> {
        Stream {
            codec,
            protocol,
            partial: Vec::new(),
            frame_len: None,
            undecoded: false,
            out: Output::new(),
            low: DEFAULT_LOW_WATER,
            high: DEFAULT_HIGH_WATER,
            read_per_event: DEFAULT_READ_PER_EVENT,
            hold: 0,
            interest: Interest::READABLE,
            idle: None,
            reads: 0,
        }
    }

    /// Sets the water marks of the write queue: reading pauses at `high`
    /// queued bytes and resumes at `low`.
    ///
    /// # Panics
    ///
    /// If `low > high` or `high == 0`.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_responder::{Raw, Stream};
    /// # struct P;
    /// # impl sockmux_responder::Protocol<()> for P {
    /// #     fn frame(&mut self, _: &[u8], _: &mut sockmux_responder::StreamIo<'_, '_, ()>) {}
    /// # }
    ///
    /// let stream = Stream::new(Raw, P).water_marks(16 * 1024, 64 * 1024);
    /// # let _ = stream;
    /// ```
    pub fn water_marks(mut self, low: usize, high: usize) -> Stream<C, P> {
        assert!(
            low <= high && high > 0,
            "water marks: need 0 <= low <= high, 0 < high"
        );
        self.low = low;
        self.high = high;
        self
    }

    /// Sets how many bytes one `Read` event reads at most (at least 1).
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_responder::{Raw, Stream};
    /// # struct P;
    /// # impl sockmux_responder::Protocol<()> for P {
    /// #     fn frame(&mut self, _: &[u8], _: &mut sockmux_responder::StreamIo<'_, '_, ()>) {}
    /// # }
    ///
    /// let stream = Stream::new(Raw, P).read_per_event(16 * 1024);
    /// # let _ = stream;
    /// ```
    pub fn read_per_event(mut self, bytes: usize) -> Stream<C, P> {
        self.read_per_event = bytes.max(1);
        self
    }

    /// Calls [`Protocol::idle`] (which closes by default) when the
    /// connection stays idle, on the side `idle` names, for `timeout`;
    /// see the type's documentation for the precision. A zero timeout is
    /// taken as 1 ms.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_responder::{Idle, Raw, Stream};
    /// use std::time::Duration;
    /// # struct P;
    /// # impl sockmux_responder::Protocol<()> for P {
    /// #     fn frame(&mut self, _: &[u8], _: &mut sockmux_responder::StreamIo<'_, '_, ()>) {}
    /// # }
    ///
    /// let stream = Stream::new(Raw, P).idle_timeout(Idle::Both, Duration::from_secs(300));
    /// # let _ = stream;
    /// ```
    pub fn idle_timeout(mut self, idle: Idle, timeout: Duration) -> Stream<C, P> {
        self.idle = Some(Box::new(IdleCheck {
            kind: idle,
            timeout: timeout.max(Duration::from_millis(1)),
            timer: None,
            seen: (0, 0),
            quiet: (0, 0),
        }));
        self
    }

    /// The protocol.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_responder::{Raw, Stream};
    /// # struct P(u8);
    /// # impl sockmux_responder::Protocol<()> for P {
    /// #     fn frame(&mut self, _: &[u8], _: &mut sockmux_responder::StreamIo<'_, '_, ()>) {}
    /// # }
    ///
    /// let stream = Stream::new(Raw, P(7));
    /// assert_eq!(stream.protocol().0, 7);
    /// ```
    pub fn protocol(&self) -> &P {
        &self.protocol
    }

    /// Whether the stream wants to read now.
    fn reading(&self) -> bool {
        self.hold == 0 && self.out.reading_hold != HOLD_ON && self.out.ending_allows_reading()
    }

    /// Reading is paused by the water marks.
    fn paused(&self) -> bool {
        self.hold & PAUSED != 0
    }

    /// The peer sent its end of stream.
    fn peer_eof(&self) -> bool {
        self.hold & PEER_EOF != 0
    }

    /// A graceful stop is under way.
    fn stopping(&self) -> bool {
        self.hold & STOPPING != 0
    }
}

impl Output {
    /// Whether the end decided so far lets the stream read on.
    fn ending_allows_reading(&self) -> bool {
        matches!(self.ending, Ending::Open | Ending::Shutdown)
    }
}

/// How one decoding pass ended.
enum Pass {
    /// The codec needs more bytes (and may know the frame's length).
    NeedMore(Option<usize>),
    /// Stopped after a frame: the queue reached the high-water mark, or an
    /// end was decided.
    Stopped,
    /// The codec refused the input.
    Refused(std::io::Error),
}

/// Hands every complete frame at the start of `buf` to the protocol;
/// returns the bytes consumed and how the pass ended. The replies to
/// frames that follow each other in `buf` are written together at the end.
fn decode<S, C: Decoder, P: Protocol<S>>(
    codec: &mut C,
    protocol: &mut P,
    out: &mut Output,
    cx: &mut Context<'_, S>,
    high: usize,
    buf: &[u8],
) -> (usize, Pass) {
    let mut at = 0;
    let pass = loop {
        if at == buf.len() {
            // A frame takes at least one byte: no need to ask.
            break Pass::NeedMore(None);
        }
        match codec.decode(&buf[at..]) {
            Ok(Decoded::Frame { payload, consumed }) => {
                let frame = &buf[at..][payload];
                at += consumed;
                if at < buf.len() {
                    // More may follow: hold the replies for one write. A
                    // lone request's reply goes straight out, uncopied.
                    out.cork(cx);
                }
                protocol.frame(frame, &mut StreamIo { cx, out });
                if out.corked && out.pending(cx) >= high {
                    // Held replies at the mark: out now, and stop only if
                    // the socket leaves them queued (then the stream
                    // pauses, and resumes to hand on the rest).
                    out.write_held(cx);
                }
                if out.queue.len() >= high
                    || !out.ending_allows_reading()
                    || out.reading_hold == HOLD_ON
                {
                    break Pass::Stopped;
                }
            }
            Ok(Decoded::NeedMore { frame_len }) => break Pass::NeedMore(frame_len),
            Err(e) => break Pass::Refused(e.into()),
        }
    };
    out.uncork(cx);
    (at, pass)
}

impl<C: Decoder, P> Stream<C, P> {
    /// Acts on how a decoding pass ended.
    #[inline]
    fn passed<S>(&mut self, pass: Pass, cx: &mut Context<'_, S>)
    where
        P: Protocol<S>,
    {
        match pass {
            Pass::NeedMore(frame_len) => {
                self.frame_len = frame_len;
                self.undecoded = false;
            }
            Pass::Stopped => {
                self.frame_len = None;
                self.undecoded = !self.partial.is_empty();
            }
            Pass::Refused(error) => self.refused(error, cx),
        }
    }

    /// The codec refused the input: the protocol's error reply, then a
    /// close once flushed.
    #[cold]
    fn refused<S>(&mut self, error: std::io::Error, cx: &mut Context<'_, S>)
    where
        P: Protocol<S>,
    {
        debug!("{}: input refused: {error}", cx.token);
        self.partial = Vec::new();
        self.frame_len = None;
        self.undecoded = false;
        let io = &mut StreamIo {
            cx,
            out: &mut self.out,
        };
        self.protocol.frame_error(&error, io);
        self.out.close_after_flush(CloseReason::LimitExceeded);
    }

    /// Hands on the frames left in `partial` by an earlier pass.
    fn decode_partial<S>(&mut self, cx: &mut Context<'_, S>)
    where
        P: Protocol<S>,
    {
        let (used, pass) = decode(
            &mut self.codec,
            &mut self.protocol,
            &mut self.out,
            cx,
            self.high,
            &self.partial,
        );
        self.partial.drain(..used);
        self.passed(pass, cx);
        if self.partial.is_empty() && self.partial.capacity() > 0 {
            // The frame is complete: an idle connection holds no buffer.
            self.partial = Vec::new();
        }
    }

    /// Reads up to the per-event budget and hands on the frames.
    fn read<S>(&mut self, cx: &mut Context<'_, S>)
    where
        P: Protocol<S>,
    {
        if self.undecoded && self.reading() {
            self.decode_partial(cx);
        }
        let mut budget = self.read_per_event;
        // A frame's reply that brought the queue to the high-water mark
        // ends the event: `settle` pauses before any later frame.
        while budget > 0 && self.reading() && self.out.queue.len() < self.high {
            let (n, want) = if self.partial.is_empty() {
                // Into the shared buffer; only an incomplete frame's bytes
                // are copied into the stream's own.
                let mut scratch = cx.sockets.core.take_scratch(SCRATCH_LEN);
                let want = budget.min(scratch.len());
                let result = cx.sockets.read(cx.token, &mut scratch[..want]);
                let n = match result {
                    Ok(n) if n > 0 => {
                        let (used, pass) = decode(
                            &mut self.codec,
                            &mut self.protocol,
                            &mut self.out,
                            cx,
                            self.high,
                            &scratch[..n],
                        );
                        if used < n && !matches!(pass, Pass::Refused(_)) {
                            self.partial.extend_from_slice(&scratch[used..n]);
                        }
                        self.passed(pass, cx);
                        Ok(n)
                    }
                    other => other,
                };
                cx.sockets.core.put_scratch(scratch);
                (n, want)
            } else {
                self.read_after_partial(cx, budget)
            };
            match n {
                Ok(0) => self.read_eof(cx),
                Ok(n) => {
                    self.reads += 1;
                    budget = budget.saturating_sub(n);
                    if n < want {
                        break; // short read: drained for now
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => self.out.fail(e),
            }
        }
    }

    /// One read after the incomplete frame's bytes: up to the frame's
    /// length when known, a budget's worth otherwise; returns the read's
    /// result and the bytes asked for. Out of line: the everyday read
    /// (nothing buffered) stays small.
    #[inline(never)]
    fn read_after_partial<S>(
        &mut self,
        cx: &mut Context<'_, S>,
        budget: usize,
    ) -> (std::io::Result<usize>, usize)
    where
        P: Protocol<S>,
    {
        let len = self.partial.len();
        let want = match self.frame_len {
            Some(frame_len) => frame_len.saturating_sub(len).max(1),
            None => budget.min(SCRATCH_LEN),
        };
        let want = want.min(budget);
        self.partial.resize(len + want, 0);
        let result = cx.sockets.read(cx.token, &mut self.partial[len..]);
        self.partial.truncate(len + *result.as_ref().unwrap_or(&0));
        if matches!(result, Ok(n) if n > 0) {
            self.decode_partial(cx);
        }
        (result, want)
    }

    /// The peer's end of stream: an incomplete frame is dropped, the
    /// protocol decides whether to close.
    #[cold]
    fn read_eof<S>(&mut self, cx: &mut Context<'_, S>)
    where
        P: Protocol<S>,
    {
        self.hold |= PEER_EOF;
        if !self.partial.is_empty() {
            debug!(
                "{}: end of stream after {} bytes of an incomplete frame; dropped",
                cx.token,
                self.partial.len()
            );
            self.partial = Vec::new();
        }
        let io = &mut StreamIo {
            cx,
            out: &mut self.out,
        };
        if self.protocol.peer_closed(io) == Action::Close {
            self.out.close_after_flush(CloseReason::PeerClosed);
        }
    }

    /// After any call: the water marks, a pending end, the interest.
    #[inline]
    fn settle<S>(&mut self, cx: &mut Context<'_, S>) -> Action
    where
        P: Protocol<S>,
    {
        // The steady state, a request answered in full: nothing to do.
        let steady = self.out.queue.is_empty()
            && matches!(self.out.ending, Ending::Open)
            && self.hold == 0
            && self.out.reading_hold == HOLD_NONE
            && !self.out.write_shut
            && self.interest == Interest::READABLE;
        if steady {
            return Action::Continue;
        }
        self.settle_slow(cx)
    }

    #[inline(never)]
    fn settle_slow<S>(&mut self, cx: &mut Context<'_, S>) -> Action
    where
        P: Protocol<S>,
    {
        loop {
            if let Ending::Now(_) = self.out.ending {
                return Action::Close;
            }
            if self.out.reading_hold == HOLD_RELEASED {
                self.out.reading_hold = HOLD_NONE;
                if self.undecoded && self.reading() {
                    // Buffered frames: no `Read` will come for them.
                    self.decode_partial(cx);
                    continue;
                }
            }
            let queued = self.out.queue.len();
            if !self.paused() && queued >= self.high {
                self.hold |= PAUSED;
                let io = &mut StreamIo {
                    cx,
                    out: &mut self.out,
                };
                self.protocol.paused(io);
            } else if self.paused() && queued <= self.low {
                self.hold &= !PAUSED;
                let io = &mut StreamIo {
                    cx,
                    out: &mut self.out,
                };
                self.protocol.resumed(io);
                if self.undecoded && self.reading() {
                    // Buffered frames: no `Read` will come for them.
                    self.decode_partial(cx);
                    continue;
                }
            }
            break;
        }
        #[cfg(feature = "stats")]
        cx.sockets
            .note_stream(cx.token, self.out.queue.len(), self.paused());
        if self.out.queue.is_empty() {
            if self.out.ending == Ending::Shutdown {
                // Decided while nothing was queued: send the end now.
                self.out.flush(cx);
            }
            match self.out.ending {
                Ending::Now(_) | Ending::Flush(_) => return Action::Close,
                _ if self.stopping() => return Action::Close,
                _ if self.peer_eof() && self.out.write_shut => {
                    self.out.ending = Ending::Flush(CloseReason::PeerClosed);
                    return Action::Close;
                }
                _ => {}
            }
        }
        let mut interest = Interest::NONE;
        if self.reading() {
            interest |= Interest::READABLE;
        }
        if !self.out.queue.is_empty() {
            interest |= Interest::WRITABLE;
        }
        if interest != self.interest {
            self.interest = interest;
            if let Err(e) = cx.sockets.set_interest(cx.token, interest) {
                self.out.fail(e);
                return Action::Close;
            }
        }
        Action::Continue
    }

    /// One idle check: the counters against the last check's.
    fn check_idle<S>(&mut self, cx: &mut Context<'_, S>) -> Action
    where
        P: Protocol<S>,
    {
        let held = self.paused() || !self.out.queue.is_empty();
        let reading = self.reading();
        let Some(check) = self.idle.as_deref_mut() else {
            return Action::Continue;
        };
        let kind = check.kind;
        let read_moved = self.reads != check.seen.0 || held || !reading;
        let write_moved = self.out.writes != check.seen.1 || held;
        check.seen = (self.reads, self.out.writes);
        check.quiet.0 = if read_moved { 0 } else { check.quiet.0 + 1 };
        check.quiet.1 = if write_moved { 0 } else { check.quiet.1 + 1 };
        let fired = match kind {
            Idle::Read => check.quiet.0 >= IDLE_CHECKS,
            Idle::Write => check.quiet.1 >= IDLE_CHECKS,
            Idle::Both => check.quiet.0 >= IDLE_CHECKS && check.quiet.1 >= IDLE_CHECKS,
        };
        if fired {
            check.quiet = (0, 0);
            let io = &mut StreamIo {
                cx,
                out: &mut self.out,
            };
            if self.protocol.idle(kind, io) == Action::Close {
                self.out.close_after_flush(CloseReason::Idle(kind));
            }
        }
        self.settle(cx)
    }
}

impl<S, C: Decoder, P: Protocol<S>> Responder<S> for Stream<C, P> {
    fn registered(&mut self, cx: &mut Context<'_, S>) -> Action {
        // `READABLE` for an accepted connection, both for a connecting one
        // (whose first `Write` says it connected): settle sets what fits.
        if let Ok(interest) = cx.sockets.interest(cx.token) {
            self.interest = interest;
        }
        if let Some(check) = self.idle.as_deref_mut() {
            check.timer = Some(cx.timer_every(check.timeout / IDLE_CHECKS));
        }
        let io = &mut StreamIo {
            cx,
            out: &mut self.out,
        };
        self.protocol.opened(io);
        self.settle(cx)
    }

    fn ready(&mut self, event: Event, cx: &mut Context<'_, S>) -> Action {
        match event {
            // What the socket did not take waits for the `Write` to come.
            Event::Read(_) => self.read(cx),
            Event::Write(_) => self.out.flush(cx),
            Event::Error(_) => match cx.sockets.take_error(cx.token) {
                Ok(Some(e)) | Err(e) => self.out.fail(e),
                Ok(None) => {}
            },
            _ => {}
        }
        self.settle(cx)
    }

    fn timer(&mut self, id: TimerId, cx: &mut Context<'_, S>) -> Action {
        if self
            .idle
            .as_ref()
            .is_some_and(|check| check.timer == Some(id))
        {
            return self.check_idle(cx);
        }
        Action::Continue
    }

    fn notified(&mut self, cx: &mut Context<'_, S>) -> Action {
        let io = &mut StreamIo {
            cx,
            out: &mut self.out,
        };
        self.protocol.notified(io);
        self.settle(cx)
    }

    fn stop(&mut self, cx: &mut Context<'_, S>) -> Action {
        self.hold |= STOPPING;
        let io = &mut StreamIo {
            cx,
            out: &mut self.out,
        };
        self.protocol.stopping(io);
        self.out.close_after_flush(CloseReason::Stopped);
        self.settle(cx)
    }

    fn closed(&mut self, cx: &mut Context<'_, S>) {
        let reason = match self.out.ending {
            Ending::Now(reason) => reason,
            Ending::Flush(reason) if self.out.queue.is_empty() => reason,
            _ if self.stopping() => CloseReason::Stopped,
            _ => CloseReason::Removed,
        };
        let unsent = self.out.queue.len() + self.out.dropped;
        self.out.queue = Default::default();
        self.partial = Vec::new();
        self.protocol.closed(reason, unsent, cx);
    }
}
