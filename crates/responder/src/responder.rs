use sockmux_core::{Event, TimerId};

use crate::Context;

/// What the dispatcher does with a responder's socket after a call returns.
///
/// A handler never changes the loop while the loop runs it: it says what
/// should happen next, and the dispatcher applies that once the call is over
/// (like calloop's `PostAction`).
///
/// # Examples
///
/// ```
/// use sockmux_responder::Action;
///
/// let done = true;
/// let next = if done { Action::Close } else { Action::Continue };
/// assert_eq!(next, Action::Close);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Action {
    /// Keep the socket and its responder.
    #[default]
    Continue,
    /// Remove the socket from the table and close it; the responder's
    /// [`closed`](Responder::closed) hook runs, then it is dropped.
    Close,
}

/// A handler for the events of one socket, registered with it by token.
///
/// Implement one type per kind of socket: a listener, a connection, a UDP
/// peer. `S` is the program's shared state, handed to every call as
/// [`Context::state`]; the responder's own fields hold what belongs to its
/// socket alone (buffers, counters, a parser).
///
/// Only [`ready`](Responder::ready) is required; the hooks default to doing
/// nothing, except [`stop`](Responder::stop), which closes.
///
/// # Calls and their order
///
/// * [`registered`](Responder::registered) once, before any event: at the
///   start of the next turn for a socket registered from outside the loop,
///   or right after the call that registered it (not at all if the socket
///   is removed before then).
/// * [`ready`](Responder::ready) for each `Read`, `Write` or `Error` event
///   of the socket, in the order the table raises them (`Read` before
///   `Error`, so bytes that came before a reset are read first). Events of a
///   socket removed earlier in the same batch are dropped, never passed to a
///   socket that reused its slot.
/// * [`timer`](Responder::timer) when a timer made through the responder's
///   [`Context`] fires.
/// * [`notified`](Responder::notified) after a handler called
///   [`Registry::notify`](crate::Registry::notify) for the socket.
/// * [`stop`](Responder::stop) once when a graceful stop begins.
/// * [`closed`](Responder::closed) exactly once, after the socket left the
///   table: by [`Action::Close`], by [`Registry::remove`](crate::Registry::remove)
///   from any handler, by a panic, or at the end of a graceful stop.
///
/// # Panics
///
/// A panic in any of these methods is caught (unless the program is built
/// with `panic = "abort"`): the panic is logged with `log::error!`, the
/// socket is closed and its `closed` hook runs; every other socket goes on.
/// The shared state is left as the handler left it.
///
/// # Examples
///
/// A UDP server that counts datagrams in the shared state and stops the
/// loop at the third:
///
/// ```
/// use sockmux_core::Event;
/// use sockmux_responder::{Action, Context, Dispatcher, Responder};
/// use std::io::ErrorKind;
///
/// struct Server;
///
/// impl Responder<u32> for Server {
///     fn ready(&mut self, event: Event, cx: &mut Context<'_, u32>) -> Action {
///         if let Event::Read(t) = event {
///             match cx.sockets.recv(t, &mut [0; 64]) {
///                 Ok(_) => *cx.state += 1,
///                 // Drained: the table waits for the next datagram.
///                 Err(e) if e.kind() == ErrorKind::WouldBlock => {}
///                 Err(_) => return Action::Close,
///             }
///             if *cx.state == 3 {
///                 cx.stop();
///             }
///         }
///         Action::Continue
///     }
/// }
///
/// let mut dispatcher = Dispatcher::new(0u32)?;
/// let server = dispatcher.sockets().bind_udp("127.0.0.1:0", Server)?;
/// let addr = dispatcher.sockets().local_addr(server)?;
/// let client = std::net::UdpSocket::bind("127.0.0.1:0")?;
/// for _ in 0..3 {
///     client.send_to(b"hi", addr)?;
/// }
/// dispatcher.run_for(std::time::Duration::from_secs(10))?;
/// assert_eq!(*dispatcher.state(), 3);
/// # Ok::<(), std::io::Error>(())
/// ```
pub trait Responder<S> {
    /// Handles one `Read`, `Write` or `Error` event of this responder's
    /// socket (the token in the event is [`Context::token`]); returns what
    /// happens next.
    ///
    /// Level semantics hold: a `Read` comes again on the next turn until a
    /// read answers `WouldBlock` (or a stream read comes back short), so a
    /// handler may read a bounded amount and return, leaving the rest for
    /// the next turn, and let other sockets have theirs.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_core::Event;
    /// use sockmux_responder::{Action, Context, Responder};
    ///
    /// /// Counts datagrams; closes on an error event.
    /// struct Counter(u64);
    ///
    /// impl Responder<()> for Counter {
    ///     fn ready(&mut self, event: Event, cx: &mut Context<'_, ()>) -> Action {
    ///         match event {
    ///             Event::Read(t) => {
    ///                 while cx.sockets.recv(t, &mut [0; 1500]).is_ok() {
    ///                     self.0 += 1;
    ///                 }
    ///                 Action::Continue
    ///             }
    ///             Event::Error(_) => Action::Close,
    ///             _ => Action::Continue,
    ///         }
    ///     }
    /// }
    /// # let _ = Counter(0);
    /// ```
    fn ready(&mut self, event: Event, cx: &mut Context<'_, S>) -> Action;

    /// Runs once after the socket was registered, before its first event:
    /// the place to greet a peer or start a timer. Does nothing by default.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_core::Event;
    /// use sockmux_responder::{Action, Context, Responder};
    ///
    /// struct Greeter;
    ///
    /// impl Responder<()> for Greeter {
    ///     fn registered(&mut self, cx: &mut Context<'_, ()>) -> Action {
    ///         // A new connection's send buffer is empty: this fits.
    ///         match cx.sockets.write(cx.token, b"hello\n") {
    ///             Ok(_) => Action::Continue,
    ///             Err(_) => Action::Close,
    ///         }
    ///     }
    ///     fn ready(&mut self, _: Event, _: &mut Context<'_, ()>) -> Action {
    ///         Action::Continue
    ///     }
    /// }
    /// # let _ = Greeter;
    /// ```
    fn registered(&mut self, cx: &mut Context<'_, S>) -> Action {
        let _ = cx;
        Action::Continue
    }

    /// A timer made by this responder (through [`Context::timer_after`] and
    /// friends) fired. Does nothing by default.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_core::{Event, TimerId};
    /// use sockmux_responder::{Action, Context, Dispatcher, Responder};
    /// use std::io::Read;
    /// use std::time::Duration;
    ///
    /// /// Closes a connection that stays silent for `limit`: the timer starts
    /// /// when the connection does (a client that never sends is closed
    /// /// too) and starts again with every read.
    /// struct Idle {
    ///     limit: Duration,
    ///     timer: Option<TimerId>,
    /// }
    ///
    /// impl Idle {
    ///     fn restart(&mut self, cx: &mut Context<'_, bool>) {
    ///         if let Some(old) = self.timer.take() {
    ///             cx.cancel_timer(old);
    ///         }
    ///         self.timer = Some(cx.timer_after(self.limit));
    ///     }
    /// }
    ///
    /// impl Responder<bool> for Idle {
    ///     fn registered(&mut self, cx: &mut Context<'_, bool>) -> Action {
    ///         self.restart(cx);
    ///         Action::Continue
    ///     }
    ///     fn ready(&mut self, _: Event, cx: &mut Context<'_, bool>) -> Action {
    ///         let mut buf = [0; 1024];
    ///         match cx.sockets.read(cx.token, &mut buf) {
    ///             Ok(0) => return Action::Close, // the client is done
    ///             Ok(_) => self.restart(cx),     // (a real server would use the bytes)
    ///             Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
    ///             Err(_) => return Action::Close,
    ///         }
    ///         Action::Continue
    ///     }
    ///     fn timer(&mut self, id: TimerId, cx: &mut Context<'_, bool>) -> Action {
    ///         if self.timer != Some(id) {
    ///             return Action::Continue;
    ///         }
    ///         *cx.state = true; // closed for silence
    ///         Action::Close
    ///     }
    /// }
    ///
    /// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// let mut silent = std::net::TcpStream::connect(listener.local_addr()?)?;
    /// let mut dispatcher = Dispatcher::new(false)?;
    /// let idle = Idle { limit: Duration::from_millis(50), timer: None };
    /// let t = dispatcher.sockets().register(listener.accept()?.0,
    ///     sockmux_core::Interest::READABLE, idle)?;
    /// while dispatcher.sockets().contains(t) {
    ///     dispatcher.turn(Some(Duration::from_secs(10)))?;
    /// }
    /// assert!(*dispatcher.state(), "closed by its timer");
    /// assert_eq!(silent.read(&mut [0; 8])?, 0, "the client sees the close");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    fn timer(&mut self, id: TimerId, cx: &mut Context<'_, S>) -> Action {
        let _ = (id, cx);
        Action::Continue
    }

    /// Another handler asked for this call with
    /// [`Registry::notify`](crate::Registry::notify), typically after it
    /// left work for this socket in the shared state. Does nothing by
    /// default.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::collections::HashMap;
    /// use sockmux_core::{Event, Token};
    /// use sockmux_responder::{Action, Context, Responder};
    ///
    /// /// The shared state: bytes left for each socket by the others.
    /// type Mailboxes = HashMap<Token, Vec<u8>>;
    ///
    /// struct Peer;
    ///
    /// impl Responder<Mailboxes> for Peer {
    ///     fn ready(&mut self, _: Event, _: &mut Context<'_, Mailboxes>) -> Action {
    ///         Action::Continue
    ///     }
    ///     fn notified(&mut self, cx: &mut Context<'_, Mailboxes>) -> Action {
    ///         if let Some(mail) = cx.state.get_mut(&cx.token) {
    ///             // A datagram socket: each piece of mail is one send.
    ///             let _ = cx.sockets.send(cx.token, mail);
    ///             mail.clear();
    ///         }
    ///         Action::Continue
    ///     }
    /// }
    /// # let _ = Peer;
    /// ```
    fn notified(&mut self, cx: &mut Context<'_, S>) -> Action {
        let _ = cx;
        Action::Continue
    }

    /// A graceful stop began ([`Context::stop_gracefully`] or
    /// [`Dispatcher::stop_gracefully`](crate::Dispatcher::stop_gracefully)).
    ///
    /// Return [`Action::Close`] (the default) if there is nothing left to
    /// do: a listener stops accepting this way. Return
    /// [`Action::Continue`] to finish first — flush what is buffered — and
    /// return `Close` from a later call; whatever is still open at the
    /// deadline is closed then.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_core::{Event, Interest};
    /// use sockmux_responder::{Action, Context, Responder};
    ///
    /// /// Writes out `queue`; on stop, reads no more and closes once flushed.
    /// struct Conn { queue: Vec<u8>, stopping: bool }
    ///
    /// impl Responder<()> for Conn {
    ///     fn ready(&mut self, _: Event, cx: &mut Context<'_, ()>) -> Action {
    ///         if let Ok(n) = cx.sockets.write(cx.token, &self.queue) {
    ///             self.queue.drain(..n);
    ///         }
    ///         if self.stopping && self.queue.is_empty() { Action::Close } else { Action::Continue }
    ///     }
    ///     fn stop(&mut self, cx: &mut Context<'_, ()>) -> Action {
    ///         if self.queue.is_empty() {
    ///             return Action::Close;
    ///         }
    ///         self.stopping = true;
    ///         let _ = cx.sockets.set_interest(cx.token, Interest::WRITABLE);
    ///         Action::Continue
    ///     }
    /// }
    /// # let _ = Conn { queue: Vec::new(), stopping: false };
    /// ```
    fn stop(&mut self, cx: &mut Context<'_, S>) -> Action {
        let _ = cx;
        Action::Close
    }

    /// The socket left the table and is closed; runs exactly once, then the
    /// responder is dropped. [`Context::token`] is stale by now; the shared
    /// state and every other socket are there, e.g. to forget this peer.
    /// Does nothing by default.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::collections::HashSet;
    /// use sockmux_core::{Event, Token};
    /// use sockmux_responder::{Action, Context, Responder};
    ///
    /// /// The shared state keeps who is connected.
    /// struct Member;
    ///
    /// impl Responder<HashSet<Token>> for Member {
    ///     fn registered(&mut self, cx: &mut Context<'_, HashSet<Token>>) -> Action {
    ///         cx.state.insert(cx.token);
    ///         Action::Continue
    ///     }
    ///     fn ready(&mut self, _: Event, _: &mut Context<'_, HashSet<Token>>) -> Action {
    ///         Action::Continue
    ///     }
    ///     fn closed(&mut self, cx: &mut Context<'_, HashSet<Token>>) {
    ///         cx.state.remove(&cx.token);
    ///     }
    /// }
    /// # let _ = Member;
    /// ```
    fn closed(&mut self, cx: &mut Context<'_, S>) {
        let _ = cx;
    }
}

/// A closure `FnMut(Event, &mut Context<'_, S>) -> Action` is a responder
/// with the default hooks: handy for small handlers and tests.
///
/// # Examples
///
/// ```
/// use sockmux_core::Event;
/// use sockmux_responder::{Action, Context, Dispatcher};
///
/// let mut dispatcher = Dispatcher::new(())?;
/// dispatcher.sockets().bind_udp("127.0.0.1:0", |event: Event, _: &mut Context<'_, ()>| {
///     println!("{event:?}");
///     Action::Continue
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
impl<S, F> Responder<S> for F
where
    F: FnMut(Event, &mut Context<'_, S>) -> Action,
{
    fn ready(&mut self, event: Event, cx: &mut Context<'_, S>) -> Action {
        self(event, cx)
    }
}
