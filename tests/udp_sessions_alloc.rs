//! Zero heap allocations per datagram to an existing `UdpSessions` session:
//! an echo session per peer, behind a `Dispatcher`, driven by a peer on the
//! same thread, counted by a global allocator (its own test binary, as
//! tests/responder_alloc.rs). After a warm-up, any allocation on the loop's
//! thread fails the test.

use std::net::SocketAddr;

use sockmux::{Dispatcher, Peer, UdpSessions};

mod util;
use util::alloc::{allocations_in, assert_the_counter_counts, Counting};
use util::{turn_until_datagram, udp_peer};

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Every peer's session: echoes, counting in the shared state.
fn echo(data: &[u8], peer: &mut Peer<'_, '_, u64>) -> bool {
    peer.send(data).unwrap();
    *peer.cx.state += 1;
    true
}

fn steady_state_allocations(size: usize, rounds: usize) -> u64 {
    let message: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
    let mut dispatcher = Dispatcher::new(0u64).unwrap();
    let sessions = UdpSessions::new(|_: &mut Peer<'_, '_, u64>| Some(echo));
    let server = dispatcher
        .sockets()
        .bind_udp("127.0.0.1:0", sessions)
        .unwrap();
    let server: SocketAddr = dispatcher.sockets().local_addr(server).unwrap();
    let peers = [udp_peer(), udp_peer()];
    let mut back = vec![0; 65_536];
    let mut round_trip = |dispatcher: &mut Dispatcher<u64>| {
        for peer in &peers {
            peer.send_to(&message, server).unwrap();
            let n = turn_until_datagram(dispatcher, peer, &mut back);
            assert_eq!(&back[..n], &message[..]);
        }
    };
    // Warm-up: the sessions made, the map at its size.
    for _ in 0..50 {
        round_trip(&mut dispatcher);
    }
    let allocations = allocations_in(|| {
        for _ in 0..rounds {
            round_trip(&mut dispatcher);
        }
    });
    assert_eq!(*dispatcher.state(), 2 * (50 + rounds as u64));
    allocations
}

#[test]
fn sessions_allocate_nothing_per_datagram_64_bytes() {
    assert_eq!(steady_state_allocations(64, 2000), 0);
}

#[test]
fn sessions_allocate_nothing_per_datagram_9000_bytes() {
    assert_eq!(steady_state_allocations(9000, 500), 0);
}

#[test]
fn the_counter_sees_an_allocation() {
    assert_the_counter_counts();
}
