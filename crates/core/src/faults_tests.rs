//! The fault plans' own tests: parsing, and each kind of fault through the
//! table's real code on real loopback sockets, bounded by deadlines.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use crate::{Event, Events, FaultPlan, Interest, Sockets, Token};

const DEADLINE: Duration = Duration::from_secs(20);

fn err(spec: &str) -> String {
    spec.parse::<FaultPlan>().unwrap_err().to_string()
}

#[test]
fn bad_specs_are_clear_errors() {
    assert!(err("short=0.3").contains("no seed"), "{}", err("short=0.3"));
    assert!(err("seed=1,bogus=0.1").contains("unknown fault `bogus`"));
    assert!(err("seed=1,bogus=0.1").contains("known: seed, spurious, short"));
    assert!(err("seed=-1").contains("seed `-1`"));
    assert!(err("seed=1,short=x").contains("rate `x` is not a number"));
    assert!(err("seed=1,short=1.5").contains("not a probability"));
    assert!(err("seed=1,short=NaN").contains("not a probability"));
    assert!(err("seed=1,wouldblock=1").contains("below 1"));
    assert!(err("seed=1,short").contains("not key=value"));
    let plan: FaultPlan = " seed = 5 , delay=0.25,split=1 ,".parse().unwrap();
    assert_eq!(plan, FaultPlan::new(5).delay(0.25).split(1.0));
    assert_eq!(plan.to_string().parse::<FaultPlan>().unwrap(), plan);
}

/// A table with `plan`.
fn planned(plan: FaultPlan) -> Sockets {
    let mut sockets = Sockets::new().unwrap();
    sockets.set_fault_plan(plan).unwrap();
    sockets
}

/// A table with `plan` and a connected TCP pair: the table's side, the peer.
fn pair(plan: FaultPlan) -> (Sockets, Token, TcpStream) {
    let mut sockets = planned(plan);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let peer = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let t = sockets.add(listener.accept().unwrap().0).unwrap();
    (sockets, t, peer)
}

/// Reads through the table on `Read` events until `want` bytes came or the
/// stream ended; the bytes.
fn read_all(sockets: &mut Sockets, t: Token, want: usize) -> Vec<u8> {
    let deadline = Instant::now() + DEADLINE;
    let mut events = Events::with_capacity(8);
    let mut got = Vec::new();
    while got.len() < want {
        assert!(Instant::now() < deadline, "read {} of {want}", got.len());
        sockets
            .poll(&mut events, Some(Duration::from_millis(100)))
            .unwrap();
        if !events.iter().any(|e| e == Event::Read(t)) {
            continue;
        }
        let mut buf = [0; 4096];
        loop {
            match sockets.read(t, &mut buf) {
                Ok(0) => return got,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("{e}"),
            }
        }
    }
    got
}

fn data(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

#[test]
fn short_reads_wouldblocks_and_interrupts_lose_no_byte() {
    let sent = data(200_000);
    for plan in [
        FaultPlan::new(1).short(1.0),
        FaultPlan::new(2).wouldblock(0.5).interrupt(0.5),
        FaultPlan::new(3)
            .short(0.5)
            .delay(0.5)
            .split(0.5)
            .spurious(0.5),
    ] {
        let (mut sockets, t, mut peer) = pair(plan.clone());
        let writer = {
            let sent = sent.clone();
            std::thread::spawn(move || peer.write_all(&sent).map(|()| peer))
        };
        let got = read_all(&mut sockets, t, sent.len());
        assert!(
            got == sent,
            "{plan}: {} bytes, not the {} sent",
            got.len(),
            sent.len()
        );
        drop(writer.join().unwrap().unwrap());
        assert!(sockets.fault_counts().unwrap().total() > 0, "{plan}");
    }
}

#[test]
fn short_writes_lose_no_byte_and_keep_write_raised() {
    let (mut sockets, t, mut peer) = pair(FaultPlan::new(4).short(1.0));
    let reader = std::thread::spawn(move || {
        let mut got = Vec::new();
        peer.read_to_end(&mut got).map(|_| got)
    });
    let sent = data(100_000);
    sockets.set_interest(t, Interest::WRITABLE).unwrap();
    let deadline = Instant::now() + DEADLINE;
    let mut events = Events::with_capacity(8);
    let mut at = 0;
    while at < sent.len() {
        assert!(Instant::now() < deadline, "wrote {at}");
        sockets
            .poll(&mut events, Some(Duration::from_millis(100)))
            .unwrap();
        if events.iter().any(|e| e == Event::Write(t)) {
            match sockets.write(t, &sent[at..]) {
                Ok(n) => {
                    assert!(n < sent.len() - at || n == 1, "not cut short");
                    at += n;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("{e}"),
            }
        }
    }
    drop(sockets);
    assert!(reader.join().unwrap().unwrap() == sent);
}

#[test]
fn a_reset_then_the_end_for_reads_and_broken_pipe_for_writes() {
    let (mut sockets, t, mut peer) = pair(FaultPlan::new(5).reset(1.0));
    peer.write_all(b"data").unwrap();
    let e = sockets.read(t, &mut [0; 8]).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::ConnectionReset);
    assert_eq!(sockets.read(t, &mut [0; 8]).unwrap(), 0);
    let e = sockets.write(t, b"x").unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::BrokenPipe);
    assert_eq!(sockets.fault_counts().unwrap().reset, 1);
}

#[test]
fn an_end_reads_zero_bytes_from_then_on() {
    let (mut sockets, t, mut peer) = pair(FaultPlan::new(6).end(1.0));
    peer.write_all(b"data").unwrap();
    assert_eq!(sockets.read(t, &mut [0; 8]).unwrap(), 0);
    assert_eq!(sockets.read(t, &mut [0; 8]).unwrap(), 0);
    assert_eq!(sockets.write(t, b"x").unwrap(), 1, "the other half is open");
    assert_eq!(sockets.fault_counts().unwrap().end, 1);
}

#[test]
fn accept_fails_with_emfile() {
    let mut sockets = planned(FaultPlan::new(7).emfile(1.0));
    let listener = sockets.listen_tcp("127.0.0.1:0").unwrap();
    let _peer = TcpStream::connect(sockets.local_addr(listener).unwrap()).unwrap();
    let e = sockets.accept(listener).unwrap_err();
    #[cfg(unix)]
    assert_eq!(e.raw_os_error(), Some(libc::EMFILE));
    #[cfg(windows)]
    assert_eq!(e.raw_os_error(), Some(10024));
    assert_eq!(sockets.fault_counts().unwrap().emfile, 1);
}

#[test]
fn delayed_and_split_reports_arrive_within_a_few_polls() {
    let mut sockets = planned(FaultPlan::new(8).delay(0.9).split(1.0));
    let t = sockets.bind_udp("127.0.0.1:0").unwrap();
    sockets.set_interest(t, Interest::BOTH).unwrap();
    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut events = Events::with_capacity(8);
    let mut datagrams = 0;
    let deadline = Instant::now() + DEADLINE;
    for i in 0..20u8 {
        peer.send_to(&[i], sockets.local_addr(t).unwrap()).unwrap();
        // Each arrives: a report held back is released within 3 polls,
        // and the poll does not give up while it holds one.
        'wait: loop {
            assert!(Instant::now() < deadline, "datagram {i} never reported");
            sockets
                .poll(&mut events, Some(Duration::from_secs(5)))
                .unwrap();
            for event in &events {
                if event == Event::Read(t) {
                    let mut buf = [0; 4];
                    match sockets.recv(t, &mut buf) {
                        Ok(1) if buf[0] == i => {
                            datagrams += 1;
                            break 'wait;
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        other => panic!("{other:?}"),
                    }
                }
            }
            sockets.set_interest(t, Interest::READABLE).unwrap();
        }
    }
    assert_eq!(datagrams, 20);
    let counts = sockets.fault_counts().unwrap();
    assert!(counts.delay > 0, "{counts}");
}

#[test]
fn a_spurious_event_answers_wouldblock_and_the_loop_sleeps_after() {
    let mut sockets = planned(FaultPlan::new(9).spurious(1.0));
    let t = sockets.bind_udp("127.0.0.1:0").unwrap();
    let mut events = Events::with_capacity(8);
    sockets.poll(&mut events, Some(Duration::ZERO)).unwrap();
    assert_eq!(events.iter().collect::<Vec<_>>(), [Event::Read(t)]);
    let e = sockets.recv(t, &mut [0; 8]).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
    assert_eq!(sockets.fault_counts().unwrap().spurious, 1);
    // Off again: nothing is ready, the poll waits its timeout out.
    sockets.set_fault_plan(FaultPlan::new(9)).unwrap();
    let n = sockets
        .poll(&mut events, Some(Duration::from_millis(30)))
        .unwrap();
    assert_eq!(n, 0, "{events:?}");
}

#[test]
fn the_same_seed_makes_the_same_faults() {
    let run = |seed| {
        let (mut sockets, t, mut peer) = pair(FaultPlan::new(seed).short(0.5).interrupt(0.3));
        peer.write_all(&data(5000)).unwrap();
        let mut sizes = Vec::new();
        let deadline = Instant::now() + DEADLINE;
        let mut buf = [0; 1000];
        while sizes.iter().sum::<usize>() < 5000 {
            assert!(Instant::now() < deadline);
            match sockets.read(t, &mut buf) {
                Ok(n) => sizes.push(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::yield_now(),
                Err(e) => panic!("{e}"),
            }
        }
        (sizes, sockets.fault_counts().unwrap())
    };
    assert_eq!(run(10), run(10));
}
