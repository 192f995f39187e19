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
//!
//! Ctrl-C (or SIGTERM) stops gracefully: the listener closes, answers
//! already queued are flushed, then connections close.
//!
//! ```text
//! cargo run --example http                          # 127.0.0.1:8080
//! cargo run --example http -- --addr 0.0.0.0 --port 0
//! curl -i http://127.0.0.1:8080/json
//! curl --data-binary 'hi' http://127.0.0.1:8080/echo
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

const USAGE: &str = "usage: http [--addr ADDR] [--port PORT]\n\n\
    An HTTP/1.1 server on ADDR:PORT (default 127.0.0.1:8080; port 0 picks one):\n\
    GET / and /json, POST /echo.";

/// How long a graceful stop may take.
const GRACE: Duration = Duration::from_secs(5);
/// How long a connection may send nothing before it is closed.
const IDLE: Duration = Duration::from_secs(30);

fn main() -> ExitCode {
    server::main("http", USAGE, 8080, |addr| run(addr))
}

fn run(addr: impl ToSocketAddrs) -> io::Result<()> {
    let mut dispatcher = Dispatcher::with_capacity(Shared::new(), 1024)?;
    let listener = request::listen(&mut dispatcher, addr, IDLE)?;
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
