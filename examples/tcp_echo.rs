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
//! With `--threads N` (N > 1) it runs N loops (`Loops`), one per thread,
//! each with its own connections and counters: on Linux each loop has its
//! own listener on the address (`SO_REUSEPORT`), elsewhere (or with
//! `--hand-off`) loop 0 accepts and hands each connection to the
//! least-loaded loop. Ctrl-C stops them all, each flushing its own; the
//! counters are summed at the end.
//!
//! With `--stats` it prints a line per second to the standard output (per
//! loop, prefixed `[loop i]`, with several): connections, events/s,
//! bytes/s in and out, how busy the loop was and the 99th percentile of
//! handler time, all over the last second; with `--stats-top`, also the
//! ten busiest sockets every ten seconds; on SIGUSR1 either prints that
//! table at once (the `stats` feature, on by default; `server/stats.rs`).
//!
//! ```text
//! cargo run --example tcp_echo                          # 127.0.0.1:7777
//! cargo run --example tcp_echo -- --addr 0.0.0.0 --port 0
//! cargo run --release --example tcp_echo -- --threads 2 # two loops
//! cargo run --release --example tcp_echo -- --threads 2 --hand-off
//! RUST_LOG=debug cargo run --example tcp_echo           # connections, pauses, stops
//! cargo run --release --example tcp_echo -- --stats-top # the live view
//! kill -USR1 $(pgrep tcp_echo)                          # its table, now
//! nc 127.0.0.1 7777                                     # then type lines
//! ```

use std::io;
use std::net::ToSocketAddrs;
use std::process::ExitCode;
use std::time::Duration;

use log::{debug, info};
use sockmux::{
    Acceptor, CloseReason, Context, Dispatcher, Loops, Protocol, Raw, Signal, Stream, StreamIo,
    Token,
};

mod server;
use server::View;

const USAGE: &str = "usage: tcp_echo [--addr ADDR] [--port PORT] [--threads N] [--hand-off]\n\
    \x20               [--stats] [--stats-top]\n\n\
    Echoes every TCP connection on ADDR:PORT (default 127.0.0.1:7777; port 0 picks one),\n\
    with N event loops on N threads (default 1); with --hand-off, loop 0 accepts\n\
    and hands each connection to the least-loaded loop (the default off Linux).\n\
    --stats prints a line per second per loop (connections, events/s, bytes/s,\n\
    loop busy, handler p99); --stats-top adds the ten busiest sockets every 10 s;\n\
    SIGUSR1 prints that table at once.";

/// How long a graceful stop may take.
const GRACE: Duration = Duration::from_secs(5);

/// Signals that stop the server gracefully.
const STOP_SIGNALS: [Signal; 2] = [Signal::Interrupt, Signal::Terminate];

fn main() -> ExitCode {
    server::main_threaded("tcp_echo", USAGE, 7777, |addr, loops, view| {
        if loops.count() == 1 {
            run(addr, view)
        } else {
            run_loops(addr, loops, view)
        }
    })
}

fn run(addr: impl ToSocketAddrs, view: View) -> io::Result<()> {
    // Room for 1024 connections up front: their slots are allocated once.
    let mut dispatcher = Dispatcher::with_capacity(Stats::default(), 1024)?;
    let listener = dispatcher
        .sockets()
        .listen_tcp(addr, Acceptor::new(connection))?;
    view.install(&mut dispatcher.sockets())?;
    eprintln!(
        "tcp_echo: listening on {}",
        dispatcher.sockets().local_addr(listener)?
    );
    dispatcher.stop_on_signals(&STOP_SIGNALS, GRACE)?;
    dispatcher.run()?;
    stopped(dispatcher.state());
    Ok(())
}

/// `loops` serving `addr`, each with its own [`Stats`] (and live view).
fn run_loops(addr: impl ToSocketAddrs, loops: Loops, view: View) -> io::Result<()> {
    let threads = loops.count();
    let server = loops
        .capacity(1024)
        .stop_on_signals(&STOP_SIGNALS, GRACE)
        .serve(addr, move |setup| {
            setup.on_connection(connection);
            view.install_in(setup)?;
            Ok(Stats::default())
        })?;
    let addr = server.local_addr().expect("serve listens");
    eprintln!("tcp_echo: listening on {addr}");
    info!("{threads} loops serving");
    let loops = server.join()?;
    let total = loops.iter().fold(Stats::default(), |total, stats| Stats {
        accepted: total.accepted + stats.accepted,
        echoed: total.echoed + stats.echoed,
    });
    let spread: Vec<u64> = loops.iter().map(|stats| stats.accepted).collect();
    info!("connections per loop: {spread:?}");
    stopped(&total);
    Ok(())
}

/// An echo [`Stream`] for a new connection.
fn connection(t: Token, cx: &mut Context<'_, Stats>) -> Stream<Raw, Echo> {
    // Echoes are small writes: do not wait to fill a segment.
    if let Ok(socket) = cx.sockets.socket(t) {
        let _ = socket2::SockRef::from(socket).set_tcp_nodelay(true);
    }
    cx.state.accepted += 1;
    debug!("{t}: connected");
    Stream::new(Raw, Echo::default())
}

/// The last line: what the server did.
fn stopped(stats: &Stats) {
    eprintln!(
        "tcp_echo: stopped after {} connections, {} bytes echoed",
        stats.accepted, stats.echoed
    );
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
