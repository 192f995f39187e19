//! Zero heap allocations per event in steady state on the `Stream` path:
//! an `Acceptor` registering a `Stream` echo for a connection, driven by a
//! client on the same thread, counted by a global allocator. After a
//! warm-up (the accept, the shared read buffer), any allocation on the
//! loop's thread fails the test. Messages arrive as whole frames: a frame
//! split across reads costs the stream one allocation for its partial
//! bytes, by design (an idle connection holds no buffer).

use sockmux::{
    Acceptor, Context, Decoder, Dispatcher, Lines, Protocol, Raw, Stream, StreamIo, Token,
};

mod util;
use util::alloc::{allocations_in, assert_the_counter_counts, Counting};
use util::round_trip;

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Echoes every frame, lines with their newline.
struct Echo {
    newline: bool,
}

impl Protocol<()> for Echo {
    fn frame(&mut self, frame: &[u8], io: &mut StreamIo<'_, '_, ()>) {
        io.write(frame);
        if self.newline {
            io.write(b"\n");
        }
    }
}

fn steady_state_allocations<C: Decoder + Clone + 'static>(
    codec: C,
    newline: bool,
    message: &[u8],
    rounds: usize,
) -> u64 {
    let mut dispatcher = Dispatcher::new(()).unwrap();
    let acceptor = Acceptor::new(move |t: Token, cx: &mut Context<'_, ()>| {
        // Two small writes per line: do not let Nagle hold the second.
        let socket = cx.sockets.socket(t).unwrap();
        socket2::SockRef::from(socket)
            .set_tcp_nodelay(true)
            .unwrap();
        Stream::new(codec.clone(), Echo { newline })
    });
    let mut client = util::connect_to_acceptor(&mut dispatcher, acceptor);
    let mut back = vec![0; 64 * 1024];
    for _ in 0..50 {
        round_trip(&mut dispatcher, &mut client, message, &mut back);
    }
    allocations_in(|| {
        for _ in 0..rounds {
            round_trip(&mut dispatcher, &mut client, message, &mut back);
        }
    })
}

#[test]
fn raw_stream_allocates_nothing_per_event_64_bytes() {
    let message: Vec<u8> = (0..64).map(|i| i as u8).collect();
    assert_eq!(steady_state_allocations(Raw, false, &message, 2000), 0);
}

#[test]
fn raw_stream_allocates_nothing_per_event_40_kib() {
    let message: Vec<u8> = (0..40 * 1024).map(|i| (i % 251) as u8).collect();
    assert_eq!(steady_state_allocations(Raw, false, &message, 300), 0);
}

#[test]
fn lines_stream_allocates_nothing_per_event() {
    let mut message = vec![b'a'; 63];
    message.push(b'\n');
    assert_eq!(
        steady_state_allocations(Lines::new(4096), true, &message, 2000),
        0
    );
}

#[test]
fn the_counter_sees_an_allocation() {
    assert_the_counter_counts();
}
