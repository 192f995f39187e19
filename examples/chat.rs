//! A TCP line chat: each line a client sends goes to every other client,
//! prefixed with the sender's address. Each connection is a library
//! `Stream` with the `Lines` codec; the member list and each member's
//! inbox live in the shared state, so one member's protocol can leave a
//! line for all the others and notify them (`Registry::notify`): each
//! writes it through its own stream, in order with its other output.
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
use std::io;
use std::net::ToSocketAddrs;
use std::process::ExitCode;
use std::time::Duration;

use log::{debug, info, warn};
use sockmux::{
    Acceptor, CloseReason, Context, Dispatcher, Lines, Protocol, Signal, Stream, StreamIo, Token,
};

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

/// Listens on `addr`, with a [`Stream`] of lines for each member; returns
/// its token. The library's `Acceptor` pauses the listener when
/// descriptors run out.
fn listen(dispatcher: &mut Dispatcher<Chat>, addr: impl ToSocketAddrs) -> io::Result<Token> {
    let acceptor = Acceptor::new(|t: Token, _: &mut Context<'_, Chat>| {
        debug!("{t}: a member joined");
        Stream::new(Lines::new(MAX_LINE), Member).read_per_event(READ_PER_EVENT)
    });
    dispatcher.sockets().listen_tcp(addr, acceptor)
}

/// The shared state: who is here, and the lines left for each.
#[derive(Debug, Default)]
struct Chat {
    members: BTreeMap<Token, Inbox>,
}

/// One member, as the others see it.
#[derive(Debug)]
struct Inbox {
    name: String,
    /// Lines from the others, not handed to this member's stream yet.
    lines: Vec<u8>,
}

/// One member's protocol.
#[derive(Debug)]
struct Member;

impl Protocol<Chat> for Member {
    fn opened(&mut self, io: &mut StreamIo<'_, '_, Chat>) {
        let t = io.token();
        let name = match io.cx.sockets.peer_addr(t) {
            Ok(addr) => addr.to_string(),
            Err(_) => t.to_string(),
        };
        let others = io.cx.state.members.len();
        io.write(format!("* you are {name}; {others} others here\n").as_bytes());
        debug!("{t}: {name} joined");
        let lines = Vec::new();
        io.cx.state.members.insert(t, Inbox { name, lines });
    }

    /// Leaves the line in every other member's inbox and notifies them.
    fn frame(&mut self, line: &[u8], io: &mut StreamIo<'_, '_, Chat>) {
        let from = io.token();
        let cx = &mut *io.cx;
        let Some(sender) = cx.state.members.get_mut(&from) else {
            return;
        };
        let name = std::mem::take(&mut sender.name);
        for (&to, inbox) in cx.state.members.iter_mut().filter(|(&t, _)| t != from) {
            inbox.lines.extend_from_slice(name.as_bytes());
            inbox.lines.extend_from_slice(b": ");
            inbox.lines.extend_from_slice(line);
            inbox.lines.push(b'\n');
            let _ = cx.sockets.notify(to);
        }
        if let Some(sender) = cx.state.members.get_mut(&from) {
            sender.name = name;
        }
    }

    /// Writes what the others left; drops a member that does not read.
    fn notified(&mut self, io: &mut StreamIo<'_, '_, Chat>) {
        let t = io.token();
        let Some(inbox) = io.cx.state.members.get_mut(&t) else {
            return;
        };
        let mut lines = std::mem::take(&mut inbox.lines);
        if io.queued() + lines.len() > MAX_QUEUED {
            warn!("{t}: does not read; dropped");
            io.cx.state.members.remove(&t);
            io.abort();
            return;
        }
        io.write(&lines);
        lines.clear();
        if let Some(inbox) = io.cx.state.members.get_mut(&t) {
            inbox.lines = lines; // keep the allocation
        }
    }

    /// Answers an overlong line with an error; the stream closes after it.
    fn frame_error(&mut self, _: &io::Error, io: &mut StreamIo<'_, '_, Chat>) {
        info!("{}: line longer than {MAX_LINE} bytes; closing", io.token());
        io.write(format!("error: line longer than {MAX_LINE} bytes\n").as_bytes());
    }

    fn closed(&mut self, _: CloseReason, _: usize, cx: &mut Context<'_, Chat>) {
        if let Some(member) = cx.state.members.remove(&cx.token) {
            debug!("{}: {} left", cx.token, member.name);
        }
    }
}
