//! A process's CPU time and peak memory, from `/proc` (Linux).

use std::io::{self, ErrorKind};
use std::time::Duration;

/// CPU time and peak resident memory of one process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcStats {
    /// User + system time of all its threads (`utime + stime` of
    /// `/proc/PID/stat`).
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
        let cpu = Duration::from_nanos(total * 1_000_000_000 / clock_ticks());
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let peak_rss_kib = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .ok_or_else(|| bad("status"))?;
        Ok(ProcStats { cpu, peak_rss_kib })
    }
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
