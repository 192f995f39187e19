//! The server's pieces on the library: [`Conn`], the [`Protocol`] of one
//! connection (the replies written in order; the stream writes a
//! pipeline's together), and
//! [`listen`], a listener whose [`Acceptor`] registers a [`Stream`] with
//! the [`Resp`] decoder for each connection and which sweeps the expired
//! keys every [`SWEEP`].

// Included by `#[path]` from the tests, which use parts of it.
#![allow(dead_code)]

use std::cell::RefCell;
use std::io;
use std::net::ToSocketAddrs;
use std::rc::Rc;
use std::time::{Duration, Instant};

use log::debug;
use sockmux::{
    Acceptor, Action, CloseReason, Context, Dispatcher, Event, Protocol, Responder, Stream,
    StreamIo, TimerId, Token,
};

use crate::resp::{self, Args, Index, ProtocolError, Resp};
use crate::store::{execute, Flow, Store};

/// How often the expired keys are swept.
pub(crate) const SWEEP: Duration = Duration::from_millis(100);

/// One connection: runs each command and writes its reply, encoded
/// straight into the stream's buffer (the stream writes a pipeline's
/// replies together, after the last command of the read).
#[derive(Debug)]
pub(crate) struct Conn {
    /// Where the decoder found each command's arguments.
    index: Rc<RefCell<Index>>,
}

impl Conn {
    /// A connection whose decoder gives the places of the arguments
    /// ([`Resp::index`]).
    pub(crate) fn new(index: Rc<RefCell<Index>>) -> Conn {
        Conn { index }
    }
}

impl Protocol<Store> for Conn {
    fn frame(&mut self, frame: &[u8], io: &mut StreamIo<'_, '_, Store>) {
        let index = self.index.borrow();
        let args = Args::indexed(frame, index.spans());
        // An empty line or `*0` gets no reply: Redis skips it.
        if !args.is_empty()
            && io.write_with(|reply, store| execute(store, args, reply)) == Flow::Close
        {
            io.close(); // once the replies are written
        }
    }

    fn frame_error(&mut self, error: &io::Error, io: &mut StreamIo<'_, '_, Store>) {
        let mut reply = Vec::new();
        protocol_error(error, &mut reply);
        debug!("{}: {error}; closing", io.token());
        if !reply.is_empty() {
            io.write(&reply);
        }
    }

    fn closed(&mut self, reason: CloseReason, _: usize, cx: &mut Context<'_, Store>) {
        debug!("{}: closed ({reason:?})", cx.token);
    }
}

/// Appends Redis's reply to input the decoder refused (none for a query
/// past the limit: Redis closes without a word).
pub(crate) fn protocol_error(error: &io::Error, reply: &mut Vec<u8>) {
    match error
        .get_ref()
        .and_then(|e| e.downcast_ref::<ProtocolError>())
    {
        Some(ProtocolError::TooBigQuery) => {}
        Some(e) => resp::error(reply, &format!("ERR {e}")),
        None => resp::error(reply, &format!("ERR Protocol error: {error}")),
    }
}

/// Turns Nagle's algorithm off for connection `t`: replies are small
/// writes, not to be held back to fill a segment.
pub(crate) fn no_delay<S>(t: Token, cx: &mut Context<'_, S>) {
    if let Ok(socket) = cx.sockets.socket(t) {
        let _ = socket2::SockRef::from(socket).set_tcp_nodelay(true);
    }
}

/// A listener's acceptor, with the periodic sweep of expired keys.
#[derive(Debug)]
struct Listener<A> {
    acceptor: A,
    sweep: Option<TimerId>,
}

impl<A: Responder<Store>> Responder<Store> for Listener<A> {
    fn ready(&mut self, event: Event, cx: &mut Context<'_, Store>) -> Action {
        self.acceptor.ready(event, cx)
    }

    fn registered(&mut self, cx: &mut Context<'_, Store>) -> Action {
        self.sweep = Some(cx.timer_every(SWEEP));
        self.acceptor.registered(cx)
    }

    fn timer(&mut self, id: TimerId, cx: &mut Context<'_, Store>) -> Action {
        if self.sweep == Some(id) {
            let removed = cx.state.sweep(Instant::now());
            if removed > 0 {
                debug!("swept {removed} expired keys");
            }
            return Action::Continue;
        }
        self.acceptor.timer(id, cx)
    }

    fn notified(&mut self, cx: &mut Context<'_, Store>) -> Action {
        self.acceptor.notified(cx)
    }

    fn stop(&mut self, cx: &mut Context<'_, Store>) -> Action {
        self.acceptor.stop(cx)
    }

    fn closed(&mut self, cx: &mut Context<'_, Store>) {
        self.acceptor.closed(cx)
    }
}

/// Listens on `addr` with a RESP [`Stream`] for each connection and the
/// sweep of expired keys; returns the listener's token.
pub(crate) fn listen(
    dispatcher: &mut Dispatcher<Store>,
    addr: impl ToSocketAddrs,
) -> io::Result<Token> {
    let acceptor = Acceptor::new(|t: Token, cx: &mut Context<'_, Store>| {
        no_delay(t, cx);
        debug!("{t}: connected");
        let codec = Resp::new();
        let conn = Conn::new(codec.index());
        Stream::new(codec, conn)
    });
    dispatcher.sockets().listen_tcp(
        addr,
        Listener {
            acceptor,
            sweep: None,
        },
    )
}
