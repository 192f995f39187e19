//! The protocol benchmark: HTTP servers under `wrk` (nginx in one process,
//! the raw mio reference `http_server`, and the `http` example when it
//! exists) and Redis-protocol servers under `redis-benchmark`
//! (redis-server without persistence, and the `kv` example when it
//! exists), each server pinned to core 0 and its client to core 1; for
//! every load, requests per second and the server's CPU time per request
//! (from `/proc`), as ratios to nginx and to redis-server in the same run.
//!
//! `cargo run --release -p sockmux-bench --bin bench_protocols -- [--quick]`
//! (`ci/bench-protocols.sh` installs the clients and servers and wraps it.)

#[cfg(unix)]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    unix::main()
}

#[cfg(not(unix))]
fn main() {
    println!("bench_protocols: unix only");
}

#[cfg(unix)]
mod unix {
    use std::error::Error;
    use std::fmt::Write as _;
    use std::path::{Path, PathBuf};
    use std::process::Command;
    use std::time::Duration;

    use sockmux_bench::protocols::{
        nginx_conf, parse_redis_benchmark, parse_wrk, redis_benchmark_command, run_client,
        wrk_command, wrk_pipeline_script,
    };
    use sockmux_bench::report::median;
    use sockmux_bench::runner::{self, cargo_build, workspace_root, Contender, Launch, Running};
    use sockmux_bench::{raise_nofile_limit, ProcStats};

    const SERVER_CORE: usize = 0;
    const CLIENT_CORE: usize = 1;
    const NGINX: &str = "nginx";
    const MIO_HTTP: &str = "mio-http";
    const REDIS: &str = "redis-server";
    const SOCKMUX: &str = "sockmux";

    struct Options {
        secs: u64,
        reps: usize,
        conns: usize,
        depth: usize,
        requests: u64,
        http: bool,
        redis: bool,
        pin: bool,
        build: bool,
        table: Option<PathBuf>,
        chart: Option<PathBuf>,
    }

    fn options() -> Result<Options, Box<dyn Error>> {
        let mut o = Options {
            secs: 5,
            reps: 3,
            conns: 50,
            depth: 16,
            requests: 200_000,
            http: true,
            redis: true,
            pin: true,
            build: true,
            table: None,
            chart: Some(workspace_root().join("docs/bench-protocols-chart.svg")),
        };
        let mut args = lexopt::Parser::from_env();
        while let Some(arg) = args.next()? {
            use lexopt::prelude::*;
            match arg {
                Long("quick") => {
                    o.secs = 1;
                    o.reps = 1;
                    o.requests = 20_000;
                    o.chart = None;
                }
                Long("secs") => o.secs = args.value()?.parse::<u64>()?.max(1),
                Long("reps") => o.reps = args.value()?.parse::<usize>()?.max(1),
                Long("conns") => o.conns = args.value()?.parse::<usize>()?.max(1),
                Long("depth") => o.depth = args.value()?.parse::<usize>()?.max(2),
                Long("requests") => o.requests = args.value()?.parse::<u64>()?.max(1),
                Long("only") => match args.value()?.string()?.as_str() {
                    "http" => o.redis = false,
                    "redis" => o.http = false,
                    other => return Err(format!("--only http or redis, not {other}").into()),
                },
                Long("no-pin") => o.pin = false,
                Long("no-build") => o.build = false,
                Long("table") => o.table = Some(PathBuf::from(args.value()?)),
                Long("chart") => o.chart = Some(PathBuf::from(args.value()?)),
                Long("help") => {
                    println!(
                        "bench_protocols [--quick] [--secs T] [--reps N] [--conns C] [--depth P] \
                         [--requests N] [--only http|redis] [--no-pin] [--no-build] [--table FILE.md] \
                         [--chart FILE.svg]"
                    );
                    std::process::exit(0);
                }
                _ => return Err(arg.unexpected().into()),
            }
        }
        Ok(o)
    }

    /// An example server, built first when its source exists.
    fn example(o: &Options, bin_dir: &Path, name: &str) -> Option<PathBuf> {
        let root = workspace_root().join("examples");
        if !root.join(name).join("main.rs").exists() && !root.join(format!("{name}.rs")).exists() {
            eprintln!("note: no `{name}` example in examples/: its row is left out");
            return None;
        }
        if o.build && !cargo_build(bin_dir, &["--example", name]) {
            eprintln!("note: building the `{name}` example failed: its row is left out");
            return None;
        }
        let path = bin_dir.join("examples").join(name);
        path.exists().then_some(path)
    }

    fn have(program: &str, version_arg: &str) -> bool {
        let found = Command::new(program)
            .arg(version_arg)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok();
        if !found {
            eprintln!("note: `{program}` is not installed (ci/bench-protocols.sh installs it)");
        }
        found
    }

    /// How a server of the benchmark is started.
    enum Start {
        /// A program that takes `--port 0` and prints where it listens.
        Prints(Contender),
        /// nginx, with a configuration written for a free port.
        Nginx,
        /// redis-server on a free port, without persistence.
        Redis,
    }

    struct Server {
        label: &'static str,
        start: Start,
    }

    impl Server {
        fn start(&self, launch: &Launch, scratch: &Path) -> Result<Running, Box<dyn Error>> {
            Ok(match &self.start {
                Start::Prints(contender) => runner::start(contender, launch)?,
                Start::Nginx => {
                    let port = runner::free_port()?;
                    std::fs::create_dir_all(scratch)?;
                    let conf = scratch.join("nginx.conf");
                    std::fs::write(&conf, nginx_conf(scratch, port))?;
                    let command = vec![
                        "nginx".to_string(),
                        "-p".into(),
                        scratch.display().to_string(),
                        "-c".into(),
                        conf.display().to_string(),
                    ];
                    runner::start_at(self.label, &command, port, launch)?
                }
                Start::Redis => {
                    let port = runner::free_port()?;
                    let command = [
                        "redis-server",
                        "--bind",
                        "127.0.0.1",
                        "--port",
                        &port.to_string(),
                        "--save",
                        "",
                        "--appendonly",
                        "no",
                    ]
                    .map(String::from)
                    .to_vec();
                    runner::start_at(self.label, &command, port, launch)?
                }
            })
        }
    }

    /// One measured load: its name in the table and the samples of each
    /// server (requests per second, server CPU seconds per request).
    struct Row {
        protocol: &'static str,
        load: String,
        samples: Vec<(&'static str, Vec<(f64, f64)>)>,
    }

    impl Row {
        fn new(protocol: &'static str, load: String, servers: &[Server]) -> Row {
            Row {
                protocol,
                load,
                samples: servers.iter().map(|s| (s.label, Vec::new())).collect(),
            }
        }

        fn add(&mut self, label: &str, rate: f64, cpu_per_request: f64) {
            if let Some((_, v)) = self.samples.iter_mut().find(|(l, _)| *l == label) {
                v.push((rate, cpu_per_request));
            }
        }

        /// Medians: (requests per second, server CPU µs per request).
        fn median(&self, label: &str) -> Option<(f64, f64)> {
            let (_, v) = self.samples.iter().find(|(l, _)| *l == label)?;
            Some((
                median(v.iter().map(|s| s.0).collect())?,
                median(v.iter().map(|s| s.1 * 1e6).collect())?,
            ))
        }
    }

    fn cpu(pid: u32) -> Result<Duration, Box<dyn Error>> {
        Ok(ProcStats::read(pid)?.cpu)
    }

    pub(crate) fn main() -> Result<(), Box<dyn Error>> {
        let o = options()?;
        raise_nofile_limit();
        let bin_dir = std::env::current_exe()?
            .parent()
            .ok_or("no directory for the running binary")?
            .to_path_buf();
        if o.build && !cargo_build(&bin_dir, &["-p", "sockmux-bench", "--bins"]) {
            eprintln!("note: building the benchmark binaries failed; using what is there");
        }
        let (server_core, client_core) = if o.pin {
            (Some(SERVER_CORE), Some(CLIENT_CORE))
        } else {
            (None, None)
        };
        let launch = Launch {
            core: server_core,
            wrapper: Vec::new(),
            startup: Duration::from_secs(10),
        };
        let scratch = std::env::temp_dir().join(format!("sockmux-bench-{}", std::process::id()));
        std::fs::create_dir_all(&scratch)?;
        let mut rows = Vec::new();

        if o.http && have("wrk", "--version") {
            let mut servers = Vec::new();
            if have("nginx", "-v") {
                servers.push(Server {
                    label: NGINX,
                    start: Start::Nginx,
                });
            }
            servers.push(Server {
                label: MIO_HTTP,
                start: Start::Prints(Contender {
                    label: MIO_HTTP.into(),
                    command: vec![bin_dir.join("http_server").display().to_string()],
                }),
            });
            if let Some(path) = example(&o, &bin_dir, "http") {
                servers.push(Server {
                    label: SOCKMUX,
                    start: Start::Prints(Contender {
                        label: SOCKMUX.into(),
                        command: vec![path.display().to_string()],
                    }),
                });
            }
            let script = scratch.join("pipeline.lua");
            std::fs::write(&script, wrk_pipeline_script(o.depth))?;
            let loads = [(1, None), (o.depth, Some(script.as_path()))];
            for (depth, script) in loads {
                let name = if depth == 1 {
                    format!("wrk -c{}", o.conns)
                } else {
                    format!("wrk -c{}, pipelined x{depth}", o.conns)
                };
                let mut row = Row::new("HTTP", name, &servers);
                for rep in 0..o.reps {
                    for k in 0..servers.len() {
                        let server = &servers[(k + rep) % servers.len()];
                        let running = server.start(&launch, &scratch.join(server.label))?;
                        let measured = (|| -> Result<(f64, f64), Box<dyn Error>> {
                            // A warm-up second, then the measured run.
                            run_client(
                                client_core,
                                &wrk_command(running.addr, o.conns, 1, script),
                            )?;
                            let before = cpu(running.pid())?;
                            let out = run_client(
                                client_core,
                                &wrk_command(running.addr, o.conns, o.secs, script),
                            )?;
                            let after = cpu(running.pid())?;
                            let report = parse_wrk(&out)
                                .ok_or_else(|| format!("wrk printed no summary: {out}"))?;
                            if report.errors > 0 || report.requests == 0 {
                                return Err(format!(
                                    "{} errors in {} responses: {out}",
                                    report.errors, report.requests
                                )
                                .into());
                            }
                            let n = report.requests as f64;
                            Ok((n / report.secs, (after - before).as_secs_f64() / n))
                        })();
                        let tail = running.stderr_tail();
                        running.stop(Duration::from_secs(2))?;
                        let (rate, per) = measured.map_err(|e| {
                            format!("{} under {}: {e}\n{tail}", server.label, row.load)
                        })?;
                        eprintln!(
                            "{:<4} {:<28} {:<12} {:>9.0} req/s {:>7.2} µs CPU/req",
                            row.protocol,
                            row.load,
                            server.label,
                            rate,
                            per * 1e6
                        );
                        row.add(server.label, rate, per);
                    }
                }
                rows.push(row);
            }
        }

        if o.redis && have("redis-benchmark", "--version") {
            let mut servers = Vec::new();
            if have("redis-server", "--version") {
                servers.push(Server {
                    label: REDIS,
                    start: Start::Redis,
                });
            }
            if let Some(path) = example(&o, &bin_dir, "kv") {
                servers.push(Server {
                    label: SOCKMUX,
                    start: Start::Prints(Contender {
                        label: SOCKMUX.into(),
                        command: vec![path.display().to_string()],
                    }),
                });
            }
            for depth in [1, o.depth] {
                let requests = o.requests * depth as u64 / 2;
                let mut set = Row::new("RESP", format!("SET -c{} -P{depth}", o.conns), &servers);
                let mut get = Row::new("RESP", format!("GET -c{} -P{depth}", o.conns), &servers);
                for rep in 0..o.reps {
                    for k in 0..servers.len() {
                        let server = &servers[(k + rep) % servers.len()];
                        let running = server.start(&launch, &scratch.join(server.label))?;
                        let mut measured = Vec::new();
                        for (test, row) in [("SET", &mut set), ("GET", &mut get)] {
                            let result = (|| -> Result<(f64, f64), Box<dyn Error>> {
                                let argv = redis_benchmark_command(
                                    running.addr,
                                    o.conns,
                                    requests,
                                    test,
                                    depth,
                                );
                                let before = cpu(running.pid())?;
                                let out = run_client(client_core, &argv)?;
                                let after = cpu(running.pid())?;
                                let rate = parse_redis_benchmark(&out, test)
                                    .ok_or_else(|| format!("no {test} rate in: {out}"))?;
                                Ok((rate, (after - before).as_secs_f64() / requests as f64))
                            })();
                            match result {
                                Ok((rate, per)) => {
                                    eprintln!(
                                        "RESP {:<28} {:<12} {:>9.0} req/s {:>7.2} µs CPU/req",
                                        row.load,
                                        server.label,
                                        rate,
                                        per * 1e6
                                    );
                                    row.add(server.label, rate, per);
                                }
                                Err(e) => measured.push(format!("{test}: {e}")),
                            }
                        }
                        let tail = running.stderr_tail();
                        running.stop(Duration::from_secs(2))?;
                        if !measured.is_empty() {
                            return Err(format!(
                                "{}: {}\n{tail}",
                                server.label,
                                measured.join("; ")
                            )
                            .into());
                        }
                    }
                }
                rows.push(set);
                rows.push(get);
            }
        }
        let _ = std::fs::remove_dir_all(&scratch);
        let text = present(&o, &rows);
        print!("{text}");
        if let Some(path) = &o.table {
            std::fs::write(path, &text)?;
            eprintln!("table written to {}", path.display());
        }
        if let Some(path) = &o.chart {
            chart(&rows, path)?;
            eprintln!("chart written to {}", path.display());
        }
        Ok(())
    }

    /// Server CPU per request, one panel per load, a bar per server (SVG).
    fn chart(rows: &[Row], path: &Path) -> Result<(), Box<dyn Error>> {
        use plotters::prelude::*;
        const COLORS: [RGBColor; 4] = [
            RGBColor(90, 90, 90),
            RGBColor(160, 160, 160),
            RGBColor(31, 119, 180),
            RGBColor(255, 127, 14),
        ];
        let columns = 2;
        let lines = rows.len().div_ceil(columns).max(1);
        let (width, height) = (900u32, (260 * lines + 60) as u32);
        let root = SVGBackend::new(path, (width, height)).into_drawing_area();
        root.fill(&WHITE)?;
        let (top, body) = root.split_vertically(40);
        top.titled(
            "Server CPU µs per request (lower is better), server and client on their own cores",
            ("sans-serif", 16),
        )?;
        let panels = body.split_evenly((lines, columns));
        for (row, area) in rows.iter().zip(panels.iter()) {
            let bars: Vec<(&str, f64)> = row
                .samples
                .iter()
                .filter_map(|(label, _)| Some((*label, row.median(label)?.1)))
                .collect();
            let max = bars.iter().map(|b| b.1).fold(0.0, f64::max).max(1e-3);
            let mut chart = ChartBuilder::on(area)
                .caption(
                    format!("{}: {}", row.protocol, row.load),
                    ("sans-serif", 14),
                )
                .margin(8)
                .x_label_area_size(18)
                .y_label_area_size(44)
                .build_cartesian_2d(0.0..bars.len().max(1) as f64, 0.0..max * 1.25)?;
            chart
                .configure_mesh()
                .disable_x_mesh()
                .x_labels(0)
                .y_labels(5)
                .draw()?;
            chart.draw_series(bars.iter().enumerate().map(|(i, &(label, _))| {
                let color = match label {
                    NGINX | REDIS => COLORS[0],
                    MIO_HTTP => COLORS[1],
                    _ => COLORS[2 + i % 2],
                };
                let v = bars[i].1;
                Rectangle::new(
                    [(i as f64 + 0.15, 0.0), (i as f64 + 0.85, v)],
                    color.filled(),
                )
            }))?;
            chart.draw_series(bars.iter().enumerate().map(|(i, &(label, v))| {
                Text::new(
                    format!("{label} {v:.2}"),
                    (i as f64 + 0.15, v + max * 0.12),
                    ("sans-serif", 11),
                )
            }))?;
        }
        root.present()?;
        Ok(())
    }

    /// The table (medians, ratios to the protocol's reference server) and
    /// the bars.
    fn present(o: &Options, rows: &[Row]) -> String {
        let mut t = String::new();
        let _ = writeln!(
            t,
            "Protocols: each server pinned to core {SERVER_CORE}, its client to core {CLIENT_CORE}; \
             {} × (wrk {} s after a 1 s warm-up; redis-benchmark {} requests unpipelined, \
             ×P pipelined), medians; ×ref is the ratio to nginx (HTTP) or redis-server (RESP) \
             in the same run.\n",
            o.reps, o.secs, o.requests / 2
        );
        let _ = writeln!(
            t,
            "| protocol | load | server | req/s | ×ref | server CPU µs/req | ×ref |\n\
             |---|---|---|---:|---:|---:|---:|"
        );
        for row in rows {
            let reference = if row.protocol == "HTTP" { NGINX } else { REDIS };
            let base = row.median(reference);
            for (label, _) in &row.samples {
                let Some((rate, per)) = row.median(label) else {
                    continue;
                };
                let ratio =
                    |x: f64, b: Option<f64>| b.map_or("–".into(), |b| format!("{:.2}", x / b));
                let _ = writeln!(
                    t,
                    "| {} | {} | {label} | {rate:.0} | {} | {per:.2} | {} |",
                    row.protocol,
                    row.load,
                    ratio(rate, base.map(|b| b.0)),
                    ratio(per, base.map(|b| b.1)),
                );
            }
        }
        let _ = writeln!(t, "\nBars (sockmux's server CPU per request):");
        for row in rows {
            let Some((rate, per)) = row.median(SOCKMUX) else {
                continue;
            };
            let pipelined = !row.load.ends_with("P1") && row.load.contains("pipelined")
                || row.load.ends_with(&format!("P{}", o.depth));
            let line = if row.protocol == "HTTP" {
                let bar = if pipelined { 0.2 } else { 0.9 };
                let mut line = format!("  http {:<28}", row.load);
                if let Some((_, nginx)) = row.median(NGINX) {
                    let r = per / nginx;
                    let _ = write!(
                        line,
                        " CPU {per:.2} µs = {r:.2}× nginx (bar ≤ {bar}): {}",
                        met(r <= bar)
                    );
                }
                if let Some((_, mio)) = row.median(MIO_HTTP) {
                    let r = per / mio;
                    let _ = write!(line, "; {r:.2}× mio-http (bar ≤ 1.25): {}", met(r <= 1.25));
                }
                line
            } else {
                let bar = if pipelined { 0.6 } else { 0.9 };
                let mut line = format!("  kv   {:<28}", row.load);
                if let Some((redis_rate, redis)) = row.median(REDIS) {
                    let r = per / redis;
                    let _ = write!(
                        line,
                        " CPU {per:.2} µs = {r:.2}× redis-server (bar ≤ {bar}): {}; ops/s {:.2}× (bar ≥ 1): {}",
                        met(r <= bar),
                        rate / redis_rate,
                        met(rate >= redis_rate)
                    );
                }
                line
            };
            let _ = writeln!(t, "{line}");
        }
        t
    }

    fn met(ok: bool) -> &'static str {
        if ok {
            "met"
        } else {
            "NOT met"
        }
    }
}
