//! The server on several loops (`kv --threads N`, N > 1), shared-nothing:
//! each loop owns one shard of the keys, a [`Store`] of its own, and a key
//! belongs to shard `fnv1a(key) % N` (a fixed hash, with no seed, so every
//! loop agrees). A connection's [`ShardConn`] runs a command on its own
//! loop's shard at once when its keys are all there (or it has none:
//! `PING`, `ECHO`, ...); otherwise it queues the command's bytes for the
//! loop that owns them, and the commands one event queued for a loop go
//! to it together once the event is handled ([`Msg::Run`], through
//! [`Handle::send`]). That loop runs them against its shard and sends the
//! replies' bytes back together ([`Msg::Replies`]). Each reply is parked
//! in the loop's state under its connection's token, and the connection
//! is notified ([`Registry::notify`]): its `notified` hook puts the reply
//! in its slot. Replies go out strictly in the order of the commands:
//! each connection keeps a queue of reply slots, and a reply ready behind
//! one awaited waits its turn (with nothing awaited, it is written at
//! once, as with one loop).
//!
//! A command on keys of several shards is split: `MGET` into a `GET` per
//! key, `MSET` into a `SET` per pair, `DEL` and `EXISTS` into one per key,
//! each run by its key's shard; the parts' replies are combined (`MGET`:
//! the values in the keys' order; `MSET`: `+OK`; `DEL`, `EXISTS`: the sum).
//! `DBSIZE`, `FLUSHDB` and `FLUSHALL` run on every shard (the sum, `+OK`).
//! Such a split command is not atomic: another connection may see some of
//! its keys set and not others.
//!
//! A connection has at most [`MAX_IN_FLIGHT`] replies queued; past that it
//! stops reading ([`StreamIo::pause_reading`]) until replies go out. Each
//! loop sweeps the expired keys of its own shard every [`SWEEP`]. A reply
//! for a connection that closed meanwhile is dropped; a command for a loop
//! that has ended (at the stop) gets an error reply.

// Included by `#[path]` from the tests, which use parts of it.
#![allow(dead_code)]

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::{ToSocketAddrs, UdpSocket};
use std::rc::Rc;
use std::time::{Duration, Instant};

use log::{debug, info};
use sockmux::{
    Action, CloseReason, Context, Event, Handle, Interest, Loops, Protocol, Registry, Responder,
    Setup, Signal, Stream, StreamIo, TimerId, Token,
};

use crate::conn::{self, SWEEP};
use crate::resp::{self, Args, Index, Resp};
use crate::store::{execute, Flow, Store};

/// Replies a connection may have queued (awaited or waiting their turn)
/// before it stops reading.
pub(crate) const MAX_IN_FLIGHT: usize = 1024;

/// What the loops send each other: batches, one per loop and per event
/// at most (the commands one read of a connection forwards to a loop go
/// together, and so do their replies).
#[derive(Debug)]
pub(crate) enum Msg {
    /// Run each command on your shard and send the replies to loop `from`.
    Run { from: usize, runs: Vec<Run> },
    /// The replies to a [`Msg::Run`]'s commands.
    Replies(Vec<Reply>),
}

/// A command forwarded: `command` (a frame of [`Resp`]) for connection
/// `token`'s reply `seq`, part `part`.
#[derive(Debug)]
pub(crate) struct Run {
    token: Token,
    seq: u64,
    part: u32,
    command: Vec<u8>,
}

/// The reply to a [`Run`].
#[derive(Debug)]
pub(crate) struct Reply {
    token: Token,
    seq: u64,
    part: u32,
    reply: Vec<u8>,
}

/// The state of one loop: its shard, its place, the other loops, the
/// commands to forward at the end of the event, and the replies come back
/// for its connections and not taken yet.
#[derive(Debug)]
pub(crate) struct Shard {
    pub(crate) store: Store,
    me: usize,
    handles: Vec<Handle<Msg>>,
    /// Per loop, the commands to send it.
    outbox: Vec<Vec<Run>>,
    /// The socket whose `notified` hook sends the outboxes ([`Sweeper`]).
    flusher: Option<Token>,
    /// A send of the outboxes is due.
    flush_due: bool,
    arrived: HashMap<Token, Vec<Reply>>,
}

impl Shard {
    /// The shard of loop `me` of `handles.len()`.
    pub(crate) fn new(me: usize, handles: Vec<Handle<Msg>>) -> Shard {
        Shard {
            store: Store::new(),
            me,
            outbox: handles.iter().map(|_| Vec::new()).collect(),
            handles,
            flusher: None,
            flush_due: false,
            arrived: HashMap::new(),
        }
    }

    /// How many shards there are.
    fn count(&self) -> usize {
        self.handles.len()
    }

    /// Queues `run` for loop `to`; the outboxes are sent once the event
    /// under way is handled (by the flusher's `notified` hook, which the
    /// dispatcher runs then), or at once if there is no flusher (at the
    /// stop).
    fn forward(&mut self, to: usize, run: Run, sockets: &mut Registry<'_, Shard>) {
        self.outbox[to].push(run);
        if !self.flush_due {
            self.flush_due = true;
            let notified = self.flusher.is_some_and(|t| sockets.notify(t).is_ok());
            if !notified {
                self.flush(sockets);
            }
        }
    }

    /// A part of a command's reply: run here (`args`) if loop `to` is this
    /// one, else forwarded there (`forward` makes it) and awaited (`None`).
    fn part(
        &mut self,
        to: usize,
        args: Args<'_>,
        forward: impl FnOnce() -> Run,
        sockets: &mut Registry<'_, Shard>,
    ) -> Option<Vec<u8>> {
        if to == self.me {
            let mut reply = Vec::new();
            // Only commands with keys come here: never `QUIT`.
            let _ = execute(&mut self.store, args, &mut reply);
            Some(reply)
        } else {
            self.forward(to, forward(), sockets);
            None
        }
    }

    /// Sends each loop its outbox. The commands for a loop that has ended
    /// get an error reply.
    fn flush(&mut self, sockets: &mut Registry<'_, Shard>) {
        self.flush_due = false;
        for to in 0..self.outbox.len() {
            if self.outbox[to].is_empty() {
                continue;
            }
            let runs = std::mem::take(&mut self.outbox[to]);
            let sent: Vec<(Token, u64, u32)> =
                runs.iter().map(|r| (r.token, r.seq, r.part)).collect();
            let msg = Msg::Run {
                from: self.me,
                runs,
            };
            if let Err(e) = self.handles[to].send(msg) {
                debug!("loop {to}: {e}");
                for (token, seq, part) in sent {
                    let mut reply = Vec::new();
                    resp::error(&mut reply, "ERR the shard's loop has stopped");
                    self.arrive(
                        Reply {
                            token,
                            seq,
                            part,
                            reply,
                        },
                        sockets,
                    );
                }
            }
        }
    }

    /// Parks `reply` for its connection and notifies it; drops it if the
    /// connection closed meanwhile (its token is gone: tokens are not
    /// reused as they were).
    fn arrive(&mut self, reply: Reply, sockets: &mut Registry<'_, Shard>) {
        if sockets.notify(reply.token).is_ok() {
            self.arrived.entry(reply.token).or_default().push(reply);
        }
    }

    /// Acts on a message from another loop.
    fn message(&mut self, msg: Msg, sockets: &mut Registry<'_, Shard>) {
        match msg {
            Msg::Run { from, runs } => {
                let replies = runs
                    .into_iter()
                    .map(|run| {
                        let mut reply = Vec::new();
                        // Only commands with keys are sent here: never `QUIT`.
                        let _ = execute(&mut self.store, Args::new(&run.command), &mut reply);
                        Reply {
                            token: run.token,
                            seq: run.seq,
                            part: run.part,
                            reply,
                        }
                    })
                    .collect();
                if let Err(e) = self.handles[from].send(Msg::Replies(replies)) {
                    debug!("loop {from}: {e}; replies dropped");
                }
            }
            Msg::Replies(replies) => {
                for reply in replies {
                    self.arrive(reply, sockets);
                }
            }
        }
    }
}

/// FNV-1a, 64 bits: a fixed hash of a key, the same in every loop and
/// every run.
pub(crate) fn fnv1a(key: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in key {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// The shard of `key` among `count`.
pub(crate) fn shard_of(key: &[u8], count: usize) -> usize {
    (fnv1a(key) % count as u64) as usize
}

/// Where a command runs.
#[derive(Debug, PartialEq, Eq)]
enum Route {
    /// Here: no key, or its keys are in this shard (or the arguments are
    /// wrong, which this shard answers as any would).
    Local,
    /// On one other shard.
    Remote(usize),
    /// On every shard, the replies combined.
    All(Combine),
    /// Split into one command per key (per pair, `step` 2), each on its
    /// key's shard.
    Split {
        name: &'static [u8],
        step: usize,
        combine: Combine,
    },
}

/// How the replies of a command's parts make its reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Combine {
    /// One part, as it is.
    One,
    /// Integers, summed.
    Sum,
    /// `+OK`s: `+OK`.
    Ok,
    /// An array of the parts, in order.
    Array,
}

/// Commands whose one key is their first argument.
const ONE_KEY: &[&str] = &[
    "get", "set", "incr", "decr", "incrby", "decrby", "expire", "pexpire", "ttl", "pttl", "persist",
];

/// Where the command `args` runs, for loop `me` of `count`.
fn route(args: &Args<'_>, me: usize, count: usize) -> Route {
    let argc = args.len();
    let mut it = args.clone();
    let Some(name) = it.next() else {
        return Route::Local;
    };
    let is = |n: &str| name.eq_ignore_ascii_case(n.as_bytes());
    let here_or = |shard: usize| {
        if shard == me {
            Route::Local
        } else {
            Route::Remote(shard)
        }
    };
    if ONE_KEY.iter().any(|n| is(n)) {
        return match it.next() {
            Some(key) => here_or(shard_of(key, count)),
            None => Route::Local,
        };
    }
    if is("dbsize") {
        return Route::All(Combine::Sum);
    }
    if is("flushdb") || is("flushall") {
        return Route::All(Combine::Ok);
    }
    let (split, step, combine, keys_ok): (&'static [u8], usize, Combine, bool) = if is("mget") {
        (b"GET", 1, Combine::Array, argc >= 2)
    } else if is("del") {
        (b"DEL", 1, Combine::Sum, argc >= 2)
    } else if is("exists") {
        (b"EXISTS", 1, Combine::Sum, argc >= 2)
    } else if is("mset") {
        (b"SET", 2, Combine::Ok, argc >= 3 && (argc - 1) % 2 == 0)
    } else {
        return Route::Local;
    };
    if !keys_ok {
        return Route::Local; // the arity error, from here
    }
    // One shard for every key: the command as it is, there.
    let mut shards = it.step_by(step).map(|key| shard_of(key, count));
    let first = shards.next().unwrap_or(me);
    if shards.all(|s| s == first) {
        return here_or(first);
    }
    Route::Split {
        name: split,
        step,
        combine,
    }
}

/// A reply slot of a connection: the parts of a command's reply, some
/// maybe still awaited.
#[derive(Debug)]
struct Slot {
    parts: Vec<Option<Vec<u8>>>,
    missing: usize,
    combine: Combine,
    /// `QUIT`: close once this reply is written.
    close: bool,
}

impl Slot {
    /// A slot of `parts` (`None`: awaited), to combine as `combine`.
    fn new(parts: Vec<Option<Vec<u8>>>, combine: Combine) -> Slot {
        Slot {
            missing: parts.iter().filter(|p| p.is_none()).count(),
            parts,
            combine,
            close: false,
        }
    }

    /// Writes the combined reply to `out`.
    fn combine(self, out: &mut Vec<u8>) {
        let len = self.parts.len();
        let parts = self.parts.into_iter().map(Option::unwrap_or_default);
        match self.combine {
            Combine::One => parts.for_each(|p| out.extend_from_slice(&p)),
            Combine::Array => {
                resp::array(out, len);
                parts.for_each(|p| out.extend_from_slice(&p));
            }
            Combine::Sum | Combine::Ok => {
                let mut sum = 0i64;
                for p in parts {
                    if p.first() != Some(&b':') && p.first() != Some(&b'+') {
                        // An error (or anything unexpected): the first.
                        out.extend_from_slice(&p);
                        return;
                    }
                    if p.first() == Some(&b':') {
                        let digits = p.get(1..p.len().saturating_sub(2)).unwrap_or_default();
                        sum = sum.saturating_add(resp::parse_int(digits).unwrap_or(0));
                    }
                }
                if self.combine == Combine::Sum {
                    resp::integer(out, sum);
                } else {
                    resp::ok(out);
                }
            }
        }
    }
}

/// One connection of a multi-loop server.
#[derive(Debug)]
pub(crate) struct ShardConn {
    /// Where the decoder found each command's arguments.
    index: Rc<RefCell<Index>>,
    /// The replies not written yet, oldest first.
    queue: VecDeque<Slot>,
    /// The sequence number of `queue`'s first slot.
    first: u64,
    /// A buffer for a command's bytes, kept between commands.
    scratch: Vec<u8>,
    /// The peer ended its stream with replies still awaited: close once
    /// they are written.
    peer_done: bool,
}

impl ShardConn {
    /// A connection whose decoder gives the places of the arguments.
    pub(crate) fn new(index: Rc<RefCell<Index>>) -> ShardConn {
        ShardConn {
            index,
            queue: VecDeque::new(),
            first: 0,
            scratch: Vec::new(),
            peer_done: false,
        }
    }

    /// Writes the replies at the front of the queue that are complete.
    fn flush(&mut self, io: &mut StreamIo<'_, '_, Shard>) {
        while self.queue.front().is_some_and(|s| s.missing == 0) {
            let slot = self.queue.pop_front().expect("a front slot");
            self.first += 1;
            let close = slot.close;
            io.write_with(|out, _| slot.combine(out));
            if close {
                io.close();
                self.queue.clear();
                return;
            }
        }
        if self.queue.len() < MAX_IN_FLIGHT {
            io.resume_reading();
        }
        if self.peer_done && self.queue.is_empty() {
            io.close();
        }
    }
}

/// Appends `args` as a multibulk command to `out`.
fn encode(out: &mut Vec<u8>, args: &[&[u8]]) {
    resp::array(out, args.len());
    for arg in args {
        resp::bulk(out, arg);
    }
}

impl Protocol<Shard> for ShardConn {
    fn frame(&mut self, frame: &[u8], io: &mut StreamIo<'_, '_, Shard>) {
        let index = self.index.borrow();
        let args = Args::indexed(frame, index.spans());
        if args.is_empty() {
            return; // an empty line or `*0`: no reply, as Redis
        }
        let (me, count) = (io.cx.state.me, io.cx.state.count());
        let route = route(&args, me, count);
        if route == Route::Local && self.queue.is_empty() {
            // Nothing awaited: the reply goes straight out.
            let flow = io.write_with(|reply, shard| execute(&mut shard.store, args, reply));
            if flow == Flow::Close {
                io.close();
            }
            return;
        }
        let token = io.token();
        let seq = self.first + self.queue.len() as u64;
        let cx = &mut *io.cx;
        let (shard, sockets) = (&mut *cx.state, &mut cx.sockets);
        let run = |part: u32, command: Vec<u8>| Run {
            token,
            seq,
            part,
            command,
        };
        let slot = match route {
            Route::Local => {
                let mut reply = Vec::new();
                let close = execute(&mut shard.store, args, &mut reply) == Flow::Close;
                Slot {
                    parts: vec![Some(reply)],
                    missing: 0,
                    combine: Combine::One,
                    close,
                }
            }
            Route::Remote(to) => Slot::new(
                vec![shard.part(to, args, || run(0, frame.to_vec()), sockets)],
                Combine::One,
            ),
            Route::All(combine) => {
                let parts = (0..count)
                    .map(|to| {
                        let forward = || run(to as u32, frame.to_vec());
                        shard.part(to, args.clone(), forward, sockets)
                    })
                    .collect();
                Slot::new(parts, combine)
            }
            Route::Split {
                name,
                step,
                combine,
            } => {
                let mut rest = args.clone();
                rest.next(); // the name
                let mut parts = Vec::new();
                let mut words: Vec<&[u8]> = Vec::with_capacity(3);
                while let Some(key) = rest.next() {
                    words.clear();
                    words.push(name);
                    words.push(key);
                    for _ in 1..step {
                        words.push(rest.next().unwrap_or_default());
                    }
                    self.scratch.clear();
                    encode(&mut self.scratch, &words);
                    let (to, part) = (shard_of(key, count), parts.len() as u32);
                    let forward = || run(part, self.scratch.clone());
                    parts.push(shard.part(to, Args::new(&self.scratch), forward, sockets));
                }
                Slot::new(parts, combine)
            }
        };
        self.queue.push_back(slot);
        drop(index);
        self.flush(io);
        if self.queue.len() >= MAX_IN_FLIGHT && !io.reading_paused() {
            debug!("{token}: {MAX_IN_FLIGHT} replies in flight; reading paused");
            io.pause_reading();
        }
    }

    /// Puts the replies come back from other loops in their slots, and
    /// writes what is ready.
    fn notified(&mut self, io: &mut StreamIo<'_, '_, Shard>) {
        let token = io.token();
        let Some(arrived) = io.cx.state.arrived.remove(&token) else {
            return;
        };
        for Reply {
            seq, part, reply, ..
        } in arrived
        {
            let at = seq.wrapping_sub(self.first) as usize;
            let Some(slot) = self.queue.get_mut(at) else {
                continue; // after a `QUIT`: nothing more is written
            };
            if let Some(p @ None) = slot.parts.get_mut(part as usize) {
                *p = Some(reply);
                slot.missing -= 1;
            }
        }
        self.flush(io);
    }

    /// The peer is done sending: close once the replies awaited, if any,
    /// are written.
    fn peer_closed(&mut self, _: &mut StreamIo<'_, '_, Shard>) -> Action {
        if self.queue.is_empty() {
            return Action::Close;
        }
        self.peer_done = true;
        Action::Continue
    }

    fn frame_error(&mut self, error: &io::Error, io: &mut StreamIo<'_, '_, Shard>) {
        // The replies awaited are dropped with the connection.
        let mut reply = Vec::new();
        conn::protocol_error(error, &mut reply);
        debug!("{}: {error}; closing", io.token());
        if !reply.is_empty() {
            io.write(&reply);
        }
    }

    fn closed(&mut self, reason: CloseReason, _: usize, cx: &mut Context<'_, Shard>) {
        cx.state.arrived.remove(&cx.token);
        debug!("{}: closed ({reason:?})", cx.token);
    }
}

/// The holder of the loop's sweep timer, and the sender of its outboxes
/// (a UDP socket that watches nothing).
#[derive(Debug)]
struct Sweeper {
    timer: Option<TimerId>,
}

impl Responder<Shard> for Sweeper {
    fn ready(&mut self, _: Event, _: &mut Context<'_, Shard>) -> Action {
        Action::Continue
    }

    fn registered(&mut self, cx: &mut Context<'_, Shard>) -> Action {
        self.timer = Some(cx.timer_every(SWEEP));
        Action::Continue
    }

    fn timer(&mut self, id: TimerId, cx: &mut Context<'_, Shard>) -> Action {
        if self.timer == Some(id) {
            let removed = cx.state.store.sweep(Instant::now());
            if removed > 0 {
                debug!("swept {removed} expired keys");
            }
        }
        Action::Continue
    }

    /// Sends the outboxes, once the event that filled them is handled.
    fn notified(&mut self, cx: &mut Context<'_, Shard>) -> Action {
        cx.state.flush(&mut cx.sockets);
        Action::Continue
    }

    fn stop(&mut self, cx: &mut Context<'_, Shard>) -> Action {
        cx.state.flusher = None; // the outboxes go at once from now on
        cx.state.flush(&mut cx.sockets);
        Action::Close
    }
}

/// Serves on `addr` with `loops` (more than one), each with a shard, and
/// calls `also` as each loop is set up (the live view, `main.rs`); returns
/// when they have stopped (on a signal).
pub(crate) fn run_loops(
    addr: impl ToSocketAddrs,
    loops: Loops,
    also: impl Fn(&mut Setup<'_, Shard, Msg>) -> io::Result<()> + Send + Sync + 'static,
    signals: &[Signal],
    grace: Duration,
) -> io::Result<()> {
    let threads = loops.count();
    let server = loops
        .messages::<Msg>()
        .capacity(1024)
        .stop_on_signals(signals, grace)
        .serve(addr, move |setup| {
            let mut shard = Shard::new(setup.index(), setup.handles().to_vec());
            let holder = UdpSocket::bind("127.0.0.1:0")?;
            holder.set_nonblocking(true)?;
            let flusher =
                setup
                    .sockets()
                    .register(holder, Interest::NONE, Sweeper { timer: None })?;
            shard.flusher = Some(flusher);
            also(setup)?;
            setup.on_connection(|t: Token, cx: &mut Context<'_, Shard>| {
                conn::no_delay(t, cx);
                debug!("{t}: connected");
                let codec = Resp::new();
                let conn = ShardConn::new(codec.index());
                Stream::new(codec, conn)
            });
            setup.on_message(|msg, shard: &mut Shard, sockets| shard.message(msg, sockets));
            Ok(shard)
        })?;
    let addr = server.local_addr().expect("serve listens");
    eprintln!("kv: listening on {addr}");
    info!("{threads} loops serving");
    let shards = server.join()?;
    let commands: u64 = shards.iter().map(|s| s.store.commands).sum();
    let keys: usize = shards.iter().map(|s| s.store.len()).sum();
    eprintln!("kv: stopped after {commands} commands, with {keys} keys ({threads} shards)");
    Ok(())
}
