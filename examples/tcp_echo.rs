//! A TCP echo server: the library's `Acceptor` for the listener, which
//! registers a `Conn` responder for each connection it accepts. Every byte a client sends
//! comes back, in order, however the client splits or pipelines its writes.
//!
//! Memory stays bounded whatever a client does: each connection queues at
//! most `HIGH_WATER` bytes of echo; at that mark the server stops reading
//! that client (the kernel then pushes back on it) until the queue drains to
//! `LOW_WATER`. Each event reads at most `READ_PER_EVENT` bytes, so a client
//! that floods the server cannot starve the others: level semantics bring
//! its `Read` back on the next turn. Out of file descriptors, the acceptor
//! pauses the listener instead of spinning. Ctrl-C (or SIGTERM) stops gracefully:
//! the listener closes, queued echoes are flushed, then connections close.
//!
//! ```text
//! cargo run --example tcp_echo                          # 127.0.0.1:7777
//! cargo run --example tcp_echo -- --addr 0.0.0.0 --port 0
//! RUST_LOG=debug cargo run --example tcp_echo           # connections, pauses, stops
//! nc 127.0.0.1 7777                                     # then type lines
//! ```

use std::io::{self, ErrorKind};
use std::net::ToSocketAddrs;
use std::process::ExitCode;
use std::time::Duration;

use log::{debug, info};
use sockmux::{Acceptor, Action, Context, Dispatcher, Event, Interest, Responder, Signal, Token};

mod server;

const USAGE: &str = "usage: tcp_echo [--addr ADDR] [--port PORT]\n\n\
    Echoes every TCP connection on ADDR:PORT (default 127.0.0.1:7777; port 0 picks one).";

/// Echo bytes queued per connection at which reading from it pauses.
const HIGH_WATER: usize = 256 * 1024;
/// Queued bytes at which reading resumes.
const LOW_WATER: usize = 64 * 1024;
/// Bytes read from one connection per event at most.
const READ_PER_EVENT: usize = 64 * 1024;
/// Size of one read call.
const READ_CHUNK: usize = 16 * 1024;
/// How long a graceful stop may take.
const GRACE: Duration = Duration::from_secs(5);

fn main() -> ExitCode {
    server::main("tcp_echo", USAGE, 7777, |addr| run(addr))
}

fn run(addr: impl ToSocketAddrs) -> io::Result<()> {
    let mut dispatcher = Dispatcher::new(Stats::default())?;
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

/// Listens on `addr`, with a [`Conn`] for each connection; returns the
/// listener's token.
fn listen(dispatcher: &mut Dispatcher<Stats>, addr: impl ToSocketAddrs) -> io::Result<Token> {
    let acceptor = Acceptor::new(|t: Token, cx: &mut Context<'_, Stats>| {
        // Echoes are small writes: do not wait to fill a segment.
        if let Ok(socket) = cx.sockets.socket(t) {
            let _ = socket2::SockRef::from(socket).set_tcp_nodelay(true);
        }
        cx.state.accepted += 1;
        debug!("{t}: connected");
        Conn::default()
    });
    dispatcher.sockets().listen_tcp(addr, acceptor)
}

/// The shared state: counters for the log, and the one read buffer every
/// connection reads into (a connection keeps only what it could not write
/// back at once, so an idle connection holds no buffer).
#[derive(Debug)]
struct Stats {
    accepted: u64,
    echoed: u64,
    scratch: Vec<u8>,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            accepted: 0,
            echoed: 0,
            scratch: vec![0; READ_CHUNK],
        }
    }
}

/// One connection: what was read and not yet written back.
#[derive(Debug)]
struct Conn {
    /// Bytes read; `out[sent..]` still to be written back.
    out: Vec<u8>,
    sent: usize,
    /// Reading paused at the high-water mark.
    paused: bool,
    /// The peer finished sending (read returned 0).
    eof: bool,
    /// A graceful stop: flush, read no more.
    stopping: bool,
    interest: Interest,
}

impl Default for Conn {
    fn default() -> Self {
        Conn {
            out: Vec::new(),
            sent: 0,
            paused: false,
            eof: false,
            stopping: false,
            interest: Interest::READABLE,
        }
    }
}

impl Conn {
    fn pending(&self) -> usize {
        self.out.len() - self.sent
    }

    /// Reads up to `READ_PER_EVENT` bytes, never past the high-water mark,
    /// into the shared buffer, and echoes them at once; only what the socket
    /// does not take is queued.
    fn read(&mut self, t: sockmux::Token, cx: &mut Context<'_, Stats>) -> io::Result<()> {
        let mut buf = std::mem::take(&mut cx.state.scratch);
        let result = self.read_into(t, cx, &mut buf);
        cx.state.scratch = buf;
        result
    }

    fn read_into(
        &mut self,
        t: sockmux::Token,
        cx: &mut Context<'_, Stats>,
        buf: &mut [u8],
    ) -> io::Result<()> {
        let mut budget = READ_PER_EVENT;
        while budget > 0 && !self.eof {
            let room = HIGH_WATER.saturating_sub(self.pending());
            if room == 0 {
                break;
            }
            let want = room.min(budget).min(buf.len());
            match cx.sockets.read(t, &mut buf[..want]) {
                Ok(0) => self.eof = true,
                Ok(n) => {
                    self.echo(t, cx, &buf[..n])?;
                    budget -= n;
                    if n < want {
                        break; // short read: nothing more for now
                    }
                }
                // Drained: the table waits for the next arrival.
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Writes `data` back now if nothing is queued before it; queues the rest.
    fn echo(
        &mut self,
        t: sockmux::Token,
        cx: &mut Context<'_, Stats>,
        mut data: &[u8],
    ) -> io::Result<()> {
        while self.pending() == 0 && !data.is_empty() {
            match cx.sockets.write(t, data) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(n) => {
                    data = &data[n..];
                    cx.state.echoed += n as u64;
                }
                // The send buffer is full: queue the rest for the next Write.
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        self.out.extend_from_slice(data);
        Ok(())
    }

    /// Writes back as much as the socket takes.
    fn flush(&mut self, t: sockmux::Token, cx: &mut Context<'_, Stats>) -> io::Result<()> {
        while self.sent < self.out.len() {
            match cx.sockets.write(t, &self.out[self.sent..]) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.sent += n;
                    cx.state.echoed += n as u64;
                }
                // The send buffer is full: wait for the next Write.
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        if self.sent == self.out.len() {
            // Drained: a large queue gives its memory back, a small one is
            // kept for the next burst.
            if self.out.capacity() > READ_CHUNK {
                self.out = Vec::new();
            } else {
                self.out.clear();
            }
            self.sent = 0;
        } else if self.sent >= LOW_WATER {
            self.out.drain(..self.sent);
            self.sent = 0;
        }
        Ok(())
    }

    /// Decides what happens next: close once done, otherwise the interest
    /// that fits the queue (with hysteresis between the water marks).
    fn next(&mut self, t: sockmux::Token, cx: &mut Context<'_, Stats>) -> Action {
        let pending = self.pending();
        if (self.eof || self.stopping) && pending == 0 {
            return Action::Close;
        }
        if !self.paused && pending >= HIGH_WATER {
            self.paused = true;
        } else if self.paused && pending <= LOW_WATER {
            self.paused = false;
        }
        let mut interest = Interest::NONE;
        if !(self.paused || self.eof || self.stopping) {
            interest |= Interest::READABLE;
        }
        if pending > 0 {
            interest |= Interest::WRITABLE;
        }
        if interest != self.interest {
            self.interest = interest;
            if cx.sockets.set_interest(t, interest).is_err() {
                return Action::Close;
            }
        }
        Action::Continue
    }
}

impl Responder<Stats> for Conn {
    fn ready(&mut self, event: Event, cx: &mut Context<'_, Stats>) -> Action {
        let result = match event {
            // Reading echoes at once; only a queue left over needs a flush.
            Event::Read(t) => self.read(t, cx).and_then(|()| match self.pending() {
                0 => Ok(()),
                _ => self.flush(t, cx),
            }),
            Event::Write(t) => self.flush(t, cx),
            Event::Error(t) => match cx.sockets.take_error(t) {
                Ok(Some(e)) | Err(e) => Err(e),
                Ok(None) => Ok(()),
            },
            _ => Ok(()),
        };
        match result {
            Ok(()) => self.next(cx.token, cx),
            Err(e) => {
                debug!("{}: {e}; closing", cx.token);
                Action::Close
            }
        }
    }

    fn stop(&mut self, cx: &mut Context<'_, Stats>) -> Action {
        self.stopping = true;
        if self.pending() > 0 {
            info!(
                "{}: flushing {} bytes before closing",
                cx.token,
                self.pending()
            );
        }
        self.next(cx.token, cx)
    }

    fn closed(&mut self, cx: &mut Context<'_, Stats>) {
        debug!("{}: closed", cx.token);
    }
}
