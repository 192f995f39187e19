//! The sketch's demo once more, with responders instead of one `match`: a
//! UDP client responder sends a rolling counter on every `Write` and closes
//! after ten; a UDP server responder prints each datagram as a byte-string
//! literal (`b"0"` ... `b"9"`). The counter lives in the shared state, which
//! both reach through their context. The program ends as soon as the tenth
//! datagram arrives, or when the server's 10-second timer fires. Output and
//! flags are those of the `counter` example.
//!
//! ```text
//! cargo run --example counter_responders                 # port 9876
//! cargo run --example counter_responders -- --port 0     # any free port
//! RUST_LOG=trace cargo run --example counter_responders  # every event
//! ```

use std::io::{self, ErrorKind, Write};
use std::process::ExitCode;
use std::time::Duration;

use sockmux::{Action, Context, Dispatcher, Event, Interest, Responder, TimerId};

const USAGE: &str = "usage: counter_responders [--port PORT]\n\n\
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
            eprintln!("counter_responders: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(port, io::stdout().lock()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("counter_responders: {e}");
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

/// Shared state: the sketch's "common context", plus where to print.
struct Shared<W> {
    count: u32,
    received: u32,
    out: W,
    /// The first error a responder could not handle; ends the run.
    error: Option<io::Error>,
}

fn run<W: Write + 'static>(port: u16, out: W) -> io::Result<()> {
    let mut dispatcher = Dispatcher::new(Shared {
        count: 0,
        received: 0,
        out,
        error: None,
    })?;
    let mut sockets = dispatcher.sockets();
    let server = sockets
        .bind_udp(("127.0.0.1", port), Server)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot bind 127.0.0.1:{port}: {e}")))?;
    // With `--port 0` the OS picks the port: connect to the one it picked.
    let server_port = sockets.local_addr(server)?.port();
    let client = sockets.connect_udp(("127.0.0.1", server_port), Client)?;
    // The client writes whenever it can, as in the sketch.
    sockets.set_interest(client, Interest::WRITABLE)?;
    dispatcher.run()?;
    let shared = dispatcher.state_mut();
    match shared.error.take() {
        Some(e) => Err(e),
        None => shared.out.flush(),
    }
}

/// Sends the counter on every `Write`; closes after ten.
struct Client;

impl<W: Write> Responder<Shared<W>> for Client {
    fn ready(&mut self, event: Event, cx: &mut Context<'_, Shared<W>>) -> Action {
        let Event::Write(sock) = event else {
            return Action::Continue;
        };
        match cx.sockets.send(sock, cx.state.count.to_string().as_bytes()) {
            Ok(_) => cx.state.count += 1,
            // No room in the send buffer: the next Write comes when there is.
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => {
                cx.state.error = Some(e);
                cx.stop();
            }
        }
        if cx.state.count == 10 {
            Action::Close // closes it
        } else {
            Action::Continue
        }
    }
}

/// Prints each datagram; stops the loop at the tenth or after 10 seconds.
struct Server;

impl<W: Write> Responder<Shared<W>> for Server {
    fn registered(&mut self, cx: &mut Context<'_, Shared<W>>) -> Action {
        cx.timer_after(Duration::from_secs(10)); // the time limit
        Action::Continue
    }

    fn ready(&mut self, event: Event, cx: &mut Context<'_, Shared<W>>) -> Action {
        let Event::Read(sock) = event else {
            return Action::Continue;
        };
        let mut buf = [0u8; 1024];
        match cx.sockets.recv(sock, &mut buf) {
            Ok(n) => {
                if let Err(e) = writeln!(cx.state.out, "{}", ByteStr(&buf[..n])) {
                    cx.state.error = Some(e);
                    cx.stop();
                }
                cx.state.received += 1;
                if cx.state.received == 10 {
                    cx.stop();
                }
            }
            // Drained: the table re-arms the socket and waits.
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => {
                cx.state.error = Some(e);
                cx.stop();
            }
        }
        Action::Continue
    }

    fn timer(&mut self, _: TimerId, cx: &mut Context<'_, Shared<W>>) -> Action {
        cx.stop();
        Action::Continue
    }
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
