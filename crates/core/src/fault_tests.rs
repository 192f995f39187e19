//! Fault injection through the selector seam: the table's real code driven
//! by a selector that adds spurious reports, reports for unknown keys and
//! `EINTR`, on top of real sockets.

use std::collections::VecDeque;
use std::io;
use std::net::UdpSocket;
use std::time::{Duration, Instant};

use mio::Registry;

use crate::ready::Ready;
use crate::selector::{MioSelector, RawEvent, Selector};
use crate::{Event, Events, Socket, Sockets};

/// What the fake does on the next `select` calls, in order.
#[derive(Debug)]
enum Fault {
    /// Fail with `Interrupted` after sleeping this long.
    Interrupt(Duration),
    /// Add these reports to whatever the OS says.
    Inject(Vec<RawEvent>),
}

#[derive(Debug)]
struct FaultySelector {
    real: MioSelector,
    faults: std::rc::Rc<std::cell::RefCell<VecDeque<Fault>>>,
    timeouts: std::rc::Rc<std::cell::RefCell<Vec<Option<Duration>>>>,
}

impl Selector for FaultySelector {
    fn register(&self, socket: &mut Socket, key: usize) -> io::Result<()> {
        self.real.register(socket, key)
    }

    fn deregister(&self, socket: &mut Socket) -> io::Result<()> {
        self.real.deregister(socket)
    }

    fn select(&mut self, out: &mut Vec<RawEvent>, timeout: Option<Duration>) -> io::Result<()> {
        self.timeouts.borrow_mut().push(timeout);
        match self.faults.borrow_mut().pop_front() {
            Some(Fault::Interrupt(after)) => {
                std::thread::sleep(after);
                Err(io::Error::from(io::ErrorKind::Interrupted))
            }
            Some(Fault::Inject(extra)) => {
                self.real.select(out, Some(Duration::ZERO))?;
                out.extend(extra);
                Ok(())
            }
            None => self.real.select(out, timeout),
        }
    }

    fn registry(&self) -> &Registry {
        self.real.registry()
    }
}

type Faults = std::rc::Rc<std::cell::RefCell<VecDeque<Fault>>>;
type Timeouts = std::rc::Rc<std::cell::RefCell<Vec<Option<Duration>>>>;

fn faulty() -> (Sockets, Faults, Timeouts) {
    let faults = Faults::default();
    let timeouts = Timeouts::default();
    let selector = FaultySelector {
        real: MioSelector::new().unwrap(),
        faults: faults.clone(),
        timeouts: timeouts.clone(),
    };
    (
        Sockets::with_selector(Box::new(selector), 0),
        faults,
        timeouts,
    )
}

const READABLE: Ready = Ready::READABLE;

#[test]
fn spurious_read_is_a_no_op_and_does_not_spin() {
    let (mut sockets, faults, _) = faulty();
    let t = sockets
        .add(UdpSocket::bind("127.0.0.1:0").unwrap())
        .unwrap();
    faults.borrow_mut().push_back(Fault::Inject(vec![RawEvent {
        key: t.key(),
        ready: READABLE,
    }]));
    let mut events = Events::with_capacity(8);
    sockets.poll(&mut events, Some(Duration::ZERO)).unwrap();
    assert_eq!(events.iter().collect::<Vec<_>>(), [Event::Read(t)]);
    let e = sockets.recv(t, &mut [0; 16]).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
    // Readiness was cleared: the next poll sleeps its whole timeout.
    let start = Instant::now();
    sockets
        .poll(&mut events, Some(Duration::from_millis(50)))
        .unwrap();
    assert!(events.is_empty(), "{events:?}");
    assert!(start.elapsed() >= Duration::from_millis(50));
}

#[test]
fn reports_for_unknown_and_removed_keys_are_ignored() {
    let (mut sockets, faults, _) = faulty();
    let gone = sockets
        .add(UdpSocket::bind("127.0.0.1:0").unwrap())
        .unwrap();
    sockets.remove(gone).unwrap();
    faults.borrow_mut().push_back(Fault::Inject(vec![
        RawEvent {
            key: 12345,
            ready: READABLE,
        },
        RawEvent {
            key: gone.key(),
            ready: READABLE | Ready::ERROR,
        },
    ]));
    let mut events = Events::with_capacity(8);
    sockets.poll(&mut events, Some(Duration::ZERO)).unwrap();
    assert!(events.is_empty(), "{events:?}");
}

#[test]
fn interrupted_poll_is_retried_with_the_time_left() {
    let (mut sockets, faults, timeouts) = faulty();
    faults
        .borrow_mut()
        .push_back(Fault::Interrupt(Duration::from_millis(40)));
    let mut events = Events::with_capacity(8);
    let start = Instant::now();
    let n = sockets
        .poll(&mut events, Some(Duration::from_millis(100)))
        .unwrap();
    assert_eq!(n, 0);
    assert!(start.elapsed() >= Duration::from_millis(100));
    let timeouts = timeouts.borrow();
    assert_eq!(timeouts.len(), 2, "{timeouts:?}");
    let retry = timeouts[1].expect("a bounded retry");
    assert!(
        retry <= Duration::from_millis(60),
        "retried with {retry:?}, not the time left"
    );
}

#[test]
fn interrupted_io_is_retried() {
    let (mut sockets, _, _) = faulty();
    let t = sockets
        .add(UdpSocket::bind("127.0.0.1:0").unwrap())
        .unwrap();
    let mut calls = 0;
    let n = sockets
        .io(t, crate::Interest::READABLE, |_| {
            calls += 1;
            if calls < 3 {
                Err(io::Error::from(io::ErrorKind::Interrupted))
            } else {
                Ok(7)
            }
        })
        .unwrap();
    assert_eq!((n, calls), (7, 3));
}

#[test]
fn read_error_and_write_of_one_report_come_in_order() {
    let (mut sockets, faults, _) = faulty();
    let t = sockets
        .add(UdpSocket::bind("127.0.0.1:0").unwrap())
        .unwrap();
    sockets.set_interest(t, crate::Interest::BOTH).unwrap();
    // Consume the registration's own writable report first.
    let mut events = Events::with_capacity(8);
    sockets.poll(&mut events, Some(Duration::ZERO)).unwrap();
    sockets.set_interest(t, crate::Interest::READABLE).unwrap();
    faults.borrow_mut().push_back(Fault::Inject(vec![RawEvent {
        key: t.key(),
        ready: Ready::ERROR | Ready::WRITABLE | READABLE,
    }]));
    sockets.set_interest(t, crate::Interest::BOTH).unwrap();
    sockets.poll(&mut events, Some(Duration::ZERO)).unwrap();
    let got: Vec<_> = events.iter().collect();
    assert_eq!(got[..2], [Event::Read(t), Event::Write(t)]);
    // No SO_ERROR is pending on this healthy socket, so no Error is made up.
    assert!(!got.contains(&Event::Error(t)), "{got:?}");
}

/// Polls once without waiting; the events it delivered.
fn poll_now(sockets: &mut Sockets, events: &mut Events) -> Vec<Event> {
    sockets.poll(events, Some(Duration::ZERO)).unwrap();
    events.iter().collect()
}

#[test]
fn a_full_event_buffer_serves_ready_sockets_round_robin() {
    let (mut sockets, faults, _) = faulty();
    let [a, b, c] = [(); 3].map(|()| {
        sockets
            .add(UdpSocket::bind("127.0.0.1:0").unwrap())
            .unwrap()
    });
    faults.borrow_mut().push_back(Fault::Inject(
        [a, b, c]
            .iter()
            .map(|t| RawEvent {
                key: t.key(),
                ready: READABLE,
            })
            .collect(),
    ));
    // Level mode, nobody reads: each poll serves two, oldest first.
    let mut events = Events::with_capacity(2);
    let read = |ts: [crate::Token; 2]| ts.map(Event::Read).to_vec();
    assert_eq!(poll_now(&mut sockets, &mut events), read([a, b]));
    assert_eq!(poll_now(&mut sockets, &mut events), read([c, a]));
    assert_eq!(poll_now(&mut sockets, &mut events), read([b, c]));
    // A read that answers WouldBlock clears each one for good.
    for t in [a, b, c] {
        let e = sockets.recv(t, &mut [0; 8]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
    }
    assert_eq!(poll_now(&mut sockets, &mut events), []);
    assert_eq!(poll_now(&mut sockets, &mut events), []);
}

#[test]
fn a_socket_cut_short_by_the_buffer_gets_the_rest_first() {
    let (mut sockets, faults, _) = faulty();
    let a = sockets
        .add(UdpSocket::bind("127.0.0.1:0").unwrap())
        .unwrap();
    let b = sockets
        .add(UdpSocket::bind("127.0.0.1:0").unwrap())
        .unwrap();
    sockets.set_interest(a, crate::Interest::BOTH).unwrap();
    faults.borrow_mut().push_back(Fault::Inject(vec![
        RawEvent {
            key: a.key(),
            ready: READABLE | Ready::WRITABLE,
        },
        RawEvent {
            key: b.key(),
            ready: READABLE,
        },
    ]));
    let mut events = Events::with_capacity(1);
    assert_eq!(poll_now(&mut sockets, &mut events), [Event::Read(a)]);
    assert_eq!(poll_now(&mut sockets, &mut events), [Event::Write(a)]);
    assert_eq!(poll_now(&mut sockets, &mut events), [Event::Read(b)]);
    assert_eq!(poll_now(&mut sockets, &mut events), [Event::Read(a)]);
    // Removed while queued: never raised again, and b goes on alone.
    sockets.remove(a).unwrap();
    assert_eq!(poll_now(&mut sockets, &mut events), [Event::Read(b)]);
    assert_eq!(poll_now(&mut sockets, &mut events), [Event::Read(b)]);
}

/// A connected TCP pair: the table's side and the peer's.
fn tcp_pair(sockets: &mut Sockets) -> (crate::Token, std::net::TcpStream) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let peer = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let t = sockets.add(listener.accept().unwrap().0).unwrap();
    (t, peer)
}

#[test]
fn read_closed_reported_again_after_the_end_was_read_raises_no_read() {
    let (mut sockets, faults, _) = faulty();
    let (t, peer) = tcp_pair(&mut sockets);
    drop(peer);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match sockets.read(t, &mut [0; 16]) {
            Ok(0) => break,
            Ok(_) => panic!("no data was sent"),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                assert!(Instant::now() < deadline);
                std::thread::yield_now();
            }
            Err(e) => panic!("{e}"),
        }
    }
    // epoll's next edge carries every ready bit; mio on Windows may report
    // the FIN again: neither is a new end of stream.
    faults.borrow_mut().push_back(Fault::Inject(vec![RawEvent {
        key: t.key(),
        ready: READABLE | Ready::READ_CLOSED,
    }]));
    let mut events = Events::with_capacity(8);
    sockets
        .poll(&mut events, Some(Duration::from_millis(20)))
        .unwrap();
    assert!(!events.iter().any(|e| e == Event::Read(t)), "{events:?}");
}

#[test]
fn os_reports_that_raise_no_event_do_not_end_the_wait() {
    let (mut sockets, faults, timeouts) = faulty();
    let t = sockets
        .add(UdpSocket::bind("127.0.0.1:0").unwrap())
        .unwrap();
    let mut events = Events::with_capacity(8);
    // The registration's own report first.
    sockets.poll(&mut events, Some(Duration::ZERO)).unwrap();
    // Writable, which the socket is not interested in (on Windows every
    // WouldBlock re-arms the socket and mio reports its whole state again).
    faults.borrow_mut().push_back(Fault::Inject(vec![RawEvent {
        key: t.key(),
        ready: Ready::WRITABLE,
    }]));
    timeouts.borrow_mut().clear();
    let start = Instant::now();
    let n = sockets
        .poll(&mut events, Some(Duration::from_millis(50)))
        .unwrap();
    assert_eq!(n, 0);
    assert!(start.elapsed() >= Duration::from_millis(50));
    assert_eq!(timeouts.borrow().len(), 2, "waited on after the report");
}

/// Windows only: there mio reports a reset as read- and write-closed with no
/// error flag (AFD's abort), and the table turns it into the `Error`; on
/// epoll the same bits without the error flag are a plain hang-up.
#[cfg(windows)]
#[test]
fn abort_report_is_one_reset_error_on_windows() {
    let (mut sockets, faults, _) = faulty();
    let (t, _peer) = tcp_pair(&mut sockets);
    sockets.set_interest(t, crate::Interest::BOTH).unwrap();
    let abort = RawEvent {
        key: t.key(),
        ready: READABLE | Ready::WRITABLE | Ready::READ_CLOSED | Ready::WRITE_CLOSED,
    };
    faults
        .borrow_mut()
        .push_back(Fault::Inject(vec![abort, abort]));
    let mut events = Events::with_capacity(8);
    sockets.poll(&mut events, Some(Duration::ZERO)).unwrap();
    let got: Vec<_> = events.iter().collect();
    assert_eq!(got, [Event::Read(t), Event::Write(t), Event::Error(t)]);
    let e = sockets.take_error(t).unwrap().expect("the reset");
    assert_eq!(e.kind(), io::ErrorKind::ConnectionReset);
    faults.borrow_mut().push_back(Fault::Inject(vec![abort]));
    sockets.poll(&mut events, Some(Duration::ZERO)).unwrap();
    assert!(!events.iter().any(|e| e == Event::Error(t)), "{events:?}");
}

/// Polls with a short timeout, the case in which reports may be delivered
/// straight from the OS buffer (see `apply`); the events it delivered.
fn poll_waiting(sockets: &mut Sockets, events: &mut Events) -> Vec<Event> {
    sockets
        .poll(events, Some(Duration::from_millis(20)))
        .unwrap();
    events.iter().collect()
}

fn udp_sockets<const N: usize>(sockets: &mut Sockets) -> [crate::Token; N] {
    [(); N].map(|()| {
        sockets
            .add(UdpSocket::bind("127.0.0.1:0").unwrap())
            .unwrap()
    })
}

fn readable(tokens: &[crate::Token]) -> Fault {
    Fault::Inject(
        tokens
            .iter()
            .map(|t| RawEvent {
                key: t.key(),
                ready: READABLE,
            })
            .collect(),
    )
}

#[test]
fn straight_delivery_fills_the_buffer_in_report_order_then_round_robin() {
    let (mut sockets, faults, _) = faulty();
    let [a, b, c, d, e] = udp_sockets(&mut sockets);
    // Registration reports (writable, not wanted) out of the way.
    let mut events = Events::with_capacity(4);
    assert_eq!(poll_now(&mut sockets, &mut events), []);
    faults.borrow_mut().push_back(readable(&[a, b, c, d, e]));
    // The first go straight into the buffer, the rest through the queue,
    // in the order of the reports; nobody reads, so level mode raises them
    // all again, those not served first.
    assert_eq!(
        poll_waiting(&mut sockets, &mut events),
        [a, b, c, d].map(Event::Read)
    );
    assert_eq!(
        poll_waiting(&mut sockets, &mut events),
        [e, a, b, c].map(Event::Read)
    );
    assert_eq!(
        poll_waiting(&mut sockets, &mut events),
        [d, e, a, b].map(Event::Read)
    );
    for t in [a, b, c, d, e] {
        let err = sockets.recv(t, &mut [0; 8]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
    }
    assert_eq!(poll_waiting(&mut sockets, &mut events), []);
}

#[test]
fn straight_delivery_in_edge_mode_reports_once() {
    let (mut sockets, faults, _) = faulty();
    let [a, b] = udp_sockets(&mut sockets);
    sockets.set_mode(a, crate::Mode::Edge).unwrap();
    let mut events = Events::with_capacity(8);
    assert_eq!(poll_now(&mut sockets, &mut events), []);
    faults.borrow_mut().push_back(readable(&[a, b]));
    assert_eq!(
        poll_waiting(&mut sockets, &mut events),
        [a, b].map(Event::Read)
    );
    // Not drained: the edge socket says nothing more, the level one does.
    assert_eq!(poll_waiting(&mut sockets, &mut events), [Event::Read(b)]);
}

#[test]
fn a_wake_or_timer_of_the_same_wait_goes_before_sockets_delivered_straight() {
    let (mut sockets, faults, _) = faulty();
    let [a, b] = udp_sockets(&mut sockets);
    let mut events = Events::with_capacity(8);
    assert_eq!(poll_now(&mut sockets, &mut events), []);
    // The waker's report between two sockets' reports.
    faults.borrow_mut().push_back(Fault::Inject(vec![
        RawEvent {
            key: a.key(),
            ready: READABLE,
        },
        RawEvent {
            key: crate::poll::WAKE_KEY,
            ready: READABLE,
        },
        RawEvent {
            key: b.key(),
            ready: READABLE,
        },
    ]));
    assert_eq!(
        poll_waiting(&mut sockets, &mut events),
        [Event::Wake, Event::Read(a), Event::Read(b)]
    );
    for t in [a, b] {
        let _ = sockets.recv(t, &mut [0; 8]);
    }
    // A timer that comes due while the table waits (here: a wait cut by
    // EINTR after it is due) goes before the sockets of that wait too.
    let timer = sockets.timer_after(Duration::from_millis(10));
    faults
        .borrow_mut()
        .push_back(Fault::Interrupt(Duration::from_millis(30)));
    faults.borrow_mut().push_back(readable(&[b, a]));
    sockets
        .poll(&mut events, Some(Duration::from_secs(5)))
        .unwrap();
    assert_eq!(
        events.iter().collect::<Vec<_>>(),
        [Event::Timer(timer), Event::Read(b), Event::Read(a)]
    );
}

#[test]
fn sockets_drained_by_io_leave_the_queue_and_keep_their_place_when_ready_again() {
    let (mut sockets, faults, _) = faulty();
    let [a, b, c] = udp_sockets(&mut sockets);
    let mut events = Events::with_capacity(8);
    // Registration reports (writable, not wanted) out of the way.
    assert_eq!(poll_now(&mut sockets, &mut events), []);
    let would_block = |sockets: &mut Sockets, t| {
        let err = sockets.recv(t, &mut [0; 8]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
    };
    faults.borrow_mut().push_back(readable(&[a, b, c]));
    assert_eq!(
        poll_waiting(&mut sockets, &mut events),
        [a, b, c].map(Event::Read)
    );
    // a and b drained by I/O; a is ready again (for writing) before the
    // next poll: it keeps its place in front of c.
    would_block(&mut sockets, a);
    would_block(&mut sockets, a);
    would_block(&mut sockets, b);
    sockets.set_interest(a, crate::Interest::BOTH).unwrap();
    assert_eq!(
        poll_now(&mut sockets, &mut events),
        [Event::Write(a), Event::Read(c)]
    );
    sockets.set_interest(a, crate::Interest::READABLE).unwrap();
    would_block(&mut sockets, c);
    assert_eq!(poll_now(&mut sockets, &mut events), []);
    // All drained, one removed: nothing is raised, and a socket that takes
    // its slot is reported once, as itself.
    faults.borrow_mut().push_back(readable(&[a, b, c]));
    assert_eq!(
        poll_waiting(&mut sockets, &mut events),
        [a, b, c].map(Event::Read)
    );
    for t in [a, b, c] {
        would_block(&mut sockets, t);
    }
    sockets.remove(b).unwrap();
    assert_eq!(poll_now(&mut sockets, &mut events), []);
    let [d] = udp_sockets(&mut sockets);
    assert_eq!(d.key(), b.key());
    faults.borrow_mut().push_back(readable(&[d]));
    assert_eq!(poll_waiting(&mut sockets, &mut events), [Event::Read(d)]);
    assert_eq!(poll_now(&mut sockets, &mut events), [Event::Read(d)]);
    would_block(&mut sockets, d);
    assert_eq!(poll_now(&mut sockets, &mut events), []);
}
