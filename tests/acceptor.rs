//! The library's `Acceptor`: a responder per connection from a factory, a
//! limit of accepts per event, a cap on open connections, a factory that
//! panics, and a graceful stop. Out of descriptors it is tested against the
//! examples in `tests/emfile.rs`.

mod util;

use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use sockmux::{Acceptor, Action, Context, Dispatcher, Event, Token};

use util::{turn_until, LIMIT};

/// What the tests' connections record.
#[derive(Default)]
struct Seen {
    /// Connections the factory made, in order.
    made: Vec<Token>,
    /// Connections whose responder's `closed` ran.
    closed: Vec<Token>,
}

/// A connection's responder: closes at the end of the stream.
fn conn(_: Token, cx: &mut Context<'_, Seen>) -> impl sockmux::Responder<Seen> {
    cx.state.made.push(cx.token);
    Conn
}

struct Conn;

impl sockmux::Responder<Seen> for Conn {
    fn ready(&mut self, event: Event, cx: &mut Context<'_, Seen>) -> Action {
        if let Event::Read(t) = event {
            let mut buf = [0; 64];
            match cx.sockets.read(t, &mut buf) {
                Ok(0) | Err(_) => return Action::Close,
                Ok(_) => {}
            }
        }
        Action::Continue
    }

    fn closed(&mut self, cx: &mut Context<'_, Seen>) {
        cx.state.closed.push(cx.token);
    }
}

fn listen<F, R>(acceptor: Acceptor<F>) -> (Dispatcher<Seen>, Token, SocketAddr)
where
    F: FnMut(Token, &mut Context<'_, Seen>) -> R + 'static,
    R: sockmux::Responder<Seen> + 'static,
{
    let mut dispatcher = Dispatcher::new(Seen::default()).unwrap();
    let listener = dispatcher
        .sockets()
        .listen_tcp("127.0.0.1:0", acceptor)
        .unwrap();
    let addr = dispatcher.sockets().local_addr(listener).unwrap();
    (dispatcher, listener, addr)
}

/// The factory runs with the listener's context (`cx.token` is the
/// listener) and the new connection's token, which is in the table with its
/// peer's address.
#[test]
fn the_factory_makes_one_responder_per_connection() {
    let (mut dispatcher, listener, addr) = listen(Acceptor::new(
        move |t: Token, cx: &mut Context<'_, Seen>| {
            assert!(cx.sockets.peer_addr(t).unwrap().ip().is_loopback());
            conn(t, cx)
        },
    ));
    let clients: Vec<TcpStream> = (0..3).map(|_| TcpStream::connect(addr).unwrap()).collect();
    turn_until(&mut dispatcher, LIMIT, |d| d.state().made.len() == 3);
    assert!(dispatcher.state().made.iter().all(|&t| t == listener));
    assert_eq!(dispatcher.sockets().len(), 4);
    drop(clients);
    turn_until(&mut dispatcher, LIMIT, |d| d.state().closed.len() == 3);
}

#[test]
fn at_most_per_event_connections_are_accepted_per_turn() {
    let (mut dispatcher, _, addr) = listen(Acceptor::new(conn).per_event(1));
    let _clients: Vec<TcpStream> = (0..5).map(|_| TcpStream::connect(addr).unwrap()).collect();
    let mut before = 0;
    while before < 5 {
        dispatcher.turn(Some(LIMIT)).unwrap();
        let now = dispatcher.state().made.len();
        assert!(now - before <= 1, "{} accepted in one turn", now - before);
        before = now;
    }
}

/// With a cap of 2, a third connection waits in the backlog until one of
/// the two closes.
#[test]
fn the_cap_holds_connections_back_until_one_closes() {
    let (mut dispatcher, _, addr) = listen(Acceptor::new(conn).max_connections(2));
    let mut clients: Vec<TcpStream> = (0..3).map(|_| TcpStream::connect(addr).unwrap()).collect();
    turn_until(&mut dispatcher, LIMIT, |d| d.state().made.len() == 2);
    // A few turns more: a third accept, if any, would be in them.
    for _ in 0..5 {
        dispatcher.turn(Some(Duration::from_millis(20))).unwrap();
    }
    assert_eq!(dispatcher.state().made.len(), 2, "capped at 2");
    clients.remove(0); // closes: room for one
    turn_until(&mut dispatcher, LIMIT, |d| d.state().made.len() == 3);
    assert_eq!(dispatcher.state().closed.len(), 1);
}

/// A factory that panics closes the listener (as any panicking handler
/// closes its socket) and the connection it was making: the client reads
/// the end of the stream, and nothing is left in the table.
#[test]
fn a_panicking_factory_closes_the_listener_and_its_connection() {
    let (mut dispatcher, listener, addr) = listen(Acceptor::new(
        |_: Token, _: &mut Context<'_, Seen>| -> Conn { panic!("no responder today") },
    ));
    let mut client = TcpStream::connect(addr).unwrap();
    client.set_read_timeout(Some(LIMIT)).unwrap();
    turn_until(&mut dispatcher, LIMIT, |d| !d.sockets().contains(listener));
    assert!(
        dispatcher.sockets().is_empty(),
        "{:?}",
        dispatcher.sockets()
    );
    let mut buf = [0; 8];
    // The end of the stream, or a reset: the connection is gone either way.
    assert!(matches!(client.read(&mut buf), Ok(0) | Err(_)));
}

/// A graceful stop closes the listener: no connection comes in while the
/// others drain.
#[test]
fn a_graceful_stop_closes_the_listener() {
    let (mut dispatcher, listener, _) = listen(Acceptor::new(conn));
    dispatcher.stop_gracefully(LIMIT).unwrap();
    assert!(!dispatcher.sockets().contains(listener));
}
