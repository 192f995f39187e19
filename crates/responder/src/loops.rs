//! [`Loops`]: one dispatcher per thread, shared nothing, with a listener
//! spread over them and messages between them.

use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::net::{SocketAddr, ToSocketAddrs};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use log::{debug, error, trace};
use sockmux_core::{Event, Interest, Receiver, Sender, Signal, Socket, Sockets, TimerId, Token};

use crate::dispatcher::{panic_message, LoopState};
use crate::{Acceptor, Action, Context, Dispatcher, Registry, Responder};

/// Messages (and handed-off connections) taken from a loop's inbox per
/// turn at most: a flood of messages cannot starve the loop's sockets.
const MAIL_PER_TURN: usize = 1024;

/// The grace of a graceful stop begun inside one loop (by a handler), for
/// the others, by default.
const DEFAULT_GRACE: Duration = Duration::from_secs(5);

/// How a listener's connections are spread over the loops.
///
/// # Examples
///
/// ```
/// use sockmux_responder::Spread;
///
/// #[cfg(target_os = "linux")]
/// assert_eq!(Spread::default(), Spread::ReusePort);
/// #[cfg(windows)]
/// assert_eq!(Spread::default(), Spread::HandOff);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Spread {
    /// One listener per loop on the same address, with `SO_REUSEPORT`: the
    /// kernel picks the loop of each connection (by a hash of its
    /// addresses and ports), and no loop touches another's connections.
    /// Linux (and Android) only: elsewhere `SO_REUSEPORT` does not spread
    /// connections, and [`Loops::serve`] answers `Unsupported`.
    ReusePort,
    /// One listener, on loop 0, which accepts each connection and hands it
    /// to the loop with the fewest open connections (loop 0 included)
    /// through that loop's inbox; that loop registers it with its
    /// responder. Works everywhere; costs loop 0 the accepts and one
    /// message per connection. Out of descriptors, loop 0 pauses the
    /// listener as an [`Acceptor`] does, until the pause is over or a
    /// socket of loop 0 closes (closes in the other loops do not resume
    /// it early).
    HandOff,
}

impl Default for Spread {
    /// [`ReusePort`](Spread::ReusePort) on Linux and Android,
    /// [`HandOff`](Spread::HandOff) elsewhere (Windows, macOS, the BSDs).
    fn default() -> Spread {
        if cfg!(any(target_os = "linux", target_os = "android")) {
            Spread::ReusePort
        } else {
            Spread::HandOff
        }
    }
}

/// The multi-loop runner: N [`Dispatcher`]s, each on a thread of its own
/// with its own table and its own state, built by one setup function, and
/// stopped together.
///
/// Nothing is shared between loops but what the runner passes: a
/// listener's connections ([`Spread`]), messages sent through a
/// [`Handle`], and the stop. A handler never takes a lock: each loop's
/// state is its own, single-threaded as in a lone dispatcher.
///
/// * **Start**: [`serve`](Loops::serve) (with a TCP listener) or
///   [`start`](Loops::start) (without) runs the setup on each loop's
///   thread, with a [`Setup`]: the loop's index, the handles of every
///   loop, its table; it returns the loop's state. If any setup fails,
///   every loop is stopped and the first error returned.
/// * **Stop**: [`Server::stop`], a signal (see
///   [`stop_on_signals`](Loops::stop_on_signals)), or a graceful stop begun
///   by a handler in any loop ([`Context::stop_gracefully`] or
///   [`Context::stop`]) stops every loop gracefully: each runs its
///   responders' `stop` hooks (listeners close, streams flush) and ends
///   when its table is empty or the grace is over.
/// * **Failures stay in their loop**: a panicking responder is closed by
///   its dispatcher, a panicking message handler is logged and the loop
///   goes on; a loop whose poller fails ends alone (logged), and
///   [`Server::join`] reports it once the others have ended.
///
/// # Examples
///
/// Two loops serving one address: each connection gets a greeting that
/// names its loop, then the close.
///
/// ```
/// use sockmux_core::{Event, Interest, Token};
/// use sockmux_responder::{Action, Context, Loops, Spread};
/// use std::io::Read;
/// use std::time::Duration;
///
/// let server = Loops::new(2).spread(Spread::HandOff).serve("127.0.0.1:0", |setup| {
///     let me = setup.index();
///     setup.on_connection(move |t: Token, cx: &mut Context<'_, u32>| {
///         cx.sockets.set_interest(t, Interest::WRITABLE).expect("t is new");
///         move |event: Event, cx: &mut Context<'_, u32>| {
///             if let Event::Write(t) = event {
///                 let _ = cx.sockets.write(t, format!("loop {me}\n").as_bytes());
///                 *cx.state += 1;
///             }
///             Action::Close
///         }
///     });
///     Ok(0) // this loop's state: the greetings it sent
/// })?;
/// let addr = server.local_addr().expect("listening");
/// for _ in 0..4 {
///     let mut reply = String::new();
///     std::net::TcpStream::connect(addr)?.read_to_string(&mut reply)?;
///     assert!(reply.starts_with("loop "));
/// }
/// server.stop(Duration::from_secs(5));
/// let greetings = server.join()?;
/// // Every connection greeted once; which loop took which depends on how
/// // soon each loop counted its last close (tests/loops.rs checks the
/// // spread with connections held open).
/// assert_eq!(greetings.iter().sum::<u32>(), 4);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Loops<M = ()> {
    count: usize,
    spread: Spread,
    capacity: usize,
    signals: Vec<Signal>,
    grace: Duration,
    messages: PhantomData<fn(M) -> M>,
}

impl<M> fmt::Debug for Loops<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Loops")
            .field("count", &self.count)
            .field("spread", &self.spread)
            .field("capacity", &self.capacity)
            .field("signals", &self.signals)
            .field("grace", &self.grace)
            .finish()
    }
}

impl Loops {
    /// `count` loops (at least 1), spreading connections the platform's
    /// default way ([`Spread::default`]), with no signal watched, and a
    /// grace of 5 s for a stop begun by a handler.
    ///
    /// # Examples
    ///
    /// ```
    /// let loops = sockmux_responder::Loops::new(4);
    /// assert_eq!(loops.count(), 4);
    /// assert_eq!(sockmux_responder::Loops::new(0).count(), 1);
    /// ```
    #[must_use]
    pub fn new(count: usize) -> Loops {
        Loops {
            count: count.max(1),
            spread: Spread::default(),
            capacity: 0,
            signals: Vec::new(),
            grace: DEFAULT_GRACE,
            messages: PhantomData,
        }
    }

    /// One loop per core the process may use
    /// ([`std::thread::available_parallelism`]; 1 if unknown).
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(sockmux_responder::Loops::per_core().count() >= 1);
    /// ```
    #[must_use]
    pub fn per_core() -> Loops {
        Loops::new(thread::available_parallelism().map_or(1, usize::from))
    }

    /// The type of the messages the loops send each other through their
    /// [`Handle`]s (none, `()`, by default).
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_responder::Loops;
    ///
    /// // Lines of a chat, from one loop to the others.
    /// let loops: Loops<String> = Loops::new(2).messages::<String>();
    /// # let _ = loops;
    /// ```
    #[must_use]
    pub fn messages<N: Send + 'static>(self) -> Loops<N> {
        Loops {
            count: self.count,
            spread: self.spread,
            capacity: self.capacity,
            signals: self.signals,
            grace: self.grace,
            messages: PhantomData,
        }
    }
}

impl<M: Send + 'static> Loops<M> {
    /// How many loops will run.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(sockmux_responder::Loops::new(3).count(), 3);
    /// ```
    #[must_use]
    pub fn count(&self) -> usize {
        self.count
    }

    /// How the listener's connections are spread.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_responder::{Loops, Spread};
    /// let loops = Loops::new(2).spread(Spread::HandOff);
    /// # let _ = loops;
    /// ```
    #[must_use]
    pub fn spread(mut self, spread: Spread) -> Loops<M> {
        self.spread = spread;
        self
    }

    /// Room for `sockets` sockets in each loop's table before it grows (as
    /// [`Dispatcher::with_capacity`]).
    ///
    /// # Examples
    ///
    /// ```
    /// let loops = sockmux_responder::Loops::new(2).capacity(1024);
    /// # let _ = loops;
    /// ```
    #[must_use]
    pub fn capacity(mut self, sockets: usize) -> Loops<M> {
        self.capacity = sockets;
        self
    }

    /// Stops every loop gracefully, with `grace`, when one of `signals`
    /// arrives (loop 0 watches them, as
    /// [`Dispatcher::stop_on_signals`]); a second one while stopping closes
    /// loop 0's sockets at once. `grace` is also the grace of a stop begun
    /// by a handler.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_core::Signal;
    /// use std::time::Duration;
    ///
    /// let loops = sockmux_responder::Loops::new(2)
    ///     .stop_on_signals(&[Signal::Interrupt, Signal::Terminate], Duration::from_secs(5));
    /// # let _ = loops;
    /// ```
    #[must_use]
    pub fn stop_on_signals(mut self, signals: &[Signal], grace: Duration) -> Loops<M> {
        self.signals = signals.to_vec();
        self.grace = grace;
        self
    }

    /// Starts the loops with a TCP listener on `addr`, spread over them as
    /// set by [`spread`](Loops::spread); each loop's setup must give its
    /// connections' responder with [`Setup::on_connection`]. Returns once
    /// every loop is set up and serving.
    ///
    /// # Errors
    ///
    /// The OS error from binding (`AddrInUse`, ...); `Unsupported` for
    /// [`Spread::ReusePort`] off Linux; `InvalidInput` when a setup gave no
    /// `on_connection`; the first error of a setup (or of making a loop's
    /// poller), after stopping every loop.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_core::{Event, Token};
    /// use sockmux_responder::{Action, Context, Loops};
    /// use std::time::Duration;
    ///
    /// let server = Loops::new(2).serve("127.0.0.1:0", |setup| {
    ///     setup.on_connection(|_: Token, _: &mut Context<'_, ()>| {
    ///         |_: Event, _: &mut Context<'_, ()>| Action::Close
    ///     });
    ///     Ok(())
    /// })?;
    /// assert!(server.local_addr().is_some());
    /// server.stop(Duration::from_secs(5));
    /// assert_eq!(server.join()?.len(), 2);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn serve<S, F>(self, addr: impl ToSocketAddrs, setup: F) -> io::Result<Server<S, M>>
    where
        S: Send + 'static,
        F: Fn(&mut Setup<'_, S, M>) -> io::Result<S> + Send + Sync + 'static,
    {
        let (listeners, local) = match self.spread {
            Spread::ReusePort => {
                let (listeners, local) = reuse_port_listeners(addr, self.count)?;
                (listeners.into_iter().map(Some).collect(), local)
            }
            Spread::HandOff => {
                let listener = Socket::listen_tcp(addr)?;
                let local = listener.local_addr()?;
                let mut listeners: Vec<Option<Socket>> = (0..self.count).map(|_| None).collect();
                listeners[0] = Some(listener);
                (listeners, local)
            }
        };
        self.launch(listeners, Some(local), setup)
    }

    /// Starts the loops without a listener: each registers its own sockets
    /// in its setup (through [`Setup::sockets`]), and they talk through
    /// their [`Handle`]s. Returns once every loop is set up.
    ///
    /// # Errors
    ///
    /// The first error of a setup (or of making a loop's poller), after
    /// stopping every loop.
    ///
    /// # Examples
    ///
    /// Loop 1 counts the messages loop 0's setup sends it:
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let server = sockmux_responder::Loops::new(2).messages::<u32>().start(|setup| {
    ///     if setup.index() == 0 {
    ///         for n in 1..=3 {
    ///             setup.handles()[1].send(n)?;
    ///         }
    ///     }
    ///     setup.on_message(|n: u32, sum: &mut u32, _| *sum += n);
    ///     Ok(0)
    /// })?;
    /// server.stop(Duration::from_secs(5));
    /// assert_eq!(server.join()?, [0, 6]);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn start<S, F>(self, setup: F) -> io::Result<Server<S, M>>
    where
        S: Send + 'static,
        F: Fn(&mut Setup<'_, S, M>) -> io::Result<S> + Send + Sync + 'static,
    {
        let listeners = (0..self.count).map(|_| None).collect();
        self.launch(listeners, None, setup)
    }

    /// Spawns one thread per loop (loop `i` gets `listeners[i]`), hands
    /// every loop the handles of all, and waits for every setup.
    fn launch<S, F>(
        self,
        listeners: Vec<Option<Socket>>,
        local_addr: Option<SocketAddr>,
        setup: F,
    ) -> io::Result<Server<S, M>>
    where
        S: Send + 'static,
        F: Fn(&mut Setup<'_, S, M>) -> io::Result<S> + Send + Sync + 'static,
    {
        let setup = Arc::new(setup);
        let loads = Arc::new(Loads::new(self.count));
        let (up_tx, up_rx) = mpsc::channel::<Report<Sender<Mail<M>>>>();
        let (ready_tx, ready_rx) = mpsc::channel::<Report<()>>();
        let mut threads = Vec::with_capacity(self.count);
        let mut handle_txs = Vec::with_capacity(self.count);
        for (index, listener) in listeners.into_iter().enumerate() {
            let (handles_tx, handles_rx) = mpsc::channel::<Arc<[Handle<M>]>>();
            handle_txs.push(handles_tx);
            let start = Start {
                index,
                listener,
                spread: self.spread,
                handles: handles_rx,
                up: Some(up_tx.clone()),
                ready: ready_tx.clone(),
                loads: Arc::clone(&loads),
                signals: if index == 0 {
                    self.signals.clone()
                } else {
                    Vec::new()
                },
                grace: self.grace,
                capacity: self.capacity,
            };
            let setup = Arc::clone(&setup);
            let thread = thread::Builder::new()
                .name(format!("sockmux-loop-{index}"))
                .spawn(move || start.run(&*setup));
            match thread {
                Ok(thread) => threads.push(thread),
                Err(e) => {
                    // The threads already spawned end when their handles
                    // never come (their channel is dropped with this one).
                    drop(handle_txs);
                    join_all(threads);
                    return Err(e);
                }
            }
        }
        drop((up_tx, ready_tx));

        // Every loop's inbox, then every loop gets the handles of all.
        let mut senders: Vec<Option<Sender<Mail<M>>>> = (0..self.count).map(|_| None).collect();
        let mut first_error = None;
        for _ in 0..self.count {
            match up_rx.recv() {
                Ok((index, Ok(tx))) => senders[index] = Some(tx),
                Ok((index, Err(e))) => {
                    first_error.get_or_insert(loop_error(index, e));
                }
                Err(_) => {
                    first_error.get_or_insert(io::Error::other("a loop ended while starting"));
                    break;
                }
            }
        }
        if let Some(e) = first_error {
            drop(handle_txs);
            join_all(threads);
            return Err(e);
        }
        let handles: Arc<[Handle<M>]> = senders
            .into_iter()
            .enumerate()
            .map(|(index, tx)| Handle {
                index,
                tx: tx.expect("every loop reported its inbox"),
            })
            .collect();
        for tx in &handle_txs {
            // A loop that is gone reports so below.
            let _ = tx.send(Arc::clone(&handles));
        }
        drop(handle_txs);

        let server = Server {
            handles,
            threads,
            loads,
            local_addr,
        };
        for _ in 0..self.count {
            match ready_rx.recv() {
                Ok((_, Ok(()))) => {}
                Ok((index, Err(e))) => {
                    first_error.get_or_insert(loop_error(index, e));
                }
                Err(_) => {
                    first_error.get_or_insert(io::Error::other("a loop ended while starting"));
                    break;
                }
            }
        }
        match first_error {
            None => Ok(server),
            Some(e) => {
                server.stop(Duration::ZERO);
                // Its own errors are the one already in hand.
                let _ = server.join();
                Err(e)
            }
        }
    }
}

fn loop_error(index: usize, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("loop {index}: {e}"))
}

fn join_all<T>(threads: Vec<JoinHandle<T>>) {
    for thread in threads {
        let _ = thread.join();
    }
}

/// `count` listeners on one address, each with `SO_REUSEPORT`; the first
/// binds `addr` (port 0 picks one), the others its actual address.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn reuse_port_listeners(
    addr: impl ToSocketAddrs,
    count: usize,
) -> io::Result<(Vec<Socket>, SocketAddr)> {
    use sockmux_core::IntoSocket;

    fn bind(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
        use socket2::{Domain, Protocol, Type};
        let socket =
            socket2::Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        socket.set_reuse_address(true)?;
        socket.set_reuse_port(true)?;
        socket.bind(&addr.into())?;
        let backlog = i32::try_from(sockmux_core::DEFAULT_BACKLOG).unwrap_or(i32::MAX);
        socket.listen(backlog)?;
        Ok(socket.into())
    }
    let mut last = None;
    let mut first = None;
    for addr in addr.to_socket_addrs()? {
        match bind(addr) {
            Ok(listener) => {
                first = Some(listener);
                break;
            }
            Err(e) => last = Some(e),
        }
    }
    let Some(first) = first else {
        return Err(last.unwrap_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "no address to listen on")
        }));
    };
    let local = first.local_addr()?;
    let mut listeners = vec![first.into_socket()?];
    for _ in 1..count {
        listeners.push(bind(local)?.into_socket()?);
    }
    Ok((listeners, local))
}

/// `SO_REUSEPORT` spreads connections on Linux only.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn reuse_port_listeners(
    _addr: impl ToSocketAddrs,
    _count: usize,
) -> io::Result<(Vec<Socket>, SocketAddr)> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "Spread::ReusePort spreads connections on Linux only: use Spread::HandOff",
    ))
}

/// What goes into a loop's inbox.
enum Mail<M> {
    /// A message from a [`Handle`].
    Message(M),
    /// A connection handed off by loop 0, counted in the loop's load.
    Connection(Socket, Load),
    /// Stop gracefully, with this grace.
    Stop(Duration),
}

/// A handle to one loop: sends it messages from any thread (another loop's
/// handler, the main thread). `Send + Sync + Clone`.
///
/// A message reaches the loop's [`Setup::on_message`] handler, on the
/// loop's thread, in the order sent by each sender. The inbox is unbounded
/// (a loop never blocks on another, so two loops sending to each other
/// cannot deadlock): a program that sends faster than a loop handles
/// bounds its own traffic. A loop that ends (its graceful stop is over)
/// drops what is still in its inbox, and refuses what comes after.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// let server = sockmux_responder::Loops::new(2).messages().start(|setup| {
///     setup.on_message(|word: &'static str, words: &mut Vec<&str>, _| words.push(word));
///     Ok(Vec::new())
/// })?;
/// let handle = &server.handles()[1];
/// assert_eq!(handle.index(), 1);
/// handle.send("hello")?;
/// server.stop(Duration::from_secs(5));
/// assert_eq!(server.join()?[1], ["hello"]);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Handle<M> {
    index: usize,
    tx: Sender<Mail<M>>,
}

impl<M> Clone for Handle<M> {
    fn clone(&self) -> Self {
        Handle {
            index: self.index,
            tx: self.tx.clone(),
        }
    }
}

impl<M> fmt::Debug for Handle<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle")
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

impl<M> Handle<M> {
    /// The index of the loop (0 to the count of loops, less one).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let server = sockmux_responder::Loops::new(3).start(|_| Ok::<_, std::io::Error>(()))?;
    /// let indexes: Vec<usize> = server.handles().iter().map(|h| h.index()).collect();
    /// assert_eq!(indexes, [0, 1, 2]);
    /// # server.stop(Duration::ZERO);
    /// # let _: Vec<()> = server.join()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[must_use]
    pub fn index(&self) -> usize {
        self.index
    }

    /// Sends the loop `message` and wakes it; never blocks.
    ///
    /// # Errors
    ///
    /// `BrokenPipe` when the loop has ended (the message is dropped); the
    /// OS error from waking it.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let server = sockmux_responder::Loops::new(1).messages().start(|setup| {
    ///     setup.on_message(|n: u8, last: &mut u8, _| *last = n);
    ///     Ok(0)
    /// })?;
    /// let handle = server.handles()[0].clone();
    /// handle.send(7)?;
    /// server.stop(Duration::from_secs(5));
    /// assert_eq!(server.join()?, [7]);
    /// assert!(handle.send(8).is_err(), "the loop has ended");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn send(&self, message: M) -> io::Result<()> {
        self.tx.send(Mail::Message(message))
    }
}

/// Per loop: connections open and connections and messages handled, for
/// the hand-off's choice and for [`Server`]'s counts.
#[derive(Debug)]
struct Loads {
    open: Box<[AtomicUsize]>,
    accepted: Box<[AtomicU64]>,
    handled: Box<[AtomicU64]>,
    /// Where the hand-off starts looking for the least-loaded loop, so that
    /// ties go round.
    next: AtomicUsize,
}

impl Loads {
    fn new(count: usize) -> Loads {
        Loads {
            open: (0..count).map(|_| AtomicUsize::new(0)).collect(),
            accepted: (0..count).map(|_| AtomicU64::new(0)).collect(),
            handled: (0..count).map(|_| AtomicU64::new(0)).collect(),
            next: AtomicUsize::new(0),
        }
    }

    /// Counts a connection for loop `index`; the [`Load`] uncounts it when
    /// dropped.
    fn enter(self: &Arc<Loads>, index: usize) -> Load {
        self.open[index].fetch_add(1, Ordering::Relaxed);
        self.accepted[index].fetch_add(1, Ordering::Relaxed);
        Load {
            loads: Arc::clone(self),
            index,
        }
    }

    /// The loop with the fewest open connections, among `alive`; ties go
    /// to each in turn.
    fn least_loaded(&self, alive: &[bool]) -> Option<usize> {
        let count = self.open.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed) % count;
        (0..count)
            .map(|i| (start + i) % count)
            .filter(|&i| alive[i])
            .min_by_key(|&i| self.open[i].load(Ordering::Relaxed))
    }
}

/// One open connection of a loop, counted while it lives.
struct Load {
    loads: Arc<Loads>,
    index: usize,
}

impl Drop for Load {
    fn drop(&mut self) {
        self.loads.open[self.index].fetch_sub(1, Ordering::Relaxed);
    }
}

/// A connection's responder with its place in its loop's load: the
/// connection is uncounted when the responder is dropped (after `closed`).
struct Counted<S> {
    inner: Box<dyn Responder<S>>,
    _load: Load,
}

impl<S> Responder<S> for Counted<S> {
    fn ready(&mut self, event: Event, cx: &mut Context<'_, S>) -> Action {
        self.inner.ready(event, cx)
    }
    fn registered(&mut self, cx: &mut Context<'_, S>) -> Action {
        self.inner.registered(cx)
    }
    fn timer(&mut self, id: TimerId, cx: &mut Context<'_, S>) -> Action {
        self.inner.timer(id, cx)
    }
    fn notified(&mut self, cx: &mut Context<'_, S>) -> Action {
        self.inner.notified(cx)
    }
    fn stop(&mut self, cx: &mut Context<'_, S>) -> Action {
        self.inner.stop(cx)
    }
    fn closed(&mut self, cx: &mut Context<'_, S>) {
        self.inner.closed(cx);
    }
}

/// What makes a connection's responder, as given to
/// [`Setup::on_connection`].
type Make<S> = Box<dyn FnMut(Token, &mut Context<'_, S>) -> Box<dyn Responder<S>>>;

/// A loop's message handler, as given to [`Setup::on_message`].
type OnMessage<S, M> = Box<dyn FnMut(M, &mut S, &mut Registry<'_, S>)>;

/// What a loop's setup function gets, on the loop's own thread: the
/// loop's place among the others, their [`Handle`]s, and its table, to
/// register sockets and handlers before the state exists.
///
/// # Examples
///
/// Each loop keeps the handles of the others in its state, to tell them
/// things later from its handlers:
///
/// ```
/// use sockmux_responder::{Handle, Loops};
/// use std::time::Duration;
///
/// struct State { me: usize, others: Vec<Handle<String>> }
///
/// let server = Loops::new(3).messages::<String>().start(|setup| {
///     let me = setup.index();
///     let others = setup.handles().iter().filter(|h| h.index() != me).cloned().collect();
///     Ok(State { me, others })
/// })?;
/// server.stop(Duration::from_secs(5));
/// for state in server.join()? {
///     assert_eq!(state.others.len(), 2);
///     assert!(state.others.iter().all(|h| h.index() != state.me));
/// }
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Setup<'a, S, M> {
    index: usize,
    handles: &'a [Handle<M>],
    core: &'a mut LoopState<S>,
    make: Option<Make<S>>,
    on_message: Option<OnMessage<S, M>>,
}

impl<S, M> fmt::Debug for Setup<'_, S, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Setup")
            .field("index", &self.index)
            .field("count", &self.handles.len())
            .finish_non_exhaustive()
    }
}

impl<'a, S: 'static, M> Setup<'a, S, M> {
    /// This loop's index: 0 to [`count`](Setup::count) less one. Loop 0
    /// is the one that watches signals and, with [`Spread::HandOff`],
    /// accepts.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let server = sockmux_responder::Loops::new(2).start(|setup| Ok(setup.index()))?;
    /// server.stop(Duration::ZERO);
    /// assert_eq!(server.join()?, [0, 1]);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[must_use]
    pub fn index(&self) -> usize {
        self.index
    }

    /// How many loops run.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let server = sockmux_responder::Loops::new(2).start(|setup| Ok(setup.count()))?;
    /// server.stop(Duration::ZERO);
    /// assert_eq!(server.join()?, [2, 2]);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[must_use]
    pub fn count(&self) -> usize {
        self.handles.len()
    }

    /// The handles of every loop, this one's included, in index order:
    /// clone those the loop's handlers will send to into its state.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let server = sockmux_responder::Loops::new(2).start(|setup| {
    ///     Ok(setup.handles().iter().map(|h| h.index()).collect::<Vec<usize>>())
    /// })?;
    /// server.stop(Duration::ZERO);
    /// assert_eq!(server.join()?, [[0, 1], [0, 1]]);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[must_use]
    pub fn handles(&self) -> &'a [Handle<M>] {
        self.handles
    }

    /// This loop's table, to register its own sockets (a UDP socket per
    /// loop, a timer's socket, a connection to a backend). Their
    /// `registered` hooks run when the loop starts, with the state the
    /// setup returns.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_core::Event;
    /// use sockmux_responder::{Action, Context};
    /// use std::time::Duration;
    ///
    /// let server = sockmux_responder::Loops::new(2).start(|setup| {
    ///     let t = setup.sockets().bind_udp("127.0.0.1:0",
    ///         |_: Event, _: &mut Context<'_, u16>| Action::Continue)?;
    ///     setup.sockets().local_addr(t).map(|a| a.port())
    /// })?;
    /// server.stop(Duration::from_secs(5));
    /// let ports = server.join()?;
    /// assert_ne!(ports[0], ports[1]);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn sockets(&mut self) -> Registry<'_, S> {
        Registry {
            core: &mut *self.core,
        }
    }

    /// The responder of each connection this loop serves: `make(token,
    /// cx)` is called on the loop's thread, with the connection already in
    /// the table (`cx.token` is its token; set socket options here), as an
    /// [`Acceptor`]'s factory. Needed by [`Loops::serve`].
    ///
    /// A panic in `make` closes the connection. Where the loop has a
    /// listener of its own ([`Spread::ReusePort`], or a single loop), `make`
    /// runs in the listener's [`Acceptor`], and the panic closes the
    /// listener too, as any panicking responder: with `SO_REUSEPORT` the
    /// kernel then gives its share to the other loops.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_responder::{Context, Lines, Loops, Protocol, Stream, StreamIo};
    /// use sockmux_core::Token;
    /// use std::time::Duration;
    ///
    /// /// Answers each line with its length.
    /// struct Len;
    /// impl Protocol<()> for Len {
    ///     fn frame(&mut self, line: &[u8], io: &mut StreamIo<'_, '_, ()>) {
    ///         io.write(format!("{}\n", line.len()).as_bytes());
    ///     }
    /// }
    ///
    /// let server = Loops::new(2).serve("127.0.0.1:0", |setup| {
    ///     setup.on_connection(|_: Token, _: &mut Context<'_, ()>| Stream::new(Lines::new(1024), Len));
    ///     Ok(())
    /// })?;
    /// # server.stop(Duration::ZERO);
    /// # server.join()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn on_connection<R, F>(&mut self, mut make: F)
    where
        F: FnMut(Token, &mut Context<'_, S>) -> R + 'static,
        R: Responder<S> + 'static,
    {
        self.make = Some(Box::new(move |t, cx| Box::new(make(t, cx))));
    }

    /// The handler of the messages sent to this loop through its
    /// [`Handle`]: called on the loop's thread with each message, the
    /// loop's state and its table (to write to a connection, or
    /// [`notify`](Registry::notify) one). A panic in it is logged and the
    /// loop goes on. Without a handler, messages are dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let server = sockmux_responder::Loops::new(2).messages().start(|setup| {
    ///     setup.on_message(|n: u64, total: &mut u64, sockets| {
    ///         *total += n;
    ///         assert!(sockets.is_empty(), "this loop has no socket");
    ///     });
    ///     Ok(0)
    /// })?;
    /// server.handles()[0].send(40)?;
    /// server.handles()[0].send(2)?;
    /// server.stop(Duration::from_secs(5));
    /// assert_eq!(server.join()?, [42, 0]);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn on_message(&mut self, handler: impl FnMut(M, &mut S, &mut Registry<'_, S>) + 'static) {
        self.on_message = Some(Box::new(handler));
    }
}

/// The running loops: their handles, their counts, the stop and the join.
///
/// Dropping it without [`join`](Server::join) stops every loop at once
/// (grace zero) and waits for them.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// let server = sockmux_responder::Loops::new(2).start(|_| Ok::<_, std::io::Error>(()))?;
/// assert_eq!(server.count(), 2);
/// assert_eq!(server.open(), [0, 0]);
/// server.stop(Duration::from_secs(5));
/// server.join()?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Server<S, M> {
    handles: Arc<[Handle<M>]>,
    threads: Vec<JoinHandle<io::Result<S>>>,
    loads: Arc<Loads>,
    local_addr: Option<SocketAddr>,
}

impl<S, M> fmt::Debug for Server<S, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("count", &self.handles.len())
            .field("local_addr", &self.local_addr)
            .field("open", &self.open())
            .finish_non_exhaustive()
    }
}

impl<S, M> Server<S, M> {
    /// How many loops run.
    ///
    /// # Examples
    ///
    /// ```
    /// let server = sockmux_responder::Loops::new(3).start(|_| Ok::<_, std::io::Error>(()))?;
    /// assert_eq!(server.count(), 3);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[must_use]
    pub fn count(&self) -> usize {
        self.handles.len()
    }

    /// Where the listener of [`Loops::serve`] listens (`None` after
    /// [`Loops::start`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_core::{Event, Token};
    /// use sockmux_responder::{Action, Context, Loops};
    ///
    /// let server = Loops::new(1).serve("127.0.0.1:0", |setup| {
    ///     setup.on_connection(|_: Token, _: &mut Context<'_, ()>| {
    ///         |_: Event, _: &mut Context<'_, ()>| Action::Close
    ///     });
    ///     Ok(())
    /// })?;
    /// assert_ne!(server.local_addr().expect("listening").port(), 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[must_use]
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local_addr
    }

    /// The handles of every loop, in index order: to send them messages
    /// from this thread, or to clone for other threads.
    ///
    /// # Examples
    ///
    /// ```
    /// let server = sockmux_responder::Loops::new(2).messages().start(|_| Ok(()))?;
    /// server.handles()[1].send("hello")?; // no handler: dropped
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[must_use]
    pub fn handles(&self) -> &[Handle<M>] {
        &self.handles
    }

    /// The connections of the listener open in each loop now, by index.
    ///
    /// # Examples
    ///
    /// ```
    /// let server = sockmux_responder::Loops::new(2).start(|_| Ok::<_, std::io::Error>(()))?;
    /// assert_eq!(server.open(), [0, 0]);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[must_use]
    pub fn open(&self) -> Vec<usize> {
        self.loads
            .open
            .iter()
            .map(|n| n.load(Ordering::Relaxed))
            .collect()
    }

    /// The connections of the listener each loop has been given since it
    /// started, by index: how they were spread.
    ///
    /// # Examples
    ///
    /// ```
    /// let server = sockmux_responder::Loops::new(2).start(|_| Ok::<_, std::io::Error>(()))?;
    /// assert_eq!(server.accepted(), [0, 0]);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[must_use]
    pub fn accepted(&self) -> Vec<u64> {
        self.loads
            .accepted
            .iter()
            .map(|n| n.load(Ordering::Relaxed))
            .collect()
    }

    /// The messages each loop has taken from its inbox and handled (or
    /// dropped, without a handler), by index.
    ///
    /// # Examples
    ///
    /// ```
    /// let server = sockmux_responder::Loops::new(2).start(|_| Ok::<_, std::io::Error>(()))?;
    /// assert_eq!(server.handled(), [0, 0]);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[must_use]
    pub fn handled(&self) -> Vec<u64> {
        self.loads
            .handled
            .iter()
            .map(|n| n.load(Ordering::Relaxed))
            .collect()
    }

    /// Begins a graceful stop of every loop, with `grace`, and returns at
    /// once: each loop runs its responders' `stop` hooks and ends when its
    /// table is empty or the grace is over. [`join`](Server::join) waits
    /// for them. The stop goes through each loop's inbox, so the messages
    /// sent there before it (by this thread, or by a setup, which ends
    /// before `serve` or `start` returns) are handled first.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let server = sockmux_responder::Loops::new(2).start(|_| Ok::<_, std::io::Error>(()))?;
    /// server.stop(Duration::from_secs(5));
    /// server.join()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn stop(&self, grace: Duration) {
        for handle in self.handles.iter() {
            // A loop that has ended needs no stop.
            let _ = handle.tx.send(Mail::Stop(grace));
        }
    }

    /// Waits for every loop to end and returns their states, by index.
    ///
    /// # Errors
    ///
    /// The first error of a loop that failed (its poller), or panicked
    /// outside a handler, named by its index; the others' states are
    /// dropped then.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let server = sockmux_responder::Loops::new(2).start(|setup| Ok(setup.index() * 10))?;
    /// server.stop(Duration::ZERO);
    /// assert_eq!(server.join()?, [0, 10]);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn join(mut self) -> io::Result<Vec<S>> {
        let mut states = Vec::with_capacity(self.threads.len());
        let mut first_error = None;
        for (index, thread) in std::mem::take(&mut self.threads).into_iter().enumerate() {
            match thread.join() {
                Ok(Ok(state)) => states.push(state),
                Ok(Err(e)) => {
                    first_error.get_or_insert(loop_error(index, e));
                }
                Err(payload) => {
                    first_error.get_or_insert(io::Error::other(format!(
                        "loop {index} panicked: {}",
                        panic_message(&*payload)
                    )));
                }
            }
        }
        match first_error {
            None => Ok(states),
            Some(e) => Err(e),
        }
    }
}

impl<S, M> Drop for Server<S, M> {
    fn drop(&mut self) {
        if !self.threads.is_empty() {
            self.stop(Duration::ZERO);
            join_all(std::mem::take(&mut self.threads));
        }
    }
}

/// What a loop's thread tells the starting thread: its index and how its
/// start went.
type Report<T> = (usize, io::Result<T>);

/// What a loop's thread starts with.
struct Start<M> {
    index: usize,
    /// Every loop's with [`Spread::ReusePort`], loop 0's with
    /// [`Spread::HandOff`], none without a listener.
    listener: Option<Socket>,
    spread: Spread,
    handles: mpsc::Receiver<Arc<[Handle<M>]>>,
    /// Taken to report the loop's inbox (or the error making it), once.
    up: Option<mpsc::Sender<Report<Sender<Mail<M>>>>>,
    ready: mpsc::Sender<Report<()>>,
    loads: Arc<Loads>,
    signals: Vec<Signal>,
    grace: Duration,
    capacity: usize,
}

/// A loop's state and handlers, as its setup left them.
struct Parts<S, M> {
    state: S,
    make: Option<Make<S>>,
    on_message: Option<OnMessage<S, M>>,
}

/// An error to report to the starting thread, keeping the original for
/// this one.
fn copy_of(e: &io::Error) -> io::Error {
    io::Error::new(e.kind(), e.to_string())
}

impl<M: Send + 'static> Start<M> {
    /// The loop's thread: makes its table and inbox, waits for the
    /// handles of all, runs the setup, then the loop.
    fn run<S: 'static, F>(mut self, setup: &F) -> io::Result<S>
    where
        F: Fn(&mut Setup<'_, S, M>) -> io::Result<S>,
    {
        let index = self.index;
        let made = Sockets::with_capacity(self.capacity).and_then(|sockets| {
            let mut core = LoopState::new(sockets);
            let (tx, rx) = core.sockets.channel::<Mail<M>>()?;
            Ok((core, tx, rx))
        });
        // Reported, then dropped: the starting thread counts the reports,
        // and sees a loop that died before its report as a closed channel.
        let up = self.up.take().expect("reported once");
        let (mut core, inbox) = match made {
            Ok((core, tx, rx)) => {
                let _ = up.send((index, Ok(tx)));
                (core, rx)
            }
            Err(e) => {
                let _ = up.send((index, Err(copy_of(&e))));
                return Err(e);
            }
        };
        drop(up);
        let Ok(handles) = self.handles.recv() else {
            // Another loop failed to start: nothing to run.
            return Err(io::Error::other("stopped while starting"));
        };
        let parts = match self.set_up(setup, &mut core, &handles) {
            Ok(parts) => {
                let _ = self.ready.send((index, Ok(())));
                parts
            }
            Err(e) => {
                let _ = self.ready.send((index, Err(copy_of(&e))));
                return Err(e);
            }
        };
        let mut dispatcher = Dispatcher::from_parts(core, parts.state);
        if !self.signals.is_empty() {
            // Watched already by set_up (where a failure stops the start):
            // this only tells the dispatcher to stop on them.
            dispatcher.stop_on_signals(&self.signals, self.grace)?;
        }
        let mut running = Running {
            index,
            dispatcher,
            inbox,
            handles,
            make: parts.make,
            on_message: parts.on_message,
            loads: self.loads,
            grace: self.grace,
            stopping: false,
        };
        match running.run() {
            Ok(()) => {
                debug!("loop {index}: stopped");
                Ok(running.dispatcher.into_state())
            }
            Err(e) => {
                error!("loop {index}: ended: {e}");
                Err(e)
            }
        }
    }

    /// Runs the user's setup and registers the listener.
    fn set_up<S: 'static, F>(
        &mut self,
        setup: &F,
        core: &mut LoopState<S>,
        handles: &Arc<[Handle<M>]>,
    ) -> io::Result<Parts<S, M>>
    where
        F: Fn(&mut Setup<'_, S, M>) -> io::Result<S>,
    {
        let mut given = Setup {
            index: self.index,
            handles,
            core: &mut *core,
            make: None,
            on_message: None,
        };
        let state = panic::catch_unwind(AssertUnwindSafe(|| setup(&mut given))).unwrap_or_else(
            |payload| {
                Err(io::Error::other(format!(
                    "setup panicked: {}",
                    panic_message(&*payload)
                )))
            },
        )?;
        let (make, on_message) = (given.make, given.on_message);
        if !self.signals.is_empty() {
            core.sockets.watch_signals(&self.signals)?;
        }
        let Some(listener) = self.listener.take() else {
            return Ok(Parts {
                state,
                make,
                on_message,
            });
        };
        let Some(mut make) = make else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "Loops::serve: the setup gave no on_connection",
            ));
        };
        let mut sockets = Registry { core };
        if self.spread == Spread::HandOff && handles.len() > 1 {
            let dealer = Dealer {
                handles: Arc::clone(handles),
                loads: Arc::clone(&self.loads),
                alive: vec![true; handles.len()],
            };
            let hand_off = HandOff(Acceptor::new(dealer));
            sockets.register(listener, Interest::READABLE, hand_off)?;
            return Ok(Parts {
                state,
                make: Some(make),
                on_message,
            });
        }
        // This loop's own listener: its acceptor counts each connection in.
        let (index, loads) = (self.index, Arc::clone(&self.loads));
        let acceptor = Acceptor::new(move |t: Token, cx: &mut Context<'_, S>| {
            let load = loads.enter(index);
            let listener = std::mem::replace(&mut cx.token, t);
            let inner = make(t, cx);
            cx.token = listener;
            Counted { inner, _load: load }
        });
        sockets.register(listener, Interest::READABLE, acceptor)?;
        Ok(Parts {
            state,
            make: None,
            on_message,
        })
    }
}

/// Where the hand-off sends each connection: the least-loaded loop that
/// is still running.
struct Dealer<M> {
    handles: Arc<[Handle<M>]>,
    loads: Arc<Loads>,
    /// Loops whose inbox still takes mail.
    alive: Vec<bool>,
}

impl<M> Dealer<M> {
    /// Sends `socket` to the least-loaded loop; if every loop has ended,
    /// the connection is closed.
    fn deal(&mut self, mut socket: Socket) {
        while let Some(index) = self.loads.least_loaded(&self.alive) {
            let load = self.loads.enter(index);
            match self.handles[index]
                .tx
                .try_send(Mail::Connection(socket, load))
            {
                Ok(()) => return,
                Err(
                    mpsc::TrySendError::Disconnected(Mail::Connection(back, _))
                    | mpsc::TrySendError::Full(Mail::Connection(back, _)),
                ) => {
                    debug!("loop {index} has ended: no more connections for it");
                    self.alive[index] = false;
                    socket = back;
                }
                Err(_) => return,
            }
        }
        debug!("every loop has ended: connection closed");
    }
}

/// The listener's responder with [`Spread::HandOff`]: an [`Acceptor`]
/// (its batches, its pause on errors) whose connections go to the
/// [`Dealer`] instead of this table.
struct HandOff<M>(Acceptor<Dealer<M>>);

impl<S, M> Responder<S> for HandOff<M> {
    fn ready(&mut self, event: Event, cx: &mut Context<'_, S>) -> Action {
        let Event::Read(listener) = event else {
            return Action::Continue;
        };
        self.0.accept_batch(listener, cx, |dealer, cx| {
            let socket = cx.sockets.accept_socket(listener)?;
            dealer.deal(socket);
            Ok(None)
        });
        Action::Continue
    }

    fn timer(&mut self, id: TimerId, cx: &mut Context<'_, S>) -> Action {
        self.0.timer_fired(id, cx);
        Action::Continue
    }
}

/// A loop at work: its dispatcher, its inbox, its handlers.
struct Running<S, M> {
    index: usize,
    dispatcher: Dispatcher<S>,
    inbox: Receiver<Mail<M>>,
    handles: Arc<[Handle<M>]>,
    make: Option<Make<S>>,
    on_message: Option<OnMessage<S, M>>,
    loads: Arc<Loads>,
    grace: Duration,
    /// A graceful stop is under way: the loop ends when its table is empty.
    stopping: bool,
}

impl<S: 'static, M> Running<S, M> {
    /// Turns the loop, taking its mail between turns, until a graceful
    /// stop ends.
    fn run(&mut self) -> io::Result<()> {
        loop {
            let more = self.take_mail();
            self.dispatcher.run_queued_work();
            let (core, _) = self.dispatcher.parts();
            if !self.stopping && (core.stops_begun > 0 || core.stop) {
                // Begun here (a signal, a handler): every loop stops.
                core.stop = false;
                debug!("loop {}: stopping: stopping the others", self.index);
                for handle in self.handles.iter().filter(|h| h.index != self.index) {
                    let _ = handle.tx.send(Mail::Stop(self.grace));
                }
                self.begin_stop(self.grace);
            }
            if self.stopping && self.dispatcher.parts().0.sockets.is_empty() {
                return Ok(());
            }
            let timeout = if more { Some(Duration::ZERO) } else { None };
            self.dispatcher.turn(timeout)?;
        }
    }

    fn begin_stop(&mut self, grace: Duration) {
        self.stopping = true;
        self.dispatcher.begin_stop(grace);
    }

    /// Handles what waits in the inbox, up to [`MAIL_PER_TURN`]; true if
    /// more is left.
    fn take_mail(&mut self) -> bool {
        for _ in 0..MAIL_PER_TURN {
            let Ok(mail) = self.inbox.try_recv() else {
                return false;
            };
            match mail {
                Mail::Message(message) => self.message(message),
                Mail::Connection(socket, load) => self.connection(socket, load),
                Mail::Stop(grace) => {
                    if !self.stopping {
                        debug!("loop {}: told to stop", self.index);
                        self.begin_stop(grace);
                    }
                }
            }
        }
        true
    }

    fn message(&mut self, message: M) {
        self.loads.handled[self.index].fetch_add(1, Ordering::Relaxed);
        let Some(handler) = &mut self.on_message else {
            trace!("loop {}: a message, and no handler: dropped", self.index);
            return;
        };
        let (core, state) = self.dispatcher.parts();
        let result = panic::catch_unwind(AssertUnwindSafe(|| {
            handler(message, state, &mut Registry { core });
        }));
        if let Err(payload) = result {
            error!(
                "loop {}: message handler panicked: {}",
                self.index,
                panic_message(&*payload)
            );
        }
    }

    /// Registers a connection handed off to this loop, with the responder
    /// its `on_connection` makes.
    fn connection(&mut self, socket: Socket, load: Load) {
        let Some(make) = &mut self.make else {
            debug!(
                "loop {}: a connection, and no on_connection: closed",
                self.index
            );
            return;
        };
        let (core, state) = self.dispatcher.parts();
        let token = match core
            .sockets
            .register(socket, Interest::READABLE, Default::default())
        {
            Ok(token) => token,
            Err(e) => {
                debug!("loop {}: registering a connection failed: {e}", self.index);
                return;
            }
        };
        let made = panic::catch_unwind(AssertUnwindSafe(|| {
            let mut cx = Context {
                state,
                sockets: Registry { core: &mut *core },
                token,
                own: token,
            };
            make(token, &mut cx)
        }));
        match made {
            Ok(inner) => {
                if let Err(e) = core.attach(Ok(token), Counted { inner, _load: load }) {
                    debug!("{token}: gone before its responder: {e}");
                }
            }
            Err(payload) => {
                error!(
                    "{token}: on_connection panicked: {}; closing the connection",
                    panic_message(&*payload)
                );
                let _ = core.remove(token);
            }
        }
    }
}
