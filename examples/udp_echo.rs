//! A UDP echo server: one [`UdpSessions`] responder on one bound socket
//! sends every datagram back to whoever sent it, through a session per
//! peer. The library does the rest: at most 64 datagrams per event, so a
//! burst never holds the loop; a larger kernel receive buffer, so a burst
//! is not dropped; UDP errors logged, never fatal; peers silent for a
//! minute forgotten, at most `MAX_PEERS` at once. A reply the kernel has no
//! room for is dropped, as UDP may drop anything.
//!
//! With `--stats` it prints a line per second to the standard output
//! (connections, events/s, bytes/s in and out, how busy the loop was and
//! the 99th percentile of handler time, over the last second); with
//! `--stats-top`, also the ten busiest sockets every ten seconds; on
//! SIGUSR1 either prints that table at once (the `stats` feature, on by
//! default; `server/stats.rs`). UDP has no connections: the line counts 0 of
//! them, and its bytes are the bound socket's.
//!
//! ```text
//! cargo run --example udp_echo                          # 127.0.0.1:7778
//! cargo run --example udp_echo -- --addr 0.0.0.0 --port 0
//! RUST_LOG=trace cargo run --example udp_echo           # every event
//! cargo run --example udp_echo -- --stats               # the live view
//! nc -u 127.0.0.1 7778                                  # then type lines
//! ```

use std::io;
use std::net::ToSocketAddrs;
use std::process::ExitCode;
use std::time::Duration;

use log::debug;
use sockmux::{Dispatcher, Peer, Signal, UdpSessions};

mod server;
use server::View;

const USAGE: &str = "usage: udp_echo [--addr ADDR] [--port PORT] [--stats] [--stats-top]\n\n\
    Echoes every UDP datagram sent to ADDR:PORT (default 127.0.0.1:7778; port 0 picks one).\n\
    --stats prints a line per second (events/s, bytes/s, loop busy, handler p99);\n\
    --stats-top adds the busiest sockets every 10 s; SIGUSR1 prints that table at once.";

/// Peers served at once at most: a new one beyond is not answered until
/// another has been silent for the idle timeout.
const MAX_PEERS: usize = 100_000;

fn main() -> ExitCode {
    server::main("udp_echo", USAGE, 7778, |addr, view| run(addr, view))
}

fn run(addr: impl ToSocketAddrs, view: View) -> io::Result<()> {
    let mut dispatcher = Dispatcher::new(Stats::default())?;
    let sessions =
        UdpSessions::new(|_: &mut Peer<'_, '_, Stats>| Some(echo)).max_sessions(MAX_PEERS);
    let server = dispatcher.sockets().bind_udp(addr, sessions)?;
    view.install(&mut dispatcher.sockets())?;
    eprintln!(
        "udp_echo: listening on {}",
        dispatcher.sockets().local_addr(server)?
    );
    dispatcher.stop_on_signals(&[Signal::Interrupt, Signal::Terminate], Duration::ZERO)?;
    dispatcher.run()?;
    let stats = dispatcher.state();
    eprintln!(
        "udp_echo: stopped after {} datagrams echoed, {} dropped",
        stats.echoed, stats.dropped
    );
    Ok(())
}

/// The shared state: counters.
#[derive(Debug, Default)]
struct Stats {
    echoed: u64,
    dropped: u64,
}

/// Every peer's session: sends each datagram back.
fn echo(datagram: &[u8], peer: &mut Peer<'_, '_, Stats>) -> bool {
    match peer.send(datagram) {
        Ok(_) => peer.cx.state.echoed += 1,
        Err(e) => {
            // WouldBlock: no room in the send buffer; UDP may drop, and so
            // does this server.
            debug!("reply to {} dropped: {e}", peer.addr());
            peer.cx.state.dropped += 1;
        }
    }
    true
}
