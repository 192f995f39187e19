//! A process's CPU time and peak memory, from `/proc` (Linux).

use std::io::{self, ErrorKind};
use std::time::Duration;

/// CPU time and peak resident memory of one process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcStats {
    /// Time its threads spent on a CPU: the sum of the first field of
    /// `/proc/PID/task/*/schedstat` (nanoseconds, kept by the scheduler
    /// at every switch), or where that file is missing `utime + stime` of
    /// `/proc/PID/stat`, which the kernel counts in whole clock ticks by
    /// sampling: a server that runs 25 µs per request and then sleeps is
    /// charged a tick or not by chance, ±6% over a 4 s run.
    pub cpu: Duration,
    /// Peak resident set (`VmHWM` of `/proc/PID/status`), KiB.
    pub peak_rss_kib: u64,
}

impl ProcStats {
    /// Reads the figures of process `pid`.
    ///
    /// # Errors
    ///
    /// The OS error reading `/proc` (`NotFound` for a process that is gone,
    /// or off Linux); `InvalidData` if a file does not parse.
    pub fn read(pid: u32) -> io::Result<ProcStats> {
        let cpu = match on_cpu(pid) {
            Some(cpu) => cpu,
            None => ticked_cpu(pid)?,
        };
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let peak_rss_kib = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .ok_or_else(|| bad("status"))?;
        Ok(ProcStats { cpu, peak_rss_kib })
    }
}

/// The scheduler's exact time on CPU, summed over the live threads of
/// `pid`; `None` when a `schedstat` file is missing or does not parse
/// (kernels without `CONFIG_SCHED_INFO`). The servers measured here are
/// single-threaded, so no exited thread's time is lost.
fn on_cpu(pid: u32) -> Option<Duration> {
    let mut total = 0u64;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let schedstat = std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
        let ns: u64 = schedstat.split_whitespace().next()?.parse().ok()?;
        total = total.checked_add(ns)?;
    }
    Some(Duration::from_nanos(total))
}

/// `utime + stime` of `/proc/PID/stat`: all threads, in clock ticks.
fn ticked_cpu(pid: u32) -> io::Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name may hold spaces and parentheses: fields count
    // from the last ')'. After it come field 3 (state) onwards;
    // utime and stime are fields 14 and 15.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or_else(|| bad("stat"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| -> io::Result<u64> {
        fields
            .get(i)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| bad("stat"))
    };
    let total = ticks(14 - 3)? + ticks(15 - 3)?;
    Ok(Duration::from_nanos(total * 1_000_000_000 / clock_ticks()))
}

fn bad(file: &str) -> io::Error {
    io::Error::new(
        ErrorKind::InvalidData,
        format!("unexpected /proc/PID/{file}"),
    )
}

/// Clock ticks per second, the unit of `utime` and `stime`.
fn clock_ticks() -> u64 {
    #[cfg(unix)]
    {
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        if hz > 0 {
            return hz as u64;
        }
    }
    100
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::{on_cpu, ticked_cpu, ProcStats};
    use std::process::{Child, Command};
    use std::time::{Duration, Instant};

    /// A bound for a hang, never a measure of speed: a loaded machine
    /// takes longer to give the child its CPU time, and that is all.
    const LIMIT: Duration = Duration::from_secs(60);

    /// A single-threaded child that spins until it is killed.
    struct Spinner(Child);

    impl Drop for Spinner {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    /// The state letter of `/proc/PID/stat` (`T`: stopped).
    fn state(pid: u32) -> char {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let (_, rest) = stat.rsplit_once(')').unwrap();
        rest.trim_start().chars().next().unwrap()
    }

    /// Checks `ready` every 10 ms until it holds; panics after `LIMIT`.
    #[track_caller]
    fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
        let deadline = Instant::now() + LIMIT;
        while !ready() {
            assert!(Instant::now() < deadline, "{what}: not within {LIMIT:?}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// CPU time is read, grows with work, and the exact and the ticked
    /// figure agree. Measured on a spinning child, not on this process:
    /// the child's one thread is all its time (this binary runs other
    /// tests on threads that come and go, and the exact figure counts live
    /// threads only), and it is stopped before the two are compared, so
    /// that both describe the same moment. Nothing here depends on how fast
    /// the machine is: it waits for the time to grow, however long that
    /// takes.
    #[test]
    fn cpu_time_grows_with_work_and_both_sources_agree() {
        let child = Spinner(
            Command::new("sh")
                .args(["-c", "while :; do :; done"])
                .spawn()
                .unwrap(),
        );
        let pid = child.0.id();
        let first = ProcStats::read(pid).unwrap();
        let first_ticked = ticked_cpu(pid).unwrap();
        assert!(first.peak_rss_kib > 0);
        // Both grow: the exact figure by some work, the ticked one by a
        // whole tick at least.
        let grown = Duration::from_millis(50);
        wait_until("the child's CPU time grows", || {
            let exact = on_cpu(pid).expect("schedstat on Linux");
            exact >= first.cpu + grown && ticked_cpu(pid).unwrap() > first_ticked
        });

        // SAFETY: kill(2) with the child's pid and a valid signal number.
        assert_eq!(unsafe { libc::kill(pid as libc::pid_t, libc::SIGSTOP) }, 0);
        wait_until("the child stops", || state(pid) == 'T');
        let stopped = ProcStats::read(pid).unwrap();
        let exact = on_cpu(pid).expect("schedstat on Linux");
        let ticked = ticked_cpu(pid).unwrap();
        assert_eq!(stopped.cpu, exact, "the exact figure where there is one");
        assert!(exact >= first.cpu + grown, "{exact:?}");
        // The ticked figure is the same time cut down to whole ticks (and,
        // on kernels that sample instead of scaling, off by a few ticks); a
        // wrong unit would be off by a factor of ten or more.
        let tick = Duration::from_nanos(1_000_000_000 / super::clock_ticks());
        println!("the stopped child: {exact:?} exact, {ticked:?} ticked, tick {tick:?}");
        let slack = (exact / 4).max(tick * 3);
        assert!(
            exact.abs_diff(ticked) <= slack,
            "exact {exact:?} vs ticked {ticked:?}, tick {tick:?}"
        );
    }
}
