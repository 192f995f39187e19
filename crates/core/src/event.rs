use std::fmt;

use crate::{Signal, TimerId, Token};

/// One ready event: a plain value, cheap to copy and to `match` with guards.
///
/// For one socket the events of a poll come in a fixed order: `Read`, then
/// `Write`, then `Error`, so bytes that arrived before a reset are read
/// before the reset is reported.
///
/// # Examples
///
/// ```
/// use sockmux_core::{Event, Events, Sockets};
/// use std::time::Duration;
///
/// let mut sockets = Sockets::new()?;
/// let server = sockets.bind_udp("127.0.0.1:0")?;
/// let client = sockets.connect_udp(sockets.local_addr(server)?)?;
/// sockets.send(client, b"hi")?;
///
/// let mut events = Events::with_capacity(16);
/// sockets.poll(&mut events, Some(Duration::from_secs(5)))?;
/// for event in &events {
///     match event {
///         Event::Read(t) if t == server => {
///             let mut buf = [0; 16];
///             let n = sockets.recv(t, &mut buf)?;
///             assert_eq!(&buf[..n], b"hi");
///         }
///         _ => {}
///     }
/// }
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Event {
    /// The socket has something to read: data, a datagram (possibly empty),
    /// a connection to accept, or the end of the stream.
    Read(Token),
    /// The socket can be written to; for a connecting TCP stream, the
    /// connection is established.
    Write(Token),
    /// The OS reported an error on the socket; fetch it with
    /// [`Table::take_error`](crate::Table::take_error).
    Error(Token),
    /// A timer fired (a periodic timer fires once per period).
    Timer(TimerId),
    /// A [`Waker`](crate::Waker) woke the loop; wakes that arrive together
    /// come as one event.
    Wake,
    /// A watched process signal arrived; several deliveries of one signal
    /// between two polls come as one event.
    Signal(Signal),
}

impl Event {
    /// The socket the event is for; `None` for timer, wake and signal
    /// events.
    ///
    /// # Examples
    ///
    /// ```
    /// use sockmux_core::{Event, Sockets};
    ///
    /// let mut sockets = Sockets::new()?;
    /// let t = sockets.bind_udp("127.0.0.1:0")?;
    /// assert_eq!(Event::Read(t).token(), Some(t));
    /// assert_eq!(Event::Wake.token(), None);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[must_use]
    pub const fn token(self) -> Option<Token> {
        match self {
            Event::Read(t) | Event::Write(t) | Event::Error(t) => Some(t),
            Event::Timer(_) | Event::Wake | Event::Signal(_) => None,
        }
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Read(t) => write!(f, "Read({t})"),
            Event::Write(t) => write!(f, "Write({t})"),
            Event::Error(t) => write!(f, "Error({t})"),
            Event::Timer(id) => write!(f, "Timer({id})"),
            Event::Wake => f.write_str("Wake"),
            Event::Signal(s) => write!(f, "Signal({s:?})"),
        }
    }
}

/// A caller-owned, reusable buffer of ready events, filled by
/// [`Sockets::poll`](crate::Sockets::poll).
///
/// Poll clears it and fills it with at most [`capacity`](Events::capacity)
/// events; readiness that does not fit is kept and reported by the next
/// poll. Iterating yields `Event` values (copies), so the loop body is free
/// to call back into the table.
///
/// # Examples
///
/// ```
/// use sockmux_core::Events;
///
/// let events = Events::with_capacity(128);
/// assert!(events.is_empty());
/// assert_eq!(events.capacity(), 128);
/// ```
#[derive(Clone)]
pub struct Events {
    list: Vec<Event>,
    capacity: usize,
}

impl Events {
    /// A buffer for up to `capacity` events per poll (at least 1).
    ///
    /// # Examples
    ///
    /// ```
    /// let events = sockmux_core::Events::with_capacity(0);
    /// assert_eq!(events.capacity(), 1);
    /// ```
    #[must_use]
    pub fn with_capacity(capacity: usize) -> Events {
        let capacity = capacity.max(1);
        Events {
            list: Vec::with_capacity(capacity),
            capacity,
        }
    }

    /// How many events one poll may deliver.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(sockmux_core::Events::with_capacity(8).capacity(), 8);
    /// ```
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// How many events the last poll delivered.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(sockmux_core::Events::with_capacity(8).len(), 0);
    /// ```
    #[must_use]
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Whether the last poll delivered nothing (it timed out).
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(sockmux_core::Events::with_capacity(8).is_empty());
    /// ```
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The events, in delivery order.
    ///
    /// # Examples
    ///
    /// ```
    /// let events = sockmux_core::Events::with_capacity(8);
    /// assert_eq!(events.iter().count(), 0);
    /// ```
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            inner: self.list.iter(),
        }
    }

    /// Empties the buffer (poll does this itself).
    ///
    /// # Examples
    ///
    /// ```
    /// let mut events = sockmux_core::Events::with_capacity(8);
    /// events.clear();
    /// assert!(events.is_empty());
    /// ```
    pub fn clear(&mut self) {
        self.list.clear();
    }

    #[inline]
    pub(crate) fn is_full(&self) -> bool {
        self.list.len() >= self.capacity
    }

    /// Whether `n` more events fit with one slot to spare.
    #[inline]
    pub(crate) fn has_room_beyond(&self, n: usize) -> bool {
        self.list.len() + n < self.capacity
    }

    /// Moves the last `n` events in front of the others, keeping the order
    /// within each part.
    pub(crate) fn move_last_to_front(&mut self, n: usize) {
        self.list.rotate_right(n);
    }

    #[inline]
    pub(crate) fn push(&mut self, event: Event) {
        debug_assert!(!self.is_full());
        self.list.push(event);
    }
}

impl fmt::Debug for Events {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(&self.list).finish()
    }
}

/// Iterator over the events of one poll, yielding copies.
///
/// # Examples
///
/// ```
/// let events = sockmux_core::Events::with_capacity(8);
/// let mut iter = events.iter();
/// assert!(iter.next().is_none());
/// ```
#[derive(Debug, Clone)]
pub struct Iter<'a> {
    inner: std::slice::Iter<'a, Event>,
}

impl Iterator for Iter<'_> {
    type Item = Event;

    fn next(&mut self) -> Option<Event> {
        self.inner.next().copied()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl ExactSizeIterator for Iter<'_> {}

impl<'a> IntoIterator for &'a Events {
    type Item = Event;
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}
