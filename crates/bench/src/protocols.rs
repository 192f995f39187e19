//! The protocol benchmark's pieces: the reference servers' command lines
//! (nginx in one process, redis-server without persistence), the real
//! clients that load them (`wrk`, `redis-benchmark`), and the parsing of
//! what those print. `bench_protocols` runs them; docs/benchmarks.md has
//! the method.

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};

/// nginx's configuration for the benchmark: one process (no master, one
/// worker), no access log, keep-alive without a request limit, and
/// `return 200 "Hello, World!"` for every request, on `127.0.0.1:port`;
/// its files under `dir`.
#[must_use]
pub fn nginx_conf(dir: &Path, port: u16) -> String {
    let dir = dir.display();
    format!(
        "daemon off;\n\
         master_process off;\n\
         worker_processes 1;\n\
         pid {dir}/nginx.pid;\n\
         error_log stderr warn;\n\
         events {{ worker_connections 4096; }}\n\
         http {{\n\
         \x20   access_log off;\n\
         \x20   keepalive_requests 100000000;\n\
         \x20   keepalive_timeout 60s;\n\
         \x20   client_body_temp_path {dir}/body;\n\
         \x20   proxy_temp_path {dir}/proxy;\n\
         \x20   fastcgi_temp_path {dir}/fastcgi;\n\
         \x20   uwsgi_temp_path {dir}/uwsgi;\n\
         \x20   scgi_temp_path {dir}/scgi;\n\
         \x20   server {{\n\
         \x20       listen 127.0.0.1:{port};\n\
         \x20       location / {{\n\
         \x20           default_type text/plain;\n\
         \x20           return 200 \"Hello, World!\";\n\
         \x20       }}\n\
         \x20   }}\n\
         }}\n"
    )
}

/// The wrk Lua script that sends `depth` requests for `/` in one write and
/// waits for their responses (HTTP pipelining); wrk counts each response.
#[must_use]
pub fn wrk_pipeline_script(depth: usize) -> String {
    format!(
        "init = function(args)\n\
         \x20   local r = {{}}\n\
         \x20   for i = 1, {depth} do r[i] = wrk.format(\"GET\", \"/\") end\n\
         \x20   req = table.concat(r)\n\
         end\n\
         request = function() return req end\n\
         status_errors = 0\n\
         response = function(status, headers, body)\n\
         \x20   if status ~= 200 then status_errors = status_errors + 1 end\n\
         end\n"
    )
}

/// What one `wrk` run reports.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WrkReport {
    /// Responses completed.
    pub requests: u64,
    /// The run's length, seconds.
    pub secs: f64,
    /// Socket errors and non-2xx/3xx responses wrk counted.
    pub errors: u64,
}

/// Parses wrk's summary: `N requests in T s, ...`, and the error lines
/// (`Socket errors: connect A, read B, write C, timeout D`, `Non-2xx or
/// 3xx responses: E`).
#[must_use]
pub fn parse_wrk(output: &str) -> Option<WrkReport> {
    let mut report = None;
    let mut errors = 0u64;
    for line in output.lines() {
        let line = line.trim();
        if let Some((count, rest)) = line.split_once(" requests in ") {
            let requests = count.trim().parse().ok()?;
            let secs = parse_wrk_duration(rest.split(',').next()?.trim())?;
            report = Some(WrkReport {
                requests,
                secs,
                errors: 0,
            });
        } else if let Some(rest) = line.strip_prefix("Socket errors:") {
            errors += rest
                .split(',')
                .filter_map(|part| part.split_whitespace().last()?.parse::<u64>().ok())
                .sum::<u64>();
        } else if let Some(rest) = line.strip_prefix("Non-2xx or 3xx responses:") {
            errors += rest.trim().parse::<u64>().ok()?;
        }
    }
    report.map(|r| WrkReport { errors, ..r })
}

/// `5.00s`, `1.00m`, `500.00ms` as seconds.
fn parse_wrk_duration(text: &str) -> Option<f64> {
    let (number, scale) = if let Some(n) = text.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = text.strip_suffix("us") {
        (n, 1e-6)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('m') {
        (n, 60.0)
    } else {
        return None;
    };
    Some(number.parse::<f64>().ok()? * scale)
}

/// Parses `redis-benchmark -q` for `test` (`SET`, `GET`, ...): the last
/// `TEST: R requests per second` line (progress lines end in `\r`).
#[must_use]
pub fn parse_redis_benchmark(output: &str, test: &str) -> Option<f64> {
    output.rsplit(['\n', '\r']).find_map(|line| {
        let rest = line.trim().strip_prefix(test)?.strip_prefix(':')?;
        let (rate, tail) = rest.trim().split_once(' ')?;
        tail.starts_with("requests per second")
            .then(|| rate.parse::<f64>().ok())
            .flatten()
    })
}

/// Runs a client program pinned to `core` (when given); its standard
/// output, or an error with its standard error.
///
/// # Errors
///
/// When it cannot start or exits unsuccessfully.
pub fn run_client(core: Option<usize>, argv: &[String]) -> io::Result<String> {
    let mut command = match core {
        Some(core) => {
            let mut c = Command::new("taskset");
            c.args(["-c", &core.to_string()]).args(argv);
            c
        }
        None => {
            let mut c = Command::new(&argv[0]);
            c.args(&argv[1..]);
            c
        }
    };
    let out = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| io::Error::new(e.kind(), format!("starting {}: {e}", argv[0])))?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "{} {}: {}",
            argv[0],
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The `wrk` command line: one thread, `conns` connections, `secs`
/// seconds, and the pipelining script when given.
#[must_use]
pub fn wrk_command(
    addr: SocketAddr,
    conns: usize,
    secs: u64,
    script: Option<&Path>,
) -> Vec<String> {
    let mut argv = vec![
        "wrk".to_string(),
        "-t1".into(),
        format!("-c{conns}"),
        format!("-d{secs}s"),
    ];
    if let Some(script) = script {
        argv.extend(["-s".into(), script.display().to_string()]);
    }
    argv.push(format!("http://{addr}/"));
    argv
}

/// The `redis-benchmark` command line for one test.
#[must_use]
pub fn redis_benchmark_command(
    addr: SocketAddr,
    conns: usize,
    requests: u64,
    test: &str,
    pipeline: usize,
) -> Vec<String> {
    vec![
        "redis-benchmark".into(),
        "-h".into(),
        addr.ip().to_string(),
        "-p".into(),
        addr.port().to_string(),
        "-c".into(),
        conns.to_string(),
        "-n".into(),
        requests.to_string(),
        "-t".into(),
        test.to_ascii_lowercase(),
        "-P".into(),
        pipeline.to_string(),
        "-q".into(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_wrk_summaries() {
        let out = "Running 5s test @ http://127.0.0.1:8080/\n  1 threads and 50 connections\n\
                   \x20 Thread Stats   Avg      Stdev     Max   +/- Stdev\n\
                   \x20   Latency   512.00us  100.00us   2.00ms   90.00%\n\
                   \x20 612345 requests in 5.00s, 80.00MB read\n\
                   Requests/sec: 122469.00\nTransfer/sec:     16.00MB\n";
        assert_eq!(
            parse_wrk(out),
            Some(WrkReport {
                requests: 612_345,
                secs: 5.0,
                errors: 0
            })
        );
        let bad = "  10 requests in 500.00ms, 1.00KB read\n  Socket errors: connect 0, read 2, write 1, timeout 3\n  Non-2xx or 3xx responses: 4\n";
        assert_eq!(
            parse_wrk(bad),
            Some(WrkReport {
                requests: 10,
                secs: 0.5,
                errors: 10
            })
        );
        assert_eq!(parse_wrk("nothing"), None);
    }

    #[test]
    fn reads_redis_benchmark_lines() {
        let out = "SET: rps=0.0 (overall: nan) avg_msec=nan (overall: nan)\rSET: 98231.83 requests per second, p50=0.263 msec\n\
                   GET: 101522.84 requests per second, p50=0.255 msec\n";
        assert_eq!(parse_redis_benchmark(out, "SET"), Some(98231.83));
        assert_eq!(parse_redis_benchmark(out, "GET"), Some(101_522.84));
        assert_eq!(parse_redis_benchmark(out, "INCR"), None);
    }

    #[test]
    fn nginx_listens_where_it_is_told() {
        let conf = nginx_conf(Path::new("/tmp/x"), 4242);
        assert!(conf.contains("listen 127.0.0.1:4242;"));
        assert!(conf.contains("master_process off;"));
        assert!(conf.contains("return 200 \"Hello, World!\";"));
    }
}
