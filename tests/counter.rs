//! The `counter` example, run as a user would run it: ten lines, `b"0"`
//! through `b"9"`, then exit 0; bad arguments exit 2.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// `target/<profile>/examples/counter`, next to this test's own binary
/// (`target/<profile>/deps/counter-…`). Cargo builds examples before it runs
/// integration tests.
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target dir");
    let path = profile_dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "{} is not built: `cargo test` builds it, `cargo test --all-targets` does not \
         (run `cargo build --examples` first, as ci/test.sh does)",
        path.display()
    );
    path
}

/// Runs the command to completion, or panics (after killing it) past `limit`.
fn run_with_deadline(mut cmd: Command, limit: Duration) -> Output {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(output) => output.expect("wait"),
        Err(_) => panic!("process {pid} still running after {limit:?}"),
    }
}

#[test]
fn counter_prints_ten_datagrams_and_exits_zero() {
    let mut cmd = Command::new(example("counter"));
    cmd.args(["--port", "0"]);
    let out = run_with_deadline(cmd, Duration::from_secs(60));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "status {:?}, stderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let want: Vec<String> = (0..10).map(|i| format!("b\"{i}\"")).collect();
    let got: Vec<&str> = stdout.lines().collect();
    assert_eq!(got, want);
}

#[test]
fn counter_rejects_bad_arguments_with_exit_2() {
    for args in [
        &["--port", "notaport"][..],
        &["--bogus"],
        &["--port", "70000"],
    ] {
        let mut cmd = Command::new(example("counter"));
        cmd.args(args);
        let out = run_with_deadline(cmd, Duration::from_secs(60));
        assert_eq!(out.status.code(), Some(2), "args {args:?}");
        assert!(out.stdout.is_empty(), "args {args:?}: printed to stdout");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("usage"), "args {args:?}: stderr {stderr}");
    }
}
