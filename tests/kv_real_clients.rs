//! The `kv` example served to the real Redis tools: `redis-cli` runs every
//! command and prints each reply as it prints a Redis server's (checked
//! line for line), and `redis-benchmark` runs its PING, SET, GET, INCR and
//! MSET tests with no error, against one loop and against two
//! (`--threads 2`). Real clients catch what our own RESP test
//! client would share with our bugs.
//!
//! `ci/test.sh` installs them (Debian's redis-tools) and sets
//! `SOCKMUX_REQUIRE_REAL_CLIENTS=1`, which makes a missing tool a failure;
//! a plain `cargo test` without them prints that it skipped these. Unix
//! only, as tests/real_clients.rs.
#![cfg(unix)]

use std::process::Command;

mod util;
use util::clients::have;
use util::example::Server;
use util::harness::output_within;

/// Each command as typed at `redis-cli`, and what it prints for the reply
/// (`--no-raw`: as on a terminal), as redis-server 7.0 prints them;
/// `(integer) ~N` stands for a TTL from 1 to N.
const SESSION: &[(&str, &str)] = &[
    ("PING", "PONG"),
    ("PING hello", "\"hello\""),
    ("ECHO \"hi there\"", "\"hi there\""),
    ("SET k v", "OK"),
    ("GET k", "\"v\""),
    ("GET nothing", "(nil)"),
    (
        "GET",
        "(error) ERR wrong number of arguments for 'get' command",
    ),
    (
        "foo a b",
        "(error) ERR unknown command 'foo', with args beginning with: 'a' 'b' ",
    ),
    ("SET k v2 NX", "(nil)"),
    ("SET k v3 XX GET", "\"v\""),
    (
        "SET k v EX 0",
        "(error) ERR invalid expire time in 'set' command",
    ),
    ("SET t v EX 100", "OK"),
    ("TTL t", "(integer) ~100"),
    ("PTTL nothing", "(integer) -2"),
    ("PERSIST t", "(integer) 1"),
    ("TTL t", "(integer) -1"),
    ("EXPIRE t 50", "(integer) 1"),
    ("TTL t", "(integer) ~50"),
    ("INCR n", "(integer) 1"),
    ("INCRBY n 41", "(integer) 42"),
    ("DECR n", "(integer) 41"),
    (
        "INCR k",
        "(error) ERR value is not an integer or out of range",
    ),
    ("MSET a 1 b 2", "OK"),
    ("MGET a b zz", "1) \"1\"\n2) \"2\"\n3) (nil)"),
    ("EXISTS a b zz", "(integer) 2"),
    ("DEL a b zz", "(integer) 2"),
    ("DBSIZE", "(integer) 3"),
    ("COMMAND DOCS", "(empty array)"),
    ("CLIENT SETNAME me", "OK"),
    ("FLUSHDB", "OK"),
    ("DBSIZE", "(integer) 0"),
];

#[test]
fn redis_cli_runs_every_command() {
    if !have("redis-cli", "--version") {
        return;
    }
    let server = Server::start("kv", "warn");
    let port = server.addr().port().to_string();
    let script: String = SESSION.iter().map(|(c, _)| format!("{c}\n")).collect();
    let script_path = std::env::temp_dir().join(format!("kv-session-{}.txt", std::process::id()));
    std::fs::write(&script_path, &script).unwrap();
    // The commands on its standard input, as a user pipes them in
    // (`output_within` gives a child no input of its own).
    let out = output_within(Command::new("sh").arg("-c").arg(format!(
        "exec redis-cli --no-raw -h 127.0.0.1 -p {port} < '{}'",
        script_path.display()
    )));
    let _ = std::fs::remove_file(&script_path);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let want: String = SESSION.iter().map(|(_, r)| format!("{r}\n")).collect();
    let (got, want): (Vec<&str>, Vec<&str>) = (stdout.lines().collect(), want.lines().collect());
    let matches = got.len() == want.len()
        && got
            .iter()
            .zip(&want)
            .all(|(got, want)| match want.strip_prefix("(integer) ~") {
                // A TTL counts down while the test runs: 1 up to the one set.
                Some(max) => got
                    .strip_prefix("(integer) ")
                    .and_then(|n| n.parse::<i64>().ok())
                    .is_some_and(|n| (1..=max.parse().unwrap()).contains(&n)),
                None => got == want,
            });
    assert!(
        matches,
        "redis-cli printed:\n{stdout}\nwanted:\n{}\n({:?}, stderr: {})",
        want.join("\n"),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    // redis-cli may send commands of its own: count only the keys.
    let last = server.stop().unwrap();
    assert!(
        last.iter()
            .any(|l| l.starts_with("kv: stopped after ") && l.ends_with(" commands, with 0 keys")),
        "{last:?}"
    );
}

#[test]
fn redis_benchmark_runs_without_errors() {
    benchmark(&mut Server::command("kv", "warn"));
}

/// `kv --threads 2`: commands forwarded between the loops' shards
/// (tests/kv_threads.rs has the rest).
#[test]
fn redis_benchmark_runs_without_errors_on_two_loops() {
    benchmark(Server::command("kv", "warn").args(["--threads", "2"]));
}

/// Runs redis-benchmark's PING, SET, GET, INCR and MSET tests against the
/// server `cmd` starts and checks that each gives a figure and none an
/// error.
fn benchmark(cmd: &mut Command) {
    if !have("redis-benchmark", "--version") {
        return;
    }
    let server = Server::spawn("kv", cmd);
    let port = server.addr().port().to_string();
    let out = output_within(Command::new("redis-benchmark").args([
        "-h",
        "127.0.0.1",
        "-p",
        &port,
        "-t",
        "ping,set,get,incr,mset",
        "-n",
        "20000",
        "-q",
    ]));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}: {stdout}{stderr}", out.status);
    // Progress lines end in `\r`: keep the final ones.
    let lines: Vec<&str> = stdout
        .split(['\r', '\n'])
        .filter(|l| l.contains("requests per second"))
        .collect();
    for test in [
        "PING_INLINE",
        "PING_MBULK",
        "SET",
        "GET",
        "INCR",
        "MSET (10 keys)",
    ] {
        assert!(
            lines.iter().any(|l| l.starts_with(&format!("{test}: "))),
            "no figure for {test}:\n{stdout}"
        );
    }
    assert!(
        !stdout.contains("ERR") && !stderr.contains("ERR") && !stderr.contains("WARNING"),
        "errors: {stdout}{stderr}"
    );
    println!("{}", lines.join("\n"));
    server.stop();
}
