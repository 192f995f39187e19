//! Worker threads send results into the event loop through a channel; the
//! loop wakes on each batch, prints the results and exits when all are in.
//! Nothing is shared but the channel: the loop's state stays single-threaded.
//!
//! ```text
//! cargo run --example waker
//! cargo run --example waker -- --workers 8 --jobs 100
//! ```

use std::io;
use std::process::ExitCode;
use std::sync::mpsc::TryRecvError;
use std::time::Duration;

use sockmux::{Event, Events, Sockets};

const USAGE: &str = "usage: waker [--workers N] [--jobs N]\n\n\
    Starts N worker threads (default 4), each sending N results (default 3) into the loop.";

fn main() -> ExitCode {
    env_logger::init();
    let (workers, jobs) = match parse_args() {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("waker: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(workers, jobs) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("waker: {e}");
            ExitCode::FAILURE
        }
    }
}

fn parse_args() -> Result<Option<(u32, u32)>, lexopt::Error> {
    use lexopt::prelude::*;
    let (mut workers, mut jobs) = (4, 3);
    let mut parser = lexopt::Parser::from_env();
    while let Some(arg) = parser.next()? {
        match arg {
            Long("workers") => workers = parser.value()?.parse()?,
            Long("jobs") => jobs = parser.value()?.parse()?,
            Long("help") | Short('h') => return Ok(None),
            _ => return Err(arg.unexpected()),
        }
    }
    Ok(Some((workers, jobs)))
}

/// What a worker sends home.
#[derive(Debug)]
struct Done {
    worker: u32,
    job: u32,
    result: u64,
}

fn run(workers: u32, jobs: u32) -> io::Result<()> {
    let mut sockets = Sockets::new()?;
    let (tx, rx) = sockets.channel::<Done>()?;
    let handles: Vec<_> = (0..workers)
        .map(|worker| {
            let tx = tx.clone();
            std::thread::spawn(move || -> io::Result<()> {
                for job in 0..jobs {
                    // Some work: the sum of the first (worker + job) * 1000 squares.
                    let n = u64::from((worker + 1) * 1000 + job);
                    let result = (1..=n).map(|i| i * i).sum();
                    tx.send(Done {
                        worker,
                        job,
                        result,
                    })?;
                }
                Ok(())
            })
        })
        .collect();
    drop(tx); // the loop stops when every worker's sender is gone

    let mut events = Events::with_capacity(16);
    let mut received = 0u64;
    'run: loop {
        sockets.poll(&mut events, Some(Duration::from_secs(10)))?;
        if events.is_empty() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "no result in 10 s"));
        }
        for event in &events {
            if event == Event::Wake {
                loop {
                    match rx.try_recv() {
                        Ok(done) => {
                            received += 1;
                            println!("worker {} job {}: {}", done.worker, done.job, done.result);
                        }
                        Err(TryRecvError::Empty) => break,
                        Err(TryRecvError::Disconnected) => break 'run,
                    }
                }
            }
        }
    }
    for handle in handles {
        handle
            .join()
            .map_err(|_| io::Error::other("a worker panicked"))??;
    }
    println!("all {received} results in");
    Ok(())
}
