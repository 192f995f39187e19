//! An echo server for the benchmarks: prints `listening on ADDR` once bound,
//! then serves until killed.
//!
//! `cargo run --release -p sockmux-bench --bin echo_server -- --impl mio --port 0`

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use sockmux_bench::{bind_listener, Server};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut server = Server::Mio;
    let mut ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let mut port = 0u16;
    let mut args = lexopt::Parser::from_env();
    while let Some(arg) = args.next()? {
        use lexopt::prelude::*;
        match arg {
            Long("impl") => {
                let name = args.value()?.string()?;
                server = Server::from_name(&name).ok_or_else(|| {
                    format!("unknown --impl {name}: one of mio, tokio, calloop, sockmux-core, mio-short, mio-short-spent, tokio-mt2")
                })?;
            }
            Long("port") => port = args.value()?.parse()?,
            Long("addr") => ip = args.value()?.parse()?,
            Long("help") => {
                println!(
                    "echo_server [--impl mio|tokio|calloop|sockmux-core|mio-short|mio-short-spent|tokio-mt2] [--addr IP] [--port P]"
                );
                return Ok(());
            }
            _ => return Err(arg.unexpected().into()),
        }
    }
    let listener = bind_listener(SocketAddr::new(ip, port))?;
    println!("listening on {}", listener.local_addr()?);
    std::io::stdout().flush()?;
    server.serve(listener)?;
    Ok(())
}
