//! The socket table proper: entries in a slab, named by generational
//! tokens, with their interest, mode and readiness. Its I/O calls are in
//! `io.rs`; polling, registration and timers belong to
//! [`Sockets`](crate::Sockets), which owns a table and dereferences to it.

use std::fmt;
use std::io;
use std::net::SocketAddr;

use log::{debug, trace};
use slab::Slab;

use crate::ready::Ready;
use crate::{Interest, Mode, Socket, Token};

/// [`Entry::state`]: a TCP connect not yet completed or failed.
pub(crate) const CONNECTING: u8 = 1;
/// [`Entry::state`]: the end of the stream was read. A later read-closed
/// report repeats it (epoll's edges carry every ready bit, and mio on
/// Windows may report the FIN again) and raises no `Read`.
pub(crate) const EOF: u8 = 2;

/// One socket in the table.
pub(crate) struct Entry<D> {
    pub(crate) socket: Socket,
    pub(crate) data: D,
    pub(crate) generation: u32,
    pub(crate) interest: Interest,
    pub(crate) mode: Mode,
    /// READABLE / WRITABLE as the table believes them; READ_CLOSED sticks
    /// until the end of the stream has been read. On Windows, WRITE_CLOSED
    /// sticks once a reset has been reported.
    pub(crate) ready: Ready,
    /// Kinds already delivered in a round that the event buffer cut short.
    pub(crate) skip: Ready,
    /// In the ready queue when equal to the queue's `epoch` (see [`Queue`]).
    pub(crate) queued: u64,
    /// Queued, and counted in [`Queue::drained`]: I/O left it with nothing
    /// to report. Meaningful only while queued.
    pub(crate) drained: bool,
    /// [`CONNECTING`] and [`EOF`], in one byte so that the OS report of an
    /// established socket is told from the rare cases with one test.
    pub(crate) state: u8,
    pub(crate) error: Option<io::Error>,
    /// `error` not yet reported as an `Error` event.
    pub(crate) error_new: bool,
    /// What the table counts for this socket (feature `stats`).
    #[cfg(feature = "stats")]
    pub(crate) stats: crate::stats::EntryStats,
    /// What reads did since the last `Read` event (debug builds).
    #[cfg(debug_assertions)]
    pub(crate) probe: crate::misuse::Probe,
}

impl<D> Entry<D> {
    #[inline]
    pub(crate) fn token(&self, key: usize) -> Token {
        // Keys are checked to fit in u32 at insertion.
        Token::new(key as u32, self.generation)
    }

    /// The kinds of event this entry would raise now. Bit operations only:
    /// it runs several times per event.
    #[inline]
    pub(crate) fn reportable(&self) -> Ready {
        // from_interest has only READABLE/WRITABLE bits: READ_CLOSED drops.
        let io = self.ready & Ready::from_interest(self.interest);
        if self.error_new {
            io | Ready::ERROR
        } else {
            io
        }
    }

    /// The error the table keeps, else the socket's pending OS error.
    pub(crate) fn take_error(&mut self) -> io::Result<Option<io::Error>> {
        self.error_new = false;
        match self.error.take() {
            Some(e) => Ok(Some(e)),
            None => self.socket.take_os_error(),
        }
    }

    pub(crate) fn set_error(&mut self, token: Token, error: io::Error) {
        debug!("{token}: error: {error}");
        self.error = Some(error);
        self.error_new = true;
    }
}

/// The sockets of a loop, their state and their I/O: every call that names
/// a socket by its [`Token`] (queries, interest, mode, errors, reads and
/// writes), and nothing that adds sockets, removes them or polls.
///
/// One type for both crates: [`Sockets`](crate::Sockets), the core loop,
/// dereferences to its table, and so does the responder crate's registry,
/// so every call here means the same thing wherever it is made. `D` is the
/// per-socket data of whoever owns the table (see
/// [`Sockets::data`](crate::Sockets::data)).
///
/// # Examples
///
/// ```
/// use sockmux_core::{Sockets, Table, Token};
///
/// // A helper that needs the sockets' I/O, not the loop.
/// fn greet(table: &mut Table, t: Token) -> std::io::Result<usize> {
///     table.send(t, b"hello")
/// }
///
/// let mut sockets = Sockets::new()?;
/// let server = sockets.bind_udp("127.0.0.1:0")?;
/// let client = sockets.connect_udp(sockets.local_addr(server)?)?;
/// assert_eq!(greet(&mut sockets, client)?, 5);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Table<D = ()> {
    pub(crate) slab: Slab<Entry<D>>,
    /// Generation of every slot ever used, indexed by key.
    pub(crate) generations: Vec<u32>,
    /// Sockets that may have readiness left to report (O(ready) polling),
    /// in delivery order.
    pub(crate) queue: Queue,
    /// Fault plan, recorder and replay (the `faults` feature).
    #[cfg(feature = "faults")]
    pub(crate) hooks: crate::hooks::Hooks,
}

/// The ready queue: sockets that may have readiness left to report, in
/// delivery order. A socket stays in it after its events are delivered,
/// until a poll finds it has nothing left to report.
///
/// An entry is queued when its `queued` stamp equals `epoch`, so that the
/// whole queue is emptied in O(1) by bumping the epoch. That is what a
/// poll does when every token left is known to be droppable: `drained`
/// counts the queued entries that an I/O call left with nothing to report
/// (a lower bound of the droppable tokens, stale ones aside), and when it
/// equals the queue's length no token needs looking up again.
pub(crate) struct Queue {
    pub(crate) tokens: Vec<Token>,
    /// Starts at 1: a stamp of 0 is never queued.
    pub(crate) epoch: u64,
    /// Tokens of queued entries marked `drained`: each has nothing to
    /// report (any change that could make it reportable goes through
    /// [`enqueue`], which unmarks it).
    pub(crate) drained: usize,
}

impl Queue {
    /// Whether `entry` is in the queue.
    #[inline]
    pub(crate) fn contains<D>(&self, entry: &Entry<D>) -> bool {
        entry.queued == self.epoch
    }

    /// Appends an entry that is not queued.
    #[inline]
    pub(crate) fn push<D>(&mut self, entry: &mut Entry<D>, token: Token) {
        entry.queued = self.epoch;
        entry.drained = false;
        // A socket cut short by a full buffer in an earlier turn starts afresh.
        entry.skip = Ready::EMPTY;
        self.tokens.push(token);
    }

    /// Called after an I/O call cleared readiness: counts a queued entry
    /// left with nothing to report, so that the next poll may drop it
    /// without looking it up.
    #[inline]
    pub(crate) fn note_cleared<D>(&mut self, entry: &mut Entry<D>) {
        if self.contains(entry) && !entry.drained && entry.reportable().is_empty() {
            entry.drained = true;
            self.drained += 1;
        }
    }

    /// Empties the queue in O(1) when every token in it is known to be
    /// droppable; says whether it did.
    #[inline]
    pub(crate) fn clear_if_drained(&mut self) -> bool {
        if self.drained != self.tokens.len() {
            return false;
        }
        self.tokens.clear();
        self.epoch += 1;
        self.drained = 0;
        true
    }
}

impl<D> Table<D> {
    pub(crate) fn with_capacity(capacity: usize) -> Table<D> {
        Table {
            slab: Slab::with_capacity(capacity),
            generations: Vec::with_capacity(capacity),
            queue: Queue {
                tokens: Vec::with_capacity(capacity.max(64)),
                epoch: 1,
                drained: 0,
            },
            #[cfg(feature = "faults")]
            hooks: None,
        }
    }

    /// Adds an entry for a registered socket: `register` is called with the
    /// socket and its slab key before the entry exists, and its failure
    /// leaves the table as it was (the socket is dropped, so closed).
    pub(crate) fn insert(
        &mut self,
        socket: Socket,
        interest: Interest,
        data: D,
        register: impl FnOnce(&mut Socket, usize) -> io::Result<()>,
    ) -> io::Result<Token> {
        let vacant = self.slab.vacant_entry();
        let key = vacant.key();
        let key32 = u32::try_from(key)
            .map_err(|_| io::Error::new(io::ErrorKind::OutOfMemory, "the socket table is full"))?;
        if self.generations.len() <= key {
            self.generations.resize(key + 1, 0);
        }
        let generation = self.generations[key];
        let (mut socket, connecting) = socket.into_entry();
        register(&mut socket, key)?;
        let token = Token::new(key32, generation);
        debug!("{token}: register {} {interest:?}", socket.kind());
        let state = if connecting { CONNECTING } else { 0 };
        vacant.insert(Entry {
            socket,
            data,
            generation,
            interest,
            mode: Mode::Level,
            ready: Ready::EMPTY,
            skip: Ready::EMPTY,
            queued: 0,
            drained: false,
            state,
            error: None,
            error_new: false,
            #[cfg(feature = "stats")]
            stats: crate::stats::EntryStats::new(),
            #[cfg(debug_assertions)]
            probe: crate::misuse::Probe::default(),
        });
        Ok(token)
    }

    /// Takes an entry out and makes its token stale.
    pub(crate) fn remove(&mut self, token: Token) -> io::Result<Entry<D>> {
        self.entry(token)?;
        let entry = self.slab.remove(token.key());
        let generation = &mut self.generations[token.key()];
        *generation = generation.wrapping_add(1);
        Ok(entry)
    }

    /// Whether `token` names a socket in the table (it is not stale).
    ///
    /// # Examples
    ///
    /// ```
    /// let mut sockets = sockmux_core::Sockets::new()?;
    /// let t = sockets.bind_udp("127.0.0.1:0")?;
    /// assert!(sockets.contains(t));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[must_use]
    pub fn contains(&self, token: Token) -> bool {
        self.entry(token).is_ok()
    }

    /// How many sockets the table holds.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut sockets = sockmux_core::Sockets::new()?;
    /// sockets.bind_udp("127.0.0.1:0")?;
    /// assert_eq!(sockets.len(), 1);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[must_use]
    pub fn len(&self) -> usize {
        self.slab.len()
    }

    /// Whether the table holds no socket.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(sockmux_core::Sockets::new()?.is_empty());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.slab.is_empty()
    }

    /// The tokens of every socket in the table, in key order.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut sockets = sockmux_core::Sockets::new()?;
    /// let a = sockets.bind_udp("127.0.0.1:0")?;
    /// let b = sockets.bind_udp("127.0.0.1:0")?;
    /// assert_eq!(sockets.tokens().collect::<Vec<_>>(), [a, b]);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn tokens(&self) -> impl Iterator<Item = Token> + '_ {
        self.slab.iter().map(|(key, entry)| entry.token(key))
    }

    // Inlined by hand: called from `io.rs` and `poll.rs` on every event;
    // across modules rustc does not inline it by itself.
    #[inline]
    pub(crate) fn entry(&self, token: Token) -> io::Result<&Entry<D>> {
        match self.slab.get(token.key()) {
            Some(entry) if entry.generation == token.generation() => Ok(entry),
            _ => Err(stale(token)),
        }
    }

    /// [`entry_mut`](Table::entry_mut) and the ready queue, for I/O calls
    /// that clear readiness.
    #[inline(always)]
    pub(crate) fn entry_and_queue(
        &mut self,
        token: Token,
    ) -> io::Result<(&mut Entry<D>, &mut Queue)> {
        match self.slab.get_mut(token.key()) {
            Some(entry) if entry.generation == token.generation() => Ok((entry, &mut self.queue)),
            _ => Err(stale(token)),
        }
    }

    #[inline]
    pub(crate) fn entry_mut(&mut self, token: Token) -> io::Result<&mut Entry<D>> {
        match self.slab.get_mut(token.key()) {
            Some(entry) if entry.generation == token.generation() => Ok(entry),
            _ => Err(stale(token)),
        }
    }

    /// The socket behind a token, for queries and socket options.
    ///
    /// # Errors
    ///
    /// `NotFound` for a stale or unknown token.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut sockets = sockmux_core::Sockets::new()?;
    /// let t = sockets.bind_udp("127.0.0.1:0")?;
    /// assert_eq!(sockets.socket(t)?.kind(), "UDP socket");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn socket(&self, token: Token) -> io::Result<&Socket> {
        Ok(&self.entry(token)?.socket)
    }

    /// The local address of an Internet socket (for guards such as "the
    /// socket on port 9876", as in the sketch).
    ///
    /// # Errors
    ///
    /// `NotFound` for a stale token; `InvalidInput` for a Unix socket; the
    /// OS error otherwise.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut sockets = sockmux_core::Sockets::new()?;
    /// let t = sockets.bind_udp("127.0.0.1:0")?;
    /// assert!(sockets.local_addr(t)?.ip().is_loopback());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn local_addr(&self, token: Token) -> io::Result<SocketAddr> {
        self.entry(token)?.socket.local_addr()
    }

    /// The peer address of a connected TCP stream or UDP socket.
    ///
    /// # Errors
    ///
    /// `NotFound` for a stale token; `InvalidInput` for a socket kind with no
    /// Internet peer; `NotConnected` when there is none.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut sockets = sockmux_core::Sockets::new()?;
    /// let server = sockets.bind_udp("127.0.0.1:0")?;
    /// let addr = sockets.local_addr(server)?;
    /// let client = sockets.connect_udp(addr)?;
    /// assert_eq!(sockets.peer_addr(client)?, addr);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn peer_addr(&self, token: Token) -> io::Result<SocketAddr> {
        self.entry(token)?.socket.peer_addr()
    }

    /// The interest of a socket.
    ///
    /// # Errors
    ///
    /// `NotFound` for a stale or unknown token.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_core::Interest;
    /// let mut sockets = sockmux_core::Sockets::new()?;
    /// let t = sockets.bind_udp("127.0.0.1:0")?;
    /// assert_eq!(sockets.interest(t)?, Interest::READABLE);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn interest(&self, token: Token) -> io::Result<Interest> {
        Ok(self.entry(token)?.interest)
    }

    /// Changes which events a socket raises. No system call: readiness the
    /// table already knows of is reported by the next poll when the new
    /// interest covers it.
    ///
    /// # Errors
    ///
    /// `NotFound` for a stale or unknown token.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_core::{Event, Events, Interest, Sockets};
    /// use std::time::Duration;
    ///
    /// let mut sockets = Sockets::new()?;
    /// let t = sockets.bind_udp("127.0.0.1:0")?;
    /// sockets.set_interest(t, Interest::WRITABLE)?; // "I have data to send"
    /// let mut events = Events::with_capacity(4);
    /// sockets.poll(&mut events, Some(Duration::from_secs(5)))?;
    /// assert_eq!(events.iter().next(), Some(Event::Write(t)));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_interest(&mut self, token: Token, interest: Interest) -> io::Result<()> {
        let entry = self.entry_mut(token)?;
        entry.interest = interest;
        trace!("{token}: interest {interest:?}");
        self.enqueue(token);
        Ok(())
    }

    /// The readiness mode of a socket.
    ///
    /// # Errors
    ///
    /// `NotFound` for a stale or unknown token.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut sockets = sockmux_core::Sockets::new()?;
    /// let t = sockets.bind_udp("127.0.0.1:0")?;
    /// assert_eq!(sockets.mode(t)?, sockmux_core::Mode::Level);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn mode(&self, token: Token) -> io::Result<Mode> {
        Ok(self.entry(token)?.mode)
    }

    /// Switches a socket between level (default) and edge reporting.
    ///
    /// # Errors
    ///
    /// `NotFound` for a stale or unknown token.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_core::Mode;
    /// let mut sockets = sockmux_core::Sockets::new()?;
    /// let t = sockets.bind_udp("127.0.0.1:0")?;
    /// sockets.set_mode(t, Mode::Edge)?;
    /// assert_eq!(sockets.mode(t)?, Mode::Edge);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_mode(&mut self, token: Token, mode: Mode) -> io::Result<()> {
        self.entry_mut(token)?.mode = mode;
        Ok(())
    }

    /// Hands back the error behind an `Error` event, or else the socket's
    /// pending OS error (`SO_ERROR`); `None` when there is none.
    ///
    /// # Errors
    ///
    /// `NotFound` for a stale or unknown token; the OS error from asking.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut sockets = sockmux_core::Sockets::new()?;
    /// let t = sockets.bind_udp("127.0.0.1:0")?;
    /// assert!(sockets.take_error(t)?.is_none());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn take_error(&mut self, token: Token) -> io::Result<Option<io::Error>> {
        self.entry_mut(token)?.take_error()
    }

    pub(crate) fn enqueue(&mut self, token: Token) {
        if let Some(entry) = self.slab.get_mut(token.key()) {
            enqueue(&mut self.queue, entry, token);
        }
    }
}

impl<D> fmt::Debug for Table<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Table")
            .field("len", &self.slab.len())
            .field("queued", &self.queue.tokens.len())
            .finish_non_exhaustive()
    }
}

/// Queues an entry that has something to report and is not queued yet;
/// a queued one that has something to report again is no longer drained.
#[inline]
pub(crate) fn enqueue<D>(queue: &mut Queue, entry: &mut Entry<D>, token: Token) {
    if entry.reportable().is_empty() {
        return;
    }
    if !queue.contains(entry) {
        queue.push(entry, token);
    } else if entry.drained {
        entry.drained = false;
        queue.drained -= 1;
    }
}

fn stale(token: Token) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("token {token} is stale or unknown: its socket was removed"),
    )
}
