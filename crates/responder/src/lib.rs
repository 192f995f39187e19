//! Responders for the sockmux socket table: one handler per socket,
//! registered with it by token, called by a dispatcher with the event and a
//! context that holds the program's shared state.
//!
//! The core table ([`sockmux_core::Sockets`]) hands out events for the
//! caller to `match`; this crate does the matching by token: each socket
//! gets a [`Responder`], and the [`Dispatcher`] calls it. A handler returns
//! an [`Action`] that the dispatcher applies afterwards, so handlers may
//! register, remove (themselves or others) and panic without disturbing
//! the rest of the loop.
//!
//! ```
//! use sockmux_core::{Event, Interest};
//! use sockmux_responder::{Action, Context, Dispatcher, Responder};
//! use std::io::ErrorKind;
//!
//! /// The shared state: a counter, as in the sketch.
//! #[derive(Default)]
//! struct Shared { count: u32, received: Vec<String> }
//!
//! struct Client;
//! impl Responder<Shared> for Client {
//!     fn ready(&mut self, event: Event, cx: &mut Context<'_, Shared>) -> Action {
//!         let Event::Write(t) = event else { return Action::Continue };
//!         if cx.sockets.send(t, cx.state.count.to_string().as_bytes()).is_ok() {
//!             cx.state.count += 1;
//!         }
//!         if cx.state.count == 3 { Action::Close } else { Action::Continue }
//!     }
//! }
//!
//! struct Server;
//! impl Responder<Shared> for Server {
//!     fn ready(&mut self, _: Event, cx: &mut Context<'_, Shared>) -> Action {
//!         let mut buf = [0; 64];
//!         match cx.sockets.recv(cx.token, &mut buf) {
//!             Ok(n) => cx.state.received.push(String::from_utf8_lossy(&buf[..n]).into()),
//!             Err(e) if e.kind() == ErrorKind::WouldBlock => {} // drained
//!             Err(_) => return Action::Close,
//!         }
//!         if cx.state.received.len() == 3 {
//!             cx.stop();
//!         }
//!         Action::Continue
//!     }
//! }
//!
//! let mut dispatcher = Dispatcher::new(Shared::default())?;
//! let mut sockets = dispatcher.sockets();
//! let server = sockets.bind_udp("127.0.0.1:0", Server)?;
//! let client = sockets.connect_udp(sockets.local_addr(server)?, Client)?;
//! sockets.set_interest(client, Interest::WRITABLE)?;
//! dispatcher.run_for(std::time::Duration::from_secs(10))?;
//! assert_eq!(dispatcher.state().received, ["0", "1", "2"]);
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Framing
//!
//! A [`Decoder`] cuts frames out of a connection's buffered bytes without
//! allocating: [`Raw`], [`Lines`], [`LengthPrefixed`], or the user's own.
//!
//! # Streams
//!
//! A [`Stream`] owns one TCP or Unix connection's buffers and calls the
//! user's [`Protocol`] with whole frames: it reads with a budget per
//! event, writes through and queues only what the socket did not take,
//! pauses reading at a high-water mark, half-closes both ways, times out
//! idle peers and flushes on a graceful stop.
//!
//! # Logging
//!
//! Through [`log`]: `error!` for a responder's panic, `warn!` for sockets
//! closed at a stop deadline, `info!` for the receive buffer a
//! [`UdpSessions`] socket was granted, `debug!` for stops, `trace!` for
//! dropped events.
#![doc(test(attr(deny(warnings))))]
#![forbid(unsafe_code)]

mod acceptor;
mod codec;
mod context;
mod dispatcher;
mod loops;
mod registry;
mod responder;
mod sessions;
#[cfg(feature = "stats")]
mod stats;
mod stream;

pub use acceptor::{Acceptor, DEFAULT_ACCEPTS_PER_EVENT, DEFAULT_ACCEPT_PAUSE};
pub use codec::{CodecError, Decoded, Decoder, Endian, LengthPrefixed, Lines, Raw, Width};
pub use context::Context;
pub use dispatcher::{Dispatcher, Slot};
pub use loops::{Handle, Loops, Server, Setup, Spread};
pub use registry::Registry;
pub use responder::{Action, Responder};
pub use sessions::{
    Peer, Session, SessionEnd, UdpSessions, DEFAULT_DATAGRAMS_PER_EVENT, DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAX_DATAGRAM, DEFAULT_RECEIVE_BUFFER,
};
#[cfg(feature = "stats")]
pub use stats::{DispatcherStats, DrainReport, Drained, Histogram, ResponderStats};
pub use stream::{
    CloseReason, Idle, Protocol, Stream, StreamIo, DEFAULT_HIGH_WATER, DEFAULT_LOW_WATER,
    DEFAULT_READ_PER_EVENT,
};
