//! A TCP line chat: each line a client sends goes to every other client,
//! prefixed with the sender's address. The member list and every member's
//! outgoing queue live in the shared state, so one connection's responder
//! can queue lines for all the others and turn on their write interest.
//!
//! Bad input costs a bounded amount: a line longer than `MAX_LINE` bytes
//! gets an error reply and the connection is closed; a member whose queue
//! would pass `MAX_QUEUED` bytes (it does not read) is dropped; each event
//! reads at most `READ_PER_EVENT` bytes.
//!
//! ```text
//! cargo run --example chat                      # 127.0.0.1:7070
//! cargo run --example chat -- --port 0 --addr 0.0.0.0
//! nc 127.0.0.1 7070                             # in two terminals
//! ```

use std::collections::BTreeMap;
use std::io::{self, ErrorKind};
use std::net::ToSocketAddrs;
use std::process::ExitCode;
use std::time::Duration;

use log::{debug, info, warn};
use sockmux::{Acceptor, Action, Context, Dispatcher, Event, Interest, Responder, Signal, Token};

mod server;

const USAGE: &str = "usage: chat [--addr ADDR] [--port PORT]\n\n\
    A line chat on ADDR:PORT (default 127.0.0.1:7070; port 0 picks one):\n\
    every line a client sends goes to all the others.";

/// Longest line accepted, newline excluded.
const MAX_LINE: usize = 4096;
/// Bytes queued for one member at most; past that it is dropped.
const MAX_QUEUED: usize = 256 * 1024;
/// Bytes read from one connection per event at most.
const READ_PER_EVENT: usize = 16 * 1024;
/// How long a graceful stop may take.
const GRACE: Duration = Duration::from_secs(2);

fn main() -> ExitCode {
    server::main("chat", USAGE, 7070, |addr| run(addr))
}

fn run(addr: impl ToSocketAddrs) -> io::Result<()> {
    let mut dispatcher = Dispatcher::new(Chat::default())?;
    let listener = listen(&mut dispatcher, addr)?;
    eprintln!(
        "chat: listening on {}",
        dispatcher.sockets().local_addr(listener)?
    );
    dispatcher.stop_on_signals(&[Signal::Interrupt, Signal::Terminate], GRACE)?;
    dispatcher.run()
}

/// Listens on `addr`, with a [`Conn`] for each member; returns its token.
/// The library's `Acceptor` pauses the listener when descriptors run out.
fn listen(dispatcher: &mut Dispatcher<Chat>, addr: impl ToSocketAddrs) -> io::Result<Token> {
    let acceptor = Acceptor::new(|t: Token, _: &mut Context<'_, Chat>| {
        debug!("{t}: a member joined");
        Conn::default()
    });
    dispatcher.sockets().listen_tcp(addr, acceptor)
}

/// The shared state: who is here, and what waits to be sent to each.
#[derive(Debug, Default)]
struct Chat {
    members: BTreeMap<Token, Member>,
}

/// One member, as the others see it.
#[derive(Debug)]
struct Member {
    name: String,
    /// Lines for this member; `out[sent..]` is not written yet.
    out: Vec<u8>,
    sent: usize,
    /// Closing after an error reply: read no more, flush, close.
    closing: bool,
}

impl Member {
    fn pending(&self) -> usize {
        self.out.len() - self.sent
    }

    fn interest(&self) -> Interest {
        let mut interest = Interest::NONE;
        if !self.closing {
            interest |= Interest::READABLE;
        }
        if self.pending() > 0 {
            interest |= Interest::WRITABLE;
        }
        interest
    }
}

impl Chat {
    /// Queues `bytes` for `to` and asks for its `Write`; false if that would
    /// pass the member's bound.
    fn queue(cx: &mut Context<'_, Chat>, to: Token, bytes: &[u8]) -> bool {
        let Some(member) = cx.state.members.get_mut(&to) else {
            return true;
        };
        if member.pending() + bytes.len() > MAX_QUEUED {
            return false;
        }
        member.out.extend_from_slice(bytes);
        let _ = cx.sockets.set_interest(to, member.interest());
        true
    }

    /// Sends `line` from `from` to every other member; drops members that
    /// fell too far behind.
    fn broadcast(cx: &mut Context<'_, Chat>, from: Token, line: &[u8]) {
        let Some(sender) = cx.state.members.get(&from) else {
            return;
        };
        let mut message = Vec::with_capacity(sender.name.len() + line.len() + 3);
        message.extend_from_slice(sender.name.as_bytes());
        message.extend_from_slice(b": ");
        message.extend_from_slice(line);
        message.push(b'\n');
        let others: Vec<Token> = cx
            .state
            .members
            .keys()
            .copied()
            .filter(|&t| t != from)
            .collect();
        for to in others {
            if !Chat::queue(cx, to, &message) {
                warn!("{to}: does not read; dropped");
                cx.state.members.remove(&to);
                let _ = cx.sockets.remove(to);
            }
        }
    }
}

/// One member's connection: the start of a line not yet complete.
#[derive(Debug, Default)]
struct Conn {
    line: Vec<u8>,
}

impl Conn {
    /// Reads, and broadcasts every complete line.
    fn read(&mut self, t: Token, cx: &mut Context<'_, Chat>) -> io::Result<Action> {
        let mut buf = [0; 4096];
        let mut budget = READ_PER_EVENT;
        while budget > 0 {
            let n = match cx.sockets.read(t, &mut buf) {
                Ok(0) => return Ok(Action::Close), // the member left
                Ok(n) => n,
                // Drained: the table waits for more.
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            };
            budget = budget.saturating_sub(n);
            for piece in buf[..n].split_inclusive(|&b| b == b'\n') {
                let complete = piece.last() == Some(&b'\n');
                let piece = if complete {
                    &piece[..piece.len() - 1]
                } else {
                    piece
                };
                if self.line.len() + piece.len() > MAX_LINE {
                    self.refuse(t, cx);
                    return Ok(Action::Continue);
                }
                self.line.extend_from_slice(piece);
                if complete {
                    let mut line = std::mem::take(&mut self.line);
                    if line.last() == Some(&b'\r') {
                        line.pop();
                    }
                    Chat::broadcast(cx, t, &line);
                    line.clear();
                    self.line = line; // keep the allocation
                }
            }
            if n < buf.len() {
                break; // short read: nothing more for now
            }
        }
        Ok(Action::Continue)
    }

    /// Answers an overlong line with an error and closes after it.
    fn refuse(&mut self, t: Token, cx: &mut Context<'_, Chat>) {
        info!("{t}: line longer than {MAX_LINE} bytes; closing");
        self.line = Vec::new();
        let reply = format!("error: line longer than {MAX_LINE} bytes\n");
        if let Some(member) = cx.state.members.get_mut(&t) {
            member.closing = true;
        }
        Chat::queue(cx, t, reply.as_bytes());
    }

    /// Writes what is queued for this member.
    fn flush(t: Token, cx: &mut Context<'_, Chat>) -> io::Result<Action> {
        let Some(member) = cx.state.members.get_mut(&t) else {
            return Ok(Action::Close);
        };
        while member.sent < member.out.len() {
            match cx.sockets.write(t, &member.out[member.sent..]) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(n) => member.sent += n,
                // The send buffer is full: wait for the next Write.
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        if member.sent == member.out.len() {
            member.out.clear();
            member.sent = 0;
            if member.closing {
                return Ok(Action::Close);
            }
        }
        cx.sockets.set_interest(t, member.interest())?;
        Ok(Action::Continue)
    }
}

impl Responder<Chat> for Conn {
    fn registered(&mut self, cx: &mut Context<'_, Chat>) -> Action {
        let t = cx.token;
        let name = match cx.sockets.peer_addr(t) {
            Ok(addr) => addr.to_string(),
            Err(_) => t.to_string(),
        };
        let others = cx.state.members.len();
        let welcome = format!("* you are {name}; {others} others here\n");
        debug!("{t}: {name} joined");
        cx.state.members.insert(
            t,
            Member {
                name,
                out: Vec::new(),
                sent: 0,
                closing: false,
            },
        );
        Chat::queue(cx, t, welcome.as_bytes());
        Action::Continue
    }

    fn ready(&mut self, event: Event, cx: &mut Context<'_, Chat>) -> Action {
        let result = match event {
            Event::Read(t) => self.read(t, cx),
            Event::Write(t) => Conn::flush(t, cx),
            Event::Error(t) => match cx.sockets.take_error(t) {
                Ok(Some(e)) | Err(e) => Err(e),
                Ok(None) => Ok(Action::Continue),
            },
            _ => Ok(Action::Continue),
        };
        result.unwrap_or_else(|e| {
            debug!("{}: {e}; closing", cx.token);
            Action::Close
        })
    }

    fn stop(&mut self, cx: &mut Context<'_, Chat>) -> Action {
        let t = cx.token;
        match cx.state.members.get_mut(&t) {
            Some(member) if member.pending() > 0 => {
                member.closing = true;
                let _ = cx.sockets.set_interest(t, member.interest());
                Action::Continue
            }
            _ => Action::Close,
        }
    }

    fn closed(&mut self, cx: &mut Context<'_, Chat>) {
        if let Some(member) = cx.state.members.remove(&cx.token) {
            debug!("{}: {} left", cx.token, member.name);
        }
    }
}
