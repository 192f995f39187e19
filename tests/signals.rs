//! Row 18 of docs/reliability.md, signals: SIGTERM, SIGHUP and SIGINT arrive
//! as events, and SIGUSR1 (the examples' `--stats-top` table) reaches every
//! loop that watches it; a server told to stop by SIGTERM mid-transfer drains what it
//! has and stops; SIGPIPE, even at its default disposition, never kills the
//! process.
//!
//! Its own test binary with its own `main`: signal dispositions are
//! process-wide, and the drain test runs this same binary again as a child
//! (`--child-server`) that signals itself.

mod util;

fn main() {
    #[cfg(unix)]
    {
        if std::env::args().nth(1).as_deref() == Some("--child-server") {
            unix::child_server();
            return;
        }
        util::harness::run_tests(util::harness::tests![unix:
            raised_signals_arrive_as_events,
            sigusr1_reaches_every_table_that_watches_it,
            a_responder_gets_the_signals_it_watches,
            sigterm_mid_transfer_drains_and_stops,
            sigpipe_at_default_never_kills_on_a_reset_peer,
        ]);
    }
    // Windows has only Ctrl-C (Signal::Interrupt), which a test cannot send
    // to its own console under wine; the doctests of `Signal`,
    // `Sockets::watch_signals` and `Context::watch_signals` cover the
    // registration there.
    #[cfg(not(unix))]
    util::harness::skip("Unix signals do not exist on this platform");
}

#[cfg(unix)]
mod unix {
    use std::io::{BufRead as _, BufReader, ErrorKind, IoSlice, Read as _, Write as _};
    use std::net::{Shutdown, TcpStream};
    use std::process::{Command, Stdio};
    use std::sync::mpsc;
    use std::time::Instant;

    use sockmux::{Event, Events, Signal, Sockets, Token};

    use crate::util::{accept_one, pattern, poll_until, read_to_would_block, reset, LIMIT};

    pub(crate) fn raised_signals_arrive_as_events() {
        let mut sockets = Sockets::new().unwrap();
        let mut events = Events::with_capacity(8);
        sockets
            .watch_signals(&[Signal::Terminate, Signal::Hangup, Signal::Interrupt])
            .unwrap();
        for (raw, want) in [
            (libc::SIGTERM, Signal::Terminate),
            (libc::SIGHUP, Signal::Hangup),
            (libc::SIGINT, Signal::Interrupt),
        ] {
            // SAFETY: raise with a signal number whose handler is installed.
            assert_eq!(unsafe { libc::raise(raw) }, 0);
            let mut seen = Vec::new();
            poll_until(&mut sockets, &mut events, LIMIT, |_, e| {
                seen.push(e);
                e == Event::Signal(want)
            });
            assert_eq!(seen, vec![Event::Signal(want)], "exactly the one signal");
        }
        println!("ok: SIGTERM, SIGHUP and SIGINT arrive as events");
    }

    /// SIGUSR1 arrives as `Signal::User1`, once, in each of two tables
    /// that watch it (as each loop of a `--threads 2` example does), and
    /// does not end the process (its default action would).
    pub(crate) fn sigusr1_reaches_every_table_that_watches_it() {
        let mut first = Sockets::new().unwrap();
        let mut second = Sockets::new().unwrap();
        let mut events = Events::with_capacity(8);
        first.watch_signals(&[Signal::User1]).unwrap();
        second.watch_signals(&[Signal::User1]).unwrap();
        // SAFETY: raise with a signal number whose handler is installed.
        assert_eq!(unsafe { libc::raise(libc::SIGUSR1) }, 0);
        for sockets in [&mut first, &mut second] {
            let mut seen = Vec::new();
            poll_until(sockets, &mut events, LIMIT, |_, e| {
                seen.push(e);
                e == Event::Signal(Signal::User1)
            });
            assert_eq!(
                seen,
                vec![Event::Signal(Signal::User1)],
                "exactly the one signal"
            );
        }
        println!("ok: SIGUSR1 arrives as Signal::User1 in both tables");
    }

    /// `Context::watch_signals` subscribes the responder that calls it: a
    /// raised SIGHUP reaches its `ready` as `Event::Signal`, and not the
    /// `ready` of a responder that did not ask.
    pub(crate) fn a_responder_gets_the_signals_it_watches() {
        use sockmux::{Action, Context, Dispatcher, Responder};

        struct Watcher;
        impl Responder<Vec<&'static str>> for Watcher {
            fn registered(&mut self, cx: &mut Context<'_, Vec<&'static str>>) -> Action {
                cx.watch_signals(&[Signal::Hangup]).unwrap();
                Action::Continue
            }
            fn ready(&mut self, event: Event, cx: &mut Context<'_, Vec<&'static str>>) -> Action {
                if event == Event::Signal(Signal::Hangup) {
                    cx.state.push("watcher");
                }
                Action::Continue
            }
        }
        let bystander = |event: Event, cx: &mut Context<'_, Vec<&'static str>>| {
            if let Event::Signal(_) = event {
                cx.state.push("bystander");
            }
            Action::Continue
        };
        let mut dispatcher = Dispatcher::new(Vec::new()).unwrap();
        dispatcher
            .sockets()
            .bind_udp("127.0.0.1:0", Watcher)
            .unwrap();
        dispatcher
            .sockets()
            .bind_udp("127.0.0.1:0", bystander)
            .unwrap();
        // The first turn runs the `registered` hooks.
        dispatcher.turn(Some(std::time::Duration::ZERO)).unwrap();
        // SAFETY: raise with a signal number whose handler is installed.
        assert_eq!(unsafe { libc::raise(libc::SIGHUP) }, 0);
        crate::util::turn_until(&mut dispatcher, LIMIT, |d| !d.state().is_empty());
        assert_eq!(dispatcher.state(), &["watcher"]);
        println!("ok: SIGHUP reaches the responder that watches it, only");
    }

    /// The parent: runs the child server, sends it 8 MiB, and checks that
    /// the child, which SIGTERMs itself after the first MiB, still takes all
    /// of it, answers, and exits 0.
    pub(crate) fn sigterm_mid_transfer_drains_and_stops() {
        const LEN: usize = 8 << 20;
        let mut child = Command::new(std::env::current_exe().unwrap())
            .arg("--child-server")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().expect("child printed its port").unwrap();
        let port: u16 = first
            .strip_prefix("listening ")
            .expect(&first)
            .parse()
            .unwrap();

        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream.set_read_timeout(Some(LIMIT)).unwrap();
        stream.write_all(&pattern(LEN, 18)).unwrap();
        stream.shutdown(Shutdown::Write).unwrap();
        let mut reply = String::new();
        stream.read_to_string(&mut reply).unwrap();
        assert_eq!(reply, format!("received {LEN}\n"));

        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let rest: Vec<String> = lines.map_while(Result::ok).collect();
            let _ = tx.send((child.wait().unwrap(), rest));
        });
        let (status, rest) = rx.recv_timeout(LIMIT).expect("the child did not stop");
        assert!(status.success(), "child: {status:?}");
        assert_eq!(rest, vec!["terminate: draining", "stopped"]);
        println!("ok: SIGTERM mid-transfer drains 8 MiB and stops");
    }

    /// The child: a one-connection-at-a-time byte counter that signals
    /// itself after the first MiB, then stops accepting, finishes what it
    /// has and exits.
    pub(crate) fn child_server() {
        let mut sockets = Sockets::new().unwrap();
        let mut events = Events::with_capacity(64);
        sockets.watch_signals(&[Signal::Terminate]).unwrap();
        let listener = sockets.listen_tcp("127.0.0.1:0").unwrap();
        println!("listening {}", sockets.local_addr(listener).unwrap().port());
        let mut listener = Some(listener);
        let mut conns: Vec<(Token, usize)> = Vec::new();
        let mut signalled = false;
        let mut stopping = false;
        let mut buf = vec![0u8; 64 * 1024];
        let deadline = Instant::now() + LIMIT;
        while !(stopping && conns.is_empty()) {
            assert!(Instant::now() < deadline, "child: no progress");
            sockets.poll(&mut events, Some(LIMIT)).unwrap();
            for event in &events {
                match event {
                    Event::Signal(Signal::Terminate) => {
                        println!("terminate: draining");
                        stopping = true;
                        if let Some(l) = listener.take() {
                            sockets.remove(l).unwrap(); // stop accepting
                        }
                    }
                    Event::Read(t) if Some(t) == listener => match sockets.accept(t) {
                        Ok(c) => conns.push((c, 0)),
                        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                        Err(e) => panic!("accept: {e}"),
                    },
                    Event::Read(t) => {
                        let Some(i) = conns.iter().position(|c| c.0 == t) else {
                            continue;
                        };
                        let ended = read_to_would_block(
                            &mut buf,
                            |b| sockets.read(t, b),
                            |chunk| {
                                conns[i].1 += chunk.len();
                                if conns[i].1 >= 1 << 20 && !signalled {
                                    signalled = true;
                                    // SAFETY: SIGTERM is watched: it becomes an event.
                                    assert_eq!(unsafe { libc::raise(libc::SIGTERM) }, 0);
                                }
                            },
                        );
                        if ended {
                            let reply = format!("received {}\n", conns[i].1);
                            // Small enough for an empty send buffer.
                            assert_eq!(sockets.write(t, reply.as_bytes()).unwrap(), reply.len());
                            sockets.remove(t).unwrap();
                            conns.swap_remove(i);
                        }
                    }
                    _ => {}
                }
            }
        }
        println!("stopped");
    }

    pub(crate) fn sigpipe_at_default_never_kills_on_a_reset_peer() {
        // SAFETY: restoring the default disposition (Rust's runtime ignores
        // SIGPIPE; a C host program or a user may not).
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
        let mut sockets = Sockets::new().unwrap();
        let mut events = Events::with_capacity(8);
        let listener = sockets.listen_tcp("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(sockets.local_addr(listener).unwrap()).unwrap();
        let conn = accept_one(&mut sockets, &mut events, listener);
        reset(client);
        poll_until(&mut sockets, &mut events, LIMIT, |_, e| {
            e == Event::Error(conn)
        });

        let chunk = vec![7u8; 16 * 1024];
        let mut errors = Vec::new();
        for round in 0..4 {
            let bufs = [IoSlice::new(&chunk), IoSlice::new(&chunk)];
            let r = if round % 2 == 0 {
                sockets.write_vectored(conn, &bufs)
            } else {
                sockets.write(conn, &chunk)
            };
            if let Err(e) = r {
                errors.push(e.kind());
            }
        }
        assert!(
            errors.contains(&ErrorKind::BrokenPipe),
            "writes to a reset peer must fail with EPIPE: {errors:?}"
        );
        println!("ok: SIGPIPE at SIG_DFL, writes to a reset peer failed with {errors:?}");
    }
}
