//! The test hooks of a table (the `faults` feature): at each I/O call
//! through the table and at each wait, the fault plan (`faults.rs`), the
//! recorder and the replay (`record.rs`) get their turn; and the public
//! calls that set them up. Without the feature none of this is compiled.

use std::cell::RefCell;
use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use log::warn;
use slab::Slab;

use crate::faults::{Answer, FaultCounts, FaultPlan, Injector, FAULTS_ENV};
use crate::ready::Ready;
use crate::record::{Done, Recorder, Replayer};
use crate::selector::{Poller, RawEvent};
use crate::table::Entry;
use crate::{Socket, Table, Token};

/// The I/O calls the table makes, as the hooks and records name them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    Read = 0,
    Write = 1,
    WriteVectored = 2,
    Recv = 3,
    Send = 4,
    RecvFrom = 5,
    SendTo = 6,
    Accept = 7,
    Io = 8,
}

impl Op {
    pub(crate) const ALL: [Op; 9] = [
        Op::Read,
        Op::Write,
        Op::WriteVectored,
        Op::Recv,
        Op::Send,
        Op::RecvFrom,
        Op::SendTo,
        Op::Accept,
        Op::Io,
    ];

    pub(crate) fn is_stream(self) -> bool {
        matches!(self, Op::Read | Op::Write | Op::WriteVectored)
    }

    pub(crate) fn readiness(self) -> Ready {
        match self {
            Op::Read | Op::Recv | Op::RecvFrom | Op::Accept => Ready::READABLE,
            Op::Write | Op::WriteVectored | Op::Send | Op::SendTo => Ready::WRITABLE,
            // A `Table::io` call may clear either; say both.
            Op::Io => Ready::READABLE | Ready::WRITABLE,
        }
    }
}

/// The test hooks of one table: a fault plan, a recorder and a replay,
/// each optional. Shared by the I/O calls in flight (an I/O closure holds
/// the socket's entry, so it cannot reach the table).
#[derive(Debug, Default)]
pub(crate) struct State {
    injector: Option<Injector>,
    counts: FaultCounts,
    pub(crate) recorder: Option<Recorder>,
    pub(crate) replay: Option<Replayer>,
    /// Reused for each wait's OS reports.
    reports: Vec<RawEvent>,
}

/// The hooks as a table keeps them.
pub(crate) type Hooks = Option<Rc<RefCell<State>>>;

/// Installs `plan` in `hooks` (replacing any), logging its seed.
fn set_plan(hooks: &mut Hooks, plan: FaultPlan) -> io::Result<()> {
    plan.check()?;
    warn!("{FAULTS_ENV}={plan}: injecting faults (rerun with the same value to repeat them)");
    let state = hooks.get_or_insert_with(Rc::default);
    let mut state = state.borrow_mut();
    state.injector = Some(Injector::new(plan));
    state.counts = FaultCounts::default();
    Ok(())
}

/// The counts of the plan in `hooks`, if there is one.
pub(crate) fn counts(hooks: &Hooks) -> Option<FaultCounts> {
    let state = hooks.as_ref()?.borrow();
    state.injector.as_ref().map(|_| state.counts)
}

/// Forgets what a plan holds for a removed socket.
pub(crate) fn removed(hooks: &Hooks, token: Token) {
    if let Some(state) = hooks {
        if let Some(injector) = &mut state.borrow_mut().injector {
            injector.removed(token);
        }
    }
}

impl Drop for State {
    fn drop(&mut self) {
        if let Some(injector) = &self.injector {
            warn!(
                "{FAULTS_ENV}={}: injected {} ({} in all)",
                injector.plan(),
                self.counts,
                self.counts.total()
            );
        }
    }
}

/// One I/O call through the table under the hooks: what the plan decided
/// for it (or what the replay says it was), made before the socket's entry
/// is borrowed, and consulted by each OS call the table makes for it.
#[derive(Debug)]
pub(crate) struct Call {
    state: Option<Rc<RefCell<State>>>,
    pub(crate) op: Op,
    pub(crate) token: Token,
    /// The length asked of the OS.
    pub(crate) len: usize,
    /// `Interrupted` answers still to give.
    pub(crate) eintr: u64,
    /// What the plan answers instead of the OS.
    pub(crate) answer: Option<Answer>,
}

impl Call {
    /// Decides the faults of one call of `op` on `token` with a buffer of
    /// `len` bytes, or looks up the recorded call in a replay.
    ///
    /// # Errors
    ///
    /// In a replay, a call that is not the one recorded next.
    pub(crate) fn begin(hooks: &Hooks, op: Op, token: Token, len: usize) -> io::Result<Call> {
        let mut call = Call {
            state: hooks.clone(),
            op,
            token,
            len,
            eintr: 0,
            answer: None,
        };
        let Some(state) = hooks else {
            return Ok(call);
        };
        let mut guard = state.borrow_mut();
        let state = &mut *guard;
        if let Some(replay) = &mut state.replay {
            call.len = replay.peek_call(op, token)?.min(len);
            return Ok(call);
        }
        if let Some(injector) = &mut state.injector {
            injector.decide(&mut call, &mut state.counts);
        }
        Ok(call)
    }

    /// An OS call that answers a byte count: the real one, or the answer
    /// of the plan or the replay; recorded.
    #[inline(never)]
    pub(crate) fn run(&mut self, f: impl FnOnce() -> io::Result<usize>) -> io::Result<usize> {
        match self.outcome(f) {
            Outcome::Replayed(done) => done.count(),
            Outcome::Answered(result) => {
                self.record(&result, |&n| Done::Ok(n, Vec::new(), None));
                result
            }
        }
    }

    /// [`run`](Call::run) for reads: the data read is recorded, and a
    /// replay writes the recorded data into `buf`.
    #[inline(never)]
    pub(crate) fn run_read(
        &mut self,
        buf: &mut [u8],
        f: impl FnOnce(&mut [u8]) -> io::Result<usize>,
    ) -> io::Result<usize> {
        if self.ends() {
            return Ok(0);
        }
        match self.outcome(|| f(buf)) {
            Outcome::Replayed(done) => done.fill(buf),
            Outcome::Answered(result) => {
                self.record(&result, |&n| Done::Ok(n, buf[..n].to_vec(), None));
                result
            }
        }
    }

    /// [`run_read`](Call::run_read) for `recv_from`: the sender's address
    /// is recorded too.
    #[inline(never)]
    pub(crate) fn run_recv_from(
        &mut self,
        buf: &mut [u8],
        f: impl FnOnce(&mut [u8]) -> io::Result<(usize, SocketAddr)>,
    ) -> io::Result<(usize, SocketAddr)> {
        match self.outcome(|| f(buf)) {
            Outcome::Replayed(done) => Ok((done.fill(buf)?, done.addr()?)),
            Outcome::Answered(result) => {
                self.record(&result, |&(n, addr)| {
                    Done::Ok(n, buf[..n].to_vec(), Some(addr))
                });
                result
            }
        }
    }

    /// An `accept`: a replay hands over a stand-in socket (never read or
    /// written: its I/O is replayed too).
    #[inline(never)]
    pub(crate) fn run_accept(
        &mut self,
        f: impl FnOnce() -> io::Result<Socket>,
    ) -> io::Result<Socket> {
        match self.outcome(f) {
            Outcome::Replayed(done) => done.count().and_then(|_| crate::record::stand_in()),
            Outcome::Answered(result) => {
                self.record(&result, |_| Done::Ok(0, Vec::new(), None));
                result
            }
        }
    }

    /// A [`Table::io`](crate::Table::io) call: faults apply, and it is
    /// recorded as success or error; a replay cannot make up its result.
    #[inline(never)]
    pub(crate) fn run_io<R>(&mut self, f: impl FnOnce() -> io::Result<R>) -> io::Result<R> {
        match self.outcome(f) {
            Outcome::Replayed(done) => done.count().and_then(|_| {
                Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "a replay cannot answer Table::io calls: their results are not recorded",
                ))
            }),
            Outcome::Answered(result) => {
                self.record(&result, |_| Done::Ok(0, Vec::new(), None));
                result
            }
        }
    }

    /// The replay's answer, or else the plan's, or else the real call's.
    fn outcome<R>(&mut self, f: impl FnOnce() -> io::Result<R>) -> Outcome<R> {
        if let Some(state) = &self.state {
            if let Some(replay) = &mut state.borrow_mut().replay {
                return match replay.next_call(self.op, self.token) {
                    Ok(done) => Outcome::Replayed(done),
                    Err(e) => Outcome::Answered(Err(e)),
                };
            }
        }
        if self.eintr > 0 {
            self.eintr -= 1;
            return Outcome::Answered(Err(io::ErrorKind::Interrupted.into()));
        }
        match self.answer.take() {
            Some(answer) => Outcome::Answered(Err(answer.error())),
            None => Outcome::Answered(f()),
        }
    }

    /// Whether the plan ends the stream at this OS call (a read's `Ok(0)`);
    /// recorded.
    fn ends(&mut self) -> bool {
        if self.eintr > 0 || self.answer != Some(Answer::End) {
            return false;
        }
        self.answer = None;
        self.record(&Ok(0), |&n| Done::Ok(n, Vec::new(), None));
        true
    }

    fn record<R>(&self, result: &io::Result<R>, summary: impl FnOnce(&R) -> Done) {
        let Some(state) = &self.state else { return };
        let mut state = state.borrow_mut();
        if let Some(recorder) = &mut state.recorder {
            let done = match result {
                Ok(r) => summary(r),
                Err(e) => Done::Err(crate::record::ErrorCode::of(e)),
            };
            recorder.call(self.op, self.token, self.len, &done);
        }
    }
}

/// What answers one OS call of a [`Call`].
enum Outcome<R> {
    /// The replay, from its record.
    Replayed(Done),
    /// The plan or the OS (to be recorded).
    Answered(io::Result<R>),
}

/// One wait under the hooks (out of line: the common wait has none): the OS's reports (or the replay's), reworked
/// by the plan, recorded, then each handed to `fold` with the slab.
/// Returns the number of reports, counting those held back so that the
/// poll waits on for them.
#[cold]
#[inline(never)]
pub(crate) fn select<D>(
    hooks: &Rc<RefCell<State>>,
    poller: &mut Poller,
    timeout: Option<Duration>,
    slab: &mut Slab<Entry<D>>,
    mut fold: impl FnMut(&mut Slab<Entry<D>>, RawEvent),
) -> io::Result<usize> {
    let mut guard = hooks.borrow_mut();
    let state = &mut *guard;
    let mut reports = std::mem::take(&mut state.reports);
    reports.clear();
    let mut held = 0;
    if let Some(replay) = &mut state.replay {
        replay.next_poll(&mut reports)?;
    } else {
        let mut timeout = timeout;
        if let Some(injector) = &mut state.injector {
            if injector.interrupts_wait(&mut state.counts) {
                state.reports = reports;
                return Err(io::ErrorKind::Interrupted.into());
            }
            if injector.holds() > 0 {
                timeout = Some(Duration::ZERO);
            }
        }
        let result = poller.select_each(timeout, |e| reports.push(e));
        if let Err(e) = result {
            state.reports = reports;
            return Err(e);
        }
        if let Some(injector) = &mut state.injector {
            injector.rework(&mut reports, slab, &mut state.counts);
            held = injector.holds();
        }
        if let Some(recorder) = &mut state.recorder {
            recorder.poll(&reports);
        }
    }
    drop(guard);
    let n = reports.len();
    for &report in &reports {
        fold(slab, report);
    }
    hooks.borrow_mut().reports = reports;
    Ok(n + held)
}

/// The first `len` bytes of `bufs`, as slices (a write cut short).
pub(crate) fn cut_slices<'a>(bufs: &'a [IoSlice<'a>], len: usize) -> Vec<IoSlice<'a>> {
    let mut left = len;
    let mut out = Vec::with_capacity(bufs.len());
    for buf in bufs {
        if left == 0 {
            break;
        }
        let take = buf.len().min(left);
        out.push(IoSlice::new(&buf[..take]));
        left -= take;
    }
    out
}

impl<D> Table<D> {
    /// Starts an I/O call of `op` on `token` with a buffer of `len` bytes:
    /// under hooks, a [`Call`] (the token must be live); without, nothing
    /// but a branch.
    #[inline(always)]
    pub(crate) fn begin(&self, token: Token, op: Op, len: usize) -> io::Result<Hooked> {
        match &self.hooks {
            None => Ok(Hooked { len, call: None }),
            Some(_) => self.begin_hooked(token, op, len),
        }
    }

    #[cold]
    #[inline(never)]
    fn begin_hooked(&self, token: Token, op: Op, len: usize) -> io::Result<Hooked> {
        self.entry(token)?;
        let call = Call::begin(&self.hooks, op, token, len)?;
        Ok(Hooked {
            len: call.len,
            call: Some(call),
        })
    }
}

/// An I/O call through the table with the feature on: the OS call alone
/// when the table has no hooks (a plan, a recorder or a replay), else
/// through its [`Call`].
#[derive(Debug)]
pub(crate) struct Hooked {
    len: usize,
    call: Option<Call>,
}

impl Hooked {
    /// The length to ask of the OS: the request, or less.
    #[inline(always)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    #[inline(always)]
    pub(crate) fn run(&mut self, f: impl FnOnce() -> io::Result<usize>) -> io::Result<usize> {
        match &mut self.call {
            None => f(),
            Some(call) => call.run(f),
        }
    }

    #[inline(always)]
    pub(crate) fn run_read(
        &mut self,
        buf: &mut [u8],
        f: impl FnOnce(&mut [u8]) -> io::Result<usize>,
    ) -> io::Result<usize> {
        match &mut self.call {
            None => f(buf),
            Some(call) => call.run_read(buf, f),
        }
    }

    #[inline(always)]
    pub(crate) fn run_recv_from(
        &mut self,
        buf: &mut [u8],
        f: impl FnOnce(&mut [u8]) -> io::Result<(usize, SocketAddr)>,
    ) -> io::Result<(usize, SocketAddr)> {
        match &mut self.call {
            None => f(buf),
            Some(call) => call.run_recv_from(buf, f),
        }
    }

    #[inline(always)]
    pub(crate) fn run_accept(
        &mut self,
        f: impl FnOnce() -> io::Result<Socket>,
    ) -> io::Result<Socket> {
        match &mut self.call {
            None => f(),
            Some(call) => call.run_accept(f),
        }
    }

    #[inline(always)]
    pub(crate) fn run_io<R>(&mut self, f: impl FnOnce() -> io::Result<R>) -> io::Result<R> {
        match &mut self.call {
            None => f(),
            Some(call) => call.run_io(f),
        }
    }
}

/// Fault plans, records and replays (the `faults` feature; see
/// `docs/testing.md`).
impl<D> Table<D> {
    /// Injects faults from now on by `plan` (replacing any plan, and its
    /// counts), and logs the plan with its seed (`warn!`). Every
    /// constructor of [`Sockets`](crate::Sockets) does this by itself with
    /// the plan in [`FAULTS_ENV`], if set.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a rate out of its range, naming it.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_core::{FaultPlan, Sockets};
    /// use std::io::ErrorKind;
    ///
    /// let mut sockets = Sockets::new()?;
    /// sockets.set_fault_plan(FaultPlan::new(1).wouldblock(0.99))?;
    /// let t = sockets.bind_udp("127.0.0.1:0")?;
    /// let peer = std::net::UdpSocket::bind("127.0.0.1:0")?;
    /// peer.send_to(b"x", sockets.local_addr(t)?)?;
    /// // Ready or not, the plan answers WouldBlock (almost) every time.
    /// let mut blocked = 0;
    /// for _ in 0..10 {
    ///     if let Err(e) = sockets.recv(t, &mut [0; 8]) {
    ///         assert_eq!(e.kind(), ErrorKind::WouldBlock);
    ///         blocked += 1;
    ///     }
    /// }
    /// assert_eq!(sockets.fault_counts().unwrap().wouldblock, blocked);
    /// // A rate out of range is refused.
    /// let e = sockets.set_fault_plan(FaultPlan::new(1).short(1.5)).unwrap_err();
    /// assert!(e.to_string().contains("not a probability"));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_fault_plan(&mut self, plan: FaultPlan) -> io::Result<()> {
        set_plan(&mut self.hooks, plan)
    }

    /// How many faults of each kind the plan injected so far; `None`
    /// without a plan.
    ///
    /// # Examples
    ///
    /// ```
    /// let sockets = sockmux_core::Sockets::new()?;
    /// // No plan unless SOCKMUX_FAULTS is set.
    /// assert_eq!(sockets.fault_counts().is_some(), std::env::var_os("SOCKMUX_FAULTS").is_some());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[must_use]
    pub fn fault_counts(&self) -> Option<FaultCounts> {
        counts(&self.hooks)
    }

    /// Records this table's run to the file at `path`: the OS reports of
    /// every poll (as a fault plan left them) and the result of every OS
    /// call made through the table, with the bytes read. Start it before
    /// the first socket is added. The file is flushed at each poll, so a
    /// run that dies leaves its record; [`replay`](Table::replay) plays it
    /// again.
    ///
    /// # Errors
    ///
    /// `InvalidInput` when the table already holds sockets, records or
    /// replays; the error from creating the file.
    ///
    /// # Examples
    ///
    /// ```
    /// let dir = std::env::temp_dir().join(format!("sockmux-doc-record-{}", std::process::id()));
    /// let mut sockets = sockmux_core::Sockets::new()?;
    /// sockets.record(&dir)?;
    /// let t = sockets.bind_udp("127.0.0.1:0")?;
    /// assert!(sockets.recv(t, &mut [0; 8]).is_err()); // recorded: WouldBlock
    /// drop(sockets);
    /// assert!(std::fs::metadata(&dir)?.len() > 0);
    /// std::fs::remove_file(dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn record(&mut self, path: impl AsRef<std::path::Path>) -> io::Result<()> {
        self.fresh_hooks("record")?.recorder = Some(Recorder::create(path.as_ref())?);
        Ok(())
    }

    /// Replays the record at `path` (made by [`record`](Table::record)):
    /// from now on each poll hands over the recorded OS reports, without
    /// waiting, and each I/O call through the table answers what it
    /// answered then, with the same bytes; no socket is read or written,
    /// and accepted connections are stand-ins with no peer. A fault plan
    /// is not applied: its faults are in the record. The program must make
    /// the same calls in the same order: the first that differs fails with
    /// `InvalidData` ("the replay diverged: ..."), and a poll past the end
    /// of the record fails with `UnexpectedEof`. Timers still fire by the
    /// clock.
    ///
    /// # Errors
    ///
    /// `InvalidInput` when the table already holds sockets, records or
    /// replays; the error from reading the file; `InvalidData` if it is
    /// not a record.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_core::{Events, Sockets};
    /// use std::io::ErrorKind;
    /// use std::time::Duration;
    ///
    /// let path = std::env::temp_dir().join(format!("sockmux-doc-replay-{}", std::process::id()));
    /// let peer = std::net::UdpSocket::bind("127.0.0.1:0")?;
    /// let mut events = Events::with_capacity(8);
    /// let run = |sockets: &mut Sockets, events: &mut Events| -> std::io::Result<Vec<u8>> {
    ///     let t = sockets.bind_udp("127.0.0.1:0")?;
    ///     peer.send_to(b"hello", sockets.local_addr(t)?)?;
    ///     sockets.poll(events, Some(Duration::from_secs(5)))?;
    ///     let mut buf = [0; 16];
    ///     let n = sockets.recv(t, &mut buf)?;
    ///     Ok(buf[..n].to_vec())
    /// };
    /// let mut recording = Sockets::new()?;
    /// recording.record(&path)?;
    /// assert_eq!(run(&mut recording, &mut events)?, b"hello");
    /// drop(recording);
    /// // The replay reads the same bytes (the datagram sent now is not read).
    /// let mut replay = Sockets::new()?;
    /// replay.replay(&path)?;
    /// assert_eq!(run(&mut replay, &mut events)?, b"hello");
    /// let over = replay.poll(&mut events, None).unwrap_err();
    /// assert_eq!(over.kind(), ErrorKind::UnexpectedEof);
    /// std::fs::remove_file(path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn replay(&mut self, path: impl AsRef<std::path::Path>) -> io::Result<()> {
        self.fresh_hooks("replay")?.replay = Some(Replayer::open(path.as_ref())?);
        Ok(())
    }

    /// The hooks, for a record or a replay to start: the table holds no
    /// socket yet, and neither records nor replays.
    fn fresh_hooks(&mut self, what: &str) -> io::Result<std::cell::RefMut<'_, State>> {
        let refuse = |why: String| Err(io::Error::new(io::ErrorKind::InvalidInput, why));
        if !self.is_empty() {
            return refuse(format!(
                "{what} must start before the first socket is added"
            ));
        }
        let state = self.hooks.get_or_insert_with(Rc::default).borrow_mut();
        if state.recorder.is_some() || state.replay.is_some() {
            return refuse(format!(
                "cannot {what}: the table records or replays already"
            ));
        }
        Ok(state)
    }
}

/// Whether a poll returns after a wait (`done`, as decided from its events
/// and the clock): recorded when it waits on; a replay decides as the
/// record says.
pub(crate) fn done_waiting(hooks: &Hooks, done: bool) -> io::Result<bool> {
    let Some(state) = hooks else { return Ok(done) };
    let mut state = state.borrow_mut();
    if let Some(replay) = &mut state.replay {
        return Ok(!replay.waits_on());
    }
    if let (false, Some(recorder)) = (done, &mut state.recorder) {
        recorder.wait_on();
    }
    Ok(done)
}
