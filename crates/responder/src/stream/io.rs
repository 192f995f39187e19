//! The write side of a stream: [`StreamIo`], the handle a protocol writes
//! through, and the queue behind it.

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, ErrorKind, IoSlice};
use std::net::Shutdown;

use sockmux_core::Token;

use crate::{CloseReason, Context};

/// How the stream ends, as far as it is decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    /// Nothing decided.
    Open,
    /// Send the end of stream once the queue drains, keep reading.
    Shutdown,
    /// Close once the queue drains, for this reason.
    Flush(CloseReason),
    /// Close now, for this reason (an abort or a failure).
    Now(CloseReason),
}

/// The write queue and how the stream ends.
#[derive(Debug)]
pub(crate) struct Output {
    /// Bytes the socket did not take yet, oldest first: a ring, so that
    /// writing out part of it moves nothing; written with one vectored
    /// call of its (at most two) pieces.
    pub(crate) queue: VecDeque<u8>,
    /// Bytes the protocol wrote that will never be sent (after a failure,
    /// a shutdown or an abort).
    pub(crate) dropped: usize,
    pub(crate) ending: Ending,
    /// The end of stream was sent.
    pub(crate) write_shut: bool,
    /// Counts writes that moved bytes (for the idle check).
    pub(crate) writes: u64,
    /// A decoding pass with more than one frame is under way: what the
    /// protocol writes is held in the dispatcher's shared batch buffer and
    /// written together at the end of the pass ([`Output::uncork`]).
    pub(crate) corked: bool,
    /// The protocol's hold on reading ([`StreamIo::pause_reading`]):
    /// [`HOLD_NONE`], [`HOLD_ON`], or [`HOLD_RELEASED`] (released since
    /// the stream last settled: frames left buffered are handed on).
    pub(crate) reading_hold: u8,
}

/// No hold on reading by the protocol.
pub(crate) const HOLD_NONE: u8 = 0;
/// The protocol holds reading back.
pub(crate) const HOLD_ON: u8 = 1;
/// The protocol released its hold; the stream has not settled since.
pub(crate) const HOLD_RELEASED: u8 = 2;

/// A pass's held replies are written out once they reach this many bytes,
/// so the batch buffer stays small and the water marks hold.
const BATCH_FLUSH: usize = 64 * 1024;
/// The shared batch buffer is freed after a pass that grew it past this
/// (a reply of a large value), not kept for the dispatcher's life.
const BATCH_KEEP: usize = 256 * 1024;

impl Output {
    pub(crate) fn new() -> Output {
        Output {
            queue: VecDeque::new(),
            dropped: 0,
            ending: Ending::Open,
            write_shut: false,
            writes: 0,
            corked: false,
            reading_hold: HOLD_NONE,
        }
    }

    /// Bytes written and not taken by the socket yet: queued, or held in
    /// the batch of the pass under way.
    #[inline]
    pub(crate) fn pending<S>(&self, cx: &Context<'_, S>) -> usize {
        let held = if self.corked {
            cx.sockets.core.batch.len()
        } else {
            0
        };
        self.queue.len() + held
    }

    /// Starts holding what the protocol writes for the end of the pass
    /// (more frames follow in the buffer).
    #[inline]
    pub(crate) fn cork<S>(&mut self, cx: &mut Context<'_, S>) {
        if !self.corked {
            self.corked = true;
            // Left over by a pass whose protocol panicked: not this one's.
            cx.sockets.core.batch.clear();
        }
    }

    /// Ends the pass: writes what it held, in one call when the socket
    /// takes it.
    #[inline]
    pub(crate) fn uncork<S>(&mut self, cx: &mut Context<'_, S>) {
        if self.corked {
            self.write_held(cx);
            self.corked = false;
        }
    }

    /// Writes out (or queues) the batch held so far and empties it.
    #[inline(never)]
    pub(crate) fn write_held<S>(&mut self, cx: &mut Context<'_, S>) {
        let mut batch = std::mem::take(&mut cx.sockets.core.batch);
        if !batch.is_empty() {
            self.send(cx, &batch);
            batch.clear();
        }
        if batch.capacity() > BATCH_KEEP {
            batch = Vec::new();
        }
        cx.sockets.core.batch = batch;
    }

    /// Writes `bytes` (not empty, accepted by the stream) through to the
    /// socket if nothing is queued, and queues what it does not take;
    /// after a failure they are dropped.
    #[inline]
    fn send<S>(&mut self, cx: &mut Context<'_, S>, bytes: &[u8]) {
        // The everyday case, a reply the socket takes whole: one call.
        if self.queue.is_empty() && !matches!(self.ending, Ending::Now(_)) && !self.write_shut {
            match cx.sockets.write(cx.token, bytes) {
                Ok(n) if n == bytes.len() => self.writes += 1,
                result => self.send_rest(bytes, result),
            }
            return;
        }
        self.send_slow(cx, bytes);
    }

    /// The rest of [`send`](Output::send) after a first write of `bytes`
    /// that did not take them all: what the socket did not take is queued;
    /// after a failure it is dropped.
    #[inline(never)]
    fn send_rest(&mut self, bytes: &[u8], result: io::Result<usize>) {
        let taken = match result {
            Ok(0) => {
                self.fail(ErrorKind::WriteZero.into());
                0
            }
            Ok(n) => {
                self.writes += 1;
                n
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => 0,
            Err(e) => {
                self.fail(e);
                0
            }
        };
        let rest = &bytes[taken..];
        if matches!(self.ending, Ending::Now(_)) {
            self.dropped += rest.len();
        } else {
            self.queue.extend(rest);
        }
    }

    /// [`send`](Output::send) when bytes are queued or the stream failed.
    #[inline(never)]
    fn send_slow<S>(&mut self, _: &mut Context<'_, S>, bytes: &[u8]) {
        if matches!(self.ending, Ending::Now(_)) || self.write_shut {
            self.dropped += bytes.len();
        } else {
            self.queue.extend(bytes);
        }
    }

    /// Whether bytes written now can still be sent.
    fn refuses(&self) -> bool {
        self.write_shut || matches!(self.ending, Ending::Now(_) | Ending::Shutdown)
    }

    /// Closes at once for `error` (unless already closing at once).
    pub(crate) fn fail(&mut self, error: io::Error) {
        if !matches!(self.ending, Ending::Now(_)) {
            self.ending = Ending::Now(CloseReason::from_error(error));
        }
    }

    /// Asks to close once flushed, for `reason`, unless an end is decided.
    pub(crate) fn close_after_flush(&mut self, reason: CloseReason) {
        if matches!(self.ending, Ending::Open | Ending::Shutdown) {
            self.ending = Ending::Flush(reason);
        }
    }

    /// Writes out the queue as far as the socket takes it, with one
    /// vectored call per attempt; then, if it drained, gives its memory
    /// back and sends a pending end of stream.
    pub(crate) fn flush<S>(&mut self, cx: &mut Context<'_, S>) {
        while !self.queue.is_empty() && !matches!(self.ending, Ending::Now(_)) {
            let (a, b) = self.queue.as_slices();
            let len = a.len() + b.len();
            let result = if b.is_empty() {
                cx.sockets.write(cx.token, a)
            } else {
                cx.sockets
                    .write_vectored(cx.token, &[IoSlice::new(a), IoSlice::new(b)])
            };
            match result {
                Ok(0) => self.fail(ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.queue.drain(..n);
                    self.writes += 1;
                    if n < len {
                        break; // short: the send buffer is full
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => self.fail(e),
            }
        }
        if self.queue.is_empty() {
            if self.queue.capacity() > 0 {
                // An idle connection holds no buffer.
                self.queue = VecDeque::new();
            }
            if self.ending == Ending::Shutdown && !self.write_shut {
                self.write_shut = true;
                self.ending = Ending::Open;
                if let Err(e) = cx.sockets.shutdown(cx.token, Shutdown::Write) {
                    self.fail(e);
                }
            }
        }
    }
}

/// What a [`Protocol`](crate::Protocol) writes through: the loop's
/// [`Context`] and its stream's write side.
///
/// [`write`](StreamIo::write) writes through to the socket at once when
/// nothing is queued, and queues only what the socket did not take; the
/// stream writes the queue out as the socket drains. A write never fails
/// in the protocol's hands: a failure closes the stream after the call
/// (with [`CloseReason::Reset`] or [`CloseReason::Error`]), and what is
/// written from then on is counted as unsent in
/// [`closed`](crate::Protocol::closed).
///
/// # Examples
///
/// ```
/// use sockmux_responder::{Protocol, StreamIo};
///
/// /// Answers "quit" with "bye" and closes once that is written.
/// struct Quit;
///
/// impl Protocol<()> for Quit {
///     fn frame(&mut self, line: &[u8], io: &mut StreamIo<'_, '_, ()>) {
///         if line == b"quit" {
///             io.write(b"bye\n");
///             io.close();
///         }
///     }
/// }
/// # let _ = Quit;
/// ```
pub struct StreamIo<'s, 'a, S> {
    /// The loop's context: the shared state (`cx.state`), the sockets
    /// (`cx.sockets`) and this stream's token (`cx.token`).
    pub cx: &'s mut Context<'a, S>,
    pub(crate) out: &'s mut Output,
}

impl<S> fmt::Debug for StreamIo<'_, '_, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamIo")
            .field("token", &self.cx.token)
            .field("queued", &self.out.queue.len())
            .finish_non_exhaustive()
    }
}

impl<S> StreamIo<'_, '_, S> {
    /// This stream's token.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_responder::{Protocol, StreamIo};
    ///
    /// struct Who;
    ///
    /// impl Protocol<()> for Who {
    ///     fn frame(&mut self, _: &[u8], io: &mut StreamIo<'_, '_, ()>) {
    ///         let me = io.token().to_string();
    ///         io.write(me.as_bytes());
    ///     }
    /// }
    /// # let _ = Who;
    /// ```
    pub fn token(&self) -> Token {
        self.cx.token
    }

    /// Writes `bytes` to the peer, in order after everything written
    /// before: through to the socket at once if nothing is queued, the
    /// rest queued. While frames handed on from one read follow each other
    /// (a pipeline), their replies are held and written together after the
    /// last one: one call for the lot. After
    /// [`shutdown`](StreamIo::shutdown), [`abort`](StreamIo::abort) or a
    /// failure the bytes are dropped and counted as unsent.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_responder::{Protocol, StreamIo};
    ///
    /// struct Echo;
    ///
    /// impl Protocol<()> for Echo {
    ///     fn frame(&mut self, frame: &[u8], io: &mut StreamIo<'_, '_, ()>) {
    ///         io.write(frame);
    ///     }
    /// }
    /// # let _ = Echo;
    /// ```
    #[inline]
    pub fn write(&mut self, bytes: &[u8]) {
        // The everyday case, a lone reply the socket takes whole: one call.
        let out = &mut *self.out;
        if out.queue.is_empty()
            && out.ending == Ending::Open
            && !out.write_shut
            && !out.corked
            && !bytes.is_empty()
        {
            match self.cx.sockets.write(self.cx.token, bytes) {
                Ok(n) if n == bytes.len() => out.writes += 1,
                result => out.send_rest(bytes, result),
            }
            return;
        }
        self.write_slow(bytes);
    }

    /// [`write`](StreamIo::write) in a pipeline, with bytes queued, or
    /// with an end decided.
    #[inline(never)]
    fn write_slow(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        if self.out.refuses() {
            self.out.dropped += bytes.len();
            return;
        }
        if !self.out.corked {
            self.out.send(self.cx, bytes);
            return;
        }
        // Held for the pipeline's one write.
        let batch = &mut self.cx.sockets.core.batch;
        if batch.len() + bytes.len() <= BATCH_FLUSH {
            batch.extend_from_slice(bytes);
            return;
        }
        // Large: what is held first, then these without a copy.
        self.out.write_held(self.cx);
        self.out.send(self.cx, bytes);
    }

    /// Writes what `encode` appends to the buffer it is given, as
    /// [`write`](StreamIo::write) would write it, and returns what
    /// `encode` returns: a reply encoded straight into the buffer the
    /// stream writes from, with no buffer of the protocol's own and no
    /// copy. `encode` gets the loop's shared state too, to encode from it.
    ///
    /// The buffer is the dispatcher's, shared by its streams: it may hold
    /// earlier replies of the same pipeline, which `encode` must leave as
    /// they are (it should only append).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::Write;
    /// use sockmux_responder::{Protocol, StreamIo};
    ///
    /// /// Counts the lines of all connections; answers each with the count
    /// /// so far, formatted in place.
    /// struct Count;
    ///
    /// impl Protocol<u64> for Count {
    ///     fn frame(&mut self, _: &[u8], io: &mut StreamIo<'_, '_, u64>) {
    ///         io.write_with(|buf, count| {
    ///             *count += 1;
    ///             writeln!(buf, "{count}")
    ///         })
    ///         .expect("a Vec takes any write");
    ///     }
    /// }
    /// # let _ = Count;
    /// ```
    pub fn write_with<R>(&mut self, encode: impl FnOnce(&mut Vec<u8>, &mut S) -> R) -> R {
        if self.out.corked {
            let batch = &mut self.cx.sockets.core.batch;
            let start = batch.len();
            let result = encode(batch, self.cx.state);
            let written = batch.len().saturating_sub(start);
            if self.out.refuses() {
                batch.truncate(start);
                self.out.dropped += written;
            } else if batch.len() >= BATCH_FLUSH {
                self.out.write_held(self.cx);
            }
            return result;
        }
        let mut batch = std::mem::take(&mut self.cx.sockets.core.batch);
        batch.clear();
        let result = encode(&mut batch, self.cx.state);
        if !batch.is_empty() {
            if self.out.refuses() {
                self.out.dropped += batch.len();
            } else {
                self.out.send(self.cx, &batch);
            }
            batch.clear();
        }
        if batch.capacity() > BATCH_KEEP {
            batch = Vec::new();
        }
        self.cx.sockets.core.batch = batch;
        result
    }

    /// Bytes written by the protocol and not yet taken by the socket:
    /// queued, or held to go out with the rest of a pipeline's replies.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_responder::{Protocol, StreamIo};
    ///
    /// /// Drops what a peer sends while a megabyte waits for it.
    /// struct Polite;
    ///
    /// impl Protocol<()> for Polite {
    ///     fn frame(&mut self, frame: &[u8], io: &mut StreamIo<'_, '_, ()>) {
    ///         if io.queued() < 1 << 20 {
    ///             io.write(frame);
    ///         }
    ///     }
    /// }
    /// # let _ = Polite;
    /// ```
    pub fn queued(&self) -> usize {
        self.out.pending(self.cx)
    }

    /// Closes the connection once everything queued is written
    /// ([`CloseReason::Closed`]); no frame is read after this call.
    ///
    /// Closing with input left unread makes the OS reset the connection
    /// (on most systems), which may discard the last bytes written before
    /// the peer reads them: a protocol that needs its last reply read
    /// should let the peer end first (or [`shutdown`](StreamIo::shutdown)).
    ///
    /// # Examples
    ///
    /// See [`StreamIo`].
    pub fn close(&mut self) {
        self.out.close_after_flush(CloseReason::Closed);
    }

    /// Sends the end of stream once everything queued is written (a
    /// half-close: `shutdown(Write)`), and goes on reading; the stream
    /// closes when the peer ends too. Writes after this are dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_responder::{Protocol, StreamIo};
    ///
    /// /// Sends one banner, then only listens.
    /// struct Banner;
    ///
    /// impl Protocol<()> for Banner {
    ///     fn opened(&mut self, io: &mut StreamIo<'_, '_, ()>) {
    ///         io.write(b"read-only service\n");
    ///         io.shutdown();
    ///     }
    ///     fn frame(&mut self, _: &[u8], _: &mut StreamIo<'_, '_, ()>) {}
    /// }
    /// # let _ = Banner;
    /// ```
    pub fn shutdown(&mut self) {
        if self.out.ending == Ending::Open && !self.out.write_shut {
            self.out.ending = Ending::Shutdown;
        }
    }

    /// Closes the connection now ([`CloseReason::Aborted`]): what is
    /// queued is dropped, and counted as unsent.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_responder::{Protocol, StreamIo};
    ///
    /// struct Picky;
    ///
    /// impl Protocol<()> for Picky {
    ///     fn frame(&mut self, frame: &[u8], io: &mut StreamIo<'_, '_, ()>) {
    ///         if frame.is_empty() {
    ///             io.abort();
    ///         }
    ///     }
    /// }
    /// # let _ = Picky;
    /// ```
    pub fn abort(&mut self) {
        if !matches!(self.out.ending, Ending::Now(_)) {
            self.out.ending = Ending::Now(CloseReason::Aborted);
        }
    }

    /// Stops handing on frames and reading until
    /// [`resume_reading`](StreamIo::resume_reading): for a protocol whose
    /// answers wait on something else (another loop, a backend) and that
    /// bounds how many it keeps in flight. Called from
    /// [`frame`](crate::Protocol::frame), the frames after this one that
    /// are already read stay buffered; the socket's input waits in the OS
    /// (and the peer's sends stall once its buffers fill). Writing, the
    /// end of stream and closing go on as usual.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_responder::{Protocol, StreamIo};
    ///
    /// /// Holds at most 16 requests whose answers are not back yet.
    /// struct Bounded { waiting: usize }
    ///
    /// impl Protocol<()> for Bounded {
    ///     fn frame(&mut self, _: &[u8], io: &mut StreamIo<'_, '_, ()>) {
    ///         self.waiting += 1; // asked elsewhere; `notified` answers
    ///         if self.waiting == 16 {
    ///             io.pause_reading();
    ///         }
    ///     }
    ///     fn notified(&mut self, io: &mut StreamIo<'_, '_, ()>) {
    ///         io.write(b"an answer\n");
    ///         self.waiting -= 1;
    ///         io.resume_reading();
    ///     }
    /// }
    /// # let _ = Bounded { waiting: 0 };
    /// ```
    pub fn pause_reading(&mut self) {
        self.out.reading_hold = HOLD_ON;
    }

    /// Lifts [`pause_reading`](StreamIo::pause_reading)'s hold (nothing if
    /// there is none): once the current hook returns, the frames already
    /// buffered are handed on, then reading goes on.
    ///
    /// # Examples
    ///
    /// See [`pause_reading`](StreamIo::pause_reading).
    pub fn resume_reading(&mut self) {
        if self.out.reading_hold == HOLD_ON {
            self.out.reading_hold = HOLD_RELEASED;
        }
    }

    /// Whether the protocol holds reading back
    /// ([`pause_reading`](StreamIo::pause_reading)).
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_responder::{Protocol, StreamIo};
    ///
    /// struct P;
    /// impl Protocol<()> for P {
    ///     fn frame(&mut self, _: &[u8], io: &mut StreamIo<'_, '_, ()>) {
    ///         if !io.reading_paused() {
    ///             io.pause_reading();
    ///         }
    ///     }
    /// }
    /// # let _ = P;
    /// ```
    #[must_use]
    pub fn reading_paused(&self) -> bool {
        self.out.reading_hold == HOLD_ON
    }
}
