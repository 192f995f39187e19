//! The descriptor limit, `RLIMIT_NOFILE` (Unix): read it, set its soft
//! value, raise it. Used by `tests/emfile.rs` (which lowers it),
//! `tests/many_connections.rs` and `benches/core.rs` (which raise it), and
//! by the bench crate's `src/rlimit.rs`, which includes this file by
//! `#[path]` (its binaries raise it too).
//!
//! Self-contained (the standard library and `libc` only), for that
//! `#[path]`.

use std::io;

/// The soft and the hard limit.
///
/// # Errors
///
/// The OS error of `getrlimit`.
pub(crate) fn nofile() -> io::Result<(u64, u64)> {
    // SAFETY: getrlimit fills the zeroed struct it is given.
    let lim = unsafe {
        let mut lim: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return Err(io::Error::last_os_error());
        }
        lim
    };
    Ok((lim.rlim_cur as u64, lim.rlim_max as u64))
}

/// Sets the soft limit to `soft`, the hard one unchanged (children inherit
/// it).
///
/// # Errors
///
/// The OS error of `getrlimit` or `setrlimit` (`soft` above the hard
/// limit, say).
pub(crate) fn set_nofile(soft: u64) -> io::Result<()> {
    let (_, hard) = nofile()?;
    let lim = libc::rlimit {
        rlim_cur: soft as libc::rlim_t,
        rlim_max: hard as libc::rlim_t,
    };
    // SAFETY: setrlimit reads the struct it is given.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Raises the soft limit to the hard one; returns the soft limit now.
///
/// # Errors
///
/// The OS error of `getrlimit` or `setrlimit`.
pub(crate) fn raise_nofile() -> io::Result<u64> {
    let (soft, hard) = nofile()?;
    if soft < hard {
        set_nofile(hard)?;
    }
    Ok(hard.max(soft))
}
