//! A single-threaded socket multiplexor on [mio]: sockets in a slab-indexed
//! table, named by generational [`Token`]s, whose OS readiness becomes plain
//! [`Event`] values — `Read`, `Write`, `Error` — to `match` on with guards.
//!
//! It ports a Python note that wraps `select()` in a generator of
//! `Read`/`Write`/`Except` values: no threads, no async, no locks, all state
//! in one ordinary context: *the sketch*, as these docs call it. The guide
//! (the `sockmux::guide` module of the `sockmux` crate, `docs/guide.md` in
//! the repository) starts from it and builds a program step by step.
//!
//! [`Sockets`] is the loop: it adds and removes sockets, polls, and keeps
//! timers, the waker and signals. It dereferences to its [`Table`], where
//! every call that names a socket by its token lives (`read`, `send`,
//! `set_interest`, `take_error`, ...); the responder crate hands out the
//! same `Table`.
//!
//! ```
//! use sockmux_core::{Event, Events, Interest, Sockets};
//! use std::time::Duration;
//!
//! let mut sockets = Sockets::new()?;
//! let server = sockets.bind_udp("127.0.0.1:0")?;
//! let port = sockets.local_addr(server)?.port();
//! let client = sockets.connect_udp(("127.0.0.1", port))?;
//! sockets.set_interest(client, Interest::WRITABLE)?;
//!
//! let mut events = Events::with_capacity(64);
//! let mut got = Vec::new();
//! while got.len() < 1 {
//!     sockets.poll(&mut events, Some(Duration::from_secs(5)))?;
//!     for event in &events {
//!         match event {
//!             Event::Write(t) if t == client => {
//!                 sockets.send(t, b"0")?;
//!                 sockets.remove(t)?; // closes it
//!             }
//!             // A guard on the socket's port, as the sketch does.
//!             Event::Read(t) if sockets.local_addr(t)?.port() == port => {
//!                 let mut buf = [0; 1024];
//!                 match sockets.recv(t, &mut buf) {
//!                     Ok(n) => got.extend_from_slice(&buf[..n]),
//!                     // Nothing left: the table re-arms and waits for more.
//!                     Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
//!                     Err(e) => return Err(e),
//!                 }
//!             }
//!             _ => {}
//!         }
//!     }
//! }
//! assert_eq!(got, b"0");
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # How OS readiness becomes events
//!
//! Every socket is registered with mio once, for both directions,
//! edge-triggered. Each OS report sets readiness bits kept per socket, and
//! the socket joins a queue of sockets with something to report; a poll
//! drains that queue, so its cost follows the number of ready sockets, never
//! the number registered.
//!
//! | mio reports | table bit | event (if interested) |
//! |---|---|---|
//! | readable | readable | `Read` |
//! | read closed (the peer's FIN) | readable, kept until a read returns 0 bytes | `Read`, on every poll until the end of the stream is read, then never again |
//! | writable | writable | `Write` |
//! | write closed | writable | `Write`; the write then fails (`BrokenPipe`, `ConnectionReset`) |
//! | error | the `SO_ERROR` value is fetched and kept for [`take_error`](Table::take_error) | `Error` (always, once) |
//! | writable on a connecting TCP stream | connected | `Write` |
//! | error, or write closed, on a connecting TCP stream | connect failed, the error kept | `Error` only, never `Read` or `Write` |
//! | (Windows) read and write closed without the error flag on a stream | a reset, kept as `ConnectionReset` | `Error` once |
//!
//! In [`Mode::Level`] (the default, like `select()`), an event is raised on
//! every poll while its bit is set; the bit is cleared when an I/O call
//! through the table answers `WouldBlock`, or — for streams on epoll/kqueue,
//! not on Windows — when a read or write comes back short, since a new
//! arrival raises a new OS edge. In [`Mode::Edge`] an event is raised once
//! per OS report, like raw mio: drain to `WouldBlock`.
//!
//! For one socket the order within a poll is `Read`, `Write`, `Error`, so
//! data that arrived before a reset is read before the reset is reported.
//! Reading 0 bytes from a stream is the end of the stream; a 0-byte datagram
//! is a datagram.
//!
//! Tokens carry a generation: once a socket is removed, its token is stale,
//! every call rejects it with `NotFound`, and no event of the old socket can
//! reach a new socket in the same slot.
//!
//! # Logging
//!
//! Through [`log`]: `debug!` for register, remove and errors, `trace!` for
//! each OS report and event. Nothing is printed.
#![doc(test(attr(deny(warnings))))]

mod datagram;
mod event;
#[cfg(test)]
mod fault_tests;
#[cfg(feature = "faults")]
mod faults;
#[cfg(all(test, feature = "faults"))]
mod faults_tests;
#[cfg(feature = "faults")]
mod hooks;
mod interest;
mod io;
mod misuse;
mod open;
mod poll;
mod ready;
#[cfg(feature = "faults")]
mod record;
mod selector;
mod signal;
mod socket;
mod sockets;
#[cfg(feature = "stats")]
mod stats;
mod table;
mod timer;
mod token;
mod waker;
#[cfg(windows)]
mod windows;

pub use event::{Event, Events, Iter};
#[cfg(feature = "faults")]
pub use faults::{FaultCounts, FaultPlan, FAULTS_ENV};
pub use interest::{Interest, Mode};
pub use misuse::{Misuse, SPIN_EVENTS};
pub use open::DEFAULT_BACKLOG;
pub use signal::Signal;
pub use socket::{IntoSocket, Socket};
pub use sockets::Sockets;
#[cfg(feature = "stats")]
pub use stats::{clock_ns, LoopStats, SocketStats, Ticks, EVENT_BUCKETS, FS_PER_NS};
pub use table::Table;
pub use timer::TimerId;
pub use token::Token;
pub use waker::{Receiver, Sender, Waker};
