//! The `http` example served to real clients: `curl` (every status it can
//! make a server answer, a chunked upload echoed, `HEAD`, keep-alive reuse
//! across two URLs) and a short `wrk` run whose Lua script counts the
//! responses that are not 200. Real peers catch what our own test clients
//! would share with our bugs. (505 needs a request line curl never sends:
//! `tests/http.rs` checks it with raw bytes.)
//!
//! `ci/test.sh` installs curl and wrk and sets
//! `SOCKMUX_REQUIRE_REAL_CLIENTS=1`, which makes a missing one a failure; a
//! plain `cargo test` without them prints that it skipped these. Unix
//! only, as `tests/real_clients.rs`.
#![cfg(unix)]

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;

mod util;
use util::clients::have;
use util::example::Server;
use util::{pattern, LIMIT};

/// Runs `cmd` to its end with `stdin` on its standard input; its output.
/// Fails the test unless it succeeds within [`LIMIT`] (a bound for a hang;
/// it is killed then).
#[track_caller]
fn run(cmd: &mut Command, stdin: &[u8]) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let pid = child.id();
    let mut input = child.stdin.take().unwrap();
    let stdin = stdin.to_vec();
    std::thread::spawn(move || {
        let _ = input.write_all(&stdin);
    });
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let output = match rx.recv_timeout(LIMIT) {
        Ok(output) => output.expect("wait"),
        Err(_) => {
            // SAFETY: kill(2) of our child, not reaped yet (its waiting
            // thread is still blocked in wait), so its pid is not reused.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            panic!("{cmd:?} still running after {LIMIT:?}");
        }
    };
    assert!(
        output.status.success(),
        "{cmd:?}: {:?}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// `curl -s` with `args`.
fn curl(args: &[&str]) -> Command {
    let mut cmd = Command::new("curl");
    cmd.args(["-s", "--max-time", "30"]).args(args);
    cmd
}

/// The status code curl gets for `args` (`-w '%{http_code}'`).
#[track_caller]
fn status(args: &[&str]) -> String {
    let mut cmd = curl(&["-o", "/dev/null", "-w", "%{http_code}"]);
    let out = run(cmd.args(args), b"");
    String::from_utf8(out.stdout).unwrap()
}

/// A file of `len` bytes in the temporary directory, removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, bytes: &[u8]) -> TempFile {
        let path = std::env::temp_dir().join(format!("sockmux-{}-{name}", std::process::id()));
        std::fs::File::create(&path)
            .and_then(|mut f| f.write_all(bytes))
            .unwrap();
        TempFile(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn curl_gets_every_status() {
    if !have("curl", "--version") {
        return;
    }
    let server = Server::start("http", "warn");
    let url = |path: &str| format!("http://{}{path}", server.addr());
    let big_header = format!("X-Big: {}", "a".repeat(9000));
    let too_long = TempFile::new("too-long", &vec![b'x'; 1_100_000]);
    let too_long = format!("@{}", too_long.path());
    // (curl's arguments before the URL, the path, the status)
    let cases: [(Vec<&str>, &str, &str); 10] = [
        (vec![], "/", "200"),
        (vec![], "/json", "200"),
        (vec!["--data-binary", "hi"], "/echo", "200"),
        (vec![], "/nope", "404"),
        (vec!["-X", "POST"], "/", "405"),
        (vec![], "/echo", "405"),
        (vec!["-X", "BREW"], "/", "501"),
        (vec!["-H", "Bad Header: x"], "/", "400"),
        (vec!["-H", &big_header], "/", "431"),
        // Answered from the head: curl waits for a 100 that never comes,
        // gets the 413 and sends none of the body.
        (
            vec!["-H", "Expect: 100-continue", "--data-binary", &too_long],
            "/echo",
            "413",
        ),
    ];
    for (mut args, path, want) in cases {
        let url = url(path);
        args.push(&url);
        assert_eq!(status(&args), want, "curl {args:?}");
    }
    let out = run(&mut curl(&["-i", &url("/json")]), b"");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(
        text.contains("\r\nContent-Type: application/json\r\n"),
        "{text}"
    );
    assert!(text.contains("\r\nServer: sockmux\r\n"), "{text}");
    assert!(text.contains("\r\nDate: "), "{text}");
    assert!(text.ends_with(r#"{"message":"Hello, World!"}"#), "{text}");
}

#[test]
fn curl_head_has_headers_and_no_body() {
    if !have("curl", "--version") {
        return;
    }
    let server = Server::start("http", "warn");
    let out = run(
        &mut curl(&["-I", &format!("http://{}/", server.addr())]),
        b"",
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.contains("\r\nContent-Length: 13\r\n"), "{text}");
    assert!(text.ends_with("\r\n\r\n"), "no body: {text}");
}

#[test]
fn curl_chunked_upload_is_echoed() {
    if !have("curl", "--version") {
        return;
    }
    let server = Server::start("http", "warn");
    let body = pattern(300_000, 19);
    let url = format!("http://{}/echo", server.addr());
    let mut cmd = curl(&[
        "-H",
        "Transfer-Encoding: chunked",
        "--data-binary",
        "@-",
        &url,
    ]);
    let out = run(&mut cmd, &body);
    assert!(out.stdout == body, "{} bytes back", out.stdout.len());
}

#[test]
fn curl_reuses_the_connection_for_two_urls() {
    if !have("curl", "--version") {
        return;
    }
    let server = Server::start("http", "warn");
    let (a, b) = (
        format!("http://{}/", server.addr()),
        format!("http://{}/json", server.addr()),
    );
    let mut cmd = curl(&[
        "-o",
        "/dev/null",
        "-o",
        "/dev/null",
        "-w",
        "%{num_connects}\n",
        &a,
        &b,
    ]);
    let out = run(&mut cmd, b"");
    let text = String::from_utf8(out.stdout).unwrap();
    let connects: Vec<&str> = text.lines().collect();
    assert_eq!(connects, ["1", "0"], "one connection for both");
}

/// The Lua script: counts the responses that are not 200 in each thread,
/// and prints their sum when done.
const WRK_SCRIPT: &str = r#"
local threads = {}
function setup(thread)
    table.insert(threads, thread)
end
function init(args)
    non200 = 0
end
function response(status, headers, body)
    if status ~= 200 then
        non200 = non200 + 1
    end
end
function done(summary, latency, requests)
    local total = 0
    for _, thread in ipairs(threads) do
        total = total + thread:get("non200")
    end
    io.write(string.format("non-200: %d\nrequests: %d\n", total, summary.requests))
end
"#;

#[test]
fn wrk_gets_only_200s() {
    if !have("wrk", "--version") {
        return;
    }
    let server = Server::start("http", "warn");
    let script = TempFile::new("count.lua", WRK_SCRIPT.as_bytes());
    let url = format!("http://{}/", server.addr());
    let mut cmd = Command::new("wrk");
    cmd.args(["-t1", "-c10", "-d1s", "-s", script.path(), &url]);
    let out = run(&mut cmd, b"");
    let text = String::from_utf8(out.stdout).unwrap();
    eprintln!("{text}");
    let field = |name: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap_or_else(|| panic!("no {name:?} in:\n{text}"))
            .trim()
            .parse()
            .unwrap()
    };
    assert_eq!(field("non-200:"), 0, "{text}");
    assert!(field("requests:") > 0, "{text}");
    assert!(!text.contains("Socket errors"), "{text}");
}
