//! The real clients some tests drive the examples with (socat, redis-cli,
//! redis-benchmark, curl, wrk): whether one is installed.
//!
//! `ci/test.sh` installs them and sets `SOCKMUX_REQUIRE_REAL_CLIENTS=1`,
//! which makes a missing one a failure; a plain `cargo test` without them
//! prints what it skipped.

use std::process::{Command, Stdio};

/// Whether `cmd` can be run (`cmd version_arg` starts and exits, whatever
/// its status: `wrk --version` exits 1); panics if it cannot and CI
/// requires it.
#[track_caller]
pub(crate) fn have(cmd: &str, version_arg: &str) -> bool {
    let found = Command::new(cmd)
        .arg(version_arg)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !found {
        assert!(
            std::env::var_os("SOCKMUX_REQUIRE_REAL_CLIENTS").is_none(),
            "{cmd} is required (SOCKMUX_REQUIRE_REAL_CLIENTS is set) but cannot be run"
        );
        eprintln!("skipped: {cmd} is not installed (ci/test.sh installs it)");
    }
    found
}
