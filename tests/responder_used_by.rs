//! sockmux as a user would use it: a line service ("shout": every line comes
//! back in capitals) with a responder for the listener and one for each
//! connection, shared counters in the state, driven by real sockets from
//! client threads, stopped gracefully by a control command.

use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::net::TcpStream;
use std::time::Duration;

use sockmux::{Action, Context, Dispatcher, Event, Interest, Responder, Token};

mod util;
use util::LIMIT;

/// The program's state: what every responder may read and update.
#[derive(Debug, Default)]
struct Shout {
    connections: u32,
    lines: u32,
    closed: u32,
}

/// Accepts connections and gives each a `Conn`.
struct Listener;

impl Responder<Shout> for Listener {
    fn ready(&mut self, event: Event, cx: &mut Context<'_, Shout>) -> Action {
        let Event::Read(listener) = event else {
            return Action::Continue;
        };
        loop {
            match cx.sockets.accept(listener, Conn::default()) {
                Ok(_) => cx.state.connections += 1,
                // No one else is waiting.
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Action::Continue,
                Err(e) => panic!("accept: {e}"),
            }
        }
    }
}

/// One connection: a partial line in, replies not yet written out.
#[derive(Default)]
struct Conn {
    input: Vec<u8>,
    output: Vec<u8>,
}

impl Conn {
    fn on_read(&mut self, t: Token, cx: &mut Context<'_, Shout>) -> std::io::Result<Action> {
        let mut buf = [0; 512];
        let mut eof = false;
        while !eof {
            match cx.sockets.read(t, &mut buf) {
                // The peer is done; its last lines are still answered.
                Ok(0) => eof = true,
                Ok(n) => self.input.extend_from_slice(&buf[..n]),
                // Everything read: wait for more.
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        while let Some(end) = self.input.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.input.drain(..=end).collect();
            if line == b"SHUTDOWN\n" {
                cx.stop_gracefully(Duration::from_secs(5));
                continue;
            }
            cx.state.lines += 1;
            self.output.extend(line.to_ascii_uppercase());
        }
        match self.on_write(t, cx)? {
            // A real service would flush before closing; the clients here
            // read every reply before they hang up.
            Action::Continue if eof => Ok(Action::Close),
            action => Ok(action),
        }
    }

    fn on_write(&mut self, t: Token, cx: &mut Context<'_, Shout>) -> std::io::Result<Action> {
        while !self.output.is_empty() {
            match cx.sockets.write(t, &self.output) {
                Ok(n) => {
                    self.output.drain(..n);
                }
                // Full: the next Write event brings us back.
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        let interest = if self.output.is_empty() {
            Interest::READABLE
        } else {
            Interest::BOTH
        };
        cx.sockets.set_interest(t, interest)?;
        Ok(Action::Continue)
    }
}

impl Responder<Shout> for Conn {
    fn ready(&mut self, event: Event, cx: &mut Context<'_, Shout>) -> Action {
        let result = match event {
            Event::Read(t) => self.on_read(t, cx),
            Event::Write(t) => self.on_write(t, cx),
            _ => Ok(Action::Close),
        };
        result.unwrap_or(Action::Close)
    }

    fn stop(&mut self, _: &mut Context<'_, Shout>) -> Action {
        if self.output.is_empty() {
            Action::Close
        } else {
            Action::Continue
        }
    }

    fn closed(&mut self, cx: &mut Context<'_, Shout>) {
        cx.state.closed += 1;
    }
}

#[test]
fn a_line_service_with_a_listener_and_connection_responders() {
    let mut dispatcher = Dispatcher::new(Shout::default()).unwrap();
    let listener = dispatcher
        .sockets()
        .listen_tcp("127.0.0.1:0", Listener)
        .unwrap();
    let addr = dispatcher.sockets().local_addr(listener).unwrap();

    let clients: Vec<_> = (0..10)
        .map(|i| {
            std::thread::spawn(move || {
                let stream = TcpStream::connect(addr).unwrap();
                stream.set_read_timeout(Some(LIMIT)).unwrap();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut writer = stream;
                // Pipelined: all lines first, then all replies.
                for n in 0..20 {
                    writeln!(writer, "client {i} line {n}").unwrap();
                }
                for n in 0..20 {
                    let mut reply = String::new();
                    reader.read_line(&mut reply).unwrap();
                    assert_eq!(reply, format!("CLIENT {i} LINE {n}\n"));
                }
            })
        })
        .collect();
    let control = std::thread::spawn(move || {
        for client in clients {
            client.join().expect("a client's checks");
        }
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.write_all(b"SHUTDOWN\n").unwrap();
    });

    // Runs until the control command's graceful stop has closed everything
    // (bounded, in case it never comes).
    dispatcher.run_for(LIMIT).unwrap();
    control.join().expect("the clients");
    assert!(dispatcher.sockets().is_empty(), "stopped, not timed out");
    let shout = dispatcher.state();
    assert_eq!(shout.connections, 11);
    assert_eq!(shout.lines, 200);
    assert_eq!(shout.closed, 11);
}
