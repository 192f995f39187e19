//! An HTTP/1.1 server on streams: the library's `Acceptor` and a `Stream`
//! per connection, with a request codec of its own (`codec.rs`, on the
//! `httparse` crate) that frames each whole request, head and body, as a
//! slice of the read buffer, and a protocol (`request.rs`) that answers it.
//!
//! * `GET`/`HEAD /`: `Hello, World!` (`text/plain`); `GET`/`HEAD /json`:
//!   `{"message":"Hello, World!"}`; `POST /echo`: the body back
//!   (`Content-Length` or chunked). 404 for other paths, 405 (with `Allow`)
//!   for other methods on these, 501 for unknown methods.
//! * Keep-alive (the HTTP/1.1 default; HTTP/1.0 with
//!   `Connection: keep-alive`), `Connection: close` honoured, pipelining
//!   (the answers to a batch of requests read together are written
//!   together, in order), idle connections closed after 30 s.
//! * Every response has `Server`, `Date` and `Content-Length`; the `Date`
//!   is formatted once per second by a timer of the listener, shared by
//!   all. A `GET /` is answered without a heap allocation.
//! * Bad input costs a bounded amount and gets a clear answer, then the
//!   close: 400 for a malformed request, 413 for a body over 1 MiB (from
//!   its `Content-Length` or chunk sizes, before it arrives), 431 for a
//!   head over 8 KiB or 64 headers (once that much is seen, never
//!   buffered further), 505 for versions other than 1.0 and 1.1.
//! * `GET`/`HEAD /metrics` (the `stats` feature, on by default): the
//!   loop's figures in Prometheus' text format (version 0.0.4): counters
//!   of polls, events, turns, timers, bytes, busy and waiting time;
//!   gauges of sockets, connections, utilisation and the ready queue; the
//!   events per poll as a histogram and the handler time as a summary; and
//!   the requests and connections this server counted. The server runs
//!   one loop, so these are the whole server's. (The bytes are read from
//!   the open sockets at each scrape: a connection opened and closed
//!   between two scrapes is not counted.)
//!
//! With `--stats` it prints a line per second to the standard output
//! (connections, events/s, bytes/s in and out, how busy the loop was and
//! the 99th percentile of handler time, over the last second); with
//! `--stats-top`, also the ten busiest sockets every ten seconds; on
//! SIGUSR1 either prints that table at once (`server/stats.rs`).
//!
//! Ctrl-C (or SIGTERM) stops gracefully: the listener closes, answers
//! already queued are flushed, then connections close.
//!
//! ```text
//! cargo run --example http                          # 127.0.0.1:8080
//! cargo run --example http -- --addr 0.0.0.0 --port 0
//! curl -i http://127.0.0.1:8080/json
//! curl --data-binary 'hi' http://127.0.0.1:8080/echo
//! curl http://127.0.0.1:8080/metrics
//! cargo run --example http -- --stats               # the live view
//! ```

use std::io;
use std::net::ToSocketAddrs;
use std::process::ExitCode;
use std::time::Duration;

use sockmux::{Dispatcher, Signal};

mod codec;
mod date;
mod request;
#[path = "../server/mod.rs"]
mod server;

use request::Shared;
use server::View;

const USAGE: &str = "usage: http [--addr ADDR] [--port PORT] [--stats] [--stats-top]\n\n\
    An HTTP/1.1 server on ADDR:PORT (default 127.0.0.1:8080; port 0 picks one):\n\
    GET / and /json, POST /echo, GET /metrics (Prometheus text).\n\
    --stats prints a line per second (connections, events/s, bytes/s, loop busy,\n\
    handler p99); --stats-top adds the ten busiest sockets every 10 s; SIGUSR1\n\
    prints that table at once.";

/// How long a graceful stop may take.
const GRACE: Duration = Duration::from_secs(5);
/// How long a connection may send nothing before it is closed.
const IDLE: Duration = Duration::from_secs(30);

fn main() -> ExitCode {
    server::main("http", USAGE, 8080, |addr, view| run(addr, view))
}

fn run(addr: impl ToSocketAddrs, view: View) -> io::Result<()> {
    let mut dispatcher = Dispatcher::with_capacity(shared(), 1024)?;
    let listener = request::listen(&mut dispatcher, addr, IDLE)?;
    view.install(&mut dispatcher.sockets())?;
    eprintln!(
        "http: listening on {}",
        dispatcher.sockets().local_addr(listener)?
    );
    dispatcher.stop_on_signals(&[Signal::Interrupt, Signal::Terminate], GRACE)?;
    dispatcher.run()?;
    let shared = dispatcher.state();
    eprintln!(
        "http: stopped after {} connections, {} requests",
        shared.connections, shared.requests
    );
    Ok(())
}

/// The shared state, with `/metrics` served from the loop's figures
/// (`server/stats.rs`).
#[cfg(feature = "stats")]
fn shared() -> Shared {
    let mut meter = server::stats::Meter::default();
    Shared {
        metrics: Some(request::Metrics(Box::new(move |sockets, out| {
            server::stats::prometheus(sockets, &mut meter, out);
        }))),
        ..Shared::new()
    }
}

/// The shared state: no figures, no `/metrics`.
#[cfg(not(feature = "stats"))]
fn shared() -> Shared {
    Shared::new()
}
