//! Row 17 of docs/reliability.md, EINTR: a 1 ms interval timer signal
//! (SIGALRM, installed without `SA_RESTART`) interrupts the loop's thread all
//! through a 64 MiB transfer and a timed poll. Polls are retried with the
//! time left, I/O is retried, nothing is lost and no error reaches the user.
//!
//! Its own test binary with its own `main`: the interval timer and the signal
//! disposition are process-wide, and the loop must run on the main thread
//! with every other thread blocking SIGALRM, so that the signals land on it.

mod util;

fn main() {
    #[cfg(unix)]
    util::harness::run_tests(util::harness::tests![unix:
        poll_is_retried_with_the_time_left,
        transfer_of_64_mib_under_1ms_signals,
    ]);
    // Windows has no EINTR: its waits are not interrupted by signals.
    #[cfg(not(unix))]
    util::harness::skip("no signals interrupt system calls on this platform");
}

#[cfg(unix)]
mod unix {
    use std::io::{ErrorKind, Write as _};
    use std::net::TcpStream;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    use sockmux::{Event, Events, Sockets};

    use crate::util::{fnv1a, pattern, poll_until, read_to_would_block, FNV_START, LIMIT};

    static SIGNALS: AtomicUsize = AtomicUsize::new(0);

    extern "C" fn on_alarm(_: libc::c_int) {
        SIGNALS.fetch_add(1, Ordering::Relaxed);
    }

    /// Installs the handler without `SA_RESTART` and starts a 1 ms interval
    /// timer; the guard stops it.
    struct Alarms;

    impl Alarms {
        fn start() -> Alarms {
            // SAFETY: plain libc calls with valid, zero-initialised structs;
            // the handler only touches an atomic.
            unsafe {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = on_alarm as *const () as libc::sighandler_t;
                action.sa_flags = 0; // no SA_RESTART: system calls fail with EINTR
                libc::sigemptyset(&mut action.sa_mask);
                assert_eq!(
                    libc::sigaction(libc::SIGALRM, &action, std::ptr::null_mut()),
                    0
                );
                let every = libc::timeval {
                    tv_sec: 0,
                    tv_usec: 1000,
                };
                let timer = libc::itimerval {
                    it_interval: every,
                    it_value: every,
                };
                assert_eq!(
                    libc::setitimer(libc::ITIMER_REAL, &timer, std::ptr::null_mut()),
                    0
                );
            }
            Alarms
        }
    }

    impl Drop for Alarms {
        fn drop(&mut self) {
            // SAFETY: as above; a zero itimerval stops the timer.
            unsafe {
                let off: libc::itimerval = std::mem::zeroed();
                libc::setitimer(libc::ITIMER_REAL, &off, std::ptr::null_mut());
            }
        }
    }

    /// Runs `f` on a thread that blocks SIGALRM, so the signals hit the loop.
    fn spawn_masked<T: Send + 'static>(
        f: impl FnOnce() -> T + Send + 'static,
    ) -> std::thread::JoinHandle<T> {
        std::thread::spawn(move || {
            // SAFETY: pthread_sigmask on this thread with a valid set.
            unsafe {
                let mut set: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut set);
                libc::sigaddset(&mut set, libc::SIGALRM);
                libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            }
            f()
        })
    }

    pub(crate) fn poll_is_retried_with_the_time_left() {
        let mut sockets = Sockets::new().unwrap();
        let mut events = Events::with_capacity(8);
        let before = SIGNALS.load(Ordering::Relaxed);
        let _alarms = Alarms::start();
        let wait = Duration::from_millis(300);
        let start = Instant::now();
        let n = sockets
            .poll(&mut events, Some(wait))
            .expect("EINTR must not reach the user");
        let took = start.elapsed();
        let signals = SIGNALS.load(Ordering::Relaxed) - before;
        assert_eq!(n, 0);
        assert!(
            took >= wait,
            "returned after {took:?}, before its {wait:?} timeout"
        );
        // A bound for a hang, not a speed: a wait restarted with its whole
        // timeout at every signal would never end.
        assert!(took < LIMIT, "took {took:?}");
        // How many signals land depends on the scheduler (pending ones
        // merge), not on the loop: one is enough to have interrupted it.
        assert!(signals > 0, "no signal arrived: nothing was interrupted");
        println!("poll({wait:?}) under 1 ms signals: returned after {took:?}, {signals} signals");
    }

    pub(crate) fn transfer_of_64_mib_under_1ms_signals() {
        const LEN: usize = 64 << 20;
        let mut sockets = Sockets::new().unwrap();
        let mut events = Events::with_capacity(64);
        let listener = sockets.listen_tcp("127.0.0.1:0").unwrap();
        let addr = sockets.local_addr(listener).unwrap();
        let data = pattern(LEN, 17);
        let expected = fnv1a(FNV_START, &data);
        let before = SIGNALS.load(Ordering::Relaxed);
        let _alarms = Alarms::start();
        let sender = spawn_masked(move || {
            let mut stream = TcpStream::connect(addr).unwrap();
            stream.write_all(&data).unwrap();
        });

        let mut conn = None;
        let mut received = 0usize;
        let mut sum = FNV_START;
        let mut buf = vec![0u8; 64 * 1024];
        let start = Instant::now();
        poll_until(&mut sockets, &mut events, LIMIT, |s, e| {
            match e {
                Event::Read(t) if t == listener => match s.accept(t) {
                    Ok(c) => conn = Some(c),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    Err(e) => panic!("accept: {e}"),
                },
                Event::Read(t) if Some(t) == conn => {
                    return read_to_would_block(
                        &mut buf,
                        |b| s.read(t, b),
                        |chunk| {
                            sum = fnv1a(sum, chunk);
                            received += chunk.len();
                        },
                    );
                }
                Event::Error(t) => panic!("error on {t}: {:?}", s.take_error(t)),
                _ => {}
            }
            false
        });
        sender.join().unwrap();
        let signals = SIGNALS.load(Ordering::Relaxed) - before;
        assert_eq!(received, LEN);
        assert_eq!(sum, expected);
        assert!(signals > 0, "no signal arrived during the transfer");
        println!(
            "64 MiB under 1 ms signals: {:?}, {signals} signals, checksum ok",
            start.elapsed()
        );
    }
}
