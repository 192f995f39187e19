//! Zero heap allocations per event in steady state through the responder
//! crate: the `tcp_echo` example's responders behind a `Dispatcher`, driven
//! by a client on the same thread, counted by a global allocator. After a
//! warm-up, any allocation on the loop's thread fails the test.

use std::net::TcpStream;

use sockmux::Dispatcher;

mod util;
use util::alloc::{allocations_in, Counting};
use util::round_trip;

#[path = "../examples/tcp_echo.rs"]
#[allow(dead_code)] // the example's `main` and argument parsing
mod tcp_echo;

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// A dispatcher serving the echo example and one connected client.
struct Echo {
    dispatcher: Dispatcher<tcp_echo::Stats>,
    client: TcpStream,
    back: Vec<u8>,
}

impl Echo {
    fn new() -> Echo {
        let mut dispatcher = Dispatcher::new(tcp_echo::Stats::default()).unwrap();
        let listener = tcp_echo::listen(&mut dispatcher, "127.0.0.1:0").unwrap();
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
    let n = allocations_in(|| {
        let v = std::hint::black_box(vec![1u8; 100]);
        drop(v);
    });
    assert_eq!(n, 1);
}
