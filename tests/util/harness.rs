//! Running tests and processes: the `main` of the `harness = false` test
//! binaries, the examples' binaries, and a child process with a deadline.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;

use super::LIMIT;

/// The list [`run_tests`] takes, named after the tests' functions in
/// `module`: `tests![unix: first, second]`.
// Only the `harness = false` binaries list tests: the others leave the
// macro and its `use` unused.
#[allow(unused_macros)]
macro_rules! tests {
    ($module:ident: $($test:ident),+ $(,)?) => {
        &[$((stringify!($test), $module::$test as fn())),+]
    };
}
#[allow(unused_imports)]
pub(crate) use tests;

/// The `main` of a `harness = false` test binary: runs `tests` one after
/// the other on the main thread (such a binary exists for process-wide
/// state: signal dispositions, the descriptor limit, signals that must land
/// on the main thread), names each as it starts and ends, and prints a
/// summary. A failing test panics, which fails the binary.
///
/// As libtest does, it takes names on the command line (`cargo test NAME`
/// passes them to every test binary) and runs only the tests whose names
/// contain one; `--skip NAME` leaves those out; `--list` lists the tests.
/// Its other options are accepted and ignored.
pub(crate) fn run_tests(tests: &[(&str, fn())]) {
    let binary = env!("CARGO_CRATE_NAME");
    let (mut filters, mut skips, mut list) = (Vec::new(), Vec::new(), false);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--list" => list = true,
            "--skip" => skips.extend(args.next()),
            // libtest's options that take a value as the next argument.
            "--test-threads" | "--color" | "--format" | "--logfile" | "--shuffle-seed" | "-Z" => {
                args.next();
            }
            other if other.starts_with('-') => {}
            filter => filters.push(filter.to_string()),
        }
    }
    let chosen: Vec<&(&str, fn())> = tests
        .iter()
        .filter(|(name, _)| filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str())))
        .filter(|(name, _)| !skips.iter().any(|s| name.contains(s.as_str())))
        .collect();
    if list {
        for (name, _) in &chosen {
            println!("{name}: test");
        }
        return;
    }
    println!("\nrunning {} tests ({binary})", chosen.len());
    for (name, test) in &chosen {
        println!("test {name} ...");
        test();
        println!("test {name} ... ok");
    }
    println!(
        "\n{binary}: {} passed; {} filtered out\n",
        chosen.len(),
        tests.len() - chosen.len()
    );
}

/// The `main` of a `harness = false` test binary on a platform where its
/// tests cannot run: says so and why.
pub(crate) fn skip(why: &str) {
    println!("{}: skipped, {why}", env!("CARGO_CRATE_NAME"));
}

/// An example's binary: `target/<profile>/examples/NAME`, beside the
/// `deps` folder that holds the running test.
#[track_caller]
pub(crate) fn example_binary(name: &str) -> PathBuf {
    let test_binary = std::env::current_exe().expect("current_exe");
    let deps = test_binary.parent().expect("deps");
    let path = deps
        .parent()
        .expect("target/<profile>")
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.is_file(),
        "{} is not built: `cargo test` builds it, `cargo test --all-targets` does not \
         (run `cargo build --examples` first, as ci/test.sh does)",
        path.display()
    );
    path
}

/// Runs `cmd` to its end, with nothing on its standard input and its
/// output and errors captured; fails the test if it still runs after
/// [`LIMIT`] (a bound for a hang).
#[track_caller]
pub(crate) fn output_within(cmd: &mut Command) -> Output {
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
    match rx.recv_timeout(LIMIT) {
        Ok(output) => output.expect("wait"),
        Err(_) => panic!("process {pid} still running after {LIMIT:?}"),
    }
}
