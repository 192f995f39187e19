//! The misuse probe of debug builds: what the table saw of a socket's
//! reads since its last `Read` event, for the responder crate's detector
//! of handlers that leave an edge-mode socket undrained or spin on a
//! level-mode one. Release builds keep nothing and report nothing.

#[cfg(debug_assertions)]
use crate::Mode;
use crate::{Table, Token};

/// Level-mode `Read` events in a row without a read before the probe
/// calls it a spin.
pub const SPIN_EVENTS: u32 = 64;

/// What a handler did wrong with a `Read` event, as
/// [`Table::probe_after_read`] finds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Misuse {
    /// An edge-mode socket's handler returned without a read answering
    /// `WouldBlock` (or coming back short, or at the end of the stream)
    /// since the event: data may be left that no event will announce.
    EdgeUndrained,
    /// A level-mode socket got [`SPIN_EVENTS`] `Read` events in a row
    /// whose handler neither read nor dropped read interest: the loop
    /// spins on it.
    LevelSpin,
}

/// Per socket (debug builds): what happened since the last `Read` event.
#[cfg(debug_assertions)]
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Probe {
    /// A `Read` was delivered and no call proved the socket drained since.
    pub(crate) undrained: bool,
    /// A `Read` was delivered and no read-kind call was made since.
    pub(crate) untouched: bool,
    /// Consecutive `Read` events handled without a read.
    pub(crate) spins: u32,
    /// Reported once already.
    pub(crate) warned: bool,
}

#[cfg(debug_assertions)]
impl Probe {
    #[inline(always)]
    pub(crate) fn read_delivered(&mut self) {
        self.undrained = true;
        self.untouched = true;
    }
}

impl<D> Table<D> {
    /// Debug builds: after the handler of a `Read` event of `token`
    /// returned, whether it misused the socket (once per socket: later
    /// calls answer `None`). Release builds always answer `None`. The
    /// responder crate's dispatcher calls it and logs a warning.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_core::{Event, Events, Mode, Sockets};
    /// use std::time::Duration;
    ///
    /// let mut sockets = Sockets::new()?;
    /// let server = sockets.bind_udp("127.0.0.1:0")?;
    /// sockets.set_mode(server, Mode::Edge)?;
    /// let client = sockets.connect_udp(sockets.local_addr(server)?)?;
    /// sockets.send(client, b"one")?;
    /// sockets.send(client, b"two")?;
    /// let mut events = Events::with_capacity(8);
    /// while !events.iter().any(|e| e == Event::Read(server)) {
    ///     sockets.poll(&mut events, Some(Duration::from_secs(5)))?;
    /// }
    /// let mut buf = [0; 8];
    /// sockets.recv(server, &mut buf)?; // one of two: not drained
    /// let misuse = sockets.probe_after_read(server);
    /// if cfg!(debug_assertions) {
    ///     assert_eq!(misuse, Some(sockmux_core::Misuse::EdgeUndrained));
    /// } else {
    ///     assert_eq!(misuse, None);
    /// }
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn probe_after_read(&mut self, token: Token) -> Option<Misuse> {
        #[cfg(debug_assertions)]
        {
            let entry = self.entry_mut(token).ok()?;
            let readable = entry.interest.is_readable();
            let level_again = entry.ready.contains(crate::ready::Ready::READABLE);
            let probe = &mut entry.probe;
            if probe.warned || !readable {
                probe.spins = 0;
                return None;
            }
            let found = match entry.mode {
                Mode::Edge if probe.undrained => Some(Misuse::EdgeUndrained),
                Mode::Edge => None,
                Mode::Level if probe.untouched && level_again => {
                    probe.spins += 1;
                    (probe.spins >= SPIN_EVENTS).then_some(Misuse::LevelSpin)
                }
                Mode::Level => {
                    probe.spins = 0;
                    None
                }
            };
            probe.warned = found.is_some();
            found
        }
        #[cfg(not(debug_assertions))]
        {
            let _ = token;
            None
        }
    }
}
