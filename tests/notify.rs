//! `Registry::notify` and the `notified` hook: the call comes after the
//! current one, once however many times the socket was notified, never to
//! a socket removed in the meantime; a stale token is refused.

mod util;

use std::time::Duration;

use sockmux::{Action, Context, Dispatcher, Event, Responder, Token};

/// The shared state: who was notified, in order, and whom to notify.
#[derive(Default)]
struct Log {
    calls: Vec<Token>,
    /// Set while a call runs: the hook must never run inside it.
    in_call: bool,
}

struct Peer;

impl Responder<Log> for Peer {
    fn ready(&mut self, _: Event, _: &mut Context<'_, Log>) -> Action {
        Action::Continue
    }

    fn notified(&mut self, cx: &mut Context<'_, Log>) -> Action {
        assert!(!cx.state.in_call, "notified inside another call");
        cx.state.calls.push(cx.token);
        Action::Continue
    }
}

/// Notifies `targets` (twice each) from inside a timer call, and removes
/// `remove` after notifying it.
struct Notifier {
    targets: Vec<Token>,
    remove: Option<Token>,
}

impl Responder<Log> for Notifier {
    fn ready(&mut self, _: Event, _: &mut Context<'_, Log>) -> Action {
        Action::Continue
    }

    fn registered(&mut self, cx: &mut Context<'_, Log>) -> Action {
        cx.timer_after(Duration::ZERO);
        Action::Continue
    }

    fn timer(&mut self, _: sockmux::TimerId, cx: &mut Context<'_, Log>) -> Action {
        cx.state.in_call = true;
        for &t in &self.targets {
            cx.sockets.notify(t).unwrap();
            cx.sockets.notify(t).unwrap();
        }
        if let Some(t) = self.remove {
            cx.sockets.remove(t).unwrap();
            assert!(cx.sockets.notify(t).is_err(), "a removed socket notified");
        }
        assert!(cx.state.calls.is_empty(), "called before the call ended");
        cx.state.in_call = false;
        Action::Close
    }
}

#[test]
fn notified_runs_once_after_the_call_and_never_for_a_removed_socket() {
    let mut dispatcher = Dispatcher::new(Log::default()).unwrap();
    let mut sockets = dispatcher.sockets();
    let a = sockets.bind_udp("127.0.0.1:0", Peer).unwrap();
    let b = sockets.bind_udp("127.0.0.1:0", Peer).unwrap();
    let gone = sockets.bind_udp("127.0.0.1:0", Peer).unwrap();
    sockets
        .bind_udp(
            "127.0.0.1:0",
            Notifier {
                targets: vec![b, gone, a],
                remove: Some(gone),
            },
        )
        .unwrap();
    util::turn_until(&mut dispatcher, util::LIMIT, |d| d.sockets().len() == 2);
    assert_eq!(dispatcher.state().calls, [b, a]);
}
