//! The floor: a hand-written echo server on raw mio, as a careful user would
//! write it. One thread, a slab of connections, edge-triggered reads drained
//! to `WouldBlock`, write interest registered only while bytes are pending.
//!
//! Two variants of it take part in the latency study of docs/benchmarks.md
//! (never in the default run): [`AfterShortRead::Stop`] stops reading at a
//! short read, as sockmux does (one `recv` fewer per request), and
//! [`AfterShortRead::SpendSyscall`] stops there too but spends the saved
//! system call on `/dev/null`, so that it does the work of the draining
//! server without touching the socket.

use std::io::{self, ErrorKind, Read, Write};
use std::net::TcpListener as StdListener;

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Registry, Token};
use slab::Slab;

use super::{PENDING_LIMIT, READ_BUFFER};

/// The listener's token, outside the slab's range.
const LISTENER: Token = Token(usize::MAX);

struct Conn {
    stream: TcpStream,
    /// Echo bytes the socket did not take yet.
    pending: Vec<u8>,
    /// What the connection is registered for now.
    interest: Interest,
}

/// Serves echo on `listener` forever with raw mio.
///
/// # Errors
///
/// An OS error from the poller or from accepting (other than running out
/// of descriptors for a moment).
pub fn serve_mio(listener: StdListener) -> io::Result<()> {
    serve_mio_reading(listener, AfterShortRead::Drain)
}

/// What the raw mio server does after a read that returned less than its
/// buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AfterShortRead {
    /// Reads again until `WouldBlock`: the edge-triggered rule (the floor).
    Drain,
    /// Stops: the socket is drained for now (sockmux's short-read rule).
    Stop,
    /// Stops, then reads one byte of `/dev/null`: the draining server's
    /// system call count, without its second look at the socket.
    SpendSyscall,
}

/// [`serve_mio`], with what to do after a short read.
///
/// # Errors
///
/// As [`serve_mio`]; also opening `/dev/null` for
/// [`AfterShortRead::SpendSyscall`].
pub fn serve_mio_reading(listener: StdListener, after: AfterShortRead) -> io::Result<()> {
    let mut spend = match after {
        AfterShortRead::SpendSyscall => Some(std::fs::File::open("/dev/null")?),
        _ => None,
    };
    listener.set_nonblocking(true)?;
    let mut listener = TcpListener::from_std(listener);
    let mut poll = Poll::new()?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    let mut events = Events::with_capacity(1024);
    let mut conns: Slab<Conn> = Slab::with_capacity(1024);
    let mut buf = vec![0u8; READ_BUFFER];
    loop {
        match poll.poll(&mut events, None) {
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            other => other?,
        }
        for event in &events {
            if event.token() == LISTENER {
                accept_all(&listener, poll.registry(), &mut conns)?;
                continue;
            }
            let key = event.token().0;
            let Some(conn) = conns.get_mut(key) else {
                continue; // closed earlier in this batch
            };
            let open = serve_conn(conn, poll.registry(), key, &mut buf, after, &mut spend);
            if !open {
                let mut conn = conns.remove(key);
                let _ = poll.registry().deregister(&mut conn.stream);
            }
        }
    }
}

fn accept_all(
    listener: &TcpListener,
    registry: &Registry,
    conns: &mut Slab<Conn>,
) -> io::Result<()> {
    loop {
        match listener.accept() {
            Ok((mut stream, _)) => {
                let entry = conns.vacant_entry();
                registry.register(&mut stream, Token(entry.key()), Interest::READABLE)?;
                entry.insert(Conn {
                    stream,
                    pending: Vec::new(),
                    interest: Interest::READABLE,
                });
            }
            // Accepted everything queued: wait for the next edge.
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Reads and writes what the connection allows; false once it is closed.
/// Every event is handled the same way: flush, then drain reads (edge
/// mode needs both to reach `WouldBlock` or completion).
fn serve_conn(
    conn: &mut Conn,
    registry: &Registry,
    key: usize,
    buf: &mut [u8],
    after: AfterShortRead,
    spend: &mut Option<std::fs::File>,
) -> bool {
    if !flush(conn) {
        return false;
    }
    while conn.pending.len() < PENDING_LIMIT {
        match conn.stream.read(buf) {
            Ok(0) => return false,
            Ok(n) => {
                if !echo(conn, &buf[..n]) {
                    return false;
                }
                if n < buf.len() && after != AfterShortRead::Drain {
                    if let Some(file) = spend {
                        let _ = file.read(&mut buf[..1]);
                    }
                    break;
                }
            }
            // Drained: the next arrival raises a new edge.
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    let want = match (conn.pending.is_empty(), conn.pending.len() < PENDING_LIMIT) {
        (true, _) => Interest::READABLE,
        (false, true) => Interest::READABLE | Interest::WRITABLE,
        (false, false) => Interest::WRITABLE,
    };
    if want != conn.interest {
        conn.interest = want;
        if registry
            .reregister(&mut conn.stream, Token(key), want)
            .is_err()
        {
            return false;
        }
    }
    true
}

/// Writes `data` back, keeping what the socket does not take.
fn echo(conn: &mut Conn, data: &[u8]) -> bool {
    if !conn.pending.is_empty() {
        conn.pending.extend_from_slice(data);
        return true;
    }
    let mut done = 0;
    while done < data.len() {
        match conn.stream.write(&data[done..]) {
            Ok(n) => done += n,
            // Send buffer full: keep the rest for the writable edge.
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    conn.pending.extend_from_slice(&data[done..]);
    true
}

/// Writes pending bytes until done or `WouldBlock`.
fn flush(conn: &mut Conn) -> bool {
    let mut done = 0;
    while done < conn.pending.len() {
        match conn.stream.write(&conn.pending[done..]) {
            Ok(n) => done += n,
            // Send buffer full: wait for the writable edge.
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    conn.pending.drain(..done);
    if conn.pending.is_empty() && conn.pending.capacity() > READ_BUFFER {
        conn.pending = Vec::new(); // give a burst's memory back
    }
    true
}
