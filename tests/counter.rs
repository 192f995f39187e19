//! The `counter` example, run as a user would run it: ten lines, `b"0"`
//! through `b"9"`, then exit 0; bad arguments exit 2.

use std::process::Command;

mod util;
use util::harness::{example_binary, output_within};

#[test]
fn counter_prints_ten_datagrams_and_exits_zero() {
    let out = output_within(Command::new(example_binary("counter")).args(["--port", "0"]));
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
        let out = output_within(Command::new(example_binary("counter")).args(args));
        assert_eq!(out.status.code(), Some(2), "args {args:?}");
        assert!(out.stdout.is_empty(), "args {args:?}: printed to stdout");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("usage"), "args {args:?}: stderr {stderr}");
    }
}
