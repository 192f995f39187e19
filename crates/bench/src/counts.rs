//! Noise-free figures: user-space instructions per request (callgrind) and
//! system calls per request (the `raw_syscalls` tracepoint through `perf
//! stat`, else `strace -c -f`), each over a fixed number of requests.
//!
//! Each figure is a difference of two runs, `R1` and `R2` requests over the
//! same connections, divided by `R2 - R1`: starting, accepting and closing
//! cost the same in both and cancel out.

use std::io::{self, ErrorKind};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::runner::{self, Contender, Launch};

/// What the counts run: where the load generator is, the cores, and the
/// two request counts.
#[derive(Clone, Debug)]
pub struct CountSetup {
    /// The `loadgen` binary.
    pub loadgen: PathBuf,
    /// Core for the server (`taskset`), if pinning.
    pub server_core: Option<usize>,
    /// Core for the load generator.
    pub client_core: Option<usize>,
    /// Bytes per request.
    pub size: usize,
    /// The two request counts (R1 < R2).
    pub requests: (u64, u64),
    /// Where tools write their output files.
    pub scratch: PathBuf,
}

/// How system calls are counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyscallCounter {
    /// `perf stat -e raw_syscalls:sys_enter -p PID`: counts in the kernel,
    /// without slowing the server.
    Perf,
    /// `strace -c -f -p PID`: slows the server, so batches grow.
    Strace,
}

impl SyscallCounter {
    /// Perf if it can count the tracepoint here, else strace if present.
    #[must_use]
    pub fn detect() -> Option<SyscallCounter> {
        let works = |cmd: &mut Command| {
            cmd.stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        if works(Command::new("perf").args(["stat", "-e", "raw_syscalls:sys_enter", "true"])) {
            Some(SyscallCounter::Perf)
        } else if works(Command::new("strace").args(["-c", "-o", "/dev/null", "true"])) {
            Some(SyscallCounter::Strace)
        } else {
            None
        }
    }

    /// Its name, for the table.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            SyscallCounter::Perf => "perf stat -e raw_syscalls:sys_enter",
            SyscallCounter::Strace => "strace -c -f",
        }
    }
}

/// Whether valgrind is installed.
#[must_use]
pub fn have_valgrind() -> bool {
    Command::new("valgrind")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn load_args(addr: std::net::SocketAddr, conns: usize, size: usize, requests: u64) -> Vec<String> {
    vec![
        "--addr".into(),
        addr.to_string(),
        "--conns".into(),
        conns.to_string(),
        "--size".into(),
        size.to_string(),
        "--requests".into(),
        requests.to_string(),
    ]
}

/// User-space instructions per request, `conns` connections.
///
/// # Errors
///
/// When valgrind, the server or the load fails.
pub fn instructions_per_request(
    contender: &Contender,
    setup: &CountSetup,
    conns: usize,
) -> io::Result<f64> {
    let mut totals = Vec::new();
    for (i, requests) in [setup.requests.0, setup.requests.1].into_iter().enumerate() {
        let out = setup
            .scratch
            .join(format!("callgrind.{}.{i}", file_safe(&contender.label)));
        let launch = Launch {
            core: setup.server_core,
            wrapper: vec![
                "valgrind".into(),
                "--tool=callgrind".into(),
                format!("--callgrind-out-file={}", out.display()),
            ],
            startup: Duration::from_secs(60),
        };
        let server = runner::start(contender, &launch)?;
        let loaded = runner::load(
            &setup.loadgen,
            setup.client_core,
            &load_args(server.addr, conns, setup.size, requests),
        );
        server.stop(Duration::from_secs(60))?;
        loaded?;
        totals.push(callgrind_total(&out)?);
    }
    Ok(per_request(&totals, setup.requests))
}

fn file_safe(label: &str) -> String {
    label
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

fn callgrind_total(path: &Path) -> io::Result<u64> {
    let text = std::fs::read_to_string(path)?;
    text.lines()
        .find_map(|l| {
            l.strip_prefix("totals:")
                .or_else(|| l.strip_prefix("summary:"))
        })
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .ok_or_else(|| {
            io::Error::new(
                ErrorKind::InvalidData,
                format!("no totals in {}", path.display()),
            )
        })
}

fn per_request(totals: &[u64], requests: (u64, u64)) -> f64 {
    (totals[1] as f64 - totals[0] as f64) / (requests.1 - requests.0) as f64
}

/// System calls per request, `conns` connections.
///
/// # Errors
///
/// When the counter, the server or the load fails.
pub fn syscalls_per_request(
    contender: &Contender,
    setup: &CountSetup,
    counter: SyscallCounter,
    conns: usize,
) -> io::Result<f64> {
    let mut totals = Vec::new();
    for (i, requests) in [setup.requests.0, setup.requests.1].into_iter().enumerate() {
        let out = setup.scratch.join(format!(
            "syscalls.{}.{conns}.{i}",
            file_safe(&contender.label)
        ));
        let launch = Launch {
            core: setup.server_core,
            wrapper: Vec::new(),
            startup: Duration::from_secs(10),
        };
        let server = runner::start(contender, &launch)?;
        let tool = attach(counter, server.pid(), &out);
        let loaded = tool.and_then(|tool| {
            // The tool needs a moment to attach before the first request.
            std::thread::sleep(Duration::from_millis(500));
            let loaded = runner::load(
                &setup.loadgen,
                setup.client_core,
                &load_args(server.addr, conns, setup.size, requests),
            );
            // Closing the connections is counted in both runs alike.
            std::thread::sleep(Duration::from_millis(200));
            detach(tool)?;
            loaded
        });
        server.stop(Duration::from_secs(5))?;
        loaded?;
        totals.push(read_count(counter, &out)?);
    }
    Ok(per_request(&totals, setup.requests))
}

fn attach(counter: SyscallCounter, pid: u32, out: &Path) -> io::Result<Child> {
    let pid = pid.to_string();
    let out = out.display().to_string();
    let mut cmd = match counter {
        SyscallCounter::Perf => {
            let mut c = Command::new("perf");
            c.args([
                "stat",
                "-e",
                "raw_syscalls:sys_enter",
                "-x",
                ",",
                "-o",
                &out,
                "-p",
                &pid,
            ]);
            c
        }
        SyscallCounter::Strace => {
            let mut c = Command::new("strace");
            c.args(["-c", "-f", "-o", &out, "-p", &pid]);
            c
        }
    };
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
}

fn detach(mut tool: Child) -> io::Result<()> {
    #[cfg(unix)]
    // SAFETY: kill(2) on our own child's pid.
    unsafe {
        libc::kill(tool.id() as libc::pid_t, libc::SIGINT);
    }
    tool.wait().map(drop)
}

fn read_count(counter: SyscallCounter, path: &Path) -> io::Result<u64> {
    let text = std::fs::read_to_string(path)?;
    let found = match counter {
        // "COUNT,,raw_syscalls:sys_enter,..."
        SyscallCounter::Perf => text
            .lines()
            .filter(|l| !l.starts_with('#') && l.contains("raw_syscalls:sys_enter"))
            .find_map(|l| l.split(',').next()?.trim().parse().ok()),
        // "100.00  0.001  2  CALLS  ERRORS total": calls is the 4th column.
        SyscallCounter::Strace => text
            .lines()
            .find(|l| l.trim_end().ends_with(" total"))
            .and_then(|l| l.split_whitespace().nth(3)?.parse().ok()),
    };
    found.ok_or_else(|| {
        io::Error::new(
            ErrorKind::InvalidData,
            format!("no count in {}: {text}", path.display()),
        )
    })
}
