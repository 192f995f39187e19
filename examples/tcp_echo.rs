//! A TCP echo server: the library's `Acceptor` for the listener, which
//! registers a `Stream` for each connection it accepts, with the `Raw`
//! codec and an `Echo` protocol that writes every chunk back. Every byte a
//! client sends comes back, in order, however the client splits or
//! pipelines its writes.
//!
//! The stream does the rest. Memory stays bounded whatever a client does:
//! each connection queues at most its high-water mark (256 KiB) of echo
//! plus one read; at that mark the stream stops reading that client (the
//! kernel then pushes back on it) until the queue drains to the low-water
//! mark (64 KiB). Each event reads at most 64 KiB, so a client that floods
//! the server cannot starve the others: level semantics bring its `Read`
//! back on the next turn. A client that half-closes gets all its echo, then
//! the close. Out of file descriptors, the acceptor pauses the listener
//! instead of spinning. Ctrl-C (or SIGTERM) stops gracefully: the listener
//! closes, queued echoes are flushed, then connections close.
//!
//! ```text
//! cargo run --example tcp_echo                          # 127.0.0.1:7777
//! cargo run --example tcp_echo -- --addr 0.0.0.0 --port 0
//! RUST_LOG=debug cargo run --example tcp_echo           # connections, pauses, stops
//! nc 127.0.0.1 7777                                     # then type lines
//! ```

use std::io;
use std::net::ToSocketAddrs;
use std::process::ExitCode;
use std::time::Duration;

use log::{debug, info};
use sockmux::{
    Acceptor, CloseReason, Context, Dispatcher, Protocol, Raw, Signal, Stream, StreamIo, Token,
};

mod server;

const USAGE: &str = "usage: tcp_echo [--addr ADDR] [--port PORT]\n\n\
    Echoes every TCP connection on ADDR:PORT (default 127.0.0.1:7777; port 0 picks one).";

/// How long a graceful stop may take.
const GRACE: Duration = Duration::from_secs(5);

fn main() -> ExitCode {
    server::main("tcp_echo", USAGE, 7777, |addr| run(addr))
}

fn run(addr: impl ToSocketAddrs) -> io::Result<()> {
    // Room for 1024 connections up front: their slots are allocated once.
    let mut dispatcher = Dispatcher::with_capacity(Stats::default(), 1024)?;
    let listener = listen(&mut dispatcher, addr)?;
    eprintln!(
        "tcp_echo: listening on {}",
        dispatcher.sockets().local_addr(listener)?
    );
    dispatcher.stop_on_signals(&[Signal::Interrupt, Signal::Terminate], GRACE)?;
    dispatcher.run()?;
    let stats = dispatcher.state();
    eprintln!(
        "tcp_echo: stopped after {} connections, {} bytes echoed",
        stats.accepted, stats.echoed
    );
    Ok(())
}

/// Listens on `addr`, with an echo [`Stream`] for each connection; returns
/// the listener's token.
fn listen(dispatcher: &mut Dispatcher<Stats>, addr: impl ToSocketAddrs) -> io::Result<Token> {
    let acceptor = Acceptor::new(|t: Token, cx: &mut Context<'_, Stats>| {
        // Echoes are small writes: do not wait to fill a segment.
        if let Ok(socket) = cx.sockets.socket(t) {
            let _ = socket2::SockRef::from(socket).set_tcp_nodelay(true);
        }
        cx.state.accepted += 1;
        debug!("{t}: connected");
        Stream::new(Raw, Echo::default())
    });
    dispatcher.sockets().listen_tcp(addr, acceptor)
}

/// The shared state: counters for the log.
#[derive(Debug, Default)]
struct Stats {
    accepted: u64,
    /// Bytes written back to clients (whatever the socket took).
    echoed: u64,
}

/// One connection's protocol: every chunk read is written back.
#[derive(Debug, Default)]
struct Echo {
    /// Bytes handed to the stream to write back.
    written: u64,
}

impl Protocol<Stats> for Echo {
    fn frame(&mut self, bytes: &[u8], io: &mut StreamIo<'_, '_, Stats>) {
        io.write(bytes);
        self.written += bytes.len() as u64;
    }

    fn stopping(&mut self, io: &mut StreamIo<'_, '_, Stats>) {
        if io.queued() > 0 {
            info!(
                "{}: flushing {} bytes before closing",
                io.token(),
                io.queued()
            );
        }
    }

    fn closed(&mut self, reason: CloseReason, unsent: usize, cx: &mut Context<'_, Stats>) {
        cx.state.echoed += self.written - unsent as u64;
        match reason {
            CloseReason::PeerClosed | CloseReason::Stopped => {}
            reason => debug!("{}: {reason:?}; closing", cx.token),
        }
        debug!("{}: closed", cx.token);
    }
}
