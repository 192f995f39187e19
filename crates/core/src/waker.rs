use std::fmt;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};

use crate::poll::WAKE_KEY;
use crate::Sockets;

/// Wakes a [`Sockets`](crate::Sockets) loop from any thread: the loop's next
/// (or current) poll returns with [`Event::Wake`](crate::Event::Wake)(crate::Event::Wake).
///
/// Cheap to clone; every clone shares the one mio waker of the loop. Wakes
/// that arrive before the loop polls again coalesce into one event: treat
/// `Wake` as "something may have changed, look", e.g. drain a
/// [`Receiver`].
///
/// # Examples
///
/// ```
/// use sockmux_core::{Event, Events, Sockets};
/// use std::time::Duration;
///
/// let mut sockets = Sockets::new()?;
/// let waker = sockets.waker()?;
/// std::thread::spawn(move || waker.wake().unwrap());
/// let mut events = Events::with_capacity(8);
/// while !events.iter().any(|e| e == Event::Wake) {
///     sockets.poll(&mut events, Some(Duration::from_secs(5)))?;
/// }
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct Waker {
    inner: Arc<mio::Waker>,
}

impl Waker {
    pub(crate) fn new(inner: Arc<mio::Waker>) -> Waker {
        Waker { inner }
    }

    /// Wakes the loop.
    ///
    /// # Errors
    ///
    /// The OS error from signalling the poller (rare: e.g. out of memory).
    ///
    /// # Examples
    ///
    /// ```
    /// let mut sockets = sockmux_core::Sockets::new()?;
    /// sockets.waker()?.wake()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn wake(&self) -> io::Result<()> {
        self.inner.wake()
    }
}

impl fmt::Debug for Waker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Waker").finish_non_exhaustive()
    }
}

/// State shared by the two ends of a channel: whether the loop has been
/// woken for messages it has not yet looked at. Saves one wake-up system
/// call per message while the loop is behind.
#[derive(Debug, Default)]
struct Notify {
    pending: AtomicBool,
}

#[derive(Debug)]
enum Tx<T> {
    Unbounded(mpsc::Sender<T>),
    Bounded(mpsc::SyncSender<T>),
}

impl<T> Clone for Tx<T> {
    fn clone(&self) -> Self {
        match self {
            Tx::Unbounded(tx) => Tx::Unbounded(tx.clone()),
            Tx::Bounded(tx) => Tx::Bounded(tx.clone()),
        }
    }
}

/// The sending end of a channel into the loop, made by
/// [`Sockets::channel`](crate::Sockets::channel) or
/// [`Sockets::sync_channel`](crate::Sockets::sync_channel). `Send + Clone`:
/// give one to each thread.
///
/// # Examples
///
/// ```
/// let mut sockets = sockmux_core::Sockets::new()?;
/// let (tx, rx) = sockets.channel::<u32>()?;
/// let tx2 = tx.clone();
/// std::thread::spawn(move || tx2.send(7)).join().unwrap().unwrap();
/// assert_eq!(rx.try_recv(), Ok(7));
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Sender<T> {
    /// Always `Some` but in `drop`, which drops it before waking the loop,
    /// so that the loop sees the disconnection when it looks.
    tx: Option<Tx<T>>,
    notify: Arc<Notify>,
    waker: Waker,
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        Sender {
            tx: self.tx.clone(),
            notify: self.notify.clone(),
            waker: self.waker.clone(),
        }
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender").finish_non_exhaustive()
    }
}

fn disconnected() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "the loop's receiver is gone")
}

impl<T> Sender<T> {
    /// Sends a message and wakes the loop. On a bounded channel, blocks
    /// while the channel is full (backpressure).
    ///
    /// # Errors
    ///
    /// `BrokenPipe` when the [`Receiver`] was dropped (the message is lost
    /// with it); the OS error from waking the loop.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut sockets = sockmux_core::Sockets::new()?;
    /// let (tx, rx) = sockets.sync_channel::<&str>(1)?;
    /// tx.send("one")?;
    /// assert_eq!(rx.try_recv(), Ok("one"));
    /// drop(rx);
    /// assert!(tx.send("two").is_err());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn send(&self, message: T) -> io::Result<()> {
        match self.tx() {
            Tx::Unbounded(tx) => tx.send(message).map_err(|_| disconnected())?,
            Tx::Bounded(tx) => tx.send(message).map_err(|_| disconnected())?,
        }
        self.notify()
    }

    /// Sends without blocking, like
    /// [`std::sync::mpsc::SyncSender::try_send`].
    ///
    /// # Errors
    ///
    /// `Full(message)` on a full bounded channel, `Disconnected(message)`
    /// when the receiver is gone: the message is handed back either way. A
    /// failure to wake the loop after the message went in is logged, not
    /// returned: the message is in the channel.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::mpsc::TrySendError;
    /// let mut sockets = sockmux_core::Sockets::new()?;
    /// let (tx, _rx) = sockets.sync_channel::<u8>(1)?;
    /// assert!(tx.try_send(1).is_ok());
    /// assert_eq!(tx.try_send(2), Err(TrySendError::Full(2)));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_send(&self, message: T) -> Result<(), mpsc::TrySendError<T>> {
        match self.tx() {
            Tx::Unbounded(tx) => tx
                .send(message)
                .map_err(|e| mpsc::TrySendError::Disconnected(e.0))?,
            Tx::Bounded(tx) => tx.try_send(message)?,
        }
        if let Err(e) = self.notify() {
            log::debug!("channel: waking the loop failed: {e}");
        }
        Ok(())
    }

    fn tx(&self) -> &Tx<T> {
        self.tx.as_ref().expect("a live Sender holds its channel")
    }

    fn notify(&self) -> io::Result<()> {
        if !self.notify.pending.swap(true, Ordering::SeqCst) {
            self.waker.wake()?;
        }
        Ok(())
    }
}

impl<T> Drop for Sender<T> {
    /// Wakes the loop after letting go of the channel, so that a loop
    /// waiting for "every sender gone" hears of it.
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Err(e) = self.notify() {
            log::debug!("channel: waking the loop on drop failed: {e}");
        }
    }
}

/// The receiving end of a channel into the loop. On
/// [`Event::Wake`](crate::Event::Wake)(crate::Event::Wake), call [`try_recv`](Receiver::try_recv)
/// until it answers [`TryRecvError::Empty`](std::sync::mpsc::TryRecvError).
///
/// # Examples
///
/// ```
/// use sockmux_core::{Event, Events, Sockets};
/// use std::time::Duration;
///
/// let mut sockets = Sockets::new()?;
/// let (tx, rx) = sockets.channel()?;
/// let workers: Vec<_> = (0..4)
///     .map(|i| {
///         let tx = tx.clone();
///         std::thread::spawn(move || tx.send(i).unwrap())
///     })
///     .collect();
/// let mut got = Vec::new();
/// let mut events = Events::with_capacity(8);
/// while got.len() < 4 {
///     sockets.poll(&mut events, Some(Duration::from_secs(5)))?;
///     if events.iter().any(|e| e == Event::Wake) {
///         while let Ok(i) = rx.try_recv() {
///             got.push(i);
///         }
///     }
/// }
/// got.sort();
/// assert_eq!(got, [0, 1, 2, 3]);
/// # for w in workers { w.join().unwrap(); }
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Receiver<T> {
    rx: mpsc::Receiver<T>,
    notify: Arc<Notify>,
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver").finish_non_exhaustive()
    }
}

impl<T> Receiver<T> {
    /// Takes the next message without blocking, like
    /// [`std::sync::mpsc::Receiver::try_recv`]. Messages from one sender
    /// arrive in the order sent.
    ///
    /// # Errors
    ///
    /// `Empty` when no message waits; `Disconnected` when, in addition,
    /// every [`Sender`] has been dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::mpsc::TryRecvError;
    /// let mut sockets = sockmux_core::Sockets::new()?;
    /// let (tx, rx) = sockets.channel()?;
    /// assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    /// tx.send("x")?;
    /// assert_eq!(rx.try_recv(), Ok("x"));
    /// drop(tx);
    /// assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_recv(&self) -> Result<T, mpsc::TryRecvError> {
        match self.rx.try_recv() {
            Err(mpsc::TryRecvError::Empty) => {
                // Re-arm the wake-up, then look once more for a message whose
                // sender saw the old flag and so did not wake the loop.
                self.notify.pending.store(false, Ordering::SeqCst);
                self.rx.try_recv()
            }
            other => other,
        }
    }
}

impl<D> Sockets<D> {
    /// A handle that wakes this loop from any thread (see [`Waker`]). Every
    /// call returns a clone of the one waker of the loop.
    ///
    /// # Errors
    ///
    /// The OS error from creating the waker (first call only).
    ///
    /// # Examples
    ///
    /// ```
    /// let mut sockets = sockmux_core::Sockets::new()?;
    /// let waker = sockets.waker()?;
    /// std::thread::spawn(move || waker.wake()).join().unwrap()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn waker(&mut self) -> io::Result<Waker> {
        if let Some(waker) = &self.waker {
            return Ok(waker.clone());
        }
        let inner = mio::Waker::new(self.selector.registry(), mio::Token(WAKE_KEY))?;
        let waker = Waker::new(std::sync::Arc::new(inner));
        self.waker = Some(waker.clone());
        Ok(waker)
    }

    /// An unbounded channel into the loop: each send wakes the loop with
    /// [`Event::Wake`](crate::Event::Wake); on it, drain the [`Receiver`].
    ///
    /// # Errors
    ///
    /// The OS error from creating the loop's waker.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut sockets = sockmux_core::Sockets::new()?;
    /// let (tx, rx) = sockets.channel()?;
    /// tx.send(1u8)?;
    /// assert_eq!(rx.try_recv(), Ok(1));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn channel<T>(&mut self) -> io::Result<(Sender<T>, Receiver<T>)> {
        Ok(channel(self.waker()?, None))
    }

    /// A bounded channel into the loop: [`Sender::send`] blocks while
    /// `bound` messages wait (backpressure), [`Sender::try_send`] hands the
    /// message back.
    ///
    /// # Errors
    ///
    /// The OS error from creating the loop's waker.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut sockets = sockmux_core::Sockets::new()?;
    /// let (tx, rx) = sockets.sync_channel(2)?;
    /// tx.send('a')?;
    /// assert_eq!(rx.try_recv(), Ok('a'));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn sync_channel<T>(&mut self, bound: usize) -> io::Result<(Sender<T>, Receiver<T>)> {
        Ok(channel(self.waker()?, Some(bound)))
    }
}

pub(crate) fn channel<T>(waker: Waker, bound: Option<usize>) -> (Sender<T>, Receiver<T>) {
    let notify = Arc::new(Notify::default());
    let (tx, rx) = match bound {
        None => {
            let (tx, rx) = mpsc::channel();
            (Tx::Unbounded(tx), rx)
        }
        Some(bound) => {
            let (tx, rx) = mpsc::sync_channel(bound);
            (Tx::Bounded(tx), rx)
        }
    };
    (
        Sender {
            tx: Some(tx),
            notify: notify.clone(),
            waker,
        },
        Receiver { rx, notify },
    )
}
