//! The raw mio HTTP/1.1 reference server of the protocol benchmark: prints
//! `listening on ADDR` once bound, then serves until killed.
//!
//! `cargo run --release -p sockmux-bench --bin http_server -- --port 0`

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use sockmux_bench::{bind_listener, serve_http_mio};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let mut port = 0u16;
    let mut args = lexopt::Parser::from_env();
    while let Some(arg) = args.next()? {
        use lexopt::prelude::*;
        match arg {
            Long("port") => port = args.value()?.parse()?,
            Long("addr") => ip = args.value()?.parse()?,
            Long("help") => {
                println!("http_server [--addr IP] [--port P]");
                return Ok(());
            }
            _ => return Err(arg.unexpected().into()),
        }
    }
    let listener = bind_listener(SocketAddr::new(ip, port))?;
    println!("listening on {}", listener.local_addr()?);
    std::io::stdout().flush()?;
    serve_http_mio(listener)?;
    Ok(())
}
