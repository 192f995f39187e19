//! The Python sketch's demo, in Rust: a UDP client sends a rolling counter to
//! a UDP server on every `Write`, and closes after ten; the server prints each
//! datagram as a byte-string literal (`b"0"` ... `b"9"`). The program ends as
//! soon as the tenth arrives, or when a 10-second timer fires (the sketch
//! checked the clock by hand; here the loop itself knows time).
//!
//! ```text
//! cargo run --example counter                 # port 9876
//! cargo run --example counter -- --port 0     # any free port
//! RUST_LOG=trace cargo run --example counter  # every event
//! ```

use std::io::{self, ErrorKind, Write as _};
use std::process::ExitCode;
use std::time::Duration;

use sockmux::{Event, Events, Interest, Sockets};

const USAGE: &str = "usage: counter [--port PORT]\n\n\
    Sends 0..9 from a UDP client to a UDP server on 127.0.0.1:PORT (default 9876)\n\
    and prints each datagram the server receives.";

fn main() -> ExitCode {
    env_logger::init();
    let port = match parse_args() {
        Ok(Some(port)) => port,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("counter: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(port) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("counter: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `Ok(None)` means `--help`.
fn parse_args() -> Result<Option<u16>, lexopt::Error> {
    use lexopt::prelude::*;
    let mut port = 9876;
    let mut parser = lexopt::Parser::from_env();
    while let Some(arg) = parser.next()? {
        match arg {
            Long("port") | Short('p') => port = parser.value()?.parse()?,
            Long("help") | Short('h') => return Ok(None),
            _ => return Err(arg.unexpected()),
        }
    }
    Ok(Some(port))
}

fn run(port: u16) -> io::Result<()> {
    let mut sockets = Sockets::new()?;
    let server = sockets
        .bind_udp(("127.0.0.1", port))
        .map_err(|e| io::Error::new(e.kind(), format!("cannot bind 127.0.0.1:{port}: {e}")))?;
    // With `--port 0` the OS picks the port: guard on the one it picked.
    let server_port = sockets.local_addr(server)?.port();
    let client = sockets.connect_udp(("127.0.0.1", server_port))?;
    // The client writes whenever it can, as in the sketch.
    sockets.set_interest(client, Interest::WRITABLE)?;

    // Shared state: plain locals, read and written by the arms below.
    let mut count = 0u32;
    let mut received = 0u32;
    let time_limit = sockets.timer_after(Duration::from_secs(10));
    let mut events = Events::with_capacity(64);
    let mut buf = [0u8; 1024];
    let mut out = io::stdout().lock();

    'run: while received < 10 {
        sockets.poll(&mut events, Some(Duration::from_secs(1)))?;
        if events.is_empty() {
            break; // nothing became ready within a second
        }
        for event in &events {
            match event {
                Event::Write(sock) if sock == client => {
                    sockets.send(sock, count.to_string().as_bytes())?;
                    count += 1;
                    if count == 10 {
                        sockets.remove(sock)?; // closes it
                    }
                }
                // A guard by the socket's local port, as in the sketch.
                Event::Read(sock) if sockets.local_addr(sock)?.port() == server_port => {
                    match sockets.recv(sock, &mut buf) {
                        Ok(n) => {
                            writeln!(out, "{}", ByteStr(&buf[..n]))?;
                            received += 1;
                        }
                        // Drained: the table re-arms the socket and waits.
                        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                        Err(e) => return Err(e),
                    }
                }
                Event::Timer(t) if t == time_limit => break 'run,
                _ => {}
            }
        }
    }
    out.flush()
}

/// Formats bytes as a byte-string literal: `b"0"`.
struct ByteStr<'a>(&'a [u8]);

impl std::fmt::Display for ByteStr<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("b\"")?;
        for &byte in self.0 {
            write!(f, "{}", std::ascii::escape_default(byte))?;
        }
        f.write_str("\"")
    }
}
