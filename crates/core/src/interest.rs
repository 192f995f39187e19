use std::{fmt, ops};

/// Which readiness a socket wants reported: readable, writable, both or
/// neither.
///
/// Unlike mio's `Interest`, an empty interest is allowed: it pauses a socket
/// without removing it. Changing interest is a field write in the table, never
/// a system call (the socket stays registered with the OS for both
/// directions; the table filters what it reports).
///
/// # Examples
///
/// ```
/// use sockmux_core::Interest;
///
/// let both = Interest::READABLE | Interest::WRITABLE;
/// assert_eq!(both, Interest::BOTH);
/// assert!(both.is_readable() && both.is_writable());
/// assert_eq!(both.remove(Interest::WRITABLE), Interest::READABLE);
/// assert!(Interest::NONE.is_empty());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Interest(u8);

const READ: u8 = 0b01;
const WRITE: u8 = 0b10;

impl Interest {
    /// Nothing: the socket stays in the table but raises no `Read` or `Write`
    /// (errors are still reported).
    ///
    /// ```
    /// use sockmux_core::Interest;
    /// assert!(!Interest::NONE.is_readable() && !Interest::NONE.is_writable());
    /// ```
    pub const NONE: Interest = Interest(0);
    /// Report `Read` events.
    ///
    /// ```
    /// use sockmux_core::Interest;
    /// assert!(Interest::READABLE.is_readable() && !Interest::READABLE.is_writable());
    /// ```
    pub const READABLE: Interest = Interest(READ);
    /// Report `Write` events.
    ///
    /// ```
    /// use sockmux_core::Interest;
    /// assert!(Interest::WRITABLE.is_writable() && !Interest::WRITABLE.is_readable());
    /// ```
    pub const WRITABLE: Interest = Interest(WRITE);
    /// Report both `Read` and `Write` events, like the sketch's `select()`
    /// over all three lists.
    ///
    /// ```
    /// use sockmux_core::Interest;
    /// assert_eq!(Interest::BOTH, Interest::READABLE.add(Interest::WRITABLE));
    /// ```
    pub const BOTH: Interest = Interest(READ | WRITE);

    /// Whether `Read` events are wanted.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(sockmux_core::Interest::READABLE.is_readable());
    /// ```
    #[must_use]
    pub const fn is_readable(self) -> bool {
        self.0 & READ != 0
    }

    /// Whether `Write` events are wanted.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(!sockmux_core::Interest::READABLE.is_writable());
    /// ```
    #[must_use]
    pub const fn is_writable(self) -> bool {
        self.0 & WRITE != 0
    }

    /// Whether no event is wanted.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(sockmux_core::Interest::NONE.is_empty());
    /// ```
    #[must_use]
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Both sets together.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_core::Interest;
    /// assert_eq!(Interest::READABLE.add(Interest::WRITABLE), Interest::BOTH);
    /// ```
    #[must_use]
    pub const fn add(self, other: Interest) -> Interest {
        Interest(self.0 | other.0)
    }

    /// This set without `other`.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_core::Interest;
    /// assert_eq!(Interest::BOTH.remove(Interest::READABLE), Interest::WRITABLE);
    /// ```
    #[must_use]
    pub const fn remove(self, other: Interest) -> Interest {
        Interest(self.0 & !other.0)
    }

    pub(crate) const fn bits(self) -> u8 {
        self.0
    }
}

impl ops::BitOr for Interest {
    type Output = Interest;
    fn bitor(self, other: Interest) -> Interest {
        self.add(other)
    }
}

impl ops::BitOrAssign for Interest {
    fn bitor_assign(&mut self, other: Interest) {
        *self = self.add(other);
    }
}

impl fmt::Debug for Interest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.is_readable(), self.is_writable()) {
            (false, false) => f.write_str("NONE"),
            (true, false) => f.write_str("READABLE"),
            (false, true) => f.write_str("WRITABLE"),
            (true, true) => f.write_str("READABLE | WRITABLE"),
        }
    }
}

/// How a socket's readiness is reported.
///
/// See the crate documentation's event model for the full rules.
///
/// # Examples
///
/// ```
/// use sockmux_core::{Mode, Sockets};
///
/// let mut sockets = Sockets::new()?;
/// let t = sockets.bind_udp("127.0.0.1:0")?;
/// assert_eq!(sockets.mode(t)?, Mode::Level);
/// sockets.set_mode(t, Mode::Edge)?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Mode {
    /// Like `select()`: an event is raised on every poll for as long as the
    /// socket stays ready, until an I/O call through the table answers
    /// `WouldBlock` (or, for a stream on epoll/kqueue, comes back short).
    #[default]
    Level,
    /// Like raw mio: an event is raised once per readiness edge reported by
    /// the OS. The caller must drain the socket until `WouldBlock`, or it may
    /// never hear of the remaining data.
    Edge,
}
