//! Running and stopping a dispatcher: graceful stop with buffered data
//! pending (flushed, then closed), the stop deadline, `stop` and running
//! again, `run_for`, a graceful stop asked for by a handler, and the order
//! of hooks and timers.

mod util;

use std::io::{ErrorKind, Read};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use sockmux::{Action, Context, Dispatcher, Event, Interest, Responder, TimerId, Token};
use util::{turn_until, LIMIT};

const FIREHOSE: usize = 16 << 20;

#[derive(Default)]
struct Hose {
    /// A write answered WouldBlock: data is buffered in the responder.
    blocked: bool,
    /// Bytes still buffered when the stop hook ran.
    pending_at_stop: Option<usize>,
    /// Told to the client when the stop begins.
    go: Option<mpsc::Sender<()>>,
    closed: Vec<&'static str>,
}

struct HoseListener;

impl Responder<Hose> for HoseListener {
    fn ready(&mut self, event: Event, cx: &mut Context<'_, Hose>) -> Action {
        if let Event::Read(t) = event {
            while let Ok(conn) = cx.sockets.accept(t, Firehose::default()) {
                cx.sockets.set_interest(conn, Interest::WRITABLE).unwrap();
            }
        }
        Action::Continue
    }

    fn closed(&mut self, cx: &mut Context<'_, Hose>) {
        cx.state.closed.push("listener");
    }
}

/// Sends `FIREHOSE` bytes (byte i is `i % 251`) to its peer, then closes.
#[derive(Default)]
struct Firehose {
    sent: usize,
    stopping: bool,
}

impl Firehose {
    fn pending(&self) -> usize {
        FIREHOSE - self.sent
    }
}

impl Responder<Hose> for Firehose {
    fn ready(&mut self, event: Event, cx: &mut Context<'_, Hose>) -> Action {
        let Event::Write(t) = event else {
            return Action::Continue;
        };
        let mut chunk = [0u8; 64 * 1024];
        while self.sent < FIREHOSE {
            let len = chunk.len().min(self.pending());
            for (i, b) in chunk[..len].iter_mut().enumerate() {
                *b = ((self.sent + i) % 251) as u8;
            }
            match cx.sockets.write(t, &chunk[..len]) {
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    cx.state.blocked = true;
                    return Action::Continue;
                }
                Err(_) => return Action::Close,
            }
        }
        if self.stopping {
            Action::Close
        } else {
            let _ = cx.sockets.set_interest(t, Interest::NONE);
            Action::Continue
        }
    }

    fn stop(&mut self, cx: &mut Context<'_, Hose>) -> Action {
        cx.state.pending_at_stop = Some(self.pending());
        if let Some(go) = cx.state.go.take() {
            go.send(()).unwrap();
        }
        self.stopping = true;
        if self.pending() == 0 {
            Action::Close
        } else {
            Action::Continue
        }
    }

    fn closed(&mut self, cx: &mut Context<'_, Hose>) {
        cx.state.closed.push("firehose");
    }
}

fn hose() -> (Dispatcher<Hose>, SocketAddr, mpsc::Receiver<()>) {
    let (go, wait) = mpsc::channel();
    let mut dispatcher = Dispatcher::new(Hose {
        go: Some(go),
        ..Hose::default()
    })
    .unwrap();
    let listener = dispatcher
        .sockets()
        .listen_tcp("127.0.0.1:0", HoseListener)
        .unwrap();
    let addr = dispatcher.sockets().local_addr(listener).unwrap();
    (dispatcher, addr, wait)
}

#[test]
fn graceful_stop_flushes_buffered_data_then_closes() {
    let (mut dispatcher, addr, go) = hose();
    let client = std::thread::spawn(move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(LIMIT)).unwrap();
        // Reads only once the stop has begun.
        go.recv().unwrap();
        // The listener is closed by then: no new connection.
        let refused = TcpStream::connect(addr).unwrap_err();
        assert_eq!(refused.kind(), ErrorKind::ConnectionRefused);
        let mut got = Vec::new();
        stream.read_to_end(&mut got).unwrap();
        got
    });
    turn_until(&mut dispatcher, LIMIT, |d| d.state().blocked);
    let start = Instant::now();
    dispatcher.stop_gracefully(LIMIT).unwrap();
    assert!(start.elapsed() < LIMIT, "flushed before the deadline");
    let got = client.join().expect("the client");
    assert_eq!(got.len(), FIREHOSE);
    assert!(got.iter().enumerate().all(|(i, &b)| b == (i % 251) as u8));
    let state = dispatcher.state();
    assert!(state.pending_at_stop.unwrap() > 0, "data was pending");
    assert_eq!(state.closed, ["listener", "firehose"]);
    assert!(dispatcher.sockets().is_empty());
}

#[test]
fn graceful_stop_closes_what_is_left_at_the_deadline() {
    let (mut dispatcher, addr, go) = hose();
    let (done, finish) = mpsc::channel::<()>();
    let client = std::thread::spawn(move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        go.recv().unwrap();
        // Never reads until the server has given up; then reads what is
        // left and the end (or a reset).
        finish.recv().unwrap();
        stream.set_read_timeout(Some(LIMIT)).unwrap();
        let mut got = Vec::new();
        let _ = stream.read_to_end(&mut got);
        got.len()
    });
    turn_until(&mut dispatcher, LIMIT, |d| d.state().blocked);
    let grace = Duration::from_millis(200);
    let start = Instant::now();
    dispatcher.stop_gracefully(grace).unwrap();
    let took = start.elapsed();
    assert!(took >= grace, "{took:?}");
    // A bound for a hang (the client never reads): how late is the machine's.
    assert!(took < LIMIT, "{took:?}");
    assert_eq!(dispatcher.state().closed, ["listener", "firehose"]);
    done.send(()).unwrap();
    let got = client.join().expect("the client");
    assert!(got < FIREHOSE, "cut short at the deadline: {got}");
}

/// Counts `Write` events; stops the loop at each multiple of `every`.
fn stopper(every: u32) -> impl FnMut(Event, &mut Context<'_, u32>) -> Action {
    move |_, cx| {
        *cx.state += 1;
        if *cx.state % every == 0 {
            cx.stop();
        }
        Action::Continue
    }
}

#[test]
fn stop_returns_from_run_and_a_second_run_goes_on() {
    let mut dispatcher = Dispatcher::new(0u32).unwrap();
    let t = dispatcher
        .sockets()
        .bind_udp("127.0.0.1:0", stopper(3))
        .unwrap();
    dispatcher
        .sockets()
        .set_interest(t, Interest::WRITABLE)
        .unwrap();
    dispatcher.run().unwrap();
    assert!(dispatcher.is_stopped());
    assert_eq!(*dispatcher.state(), 3);
    dispatcher.run().unwrap();
    assert_eq!(*dispatcher.state(), 6);
    assert!(dispatcher.sockets().contains(t), "stop closes nothing");
}

#[test]
fn run_for_returns_on_time_with_sockets_open_and_run_returns_when_empty() {
    let mut dispatcher = Dispatcher::new(0u32).unwrap();
    // It checks that nothing happens: no spurious events from a plan.
    #[cfg(feature = "faults")]
    dispatcher
        .sockets()
        .set_fault_plan(sockmux::FaultPlan::new(0))
        .unwrap();
    let t = dispatcher
        .sockets()
        .bind_udp("127.0.0.1:0", stopper(u32::MAX))
        .unwrap();
    let start = Instant::now();
    dispatcher.run_for(Duration::from_millis(50)).unwrap();
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(50), "{took:?}");
    assert!(took < LIMIT, "{took:?}");
    assert_eq!(*dispatcher.state(), 0, "nothing happened");
    dispatcher.sockets().remove(t).unwrap();
    dispatcher.run().unwrap(); // empty: returns at once
}

#[derive(Default)]
struct Story {
    lines: Vec<String>,
    newcomer: Option<Token>,
}

/// Logs each hook; on its first event asks for a graceful stop and
/// registers a newcomer, which must get its stop hook too.
struct Narrator {
    name: &'static str,
    flush_first: bool,
}

impl Responder<Story> for Narrator {
    fn registered(&mut self, cx: &mut Context<'_, Story>) -> Action {
        cx.state.lines.push(format!("{} registered", self.name));
        Action::Continue
    }

    fn ready(&mut self, event: Event, cx: &mut Context<'_, Story>) -> Action {
        cx.state.lines.push(format!("{} ready", self.name));
        if self.name == "first" && cx.state.newcomer.is_none() {
            cx.stop_gracefully(LIMIT);
            let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
            let newcomer = Narrator {
                name: "newcomer",
                flush_first: false,
            };
            cx.state.newcomer = Some(
                cx.sockets
                    .register(socket, Interest::NONE, newcomer)
                    .unwrap(),
            );
        }
        if self.flush_first {
            // "Flushed" on the first event after the stop began.
            if let Event::Write(t) = event {
                if cx.state.lines.iter().any(|l| l == "first stop") {
                    cx.state.lines.push(format!("{} flushed", self.name));
                    let _ = cx.sockets.set_interest(t, Interest::NONE);
                    return Action::Close;
                }
            }
        }
        Action::Continue
    }

    fn stop(&mut self, cx: &mut Context<'_, Story>) -> Action {
        cx.state.lines.push(format!("{} stop", self.name));
        if self.flush_first {
            Action::Continue
        } else {
            Action::Close
        }
    }

    fn closed(&mut self, cx: &mut Context<'_, Story>) {
        cx.state.lines.push(format!("{} closed", self.name));
    }
}

#[test]
fn hooks_run_in_order_and_a_handler_can_ask_for_a_graceful_stop() {
    let mut dispatcher = Dispatcher::new(Story::default()).unwrap();
    let first = Narrator {
        name: "first",
        flush_first: true,
    };
    let t = dispatcher.sockets().bind_udp("127.0.0.1:0", first).unwrap();
    dispatcher
        .sockets()
        .set_interest(t, Interest::WRITABLE)
        .unwrap();
    assert!(
        dispatcher.state().lines.is_empty(),
        "hooks wait for the loop"
    );
    dispatcher.run().unwrap();
    assert_eq!(
        dispatcher.state().lines,
        [
            "first registered",
            "first ready",
            // The newcomer's hooks run when the call that registered it
            // returns; the stop begins after that.
            "newcomer registered",
            "first stop",
            "newcomer stop",
            "newcomer closed",
            "first ready",
            "first flushed",
            "first closed",
        ]
    );
    assert!(dispatcher.sockets().is_empty());
}

#[derive(Default)]
struct Clock {
    fired: Vec<(&'static str, TimerId)>,
    ticker_closed: bool,
}

/// Starts a periodic timer, closes itself on its third tick.
struct Ticker;

impl Responder<Clock> for Ticker {
    fn ready(&mut self, _: Event, _: &mut Context<'_, Clock>) -> Action {
        Action::Continue
    }

    fn registered(&mut self, cx: &mut Context<'_, Clock>) -> Action {
        cx.timer_every(Duration::from_millis(5));
        Action::Continue
    }

    fn timer(&mut self, id: TimerId, cx: &mut Context<'_, Clock>) -> Action {
        cx.state.fired.push(("ticker", id));
        if cx.state.fired.iter().filter(|f| f.0 == "ticker").count() == 3 {
            Action::Close
        } else {
            Action::Continue
        }
    }

    fn closed(&mut self, cx: &mut Context<'_, Clock>) {
        cx.state.ticker_closed = true;
    }
}

/// Once the ticker has closed, waits long enough to see any tick that
/// outlived it (timers fire in deadline order: such a tick would come
/// before a wait begun after the close), then stops. So it waits again
/// until its wait began after the close: however late a loaded machine
/// runs the loop (a periodic timer skips the periods it missed), the
/// ticker's three ticks come first.
#[derive(Default)]
struct Watcher {
    began_after_close: bool,
}

/// The watcher's wait: 20 periods of the ticker.
const WATCH: Duration = Duration::from_millis(100);

impl Responder<Clock> for Watcher {
    fn ready(&mut self, _: Event, _: &mut Context<'_, Clock>) -> Action {
        Action::Continue
    }

    fn registered(&mut self, cx: &mut Context<'_, Clock>) -> Action {
        cx.timer_after(WATCH);
        Action::Continue
    }

    fn timer(&mut self, id: TimerId, cx: &mut Context<'_, Clock>) -> Action {
        if !self.began_after_close {
            self.began_after_close = cx.state.ticker_closed;
            cx.timer_after(WATCH);
            return Action::Continue;
        }
        cx.state.fired.push(("watcher", id));
        cx.stop();
        Action::Close
    }
}

#[test]
fn timers_go_to_their_owner_and_die_with_it() {
    let mut dispatcher = Dispatcher::new(Clock::default()).unwrap();
    dispatcher
        .sockets()
        .bind_udp("127.0.0.1:0", Ticker)
        .unwrap();
    dispatcher
        .sockets()
        .bind_udp("127.0.0.1:0", Watcher::default())
        .unwrap();
    dispatcher.run_for(LIMIT).unwrap();
    let state = dispatcher.state();
    let names: Vec<&str> = state.fired.iter().map(|f| f.0).collect();
    assert_eq!(names, ["ticker", "ticker", "ticker", "watcher"]);
    assert!(state.ticker_closed);
    // The ticker's one periodic timer, three times.
    assert!(state.fired[..3].iter().all(|f| f.1 == state.fired[0].1));
}

#[test]
fn removing_from_outside_runs_the_close_hook_on_the_next_turn() {
    let mut dispatcher = Dispatcher::new(Story::default()).unwrap();
    // It checks which hooks run, and when: no spurious events from a plan.
    #[cfg(feature = "faults")]
    dispatcher
        .sockets()
        .set_fault_plan(sockmux::FaultPlan::new(0))
        .unwrap();
    let t = dispatcher
        .sockets()
        .bind_udp(
            "127.0.0.1:0",
            Narrator {
                name: "lone",
                flush_first: false,
            },
        )
        .unwrap();
    dispatcher.turn(Some(Duration::ZERO)).unwrap();
    dispatcher.sockets().remove(t).unwrap();
    assert_eq!(dispatcher.state().lines, ["lone registered"]);
    dispatcher.turn(Some(Duration::ZERO)).unwrap();
    assert_eq!(dispatcher.state().lines, ["lone registered", "lone closed"]);
}
