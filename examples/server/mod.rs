//! What the server examples (`tcp_echo`, `udp_echo`, `chat`, `kv`, `http`)
//! share: the command line `[--addr ADDR] [--port PORT] [--stats]
//! [--stats-top] [--help]` (and `[--threads N] [--hand-off]` for those that
//! can run several loops), logging, the live view (`stats.rs`), and the
//! exit codes (0 when done, 1 on an error, 2 for a bad command line).
//!
//! The live view (feature `stats`, on by default): `--stats` prints a line
//! per second to the standard output, `--stats-top` also the table of the
//! ten busiest sockets every ten seconds; either prints the table at once
//! on SIGUSR1 (Unix). With several loops each prints its own, prefixed
//! `[loop i]`. Without the flags nothing of it runs. Built without the
//! feature, either flag is a bad command line that says to build with it.

use std::io;
use std::process::ExitCode;

use sockmux::{Loops, Registry, Setup, Spread};

#[cfg(feature = "stats")]
pub(crate) mod stats;

/// What the command line asked of the live view.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(not(feature = "stats"), allow(dead_code))] // only `Off` without it
pub(crate) enum View {
    /// No flag: nothing printed, nothing registered.
    #[default]
    Off,
    /// `--stats`: the line every second (the table on SIGUSR1).
    Line,
    /// `--stats-top`: the line, and the table every ten seconds.
    Top,
}

impl View {
    /// Starts the live view in the lone loop of `sockets`, if asked for.
    ///
    /// # Errors
    ///
    /// The OS error from opening the socket that holds its timer.
    #[allow(dead_code)] // examples with several loops may use `install_in`
    pub(crate) fn install<S>(self, sockets: &mut Registry<'_, S>) -> io::Result<()> {
        self.install_as(sockets, None)
    }

    /// Starts the live view in the loop `setup` prepares, if asked for;
    /// with several loops, its lines are prefixed `[loop i]`.
    ///
    /// # Errors
    ///
    /// As [`View::install`].
    #[allow(dead_code)] // examples with one loop use `install`
    pub(crate) fn install_in<S: 'static, M: 'static>(
        self,
        setup: &mut Setup<'_, S, M>,
    ) -> io::Result<()> {
        let label = (setup.count() > 1).then(|| setup.index());
        self.install_as(&mut setup.sockets(), label)
    }

    #[cfg(feature = "stats")]
    fn install_as<S>(self, sockets: &mut Registry<'_, S>, label: Option<usize>) -> io::Result<()> {
        match self {
            View::Off => Ok(()),
            View::Line => stats::Live::install(sockets, label, false),
            View::Top => stats::Live::install(sockets, label, true),
        }
    }

    #[cfg(not(feature = "stats"))]
    fn install_as<S>(self, _: &mut Registry<'_, S>, _: Option<usize>) -> io::Result<()> {
        Ok(())
    }
}

/// Parses the command line, initialises the logger and calls `run` with
/// the address to serve on (`127.0.0.1` and `default_port` unless given)
/// and the [`View`] asked for; `usage` is printed for `--help` and after a
/// bad argument.
#[allow(dead_code)] // each example uses this or `main_threaded`
pub(crate) fn main(
    name: &str,
    usage: &str,
    default_port: u16,
    run: impl FnOnce((&str, u16), View) -> io::Result<()>,
) -> ExitCode {
    serve(name, usage, default_port, false, |addr, _, view| {
        run(addr, view)
    })
}

/// [`main`] for a server that can run several loops: `run` gets the
/// address and the [`Loops`] to run, `--threads N` of them (at least 1,
/// default 1), spreading connections by a hand-off with `--hand-off`
/// (else the platform's default: `SO_REUSEPORT` on Linux), and the
/// [`View`] asked for.
#[allow(dead_code)] // each example uses this or `main`
pub(crate) fn main_threaded(
    name: &str,
    usage: &str,
    default_port: u16,
    run: impl FnOnce((&str, u16), Loops, View) -> io::Result<()>,
) -> ExitCode {
    serve(name, usage, default_port, true, run)
}

fn serve(
    name: &str,
    usage: &str,
    default_port: u16,
    threaded: bool,
    run: impl FnOnce((&str, u16), Loops, View) -> io::Result<()>,
) -> ExitCode {
    env_logger::init();
    let Args {
        addr,
        port,
        threads,
        hand_off,
        view,
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
    match run((addr.as_str(), port), loops, view) {
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
    view: View,
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
        view: View::Off,
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
            Long("stats") => args.view = args.view.max_with(View::Line)?,
            Long("stats-top") => args.view = args.view.max_with(View::Top)?,
            Long("help") | Short('h') => return Ok(None),
            _ => return Err(arg.unexpected()),
        }
    }
    Ok(Some(args))
}

impl View {
    /// The view of `self` and `other` together (`--stats --stats-top` is
    /// `--stats-top`); an error without the `stats` feature.
    fn max_with(self, other: View) -> Result<View, lexopt::Error> {
        if cfg!(not(feature = "stats")) {
            return Err(
                "--stats and --stats-top need the `stats` feature, which this build \
                 lacks: build with it (it is on by default; drop --no-default-features, or \
                 add --features stats)"
                    .into(),
            );
        }
        Ok(if self == View::Top { self } else { other })
    }
}
