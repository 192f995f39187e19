//! Running servers and loads as separate processes, each pinned to its own
//! core with `taskset`.

use std::io::{self, BufRead, BufReader, ErrorKind, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::{FairnessReport, LoadReport};

/// One server to measure: a label for the table and the command that
/// starts it (a `--port` argument is appended).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Contender {
    /// The row label.
    pub label: String,
    /// The program and its arguments.
    pub command: Vec<String>,
}

/// How a server process is wrapped when started.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Launch {
    /// The core to pin it to (`taskset -c`), if any.
    pub core: Option<usize>,
    /// A tool to run it under, such as `valgrind --tool=callgrind`.
    pub wrapper: Vec<String>,
    /// How long to wait for it to listen.
    pub startup: Duration,
}

/// A started server: its process, its address, and the last lines of its
/// standard error (for messages when something fails).
#[derive(Debug)]
pub struct Running {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl Running {
    /// The server's process id.
    #[must_use]
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The last lines the server wrote to standard error.
    #[must_use]
    pub fn stderr_tail(&self) -> String {
        self.stderr.lock().map(|l| l.join("\n")).unwrap_or_default()
    }

    /// Stops the server: SIGTERM (so tools such as callgrind write their
    /// output), then SIGKILL after `grace`.
    ///
    /// # Errors
    ///
    /// The OS error from waiting for it.
    pub fn stop(mut self, grace: Duration) -> io::Result<()> {
        terminate(&self.child);
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if self.child.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        self.child.wait().map(drop)
    }
}

fn terminate(child: &Child) {
    #[cfg(unix)]
    // SAFETY: kill(2) on our own child's pid.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    #[cfg(not(unix))]
    let _ = child;
}

fn pinned(core: Option<usize>, wrapper: &[String], command: &[String]) -> Command {
    let mut argv: Vec<String> = Vec::new();
    if let Some(core) = core {
        argv.extend(["taskset".into(), "-c".into(), core.to_string()]);
    }
    argv.extend(wrapper.iter().cloned());
    argv.extend(command.iter().cloned());
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..]);
    cmd
}

/// Starts a server on a free loopback port: with `--port 0`, reading the
/// address it prints; if it prints none, again on a port picked here,
/// waiting until it accepts connections.
///
/// # Errors
///
/// When the server exits or neither way yields a listening server.
pub fn start(contender: &Contender, launch: &Launch) -> io::Result<Running> {
    let mut command = contender.command.clone();
    command.extend(["--port".into(), "0".into()]);
    let (mut running, printed) = spawn(&command, launch)?;
    match printed.recv_timeout(launch.startup) {
        Ok(addr) => {
            running.addr = addr;
            return Ok(running);
        }
        Err(_) => running.stop(Duration::from_secs(1))?,
    }
    // It did not say where it listens: give it a port and probe it.
    let port = free_port()?;
    let mut command = contender.command.clone();
    command.extend(["--port".into(), port.to_string()]);
    start_at(&contender.label, &command, port, launch)
}

/// A loopback port free a moment ago (for servers that cannot be given
/// port 0, such as nginx and redis-server).
///
/// # Errors
///
/// The OS error from binding.
pub fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Starts `command`, a server told to listen on 127.0.0.1:`port`, and
/// waits until it accepts connections.
///
/// # Errors
///
/// When it exits, or does not listen within the launch's startup time.
pub fn start_at(
    label: &str,
    command: &[String],
    port: u16,
    launch: &Launch,
) -> io::Result<Running> {
    let (mut running, _) = spawn(command, launch)?;
    running.addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + launch.startup;
    loop {
        if TcpStream::connect(running.addr).is_ok() {
            return Ok(running);
        }
        if let Some(status) = running.child.try_wait()? {
            return Err(io::Error::other(format!(
                "{label} exited ({status}): {}",
                running.stderr_tail()
            )));
        }
        if Instant::now() > deadline {
            let tail = running.stderr_tail();
            running.stop(Duration::from_secs(1))?;
            return Err(io::Error::new(
                ErrorKind::TimedOut,
                format!("{label} did not listen within {:?}: {tail}", launch.startup),
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn spawn(command: &[String], launch: &Launch) -> io::Result<(Running, mpsc::Receiver<SocketAddr>)> {
    let mut child = pinned(launch.core, &launch.wrapper, command)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| io::Error::new(e.kind(), format!("starting {}: {e}", command[0])))?;
    // The address may come on either stream. Both pipes are read to the
    // end, so a chatty server never blocks.
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().expect("piped");
    let out_tx = tx.clone();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if !sent {
                if let Some(addr) = find_addr(&line) {
                    sent = out_tx.send(addr).is_ok();
                }
            }
        }
    });
    let stderr = Arc::new(Mutex::new(Vec::new()));
    let tail = Arc::clone(&stderr);
    let err = child.stderr.take().expect("piped");
    std::thread::spawn(move || keep_tail(err, &tail, &tx));
    let running = Running {
        child,
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        stderr,
    };
    Ok((running, rx))
}

fn keep_tail(pipe: impl Read, tail: &Mutex<Vec<String>>, addr: &mpsc::Sender<SocketAddr>) {
    let mut sent = false;
    for line in BufReader::new(pipe).lines() {
        let Ok(line) = line else { break };
        if !sent {
            if let Some(a) = find_addr(&line) {
                sent = addr.send(a).is_ok();
            }
        }
        if let Ok(mut tail) = tail.lock() {
            if tail.len() == 20 {
                tail.remove(0);
            }
            tail.push(line);
        }
    }
}

/// The first `IP:PORT` with a non-zero port in a line such as
/// `listening on 127.0.0.1:4000`, or a port after the word `port`.
#[must_use]
pub fn find_addr(line: &str) -> Option<SocketAddr> {
    let words: Vec<&str> = line
        .split(|c: char| c.is_whitespace() || c == ',' || c == '(' || c == ')')
        .map(|w| w.trim_matches(|c: char| c == '"' || c == '\'' || c == '`'))
        .filter(|w| !w.is_empty())
        .collect();
    for (i, word) in words.iter().enumerate() {
        let word = word.trim_end_matches('.');
        if let Ok(addr) = word.parse::<SocketAddr>() {
            if addr.port() != 0 {
                return Some(addr);
            }
        }
        if i > 0 && words[i - 1].eq_ignore_ascii_case("port") {
            if let Ok(port) = word.parse::<u16>() {
                if port != 0 {
                    return Some(SocketAddr::from(([127, 0, 0, 1], port)));
                }
            }
        }
    }
    None
}

/// Runs the `loadgen` binary, pinned to `core`, with `args`; parses its
/// report.
///
/// # Errors
///
/// When it fails or prints no report (its standard error is in the
/// message).
pub fn load(loadgen: &Path, core: Option<usize>, args: &[String]) -> io::Result<LoadReport> {
    let mut command = vec![loadgen.display().to_string()];
    command.extend(args.iter().cloned());
    let out = pinned(core, &[], &command).stdin(Stdio::null()).output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "loadgen {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    LoadReport::parse(stdout.lines().last().unwrap_or(""))
}

/// Runs the `loadgen` binary's fairness load (`--flood F --ping ...` in
/// `args`), pinned to `core`, killing it if it has not finished within
/// `limit`; parses its report.
///
/// # Errors
///
/// When it fails, overruns `limit` or prints no report (its standard error
/// is in the message).
pub fn fairness(
    loadgen: &Path,
    core: Option<usize>,
    args: &[String],
    limit: Duration,
) -> io::Result<FairnessReport> {
    let mut command = vec![loadgen.display().to_string()];
    command.extend(args.iter().cloned());
    let mut child = pinned(core, &[], &command)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let read_all = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let stdout = read_all(Box::new(child.stdout.take().expect("piped")));
    let stderr = read_all(Box::new(child.stderr.take().expect("piped")));
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(io::Error::new(
                ErrorKind::TimedOut,
                format!("loadgen did not finish within {limit:?}"),
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    if !status.success() {
        return Err(io::Error::other(format!(
            "loadgen {status}: {}",
            stderr.trim()
        )));
    }
    if !stderr.trim().is_empty() {
        eprintln!("{}", stderr.trim());
    }
    FairnessReport::parse(stdout.lines().last().unwrap_or(""))
}

/// The workspace's root directory (where `cargo build` runs).
#[must_use]
pub fn workspace_root() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs `cargo build ARGS` in the workspace, into the target directory of
/// the running binary (`bin_dir`) and in its profile, with the features in
/// `SOCKMUX_BENCH_FEATURES` if set (`sockmux-core/faults` measures the
/// servers with fault injection compiled in); whether it succeeded.
#[must_use]
pub fn cargo_build(bin_dir: &Path, args: &[&str]) -> bool {
    let Some(target_dir) = bin_dir.parent() else {
        return false;
    };
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace_root())
        .arg("build")
        .args(args)
        .arg("--target-dir")
        .arg(target_dir);
    if bin_dir.file_name().is_some_and(|n| n == "release") {
        cmd.arg("--release");
    }
    if let Some(features) = std::env::var_os("SOCKMUX_BENCH_FEATURES") {
        cmd.arg("--features").arg(features);
    }
    cmd.status().is_ok_and(|s| s.success())
}

#[cfg(test)]
mod tests {
    use super::find_addr;

    #[test]
    fn finds_the_address_a_server_prints() {
        let a = |s: &str| find_addr(s).map(|a| a.to_string());
        assert_eq!(
            a("listening on 127.0.0.1:4000").as_deref(),
            Some("127.0.0.1:4000")
        );
        assert_eq!(
            a("echo: bound to [::1]:80, ready").as_deref(),
            Some("[::1]:80")
        );
        assert_eq!(
            a("serving on port 5123.").as_deref(),
            Some("127.0.0.1:5123")
        );
        assert_eq!(a("127.0.0.1:0"), None);
        assert_eq!(a("ready"), None);
    }
}
