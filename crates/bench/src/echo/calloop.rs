//! The echo server on calloop 0.14: a level-mode [`Generic`] source per
//! connection inside a small event source of our own, which switches its
//! interest to include writes only while bytes are pending (calloop then
//! re-registers the descriptor).

use std::cell::RefCell;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::rc::Rc;

use calloop::generic::Generic;
use calloop::{EventLoop, EventSource, Interest, LoopHandle, Mode, Poll, PostAction, Readiness};
use calloop::{Token, TokenFactory};

use super::{PENDING_LIMIT, READ_BUFFER};

/// Serves echo on `listener` forever with calloop.
///
/// # Errors
///
/// An error from the event loop or from accepting.
pub fn serve_calloop(listener: TcpListener) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    let mut event_loop: EventLoop<'static, ()> = EventLoop::try_new().map_err(io::Error::other)?;
    let handle = event_loop.handle();
    let inner = event_loop.handle();
    let buf = Rc::new(RefCell::new(vec![0u8; READ_BUFFER]));
    let source = Generic::new(listener, Interest::READ, Mode::Level);
    handle
        .insert_source(source, move |_, listener, ()| {
            accept_all(listener, &inner, &buf)?;
            Ok(PostAction::Continue)
        })
        .map_err(|e| io::Error::other(e.error))?;
    event_loop
        .run(None, &mut (), |()| {})
        .map_err(io::Error::other)
}

fn accept_all(
    listener: &TcpListener,
    handle: &LoopHandle<'static, ()>,
    buf: &Rc<RefCell<Vec<u8>>>,
) -> io::Result<()> {
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(true)?;
                let conn = Conn {
                    io: Generic::new(stream, Interest::READ, Mode::Level),
                    pending: Vec::new(),
                    buf: Rc::clone(buf),
                };
                handle
                    .insert_source(conn, |(), (), ()| {})
                    .map_err(|e| io::Error::other(e.error))?;
            }
            // All queued connections taken.
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// One connection: the socket, its pending output, the shared read buffer.
struct Conn {
    io: Generic<TcpStream>,
    pending: Vec<u8>,
    buf: Rc<RefCell<Vec<u8>>>,
}

impl EventSource for Conn {
    type Event = ();
    type Metadata = ();
    type Ret = ();
    type Error = io::Error;

    fn process_events<F>(
        &mut self,
        readiness: Readiness,
        token: Token,
        _callback: F,
    ) -> io::Result<PostAction>
    where
        F: FnMut((), &mut ()),
    {
        let Conn { io, pending, buf } = self;
        let before = interest(pending);
        let open = io.process_events(readiness, token, |readiness, stream| {
            let stream: &TcpStream = stream;
            let open = (!readiness.writable || flush(stream, pending))
                && (!readiness.readable
                    || pending.len() >= PENDING_LIMIT
                    || read(stream, pending, &mut buf.borrow_mut()));
            Ok(if open {
                PostAction::Continue
            } else {
                PostAction::Remove
            })
        })?;
        if open != PostAction::Continue {
            return Ok(open);
        }
        let after = interest(pending);
        if after.readable != before.readable || after.writable != before.writable {
            io.interest = after;
            return Ok(PostAction::Reregister);
        }
        Ok(PostAction::Continue)
    }

    fn register(&mut self, poll: &mut Poll, tokens: &mut TokenFactory) -> calloop::Result<()> {
        self.io.register(poll, tokens)
    }

    fn reregister(&mut self, poll: &mut Poll, tokens: &mut TokenFactory) -> calloop::Result<()> {
        self.io.reregister(poll, tokens)
    }

    fn unregister(&mut self, poll: &mut Poll) -> calloop::Result<()> {
        self.io.unregister(poll)
    }
}

fn interest(pending: &[u8]) -> Interest {
    Interest {
        readable: pending.len() < PENDING_LIMIT,
        writable: !pending.is_empty(),
    }
}

/// One read (level mode reports the rest), echoed back; false once done.
fn read(mut stream: &TcpStream, pending: &mut Vec<u8>, buf: &mut [u8]) -> bool {
    let n = match stream.read(buf) {
        Ok(0) => return false,
        Ok(n) => n,
        // Spurious: level mode will say when there is more.
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {
            return true
        }
        Err(_) => return false,
    };
    if !pending.is_empty() {
        pending.extend_from_slice(&buf[..n]);
        return true;
    }
    let mut done = 0;
    while done < n {
        match stream.write(&buf[done..n]) {
            Ok(k) => done += k,
            // Send buffer full: keep the rest for the writable event.
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    pending.extend_from_slice(&buf[done..n]);
    true
}

/// Writes pending bytes until done or `WouldBlock`.
fn flush(mut stream: &TcpStream, pending: &mut Vec<u8>) -> bool {
    let mut done = 0;
    while done < pending.len() {
        match stream.write(&pending[done..]) {
            Ok(k) => done += k,
            // Send buffer full: wait for the next writable event.
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    pending.drain(..done);
    true
}
