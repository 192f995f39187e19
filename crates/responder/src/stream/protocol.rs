//! [`Protocol`]: what the user of a [`Stream`](crate::Stream) writes, and
//! the words it is called with ([`CloseReason`], [`Idle`]).

use std::io;

use crate::{Action, Context, StreamIo};

/// Why a [`Stream`](crate::Stream) closed, as [`Protocol::closed`] hears it.
///
/// # Examples
///
/// ```
/// use sockmux_responder::CloseReason;
/// use std::io::ErrorKind;
///
/// assert_eq!(CloseReason::from_error(ErrorKind::BrokenPipe.into()), CloseReason::Reset);
/// assert_eq!(
///     CloseReason::from_error(ErrorKind::InvalidInput.into()),
///     CloseReason::Error(ErrorKind::InvalidInput),
/// );
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CloseReason {
    /// The peer ended its stream (and the protocol closed after it, or
    /// let [`Protocol::peer_closed`] close by default): everything queued
    /// was written first.
    PeerClosed,
    /// The protocol asked for it with [`StreamIo::close`], and everything
    /// queued was written first.
    Closed,
    /// The peer reset the connection, or it is gone and a write failed
    /// (`ConnectionReset`, `ConnectionAborted`, `BrokenPipe`).
    Reset,
    /// An idle timeout of this kind fired and [`Protocol::idle`] closed.
    Idle(Idle),
    /// The protocol asked for it with [`StreamIo::abort`]: closed at once,
    /// what was queued is dropped.
    Aborted,
    /// A graceful stop of the dispatcher: closed once flushed, or at the
    /// stop's deadline with what was still queued.
    Stopped,
    /// The codec refused the input (a frame longer than its maximum, or a
    /// header no frame can have); closed once the protocol's
    /// [`frame_error`](Protocol::frame_error) reply was written.
    LimitExceeded,
    /// Another I/O error of the connection, of this kind.
    Error(io::ErrorKind),
    /// The socket was removed from outside the stream
    /// ([`Registry::remove`](crate::Registry::remove) by another handler),
    /// or a hook of the protocol panicked.
    Removed,
}

impl CloseReason {
    /// The reason an I/O error gives: [`Reset`](CloseReason::Reset) for
    /// the errors of a peer that is gone, [`Error`](CloseReason::Error)
    /// with the error's kind otherwise.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_responder::CloseReason;
    /// use std::io::ErrorKind;
    ///
    /// let reason = CloseReason::from_error(ErrorKind::ConnectionReset.into());
    /// assert_eq!(reason, CloseReason::Reset);
    /// ```
    pub fn from_error(error: io::Error) -> CloseReason {
        match error.kind() {
            io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe => CloseReason::Reset,
            kind => CloseReason::Error(kind),
        }
    }
}

/// Which side of a connection stayed idle for a whole timeout (as netty's
/// `IdleStateHandler` names them); see
/// [`Stream::idle_timeout`](crate::Stream::idle_timeout).
///
/// # Examples
///
/// ```
/// use sockmux_responder::{Idle, Lines, Stream};
/// use std::time::Duration;
/// # struct P;
/// # impl sockmux_responder::Protocol<()> for P {
/// #     fn frame(&mut self, _: &[u8], _: &mut sockmux_responder::StreamIo<'_, '_, ()>) {}
/// # }
///
/// // Close a connection that sent nothing for 30 seconds.
/// let stream = Stream::new(Lines::new(1024), P).idle_timeout(Idle::Read, Duration::from_secs(30));
/// # let _ = stream;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Idle {
    /// Nothing was read, while the stream wanted to read.
    Read,
    /// Nothing was written, and nothing was queued to write.
    Write,
    /// Neither: nothing read and nothing written.
    Both,
}

/// A connection's protocol, called by a [`Stream`](crate::Stream) with
/// whole *frames* (cut by the stream's [`Decoder`](crate::Decoder)), never
/// with readiness: the stream reads, buffers, writes and closes.
///
/// Only [`frame`](Protocol::frame) is required. Every hook gets a
/// [`StreamIo`]: the loop's [`Context`] (`io.cx.state`, `io.cx.sockets`)
/// and the stream's write side ([`write`](StreamIo::write),
/// [`close`](StreamIo::close), [`shutdown`](StreamIo::shutdown),
/// [`abort`](StreamIo::abort)).
///
/// # Calls and their order
///
/// [`opened`](Protocol::opened) once; then [`frame`](Protocol::frame) for
/// each frame, in order, with [`paused`](Protocol::paused) and
/// [`resumed`](Protocol::resumed) as the write queue crosses the water
/// marks, [`idle`](Protocol::idle) when a timeout fires,
/// [`peer_closed`](Protocol::peer_closed) at the peer's end of stream,
/// [`frame_error`](Protocol::frame_error) for input the codec refuses,
/// [`notified`](Protocol::notified) when another handler asks,
/// [`stopping`](Protocol::stopping) when a graceful stop begins;
/// [`closed`](Protocol::closed) exactly once, last.
///
/// # Examples
///
/// An upper-casing echo of lines:
///
/// ```
/// use sockmux_responder::{Protocol, StreamIo};
///
/// struct Shout;
///
/// impl Protocol<()> for Shout {
///     fn frame(&mut self, line: &[u8], io: &mut StreamIo<'_, '_, ()>) {
///         for &b in line {
///             io.write(&[b.to_ascii_uppercase()]);
///         }
///         io.write(b"\n");
///     }
/// }
/// # let _ = Shout;
/// ```
pub trait Protocol<S> {
    /// Handles one frame's payload, borrowed from the stream's read buffer
    /// (valid for this call only); replies through `io`.
    ///
    /// While the write queue is above the high-water mark the stream calls
    /// this no more (it stops reading), so the queue never holds more than
    /// the high-water mark plus what one call writes.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_responder::{Protocol, StreamIo};
    ///
    /// /// Answers each frame with its length.
    /// struct Len;
    ///
    /// impl Protocol<()> for Len {
    ///     fn frame(&mut self, frame: &[u8], io: &mut StreamIo<'_, '_, ()>) {
    ///         io.write(frame.len().to_string().as_bytes());
    ///     }
    /// }
    /// # let _ = Len;
    /// ```
    fn frame(&mut self, frame: &[u8], io: &mut StreamIo<'_, '_, S>);

    /// The stream was registered, before its first frame: the place to
    /// greet the peer. Does nothing by default.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_responder::{Protocol, StreamIo};
    ///
    /// struct Greet;
    ///
    /// impl Protocol<()> for Greet {
    ///     fn opened(&mut self, io: &mut StreamIo<'_, '_, ()>) {
    ///         io.write(b"hello\n");
    ///     }
    ///     fn frame(&mut self, _: &[u8], _: &mut StreamIo<'_, '_, ()>) {}
    /// }
    /// # let _ = Greet;
    /// ```
    fn opened(&mut self, io: &mut StreamIo<'_, '_, S>) {
        let _ = io;
    }

    /// The peer ended its stream (a half-close: it may still read). The
    /// stream reads no more; bytes of an incomplete frame left at the end
    /// are dropped.
    ///
    /// Return [`Action::Close`] (the default) to close once everything
    /// queued is written ([`CloseReason::PeerClosed`]); return
    /// [`Action::Continue`] to keep writing, and end later with
    /// [`StreamIo::close`] or [`StreamIo::shutdown`].
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_responder::{Action, Protocol, StreamIo};
    ///
    /// /// Counts frames; answers the count when the peer is done.
    /// struct Count(u64);
    ///
    /// impl Protocol<()> for Count {
    ///     fn frame(&mut self, _: &[u8], _: &mut StreamIo<'_, '_, ()>) {
    ///         self.0 += 1;
    ///     }
    ///     fn peer_closed(&mut self, io: &mut StreamIo<'_, '_, ()>) -> Action {
    ///         io.write(self.0.to_string().as_bytes());
    ///         Action::Close // once the count is written
    ///     }
    /// }
    /// # let _ = Count(0);
    /// ```
    fn peer_closed(&mut self, io: &mut StreamIo<'_, '_, S>) -> Action {
        let _ = io;
        Action::Close
    }

    /// The write queue reached the high-water mark: the stream stopped
    /// reading this peer (the kernel then pushes back on it) until the
    /// queue drains to the low-water mark. Does nothing by default.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_responder::{Protocol, StreamIo};
    ///
    /// struct Log;
    ///
    /// impl Protocol<()> for Log {
    ///     fn frame(&mut self, _: &[u8], _: &mut StreamIo<'_, '_, ()>) {}
    ///     fn paused(&mut self, io: &mut StreamIo<'_, '_, ()>) {
    ///         println!("{}: {} bytes queued; reading paused", io.cx.token, io.queued());
    ///     }
    /// }
    /// # let _ = Log;
    /// ```
    fn paused(&mut self, io: &mut StreamIo<'_, '_, S>) {
        let _ = io;
    }

    /// The write queue drained to the low-water mark after a
    /// [`paused`](Protocol::paused): reading resumes. Does nothing by
    /// default.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_responder::{Protocol, StreamIo};
    ///
    /// struct Log;
    ///
    /// impl Protocol<()> for Log {
    ///     fn frame(&mut self, _: &[u8], _: &mut StreamIo<'_, '_, ()>) {}
    ///     fn resumed(&mut self, io: &mut StreamIo<'_, '_, ()>) {
    ///         println!("{}: reading again", io.cx.token);
    ///     }
    /// }
    /// # let _ = Log;
    /// ```
    fn resumed(&mut self, io: &mut StreamIo<'_, '_, S>) {
        let _ = io;
    }

    /// An idle timeout fired (see
    /// [`Stream::idle_timeout`](crate::Stream::idle_timeout)). Return
    /// [`Action::Close`] (the default) to close once flushed
    /// ([`CloseReason::Idle`]), or [`Action::Continue`] to keep the
    /// connection (after writing a keep-alive, say); the timeout then
    /// counts afresh.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_responder::{Action, Idle, Protocol, StreamIo};
    ///
    /// /// Pings a peer that says nothing; closes one that reads nothing.
    /// struct Ping;
    ///
    /// impl Protocol<()> for Ping {
    ///     fn frame(&mut self, _: &[u8], _: &mut StreamIo<'_, '_, ()>) {}
    ///     fn idle(&mut self, idle: Idle, io: &mut StreamIo<'_, '_, ()>) -> Action {
    ///         if idle == Idle::Read {
    ///             io.write(b"ping\n");
    ///             return Action::Continue;
    ///         }
    ///         Action::Close
    ///     }
    /// }
    /// # let _ = Ping;
    /// ```
    fn idle(&mut self, idle: Idle, io: &mut StreamIo<'_, '_, S>) -> Action {
        let _ = (idle, io);
        Action::Close
    }

    /// The codec refused the input (`error` is the codec's error as an
    /// [`io::Error`]): the stream reads no more and drops what it
    /// buffered. The protocol may write an error reply; the connection
    /// then closes once flushed ([`CloseReason::LimitExceeded`]). Does
    /// nothing by default.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_responder::{Protocol, StreamIo};
    ///
    /// struct Strict;
    ///
    /// impl Protocol<()> for Strict {
    ///     fn frame(&mut self, _: &[u8], _: &mut StreamIo<'_, '_, ()>) {}
    ///     fn frame_error(&mut self, error: &std::io::Error, io: &mut StreamIo<'_, '_, ()>) {
    ///         io.write(format!("error: {error}\n").as_bytes());
    ///     }
    /// }
    /// # let _ = Strict;
    /// ```
    fn frame_error(&mut self, error: &io::Error, io: &mut StreamIo<'_, '_, S>) {
        let _ = (error, io);
    }

    /// The connection is closed, for `reason`; runs exactly once, last.
    /// `unsent` counts the bytes the protocol wrote that never reached the
    /// socket (still queued, or written after a failure, a shutdown or an
    /// abort): bytes the socket took are sent as far as this side can tell,
    /// and no unsent byte is ever counted as sent. Does nothing by default.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_responder::{CloseReason, Context, Protocol, StreamIo};
    ///
    /// /// Counts in the shared state the bytes really handed to the socket.
    /// struct Echo(usize);
    ///
    /// impl Protocol<usize> for Echo {
    ///     fn frame(&mut self, frame: &[u8], io: &mut StreamIo<'_, '_, usize>) {
    ///         io.write(frame);
    ///         self.0 += frame.len();
    ///     }
    ///     fn closed(&mut self, _: CloseReason, unsent: usize, cx: &mut Context<'_, usize>) {
    ///         *cx.state += self.0 - unsent;
    ///     }
    /// }
    /// # let _ = Echo(0);
    /// ```
    fn closed(&mut self, reason: CloseReason, unsent: usize, cx: &mut Context<'_, S>) {
        let _ = (reason, unsent, cx);
    }

    /// Another handler called [`Registry::notify`](crate::Registry::notify)
    /// for this stream, typically after leaving bytes for it in the shared
    /// state: the way to write to a connection from another one's call (a
    /// chat's broadcast), in order with everything else this stream writes.
    /// Does nothing by default.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::collections::HashMap;
    /// use sockmux_core::Token;
    /// use sockmux_responder::{Protocol, StreamIo};
    ///
    /// /// Lines left for each member by the others.
    /// type Inboxes = HashMap<Token, Vec<u8>>;
    ///
    /// /// Sends each line to every other member.
    /// struct Member;
    ///
    /// impl Protocol<Inboxes> for Member {
    ///     fn frame(&mut self, line: &[u8], io: &mut StreamIo<'_, '_, Inboxes>) {
    ///         let me = io.token();
    ///         let others: Vec<Token> = io.cx.state.keys().copied().filter(|&t| t != me).collect();
    ///         for to in others {
    ///             let inbox = io.cx.state.get_mut(&to).unwrap();
    ///             inbox.extend_from_slice(line);
    ///             inbox.push(b'\n');
    ///             let _ = io.cx.sockets.notify(to);
    ///         }
    ///     }
    ///     fn notified(&mut self, io: &mut StreamIo<'_, '_, Inboxes>) {
    ///         let me = io.token();
    ///         if let Some(mut inbox) = io.cx.state.get_mut(&me).map(std::mem::take) {
    ///             io.write(&inbox);
    ///             inbox.clear();
    ///             io.cx.state.insert(me, inbox); // keep the allocation
    ///         }
    ///     }
    /// }
    /// # let _ = Member;
    /// ```
    fn notified(&mut self, io: &mut StreamIo<'_, '_, S>) {
        let _ = io;
    }

    /// A graceful stop of the dispatcher began: the stream reads no more,
    /// writes out what is queued, then closes ([`CloseReason::Stopped`]).
    /// The protocol may write a last word. Does nothing by default.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_responder::{Protocol, StreamIo};
    ///
    /// struct Bye;
    ///
    /// impl Protocol<()> for Bye {
    ///     fn frame(&mut self, _: &[u8], _: &mut StreamIo<'_, '_, ()>) {}
    ///     fn stopping(&mut self, io: &mut StreamIo<'_, '_, ()>) {
    ///         io.write(b"server going down\n");
    ///     }
    /// }
    /// # let _ = Bye;
    /// ```
    fn stopping(&mut self, io: &mut StreamIo<'_, '_, S>) {
        let _ = io;
    }
}
