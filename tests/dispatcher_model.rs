//! The dispatcher against a reference model (issue 14, item 4): proptest
//! writes programs of register / remove self / remove another / stale
//! event / panic / timer / stop, the real [`Dispatcher`] runs them on real
//! loopback UDP sockets, and a small model of what the dispatcher promises
//! follows every call it makes and checks it:
//!
//! * no event reaches a socket that did not exist when the event was
//!   raised (by the poll of the turn), or that was removed since: an event
//!   of a removed socket is dropped, never handed to the socket that
//!   reused its slot; each socket ready at the poll, and not removed
//!   before its turn came, gets its event (one, in that turn);
//! * the stale events the model predicts (events and timers of sockets
//!   removed earlier in the batch) are the ones the dispatcher drops, as
//!   counted from its `trace!` log;
//! * `registered` runs once, before anything else; `stop` once per
//!   graceful stop; `closed` exactly once per socket, before any other call
//!   is made, and before the responder is dropped (once);
//! * removing a socket answers `Ok` exactly when it is in the model's
//!   table, and the table holds what the model holds after every turn;
//! * nothing leaks: after a final graceful stop the table is empty, every
//!   responder was closed and dropped, and (Linux) the process's
//!   descriptors are back at what they were before the case.
//!
//! Every socket in the model is a UDP socket with a datagram waiting that
//! nobody reads: in level mode it is readable at every poll, so which
//! sockets the OS reports at a poll is known (all the live ones), and with
//! the default buffer of 1,024 events the batch is as large as the table.
//! One program in four runs with a buffer of 1 to 4 events instead: what
//! does not fit waits for a later turn, and the checks that need the whole
//! batch (every socket reported gets its event, due timers fire, the count
//! of stale events) become bounds. The order of a batch is the table's;
//! the model takes it as the calls come and checks each against what it
//! knows.
//!
//! One test in this binary: the descriptor count is the process's.

mod util;

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::UdpSocket;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use proptest::prelude::*;
use proptest::sample::Index;
use sockmux::{Action, Context, Dispatcher, Event, Interest, Responder, TimerId, Token};

/// A socket's name in the model: its order of registration in the case.
type Id = usize;

/// One step of a program.
#[derive(Clone, Debug)]
enum Step {
    /// The test registers a socket between turns.
    Register { linger: bool },
    /// The test removes a socket (any ever registered: a removed one's
    /// token is stale) between turns.
    Remove(Index),
    /// The picked live socket does `Act` in its next call.
    Order(Index, Act),
    /// Two live sockets: the first of them called removes the other and
    /// registers a socket that reuses its slot. Both are ready in the same
    /// batch, so the other's event is stale.
    Duel(Index, Index),
    /// One turn of the dispatcher.
    Turn,
}

/// What a socket does in its next call (`ready` or `timer`).
#[derive(Clone, Copy, Debug)]
enum Act {
    /// Returns `Action::Close`.
    CloseSelf,
    /// Removes a socket ever registered (itself, another, or one removed
    /// already: a stale token) through `cx.sockets.remove`.
    Remove(Index),
    /// Registers a new socket.
    Register { linger: bool },
    /// Panics.
    Panic,
    /// Starts one-shot timers of no delay (1 to 3): due at the next poll,
    /// where they come first in the batch, each a call of its own.
    Timers(u8),
    /// `cx.stop_gracefully(grace)`; a zero grace closes the lingerers at
    /// the end of the turn, a long one lets them close on their next event.
    StopGracefully { zero_grace: bool },
    /// `cx.stop()`: `is_stopped` from then on (turns go on).
    Stop,
}

fn act() -> impl Strategy<Value = Act> {
    prop_oneof![
        3 => Just(Act::CloseSelf),
        4 => any::<Index>().prop_map(Act::Remove),
        3 => any::<bool>().prop_map(|linger| Act::Register { linger }),
        2 => Just(Act::Panic),
        3 => (1..=3u8).prop_map(Act::Timers),
        1 => any::<bool>().prop_map(|zero_grace| Act::StopGracefully { zero_grace }),
        1 => Just(Act::Stop),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => any::<bool>().prop_map(|linger| Step::Register { linger }),
        1 => any::<Index>().prop_map(Step::Remove),
        6 => (any::<Index>(), act()).prop_map(|(i, a)| Step::Order(i, a)),
        2 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Step::Duel(a, b)),
        5 => Just(Step::Turn),
    ]
}

/// What the model knows of one live socket.
#[derive(Debug)]
struct Live {
    token: Token,
    /// The first turn whose poll may report it: the next one when it was
    /// registered between turns or during a turn.
    born: u64,
    /// Its `stop` hook answers `Continue` (it closes on its next call).
    linger: bool,
    registered: bool,
    stop_called: bool,
    /// Acts to do, one per call.
    orders: Vec<Act>,
}

/// The model, the case's record and the one sender that makes every
/// socket readable. Shared by the test and every probe.
#[derive(Debug, Default)]
struct World {
    sender: Option<UdpSocket>,
    /// The turn under way (1 for the first).
    turn: u64,
    live: BTreeMap<Id, Live>,
    /// Every socket ever registered, with its token.
    tokens: Vec<Token>,
    /// Removed sockets whose `closed` hook has not run yet.
    expect_close: BTreeSet<Id>,
    closed: BTreeMap<Id, u32>,
    dropped: BTreeMap<Id, u32>,
    /// Unresolved duels.
    duels: Vec<(Id, Id)>,
    /// Live timers: owner and the turn they were made in.
    timers: BTreeMap<TimerId, (Id, u64)>,
    /// The sockets the poll of this turn reported, and those called with
    /// `ready` in it.
    polled: BTreeSet<Id>,
    called: BTreeSet<Id>,
    /// Stale events the dispatcher should drop this turn: sockets polled
    /// and removed before their event; due timers whose owner was removed
    /// before they fired.
    stale_events: u64,
    stale_timers: u64,
    /// A graceful stop under way, and whether its grace is zero.
    stopping: Option<bool>,
    /// `cx.stop()` was called.
    stopped: bool,
    /// A turn is under way (between its poll and its end, or in its hooks).
    dispatching: bool,
    /// The final graceful stop is under way: its turns are the
    /// dispatcher's, each socket may have an event in each.
    teardown: bool,
    /// What went wrong, in words.
    violations: Vec<String>,
}

impl World {
    fn violation(&mut self, what: String) {
        let when = if self.teardown {
            "the final stop".to_string()
        } else {
            format!("turn {}", self.turn)
        };
        self.violations.push(format!("{when}: {what}"));
    }

    /// A UDP socket with a datagram waiting (it has arrived: `peek` blocks
    /// until then).
    fn readable_socket(&self) -> UdpSocket {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let sender = self.sender.as_ref().unwrap();
        sender.send_to(b"x", socket.local_addr().unwrap()).unwrap();
        socket.peek(&mut [0; 1]).unwrap();
        socket
    }

    fn add(&mut self, token: Token, linger: bool) -> Id {
        let id = self.tokens.len();
        self.tokens.push(token);
        self.live.insert(
            id,
            Live {
                token,
                born: self.turn.saturating_add(1),
                linger,
                registered: false,
                stop_called: false,
                orders: Vec::new(),
            },
        );
        id
    }

    /// The model's side of a removal (by any means): the socket leaves the
    /// table, its `closed` hook is due before the next call, and what the
    /// batch still held of it becomes stale.
    fn remove(&mut self, id: Id) {
        if self.live.remove(&id).is_none() {
            self.violation(format!("#{id} removed twice"));
            return;
        }
        self.expect_close.insert(id);
        if !self.dispatching {
            // Between turns: nothing of it is in a batch.
            self.timers.retain(|_, &mut (owner, _)| owner != id);
            return;
        }
        if self.polled.contains(&id) && !self.called.contains(&id) {
            self.stale_events += 1;
        }
        // Its timers made before this turn were due at this turn's poll (no
        // delay) and, not fired yet, are later in the batch: stale.
        let turn = self.turn;
        let mut stale = 0;
        self.timers.retain(|_, &mut (owner, made)| {
            let keep = owner != id;
            if !keep && made < turn {
                stale += 1;
            }
            keep
        });
        self.stale_timers += stale;
    }

    /// Checks common to every call but `closed`: `closed` hooks of removed
    /// sockets ran before it; the socket is live and its token is `token`.
    fn check_call(&mut self, id: Id, token: Token, what: &str) -> bool {
        if !self.expect_close.is_empty() {
            let pending = self.expect_close.clone();
            self.violation(format!("{what} of #{id} before closed of {pending:?}"));
        }
        match self.live.get(&id) {
            None => {
                self.violation(format!("{what} reached #{id}, not in the table"));
                false
            }
            Some(live) if live.token != token => {
                let want = live.token;
                self.violation(format!("{what} of #{id} with {token}, not {want}"));
                false
            }
            Some(_) => true,
        }
    }

    /// A socket picked by `index` among all ever registered.
    fn any(&self, index: Index) -> Option<Id> {
        (!self.tokens.is_empty()).then(|| index.index(self.tokens.len()))
    }

    /// A socket picked by `index` among the live ones.
    fn live_one(&self, index: Index) -> Option<Id> {
        if self.live.is_empty() {
            return None;
        }
        self.live.keys().nth(index.index(self.live.len())).copied()
    }
}

/// The one payload of the panics a program asks for: kept out of the
/// test's output by the panic hook.
const SCRIPTED: &str = "scripted panic";

/// The responder of every socket in the model.
struct Probe {
    id: Id,
    world: Rc<RefCell<World>>,
}

/// Registers a readable socket with a probe, `linger` on a graceful stop;
/// the model learns it (or the failure).
fn register_probe(
    world: &Rc<RefCell<World>>,
    sockets: &mut sockmux::Registry<'_, ()>,
    linger: bool,
) {
    let (socket, id) = {
        let world = world.borrow();
        (world.readable_socket(), world.tokens.len())
    };
    let probe = Probe {
        id,
        world: Rc::clone(world),
    };
    let token = sockets.register(socket, Interest::READABLE, probe);
    let mut world = world.borrow_mut();
    match token {
        Ok(token) => {
            world.add(token, linger);
        }
        Err(e) => world.violation(format!("registering #{id}: {e}")),
    }
}

impl Probe {
    /// The act ordered for this call (`ready` or `timer`), if any; then
    /// `Close` if the socket lingers in a graceful stop.
    fn act(&mut self, cx: &mut Context<'_, ()>) -> Action {
        let me = self.id;
        self.duel(cx);
        let mut world = self.world.borrow_mut();
        let order = world
            .live
            .get_mut(&me)
            .and_then(|l| (!l.orders.is_empty()).then(|| l.orders.remove(0)));
        let mut action = Action::Continue;
        match order {
            None => {}
            Some(Act::CloseSelf) => action = Action::Close,
            Some(Act::Remove(index)) => {
                let target = index.index(world.tokens.len());
                let token = world.tokens[target];
                let live = world.live.contains_key(&target);
                drop(world);
                let removed = cx.sockets.remove(token);
                world = self.world.borrow_mut();
                match (removed, live) {
                    (Ok(()), true) => world.remove(target),
                    (Err(e), true) => world.violation(format!("removing live #{target}: {e}")),
                    (Ok(()), false) => {
                        world.violation(format!("removing #{target}'s stale {token} succeeded"));
                    }
                    (Err(_), false) => {}
                }
            }
            Some(Act::Register { linger }) => {
                drop(world);
                register_probe(&self.world, &mut cx.sockets, linger);
                world = self.world.borrow_mut();
            }
            Some(Act::Panic) => {
                world.remove(me);
                drop(world);
                STATS.panics.fetch_add(1, Ordering::Relaxed);
                std::panic::panic_any(SCRIPTED);
            }
            Some(Act::Timers(n)) => {
                let turn = world.turn;
                for _ in 0..n {
                    let id = cx.timer_after(Duration::ZERO);
                    world.timers.insert(id, (me, turn));
                }
            }
            Some(Act::StopGracefully { zero_grace }) => {
                cx.stop_gracefully(if zero_grace {
                    Duration::ZERO
                } else {
                    util::LIMIT
                });
                if world.stopping.is_none() {
                    world.stopping = Some(zero_grace);
                }
            }
            Some(Act::Stop) => {
                cx.stop();
                world.stopped = true;
            }
        }
        let lingering = world.live.get(&me).is_some_and(|l| l.stop_called);
        if world.live.contains_key(&me) && (action == Action::Close || lingering) {
            world.remove(me);
            action = Action::Close;
        }
        action
    }

    /// A duel of this socket's: the first of the two called removes the
    /// other, then registers a socket (which takes the freed slot).
    fn duel(&mut self, cx: &mut Context<'_, ()>) {
        let me = self.id;
        let other = {
            let mut world = self.world.borrow_mut();
            let Some(at) = world.duels.iter().position(|&(a, b)| a == me || b == me) else {
                return;
            };
            let (a, b) = world.duels.swap_remove(at);
            let other = if a == me { b } else { a };
            if !world.live.contains_key(&other) {
                return;
            }
            other
        };
        let token = self.world.borrow().tokens[other];
        let removed = cx.sockets.remove(token);
        {
            let mut world = self.world.borrow_mut();
            match removed {
                Ok(()) => world.remove(other),
                Err(e) => world.violation(format!("#{me} removing #{other} in a duel: {e}")),
            }
        }
        register_probe(&self.world, &mut cx.sockets, false);
        STATS.duels.fetch_add(1, Ordering::Relaxed);
    }
}

impl Responder<()> for Probe {
    fn registered(&mut self, cx: &mut Context<'_, ()>) -> Action {
        let me = self.id;
        let mut world = self.world.borrow_mut();
        if world.check_call(me, cx.token, "registered") {
            let live = world.live.get_mut(&me).unwrap();
            if std::mem::replace(&mut live.registered, true) {
                world.violation(format!("registered twice: #{me}"));
            }
        }
        Action::Continue
    }

    fn ready(&mut self, event: Event, cx: &mut Context<'_, ()>) -> Action {
        let me = self.id;
        {
            let mut world = self.world.borrow_mut();
            if !world.check_call(me, cx.token, "an event") {
                return Action::Continue;
            }
            let live = &world.live[&me];
            let (token, born, registered) = (live.token, live.born, live.registered);
            if event != Event::Read(token) {
                world.violation(format!("#{me} got {event:?}, not Read({token})"));
            }
            if !registered {
                world.violation(format!("{event:?} reached #{me} before registered"));
            }
            if !world.teardown && (born > world.turn || !world.polled.contains(&me)) {
                world.violation(format!(
                    "{event:?} reached #{me}, registered after this turn's poll"
                ));
            }
            if !world.called.insert(me) && !world.teardown {
                world.violation(format!("a second event for #{me} in one turn"));
            }
            STATS.events.fetch_add(1, Ordering::Relaxed);
        }
        self.act(cx)
    }

    fn timer(&mut self, id: TimerId, cx: &mut Context<'_, ()>) -> Action {
        let me = self.id;
        {
            let mut world = self.world.borrow_mut();
            if !world.check_call(me, cx.token, "a timer") {
                return Action::Continue;
            }
            match world.timers.remove(&id) {
                Some((owner, made)) if owner == me && made < world.turn => {}
                other => world.violation(format!("{id} fired for #{me}: the model has {other:?}")),
            }
            STATS.timers.fetch_add(1, Ordering::Relaxed);
        }
        self.act(cx)
    }

    fn stop(&mut self, cx: &mut Context<'_, ()>) -> Action {
        let me = self.id;
        let mut world = self.world.borrow_mut();
        if !world.check_call(me, cx.token, "stop") {
            return Action::Continue;
        }
        if world.stopping.is_none() {
            world.violation(format!("stop of #{me} with no graceful stop under way"));
        }
        let live = world.live.get_mut(&me).unwrap();
        let linger = live.linger;
        if std::mem::replace(&mut live.stop_called, true) {
            world.violation(format!("stop twice: #{me}"));
        }
        if linger {
            Action::Continue
        } else {
            world.remove(me);
            Action::Close
        }
    }

    fn closed(&mut self, cx: &mut Context<'_, ()>) {
        let me = self.id;
        let mut world = self.world.borrow_mut();
        if world.tokens.get(me) != Some(&cx.token) {
            world.violation(format!("closed of #{me} with {}", cx.token));
        }
        if !world.expect_close.remove(&me) {
            // The one removal no call asks for: the deadline of a graceful
            // stop with no grace, at the end of the turn.
            if world.stopping == Some(true) && world.live.remove(&me).is_some() {
                world.timers.retain(|_, &mut (owner, _)| owner != me);
            } else {
                world.violation(format!("closed of #{me}, never removed"));
            }
        }
        *world.closed.entry(me).or_default() += 1;
        if world.closed[&me] > 1 {
            world.violation(format!("closed twice: #{me}"));
        }
        STATS.closed.fetch_add(1, Ordering::Relaxed);
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        let me = self.id;
        let mut world = self.world.borrow_mut();
        *world.dropped.entry(me).or_default() += 1;
        let closed = world.closed.get(&me).copied().unwrap_or(0);
        if closed != 1 {
            world.violation(format!("#{me} dropped, closed {closed} times"));
        }
    }
}

/// Totals over every case, printed at the end: what the programs did.
struct Stats {
    cases: AtomicU64,
    turns: AtomicU64,
    events: AtomicU64,
    timers: AtomicU64,
    stale_events: AtomicU64,
    stale_timers: AtomicU64,
    duels: AtomicU64,
    panics: AtomicU64,
    closed: AtomicU64,
}

static STATS: Stats = Stats {
    cases: AtomicU64::new(0),
    turns: AtomicU64::new(0),
    events: AtomicU64::new(0),
    timers: AtomicU64::new(0),
    stale_events: AtomicU64::new(0),
    stale_timers: AtomicU64::new(0),
    duels: AtomicU64::new(0),
    panics: AtomicU64::new(0),
    closed: AtomicU64::new(0),
};

/// Counts the dispatcher's `trace!` lines for the stale events it drops.
struct DropCounter {
    events: AtomicU64,
    timers: AtomicU64,
}

static DROPPED: DropCounter = DropCounter {
    events: AtomicU64::new(0),
    timers: AtomicU64::new(0),
};

impl log::Log for DropCounter {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata
            .target()
            .starts_with("sockmux_responder::dispatcher")
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) || record.level() != log::Level::Trace {
            return;
        }
        let mut line = String::new();
        let _ = write!(line, "{}", record.args());
        if line.ends_with("socket removed earlier in the batch, dropped") {
            self.events.fetch_add(1, Ordering::Relaxed);
        } else if line.ends_with("no owner, dropped") {
            self.timers.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn flush(&self) {}
}

/// The number of open descriptors of this process (Linux), or `None`.
fn descriptors() -> Option<usize> {
    if !cfg!(target_os = "linux") {
        return None;
    }
    Some(std::fs::read_dir("/proc/self/fd").ok()?.count())
}

/// Runs one program on a fresh dispatcher, with an event buffer of
/// `capacity` events (1,024 when `None`), and checks it against the model.
fn run_program(steps: &[Step], capacity: Option<usize>) -> Result<(), TestCaseError> {
    let baseline = descriptors();
    let world = Rc::new(RefCell::new(World {
        sender: Some(UdpSocket::bind("127.0.0.1:0").unwrap()),
        ..World::default()
    }));
    let mut dispatcher = match capacity {
        Some(n) => Dispatcher::with_event_capacity((), n).unwrap(),
        None => Dispatcher::new(()).unwrap(),
    };
    // With a buffer of 1,024 every event of a turn fits (no program makes
    // that many sockets): the model then knows each turn's batch exactly.
    let exact = capacity.is_none();
    for step in steps {
        match *step {
            Step::Register { linger } => register_probe(&world, &mut dispatcher.sockets(), linger),
            Step::Remove(index) => {
                let (target, token, live) = {
                    let world = world.borrow();
                    let Some(target) = world.any(index) else {
                        continue;
                    };
                    let token = world.tokens[target];
                    (target, token, world.live.contains_key(&target))
                };
                let removed = dispatcher.sockets().remove(token);
                prop_assert_eq!(removed.is_ok(), live, "removing #{} between turns", target);
                if live {
                    world.borrow_mut().remove(target);
                }
            }
            Step::Order(index, act) => {
                let mut world = world.borrow_mut();
                if let Some(id) = world.live_one(index) {
                    world.live.get_mut(&id).unwrap().orders.push(act);
                }
            }
            Step::Duel(a, b) => {
                let mut world = world.borrow_mut();
                if let (Some(a), Some(b)) = (world.live_one(a), world.live_one(b)) {
                    if a != b {
                        world.duels.push((a, b));
                    }
                }
            }
            Step::Turn => turn(&mut dispatcher, &world, exact)?,
        }
    }
    // The end: a graceful stop with no grace closes everything.
    {
        let mut world = world.borrow_mut();
        if world.stopping.is_none() {
            world.stopping = Some(true);
        }
        world.dispatching = true;
        world.teardown = true;
        world.turn = u64::MAX;
    }
    dispatcher.stop_gracefully(Duration::ZERO).unwrap();
    world.borrow_mut().dispatching = false;
    prop_assert!(
        dispatcher.sockets().is_empty(),
        "table empty after the stop"
    );
    drop(dispatcher);
    let mut world = world.borrow_mut();
    prop_assert!(world.violations.is_empty(), "{:#?}", world.violations);
    prop_assert!(world.live.is_empty(), "the model's table: {:?}", world.live);
    prop_assert!(world.expect_close.is_empty());
    for id in 0..world.tokens.len() {
        prop_assert_eq!(world.closed.get(&id), Some(&1), "closed of #{}", id);
        prop_assert_eq!(world.dropped.get(&id), Some(&1), "drops of #{}", id);
    }
    world.sender = None;
    prop_assert_eq!(descriptors(), baseline, "descriptors before and after");
    STATS.cases.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// One turn, and the model's checks at its end. `exact`: every event of the
/// turn fits in the buffer (else what does not fit waits for a later turn,
/// and the model knows only a superset of the batch).
fn turn(
    dispatcher: &mut Dispatcher<()>,
    world: &Rc<RefCell<World>>,
    exact: bool,
) -> Result<(), TestCaseError> {
    {
        let mut world = world.borrow_mut();
        world.turn += 1;
        world.dispatching = true;
        world.stale_events = 0;
        world.stale_timers = 0;
        world.called.clear();
        // The poll reports every live socket but those registered between
        // turns during a graceful stop that do not linger: their `stop`
        // hook closes them before the poll.
        let stopping = world.stopping.is_some();
        let polled = world
            .live
            .iter()
            .filter(|(_, l)| !(stopping && !l.registered && !l.linger))
            .map(|(&id, _)| id)
            .collect();
        world.polled = polled;
    }
    let dropped = (
        DROPPED.events.load(Ordering::Relaxed),
        DROPPED.timers.load(Ordering::Relaxed),
    );
    dispatcher.turn(Some(Duration::ZERO)).unwrap();
    STATS.turns.fetch_add(1, Ordering::Relaxed);
    let mut world = world.borrow_mut();
    world.dispatching = false;
    let t = world.turn;
    prop_assert!(world.violations.is_empty(), "{:#?}", world.violations);
    prop_assert!(
        world.expect_close.is_empty(),
        "never closed: {:?}",
        world.expect_close
    );
    // Every socket the poll reported and still there had its event.
    let missed: Vec<Id> = world
        .polled
        .iter()
        .filter(|id| world.live.contains_key(id) && !world.called.contains(id))
        .copied()
        .collect();
    // Every timer due at the poll whose owner is still there fired.
    let late: Vec<_> = world
        .timers
        .iter()
        .filter(|(_, &(_, made))| made < t)
        .collect();
    // The stale events the model predicts are those the dispatcher dropped
    // (with a small buffer, some of them were not in the batch).
    let seen = (
        DROPPED.events.load(Ordering::Relaxed) - dropped.0,
        DROPPED.timers.load(Ordering::Relaxed) - dropped.1,
    );
    let predicted = (world.stale_events, world.stale_timers);
    if exact {
        prop_assert!(missed.is_empty(), "turn {}: no event for {:?}", t, missed);
        prop_assert!(
            late.is_empty(),
            "turn {}: due timers not fired: {:?}",
            t,
            late
        );
        prop_assert_eq!(
            seen,
            predicted,
            "turn {}: stale events and timers dropped",
            t
        );
    } else {
        prop_assert!(
            seen.0 <= predicted.0 && seen.1 <= predicted.1,
            "turn {}: stale events and timers dropped {:?}, at most {:?}",
            t,
            seen,
            predicted
        );
    }
    STATS.stale_events.fetch_add(seen.0, Ordering::Relaxed);
    STATS.stale_timers.fetch_add(seen.1, Ordering::Relaxed);
    if world.stopping == Some(true) {
        prop_assert!(world.live.is_empty(), "turn {}: open after the deadline", t);
    }
    if world.live.is_empty() {
        world.stopping = None;
    }
    // The table holds what the model holds.
    let sockets = dispatcher.sockets();
    prop_assert_eq!(sockets.len(), world.live.len(), "turn {}: table size", t);
    for (id, &token) in world.tokens.iter().enumerate() {
        let live = world.live.contains_key(&id);
        prop_assert_eq!(
            sockets.contains(token),
            live,
            "turn {}: #{} in the table",
            t,
            id
        );
        let closed = world.closed.get(&id).copied().unwrap_or(0);
        let dropped = world.dropped.get(&id).copied().unwrap_or(0);
        prop_assert_eq!(
            (closed, dropped),
            (u32::from(!live), u32::from(!live)),
            "#{}",
            id
        );
    }
    prop_assert_eq!(dispatcher.is_stopped(), world.stopped);
    Ok(())
}

#[test]
fn the_dispatcher_keeps_to_its_model() {
    log::set_logger(&DROPPED).unwrap();
    log::set_max_level(log::LevelFilter::Trace);
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if info.payload().downcast_ref::<&str>() != Some(&SCRIPTED) {
            default_hook(info);
        }
    }));
    let config = ProptestConfig {
        cases: 256,
        // A failing program is kept beside this file, to run first next time.
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::WithSource("proptest-regressions"),
        )),
        ..ProptestConfig::default()
    };
    // One program in four with a buffer of 1 to 4 events.
    let capacity = prop_oneof![3 => Just(None), 1 => (1..=4usize).prop_map(Some)];
    proptest!(config, |(steps in prop::collection::vec(step(), 1..64), capacity in capacity)| {
        run_program(&steps, capacity)?;
    });
    let s = |c: &AtomicU64| c.load(Ordering::Relaxed);
    println!(
        "dispatcher_model: {} programs, {} turns: {} events, {} timers, \
         {} stale events and {} stale timers dropped, {} duels, {} panics, {} closed",
        s(&STATS.cases),
        s(&STATS.turns),
        s(&STATS.events),
        s(&STATS.timers),
        s(&STATS.stale_events),
        s(&STATS.stale_timers),
        s(&STATS.duels),
        s(&STATS.panics),
        s(&STATS.closed),
    );
}
