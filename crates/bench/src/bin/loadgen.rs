//! The load generator alone: N connections of S-byte ping-pong against one
//! echo server, one line of `key=value` figures on stdout.
//!
//! `cargo run --release -p sockmux-bench --bin loadgen -- --addr 127.0.0.1:PORT --conns 50 --size 64 --secs 5 --pid PID`
//!
//! With `--flood F --ping`, the fairness load instead: F connections
//! flooding 64 KiB writes (echo checked by checksum) next to one ping-pong
//! connection of `--size` bytes (default 64) whose round trips are timed.
//!
//! `cargo run --release -p sockmux-bench --bin loadgen -- --addr 127.0.0.1:PORT --flood 1 --ping --secs 4`

use std::time::Duration;

use sockmux_bench::{run_fairness, run_load, FairnessConfig, LoadConfig, Run};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut addr = None;
    let mut conns = 1;
    let mut size = 64;
    let mut warmup = Duration::from_secs(1);
    let mut run = Run::For(Duration::from_secs(5));
    let mut server_pid = None;
    let mut flood = None;
    let mut ping = false;
    let mut args = lexopt::Parser::from_env();
    while let Some(arg) = args.next()? {
        use lexopt::prelude::*;
        match arg {
            Long("addr") => addr = Some(args.value()?.parse()?),
            Long("conns") => conns = args.value()?.parse()?,
            Long("size") => size = args.value()?.parse()?,
            Long("secs") => run = Run::For(Duration::from_secs_f64(args.value()?.parse()?)),
            Long("warmup") => warmup = Duration::from_secs_f64(args.value()?.parse()?),
            Long("requests") => run = Run::Requests(args.value()?.parse()?),
            Long("pid") => server_pid = Some(args.value()?.parse()?),
            Long("flood") => flood = Some(args.value()?.parse()?),
            Long("ping") => ping = true,
            Long("help") => {
                println!(
                    "loadgen --addr HOST:PORT [--conns N] [--size BYTES] \
                     [--secs T [--warmup W] | --requests R] [--pid SERVER_PID]\n\
                     loadgen --addr HOST:PORT --flood F --ping [--size BYTES] [--secs T] [--warmup W]"
                );
                return Ok(());
            }
            _ => return Err(arg.unexpected().into()),
        }
    }
    let addr = addr.ok_or("--addr HOST:PORT is required")?;
    if flood.is_some() || ping {
        let (Some(floods), true) = (flood, ping) else {
            return Err("the fairness load takes both --flood F and --ping".into());
        };
        let Run::For(secs) = run else {
            return Err("the fairness load runs for --secs T, not --requests".into());
        };
        let report = run_fairness(&FairnessConfig {
            addr,
            floods,
            ping_size: size,
            warmup,
            secs,
        })?;
        println!("{report}");
        return Ok(());
    }
    sockmux_bench::raise_nofile_limit();
    let report = run_load(&LoadConfig {
        addr,
        conns,
        size,
        warmup,
        run,
        server_pid,
    })?;
    println!("{report}");
    Ok(())
}
