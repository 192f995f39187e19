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
    use std::time::{Duration, Instant};

    #[test]
    fn own_cpu_time_grows_with_work_and_both_sources_agree() {
        let pid = std::process::id();
        let before = ProcStats::read(pid).unwrap();
        let start = Instant::now();
        let mut x = 0u64;
        while start.elapsed() < Duration::from_millis(60) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        let after = ProcStats::read(pid).unwrap();
        let spent = after.cpu.saturating_sub(before.cpu);
        assert!(spent >= Duration::from_millis(50), "{spent:?}");
        assert!(after.peak_rss_kib > 0);
        // The exact figure and the ticked one describe the same time.
        let exact = on_cpu(pid).expect("schedstat on Linux");
        let ticked = ticked_cpu(pid).unwrap();
        assert!(
            exact.abs_diff(ticked) < Duration::from_millis(500),
            "{exact:?} vs {ticked:?}"
        );
    }
}
