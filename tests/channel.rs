//! The waker and channels into the loop: many threads, nothing lost, order
//! per sender kept, bounded channels push back.

use std::sync::mpsc::TryRecvError;
use std::time::{Duration, Instant};

use sockmux::{Event, Events, Sockets};

mod util;
use util::LIMIT;

#[test]
fn eight_threads_times_ten_thousand_messages_all_arrive_in_order() {
    let mut sockets = Sockets::new().unwrap();
    let (tx, rx) = sockets.channel::<(usize, u32)>().unwrap();
    let threads: Vec<_> = (0..8)
        .map(|sender| {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for seq in 0..10_000 {
                    tx.send((sender, seq)).unwrap();
                }
            })
        })
        .collect();
    drop(tx);
    let mut next = [0u32; 8];
    let mut events = Events::with_capacity(16);
    let deadline = Instant::now() + LIMIT;
    let mut wakes = 0;
    'run: loop {
        assert!(Instant::now() < deadline, "timed out at {next:?}");
        sockets
            .poll(&mut events, Some(Duration::from_secs(1)))
            .unwrap();
        for event in &events {
            assert_eq!(event, Event::Wake);
            wakes += 1;
            loop {
                match rx.try_recv() {
                    Ok((sender, seq)) => {
                        assert_eq!(seq, next[sender], "sender {sender} out of order");
                        next[sender] += 1;
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => break 'run,
                }
            }
        }
    }
    assert_eq!(next, [10_000; 8]);
    for t in threads {
        t.join().unwrap();
    }
    println!("80,000 messages in {wakes} wake-ups");
}

#[test]
fn bounded_channel_pushes_back_and_loses_nothing() {
    let mut sockets = Sockets::new().unwrap();
    let (tx, rx) = sockets.sync_channel::<u32>(4).unwrap();
    let producer = std::thread::spawn(move || {
        for i in 0..2_000 {
            tx.send(i).unwrap(); // blocks while 4 are waiting
        }
    });
    let mut expected = 0;
    let mut events = Events::with_capacity(4);
    let deadline = Instant::now() + LIMIT;
    'run: loop {
        assert!(Instant::now() < deadline, "timed out at {expected}");
        sockets
            .poll(&mut events, Some(Duration::from_secs(1)))
            .unwrap();
        loop {
            match rx.try_recv() {
                Ok(i) => {
                    assert_eq!(i, expected);
                    expected += 1;
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => break 'run,
            }
        }
    }
    assert_eq!(expected, 2_000);
    producer.join().unwrap();
}

#[test]
fn try_send_hands_the_message_back_when_full_or_disconnected() {
    use std::sync::mpsc::TrySendError;
    let mut sockets = Sockets::new().unwrap();
    let (tx, rx) = sockets.sync_channel::<String>(1).unwrap();
    tx.try_send("a".into()).unwrap();
    assert_eq!(tx.try_send("b".into()), Err(TrySendError::Full("b".into())));
    drop(rx);
    assert_eq!(
        tx.try_send("c".into()),
        Err(TrySendError::Disconnected("c".into()))
    );
    assert_eq!(
        tx.send("d".into()).unwrap_err().kind(),
        std::io::ErrorKind::BrokenPipe
    );
}

#[test]
fn wakes_from_many_threads_coalesce_and_none_is_lost() {
    let mut sockets = Sockets::new().unwrap();
    let waker = sockets.waker().unwrap();
    // Every call hands out the same underlying waker.
    let again = sockets.waker().unwrap();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let waker = waker.clone();
            std::thread::spawn(move || waker.wake().unwrap())
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    again.wake().unwrap();
    let mut events = Events::with_capacity(8);
    sockets.poll(&mut events, Some(LIMIT)).unwrap();
    assert_eq!(events.iter().collect::<Vec<_>>(), [Event::Wake]);
    // Coalesced: no second Wake is pending.
    sockets
        .poll(&mut events, Some(Duration::from_millis(20)))
        .unwrap();
    assert!(events.is_empty(), "{events:?}");
}
