//! Wake-ups and channels for responders: `Context::waker`, `channel` and
//! `sync_channel` subscribe the calling responder, and the dispatcher hands
//! it `Event::Wake`; subscriptions end with the socket. Also: a run with
//! no time limit (`run_for(Duration::MAX)`) ends when a responder stops it.

mod util;

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::mpsc::TryRecvError;
use std::thread;
use std::time::Duration;

use sockmux::{Action, Context, Dispatcher, Event, Interest, Receiver, Responder, Sender};

use util::{turn_until, LIMIT};

/// What the responders of these tests record.
#[derive(Default)]
struct Seen {
    /// Messages received, in order.
    messages: Vec<u32>,
    /// `Wake` events, per responder name.
    wakes: Vec<&'static str>,
}

/// Takes a channel when registered; hands its sender to the test through
/// `out`; drains the receiver on every `Wake`.
struct Drain {
    name: &'static str,
    rx: Option<Receiver<u32>>,
    out: Rc<RefCell<Vec<Sender<u32>>>>,
}

impl Responder<Seen> for Drain {
    fn registered(&mut self, cx: &mut Context<'_, Seen>) -> Action {
        let (tx, rx) = cx.channel().expect("a channel");
        self.rx = Some(rx);
        self.out.borrow_mut().push(tx);
        Action::Continue
    }

    fn ready(&mut self, event: Event, cx: &mut Context<'_, Seen>) -> Action {
        if event == Event::Wake {
            cx.state.wakes.push(self.name);
            let rx = self.rx.as_ref().expect("made in registered");
            loop {
                match rx.try_recv() {
                    Ok(n) => cx.state.messages.push(n),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => break,
                }
            }
        }
        Action::Continue
    }
}

fn drain(name: &'static str, out: &Rc<RefCell<Vec<Sender<u32>>>>) -> Drain {
    Drain {
        name,
        rx: None,
        out: Rc::clone(out),
    }
}

#[test]
fn a_channel_delivers_every_message_in_order_from_another_thread() {
    let senders = Rc::new(RefCell::new(Vec::new()));
    let mut dispatcher = Dispatcher::new(Seen::default()).unwrap();
    dispatcher
        .sockets()
        .bind_udp("127.0.0.1:0", drain("a", &senders))
        .unwrap();
    turn_until(&mut dispatcher, LIMIT, |_| !senders.borrow().is_empty());
    let tx = senders.borrow_mut().pop().unwrap();
    let worker = thread::spawn(move || {
        for n in 0..1000 {
            tx.send(n).unwrap();
        }
    });
    turn_until(&mut dispatcher, LIMIT, |d| d.state().messages.len() == 1000);
    worker.join().unwrap();
    let expected: Vec<u32> = (0..1000).collect();
    assert_eq!(dispatcher.state().messages, expected);
}

#[test]
fn a_wake_reaches_every_subscriber_and_none_once_its_socket_is_closed() {
    let senders = Rc::new(RefCell::new(Vec::new()));
    let mut dispatcher = Dispatcher::new(Seen::default()).unwrap();
    let mut sockets = dispatcher.sockets();
    let a = sockets
        .bind_udp("127.0.0.1:0", drain("a", &senders))
        .unwrap();
    sockets
        .bind_udp("127.0.0.1:0", drain("b", &senders))
        .unwrap();
    // Not subscribed: it never sees a `Wake`.
    sockets
        .bind_udp("127.0.0.1:0", |event: Event, _: &mut Context<'_, Seen>| {
            assert_ne!(event, Event::Wake, "not subscribed");
            Action::Continue
        })
        .unwrap();
    turn_until(&mut dispatcher, LIMIT, |_| senders.borrow().len() == 2);

    let tx = senders.borrow()[0].clone();
    tx.send(1).unwrap();
    turn_until(&mut dispatcher, LIMIT, |d| d.state().wakes.len() == 2);
    let mut wakes = dispatcher.state().wakes.clone();
    wakes.sort_unstable();
    assert_eq!(wakes, ["a", "b"], "one Wake each");

    dispatcher.sockets().remove(a).unwrap();
    dispatcher.state_mut().wakes.clear();
    tx.send(2).unwrap();
    turn_until(&mut dispatcher, LIMIT, |d| !d.state().wakes.is_empty());
    // A few turns more: a second Wake, if any, would be in them.
    for _ in 0..5 {
        dispatcher.turn(Some(Duration::from_millis(10))).unwrap();
    }
    assert_eq!(dispatcher.state().wakes, ["b"], "a is closed");
}

#[test]
fn a_waker_from_a_hook_wakes_its_responder() {
    struct Waiter;
    impl Responder<u32> for Waiter {
        fn registered(&mut self, cx: &mut Context<'_, u32>) -> Action {
            let waker = cx.waker().expect("a waker");
            thread::spawn(move || waker.wake().unwrap());
            // The test's bound, since the run has none.
            cx.timer_after(LIMIT);
            Action::Continue
        }
        fn timer(&mut self, _: sockmux::TimerId, cx: &mut Context<'_, u32>) -> Action {
            cx.stop(); // no Wake came: the assertion below fails
            Action::Continue
        }
        fn ready(&mut self, event: Event, cx: &mut Context<'_, u32>) -> Action {
            if event == Event::Wake {
                *cx.state += 1;
                cx.stop();
            }
            Action::Continue
        }
    }
    let mut dispatcher = Dispatcher::new(0).unwrap();
    dispatcher
        .sockets()
        .bind_udp("127.0.0.1:0", Waiter)
        .unwrap();
    // No time limit (a duration too long for an `Instant`): the responder
    // stops the run.
    dispatcher.run_for(Duration::MAX).unwrap();
    assert_eq!(*dispatcher.state(), 1, "woken");
}

#[test]
fn a_bounded_channel_hands_back_what_does_not_fit() {
    let mut dispatcher = Dispatcher::new(Vec::new()).unwrap();
    let mut sockets = dispatcher.sockets();
    let t = sockets
        .bind_udp(
            "127.0.0.1:0",
            |_: Event, cx: &mut Context<'_, Vec<Result<(), char>>>| {
                let (tx, rx) = cx.sync_channel(1).unwrap();
                cx.state.push(tx.try_send('a').map_err(|_| 'a'));
                cx.state.push(tx.try_send('b').map_err(|e| match e {
                    std::sync::mpsc::TrySendError::Full(c) => c,
                    std::sync::mpsc::TrySendError::Disconnected(c) => c,
                }));
                assert_eq!(rx.try_recv(), Ok('a'));
                cx.stop();
                Action::Close
            },
        )
        .unwrap();
    sockets.set_interest(t, Interest::WRITABLE).unwrap();
    dispatcher.run_for(LIMIT).unwrap();
    assert_eq!(dispatcher.state(), &[Ok(()), Err('b')]);
}

/// Subscribers that close themselves when woken (their subscriptions go
/// with them, mid-dispatch) still each get the one `Wake`.
#[test]
fn every_subscriber_is_woken_even_when_each_closes_on_the_wake() {
    struct Once(&'static str);
    impl Responder<Vec<&'static str>> for Once {
        fn registered(&mut self, cx: &mut Context<'_, Vec<&'static str>>) -> Action {
            let waker = cx.waker().expect("a waker");
            if self.0 == "c" {
                waker.wake().unwrap();
            }
            Action::Continue
        }
        fn ready(&mut self, event: Event, cx: &mut Context<'_, Vec<&'static str>>) -> Action {
            if event == Event::Wake {
                cx.state.push(self.0);
                return Action::Close;
            }
            Action::Continue
        }
    }
    let mut dispatcher = Dispatcher::new(Vec::new()).unwrap();
    for name in ["a", "b", "c"] {
        dispatcher
            .sockets()
            .bind_udp("127.0.0.1:0", Once(name))
            .unwrap();
    }
    turn_until(&mut dispatcher, LIMIT, |d| d.sockets().is_empty());
    let mut woken = dispatcher.state().clone();
    woken.sort_unstable();
    assert_eq!(woken, ["a", "b", "c"]);
}
