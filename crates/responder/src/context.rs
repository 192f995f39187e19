//! [`Context`]: what a handler gets besides its event.

use std::fmt;
use std::io;
use std::time::{Duration, Instant};

use sockmux_core::{Event, Receiver, Sender, Signal, TimerId, Token, Waker};

use crate::Registry;

/// What a handler gets besides its event: the shared state, the socket
/// table, its own token, its timers, wake-ups and signals, and the loop's
/// stop controls.
///
/// The two public fields are separate borrows, so a handler can hold the
/// state and do I/O at the same time — say, walk a list of peers kept in
/// the state and write to each:
///
/// ```
/// # use sockmux_core::Token;
/// # use sockmux_responder::Context;
/// struct Chat { peers: Vec<Token> }
///
/// fn broadcast(cx: &mut Context<'_, Chat>, line: &[u8]) {
///     for &peer in &cx.state.peers {
///         let _ = cx.sockets.write(peer, line); // a real program buffers the rest
///     }
/// }
/// # let _ = (broadcast, Chat { peers: Vec::new() }.peers);
/// ```
///
/// # Examples
///
/// ```
/// use sockmux_core::Event;
/// use sockmux_responder::{Action, Context, Dispatcher};
///
/// // A closure is a responder too: it counts its events and stops the loop.
/// let counter = |event: Event, cx: &mut Context<'_, u32>| {
///     assert_eq!(event, Event::Write(cx.token));
///     *cx.state += 1;
///     cx.stop();
///     Action::Close
/// };
/// let mut dispatcher = Dispatcher::new(0)?;
/// let mut sockets = dispatcher.sockets();
/// let t = sockets.bind_udp("127.0.0.1:0", counter)?;
/// sockets.set_interest(t, sockmux_core::Interest::WRITABLE)?;
/// dispatcher.run_for(std::time::Duration::from_secs(10))?;
/// assert_eq!(*dispatcher.state(), 1);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Context<'a, S> {
    /// The program's shared state: the sketch's "common context", reached
    /// by every responder in turn without `Rc<RefCell<_>>`.
    pub state: &'a mut S,
    /// The socket table: I/O on this socket and any other, registration,
    /// removal.
    pub sockets: Registry<'a, S>,
    /// The token of the socket whose responder is being called. In the
    /// [`closed`](crate::Responder::closed) hook it is already stale.
    ///
    /// A field, not a method, so that it can be passed to the table while
    /// the table is borrowed: `cx.sockets.read(cx.token, &mut buf)`.
    /// Changing it changes nothing but this field: the context's timers
    /// and subscriptions stay this responder's.
    pub token: Token,
    /// The token the dispatcher called (what `token` was set to).
    pub(crate) own: Token,
}

impl<S> fmt::Debug for Context<'_, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("token", &self.own)
            .finish_non_exhaustive()
    }
}

impl<S> Context<'_, S> {
    /// Stops the loop: [`Dispatcher::run`](crate::Dispatcher::run) returns
    /// once the current turn is over. Sockets stay open and registered; run
    /// again to go on.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_core::{Event, Interest};
    /// use sockmux_responder::{Action, Context, Dispatcher};
    ///
    /// let mut dispatcher = Dispatcher::new(())?;
    /// let mut sockets = dispatcher.sockets();
    /// let t = sockets.bind_udp("127.0.0.1:0", |_: Event, cx: &mut Context<'_, ()>| {
    ///     cx.stop();
    ///     Action::Continue
    /// })?;
    /// sockets.set_interest(t, Interest::WRITABLE)?; // ready at once
    /// dispatcher.run()?;
    /// assert!(dispatcher.is_stopped());
    /// assert!(dispatcher.sockets().contains(t));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn stop(&mut self) {
        self.sockets.core.stop = true;
    }

    /// Begins a graceful stop once the current call returns: every
    /// responder's [`stop`](crate::Responder::stop) hook runs (listeners
    /// close, connections flush), and whatever is still open after `grace`
    /// is closed. The loop returns when the table is empty.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_core::{Event, Interest};
    /// use sockmux_responder::{Action, Context, Dispatcher};
    /// use std::time::Duration;
    ///
    /// let mut dispatcher = Dispatcher::new(())?;
    /// let mut sockets = dispatcher.sockets();
    /// let t = sockets.bind_udp("127.0.0.1:0", |_: Event, cx: &mut Context<'_, ()>| {
    ///     cx.stop_gracefully(Duration::from_secs(5));
    ///     Action::Continue
    /// })?;
    /// sockets.set_interest(t, Interest::WRITABLE)?;
    /// dispatcher.run()?; // the default stop hook closed the socket
    /// assert!(dispatcher.sockets().is_empty());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn stop_gracefully(&mut self, grace: Duration) {
        let core = &mut *self.sockets.core;
        if core.stopping.is_none() {
            core.stop_requested = Some(core.stop_requested.map_or(grace, |g| g.min(grace)));
        }
    }

    /// A one-shot timer owned by this responder: its
    /// [`timer`](crate::Responder::timer) hook runs no sooner than `delay`
    /// from now. Cancelled when the socket closes.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_core::{Event, TimerId};
    /// use sockmux_responder::{Action, Context, Dispatcher, Responder};
    /// use std::time::{Duration, Instant};
    ///
    /// struct Idle;
    /// impl Responder<Option<Instant>> for Idle {
    ///     fn ready(&mut self, _: Event, _: &mut Context<'_, Option<Instant>>) -> Action {
    ///         Action::Continue
    ///     }
    ///     fn registered(&mut self, cx: &mut Context<'_, Option<Instant>>) -> Action {
    ///         cx.timer_after(Duration::from_millis(20));
    ///         Action::Continue
    ///     }
    ///     fn timer(&mut self, _: TimerId, cx: &mut Context<'_, Option<Instant>>) -> Action {
    ///         *cx.state = Some(Instant::now());
    ///         cx.stop();
    ///         Action::Close
    ///     }
    /// }
    ///
    /// let start = Instant::now();
    /// let mut dispatcher = Dispatcher::new(None)?;
    /// dispatcher.sockets().bind_udp("127.0.0.1:0", Idle)?;
    /// dispatcher.run_for(Duration::from_secs(10))?;
    /// assert!(dispatcher.state().unwrap() >= start + Duration::from_millis(20));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn timer_after(&mut self, delay: Duration) -> TimerId {
        let id = self.sockets.core.sockets.timer_after(delay);
        self.sockets.core.own_timer(self.own, id, false)
    }

    /// A one-shot timer owned by this responder, for `deadline`.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_core::{Event, TimerId};
    /// use sockmux_responder::{Action, Context, Dispatcher, Responder};
    /// use std::time::{Duration, Instant};
    ///
    /// /// Keeps its socket until a fixed instant (the end of a maintenance
    /// /// window, say): one timer, set when the responder starts.
    /// struct Until(Instant);
    ///
    /// impl Responder<u32> for Until {
    ///     fn registered(&mut self, cx: &mut Context<'_, u32>) -> Action {
    ///         cx.timer_at(self.0);
    ///         Action::Continue
    ///     }
    ///     fn ready(&mut self, _: Event, _: &mut Context<'_, u32>) -> Action {
    ///         Action::Continue
    ///     }
    ///     fn timer(&mut self, _: TimerId, cx: &mut Context<'_, u32>) -> Action {
    ///         *cx.state += 1;
    ///         Action::Close
    ///     }
    /// }
    ///
    /// let mut dispatcher = Dispatcher::new(0)?;
    /// let end = Instant::now() + Duration::from_millis(20);
    /// dispatcher.sockets().bind_udp("127.0.0.1:0", Until(end))?;
    /// dispatcher.run_for(Duration::from_secs(10))?; // until the table is empty
    /// assert_eq!(*dispatcher.state(), 1);
    /// assert!(Instant::now() >= end);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn timer_at(&mut self, deadline: Instant) -> TimerId {
        let id = self.sockets.core.sockets.timer_at(deadline);
        self.sockets.core.own_timer(self.own, id, false)
    }

    /// A periodic timer owned by this responder: fires every `period`
    /// (without drift) until cancelled or the socket closes.
    ///
    /// # Panics
    ///
    /// If `period` is zero.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_core::{Event, TimerId};
    /// use sockmux_responder::{Action, Context, Dispatcher, Responder};
    /// use std::time::Duration;
    ///
    /// struct Ticker;
    /// impl Responder<u32> for Ticker {
    ///     fn ready(&mut self, _: Event, _: &mut Context<'_, u32>) -> Action {
    ///         Action::Continue
    ///     }
    ///     fn registered(&mut self, cx: &mut Context<'_, u32>) -> Action {
    ///         cx.timer_every(Duration::from_millis(5));
    ///         Action::Continue
    ///     }
    ///     fn timer(&mut self, _: TimerId, cx: &mut Context<'_, u32>) -> Action {
    ///         *cx.state += 1;
    ///         if *cx.state == 3 { Action::Close } else { Action::Continue }
    ///     }
    /// }
    ///
    /// let mut dispatcher = Dispatcher::new(0)?;
    /// dispatcher.sockets().bind_udp("127.0.0.1:0", Ticker)?;
    /// dispatcher.run()?; // returns when the table is empty
    /// assert_eq!(*dispatcher.state(), 3);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn timer_every(&mut self, period: Duration) -> TimerId {
        let id = self.sockets.core.sockets.timer_every(period);
        self.sockets.core.own_timer(self.own, id, true)
    }

    /// Cancels a timer; returns whether it was still pending.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_core::Event;
    /// use sockmux_responder::{Action, Context};
    /// use std::time::Duration;
    ///
    /// fn handler(_: Event, cx: &mut Context<'_, ()>) -> Action {
    ///     let id = cx.timer_after(Duration::from_secs(1));
    ///     assert!(cx.cancel_timer(id));
    ///     assert!(!cx.cancel_timer(id));
    ///     Action::Continue
    /// }
    /// # let _ = handler;
    /// ```
    pub fn cancel_timer(&mut self, id: TimerId) -> bool {
        self.sockets.core.disown_timer(id);
        self.sockets.core.sockets.cancel_timer(id)
    }

    /// The loop's waker (see [`Waker`]), with this responder subscribed to
    /// its wake-ups: each [`Waker::wake`], from any thread, reaches this
    /// responder's [`ready`](crate::Responder::ready) as [`Event::Wake`].
    /// Wake-ups coalesce, and every subscriber gets each one: treat it as
    /// "something may have changed, look".
    ///
    /// # Errors
    ///
    /// The OS error from creating the loop's waker (first use only).
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_core::Event;
    /// use sockmux_responder::{Action, Context, Dispatcher, Responder};
    ///
    /// /// Waits for a worker thread to say it is done.
    /// struct Waiter;
    ///
    /// impl Responder<bool> for Waiter {
    ///     fn registered(&mut self, cx: &mut Context<'_, bool>) -> Action {
    ///         let waker = cx.waker().expect("a waker");
    ///         std::thread::spawn(move || waker.wake().unwrap());
    ///         Action::Continue
    ///     }
    ///
    ///     fn ready(&mut self, event: Event, cx: &mut Context<'_, bool>) -> Action {
    ///         if event == Event::Wake {
    ///             *cx.state = true;
    ///             cx.stop();
    ///         }
    ///         Action::Continue
    ///     }
    /// }
    ///
    /// let mut dispatcher = Dispatcher::new(false)?;
    /// dispatcher.sockets().bind_udp("127.0.0.1:0", Waiter)?;
    /// dispatcher.run_for(std::time::Duration::from_secs(10))?;
    /// assert!(*dispatcher.state());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn waker(&mut self) -> io::Result<Waker> {
        let waker = self.sockets.core.sockets.waker()?;
        self.sockets.core.subscribe(self.own, Event::Wake);
        Ok(waker)
    }

    /// An unbounded channel into the loop, for this responder: each send,
    /// from any thread, wakes the loop, and this responder's
    /// [`ready`](crate::Responder::ready) gets [`Event::Wake`], on which it
    /// drains the [`Receiver`] it keeps.
    ///
    /// # Errors
    ///
    /// The OS error from creating the loop's waker (first use only).
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_core::{Event, Receiver};
    /// use sockmux_responder::{Action, Context, Dispatcher, Responder};
    /// use std::time::Duration;
    ///
    /// /// Collects what a worker thread sends.
    /// struct Collector(Option<Receiver<u32>>);
    ///
    /// impl Responder<Vec<u32>> for Collector {
    ///     fn registered(&mut self, cx: &mut Context<'_, Vec<u32>>) -> Action {
    ///         let (tx, rx) = cx.channel().expect("a waker");
    ///         self.0 = Some(rx);
    ///         std::thread::spawn(move || (0..3).for_each(|n| tx.send(n).unwrap()));
    ///         Action::Continue
    ///     }
    ///
    ///     fn ready(&mut self, event: Event, cx: &mut Context<'_, Vec<u32>>) -> Action {
    ///         if event == Event::Wake {
    ///             let rx = self.0.as_ref().expect("made in registered");
    ///             while let Ok(n) = rx.try_recv() {
    ///                 cx.state.push(n);
    ///             }
    ///             if cx.state.len() == 3 {
    ///                 cx.stop();
    ///             }
    ///         }
    ///         Action::Continue
    ///     }
    /// }
    ///
    /// let mut dispatcher = Dispatcher::new(Vec::new())?;
    /// dispatcher.sockets().bind_udp("127.0.0.1:0", Collector(None))?;
    /// dispatcher.run_for(Duration::from_secs(10))?;
    /// assert_eq!(dispatcher.state(), &[0, 1, 2]);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn channel<T>(&mut self) -> io::Result<(Sender<T>, Receiver<T>)> {
        let pair = self.sockets.core.sockets.channel()?;
        self.sockets.core.subscribe(self.own, Event::Wake);
        Ok(pair)
    }

    /// A bounded channel into the loop, for this responder: as
    /// [`channel`](Context::channel), and [`Sender::send`] blocks while
    /// `bound` messages wait.
    ///
    /// # Errors
    ///
    /// The OS error from creating the loop's waker (first use only).
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_core::Event;
    /// use sockmux_responder::{Action, Context, Dispatcher};
    ///
    /// let mut dispatcher = Dispatcher::new(None)?;
    /// let mut sockets = dispatcher.sockets();
    /// let t = sockets.bind_udp("127.0.0.1:0", |_: Event, cx: &mut Context<'_, Option<char>>| {
    ///     let (tx, rx) = cx.sync_channel(1).expect("a waker");
    ///     tx.try_send('a').unwrap();
    ///     assert!(tx.try_send('b').is_err(), "full: 'b' is handed back");
    ///     *cx.state = rx.try_recv().ok();
    ///     cx.stop();
    ///     Action::Close
    /// })?;
    /// sockets.set_interest(t, sockmux_core::Interest::WRITABLE)?; // called at once
    /// dispatcher.run_for(std::time::Duration::from_secs(10))?;
    /// assert_eq!(*dispatcher.state(), Some('a'));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn sync_channel<T>(&mut self, bound: usize) -> io::Result<(Sender<T>, Receiver<T>)> {
        let pair = self.sockets.core.sockets.sync_channel(bound)?;
        self.sockets.core.subscribe(self.own, Event::Wake);
        Ok(pair)
    }

    /// Delivers the given process signals to this responder's
    /// [`ready`](crate::Responder::ready) as [`Event::Signal`], instead of
    /// their default action (see
    /// [`Sockets::watch_signals`](sockmux_core::Sockets::watch_signals)).
    /// To stop the loop on a signal, see
    /// [`Dispatcher::stop_on_signals`](crate::Dispatcher::stop_on_signals).
    ///
    /// # Errors
    ///
    /// The OS error from installing the handler.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_core::{Event, Signal};
    /// use sockmux_responder::{Action, Context, Dispatcher, Responder};
    ///
    /// /// Reloads its configuration on SIGHUP.
    /// struct Reloader;
    ///
    /// impl Responder<u32> for Reloader {
    ///     fn registered(&mut self, cx: &mut Context<'_, u32>) -> Action {
    ///         cx.watch_signals(&[Signal::Hangup]).expect("a handler");
    ///         Action::Continue
    ///     }
    ///
    ///     fn ready(&mut self, event: Event, cx: &mut Context<'_, u32>) -> Action {
    ///         if event == Event::Signal(Signal::Hangup) {
    ///             *cx.state += 1; // reload
    ///         }
    ///         Action::Continue
    ///     }
    /// }
    ///
    /// let mut dispatcher = Dispatcher::new(0)?;
    /// dispatcher.sockets().bind_udp("127.0.0.1:0", Reloader)?;
    /// dispatcher.turn(Some(std::time::Duration::ZERO))?; // runs `registered`
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn watch_signals(&mut self, signals: &[Signal]) -> io::Result<()> {
        self.sockets.core.sockets.watch_signals(signals)?;
        for &signal in signals {
            self.sockets.core.subscribe(self.own, Event::Signal(signal));
        }
        Ok(())
    }
}
