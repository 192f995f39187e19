//! Descriptor limit: 1,000 connections on each side need more than the
//! usual soft limit of 1,024 descriptors.

/// Raises the soft `RLIMIT_NOFILE` to the hard limit (children inherit
/// it). Does nothing off Unix or when it fails: the load then reports the
/// connect error.
pub fn raise_nofile_limit() {
    #[cfg(unix)]
    // SAFETY: getrlimit/setrlimit with a valid, initialised struct.
    unsafe {
        let mut lim: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}
