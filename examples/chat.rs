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
//! With `--threads N` (N > 1) it runs N loops (`Loops`), each with its own
//! members: a line goes to the members of its own loop as above and, once
//! formatted, to every other loop as a message (`Handle::send`), whose
//! handler leaves it in that loop's inboxes. Nothing is locked; only the
//! count of members, for the welcome line, is shared (an atomic).
//!
//! With `--stats` it prints a line per second to the standard output
//! (per loop,
//! prefixed `[loop i]`, with several: connections, events/s, bytes/s in and out, how busy the loop was and
//! the 99th percentile of handler time, over the last second); with
//! `--stats-top`, also the ten busiest sockets every ten seconds; on
//! SIGUSR1 either prints that table at once (the `stats` feature, on by
//! default; `server/stats.rs`).
//!
//! ```text
//! cargo run --example chat                      # 127.0.0.1:7070
//! cargo run --example chat -- --port 0 --addr 0.0.0.0
//! cargo run --example chat -- --threads 2       # two loops
//! cargo run --example chat -- --stats-top       # the live view
//! nc 127.0.0.1 7070                             # in two terminals
//! ```

use std::collections::BTreeMap;
use std::io;
use std::net::ToSocketAddrs;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use log::{debug, info, warn};
use sockmux::{
    Acceptor, CloseReason, Context, Dispatcher, Handle, Lines, Loops, Protocol, Registry, Signal,
    Stream, StreamIo, Token,
};

mod server;
use server::View;

const USAGE: &str = "usage: chat [--addr ADDR] [--port PORT] [--threads N] [--hand-off]\n\
    \x20           [--stats] [--stats-top]\n\n\
    A line chat on ADDR:PORT (default 127.0.0.1:7070; port 0 picks one):\n\
    every line a client sends goes to all the others. N event loops on N\n\
    threads (default 1); with --hand-off, loop 0 accepts and hands each\n\
    connection to the least-loaded loop (the default off Linux).\n\
    --stats prints a line per second per loop (connections, events/s, bytes/s,\n\
    loop busy, handler p99); --stats-top adds the ten busiest sockets every 10 s;\n\
    SIGUSR1 prints that table at once.";

/// Longest line accepted, newline excluded.
const MAX_LINE: usize = 4096;
/// Bytes queued for one member at most; past that it is dropped.
const MAX_QUEUED: usize = 256 * 1024;
/// Bytes read from one connection per event at most.
const READ_PER_EVENT: usize = 16 * 1024;
/// How long a graceful stop may take.
const GRACE: Duration = Duration::from_secs(2);

/// Signals that stop the server gracefully.
const STOP_SIGNALS: [Signal; 2] = [Signal::Interrupt, Signal::Terminate];

fn main() -> ExitCode {
    server::main_threaded("chat", USAGE, 7070, |addr, loops, view| {
        if loops.count() == 1 {
            run(addr, view)
        } else {
            run_loops(addr, loops, view)
        }
    })
}

fn run(addr: impl ToSocketAddrs, view: View) -> io::Result<()> {
    let mut dispatcher = Dispatcher::new(Chat::default())?;
    // The library's `Acceptor` pauses the listener when descriptors run out.
    let listener = dispatcher
        .sockets()
        .listen_tcp(addr, Acceptor::new(member))?;
    view.install(&mut dispatcher.sockets())?;
    eprintln!(
        "chat: listening on {}",
        dispatcher.sockets().local_addr(listener)?
    );
    dispatcher.stop_on_signals(&STOP_SIGNALS, GRACE)?;
    dispatcher.run()
}

/// `loops`, each with its members (and live view); lines cross loops as
/// messages.
fn run_loops(addr: impl ToSocketAddrs, loops: Loops, view: View) -> io::Result<()> {
    let threads = loops.count();
    let everyone = Arc::new(AtomicUsize::new(0));
    let server = loops
        .messages::<Arc<[u8]>>()
        .stop_on_signals(&STOP_SIGNALS, GRACE)
        .serve(addr, move |setup| {
            let me = setup.index();
            let others = setup.handles().iter().filter(|h| h.index() != me);
            let chat = Chat {
                members: BTreeMap::new(),
                others: others.cloned().collect(),
                everyone: Arc::clone(&everyone),
                said: Vec::new(),
            };
            setup.on_connection(member);
            view.install_in(setup)?;
            setup.on_message(|line: Arc<[u8]>, chat: &mut Chat, sockets| {
                chat.deliver(&line, None, sockets);
            });
            Ok(chat)
        })?;
    let addr = server.local_addr().expect("serve listens");
    eprintln!("chat: listening on {addr}");
    info!("{threads} loops serving");
    server.join().map(drop)
}

/// A [`Stream`] of lines for a new member.
fn member(t: Token, _: &mut Context<'_, Chat>) -> Stream<Lines, Member> {
    debug!("{t}: a member joined");
    Stream::new(Lines::new(MAX_LINE), Member).read_per_event(READ_PER_EVENT)
}

/// The state of a loop: who is here, the lines left for each, and the
/// other loops (none with one loop).
#[derive(Debug, Default)]
struct Chat {
    members: BTreeMap<Token, Inbox>,
    others: Vec<Handle<Arc<[u8]>>>,
    /// Members in every loop.
    everyone: Arc<AtomicUsize>,
    /// The buffer a line is formatted in, kept between lines.
    said: Vec<u8>,
}

impl Chat {
    /// Leaves `line` (newline included) in the inbox of every member of
    /// this loop but `except`, and notifies them.
    fn deliver(&mut self, line: &[u8], except: Option<Token>, sockets: &mut Registry<'_, Chat>) {
        for (&to, inbox) in self.members.iter_mut() {
            if Some(to) != except {
                inbox.lines.extend_from_slice(line);
                let _ = sockets.notify(to);
            }
        }
    }

    /// Forgets a member; true if it was here.
    fn leave(&mut self, t: Token) -> Option<Inbox> {
        let inbox = self.members.remove(&t)?;
        self.everyone.fetch_sub(1, Ordering::Relaxed);
        Some(inbox)
    }
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
        let others = io.cx.state.everyone.fetch_add(1, Ordering::Relaxed);
        io.write(format!("* you are {name}; {others} others here\n").as_bytes());
        debug!("{t}: {name} joined");
        let lines = Vec::new();
        io.cx.state.members.insert(t, Inbox { name, lines });
    }

    /// Leaves the line in every other member's inbox and notifies them;
    /// sends it to the other loops, if any.
    fn frame(&mut self, line: &[u8], io: &mut StreamIo<'_, '_, Chat>) {
        let from = io.token();
        let cx = &mut *io.cx;
        let Some(sender) = cx.state.members.get(&from) else {
            return;
        };
        // The line as the others read it, in a buffer kept for the next.
        let mut said = std::mem::take(&mut cx.state.said);
        said.clear();
        said.extend_from_slice(sender.name.as_bytes());
        said.extend_from_slice(b": ");
        said.extend_from_slice(line);
        said.push(b'\n');
        cx.state.deliver(&said, Some(from), &mut cx.sockets);
        if !cx.state.others.is_empty() {
            let shared: Arc<[u8]> = Arc::from(&said[..]);
            for other in &cx.state.others {
                if let Err(e) = other.send(Arc::clone(&shared)) {
                    debug!("loop {}: {e}", other.index());
                }
            }
        }
        cx.state.said = said;
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
            io.cx.state.leave(t);
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
        if let Some(member) = cx.state.leave(cx.token) {
            debug!("{}: {} left", cx.token, member.name);
        }
    }
}
