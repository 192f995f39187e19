use std::fmt;

/// Names one socket in a [`Table`](crate::Table) (timers have a
/// [`TimerId`](crate::TimerId)).
///
/// A token is a slab key plus a generation. Removing a socket bumps the
/// generation of its slot, so a token kept after `remove` — by the user, or
/// inside an event still queued in the same batch — is *stale*: every table
/// call rejects it with [`io::ErrorKind::NotFound`](std::io::ErrorKind), and
/// the table never routes it to the socket that reused the slot.
///
/// Tokens are `Copy`, compare by value and hash, so they work as guard
/// values in `match` arms and as map keys.
///
/// # Examples
///
/// ```
/// use sockmux_core::Sockets;
///
/// let mut sockets = Sockets::new()?;
/// let a = sockets.bind_udp("127.0.0.1:0")?;
/// sockets.remove(a)?;
/// let b = sockets.bind_udp("127.0.0.1:0")?;
/// // The slab reused the slot, but the generation tells the tokens apart.
/// assert_eq!(a.key(), b.key());
/// assert_ne!(a, b);
/// assert!(!sockets.contains(a));
/// assert!(sockets.local_addr(a).is_err());
/// # Ok::<(), std::io::Error>(())
/// ```
// One u64, key in the high half: a comparison (the guard in every match
// arm) is one instruction, and the order is by key, then generation.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Token(u64);

impl Token {
    pub(crate) const fn new(key: u32, generation: u32) -> Token {
        Token(((key as u64) << 32) | generation as u64)
    }

    /// The slot index in the table. Slots are reused after a remove, so a
    /// key alone does not name a socket: compare whole tokens.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_core::Sockets;
    ///
    /// let mut sockets = Sockets::new()?;
    /// let t = sockets.bind_udp("127.0.0.1:0")?;
    /// assert_eq!(t.key(), 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[must_use]
    pub const fn key(self) -> usize {
        (self.0 >> 32) as usize
    }

    /// How many times the slot was freed before this token was handed out.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_core::Sockets;
    ///
    /// let mut sockets = Sockets::new()?;
    /// let t = sockets.bind_udp("127.0.0.1:0")?;
    /// sockets.remove(t)?;
    /// let u = sockets.bind_udp("127.0.0.1:0")?;
    /// assert_eq!(u.generation(), t.generation() + 1);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[must_use]
    pub const fn generation(self) -> u32 {
        // Truncation keeps the low half: the generation.
        self.0 as u32
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Token({}.{})", self.key(), self.generation())
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}.{}", self.key(), self.generation())
    }
}
