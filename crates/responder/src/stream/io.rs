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
}

impl Output {
    pub(crate) fn new() -> Output {
        Output {
            queue: VecDeque::new(),
            dropped: 0,
            ending: Ending::Open,
            write_shut: false,
            writes: 0,
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

    /// Writes `bytes` to the socket now, as far as it takes them; returns
    /// how many it took. Stops at a short write: on Linux that proves the
    /// send buffer full (no extra `WouldBlock` call); elsewhere the table
    /// keeps the socket writable and the next `Write` event comes anyway.
    #[inline]
    fn write_now<S>(&mut self, cx: &mut Context<'_, S>, bytes: &[u8]) -> usize {
        let mut done = 0;
        while done < bytes.len() {
            match cx.sockets.write(cx.token, &bytes[done..]) {
                Ok(0) => {
                    self.fail(ErrorKind::WriteZero.into());
                    break;
                }
                Ok(n) => {
                    done += n;
                    self.writes += 1;
                    if done < bytes.len() {
                        break;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => {
                    self.fail(e);
                    break;
                }
            }
        }
        done
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
    /// rest queued. After [`shutdown`](StreamIo::shutdown),
    /// [`abort`](StreamIo::abort) or a failure the bytes are dropped and
    /// counted as unsent.
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
        // The everyday case, a reply the socket takes whole: one call.
        if self.out.queue.is_empty()
            && self.out.ending == Ending::Open
            && !self.out.write_shut
            && !bytes.is_empty()
        {
            match self.cx.sockets.write(self.cx.token, bytes) {
                Ok(n) if n == bytes.len() => self.out.writes += 1,
                result => self.write_rest(bytes, result),
            }
            return;
        }
        self.write_slow(bytes);
    }

    /// The rest of [`write`](StreamIo::write) after a first write of
    /// `bytes` (not empty) that did not take them all: what the socket did
    /// not take is queued; after a failure it is dropped.
    #[inline(never)]
    fn write_rest(&mut self, bytes: &[u8], result: io::Result<usize>) {
        let taken = match result {
            Ok(0) => {
                self.out.fail(ErrorKind::WriteZero.into());
                0
            }
            Ok(n) => {
                self.out.writes += 1;
                n
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => 0,
            Err(e) => {
                self.out.fail(e);
                0
            }
        };
        let rest = &bytes[taken..];
        if matches!(self.out.ending, Ending::Now(_)) {
            self.out.dropped += rest.len();
        } else {
            self.out.queue.extend(rest);
        }
    }

    /// [`write`](StreamIo::write) when bytes are queued, an end is
    /// decided, or the first write failed (`WouldBlock` included).
    #[inline(never)]
    fn write_slow(&mut self, bytes: &[u8]) {
        if self.out.refuses() {
            self.out.dropped += bytes.len();
            return;
        }
        let mut rest = bytes;
        if self.out.queue.is_empty() {
            let n = self.out.write_now(self.cx, rest);
            rest = &rest[n..];
            if matches!(self.out.ending, Ending::Now(_)) {
                self.out.dropped += rest.len();
                return;
            }
        }
        if !rest.is_empty() {
            self.out.queue.extend(rest);
        }
    }

    /// Bytes written by the protocol and not yet taken by the socket.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_responder::{Protocol, StreamIo};
    ///
    /// struct Polite;
    ///
    /// impl Protocol<()> for Polite {
    ///     fn frame(&mut self, frame: &[u8], io: &mut StreamIo<'_, '_, ()>) {
    ///         if io.queued() == 0 {
    ///             io.write(frame);
    ///         }
    ///     }
    /// }
    /// # let _ = Polite;
    /// ```
    pub fn queued(&self) -> usize {
        self.out.queue.len()
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
}
