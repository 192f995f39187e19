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

use std::io::{Read, Write};
use std::process::{ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

mod util;
use util::clients::have;
use util::example::{Killed, Log, Server};
use util::{pattern, LIMIT};

/// Starts an example on port 0; returns it and the address it printed.
fn start_example(name: &str) -> (Server, String) {
    let server = Server::start(name, "warn");
    let addr = server.addr().to_string();
    (server, addr)
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
    if !have("socat", "-V") {
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
    if !have("socat", "-V") {
        return;
    }
    let (_server, addr) = start_example("udp_echo");
    let (mut client, stdout) = socat("UDP", &addr);
    let mut lines = Log::of(stdout);
    let mut stdin = client.0.stdin.take().unwrap();
    for i in 0..5 {
        let line = format!("datagram {i}");
        // Each write is one datagram; UDP may lose one even on loopback,
        // so a lost echo is sent again.
        let deadline = Instant::now() + LIMIT;
        loop {
            writeln!(stdin, "{line}").unwrap();
            stdin.flush().unwrap();
            match lines.next_before(Instant::now() + Duration::from_secs(1)) {
                Some(got) if got == line => break,
                Some(got) => panic!("expected {line:?}, got {got:?}"),
                None => assert!(Instant::now() < deadline, "no echo of {line:?}"),
            }
        }
    }
}

#[test]
fn two_socats_chat_through_the_chat_example() {
    if !have("socat", "-V") {
        return;
    }
    let (_server, addr) = start_example("chat");
    let (mut alice, alice_out) = socat("TCP", &addr);
    let mut alice_lines = Log::of(alice_out);
    alice_lines.next_matching("welcome", |l| l.starts_with("* you are"));
    let (mut bob, bob_out) = socat("TCP", &addr);
    let mut bob_lines = Log::of(bob_out);
    bob_lines.next_matching("welcome", |l| l.starts_with("* you are"));

    let mut alice_in = alice.0.stdin.take().unwrap();
    writeln!(alice_in, "hello from alice").unwrap();
    alice_in.flush().unwrap();
    bob_lines.next_matching("alice's line", |l| l.contains("hello from alice"));

    let mut bob_in = bob.0.stdin.take().unwrap();
    writeln!(bob_in, "hello from bob").unwrap();
    bob_in.flush().unwrap();
    alice_lines.next_matching("bob's line", |l| l.contains("hello from bob"));
}
