//! The TCP echo servers under test, one file each, all serving a listener
//! bound by [`bind_listener`] until the process is killed.

use std::io;
use std::net::{SocketAddr, TcpListener};

#[cfg(unix)]
mod calloop;
mod mio;
mod table;
#[cfg(unix)]
mod tokio;

#[cfg(unix)]
pub use self::calloop::serve_calloop;
pub use self::mio::{serve_mio, serve_mio_reading, AfterShortRead};
pub use self::table::serve_table;
#[cfg(unix)]
pub use self::tokio::{serve_tokio, serve_tokio_multi};

/// The listen backlog of the reference servers: the same as sockmux's
/// `DEFAULT_BACKLOG`, so 1,000 connects in a burst queue alike everywhere.
pub const BACKLOG: i32 = 4096;

/// Size of the one read buffer a server shares between its connections.
/// Larger than any request, so a read that returns less than this has
/// drained the socket.
pub const READ_BUFFER: usize = 64 * 1024;

/// Binds a TCP listener with [`BACKLOG`] and `SO_REUSEADDR` (non-blocking
/// is left to each server).
///
/// # Errors
///
/// The OS error from creating, binding or listening.
pub fn bind_listener(addr: SocketAddr) -> io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    #[cfg(unix)]
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

/// Output waiting for a slow reader beyond this stops reading that
/// connection until it drains (an echo server must not buffer without
/// bound when a peer sends and never reads).
pub(crate) const PENDING_LIMIT: usize = 1024 * 1024;
