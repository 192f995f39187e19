//! The echo server on the sockmux-core table itself, level mode: one read
//! per `Read` event (a short read clears readability on epoll/kqueue, a full
//! one leaves it raised for the next poll), `WRITABLE` interest only while
//! bytes are pending.

use std::io::{self, ErrorKind};
use std::net::TcpListener;
use std::time::Duration;

use sockmux_core::{Event, Events, Interest, Sockets, Token};

use super::{PENDING_LIMIT, READ_BUFFER};

/// Per-connection data: only what the socket did not take yet.
#[derive(Debug, Default)]
struct Conn {
    pending: Vec<u8>,
}

/// Serves echo on `listener` forever through a [`Sockets`] table.
///
/// # Errors
///
/// An OS error from the poller or from accepting.
pub fn serve_table(listener: TcpListener) -> io::Result<()> {
    let mut sockets = Sockets::<Conn>::with_capacity(1024)?;
    let listener = sockets.add(listener)?;
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; READ_BUFFER];
    loop {
        sockets.poll(&mut events, None::<Duration>)?;
        for event in &events {
            match event {
                Event::Read(t) if t == listener => accept_all(&mut sockets, t)?,
                Event::Read(t) if !read(&mut sockets, t, &mut buf) => close(&mut sockets, t),
                Event::Write(t) if !flush(&mut sockets, t) => close(&mut sockets, t),
                Event::Error(t) if t != listener => close(&mut sockets, t),
                _ => {}
            }
        }
    }
}

fn accept_all(sockets: &mut Sockets<Conn>, listener: Token) -> io::Result<()> {
    loop {
        match sockets.accept(listener) {
            Ok(_) => {}
            // All queued connections taken; the table re-arms.
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}

fn close(sockets: &mut Sockets<Conn>, t: Token) {
    // A stale token means it was closed earlier in this batch.
    let _ = sockets.remove(t);
}

/// One read, echoed back; false once the connection is done.
fn read(sockets: &mut Sockets<Conn>, t: Token, buf: &mut [u8]) -> bool {
    let n = match sockets.read(t, buf) {
        Ok(0) => return false,
        Ok(n) => n,
        // Nothing there after all: the table cleared readability.
        Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
        Err(_) => return false,
    };
    let Ok(conn) = sockets.data_mut(t) else {
        return false;
    };
    if !conn.pending.is_empty() {
        conn.pending.extend_from_slice(&buf[..n]);
        return set_interest(sockets, t);
    }
    let mut done = 0;
    while done < n {
        match sockets.write(t, &buf[done..n]) {
            Ok(k) => done += k,
            // Send buffer full: keep the rest for the Write event.
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(_) => return false,
        }
    }
    if done < n {
        match sockets.data_mut(t) {
            Ok(conn) => conn.pending.extend_from_slice(&buf[done..n]),
            Err(_) => return false,
        }
        return set_interest(sockets, t);
    }
    true
}

/// Writes pending bytes until done or `WouldBlock`.
fn flush(sockets: &mut Sockets<Conn>, t: Token) -> bool {
    let Ok(conn) = sockets.data_mut(t) else {
        return false;
    };
    let mut pending = std::mem::take(&mut conn.pending);
    let mut done = 0;
    while done < pending.len() {
        match sockets.write(t, &pending[done..]) {
            Ok(k) => done += k,
            // Send buffer full: Write comes again when it drains.
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(_) => return false,
        }
    }
    pending.drain(..done);
    if pending.is_empty() && pending.capacity() > READ_BUFFER {
        pending = Vec::new(); // give a burst's memory back
    }
    match sockets.data_mut(t) {
        Ok(conn) => conn.pending = pending,
        Err(_) => return false,
    }
    set_interest(sockets, t)
}

/// Read while there is room to buffer, write while there is output.
fn set_interest(sockets: &mut Sockets<Conn>, t: Token) -> bool {
    let Ok(conn) = sockets.data(t) else {
        return false;
    };
    let want = match (conn.pending.is_empty(), conn.pending.len() < PENDING_LIMIT) {
        (true, _) => Interest::READABLE,
        (false, true) => Interest::BOTH,
        (false, false) => Interest::WRITABLE,
    };
    match sockets.interest(t) {
        Ok(now) if now == want => true,
        Ok(_) => sockets.set_interest(t, want).is_ok(),
        Err(_) => false,
    }
}
