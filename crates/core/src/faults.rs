//! Fault injection at the readiness layer (the `faults` feature): a seeded
//! [`FaultPlan`] that makes the table's own I/O calls and polls misbehave
//! the way real systems do now and then, so that a program's handlers can
//! be tested against those faults without a fake OS; the hooks that apply
//! it are in `hooks.rs`.
//!
//! Every fault goes through the table's real code: an injected
//! `WouldBlock` clears readiness as a real one does, an injected short
//! read is a real read with a smaller buffer, a delayed OS report is
//! folded into the table later by the same function. Without the feature
//! none of this is compiled.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::str::FromStr;

use slab::Slab;

use crate::hooks::{Call, Op};
use crate::ready::Ready;
use crate::selector::RawEvent;
use crate::table::Entry;
use crate::Token;

/// The environment variable read by [`Sockets::new`](crate::Sockets::new)
/// (and every other constructor) when the `faults` feature is on.
pub const FAULTS_ENV: &str = "SOCKMUX_FAULTS";

/// The longest an OS report is held back, in polls.
const MAX_DELAY: u64 = 3;
/// The most `Interrupted` answers injected into one I/O call.
const MAX_EINTR: u64 = 3;

/// A seeded fault plan: how often each kind of fault is injected. Rates
/// are probabilities in `0.0..=1.0` (below 1 for `wouldblock`, which at 1
/// would never let a call through), all 0 by default.
///
/// The same seed gives the same faults for the same sequence of calls, so
/// a failure seen once comes back when the run is repeated with its seed
/// (as long as the peers behave the same; [`Table::record`](crate::Table::record)
/// removes that condition).
///
/// | key | rate of | fault |
/// |---|---|---|
/// | `spurious` | polls | a `Read` or `Write` event for a socket that is not ready: its next I/O call answers `WouldBlock` |
/// | `short` | stream reads and writes | the call is cut short: 1 byte up to the request (as many cuts below 16 bytes as between 16 and 256) |
/// | `interrupt` | I/O calls and waits | `Interrupted` (1 to 3 times; the table retries) |
/// | `wouldblock` | I/O calls | `WouldBlock` although the socket may be ready; the OS reports it again at the next poll |
/// | `delay` | OS reports | the report is held back for 1 to 3 polls |
/// | `split` | OS reports of two kinds or more | the report is split in two; the second part comes a poll later |
/// | `reset` | stream reads and writes | the connection is reset: `ConnectionReset` now, then the end of the stream for reads and `BrokenPipe` for writes |
/// | `end` | stream reads | the peer ends the stream: this read and every later one returns 0 bytes |
/// | `emfile` | accepts | `accept` fails with "too many open files" (`EMFILE`) |
///
/// # Examples
///
/// ```
/// use sockmux_core::FaultPlan;
///
/// let plan: FaultPlan = "seed=42,short=0.3,spurious=0.1".parse()?;
/// assert_eq!(plan, FaultPlan::new(42).short(0.3).spurious(0.1));
/// assert_eq!(plan.to_string(), "seed=42,spurious=0.1,short=0.3");
/// let e = "seed=42,shrot=0.3".parse::<FaultPlan>().unwrap_err();
/// assert!(e.to_string().contains("unknown fault `shrot`"));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct FaultPlan {
    seed: u64,
    rates: [f64; KINDS],
}

/// The kinds of fault, in the order of [`FaultPlan`]'s keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Spurious,
    Short,
    Interrupt,
    WouldBlock,
    Delay,
    Split,
    Reset,
    End,
    Emfile,
}

const KINDS: usize = 9;

impl Kind {
    const ALL: [Kind; KINDS] = [
        Kind::Spurious,
        Kind::Short,
        Kind::Interrupt,
        Kind::WouldBlock,
        Kind::Delay,
        Kind::Split,
        Kind::Reset,
        Kind::End,
        Kind::Emfile,
    ];

    fn key(self) -> &'static str {
        match self {
            Kind::Spurious => "spurious",
            Kind::Short => "short",
            Kind::Interrupt => "interrupt",
            Kind::WouldBlock => "wouldblock",
            Kind::Delay => "delay",
            Kind::Split => "split",
            Kind::Reset => "reset",
            Kind::End => "end",
            Kind::Emfile => "emfile",
        }
    }
}

macro_rules! rate_setters {
    ($($(#[$doc:meta])* $name:ident = $kind:ident;)*) => {
        $(
            $(#[$doc])*
            ///
            /// The rate must be in `0.0..=1.0` (for `wouldblock`, below
            /// 1): [`set_fault_plan`](crate::Table::set_fault_plan) refuses
            /// a plan with another, as [`parse`](str::parse) does.
            #[must_use]
            pub fn $name(mut self, rate: f64) -> FaultPlan {
                self.rates[Kind::$kind as usize] = rate;
                self
            }
        )*
    };
}

impl FaultPlan {
    /// A plan with `seed` and no fault; add rates with the other methods.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_core::{FaultPlan, Sockets};
    ///
    /// let mut sockets = Sockets::new()?;
    /// sockets.set_fault_plan(FaultPlan::new(7).short(0.5).interrupt(0.1))?;
    /// assert_eq!(sockets.fault_counts().unwrap().total(), 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[must_use]
    pub fn new(seed: u64) -> FaultPlan {
        FaultPlan {
            seed,
            rates: [0.0; KINDS],
        }
    }

    /// The seed.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(sockmux_core::FaultPlan::new(9).seed(), 9);
    /// ```
    #[must_use]
    pub fn seed(&self) -> u64 {
        self.seed
    }

    rate_setters! {
        /// Spurious `Read`/`Write` events, per poll.
        spurious = Spurious;
        /// Short stream reads and writes, per call.
        short = Short;
        /// `Interrupted` answers, per I/O call and per wait.
        interrupt = Interrupt;
        /// `WouldBlock` answers, per I/O call.
        wouldblock = WouldBlock;
        /// OS reports held back for 1 to 3 polls, per report.
        delay = Delay;
        /// OS reports split in two, per report of two kinds or more.
        split = Split;
        /// Connection resets, per stream read or write.
        reset = Reset;
        /// Ends of stream, per stream read.
        end = End;
        /// `EMFILE` from `accept`, per accept.
        emfile = Emfile;
    }

    /// The plan in [`FAULTS_ENV`], if it is set and not empty.
    ///
    /// # Errors
    ///
    /// `InvalidInput` naming the variable and what is wrong with its value.
    ///
    /// # Examples
    ///
    /// ```
    /// // Unset in doctests.
    /// assert_eq!(sockmux_core::FaultPlan::from_env()?, None);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn from_env() -> io::Result<Option<FaultPlan>> {
        match std::env::var(FAULTS_ENV) {
            Ok(spec) if spec.trim().is_empty() => Ok(None),
            Ok(spec) => spec.parse().map(Some).map_err(|e| {
                io::Error::new(io::ErrorKind::InvalidInput, format!("{FAULTS_ENV}: {e}"))
            }),
            Err(std::env::VarError::NotPresent) => Ok(None),
            Err(std::env::VarError::NotUnicode(_)) => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{FAULTS_ENV}: not valid UTF-8"),
            )),
        }
    }

    fn rate(&self, kind: Kind) -> f64 {
        self.rates[kind as usize]
    }

    /// Every rate in its range.
    pub(crate) fn check(&self) -> io::Result<()> {
        for kind in Kind::ALL {
            check_rate(kind, self.rate(kind))
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        }
        Ok(())
    }
}

fn check_rate(kind: Kind, rate: f64) -> Result<(), String> {
    let top_ok = kind != Kind::WouldBlock || rate < 1.0;
    if (0.0..=1.0).contains(&rate) && top_ok {
        Ok(())
    } else if !top_ok {
        Err(format!(
            "fault `{}` rate {rate} must be below 1 (at 1 no call would ever go through)",
            kind.key()
        ))
    } else {
        Err(format!(
            "fault `{}` rate {rate} is not a probability in 0..=1",
            kind.key()
        ))
    }
}

impl FromStr for FaultPlan {
    type Err = io::Error;

    /// Parses `seed=N,key=rate,...` (see [`FaultPlan`] for the keys; the
    /// seed is required).
    fn from_str(spec: &str) -> io::Result<FaultPlan> {
        let bad = |m: String| io::Error::new(io::ErrorKind::InvalidInput, m);
        let mut seed = None;
        let mut plan = FaultPlan::new(0);
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((key, value)) = part.split_once('=') else {
                return Err(bad(format!("`{part}` is not key=value")));
            };
            let (key, value) = (key.trim(), value.trim());
            if key == "seed" {
                seed = Some(value.parse::<u64>().map_err(|_| {
                    bad(format!("seed `{value}` is not a whole number below 2^64"))
                })?);
                continue;
            }
            let Some(kind) = Kind::ALL.into_iter().find(|k| k.key() == key) else {
                let known: Vec<_> = Kind::ALL.iter().map(|k| k.key()).collect();
                return Err(bad(format!(
                    "unknown fault `{key}` (known: seed, {})",
                    known.join(", ")
                )));
            };
            let rate = value
                .parse::<f64>()
                .map_err(|_| bad(format!("fault `{key}` rate `{value}` is not a number")))?;
            check_rate(kind, rate).map_err(bad)?;
            plan.rates[kind as usize] = rate;
        }
        plan.seed = seed.ok_or_else(|| bad(format!("no seed in `{spec}` (add seed=N)")))?;
        Ok(plan)
    }
}

impl fmt::Display for FaultPlan {
    /// The plan as [`FAULTS_ENV`] takes it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "seed={}", self.seed)?;
        for kind in Kind::ALL {
            let rate = self.rate(kind);
            if rate != 0.0 {
                write!(f, ",{}={rate}", kind.key())?;
            }
        }
        Ok(())
    }
}

/// How many faults of each kind a plan has injected so far (see
/// [`Table::fault_counts`](crate::Table::fault_counts)).
///
/// # Examples
///
/// ```
/// let counts = sockmux_core::FaultCounts::default();
/// assert_eq!(counts.total(), 0);
/// assert_eq!(counts.to_string(), "spurious=0 short=0 interrupt=0 wouldblock=0 \
///     delay=0 split=0 reset=0 end=0 emfile=0");
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultCounts {
    /// Spurious `Read`/`Write` events raised.
    pub spurious: u64,
    /// Reads and writes cut short.
    pub short: u64,
    /// `Interrupted` answers (from I/O calls and waits).
    pub interrupt: u64,
    /// `WouldBlock` answers.
    pub wouldblock: u64,
    /// OS reports held back.
    pub delay: u64,
    /// OS reports split.
    pub split: u64,
    /// Connections reset.
    pub reset: u64,
    /// Streams ended.
    pub end: u64,
    /// Accepts failed with `EMFILE`.
    pub emfile: u64,
}

impl FaultCounts {
    /// All faults injected.
    #[must_use]
    pub fn total(&self) -> u64 {
        Kind::ALL.into_iter().map(|k| self.get(k)).sum()
    }

    fn get(&self, kind: Kind) -> u64 {
        match kind {
            Kind::Spurious => self.spurious,
            Kind::Short => self.short,
            Kind::Interrupt => self.interrupt,
            Kind::WouldBlock => self.wouldblock,
            Kind::Delay => self.delay,
            Kind::Split => self.split,
            Kind::Reset => self.reset,
            Kind::End => self.end,
            Kind::Emfile => self.emfile,
        }
    }

    fn bump(&mut self, kind: Kind) {
        let count = match kind {
            Kind::Spurious => &mut self.spurious,
            Kind::Short => &mut self.short,
            Kind::Interrupt => &mut self.interrupt,
            Kind::WouldBlock => &mut self.wouldblock,
            Kind::Delay => &mut self.delay,
            Kind::Split => &mut self.split,
            Kind::Reset => &mut self.reset,
            Kind::End => &mut self.end,
            Kind::Emfile => &mut self.emfile,
        };
        *count += 1;
    }
}

impl fmt::Display for FaultCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, kind) in Kind::ALL.into_iter().enumerate() {
            let sep = if i == 0 { "" } else { " " };
            write!(f, "{sep}{}={}", kind.key(), self.get(kind))?;
        }
        Ok(())
    }
}

/// SplitMix64: a small, well-mixed generator; plenty for fault decisions.
#[derive(Debug)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// True with probability `p`.
    fn chance(&mut self, p: f64) -> bool {
        // 53 random bits as a float in [0, 1).
        p > 0.0 && ((self.next() >> 11) as f64) / ((1u64 << 53) as f64) < p
    }

    /// Uniform in `lo..=hi`.
    fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

/// What a stream that a plan reset or ended answers from now on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Doom {
    /// Reset (and told so): reads end, writes fail with `BrokenPipe`.
    Reset,
    /// Ended by the peer: reads end.
    Ended,
}

/// The answer a plan gives instead of the OS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Answer {
    WouldBlock,
    Reset,
    BrokenPipe,
    End,
    Emfile,
}

impl Answer {
    pub(crate) fn error(self) -> io::Error {
        match self {
            Answer::WouldBlock => io::ErrorKind::WouldBlock.into(),
            Answer::Reset => io::ErrorKind::ConnectionReset.into(),
            Answer::BrokenPipe => io::ErrorKind::BrokenPipe.into(),
            Answer::End => {
                io::Error::other("an end of stream answered to a call that is not a read")
            }
            Answer::Emfile => emfile(),
        }
    }
}

/// "Too many open files", as the OS says it.
fn emfile() -> io::Error {
    #[cfg(unix)]
    return io::Error::from_raw_os_error(libc::EMFILE);
    // WSAEMFILE.
    #[cfg(windows)]
    return io::Error::from_raw_os_error(10024);
}

/// An OS report held back by a plan, for the socket it was about.
#[derive(Clone, Copy, Debug)]
struct Held {
    token: Token,
    ready: Ready,
    polls: u64,
}

/// A plan at work: its generator, what it holds back and what it doomed.
#[derive(Debug)]
pub(crate) struct Injector {
    plan: FaultPlan,
    rng: Rng,
    held: Vec<Held>,
    doomed: HashMap<Token, Doom>,
}

impl Injector {
    pub(crate) fn new(plan: FaultPlan) -> Injector {
        Injector {
            rng: Rng(plan.seed),
            plan,
            held: Vec::new(),
            doomed: HashMap::new(),
        }
    }

    pub(crate) fn plan(&self) -> &FaultPlan {
        &self.plan
    }

    /// How many OS reports the plan holds back.
    pub(crate) fn holds(&self) -> usize {
        self.held.len()
    }

    /// Whether the plan interrupts this wait (`EINTR`).
    pub(crate) fn interrupts_wait(&mut self, counts: &mut FaultCounts) -> bool {
        let interrupt = self.rng.chance(self.plan.rate(Kind::Interrupt));
        if interrupt {
            counts.bump(Kind::Interrupt);
        }
        interrupt
    }

    /// Forgets what the plan holds for a removed socket.
    pub(crate) fn removed(&mut self, token: Token) {
        self.doomed.remove(&token);
        self.held.retain(|h| h.token != token);
    }

    /// Decides the faults of one I/O call.
    pub(crate) fn decide(&mut self, call: &mut Call, counts: &mut FaultCounts) {
        let op = call.op;
        if op.is_stream() {
            if let Some(doom) = self.doomed.get_mut(&call.token) {
                call.answer = match (*doom, op) {
                    (_, Op::Read) => Some(Answer::End),
                    (Doom::Reset, _) => Some(Answer::BrokenPipe),
                    (Doom::Ended, _) => None,
                };
                if call.answer.is_some() {
                    return;
                }
            }
        }
        let plan = &self.plan;
        let rng = &mut self.rng;
        if rng.chance(plan.rate(Kind::Interrupt)) {
            call.eintr = rng.between(1, MAX_EINTR);
            counts.interrupt += call.eintr;
        }
        if rng.chance(plan.rate(Kind::WouldBlock)) {
            counts.bump(Kind::WouldBlock);
            call.answer = Some(Answer::WouldBlock);
            // Whatever readiness the socket had is cleared by the answer:
            // the OS reports it again (a wrong WouldBlock must not lose
            // the socket its wake-up).
            self.held.push(Held {
                token: call.token,
                ready: op.readiness(),
                polls: 1,
            });
            return;
        }
        if op.is_stream() && rng.chance(plan.rate(Kind::Reset)) {
            counts.bump(Kind::Reset);
            self.doomed.insert(call.token, Doom::Reset);
            call.answer = Some(Answer::Reset);
            return;
        }
        if op == Op::Read && rng.chance(plan.rate(Kind::End)) {
            counts.bump(Kind::End);
            self.doomed.insert(call.token, Doom::Ended);
            call.answer = Some(Answer::End);
            return;
        }
        if op == Op::Accept && rng.chance(plan.rate(Kind::Emfile)) {
            counts.bump(Kind::Emfile);
            call.answer = Some(Answer::Emfile);
            return;
        }
        if op.is_stream() && call.len > 1 && rng.chance(plan.rate(Kind::Short)) {
            counts.bump(Kind::Short);
            // 1 byte up to the request, spread evenly over the orders of
            // magnitude: most cuts are small, as the data available is.
            let most = call.len as u64 - 1;
            let bits = rng.between(0, u64::from(63 - most.leading_zeros()));
            call.len = rng.between(1, most.min((2 << bits) - 1)) as usize;
        }
    }

    /// Reworks one wait's OS reports: releases those held back that are
    /// due, holds back or splits some of the new ones, adds a spurious
    /// one. Returns how many reports are still held (they keep the wait
    /// short, so that they come out within a few polls).
    pub(crate) fn rework<D>(
        &mut self,
        reports: &mut Vec<RawEvent>,
        slab: &Slab<Entry<D>>,
        counts: &mut FaultCounts,
    ) {
        let live = |token: Token| {
            slab.get(token.key())
                .is_some_and(|e| e.generation == token.generation())
        };
        let mut out = Vec::with_capacity(reports.len() + self.held.len() + 1);
        self.held.retain_mut(|held| {
            held.polls -= 1;
            if held.polls > 0 {
                return true;
            }
            if live(held.token) {
                out.push(RawEvent {
                    key: held.token.key(),
                    ready: held.ready,
                });
            }
            false
        });
        for report in reports.drain(..) {
            let Some(entry) = slab.get(report.key) else {
                out.push(report); // the waker, signals, or a socket removed
                continue;
            };
            let token = entry.token(report.key);
            if self.rng.chance(self.plan.rate(Kind::Delay)) {
                counts.bump(Kind::Delay);
                let polls = self.rng.between(1, MAX_DELAY);
                self.held.push(Held {
                    token,
                    ready: report.ready,
                    polls,
                });
                continue;
            }
            let bits = report.ready.bits().count_ones();
            if bits >= 2 && self.rng.chance(self.plan.rate(Kind::Split)) {
                counts.bump(Kind::Split);
                // A random part now (not none, not all), the rest a poll later.
                let mut now = Ready::EMPTY;
                while now.is_empty() || now == report.ready {
                    now = report.ready & Ready::from_bits(self.rng.next() as u8);
                }
                let mut later = report.ready;
                later.remove(now);
                out.push(RawEvent {
                    key: report.key,
                    ready: now,
                });
                self.held.push(Held {
                    token,
                    ready: later,
                    polls: 1,
                });
                continue;
            }
            out.push(report);
        }
        if !slab.is_empty() && self.rng.chance(self.plan.rate(Kind::Spurious)) {
            // The first socket, from a random one on, that is interested
            // in a direction it is not ready for.
            let start = self.rng.between(0, slab.len() as u64 - 1) as usize;
            let mut sockets = slab.iter().skip(start).chain(slab.iter().take(start));
            let spurious = sockets.find_map(|(key, entry)| {
                let mut wanted = Ready::from_interest(entry.interest);
                wanted.remove(entry.ready);
                [Ready::READABLE, Ready::WRITABLE]
                    .into_iter()
                    .find(|&kind| wanted.contains(kind))
                    .map(|ready| RawEvent { key, ready })
            });
            if let Some(report) = spurious {
                counts.bump(Kind::Spurious);
                out.push(report);
            }
        }
        *reports = out;
    }
}
