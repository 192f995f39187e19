//! Timers in the event loop: a periodic tick every 200 ms and a one-shot
//! deadline after one second that ends the program. Timer events are matched
//! like socket events, by the id the table handed out.
//!
//! ```text
//! cargo run --example timers
//! cargo run --example timers -- --period-ms 50 --run-ms 300
//! ```

use std::io;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use sockmux::{Event, Events, Sockets};

const USAGE: &str = "usage: timers [--period-ms N] [--run-ms N]\n\n\
    Prints a tick every N ms (default 200) until a one-shot deadline (default 1000 ms).";

fn main() -> ExitCode {
    env_logger::init();
    let (period, run_for) = match parse_args() {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("timers: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(period, run_for) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("timers: {e}");
            ExitCode::FAILURE
        }
    }
}

fn parse_args() -> Result<Option<(Duration, Duration)>, lexopt::Error> {
    use lexopt::prelude::*;
    let (mut period, mut run_for) = (200u64, 1000u64);
    let mut parser = lexopt::Parser::from_env();
    while let Some(arg) = parser.next()? {
        match arg {
            Long("period-ms") => period = parser.value()?.parse()?,
            Long("run-ms") => run_for = parser.value()?.parse()?,
            Long("help") | Short('h') => return Ok(None),
            _ => return Err(arg.unexpected()),
        }
    }
    if period == 0 {
        return Err("--period-ms must be at least 1".into());
    }
    Ok(Some((
        Duration::from_millis(period),
        Duration::from_millis(run_for),
    )))
}

fn run(period: Duration, run_for: Duration) -> io::Result<()> {
    let mut sockets = Sockets::new()?;
    let start = Instant::now();
    let tick = sockets.timer_every(period);
    let deadline = sockets.timer_after(run_for);
    let mut events = Events::with_capacity(16);
    let mut ticks = 0u32;
    loop {
        // No timeout: the nearest timer bounds the wait.
        sockets.poll(&mut events, None)?;
        for event in &events {
            match event {
                Event::Timer(t) if t == tick => {
                    ticks += 1;
                    println!("tick {ticks} at {:?}", start.elapsed());
                }
                Event::Timer(t) if t == deadline => {
                    sockets.cancel_timer(tick);
                    println!("deadline at {:?}: {ticks} ticks", start.elapsed());
                    return Ok(());
                }
                _ => {}
            }
        }
    }
}
