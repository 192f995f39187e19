//! The responder examples run as a user would run them: `counter_responders`
//! has the output and flags of `counter` (ten lines `b"0"` through `b"9"`,
//! exit 0); every example answers `--help` and exits 2 on bad arguments;
//! `tcp_echo` serves a client and stops gracefully on SIGTERM.

use std::process::{Command, Output};

mod util;
use util::harness::{example_binary, output_within};

/// Runs `counter_responders ARGS` to its end.
#[track_caller]
fn run(args: &[&str]) -> Output {
    run_example("counter_responders", args)
}

/// Runs an example to its end.
#[track_caller]
fn run_example(name: &str, args: &[&str]) -> Output {
    output_within(Command::new(example_binary(name)).args(args))
}

#[test]
fn prints_the_ten_counts_and_exits_zero() {
    let out = run(&["--port", "0"]);
    assert!(
        out.status.success(),
        "{:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let want: String = (0..10).map(|i| format!("b\"{i}\"\n")).collect();
    assert_eq!(String::from_utf8_lossy(&out.stdout), want);
}

const EXAMPLES: [&str; 4] = ["counter_responders", "tcp_echo", "udp_echo", "chat"];

#[test]
fn bad_arguments_exit_2_with_the_usage() {
    for name in EXAMPLES {
        for args in [&["--port", "x"][..], &["--port", "65536"], &["--nope"]] {
            let out = run_example(name, args);
            assert_eq!(out.status.code(), Some(2), "{name} {args:?}");
            assert!(out.stdout.is_empty(), "{name} {args:?}");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                stderr.contains(&format!("usage: {name}")),
                "{name} {args:?}: {stderr}"
            );
        }
    }
}

#[test]
fn help_prints_the_usage_and_exits_zero() {
    for name in EXAMPLES {
        let out = run_example(name, &["--help"]);
        assert!(out.status.success(), "{name}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.starts_with(&format!("usage: {name}")),
            "{name}: {stdout}"
        );
    }
}

/// `tcp_echo --port 0` says where it listens, echoes, and on SIGTERM stops
/// gracefully: exit 0, after closing its connections.
#[cfg(unix)]
#[test]
fn tcp_echo_serves_and_stops_gracefully_on_sigterm() {
    echo_then_sigterm(1, 1);
}

/// `tcp_echo --threads 2`: two loops serve, and SIGTERM stops both
/// gracefully (exit 0, the counts of both summed).
#[cfg(unix)]
#[test]
fn tcp_echo_on_2_loops_stops_both_on_sigterm() {
    echo_then_sigterm(2, 8);
}

/// `tcp_echo --threads THREADS` echoes `hello, echo` on `clients`
/// connections, then stops on SIGTERM, saying what it did, and closes them.
#[cfg(unix)]
fn echo_then_sigterm(threads: usize, clients: usize) {
    use std::io::{Read, Write};
    use std::net::TcpStream;

    use util::example::Server;
    use util::LIMIT;

    let mut cmd = Server::command("tcp_echo", "warn");
    cmd.args(["--threads", &threads.to_string()]);
    let server = Server::spawn("tcp_echo", &mut cmd);
    let mut streams: Vec<TcpStream> = (0..clients)
        .map(|_| TcpStream::connect(server.addr()).unwrap())
        .collect();
    for stream in &mut streams {
        stream.set_read_timeout(Some(LIMIT)).unwrap();
        stream.write_all(b"hello, echo").unwrap();
        let mut back = [0; 11];
        stream.read_exact(&mut back).unwrap();
        assert_eq!(&back, b"hello, echo");
    }

    // SIGTERM, then the exit (0) and the last lines.
    let rest = server.stop().expect("a graceful stop on Unix");
    let said = format!(
        "tcp_echo: stopped after {clients} connections, {} bytes echoed",
        11 * clients
    );
    assert!(rest.contains(&said), "{rest:?}");
    // The connections were closed by the stop: the end of each stream.
    for stream in &mut streams {
        assert_eq!(stream.read(&mut [0; 8]).unwrap(), 0);
    }
}

/// `--threads` must be a count of at least 1, and only the examples that
/// run several loops take it.
#[test]
fn threads_must_be_at_least_one_and_only_where_taken() {
    for (name, args) in [
        ("tcp_echo", &["--threads", "0"][..]),
        ("chat", &["--threads", "x"]),
        ("udp_echo", &["--threads", "2"]),
    ] {
        let out = run_example(name, args);
        assert_eq!(out.status.code(), Some(2), "{name} {args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(&format!("usage: {name}")), "{stderr}");
    }
}
