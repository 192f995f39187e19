//! What the server examples (`tcp_echo`, `udp_echo`, `chat`, `kv`, `http`)
//! share: the command line `[--addr ADDR] [--port PORT] [--help]`,
//! logging, and the exit codes (0 when done, 1 on an error, 2 for a bad
//! command line).

use std::io;
use std::process::ExitCode;

/// Parses the command line, initialises the logger and calls `run` with
/// the address to serve on (`127.0.0.1` and `default_port` unless given);
/// `usage` is printed for `--help` and after a bad argument.
pub(crate) fn main(
    name: &str,
    usage: &str,
    default_port: u16,
    run: impl FnOnce((&str, u16)) -> io::Result<()>,
) -> ExitCode {
    env_logger::init();
    let (addr, port) = match parse_args(default_port) {
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
    match run((addr.as_str(), port)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `Ok(None)` means `--help`.
fn parse_args(default_port: u16) -> Result<Option<(String, u16)>, lexopt::Error> {
    use lexopt::prelude::*;
    let (mut addr, mut port) = (String::from("127.0.0.1"), default_port);
    let mut parser = lexopt::Parser::from_env();
    while let Some(arg) = parser.next()? {
        match arg {
            Long("addr") | Short('a') => addr = parser.value()?.string()?,
            Long("port") | Short('p') => port = parser.value()?.parse()?,
            Long("help") | Short('h') => return Ok(None),
            _ => return Err(arg.unexpected()),
        }
    }
    Ok(Some((addr, port)))
}
