//! A Redis-protocol (RESP2) key-value server: `redis-cli` and
//! `redis-benchmark` talk to it as to a Redis server, for the commands it
//! has: `PING`, `ECHO`, `SET key value [EX s|PX ms] [NX|XX] [KEEPTTL]
//! [GET]`, `GET`, `DEL`, `EXISTS`, `INCR`, `DECR`, `INCRBY`, `DECRBY`,
//! `MSET`, `MGET`, `EXPIRE`, `PEXPIRE`, `TTL`, `PTTL`, `PERSIST`,
//! `DBSIZE`, `FLUSHDB`, `SELECT 0`, `QUIT`, and enough of `COMMAND`,
//! `CLIENT` and `CONFIG GET` for the Redis tools. Values are strings (no
//! lists, hashes or sets); errors are worded as Redis words them.
//!
//! The library's `Acceptor` registers a `Stream` for each connection, with
//! a `Decoder` of its own (`resp.rs`) that cuts whole commands, multibulk
//! (`*2\r\n$3\r\nGET\r\n$1\r\nk\r\n`, what clients send) or inline (`GET
//! k`, what a user types in telnet), out of the read buffer; the protocol
//! (`conn.rs`) reads the arguments from the borrowed frame without
//! allocating, runs the command against the store (`store.rs`) and writes
//! the reply. Pipelined commands are answered in order, and the replies
//! to the commands of one read are written together. A `GET` of an
//! existing key and a `SET` that overwrites a value of the same size
//! allocate nothing.
//!
//! Limits, as Redis's, are checked from the headers before anything is
//! buffered for them: a bulk string of at most 512 MiB, an inline command
//! of at most 64 KiB, at most 1024 × 1024 arguments (Redis: `INT_MAX`),
//! a whole command of at most 1 GiB (Redis's `client-query-buffer-limit`).
//! Input that breaks them, or is not RESP, gets Redis's error reply
//! (`-ERR Protocol error: invalid bulk length`) and the connection closes.
//! Keys with an expiry time are removed when a command finds them expired
//! and by a sweep every 100 ms. Ctrl-C (or SIGTERM) stops gracefully.
//!
//! With `--threads N` (N > 1) it runs N loops (`Loops`) that share
//! nothing (`shard.rs`): each owns the keys whose FNV-1a hash is its index
//! modulo N. A connection runs a command on its own loop's keys at once,
//! and forwards one on another loop's keys to that loop as a message; the
//! reply comes back the same way, and the replies go out in the order of
//! the commands. `MGET`, `MSET`, `DEL` and `EXISTS` on keys of several
//! loops are split and their replies combined (not atomically), `DBSIZE`
//! and `FLUSHDB` run on every loop. One loop, the default, is the plain
//! single-threaded server. docs/scaling.md has the design and its cost.
//!
//! With `--stats` it prints a line per second to the standard output
//! (per loop,
//! prefixed `[loop i]`, with several: connections, events/s, bytes/s in and out, how busy the loop was and
//! the 99th percentile of handler time, over the last second); with
//! `--stats-top`, also the ten busiest sockets every ten seconds; on
//! SIGUSR1 either prints that table at once (the `stats` feature, on by
//! default; `server/stats.rs`).
//!
//! ```text
//! cargo run --example kv                           # 127.0.0.1:6380
//! cargo run --example kv -- --addr 0.0.0.0 --port 0
//! cargo run --example kv -- --threads 2          # two loops, two shards
//! RUST_LOG=debug cargo run --example kv            # connections, errors, sweeps
//! cargo run --example kv -- --stats-top            # the live view
//! redis-cli -p 6380 set greeting hello             # then: redis-cli -p 6380
//! redis-benchmark -p 6380 -t ping,set,get,incr,mset -q
//! ```

use std::io;
use std::net::ToSocketAddrs;
use std::process::ExitCode;
use std::time::Duration;

use sockmux::{Dispatcher, Signal};

mod conn;
mod resp;
#[path = "../server/mod.rs"]
mod server;
mod shard;
mod store;

use server::View;

use store::Store;

const USAGE: &str = "usage: kv [--addr ADDR] [--port PORT] [--threads N] [--hand-off]\n\
    \x20         [--stats] [--stats-top]\n\n\
    A Redis-protocol key-value server on ADDR:PORT (default 127.0.0.1:6380; port 0 picks one).\n\
    N event loops on N threads (default 1), each owning a shard of the keys\n\
    (commands on another loop's keys are forwarded to it); with --hand-off,\n\
    loop 0 accepts and hands each connection to the least-loaded loop (the\n\
    default off Linux).\n\
    --stats prints a line per second per loop (connections, events/s, bytes/s,\n\
    loop busy, handler p99); --stats-top adds the ten busiest sockets every 10 s;\n\
    SIGUSR1 prints that table at once.";

/// How long a graceful stop may take.
const GRACE: Duration = Duration::from_secs(5);

/// Signals that stop the server gracefully.
const STOP_SIGNALS: [Signal; 2] = [Signal::Interrupt, Signal::Terminate];

fn main() -> ExitCode {
    server::main_threaded("kv", USAGE, 6380, |addr, loops, view| {
        if loops.count() == 1 {
            run(addr, view)
        } else {
            shard::run_loops(
                addr,
                loops,
                move |setup| view.install_in(setup),
                &STOP_SIGNALS,
                GRACE,
            )
        }
    })
}

fn run(addr: impl ToSocketAddrs, view: View) -> io::Result<()> {
    let mut dispatcher = Dispatcher::with_capacity(Store::new(), 1024)?;
    let listener = conn::listen(&mut dispatcher, addr)?;
    view.install(&mut dispatcher.sockets())?;
    eprintln!(
        "kv: listening on {}",
        dispatcher.sockets().local_addr(listener)?
    );
    dispatcher.stop_on_signals(&STOP_SIGNALS, GRACE)?;
    dispatcher.run()?;
    let store = dispatcher.state();
    eprintln!(
        "kv: stopped after {} commands, with {} keys",
        store.commands,
        store.len()
    );
    Ok(())
}
