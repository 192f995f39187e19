//! The seam between the table and the OS poller.
//!
//! The table never talks to `mio::Poll` directly: it asks a [`Selector`] to
//! register sockets and to fill a list of [`RawEvent`]s. Production uses
//! [`MioSelector`]; the tests wrap it to inject faults (spurious events,
//! unknown keys, `EINTR`) into the very same code path.

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

/// What the table needs from a poller.
pub(crate) trait Selector: std::fmt::Debug {
    /// Registers `socket` for both directions, edge-triggered, under `key`.
    fn register(&self, socket: &mut Socket, key: usize) -> io::Result<()>;
    /// Removes `socket` from the poller.
    fn deregister(&self, socket: &mut Socket) -> io::Result<()>;
    /// Waits up to `timeout` (forever on `None`) and appends what is ready.
    /// May fail with `Interrupted`; the caller retries.
    fn select(&mut self, out: &mut Vec<RawEvent>, timeout: Option<Duration>) -> io::Result<()>;
    /// The registry, for sources that are not sockets (the waker).
    #[allow(dead_code)] // used by the waker, not yet by every configuration
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
}

impl Selector for MioSelector {
    fn register(&self, socket: &mut Socket, key: usize) -> io::Result<()> {
        // Both directions, once: later interest changes are bookkeeping in the
        // table, never a re-registration (see PERFORMANCE notes in docs/).
        self.poll.registry().register(
            socket,
            MioToken(key),
            MioInterest::READABLE | MioInterest::WRITABLE,
        )
    }

    fn deregister(&self, socket: &mut Socket) -> io::Result<()> {
        self.poll.registry().deregister(socket)
    }

    fn select(&mut self, out: &mut Vec<RawEvent>, timeout: Option<Duration>) -> io::Result<()> {
        self.poll.poll(&mut self.events, timeout)?;
        for event in self.events.iter() {
            let mut ready = Ready::EMPTY;
            if event.is_readable() {
                ready.insert(Ready::READABLE);
            }
            if event.is_writable() {
                ready.insert(Ready::WRITABLE);
            }
            if event.is_error() {
                ready.insert(Ready::ERROR);
            }
            if event.is_read_closed() {
                ready.insert(Ready::READ_CLOSED);
            }
            if event.is_write_closed() {
                ready.insert(Ready::WRITE_CLOSED);
            }
            out.push(RawEvent {
                key: event.token().0,
                ready,
            });
        }
        Ok(())
    }

    fn registry(&self) -> &Registry {
        self.poll.registry()
    }
}
