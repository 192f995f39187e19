//! What the server examples (`tcp_echo`, `udp_echo`, `chat`, `kv`, `http`)
//! share: the command line `[--addr ADDR] [--port PORT] [--help]` (and
//! `[--threads N] [--hand-off]` for those that can run several loops),
//! logging, and the exit codes (0 when done, 1 on an error, 2 for a bad
//! command line).

use std::io;
use std::process::ExitCode;

use sockmux::{Loops, Spread};

/// Parses the command line, initialises the logger and calls `run` with
/// the address to serve on (`127.0.0.1` and `default_port` unless given);
/// `usage` is printed for `--help` and after a bad argument.
#[allow(dead_code)] // each example uses this or `main_threaded`
pub(crate) fn main(
    name: &str,
    usage: &str,
    default_port: u16,
    run: impl FnOnce((&str, u16)) -> io::Result<()>,
) -> ExitCode {
    serve(name, usage, default_port, false, |addr, _| run(addr))
}

/// [`main`] for a server that can run several loops: `run` gets the
/// address and the [`Loops`] to run, `--threads N` of them (at least 1,
/// default 1), spreading connections by a hand-off with `--hand-off`
/// (else the platform's default: `SO_REUSEPORT` on Linux).
#[allow(dead_code)] // each example uses this or `main`
pub(crate) fn main_threaded(
    name: &str,
    usage: &str,
    default_port: u16,
    run: impl FnOnce((&str, u16), Loops) -> io::Result<()>,
) -> ExitCode {
    serve(name, usage, default_port, true, run)
}

fn serve(
    name: &str,
    usage: &str,
    default_port: u16,
    threaded: bool,
    run: impl FnOnce((&str, u16), Loops) -> io::Result<()>,
) -> ExitCode {
    env_logger::init();
    let Args {
        addr,
        port,
        threads,
        hand_off,
    } = match parse_args(default_port, threaded) {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{usage}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("{name}: {e}\n\n{usage}");
            return ExitCode::from(2);
        }
    };
    let mut loops = Loops::new(threads);
    if hand_off {
        loops = loops.spread(Spread::HandOff);
    }
    match run((addr.as_str(), port), loops) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: {e}");
            ExitCode::FAILURE
        }
    }
}

struct Args {
    addr: String,
    port: u16,
    threads: usize,
    hand_off: bool,
}

/// `Ok(None)` means `--help`; `--threads` and `--hand-off` only if
/// `threaded`.
fn parse_args(default_port: u16, threaded: bool) -> Result<Option<Args>, lexopt::Error> {
    use lexopt::prelude::*;
    let mut args = Args {
        addr: String::from("127.0.0.1"),
        port: default_port,
        threads: 1,
        hand_off: false,
    };
    let mut parser = lexopt::Parser::from_env();
    while let Some(arg) = parser.next()? {
        match arg {
            Long("addr") | Short('a') => args.addr = parser.value()?.string()?,
            Long("port") | Short('p') => args.port = parser.value()?.parse()?,
            Long("threads") | Short('t') if threaded => {
                args.threads = parser.value()?.parse()?;
                if args.threads == 0 {
                    return Err("--threads must be at least 1".into());
                }
            }
            Long("hand-off") if threaded => args.hand_off = true,
            Long("help") | Short('h') => return Ok(None),
            _ => return Err(arg.unexpected()),
        }
    }
    Ok(Some(args))
}
