//! Process signals as events: SIGINT, SIGTERM, SIGHUP and SIGUSR1 on Unix
//! (through signal-hook-mio), Ctrl-C on Windows (through ctrlc and the loop's waker).

use std::io;

use log::debug;

#[cfg(unix)]
use crate::poll::SIGNAL_KEY;
use crate::Sockets;

/// A process signal, delivered as [`Event::Signal`](crate::Event::Signal)
/// once [`Sockets::watch_signals`](crate::Sockets::watch_signals) asked for
/// it.
///
/// | variant | Unix | Windows |
/// |---|---|---|
/// | `Interrupt` | SIGINT | Ctrl-C, Ctrl-Break |
/// | `Terminate` | SIGTERM | never raised |
/// | `Hangup` | SIGHUP | never raised |
/// | `User1` | SIGUSR1 | never raised |
///
/// On Windows, watching `Terminate`, `Hangup` or `User1` succeeds and does
/// nothing: those events never come.
///
/// # Examples
///
/// ```
/// use sockmux_core::{Signal, Sockets};
/// let mut sockets = Sockets::new()?;
/// sockets.watch_signals(&[Signal::Interrupt, Signal::Terminate])?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Signal {
    /// Interrupt from the terminal: SIGINT, or Ctrl-C on Windows.
    Interrupt,
    /// A polite request to stop: SIGTERM.
    Terminate,
    /// The terminal hung up, or by convention "reload": SIGHUP.
    Hangup,
    /// The first user-defined signal: SIGUSR1 (`kill -USR1 PID`), by
    /// convention "report your state". Unix only: on Windows it can be
    /// watched but is never raised.
    ///
    /// # Examples
    ///
    /// A program that prints its figures on SIGUSR1 watches it instead of
    /// letting its default action end the process:
    ///
    /// ```
    /// use sockmux_core::{Signal, Sockets};
    ///
    /// let mut sockets = Sockets::new()?;
    /// sockets.watch_signals(&[Signal::User1])?;
    /// # #[cfg(unix)]
    /// # {
    /// # use sockmux_core::Event;
    /// # let mut events = sockmux_core::Events::with_capacity(8);
    /// # // SAFETY: raise with a signal whose handler is installed above.
    /// # assert_eq!(unsafe { libc::raise(libc::SIGUSR1) }, 0);
    /// # let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    /// # let mut seen = false;
    /// # while !seen && std::time::Instant::now() < deadline {
    /// #     sockets.poll(&mut events, Some(std::time::Duration::from_millis(100)))?;
    /// #     seen = events.iter().any(|e| e == Event::Signal(Signal::User1));
    /// # }
    /// # assert!(seen, "SIGUSR1 arrives as an event");
    /// # }
    /// # Ok::<(), std::io::Error>(())
    /// ```
    User1,
}

impl Signal {
    pub(crate) const ALL: [Signal; 4] = [
        Signal::Interrupt,
        Signal::Terminate,
        Signal::Hangup,
        Signal::User1,
    ];

    pub(crate) const fn bit(self) -> u8 {
        match self {
            Signal::Interrupt => 1,
            Signal::Terminate => 2,
            Signal::Hangup => 4,
            Signal::User1 => 8,
        }
    }
}

impl<D> Sockets<D> {
    /// Delivers the given process signals as [`Event::Signal`](crate::Event::Signal) instead of
    /// their default action (which, for these, ends the process). Call again
    /// to add more. See [`Signal`] for what each platform raises.
    ///
    /// # Errors
    ///
    /// The OS error from installing the handler; on Windows, an error if
    /// another Ctrl-C handler was installed in the process.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_core::{Signal, Sockets};
    /// let mut sockets = Sockets::new()?;
    /// sockets.watch_signals(&[Signal::Terminate])?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn watch_signals(&mut self, signals: &[Signal]) -> io::Result<()> {
        if self.signals.is_none() {
            #[cfg(unix)]
            let watch = Watch::new(self.selector.registry(), SIGNAL_KEY)?;
            #[cfg(windows)]
            let watch = Watch::new(self.waker()?)?;
            self.signals = Some(watch);
        }
        let watch = self.signals.as_mut().expect("set above");
        for &signal in signals {
            watch.add(signal)?;
            debug!("watching {signal:?}");
        }
        Ok(())
    }
}

#[cfg(unix)]
mod imp {
    use super::Signal;
    use std::io;
    use std::os::raw::c_int;

    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1};
    use signal_hook_mio::v1_0::Signals;

    pub(crate) struct Watch {
        signals: Signals,
    }

    impl std::fmt::Debug for Watch {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("Watch").finish_non_exhaustive()
        }
    }

    fn number(signal: Signal) -> c_int {
        match signal {
            Signal::Interrupt => SIGINT,
            Signal::Terminate => SIGTERM,
            Signal::Hangup => SIGHUP,
            Signal::User1 => SIGUSR1,
        }
    }

    impl Watch {
        pub(crate) fn new(registry: &mio::Registry, key: usize) -> io::Result<Watch> {
            let mut signals = Signals::new(std::iter::empty::<c_int>())?;
            registry.register(&mut signals, mio::Token(key), mio::Interest::READABLE)?;
            Ok(Watch { signals })
        }

        pub(crate) fn add(&mut self, signal: Signal) -> io::Result<()> {
            self.signals.add_signal(number(signal))
        }

        /// Signals that arrived since the last call, as a bit set.
        pub(crate) fn drain(&mut self) -> u8 {
            let mut bits = 0;
            for n in self.signals.pending() {
                for signal in Signal::ALL {
                    if number(signal) == n {
                        bits |= signal.bit();
                    }
                }
            }
            bits
        }
    }
}

#[cfg(windows)]
mod imp {
    use super::Signal;
    use std::io;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    use crate::Waker;

    #[derive(Debug)]
    pub(crate) struct Watch {
        interrupted: Arc<AtomicBool>,
    }

    impl Watch {
        pub(crate) fn new(waker: Waker) -> io::Result<Watch> {
            let interrupted = Arc::new(AtomicBool::new(false));
            let flag = interrupted.clone();
            ctrlc::set_handler(move || {
                flag.store(true, Ordering::SeqCst);
                if let Err(e) = waker.wake() {
                    log::debug!("Ctrl-C: waking the loop failed: {e}");
                }
            })
            .map_err(|e| io::Error::other(format!("cannot watch Ctrl-C: {e}")))?;
            Ok(Watch { interrupted })
        }

        /// Only Ctrl-C exists: watching `Terminate`, `Hangup` or `User1` is
        /// a documented no-op (see [`Signal`]).
        pub(crate) fn add(&mut self, _signal: Signal) -> io::Result<()> {
            Ok(())
        }

        pub(crate) fn drain(&mut self) -> u8 {
            if self.interrupted.swap(false, Ordering::SeqCst) {
                Signal::Interrupt.bit()
            } else {
                0
            }
        }
    }
}

pub(crate) use imp::Watch;
