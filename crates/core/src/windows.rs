//! What the table does only on Windows, where mio's IOCP/AFD backend and
//! Winsock report some things differently from epoll and BSD sockets (see
//! docs/windows.md).

use std::{error, fmt, io};

/// `WSAENETRESET`: on a UDP socket, an earlier datagram's TTL expired.
const WSAENETRESET: i32 = 10052;
/// `WSAECONNRESET`: on a UDP socket, an earlier datagram drew an ICMP port
/// unreachable, even on an unconnected socket.
const WSAECONNRESET: i32 = 10054;
/// `WSAECONNREFUSED`: what wine (BSD sockets underneath) says instead.
const WSAECONNREFUSED: i32 = 10061;

/// How many ICMP reports one receive or send absorbs before it hands the
/// last one back as its own error (a bound, never reached in practice: each
/// report is consumed by the call that returns it).
pub(crate) const ICMP_REPORTS_PER_CALL: usize = 64;

/// Whether an error from a receive or send on a UDP socket is the OS passing
/// on an ICMP report about an earlier datagram, not a failure of this call
/// nor of the socket.
pub(crate) fn is_icmp_report(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(WSAECONNRESET | WSAECONNREFUSED | WSAENETRESET)
    )
}

/// The error kept for [`Sockets::take_error`](crate::Sockets::take_error):
/// port unreachable gets the kind `ConnectionRefused`, as on Linux, with the
/// OS error inside (`get_ref`).
pub(crate) fn icmp_error(e: io::Error) -> io::Error {
    if e.raw_os_error() == Some(WSAECONNRESET) {
        io::Error::new(io::ErrorKind::ConnectionRefused, PortUnreachable(e))
    } else {
        e
    }
}

/// An ICMP port unreachable, as Winsock reports it.
#[derive(Debug)]
struct PortUnreachable(io::Error);

impl fmt::Display for PortUnreachable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "port unreachable: a datagram sent earlier was refused ({})",
            self.0
        )
    }
}

impl error::Error for PortUnreachable {
    fn source(&self) -> Option<&(dyn error::Error + 'static)> {
        Some(&self.0)
    }
}

/// The error for a stream that mio reported aborted (read- and write-closed
/// at once, no error flag: AFD's `AFD_POLL_ABORT`, a reset): the pending
/// `SO_ERROR` if Winsock kept one, else `ConnectionReset`.
pub(crate) fn reset_error(pending: io::Result<Option<io::Error>>) -> io::Error {
    match pending {
        Ok(Some(e)) | Err(e) => e,
        Ok(None) => io::Error::new(
            io::ErrorKind::ConnectionReset,
            "the connection was reset by the peer",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn icmp_reports_are_recognised() {
        for code in [WSAECONNRESET, WSAECONNREFUSED, WSAENETRESET] {
            assert!(is_icmp_report(&io::Error::from_raw_os_error(code)));
        }
        let would_block = io::Error::from_raw_os_error(10035);
        assert!(!is_icmp_report(&would_block));
        assert!(!is_icmp_report(&io::Error::from(
            io::ErrorKind::ConnectionReset
        )));
    }

    #[test]
    fn port_unreachable_is_kept_as_connection_refused() {
        let e = icmp_error(io::Error::from_raw_os_error(WSAECONNRESET));
        assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused);
        assert!(e.to_string().starts_with("port unreachable"), "{e}");
        let os = e
            .get_ref()
            .and_then(|inner| inner.source())
            .expect("the OS error");
        let os = os.downcast_ref::<io::Error>().expect("an io::Error");
        assert_eq!(os.raw_os_error(), Some(WSAECONNRESET));
        let refused = icmp_error(io::Error::from_raw_os_error(WSAECONNREFUSED));
        assert_eq!(refused.raw_os_error(), Some(WSAECONNREFUSED));
    }

    #[test]
    fn an_abort_without_a_pending_error_is_a_reset() {
        assert_eq!(reset_error(Ok(None)).kind(), io::ErrorKind::ConnectionReset);
        let pending = io::Error::from_raw_os_error(WSAECONNRESET);
        assert_eq!(
            reset_error(Ok(Some(pending))).raw_os_error(),
            Some(WSAECONNRESET)
        );
    }
}
