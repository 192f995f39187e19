//! The seam between the table and the OS poller.
//!
//! The table never talks to `mio::Poll` directly: it asks a [`Poller`] to
//! register sockets and to hand over each OS report as a [`RawEvent`].
//! Every build polls through [`MioSelector`], statically dispatched; unit
//! tests may put any `Selector` in its place (one that wraps mio's and
//! injects faults: spurious events, unknown keys, `EINTR`) so that faults
//! go through the very same code path.

use std::io;
use std::time::Duration;

use mio::{Interest as MioInterest, Registry, Token as MioToken};

use crate::ready::Ready;
use crate::Socket;

/// One readiness report from the OS for the slot `key`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RawEvent {
    pub(crate) key: usize,
    pub(crate) ready: Ready,
}

/// What the table needs from a poller, for tests that wrap mio's.
#[cfg(test)]
pub(crate) trait Selector: std::fmt::Debug {
    /// Registers `socket` for both directions, edge-triggered, under `key`.
    fn register(&self, socket: &mut Socket, key: usize) -> io::Result<()>;
    /// Removes `socket` from the poller.
    fn deregister(&self, socket: &mut Socket) -> io::Result<()>;
    /// Waits up to `timeout` (forever on `None`) and appends what is ready.
    /// May fail with `Interrupted`; the caller retries.
    fn select(&mut self, out: &mut Vec<RawEvent>, timeout: Option<Duration>) -> io::Result<()>;
    /// The registry, for sources that are not sockets (the waker).
    fn registry(&self) -> &Registry;
}

/// Raw events fetched from the OS per system call.
const RAW_CAPACITY: usize = 1024;

/// The production selector: mio's `Poll` (epoll, kqueue, IOCP/AFD).
#[derive(Debug)]
pub(crate) struct MioSelector {
    poll: mio::Poll,
    events: mio::Events,
}

impl MioSelector {
    pub(crate) fn new() -> io::Result<MioSelector> {
        Ok(MioSelector {
            poll: mio::Poll::new()?,
            events: mio::Events::with_capacity(RAW_CAPACITY),
        })
    }

    pub(crate) fn register(&self, socket: &mut Socket, key: usize) -> io::Result<()> {
        // Both directions, once: later interest changes are bookkeeping in the
        // table, never a re-registration (a system call per change saved; see
        // docs/architecture.md).
        self.poll.registry().register(
            socket.source(),
            MioToken(key),
            MioInterest::READABLE | MioInterest::WRITABLE,
        )
    }

    pub(crate) fn deregister(&self, socket: &mut Socket) -> io::Result<()> {
        self.poll.registry().deregister(socket.source())
    }

    pub(crate) fn registry(&self) -> &Registry {
        self.poll.registry()
    }

    /// Waits up to `timeout` and hands each report to `f` as it is read
    /// from the OS buffer, with no list in between; returns how many.
    #[inline]
    pub(crate) fn select_each(
        &mut self,
        timeout: Option<Duration>,
        mut f: impl FnMut(RawEvent),
    ) -> io::Result<usize> {
        self.poll.poll(&mut self.events, timeout)?;
        let mut reports = 0;
        for event in self.events.iter() {
            let mut ready = Ready::EMPTY;
            if event.is_readable() {
                ready.insert(Ready::READABLE);
            }
            if event.is_writable() {
                ready.insert(Ready::WRITABLE);
            }
            // The three rare flags behind one test in the common case: once
            // `is_error` is false, the compiler folds away the parts of
            // `is_write_closed` that need the error flag (epoll: one mask
            // test for the lot).
            if event.is_error() || event.is_read_closed() || event.is_write_closed() {
                ready.insert(rare_flags(event));
            }
            reports += 1;
            f(RawEvent {
                key: event.token().0,
                ready,
            });
        }
        Ok(reports)
    }
}

/// The error, read-closed and write-closed flags of a report.
#[cold]
fn rare_flags(event: &mio::event::Event) -> Ready {
    let mut ready = Ready::EMPTY;
    if event.is_error() {
        ready.insert(Ready::ERROR);
    }
    if event.is_read_closed() {
        ready.insert(Ready::READ_CLOSED);
    }
    if event.is_write_closed() {
        ready.insert(Ready::WRITE_CLOSED);
    }
    ready
}

#[cfg(test)]
impl Selector for MioSelector {
    fn register(&self, socket: &mut Socket, key: usize) -> io::Result<()> {
        MioSelector::register(self, socket, key)
    }

    fn deregister(&self, socket: &mut Socket) -> io::Result<()> {
        MioSelector::deregister(self, socket)
    }

    fn select(&mut self, out: &mut Vec<RawEvent>, timeout: Option<Duration>) -> io::Result<()> {
        self.select_each(timeout, |event| out.push(event)).map(drop)
    }

    fn registry(&self) -> &Registry {
        MioSelector::registry(self)
    }
}

/// The poller a table uses: mio itself in every build, statically
/// dispatched so that each OS report goes straight into the table; in unit
/// tests also any [`Selector`], to inject faults into the same code path.
#[derive(Debug)]
pub(crate) enum Poller {
    /// mio's `Poll`.
    Mio(MioSelector),
    /// A test selector.
    #[cfg(test)]
    Seam(Box<dyn Selector>),
}

impl Poller {
    pub(crate) fn register(&self, socket: &mut Socket, key: usize) -> io::Result<()> {
        match self {
            Poller::Mio(mio) => mio.register(socket, key),
            #[cfg(test)]
            Poller::Seam(seam) => seam.register(socket, key),
        }
    }

    pub(crate) fn deregister(&self, socket: &mut Socket) -> io::Result<()> {
        match self {
            Poller::Mio(mio) => mio.deregister(socket),
            #[cfg(test)]
            Poller::Seam(seam) => seam.deregister(socket),
        }
    }

    pub(crate) fn registry(&self) -> &Registry {
        match self {
            Poller::Mio(mio) => mio.registry(),
            #[cfg(test)]
            Poller::Seam(seam) => seam.registry(),
        }
    }

    /// Waits up to `timeout` and hands each OS report to `f`; returns how
    /// many there were. Reports a test selector gave before failing are
    /// handed over before the error is returned.
    #[inline]
    pub(crate) fn select_each(
        &mut self,
        timeout: Option<Duration>,
        f: impl FnMut(RawEvent),
    ) -> io::Result<usize> {
        match self {
            Poller::Mio(mio) => mio.select_each(timeout, f),
            #[cfg(test)]
            Poller::Seam(seam) => {
                let mut out = Vec::new();
                let result = seam.select(&mut out, timeout);
                let reports = out.len();
                out.into_iter().for_each(f);
                result.map(|()| reports)
            }
        }
    }
}
