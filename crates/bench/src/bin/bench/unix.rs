//! The benchmark command on Unix.

use std::error::Error;
use std::path::{Path, PathBuf};

use std::time::Duration;

use sockmux_bench::chart::write_chart;
use sockmux_bench::counts::{self, CountSetup, SyscallCounter};
use sockmux_bench::report::{Case, Results, Summary};
use sockmux_bench::runner::{self, cargo_build, workspace_root, Contender, Launch};
use sockmux_bench::{fairness, raise_nofile_limit, FairnessReport, LoadReport, Server};
use std::io::Write as _;

/// The core the servers are pinned to; the load generator gets the other.
const SERVER_CORE: usize = 0;
const CLIENT_CORE: usize = 1;
/// The baseline row and its second copy (the A/A check).
const BASE: &str = "mio";
const BASE_AGAIN: &str = "mio (A/A)";
/// The sockmux rows, held to the bars.
const TABLE_ROW: &str = "sockmux-core";
const EXAMPLE_ROW: &str = "sockmux";
/// The `tcp_echo` example built without the `stats` feature (the figures
/// of docs/observability.md compiled out): in `--counts` runs, or when
/// named.
const EXAMPLE_NO_STATS_ROW: &str = "sockmux-nostats";
/// The example on two loops, for the scaling rows (docs/scaling.md):
/// spread by `SO_REUSEPORT`, and by the hand-off.
const EXAMPLE_2_ROW: &str = "sockmux-2";
const EXAMPLE_2_HAND_OFF_ROW: &str = "sockmux-2h";
/// Servers that run more than one thread: pinned to one core they would
/// measure nothing of interest, so they want `--no-pin`.
const MULTI_THREADED: [&str; 3] = [EXAMPLE_2_ROW, EXAMPLE_2_HAND_OFF_ROW, "tokio-mt2"];
/// The servers `--fairness` runs unless `--servers` says otherwise.
const FAIRNESS_SERVERS: [&str; 3] = [BASE, TABLE_ROW, EXAMPLE_ROW];

struct Options {
    quick: bool,
    counts: bool,
    fairness: bool,
    floods: usize,
    secs: f64,
    warmup: f64,
    reps: usize,
    conns: Vec<usize>,
    sizes: Vec<usize>,
    only: Option<Vec<String>>,
    pin: bool,
    build: bool,
    chart: Option<PathBuf>,
    table: Option<PathBuf>,
    raw: Option<PathBuf>,
    from_raw: Option<PathBuf>,
}

fn list(value: &str) -> Result<Vec<usize>, Box<dyn Error>> {
    Ok(value.split(',').map(str::parse).collect::<Result<_, _>>()?)
}

fn options() -> Result<Options, Box<dyn Error>> {
    let mut o = Options {
        quick: false,
        counts: false,
        fairness: false,
        floods: 1,
        secs: 4.0,
        warmup: 1.0,
        reps: 3,
        conns: vec![1, 50, 1000],
        sizes: vec![64, 4096],
        only: None,
        pin: true,
        build: true,
        chart: None,
        table: None,
        raw: None,
        from_raw: None,
    };
    let (mut secs, mut warmup, mut reps, mut chart) = (None, None, None, None);
    let mut args = lexopt::Parser::from_env();
    while let Some(arg) = args.next()? {
        use lexopt::prelude::*;
        match arg {
            Long("quick") => o.quick = true,
            Long("counts") => o.counts = true,
            Long("fairness") => o.fairness = true,
            Long("floods") => o.floods = args.value()?.parse::<usize>()?.max(1),
            Long("secs") => secs = Some(args.value()?.parse()?),
            Long("warmup") => warmup = Some(args.value()?.parse()?),
            Long("reps") => reps = Some(args.value()?.parse()?),
            Long("conns") => o.conns = list(&args.value()?.string()?)?,
            Long("sizes") => o.sizes = list(&args.value()?.string()?)?,
            Long("servers") => {
                o.only = Some(
                    args.value()?
                        .string()?
                        .split(',')
                        .map(String::from)
                        .collect(),
                );
            }
            Long("no-pin") => o.pin = false,
            Long("no-build") => o.build = false,
            Long("chart") => chart = Some(PathBuf::from(args.value()?)),
            Long("table") => o.table = Some(PathBuf::from(args.value()?)),
            Long("raw") => o.raw = Some(PathBuf::from(args.value()?)),
            Long("from-raw") => o.from_raw = Some(PathBuf::from(args.value()?)),
            Long("help") => {
                println!(
                    "bench [--quick] [--secs T] [--warmup W] [--reps N] [--conns 1,50,1000] \
                     [--sizes 64,4096] [--servers mio,tokio,...] [--no-pin] [--no-build] \
                     [--chart FILE.svg] [--table FILE.md] [--raw FILE] [--from-raw FILE]\n\
                     bench --counts [--servers ...]\n\
                     bench --fairness [--servers mio,sockmux-core,sockmux] [--floods F] [--secs T] \
                     [--warmup W] [--reps N] [--no-pin] [--table FILE.md]"
                );
                std::process::exit(0);
            }
            _ => return Err(arg.unexpected().into()),
        }
    }
    if o.quick {
        o.secs = 1.0;
        o.warmup = 0.3;
        o.reps = 1;
    }
    o.secs = secs.unwrap_or(o.secs);
    o.warmup = warmup.unwrap_or(o.warmup);
    o.reps = reps.unwrap_or(o.reps).max(1);
    // The full run writes the chart under docs/; a quick one only if asked;
    // the fairness run has none.
    o.chart = chart.or_else(|| {
        (!o.quick && !o.fairness).then(|| workspace_root().join("docs/bench-chart.svg"))
    });
    if o.fairness && o.only.is_none() {
        o.only = Some(FAIRNESS_SERVERS.iter().map(|s| (*s).to_string()).collect());
    }
    Ok(o)
}

/// The servers to measure, in table order: raw mio first (the baseline),
/// its A/A copy, the references, then sockmux.
fn contenders(o: &Options, bin_dir: &Path) -> Vec<Contender> {
    let echo = bin_dir.join("echo_server").display().to_string();
    let builtin = |label: &str, server: Server| Contender {
        label: label.into(),
        command: vec![echo.clone(), "--impl".into(), server.name().into()],
    };
    let mut all = vec![
        builtin(BASE, Server::Mio),
        builtin(BASE_AGAIN, Server::Mio),
        builtin("tokio", Server::Tokio),
        builtin("calloop", Server::Calloop),
        builtin(TABLE_ROW, Server::Table),
    ];
    // The latency study's variants of raw mio, and the multi-thread peer of
    // the scaling rows: only when named.
    for variant in [Server::MioShort, Server::MioShortSpent, Server::TokioMt2] {
        if o.only
            .as_ref()
            .is_some_and(|only| only.iter().any(|s| s == variant.name()))
        {
            all.push(builtin(variant.name(), variant));
        }
    }
    match tcp_echo(o, bin_dir) {
        Some(path) => {
            all.push(Contender {
                label: EXAMPLE_ROW.into(),
                command: vec![path.display().to_string()],
            });
            let named = o
                .only
                .as_ref()
                .is_some_and(|only| only.iter().any(|s| s == EXAMPLE_NO_STATS_ROW));
            let no_stats = bin_dir.join(NO_STATS_BINARY);
            if (o.counts || named) && no_stats.exists() {
                all.push(Contender {
                    label: EXAMPLE_NO_STATS_ROW.into(),
                    command: vec![no_stats.display().to_string()],
                });
            }
            // Two loops (`--threads 2`): the scaling rows, only when named.
            let two: [(&str, &[&str]); 2] = [
                (EXAMPLE_2_ROW, &[]),
                (EXAMPLE_2_HAND_OFF_ROW, &["--hand-off"]),
            ];
            for (label, extra) in two {
                if o.only
                    .as_ref()
                    .is_some_and(|only| only.iter().any(|s| s == label))
                {
                    let mut command =
                        vec![path.display().to_string(), "--threads".into(), "2".into()];
                    command.extend(extra.iter().map(|s| (*s).to_string()));
                    all.push(Contender {
                        label: label.into(),
                        command,
                    });
                }
            }
        }
        None => eprintln!(
            "note: no tcp_echo example built (examples/tcp_echo.rs absent or not building): \
             the `{EXAMPLE_ROW}` row is left out"
        ),
    }
    if let Some(only) = &o.only {
        all.retain(|c| {
            c.label == BASE
                || only.contains(&c.label)
                || (c.label == EXAMPLE_NO_STATS_ROW && only.iter().any(|s| s == EXAMPLE_ROW))
        });
    }
    all
}

/// Where the `tcp_echo` built without the `stats` feature is kept, under
/// the binaries' directory.
const NO_STATS_BINARY: &str = "examples/tcp_echo-nostats";

/// The `tcp_echo` example binary, built here first when its source exists.
fn tcp_echo(o: &Options, bin_dir: &Path) -> Option<PathBuf> {
    let root = workspace_root();
    if !root.join("examples/tcp_echo.rs").exists() {
        return None;
    }
    if o.build {
        eprintln!("building the tcp_echo example without the stats feature ...");
        let path = bin_dir.join("examples/tcp_echo");
        if cargo_build(bin_dir, &["--example", "tcp_echo", "--no-default-features"]) {
            if let Err(e) = std::fs::copy(&path, bin_dir.join(NO_STATS_BINARY)) {
                eprintln!("note: keeping the tcp_echo built without stats failed: {e}");
            }
        } else {
            eprintln!("note: `cargo build --example tcp_echo --no-default-features` failed");
        }
        eprintln!("building the tcp_echo example ...");
        if !cargo_build(bin_dir, &["--example", "tcp_echo"]) {
            eprintln!("note: `cargo build --release --example tcp_echo` failed");
            return None;
        }
    }
    let path = bin_dir.join("examples/tcp_echo");
    path.exists().then_some(path)
}

pub(crate) fn main() -> Result<(), Box<dyn Error>> {
    let mut o = options()?;
    if let Some(path) = o.from_raw.clone() {
        // Only the table and the chart, from the runs of an earlier run.
        let results = read_raw(&mut o, &path)?;
        return present(&o, &results);
    }
    raise_nofile_limit();
    let bin_dir = std::env::current_exe()?
        .parent()
        .ok_or("no directory for the running binary")?
        .to_path_buf();
    let loadgen = bin_dir.join("loadgen");
    // The servers and the load generator, never stale.
    if o.build && !cargo_build(&bin_dir, &["-p", "sockmux-bench", "--bins"]) {
        eprintln!("note: building the benchmark binaries failed; using what is there");
    }
    for needed in [&loadgen, &bin_dir.join("echo_server")] {
        if !needed.exists() {
            return Err(format!(
                "{} is missing: build with `cargo build --release -p sockmux-bench`",
                needed.display()
            )
            .into());
        }
    }
    let contenders = contenders(&o, &bin_dir);
    if o.pin
        && contenders
            .iter()
            .any(|c| MULTI_THREADED.contains(&c.label.as_str()))
    {
        eprintln!(
            "note: {MULTI_THREADED:?} run more than one thread; pinned to core {SERVER_CORE} \
             they share one core: add --no-pin to measure them (see docs/scaling.md)"
        );
    }
    if o.counts {
        run_counts(&o, &contenders, loadgen)
    } else if o.fairness {
        run_fairness(&o, &contenders, &loadgen)
    } else {
        run_timed(&o, &contenders, &loadgen)
    }
}

fn run_timed(o: &Options, contenders: &[Contender], loadgen: &Path) -> Result<(), Box<dyn Error>> {
    let cases: Vec<Case> = o
        .conns
        .iter()
        .flat_map(|&conns| o.sizes.iter().map(move |&size| Case { conns, size }))
        .collect();
    let labels = contenders.iter().map(|c| c.label.clone()).collect();
    let mut results = Results::new(labels, cases.clone());
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
    let total = o.reps * cases.len() * contenders.len();
    eprintln!(
        "{total} runs of {:.1} s + {:.1} s warm-up: about {:.0} min",
        o.secs,
        o.warmup,
        total as f64 * (o.secs + o.warmup + 0.5) / 60.0
    );
    let mut raw = match &o.raw {
        Some(path) => {
            let mut file = std::fs::File::create(path)?;
            writeln!(
                file,
                "# reps={} secs={} warmup={} pin={}",
                o.reps, o.secs, o.warmup, o.pin
            )?;
            Some(file)
        }
        None => None,
    };
    let mut done = 0;
    for rep in 0..o.reps {
        for (ci, &case) in cases.iter().enumerate() {
            // Rotate the order, so no server always runs first or last.
            for k in 0..contenders.len() {
                let contender = &contenders[(k + rep + ci) % contenders.len()];
                done += 1;
                let server = runner::start(contender, &launch)?;
                let args = vec![
                    "--addr".into(),
                    server.addr.to_string(),
                    "--conns".into(),
                    case.conns.to_string(),
                    "--size".into(),
                    case.size.to_string(),
                    "--secs".into(),
                    o.secs.to_string(),
                    "--warmup".into(),
                    o.warmup.to_string(),
                    "--pid".into(),
                    server.pid().to_string(),
                ];
                let loaded = runner::load(loadgen, client_core, &args);
                let tail = server.stderr_tail();
                server.stop(Duration::from_secs(2))?;
                match loaded {
                    Ok(report) => {
                        eprintln!(
                            "[{done}/{total}] {:>4} conns × {:>4} B  {:<14} {:>8.0} req/s  p99 {:>7.0} µs  {:>6.2} µs CPU/req",
                            case.conns,
                            case.size,
                            contender.label,
                            report.requests_per_sec(),
                            report.p99.as_secs_f64() * 1e6,
                            report.cpu_us_per_request().unwrap_or(f64::NAN)
                        );
                        if let Some(file) = &mut raw {
                            writeln!(
                                file,
                                "{}\t{}\t{}\t{report}",
                                contender.label, case.conns, case.size
                            )?;
                        }
                        results.add(&contender.label, case, report);
                    }
                    Err(e) => eprintln!(
                        "[{done}/{total}] {} conns × {} B {}: FAILED: {e}\n{tail}",
                        case.conns, case.size, contender.label
                    ),
                }
            }
        }
    }
    present(o, &results)
}

/// The fairness benchmark: per server, F flood connections next to one
/// timed ping-pong connection; one table, the p99 as a ratio to mio's.
fn run_fairness(
    o: &Options,
    contenders: &[Contender],
    loadgen: &Path,
) -> Result<(), Box<dyn Error>> {
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
    // The load bounds its own waits (no progress for STALL ends it); this
    // bounds the process in case it does not.
    let limit = Duration::from_secs_f64(o.warmup + o.secs) + 3 * fairness::STALL;
    let total = o.reps * contenders.len();
    eprintln!(
        "{total} fairness runs of {:.1} s + {:.1} s warm-up ({} flood connection{} + 1 ping-pong)",
        o.secs,
        o.warmup,
        o.floods,
        if o.floods == 1 { "" } else { "s" }
    );
    let mut rows: Vec<(String, Vec<FairnessReport>)> = contenders
        .iter()
        .map(|c| (c.label.clone(), Vec::new()))
        .collect();
    let mut done = 0;
    for rep in 0..o.reps {
        for k in 0..contenders.len() {
            let index = (k + rep) % contenders.len();
            let contender = &contenders[index];
            done += 1;
            let server = runner::start(contender, &launch)?;
            let args = vec![
                "--addr".into(),
                server.addr.to_string(),
                "--flood".into(),
                o.floods.to_string(),
                "--ping".into(),
                "--size".into(),
                "64".into(),
                "--secs".into(),
                o.secs.to_string(),
                "--warmup".into(),
                o.warmup.to_string(),
            ];
            let loaded = runner::fairness(loadgen, client_core, &args, limit);
            let tail = server.stderr_tail();
            server.stop(Duration::from_secs(2))?;
            let report = loaded.map_err(|e| {
                format!(
                    "fairness, server `{}`: {e}{}{tail}",
                    contender.label,
                    if tail.is_empty() {
                        ""
                    } else {
                        "\nits stderr:\n"
                    }
                )
            })?;
            eprintln!(
                "[{done}/{total}] {:<13} {:>7} round trips  p50 {:>6.0} µs  p99 {:>8.0} µs  max {:>8.0} µs  flood {:>6.0} MiB/s  checksum {}",
                contender.label,
                report.round_trips,
                report.p50.as_secs_f64() * 1e6,
                report.p99.as_secs_f64() * 1e6,
                report.max.as_secs_f64() * 1e6,
                report.flood_mib_per_sec(),
                if report.checksum_ok { "ok" } else { "MISMATCH" }
            );
            rows[index].1.push(report);
        }
    }
    let mut text = format!(
        "Fairness: {} flood connection{} (64 KiB writes, echo read back in another thread, \
         FNV-1a of sent and received bytes compared) next to one 64-byte ping-pong connection \
         (TCP_NODELAY), server pinned to core {SERVER_CORE} and load generator to core {CLIENT_CORE}{}; \
         {} × {:.1} s after {:.1} s warm-up, medians; p99 ×mio is the ratio to `{BASE}` in the same run.\n\n",
        o.floods,
        if o.floods == 1 { "" } else { "s" },
        if o.pin { "" } else { " (not pinned)" },
        o.reps,
        o.secs,
        o.warmup,
    );
    text.push_str(&fairness::fairness_table(&rows));
    println!("{text}");
    if let Some(path) = &o.table {
        std::fs::write(path, &text)?;
        eprintln!("table written to {}", path.display());
    }
    Ok(())
}

/// Reads the runs `--raw` wrote, and the settings they were made with.
fn read_raw(o: &mut Options, path: &Path) -> Result<Results, Box<dyn Error>> {
    let text = std::fs::read_to_string(path)?;
    let (mut labels, mut cases) = (Vec::<String>::new(), Vec::<Case>::new());
    let mut runs = Vec::new();
    for line in text.lines() {
        if let Some(settings) = line.strip_prefix("# ") {
            for kv in settings.split_whitespace() {
                match kv.split_once('=') {
                    Some(("reps", v)) => o.reps = v.parse()?,
                    Some(("secs", v)) => o.secs = v.parse()?,
                    Some(("warmup", v)) => o.warmup = v.parse()?,
                    Some(("pin", v)) => o.pin = v.parse()?,
                    _ => {}
                }
            }
            continue;
        }
        let mut fields = line.splitn(4, '\t');
        let (Some(label), Some(conns), Some(size), Some(report)) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err(format!("{}: bad line {line:?}", path.display()).into());
        };
        let case = Case {
            conns: conns.parse()?,
            size: size.parse()?,
        };
        if !labels.iter().any(|l| l == label) {
            labels.push(label.to_string());
        }
        if !cases.contains(&case) {
            cases.push(case);
        }
        runs.push((label.to_string(), case, LoadReport::parse(report)?));
    }
    // The baseline first, then the order of the table.
    let order = [
        BASE,
        BASE_AGAIN,
        "tokio",
        "calloop",
        TABLE_ROW,
        EXAMPLE_ROW,
        "tokio-mt2",
        EXAMPLE_2_ROW,
        EXAMPLE_2_HAND_OFF_ROW,
    ];
    labels.sort_by_key(|l| order.iter().position(|o| o == l).unwrap_or(order.len()));
    cases.sort_by_key(|c| (c.conns, c.size));
    let mut results = Results::new(labels, cases);
    for (label, case, report) in runs {
        results.add(&label, case, report);
    }
    Ok(results)
}

/// Prints the table, the A/A check and the bars; writes the table and the
/// chart where asked.
fn present(o: &Options, results: &Results) -> Result<(), Box<dyn Error>> {
    let mut text = format!(
        "TCP echo on loopback, server pinned to core {SERVER_CORE} and load generator to core {CLIENT_CORE}{}; \
         {} × {:.1} s after {:.1} s warm-up, medians; ×base is the ratio to `{BASE}` in the same run.\n\n",
        if o.pin { "" } else { " (not pinned)" },
        o.reps,
        o.secs,
        o.warmup,
    );
    text.push_str(&results.table());
    let aa = results.aa_ratios(BASE_AGAIN);
    if !aa.is_empty() {
        let worst = aa.iter().map(|(_, r)| (r - 1.0).abs()).fold(0.0, f64::max);
        text.push_str(&format!(
            "\nA/A check (`{BASE_AGAIN}` / `{BASE}`, server CPU per request): {}; worst {:.1}%{}\n",
            aa.iter()
                .map(|(c, r)| format!("{}×{} B {r:.3}", c.conns, c.size))
                .collect::<Vec<_>>()
                .join(", "),
            worst * 100.0,
            if worst > 0.05 {
                " — more than 5%: the run was disturbed, repeat it"
            } else {
                ""
            }
        ));
    }
    text.push_str(&bars(results));
    println!("{text}");
    if let Some(path) = &o.table {
        std::fs::write(path, &text)?;
        eprintln!("table written to {}", path.display());
    }
    if let Some(path) = &o.chart {
        let title = format!(
            "TCP echo, loopback, 2 cores: medians of {} × {} s (lower is better)",
            o.reps, o.secs
        );
        write_chart(results, &title, path)?;
        eprintln!("chart written to {}", path.display());
    }
    Ok(())
}

/// The bars (docs/benchmarks.md, "The bars") that the timed run measures,
/// per sockmux row.
fn bars(results: &Results) -> String {
    let mut out = String::from(
        "\nBars (server CPU/request ≤ mio and ≤ tokio; peak RSS at 1000 conns ≤ 1.10× mio):\n",
    );
    for row in [TABLE_ROW, EXAMPLE_ROW] {
        for &case in &results.cases {
            let Some(s) = results.summary(row, case) else {
                continue;
            };
            for (what, pick) in [
                (
                    "CPU",
                    (|s: &Summary| s.cpu_us) as fn(&Summary) -> Option<f64>,
                ),
                ("min CPU", |s: &Summary| s.cpu_min_us),
            ] {
                let cpu = |label: &str| results.summary(label, case).as_ref().and_then(pick);
                if let (Some(me), Some(mio), Some(tokio)) = (pick(&s), cpu(BASE), cpu("tokio")) {
                    let ok = me <= mio && me <= tokio;
                    out.push_str(&format!(
                        "  {row:<13} {:>4}×{:<4} {what:<7} {me:.2} µs vs mio {mio:.2} ({:.2}×), tokio {tokio:.2} ({:.2}×): {}\n",
                        case.conns,
                        case.size,
                        me / mio,
                        me / tokio,
                        if ok { "met" } else { "NOT met" }
                    ));
                }
            }
            if case.conns >= 1000 {
                let rss = |label: &str| results.summary(label, case).and_then(|s| s.rss_mib);
                if let (Some(me), Some(mio)) = (rss(row), rss(BASE)) {
                    out.push_str(&format!(
                        "  {row:<13} {:>4}×{:<4} peak RSS {me:.2} MiB vs mio {mio:.2} ({:.2}×): {}\n",
                        case.conns,
                        case.size,
                        me / mio,
                        if me <= mio * 1.10 { "met" } else { "NOT met" }
                    ));
                }
            }
        }
    }
    out
}

fn run_counts(
    o: &Options,
    contenders: &[Contender],
    loadgen: PathBuf,
) -> Result<(), Box<dyn Error>> {
    let scratch = std::env::temp_dir().join(format!("sockmux-counts-{}", std::process::id()));
    std::fs::create_dir_all(&scratch)?;
    let (server_core, client_core) = if o.pin {
        (Some(SERVER_CORE), Some(CLIENT_CORE))
    } else {
        (None, None)
    };
    let setup = CountSetup {
        loadgen,
        server_core,
        client_core,
        size: 64,
        requests: if o.quick {
            (2_000, 6_000)
        } else {
            (10_000, 40_000)
        },
        scratch: scratch.clone(),
    };
    let counter = SyscallCounter::detect();
    let valgrind = counts::have_valgrind();
    if !valgrind {
        eprintln!(
            "note: valgrind not found: no instruction counts (ci/bench-counts.sh installs it)"
        );
    }
    if counter.is_none() {
        eprintln!("note: neither perf nor strace works here: no system call counts");
    }
    // Contenders without the A/A copy: counts do not drift.
    let rows: Vec<&Contender> = contenders
        .iter()
        .filter(|c| c.label != BASE_AGAIN)
        .collect();
    let mut figures: Vec<[Option<f64>; 3]> = Vec::new();
    for c in &rows {
        let fmt = |r: &std::io::Result<f64>| match r {
            Ok(v) => format!("{v:.2}"),
            Err(e) => format!("failed: {e}"),
        };
        let ir = valgrind.then(|| counts::instructions_per_request(c, &setup, 50));
        if let Some(ir) = &ir {
            eprintln!(
                "{:<13} instructions/request, 50 conns: {}",
                c.label,
                fmt(ir)
            );
        }
        let mut sys = [None, None];
        if let Some(counter) = counter {
            for (i, conns) in [50, 1].into_iter().enumerate() {
                let r = counts::syscalls_per_request(c, &setup, counter, conns);
                eprintln!(
                    "{:<13} syscalls/request, {conns} conns: {}",
                    c.label,
                    fmt(&r)
                );
                sys[i] = r.ok();
            }
        }
        figures.push([ir.and_then(Result::ok), sys[0], sys[1]]);
    }
    let _ = std::fs::remove_dir_all(&scratch);
    let base = figures.first().copied().unwrap_or([None; 3]);
    let cell = |v: Option<f64>, b: Option<f64>, digits: usize| match (v, b) {
        (Some(v), Some(b)) if b > 0.0 => format!("{v:.digits$} | {:.2}", v / b),
        (Some(v), _) => format!("{v:.digits$} | –"),
        _ => "– | –".into(),
    };
    let mut text = format!(
        "Counts over a fixed number of 64-byte requests (difference of {} and {} requests), \
         server on core {SERVER_CORE}; instructions by callgrind (user space), system calls by {}.\n\n\
         | server | instructions/request, 50 conns | ×mio | syscalls/request, 50 conns | ×mio | syscalls/request, 1 conn | ×mio |\n\
         |---|---:|---:|---:|---:|---:|---:|\n",
        setup.requests.0,
        setup.requests.1,
        counter.map_or("nothing", SyscallCounter::name),
    );
    for (c, f) in rows.iter().zip(&figures) {
        text.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            c.label,
            cell(f[0], base[0], 0),
            cell(f[1], base[1], 2),
            cell(f[2], base[2], 2)
        ));
    }
    text.push_str(
        "\nBars (syscalls/request at 50 conns ≤ 2.05; instructions/request ≤ 1.25× mio):\n",
    );
    for (c, f) in rows.iter().zip(&figures) {
        if c.label != TABLE_ROW && c.label != EXAMPLE_ROW {
            continue;
        }
        if let Some(s) = f[1] {
            text.push_str(&format!(
                "  {:<13} syscalls/request {s:.3}: {}\n",
                c.label,
                if s <= 2.05 { "met" } else { "NOT met" }
            ));
        }
        if let (Some(i), Some(b)) = (f[0], base[0]) {
            text.push_str(&format!(
                "  {:<13} instructions/request {i:.0} = {:.2}× mio: {}\n",
                c.label,
                i / b,
                if i <= 1.25 * b { "met" } else { "NOT met" }
            ));
        }
    }
    let instructions = |label: &str| {
        rows.iter()
            .zip(&figures)
            .find(|(c, _)| c.label == label)
            .and_then(|(_, f)| f[0])
    };
    if let (Some(on), Some(off)) = (
        instructions(EXAMPLE_ROW),
        instructions(EXAMPLE_NO_STATS_ROW),
    ) {
        text.push_str(&format!(
            "\nThe stats feature (docs/observability.md): {off:.0} instructions/request \
             without it, {on:.0} with it: {:+.1}% (bar: at most +10%): {}\n",
            (on / off - 1.0) * 100.0,
            if on <= 1.10 * off { "met" } else { "NOT met" }
        ));
    }
    println!("{text}");
    if let Some(path) = &o.table {
        std::fs::write(path, &text)?;
    }
    Ok(())
}
