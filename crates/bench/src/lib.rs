//! Benchmarks for sockmux: TCP echo servers on raw mio, tokio, calloop and
//! the sockmux-core table, a load generator that checks every echoed byte,
//! and the figures the benchmark command prints and charts.
//!
//! - `echo_server --impl mio|tokio|calloop|sockmux-core|mio-short|mio-short-spent [--port P]` serves
//!   echo on 127.0.0.1 and prints `listening on 127.0.0.1:PORT`;
//! - `loadgen --addr A --conns N --size S --secs T [--pid P]` drives one
//!   server and prints one line of `key=value` figures; `loadgen --addr A
//!   --flood F --ping --secs T` runs the fairness load instead (F flood
//!   connections next to one timed ping-pong connection);
//! - `bench [--quick]` runs every server against every load, pinned with
//!   `taskset`, and prints one table of ratios to raw mio; `bench --counts`
//!   counts instructions (callgrind) and system calls per request;
//!   `bench --fairness` times a ping-pong next to a flood, per server.
//!
//! See `docs/benchmarks.md` for the method and the figures. Everything but
//! the raw mio and table servers and the load generator is Unix only.

#[cfg(unix)]
pub mod chart;
#[cfg(unix)]
pub mod counts;
mod echo;
pub mod fairness;
mod http_ref;
mod load;
mod procfs;
pub mod protocols;
pub mod report;
mod rlimit;
#[cfg(unix)]
pub mod runner;

pub use echo::{
    bind_listener, serve_mio, serve_mio_reading, serve_table, AfterShortRead, BACKLOG, READ_BUFFER,
};
#[cfg(unix)]
pub use echo::{serve_calloop, serve_tokio, serve_tokio_multi};
pub use fairness::{run_fairness, FairnessConfig, FairnessReport};
pub use http_ref::{imf_fixdate, serve_http_mio, HttpDate};
pub use load::{run_load, LoadConfig, LoadReport, Run};
pub use procfs::ProcStats;
pub use rlimit::raise_nofile_limit;

use std::io;
use std::net::TcpListener;

/// The echo servers this crate builds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Server {
    /// Hand-written raw mio: the floor.
    Mio,
    /// tokio `current_thread`, a task per connection.
    Tokio,
    /// calloop 0.14, a level-mode source per connection.
    Calloop,
    /// The sockmux-core table, level mode.
    Table,
    /// Raw mio that stops reading at a short read (latency study only).
    MioShort,
    /// tokio's multi-thread runtime with 2 workers (the scaling rows only).
    TokioMt2,
    /// Raw mio that stops at a short read and spends the saved system
    /// call on `/dev/null` (latency study only).
    MioShortSpent,
}

impl Server {
    /// Every server, in table order.
    pub const ALL: [Server; 7] = [
        Server::Mio,
        Server::Tokio,
        Server::Calloop,
        Server::Table,
        Server::MioShort,
        Server::MioShortSpent,
        Server::TokioMt2,
    ];

    /// The name `--impl` takes.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Server::Mio => "mio",
            Server::Tokio => "tokio",
            Server::Calloop => "calloop",
            Server::Table => "sockmux-core",
            Server::MioShort => "mio-short",
            Server::MioShortSpent => "mio-short-spent",
            Server::TokioMt2 => "tokio-mt2",
        }
    }

    /// The server called `name` (see [`name`](Server::name)).
    #[must_use]
    pub fn from_name(name: &str) -> Option<Server> {
        Server::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Serves echo on `listener` until the process ends.
    ///
    /// # Errors
    ///
    /// The server's fatal error; `Unsupported` for tokio and calloop off
    /// Unix.
    pub fn serve(self, listener: TcpListener) -> io::Result<()> {
        match self {
            Server::Mio => serve_mio(listener),
            Server::MioShort => serve_mio_reading(listener, AfterShortRead::Stop),
            Server::MioShortSpent => serve_mio_reading(listener, AfterShortRead::SpendSyscall),
            Server::Table => serve_table(listener),
            #[cfg(unix)]
            Server::Tokio => serve_tokio(listener),
            #[cfg(unix)]
            Server::Calloop => serve_calloop(listener),
            #[cfg(unix)]
            Server::TokioMt2 => serve_tokio_multi(listener, 2),
            #[cfg(not(unix))]
            Server::Tokio | Server::Calloop | Server::TokioMt2 => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "the tokio and calloop servers are built on Unix only",
            )),
        }
    }
}
