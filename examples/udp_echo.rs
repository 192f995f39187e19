//! A UDP echo server: one responder on one bound socket sends every
//! datagram back to whoever sent it. Each event handles at most
//! `DATAGRAMS_PER_EVENT` datagrams, so a burst never holds the loop; a reply
//! the kernel has no room for is dropped, as UDP may drop anything.
//!
//! ```text
//! cargo run --example udp_echo                          # 127.0.0.1:7778
//! cargo run --example udp_echo -- --addr 0.0.0.0 --port 0
//! RUST_LOG=trace cargo run --example udp_echo           # every event
//! nc -u 127.0.0.1 7778                                  # then type lines
//! ```

use std::io::{self, ErrorKind};
use std::net::ToSocketAddrs;
use std::process::ExitCode;
use std::time::Duration;

use log::{debug, warn};
use sockmux::{Action, Context, Dispatcher, Event, Responder, Signal, Token};

mod server;

const USAGE: &str = "usage: udp_echo [--addr ADDR] [--port PORT]\n\n\
    Echoes every UDP datagram sent to ADDR:PORT (default 127.0.0.1:7778; port 0 picks one).";

/// Datagrams handled per event at most.
const DATAGRAMS_PER_EVENT: usize = 64;
/// Larger than any UDP payload (65,507 bytes over IPv4), so no datagram is
/// cut short.
const MAX_DATAGRAM: usize = 65_536;

fn main() -> ExitCode {
    server::main("udp_echo", USAGE, 7778, |addr| run(addr))
}

fn run(addr: impl ToSocketAddrs) -> io::Result<()> {
    let mut dispatcher = Dispatcher::new(Stats::default())?;
    let server = bind(&mut dispatcher, addr)?;
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

/// Binds `addr` with an echo [`Server`]; returns its token.
fn bind(dispatcher: &mut Dispatcher<Stats>, addr: impl ToSocketAddrs) -> io::Result<Token> {
    dispatcher.sockets().bind_udp(
        addr,
        Server {
            buf: vec![0; MAX_DATAGRAM],
        },
    )
}

/// The shared state: counters.
#[derive(Debug, Default)]
struct Stats {
    echoed: u64,
    dropped: u64,
}

/// Sends each datagram back to its sender.
struct Server {
    buf: Vec<u8>,
}

impl Responder<Stats> for Server {
    fn ready(&mut self, event: Event, cx: &mut Context<'_, Stats>) -> Action {
        match event {
            Event::Read(t) => {
                for _ in 0..DATAGRAMS_PER_EVENT {
                    let (n, from) = match cx.sockets.recv_from(t, &mut self.buf) {
                        Ok(got) => got,
                        // Drained: the table waits for the next datagram.
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(e) => {
                            // An ICMP error from an earlier reply, say: the
                            // socket stays usable.
                            debug!("recv: {e}");
                            continue;
                        }
                    };
                    match cx.sockets.send_to(t, &self.buf[..n], from) {
                        Ok(_) => cx.state.echoed += 1,
                        Err(e) => {
                            // WouldBlock: no room in the send buffer; UDP
                            // may drop, and so does this server.
                            debug!("reply to {from} dropped: {e}");
                            cx.state.dropped += 1;
                        }
                    }
                }
            }
            Event::Error(t) => {
                if let Ok(Some(e)) = cx.sockets.take_error(t) {
                    warn!("{t}: {e}");
                }
            }
            _ => {}
        }
        Action::Continue
    }
}
