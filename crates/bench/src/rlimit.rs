//! Descriptor limit: 1,000 connections on each side need more than the
//! usual soft limit of 1,024 descriptors.

// One implementation for the root package's tests and this crate: the
// file lives with the tests' support code and is included here.
#[cfg(unix)]
#[path = "../../../tests/util/rlimit.rs"]
#[allow(dead_code)] // reading and lowering the limit serve the tests only
mod nofile;

/// Raises the soft `RLIMIT_NOFILE` to the hard limit (children inherit
/// it). Does nothing off Unix or when it fails: the load then reports the
/// connect error.
pub fn raise_nofile_limit() {
    #[cfg(unix)]
    let _ = nofile::raise_nofile();
}
