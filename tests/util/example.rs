//! The server examples (`tcp_echo`, `udp_echo`, `chat`) run as a user runs
//! them: a child process on `--addr 127.0.0.1 --port 0`, its address read
//! from the `NAME: listening on ADDR` line it prints at start, its log
//! (stderr) read line by line with deadlines, stopped by SIGTERM (Unix) to
//! see its last lines, and killed when dropped, so that a failing test
//! leaves no process behind.
//!
//! Tests check the examples from outside: the bytes their clients get back,
//! the log (`RUST_LOG=NAME=debug` names every connection, close and pause),
//! and the final line of the stats (`tcp_echo: stopped after N connections,
//! M bytes echoed`).

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use super::harness::example_binary;
use super::LIMIT;

/// A child process that is killed (and reaped) when dropped.
#[derive(Debug)]
pub(crate) struct Killed(pub(crate) Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The lines of a child's output, read on a thread of their own (so the
/// child never blocks on a full pipe) and handed over with deadlines. Every
/// line received is kept, to look back at and to show when a wait fails.
#[derive(Debug)]
pub(crate) struct Log {
    lines: Receiver<String>,
    seen: Vec<String>,
    ended: bool,
}

impl Log {
    /// The lines `reader` gives, until its end.
    pub(crate) fn of(reader: impl Read + Send + 'static) -> Log {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(reader).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Log {
            lines: rx,
            seen: Vec::new(),
            ended: false,
        }
    }

    /// Every line received so far, oldest first.
    pub(crate) fn seen(&self) -> &[String] {
        &self.seen
    }

    /// The last lines received, for a failure message.
    pub(crate) fn tail(&self) -> String {
        let from = self.seen.len().saturating_sub(20);
        self.seen[from..].join("\n")
    }

    /// The next line, if one comes before `deadline`; `None` at the
    /// deadline or at the end of the output.
    pub(crate) fn next_before(&mut self, deadline: Instant) -> Option<&str> {
        if self.ended {
            return None;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match self.lines.recv_timeout(left) {
            Ok(line) => {
                self.seen.push(line);
                self.seen.last().map(String::as_str)
            }
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => {
                self.ended = true;
                None
            }
        }
    }

    /// The next line that `want` accepts (`what` names it in the failure);
    /// fails the test if none comes within [`LIMIT`].
    #[track_caller]
    pub(crate) fn next_matching(&mut self, what: &str, want: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + LIMIT;
        while let Some(line) = self.next_before(deadline) {
            if want(line) {
                return line.to_string();
            }
        }
        panic!(
            "no {what} within {LIMIT:?} (output ended: {}); last lines:\n{}",
            self.ended,
            self.tail()
        );
    }

    /// Waits for `n` more lines that `want` accepts; fails the test if they
    /// do not all come within [`LIMIT`]. Returns every line received
    /// meanwhile, the `n` included.
    #[track_caller]
    pub(crate) fn count(
        &mut self,
        n: usize,
        what: &str,
        want: impl Fn(&str) -> bool,
    ) -> Vec<String> {
        let deadline = Instant::now() + LIMIT;
        let from = self.seen.len();
        let mut got = 0;
        while got < n {
            match self.next_before(deadline) {
                Some(line) => got += usize::from(want(line)),
                None => panic!(
                    "{got} of {n} {what} within {LIMIT:?} (output ended: {}); last lines:\n{}",
                    self.ended,
                    self.tail()
                ),
            }
        }
        self.seen[from..].to_vec()
    }

    /// The lines received during `window`: an observation (what a slow
    /// machine prints late is counted in a later window), not a wait.
    pub(crate) fn during(&mut self, window: Duration) -> Vec<String> {
        let deadline = Instant::now() + window;
        let from = self.seen.len();
        while self.next_before(deadline).is_some() {}
        self.seen[from..].to_vec()
    }

    /// Every line up to the end of the output; fails the test if it has not
    /// ended within [`LIMIT`].
    #[track_caller]
    pub(crate) fn until_end(&mut self) -> Vec<String> {
        let deadline = Instant::now() + LIMIT;
        let from = self.seen.len();
        while self.next_before(deadline).is_some() {}
        assert!(
            self.ended,
            "the output did not end within {LIMIT:?}; last lines:\n{}",
            self.tail()
        );
        self.seen[from..].to_vec()
    }
}

/// A server example running as a child process.
#[derive(Debug)]
pub(crate) struct Server {
    name: String,
    addr: SocketAddr,
    log: Log,
    child: Killed,
}

/// Whether a log line of an example is at `level` (`"DEBUG"`, `"WARN"`...)
/// and ends with `text` (env_logger's format: `[TIME LEVEL TARGET] text`).
pub(crate) fn is(line: &str, level: &str, text: &str) -> bool {
    line.starts_with('[') && line.contains(&format!(" {level} ")) && line.ends_with(text)
}

impl Server {
    /// The command that runs example `name` on `--addr 127.0.0.1 --port 0`
    /// with `RUST_LOG=rust_log` (`"tcp_echo=debug"`, say), for a test to add
    /// to before [`Server::spawn`].
    #[track_caller]
    pub(crate) fn command(name: &str, rust_log: &str) -> Command {
        let mut cmd = Command::new(example_binary(name));
        cmd.args(["--addr", "127.0.0.1", "--port", "0"])
            .env("RUST_LOG", rust_log);
        cmd
    }

    /// Runs example `name` as [`Server::command`] makes it.
    #[track_caller]
    pub(crate) fn start(name: &str, rust_log: &str) -> Server {
        Server::spawn(name, &mut Server::command(name, rust_log))
    }

    /// Spawns `cmd`, which runs example `name`, with nothing on its standard
    /// input and output and its errors (the log) read; waits for the line
    /// that says where it listens.
    #[track_caller]
    pub(crate) fn spawn(name: &str, cmd: &mut Command) -> Server {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {name}: {e}"));
        let mut log = Log::of(child.stderr.take().expect("stderr"));
        let child = Killed(child);
        let prefix = format!("{name}: listening on ");
        let line = log.next_matching("listening line", |l| l.starts_with(&prefix));
        let addr = line[prefix.len()..]
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("{line:?}: {e}"));
        Server {
            name: name.to_string(),
            addr,
            log,
            child,
        }
    }

    /// Where it listens.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.0.id()
    }

    /// Its log, read so far and to come.
    pub(crate) fn log(&mut self) -> &mut Log {
        &mut self.log
    }

    /// Sends it `signal` (Unix).
    #[cfg(unix)]
    #[track_caller]
    pub(crate) fn signal(&self, signal: libc::c_int) {
        let pid = libc::pid_t::try_from(self.pid()).expect("pid");
        // SAFETY: kill(2) with our child's pid (not reaped before `self` is
        // dropped, so not reused) and a valid signal number.
        let rc = unsafe { libc::kill(pid, signal) };
        assert_eq!(rc, 0, "kill: {}", std::io::Error::last_os_error());
    }

    /// Stops it as a user does: SIGTERM, then its last lines up to its exit,
    /// which must be a success. Windows has no SIGTERM: there the process is
    /// killed and `None` returned (no last lines to check).
    #[track_caller]
    pub(crate) fn stop(mut self) -> Option<Vec<String>> {
        #[cfg(unix)]
        {
            self.signal(libc::SIGTERM);
            // Its standard error ends when it exits.
            let rest = self.log.until_end();
            let status = self.child.0.wait().expect("wait");
            assert!(
                status.success(),
                "{}: {status:?} after SIGTERM; last lines:\n{}",
                self.name,
                self.log.tail()
            );
            Some(rest)
        }
        #[cfg(not(unix))]
        {
            let _ = self.child.0.kill();
            let _ = self.child.0.wait();
            None
        }
    }

    /// Stops it ([`Server::stop`]) and checks that its last lines include
    /// `line` (on Unix; Windows has no graceful stop to check).
    #[track_caller]
    pub(crate) fn stop_saying(self, line: &str) {
        let name = self.name.clone();
        if let Some(rest) = self.stop() {
            assert!(
                rest.iter().any(|l| l == line),
                "{name} did not say {line:?} when it stopped; it said:\n{}",
                rest.join("\n")
            );
        }
    }
}
