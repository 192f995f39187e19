//! Zero heap allocations per event in steady state through the responder
//! crate: an echo server made of two responders (a listener that registers
//! one responder per connection, as `tcp_echo` does), behind a
//! `Dispatcher`, driven by a client on the same thread, counted by a global
//! allocator. After a warm-up, any allocation on the loop's thread fails the
//! test.
//!
//! The echo server is this file's own: a counting allocator must be the
//! global allocator of the process that runs the loop, so this test cannot
//! run the `tcp_echo` binary (tests/responder_echo.rs does).

use std::io::{self, ErrorKind};
use std::net::TcpStream;

use sockmux::{Action, Context, Dispatcher, Event, Interest, Responder, Token};

mod util;
use util::alloc::{allocations_in, assert_the_counter_counts, Counting};
use util::round_trip;

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Size of one read call: a 40 KiB message takes several.
const READ_CHUNK: usize = 16 * 1024;

/// The shared state: the one buffer every connection reads into.
struct Scratch(Vec<u8>);

/// Accepts connections and registers an [`EchoConn`] for each.
struct EchoListener;

impl Responder<Scratch> for EchoListener {
    fn ready(&mut self, event: Event, cx: &mut Context<'_, Scratch>) -> Action {
        if let Event::Read(listener) = event {
            loop {
                match cx.sockets.accept(listener, EchoConn::default()) {
                    Ok(t) => {
                        // Echoes are small writes: do not wait to fill a
                        // segment.
                        let socket = cx.sockets.socket(t).unwrap();
                        socket2::SockRef::from(socket)
                            .set_tcp_nodelay(true)
                            .unwrap();
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) => panic!("accept: {e}"),
                }
            }
        }
        Action::Continue
    }
}

/// One connection: reads into the shared buffer and writes back at once;
/// keeps only what the socket did not take, in a queue that keeps its
/// memory for the next time.
#[derive(Default)]
struct EchoConn {
    out: Vec<u8>,
    sent: usize,
    writing: bool,
}

impl EchoConn {
    fn pending(&self) -> usize {
        self.out.len() - self.sent
    }

    /// Reads to `WouldBlock`, echoing each chunk; returns whether the peer
    /// finished sending.
    fn read(&mut self, t: Token, cx: &mut Context<'_, Scratch>) -> io::Result<bool> {
        let mut buf = std::mem::take(&mut cx.state.0);
        let result = loop {
            match cx.sockets.read(t, &mut buf) {
                Ok(0) => break Ok(true),
                Ok(n) => {
                    if let Err(e) = self.echo(t, cx, &buf[..n]) {
                        break Err(e);
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break Ok(false),
                Err(e) => break Err(e),
            }
        };
        cx.state.0 = buf;
        result
    }

    /// Writes `data` back now if nothing is queued before it; queues the
    /// rest.
    fn echo(&mut self, t: Token, cx: &mut Context<'_, Scratch>, mut data: &[u8]) -> io::Result<()> {
        while self.pending() == 0 && !data.is_empty() {
            match cx.sockets.write(t, data) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(n) => data = &data[n..],
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        self.out.extend_from_slice(data);
        Ok(())
    }

    /// Writes back as much of the queue as the socket takes.
    fn flush(&mut self, t: Token, cx: &mut Context<'_, Scratch>) -> io::Result<()> {
        while self.pending() > 0 {
            match cx.sockets.write(t, &self.out[self.sent..]) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        if self.pending() == 0 {
            // `clear` keeps the capacity: the next queue allocates nothing.
            self.out.clear();
            self.sent = 0;
        }
        Ok(())
    }
}

impl Responder<Scratch> for EchoConn {
    fn ready(&mut self, event: Event, cx: &mut Context<'_, Scratch>) -> Action {
        let result = match event {
            Event::Read(t) => self
                .read(t, cx)
                .and_then(|ended| self.flush(t, cx).map(|()| ended)),
            Event::Write(t) => self.flush(t, cx).map(|()| false),
            Event::Error(_) => Ok(true),
            _ => Ok(false),
        };
        match result {
            Ok(false) => {
                // Write interest only while something is queued.
                let writing = self.pending() > 0;
                if writing != self.writing {
                    self.writing = writing;
                    let interest = if writing {
                        Interest::READABLE | Interest::WRITABLE
                    } else {
                        Interest::READABLE
                    };
                    if cx.sockets.set_interest(cx.token, interest).is_err() {
                        return Action::Close;
                    }
                }
                Action::Continue
            }
            Ok(true) | Err(_) => Action::Close,
        }
    }
}

/// A dispatcher serving the echo responders and one connected client.
struct Echo {
    dispatcher: Dispatcher<Scratch>,
    client: TcpStream,
    back: Vec<u8>,
}

impl Echo {
    fn new() -> Echo {
        let mut dispatcher = Dispatcher::new(Scratch(vec![0; READ_CHUNK])).unwrap();
        let listener = dispatcher
            .sockets()
            .listen_tcp("127.0.0.1:0", EchoListener)
            .unwrap();
        let addr = dispatcher.sockets().local_addr(listener).unwrap();
        let client = TcpStream::connect(addr).unwrap();
        client.set_nodelay(true).unwrap();
        client.set_nonblocking(true).unwrap();
        Echo {
            dispatcher,
            client,
            back: vec![0; 64 * 1024],
        }
    }

    /// Sends `message` and turns the loop until all of it came back.
    fn round_trip(&mut self, message: &[u8]) {
        round_trip(
            &mut self.dispatcher,
            &mut self.client,
            message,
            &mut self.back,
        );
    }
}

fn steady_state_allocations(size: usize, rounds: usize) -> u64 {
    let message: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
    let mut echo = Echo::new();
    // Warm-up: the accept, the first registration, buffers at their size.
    for _ in 0..50 {
        echo.round_trip(&message);
    }
    allocations_in(|| {
        for _ in 0..rounds {
            echo.round_trip(&message);
        }
    })
}

#[test]
fn echo_responders_allocate_nothing_per_event_64_bytes() {
    assert_eq!(steady_state_allocations(64, 2000), 0);
}

#[test]
fn echo_responders_allocate_nothing_per_event_40_kib() {
    // Larger than one read (16 KiB): several reads and writes per message.
    assert_eq!(steady_state_allocations(40 * 1024, 300), 0);
}

#[test]
fn the_counter_sees_an_allocation() {
    assert_the_counter_counts();
}
