//! Zero heap allocations per request in steady state for `GET /` on a
//! keep-alive connection to the `http` example: its modules
//! (`examples/http/`) on a dispatcher driven on this thread, a client on
//! the same thread, counted by the counting allocator. After a warm-up
//! (the accept, the shared read buffer), any allocation on the loop's
//! thread fails the test: the request is framed and parsed in place, the
//! response built on the stack with the cached date, which the
//! listener's timer formats again each second (also without allocating).

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use sockmux::Dispatcher;

mod util;
use util::alloc::{allocations_in, assert_the_counter_counts, Counting};
use util::LIMIT;

#[path = "../examples/http/codec.rs"]
#[allow(dead_code)]
mod codec;
#[path = "../examples/http/date.rs"]
#[allow(dead_code)]
mod date;
#[path = "../examples/http/request.rs"]
#[allow(dead_code)]
mod request;

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: localhost\r\nUser-Agent: test\r\n\r\n";
/// `Date: ` and its 29 bytes are the only part that changes.
const RESPONSE_LEN: usize = b"HTTP/1.1 200 OK\r\nServer: sockmux\r\nDate: \
    Thu, 01 Jan 1970 00:00:00 GMT\r\nContent-Type: text/plain\r\n\
    Content-Length: 13\r\n\r\nHello, World!"
    .len();

/// Sends `requests` copies of [`GET`] in one write and turns the
/// dispatcher until all their responses came back (checked in `back`,
/// which allocates nothing); panics after [`LIMIT`].
#[track_caller]
fn exchange(
    dispatcher: &mut Dispatcher<request::Shared>,
    client: &mut TcpStream,
    requests: &[u8],
    count: usize,
    back: &mut [u8],
) {
    let deadline = Instant::now() + LIMIT;
    let mut sent = 0;
    let mut got = 0;
    let want = count * RESPONSE_LEN;
    while got < want {
        assert!(Instant::now() < deadline, "no responses within {LIMIT:?}");
        if sent < requests.len() {
            match client.write(&requests[sent..]) {
                Ok(n) => sent += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => panic!("client write: {e}"),
            }
        }
        dispatcher.turn(Some(Duration::from_millis(10))).unwrap();
        loop {
            match client.read(&mut back[got..want]) {
                Ok(0) => panic!("the server closed the connection"),
                Ok(n) => got += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => panic!("client read: {e}"),
            }
            if got == want {
                break;
            }
        }
    }
    for response in back[..want].chunks(RESPONSE_LEN) {
        assert!(response.starts_with(b"HTTP/1.1 200 OK\r\n"));
        assert!(response.ends_with(b"\r\n\r\nHello, World!"));
    }
}

/// The allocations of `rounds` exchanges of `pipelined` requests each, and
/// then (if `until_tick`) of more exchanges until the timer refreshed the
/// cached date.
fn steady_state_allocations(pipelined: usize, rounds: usize, until_tick: bool) -> u64 {
    let mut dispatcher = Dispatcher::new(request::Shared::new()).unwrap();
    let listener =
        request::listen(&mut dispatcher, "127.0.0.1:0", Duration::from_secs(60)).unwrap();
    let addr = dispatcher.sockets().local_addr(listener).unwrap();
    let mut client = TcpStream::connect(addr).unwrap();
    client.set_nodelay(true).unwrap();
    client.set_nonblocking(true).unwrap();
    let requests = GET.repeat(pipelined);
    let mut back = vec![0; pipelined * RESPONSE_LEN];
    for _ in 0..50 {
        exchange(
            &mut dispatcher,
            &mut client,
            &requests,
            pipelined,
            &mut back,
        );
    }
    let date = *dispatcher.state().date.bytes();
    let deadline = Instant::now() + LIMIT;
    let n = allocations_in(|| {
        for _ in 0..rounds {
            exchange(
                &mut dispatcher,
                &mut client,
                &requests,
                pipelined,
                &mut back,
            );
        }
        while until_tick && *dispatcher.state().date.bytes() == date {
            assert!(
                Instant::now() < deadline,
                "no date refresh within {LIMIT:?}"
            );
            exchange(
                &mut dispatcher,
                &mut client,
                &requests,
                pipelined,
                &mut back,
            );
        }
    });
    assert!(!until_tick || *dispatcher.state().date.bytes() != date);
    n
}

#[test]
fn get_root_allocates_nothing_per_request() {
    assert_eq!(steady_state_allocations(1, 2000, false), 0);
}

#[test]
fn the_date_refresh_allocates_nothing() {
    assert_eq!(steady_state_allocations(1, 10, true), 0);
}

#[test]
fn sixteen_pipelined_gets_allocate_nothing() {
    assert_eq!(steady_state_allocations(16, 200, false), 0);
}

#[test]
fn the_counter_sees_an_allocation() {
    assert_the_counter_counts();
}
