//! sockmux: many sockets on one thread, without async and without threads.
//!
//! This crate re-exports [`sockmux_core`] (the socket table and its events;
//! see there for the event model) and [`sockmux_responder`] (a responder per
//! socket, driven by a [`Dispatcher`]), both flat at the root:
//! `use sockmux::{Dispatcher, Event, Responder};`. Start with the
//! [`guide`], which begins from the sketch: the Python note that wraps
//! `select()` in a generator of `Read`/`Write`/`Except` values.
//!
//! ```
//! use sockmux::{Events, Sockets};
//! let mut sockets = Sockets::new()?;
//! let server = sockets.bind_udp("127.0.0.1:0")?;
//! let mut events = Events::with_capacity(64);
//! sockets.poll(&mut events, Some(std::time::Duration::from_millis(1)))?;
//! # let _ = server;
//! # Ok::<(), std::io::Error>(())
//! ```
#![doc(test(attr(deny(warnings))))]

pub use sockmux_core::*;
pub use sockmux_responder::*;

/// The README's example, compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctest;

/// The guide: from the Python sketch sockmux began as to a server built
/// from responders (`docs/guide.md`; its Rust code runs as doctests).
pub mod guide {
    #![doc = include_str!("../docs/guide.md")]
}

pub mod scaling {
    #![doc = include_str!("../docs/scaling.md")]
}

/// What the loop counts per socket and per loop (the `stats` feature), the
/// drain report and the misuse warnings of debug builds
/// (`docs/observability.md`; its Rust code runs as doctests).
#[cfg(feature = "stats")]
pub mod observability {
    #![doc = include_str!("../docs/observability.md")]
}
