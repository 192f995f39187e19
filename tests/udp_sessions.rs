//! `UdpSessions`: a session per peer address on one UDP socket, replies to
//! the right peer, idle expiry, the cap, refusal by the factory, oversize
//! datagrams, dead peers, the graceful stop, the kernel receive buffer.
//! Loopback, port 0; every wait is bounded by `util::LIMIT`.

use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use sockmux::{Dispatcher, Peer, Responder, Session, SessionEnd, Token, UdpSessions};

mod util;
use util::{turn_until, turn_until_datagram, udp_peer, LIMIT};

/// The shared state: what the factory and the sessions saw.
#[derive(Debug, Default)]
struct Seen {
    /// Peers the factory was asked about, in order.
    asked: Vec<SocketAddr>,
    /// Peers the factory refuses.
    refuse: Vec<SocketAddr>,
    /// Sessions made: the next one's number.
    made: u32,
    /// Ended sessions: peer, session number, why.
    ended: Vec<(SocketAddr, u32, SessionEnd)>,
}

/// A numbered session: replies `"<session>:<count>:<datagram>"`; ends at
/// `bye`; says `closed` to its peer when the server closes.
struct Tagged {
    id: u32,
    count: u32,
}

impl Session<Seen> for Tagged {
    fn datagram(&mut self, data: &[u8], peer: &mut Peer<'_, '_, Seen>) -> bool {
        self.count += 1;
        let reply = format!(
            "{}:{}:{}",
            self.id,
            self.count,
            String::from_utf8_lossy(data)
        );
        peer.send(reply.as_bytes()).unwrap();
        data != b"bye"
    }

    fn ended(&mut self, why: SessionEnd, peer: &mut Peer<'_, '_, Seen>) {
        let addr = peer.addr();
        peer.cx.state.ended.push((addr, self.id, why));
        if why == SessionEnd::Closed {
            let _ = peer.send(b"closed");
        }
    }
}

/// The factory of every test: refuses the peers in `refuse`.
fn factory(peer: &mut Peer<'_, '_, Seen>) -> Option<Tagged> {
    let addr = peer.addr();
    let seen = &mut *peer.cx.state;
    seen.asked.push(addr);
    if seen.refuse.contains(&addr) {
        return None;
    }
    seen.made += 1;
    Some(Tagged {
        id: seen.made - 1,
        count: 0,
    })
}

type Sessions = UdpSessions<fn(&mut Peer<'_, '_, Seen>) -> Option<Tagged>, Tagged>;

/// The server with the default settings, to configure.
fn sessions() -> Sessions {
    UdpSessions::new(factory as fn(&mut Peer<'_, '_, Seen>) -> Option<Tagged>)
}

/// A dispatcher serving `sessions`; the server's token and address.
fn serve(sessions: impl Responder<Seen> + 'static) -> (Dispatcher<Seen>, Token, SocketAddr) {
    let mut dispatcher = Dispatcher::new(Seen::default()).unwrap();
    let server = dispatcher
        .sockets()
        .bind_udp("127.0.0.1:0", sessions)
        .unwrap();
    let addr = dispatcher.sockets().local_addr(server).unwrap();
    (dispatcher, server, addr)
}

/// Sends `message` from `peer` and returns the reply, as text.
#[track_caller]
fn exchange(
    dispatcher: &mut Dispatcher<Seen>,
    peer: &UdpSocket,
    server: SocketAddr,
    message: &str,
) -> String {
    peer.send_to(message.as_bytes(), server).unwrap();
    reply(dispatcher, peer)
}

/// The next datagram to `peer`, as text.
#[track_caller]
fn reply(dispatcher: &mut Dispatcher<Seen>, peer: &UdpSocket) -> String {
    let mut buf = [0; 256];
    let n = turn_until_datagram(dispatcher, peer, &mut buf);
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// Whether `peer` has nothing to receive now.
fn nothing_for(peer: &UdpSocket) -> bool {
    matches!(peer.recv(&mut [0; 256]), Err(e) if e.kind() == ErrorKind::WouldBlock)
}

#[test]
fn each_peer_has_its_own_session_and_gets_its_own_replies() {
    let (mut dispatcher, _, server) = serve(sessions());
    let peers = [udp_peer(), udp_peer(), udp_peer()];
    // Interleaved, all sent before the loop runs: one socket's queue holds
    // the datagrams of every peer.
    for round in 1..=3 {
        for (i, peer) in peers.iter().enumerate() {
            peer.send_to(format!("p{i}r{round}").as_bytes(), server)
                .unwrap();
        }
    }
    let mut ids = Vec::new();
    for (i, peer) in peers.iter().enumerate() {
        let first = reply(&mut dispatcher, peer);
        let id = first.split(':').next().unwrap().to_owned();
        assert_eq!(first, format!("{id}:1:p{i}r1"));
        for round in 2..=3 {
            assert_eq!(
                reply(&mut dispatcher, peer),
                format!("{id}:{round}:p{i}r{round}")
            );
        }
        ids.push(id);
    }
    ids.sort();
    assert_eq!(ids, ["0", "1", "2"], "one session per peer");
    let seen = dispatcher.state();
    assert_eq!(seen.made, 3);
    let mut asked = seen.asked.clone();
    asked.sort();
    let mut addrs: Vec<_> = peers.iter().map(|p| p.local_addr().unwrap()).collect();
    addrs.sort();
    assert_eq!(asked, addrs, "the factory is asked once per peer");
    assert!(seen.ended.is_empty());
}

#[test]
fn an_idle_session_expires_and_the_peer_then_gets_a_new_one() {
    let (mut dispatcher, _, server) = serve(sessions().idle_timeout(Duration::from_millis(40)));
    let peer = udp_peer();
    let addr = peer.local_addr().unwrap();
    assert_eq!(exchange(&mut dispatcher, &peer, server, "a"), "0:1:a");
    turn_until(&mut dispatcher, LIMIT, |d| !d.state().ended.is_empty());
    assert_eq!(dispatcher.state().ended, [(addr, 0, SessionEnd::Idle)]);
    assert_eq!(exchange(&mut dispatcher, &peer, server, "b"), "1:1:b");
    assert_eq!(dispatcher.state().made, 2);
}

#[test]
fn a_session_that_finishes_is_ended_once_and_the_next_datagram_makes_a_new_one() {
    let (mut dispatcher, _, server) = serve(sessions());
    let peer = udp_peer();
    let addr = peer.local_addr().unwrap();
    assert_eq!(exchange(&mut dispatcher, &peer, server, "a"), "0:1:a");
    assert_eq!(exchange(&mut dispatcher, &peer, server, "bye"), "0:2:bye");
    assert_eq!(dispatcher.state().ended, [(addr, 0, SessionEnd::Finished)]);
    assert_eq!(exchange(&mut dispatcher, &peer, server, "c"), "1:1:c");
    // A session that finishes at its first datagram is ended too.
    let other = udp_peer();
    assert_eq!(exchange(&mut dispatcher, &other, server, "bye"), "2:1:bye");
    assert_eq!(
        dispatcher.state().ended[1..],
        [(other.local_addr().unwrap(), 2, SessionEnd::Finished)]
    );
}

#[test]
fn at_the_cap_a_new_peer_is_refused_until_a_session_ends() {
    let (mut dispatcher, _, server) = serve(sessions().max_sessions(2));
    let (a, b, c) = (udp_peer(), udp_peer(), udp_peer());
    assert_eq!(exchange(&mut dispatcher, &a, server, "a"), "0:1:a");
    assert_eq!(exchange(&mut dispatcher, &b, server, "b"), "1:1:b");
    // c's datagram is queued before a's: by a's reply it was handled.
    c.send_to(b"c", server).unwrap();
    assert_eq!(exchange(&mut dispatcher, &a, server, "a"), "0:2:a");
    assert!(nothing_for(&c), "c was answered at the cap");
    assert_eq!(dispatcher.state().made, 2);
    assert_eq!(
        dispatcher.state().asked.len(),
        2,
        "the factory is not asked"
    );
    assert!(dispatcher.state().ended.is_empty(), "no session is evicted");
    // A session ends: room for c.
    assert_eq!(exchange(&mut dispatcher, &a, server, "bye"), "0:3:bye");
    assert_eq!(exchange(&mut dispatcher, &c, server, "c"), "2:1:c");
    assert_eq!(exchange(&mut dispatcher, &b, server, "b"), "1:2:b");
}

#[test]
fn the_factory_may_refuse_a_peer_and_is_asked_again_next_time() {
    let (mut dispatcher, _, server) = serve(sessions());
    let (refused, ok) = (udp_peer(), udp_peer());
    let refused_addr = refused.local_addr().unwrap();
    dispatcher.state_mut().refuse.push(refused_addr);
    for _ in 0..2 {
        refused.send_to(b"let me in", server).unwrap();
    }
    // Sent after the refused peer's: handled after them.
    assert_eq!(exchange(&mut dispatcher, &ok, server, "x"), "0:1:x");
    assert!(nothing_for(&refused));
    let seen = dispatcher.state();
    assert_eq!(seen.asked[..2], [refused_addr, refused_addr]);
    assert_eq!(seen.made, 1);
}

/// Row 8 of docs/reliability.md through `UdpSessions`: a datagram longer
/// than its buffer is dropped, the next one served.
#[test]
fn an_oversize_datagram_is_dropped_and_the_next_one_served() {
    let (mut dispatcher, _, server) = serve(sessions().max_datagram(16));
    let peer = udp_peer();
    peer.send_to(&[b'x'; 100], server).unwrap();
    assert_eq!(exchange(&mut dispatcher, &peer, server, "fits"), "0:1:fits");
    assert!(nothing_for(&peer));
}

/// Row 9 of docs/reliability.md through `UdpSessions`: each reply to a peer
/// already gone draws an ICMP port unreachable; the socket stays open and
/// the live peer is answered.
#[test]
fn replies_to_dead_peers_do_not_stop_the_server() {
    let (mut dispatcher, token, server) = serve(sessions());
    let live = udp_peer();
    assert_eq!(
        exchange(&mut dispatcher, &live, server, "hello"),
        "0:1:hello"
    );
    for i in 0..5 {
        // The peer is gone before the loop replies: the reply draws an ICMP
        // port unreachable.
        let dead = udp_peer();
        dead.send_to(b"gone", server).unwrap();
        drop(dead);
        let message = format!("still there {i}");
        assert_eq!(
            exchange(&mut dispatcher, &live, server, &message),
            format!("0:{}:{message}", i + 2)
        );
    }
    assert!(dispatcher.sockets().contains(token));
    assert_eq!(dispatcher.state().made, 6);
}

#[test]
fn a_graceful_stop_ends_every_session_while_the_socket_is_open() {
    let (mut dispatcher, _, server) = serve(sessions());
    let (a, b) = (udp_peer(), udp_peer());
    assert_eq!(exchange(&mut dispatcher, &a, server, "a"), "0:1:a");
    assert_eq!(exchange(&mut dispatcher, &b, server, "b"), "1:1:b");
    dispatcher.stop_gracefully(LIMIT).unwrap();
    dispatcher.run_for(LIMIT).unwrap();
    assert!(dispatcher.sockets().is_empty(), "the socket is closed");
    // Each session's goodbye went out before the close.
    assert_eq!(reply(&mut dispatcher, &a), "closed");
    assert_eq!(reply(&mut dispatcher, &b), "closed");
    let mut ended = dispatcher.state().ended.clone();
    ended.sort_by_key(|&(_, id, _)| id);
    assert_eq!(
        ended,
        [
            (a.local_addr().unwrap(), 0, SessionEnd::Closed),
            (b.local_addr().unwrap(), 1, SessionEnd::Closed),
        ]
    );
}

#[test]
fn removing_the_socket_ends_every_session() {
    let (mut dispatcher, token, server) = serve(sessions());
    let peer = udp_peer();
    assert_eq!(exchange(&mut dispatcher, &peer, server, "a"), "0:1:a");
    dispatcher.sockets().remove(token).unwrap();
    turn_until(&mut dispatcher, LIMIT, |d| !d.state().ended.is_empty());
    assert_eq!(
        dispatcher.state().ended,
        [(peer.local_addr().unwrap(), 0, SessionEnd::Closed)]
    );
}

#[test]
fn the_kernel_receive_buffer_is_raised_on_registration() {
    const ASKED: usize = 1 << 20;
    let (mut dispatcher, token, _) = serve(sessions().receive_buffer(Some(ASKED)));
    dispatcher.turn(Some(Duration::ZERO)).unwrap(); // runs `registered`
    let granted = {
        let sockets = dispatcher.sockets();
        socket2::SockRef::from(sockets.socket(token).unwrap())
            .recv_buffer_size()
            .unwrap()
    };
    // What the same request gets on a socket of our own: the kernel's
    // rounding (Linux doubles it) and limits alike.
    let reference = UdpSocket::bind("127.0.0.1:0").unwrap();
    let sock = socket2::SockRef::from(&reference);
    let default = sock.recv_buffer_size().unwrap();
    sock.set_recv_buffer_size(ASKED).unwrap();
    assert_eq!(granted, sock.recv_buffer_size().unwrap());
    println!("receive buffer: default {default}, granted {granted}");
}

/// Row 5 of docs/reliability.md through `UdpSessions`: a burst handled 8
/// datagrams per event, none lost, each session's in order.
#[test]
fn a_burst_from_several_peers_reaches_every_session_a_budget_at_a_time() {
    const PER_PEER: usize = 50;
    let (mut dispatcher, _, server) = serve(sessions().per_event(8));
    let peers = [udp_peer(), udp_peer(), udp_peer(), udp_peer()];
    for n in 0..PER_PEER {
        for peer in &peers {
            peer.send_to(n.to_string().as_bytes(), server).unwrap();
        }
    }
    for peer in &peers {
        for n in 0..PER_PEER {
            let got = reply(&mut dispatcher, peer);
            let count = got.split(':').nth(1).unwrap();
            assert_eq!(count, (n + 1).to_string(), "{got}");
            assert!(got.ends_with(&format!(":{n}")), "{got}");
        }
    }
    assert_eq!(dispatcher.state().made, 4);
}
