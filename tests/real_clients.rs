//! The examples served to real clients: `socat` against `tcp_echo` (1 MiB
//! through, then the half-close), against `udp_echo`, and two `socat`s
//! chatting through `chat`. Real peers catch what our own test clients
//! would share with our bugs.
//!
//! `ci/test.sh` installs socat and sets `SOCKMUX_REQUIRE_REAL_CLIENTS=1`,
//! which makes a missing socat a failure; a plain `cargo test` without
//! socat prints that it skipped these. Unix only: the Windows leg runs
//! under wine, where there is no socat to run.
#![cfg(unix)]

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

mod util;
use util::harness::example_binary;
use util::{pattern, LIMIT};

/// Whether socat can be run; panics if it cannot and CI requires it.
fn have_socat() -> bool {
    let found = Command::new("socat")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(
            std::env::var_os("SOCKMUX_REQUIRE_REAL_CLIENTS").is_none(),
            "socat is required (SOCKMUX_REQUIRE_REAL_CLIENTS is set) but cannot be run"
        );
        eprintln!("skipped: socat is not installed (ci/test.sh installs it)");
    }
    found
}

/// A child process that is killed when dropped (a failing test leaves no
/// server behind).
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts an example on port 0; returns it and the address it printed.
fn start_example(name: &str) -> (Killed, String) {
    let mut child = Command::new(example_binary(name))
        .args(["--port", "0"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let child = Killed(child);
    let lines = lines_of(stderr);
    let prefix = format!("{name}: listening on ");
    let line = next_line(&lines, |l| l.starts_with(&prefix));
    let addr = line[prefix.len()..].trim().to_string();
    (child, addr)
}

/// The lines a reader gives, through a channel (reads with a deadline).
fn lines_of(reader: impl Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(reader).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// The first line that `want` accepts; panics after `LIMIT`.
#[track_caller]
fn next_line(lines: &Receiver<String>, want: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + LIMIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) if want(&line) => return line,
            Ok(_) => {}
            Err(e) => panic!("no expected line within {LIMIT:?}: {e}"),
        }
    }
}

/// `socat - PROTO:ADDR` with piped standard input and output.
fn socat(proto: &str, addr: &str) -> (Killed, ChildStdout) {
    let mut child = Command::new("socat")
        .args(["-t", "5", "-", &format!("{proto}:{addr}")])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    (Killed(child), stdout)
}

/// Waits for a child to exit by itself; panics after `LIMIT`.
fn wait_for_exit(mut child: Killed) {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.0.wait());
    });
    let status = rx
        .recv_timeout(LIMIT)
        .expect("socat ended within the limit")
        .unwrap();
    assert!(status.success(), "socat: {status:?}");
}

#[test]
fn socat_gets_one_mib_back_from_tcp_echo_then_the_end() {
    if !have_socat() {
        return;
    }
    let (_server, addr) = start_example("tcp_echo");
    let (mut client, mut stdout) = socat("TCP", &addr);
    let data = pattern(1 << 20, 7);
    let mut stdin = client.0.stdin.take().unwrap();
    let sent = data.clone();
    // Writing and reading at once: the echo comes back while socat sends.
    let writer = std::thread::spawn(move || {
        stdin.write_all(&sent).unwrap();
        // Dropping stdin: socat half-closes, tcp_echo flushes and closes.
    });
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut back = Vec::new();
        let result = stdout.read_to_end(&mut back).map(|_| back);
        let _ = tx.send(result);
    });
    let back = rx
        .recv_timeout(LIMIT)
        .expect("the echo and its end within the limit")
        .unwrap();
    writer.join().unwrap();
    assert_eq!(back.len(), data.len());
    assert!(back == data, "the echo differs from what was sent");
    wait_for_exit(client);
}

#[test]
fn socat_datagrams_come_back_from_udp_echo() {
    if !have_socat() {
        return;
    }
    let (_server, addr) = start_example("udp_echo");
    let (mut client, stdout) = socat("UDP", &addr);
    let lines = lines_of(stdout);
    let mut stdin = client.0.stdin.take().unwrap();
    for i in 0..5 {
        let line = format!("datagram {i}");
        // Each write is one datagram; UDP may lose one even on loopback,
        // so a lost echo is sent again.
        let deadline = Instant::now() + LIMIT;
        loop {
            writeln!(stdin, "{line}").unwrap();
            stdin.flush().unwrap();
            match lines.recv_timeout(Duration::from_secs(1)) {
                Ok(got) if got == line => break,
                Ok(got) => panic!("expected {line:?}, got {got:?}"),
                Err(_) => assert!(Instant::now() < deadline, "no echo of {line:?}"),
            }
        }
    }
}

#[test]
fn two_socats_chat_through_the_chat_example() {
    if !have_socat() {
        return;
    }
    let (_server, addr) = start_example("chat");
    let (mut alice, alice_out) = socat("TCP", &addr);
    let alice_lines = lines_of(alice_out);
    next_line(&alice_lines, |l| l.starts_with("* you are"));
    let (mut bob, bob_out) = socat("TCP", &addr);
    let bob_lines = lines_of(bob_out);
    next_line(&bob_lines, |l| l.starts_with("* you are"));

    let mut alice_in = alice.0.stdin.take().unwrap();
    writeln!(alice_in, "hello from alice").unwrap();
    alice_in.flush().unwrap();
    next_line(&bob_lines, |l| l.contains("hello from alice"));

    let mut bob_in = bob.0.stdin.take().unwrap();
    writeln!(bob_in, "hello from bob").unwrap();
    bob_in.flush().unwrap();
    next_line(&alice_lines, |l| l.contains("hello from bob"));
}
