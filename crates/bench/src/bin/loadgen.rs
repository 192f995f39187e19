//! The load generator alone: N connections of S-byte ping-pong against one
//! echo server, one line of `key=value` figures on stdout.
//!
//! `cargo run --release -p sockmux-bench --bin loadgen -- --addr 127.0.0.1:PORT --conns 50 --size 64 --secs 5 --pid PID`

use std::time::Duration;

use sockmux_bench::{run_load, LoadConfig, Run};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut addr = None;
    let mut conns = 1;
    let mut size = 64;
    let mut warmup = Duration::from_secs(1);
    let mut run = Run::For(Duration::from_secs(5));
    let mut server_pid = None;
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
            Long("help") => {
                println!(
                    "loadgen --addr HOST:PORT [--conns N] [--size BYTES] \
                     [--secs T [--warmup W] | --requests R] [--pid SERVER_PID]"
                );
                return Ok(());
            }
            _ => return Err(arg.unexpected().into()),
        }
    }
    let addr = addr.ok_or("--addr HOST:PORT is required")?;
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
