//! The `kv` example allocates nothing per request in steady state: a `GET`
//! of an existing key, and a `SET` that overwrites a value with one of the
//! same size. Its modules included by `#[path]`, served by a dispatcher on
//! the test's thread to a client on the same thread, counted by a global
//! allocator after a warm-up.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use sockmux::Dispatcher;

#[path = "../examples/kv/conn.rs"]
mod conn;
#[path = "../examples/kv/resp.rs"]
mod resp;
#[path = "../examples/kv/store.rs"]
mod store;
mod util;

use util::alloc::{allocations_in, assert_the_counter_counts, Counting};
use util::LIMIT;

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Sends `request`, turning the dispatcher until the whole reply came
/// back; checks it is `want` (`back` is the client's buffer, allocated
/// before).
#[track_caller]
fn round_trip(
    dispatcher: &mut Dispatcher<store::Store>,
    client: &mut TcpStream,
    request: &[u8],
    want: &[u8],
    back: &mut [u8],
) {
    let deadline = Instant::now() + LIMIT;
    client.write_all(request).unwrap();
    let mut got = 0;
    while got < want.len() {
        assert!(Instant::now() < deadline, "no reply within {LIMIT:?}");
        dispatcher.turn(Some(Duration::from_millis(10))).unwrap();
        loop {
            match client.read(&mut back[got..want.len()]) {
                Ok(0) => panic!("the server closed the connection"),
                Ok(n) => got += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => panic!("client read: {e}"),
            }
            if got == want.len() {
                break;
            }
        }
    }
    assert_eq!(&back[..got], want);
}

/// Allocations in `rounds` of `request` after 100 of warm-up.
fn steady_state_allocations(setup: &[u8], request: &[u8], want: &[u8], rounds: usize) -> u64 {
    let mut dispatcher = Dispatcher::new(store::Store::new()).unwrap();
    let listener = conn::listen(&mut dispatcher, "127.0.0.1:0").unwrap();
    let addr = dispatcher.sockets().local_addr(listener).unwrap();
    let mut client = TcpStream::connect(addr).unwrap();
    client.set_nodelay(true).unwrap();
    client.set_nonblocking(true).unwrap();
    let mut back = vec![0; 64 * 1024];
    round_trip(&mut dispatcher, &mut client, setup, b"+OK\r\n", &mut back);
    for _ in 0..100 {
        round_trip(&mut dispatcher, &mut client, request, want, &mut back);
    }
    allocations_in(|| {
        for _ in 0..rounds {
            round_trip(&mut dispatcher, &mut client, request, want, &mut back);
        }
    })
}

const SET: &[u8] =
    b"*3\r\n$3\r\nSET\r\n$8\r\nkey:0001\r\n$32\r\n0123456789abcdef0123456789abcdef\r\n";

#[test]
fn get_of_an_existing_key_allocates_nothing() {
    let get = b"*2\r\n$3\r\nGET\r\n$8\r\nkey:0001\r\n";
    let want = b"$32\r\n0123456789abcdef0123456789abcdef\r\n";
    assert_eq!(steady_state_allocations(SET, get, want, 2000), 0);
}

#[test]
fn set_of_a_same_size_value_allocates_nothing() {
    let set = b"*3\r\n$3\r\nSET\r\n$8\r\nkey:0001\r\n$32\r\nfedcba9876543210fedcba9876543210\r\n";
    assert_eq!(steady_state_allocations(SET, set, b"+OK\r\n", 2000), 0);
}

#[test]
fn pipelined_gets_and_sets_allocate_nothing() {
    let mut request = Vec::new();
    let mut want = Vec::new();
    for _ in 0..10 {
        request.extend_from_slice(SET);
        want.extend_from_slice(b"+OK\r\n");
        request.extend_from_slice(b"*2\r\n$3\r\nGET\r\n$8\r\nkey:0001\r\n");
        want.extend_from_slice(b"$32\r\n0123456789abcdef0123456789abcdef\r\n");
    }
    assert_eq!(steady_state_allocations(SET, &request, &want, 300), 0);
}

#[test]
fn the_counter_sees_an_allocation() {
    assert_the_counter_counts();
}
