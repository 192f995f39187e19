//! The `kv` example on two loops (`--threads 2 --hand-off`: loop 0 hands
//! the connections out, so two connections opened one after the other are
//! on different loops), each owning a shard of the keys: what one
//! connection sets, the other reads; a pipeline over both shards is
//! answered in order; commands on keys of both shards (`MGET`, `MSET`,
//! `DEL`, `EXISTS`) and on all keys (`DBSIZE`, `FLUSHDB`) give one
//! combined reply; more commands in flight than a connection may hold are
//! all answered. (tests/kv_real_clients.rs runs `redis-benchmark` against
//! it.)

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread;

mod util;

#[path = "../examples/kv/conn.rs"]
mod conn;
#[path = "../examples/kv/resp.rs"]
mod resp;
#[path = "../examples/kv/shard.rs"]
mod shard;
#[path = "../examples/kv/store.rs"]
mod store;

use shard::{shard_of, MAX_IN_FLIGHT};
use util::example::Server;
use util::LIMIT;

/// `kv --threads 2 --hand-off` on a loopback port.
fn start() -> Server {
    let mut cmd = Server::command("kv", "warn");
    cmd.args(["--threads", "2", "--hand-off"]);
    Server::spawn("kv", &mut cmd)
}

/// A command as clients send it: a multibulk array of bulk strings.
fn cmd(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n{arg}\r\n", arg.len()).as_bytes());
    }
    out
}

/// A bulk string reply.
fn bulk(s: &str) -> String {
    format!("${}\r\n{s}\r\n", s.len())
}

/// A connection, with a PING answered (so the hand-off has counted it
/// before the next connection comes).
#[track_caller]
fn connect(server: &Server) -> TcpStream {
    let mut conn = TcpStream::connect(server.addr()).unwrap();
    conn.set_read_timeout(Some(LIMIT)).unwrap();
    conn.set_write_timeout(Some(LIMIT)).unwrap();
    check(&mut conn, &cmd(&["PING"]), "+PONG\r\n");
    conn
}

/// Sends `request` and checks that the reply is exactly `want`.
#[track_caller]
fn check(conn: &mut TcpStream, request: &[u8], want: &str) {
    conn.write_all(request).unwrap();
    let mut got = vec![0; want.len()];
    conn.read_exact(&mut got)
        .unwrap_or_else(|e| panic!("reading {} bytes: {e}", want.len()));
    assert_eq!(
        String::from_utf8_lossy(&got),
        want,
        "reply to {:?}",
        String::from_utf8_lossy(request)
    );
}

/// Keys `prefix0`, `prefix1`... up to `n`, checked to fall in both shards.
fn keys(prefix: &str, n: usize) -> Vec<String> {
    let keys: Vec<String> = (0..n).map(|i| format!("{prefix}{i}")).collect();
    for shard in 0..2 {
        assert!(
            keys.iter().any(|k| shard_of(k.as_bytes(), 2) == shard),
            "no key of shard {shard}"
        );
    }
    keys
}

#[test]
fn a_key_set_on_one_loop_is_read_on_the_other() {
    let server = start();
    let mut a = connect(&server);
    let mut b = connect(&server);
    for (i, key) in keys("k", 20).iter().enumerate() {
        let value = format!("v{i}");
        check(&mut a, &cmd(&["SET", key, &value]), "+OK\r\n");
        check(&mut b, &cmd(&["GET", key]), &bulk(&value));
        check(&mut b, &cmd(&["SET", key, "w"]), "+OK\r\n");
        check(&mut a, &cmd(&["GET", key]), &bulk("w"));
    }
    drop((a, b));
    server.stop();
}

#[test]
fn a_pipeline_of_200_mixed_commands_over_both_shards_is_answered_in_order() {
    let server = start();
    let mut other = connect(&server);
    let mut conn = connect(&server);
    let keys = keys("p", 50);
    // The model the replies are computed from.
    let mut model: HashMap<String, String> = HashMap::new();
    let (mut request, mut want) = (Vec::new(), String::new());
    for i in 0..200 {
        let key = &keys[(i * 7) % keys.len()];
        match i % 8 {
            0 | 1 => {
                let value = format!("v{i}");
                request.extend(cmd(&["SET", key, &value]));
                want.push_str("+OK\r\n");
                model.insert(key.clone(), value);
            }
            2 => {
                request.extend(cmd(&["GET", key]));
                want.push_str(&model.get(key).map_or("$-1\r\n".into(), |v| bulk(v)));
            }
            3 => {
                let counter = format!("n{}", i % 5);
                let n: i64 = model.get(&counter).map_or(0, |v| v.parse().unwrap()) + 1;
                request.extend(cmd(&["INCR", &counter]));
                want.push_str(&format!(":{n}\r\n"));
                model.insert(counter, n.to_string());
            }
            4 => {
                request.extend(cmd(&["PING"]));
                want.push_str("+PONG\r\n");
            }
            5 => {
                let three: Vec<&str> = (0..3)
                    .map(|j| keys[(i + j * 11) % keys.len()].as_str())
                    .collect();
                request.extend(cmd(&["MGET", three[0], three[1], three[2]]));
                want.push_str("*3\r\n");
                for k in three {
                    want.push_str(&model.get(k).map_or("$-1\r\n".into(), |v| bulk(v)));
                }
            }
            6 => {
                request.extend(cmd(&["DEL", key]));
                want.push_str(&format!(":{}\r\n", i64::from(model.remove(key).is_some())));
            }
            _ => {
                let two = [key.as_str(), keys[(i + 1) % keys.len()].as_str()];
                request.extend(cmd(&["EXISTS", two[0], two[1]]));
                let n = two.iter().filter(|k| model.contains_key(**k)).count();
                want.push_str(&format!(":{n}\r\n"));
            }
        }
    }
    request.extend(cmd(&["DBSIZE"]));
    want.push_str(&format!(":{}\r\n", model.len()));
    check(&mut conn, &request, &want);
    // The other loop sees the same.
    check(
        &mut other,
        &cmd(&["DBSIZE"]),
        &format!(":{}\r\n", model.len()),
    );
    drop((conn, other));
    server.stop();
}

#[test]
fn incr_from_both_loops_adds_up() {
    let server = start();
    let conns = [connect(&server), connect(&server)];
    let clients: Vec<_> = conns
        .into_iter()
        .map(|mut conn| {
            thread::spawn(move || {
                let mut seen = Vec::new();
                for _ in 0..10 {
                    let request: Vec<u8> = (0..50).flat_map(|_| cmd(&["INCR", "shared"])).collect();
                    conn.write_all(&request).unwrap();
                    for _ in 0..50 {
                        seen.push(read_integer(&mut conn));
                    }
                }
                seen
            })
        })
        .collect();
    let mut all = Vec::new();
    for client in clients {
        let seen = client.join().unwrap();
        // Each connection's replies in order: increasing.
        assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
        all.extend(seen);
    }
    all.sort_unstable();
    assert_eq!(all, (1..=1000).collect::<Vec<i64>>());
    let mut conn = connect(&server);
    check(&mut conn, &cmd(&["GET", "shared"]), &bulk("1000"));
    drop(conn);
    server.stop();
}

/// Reads one `:N\r\n` reply.
#[track_caller]
fn read_integer(conn: &mut TcpStream) -> i64 {
    let mut line = Vec::new();
    let mut byte = [0];
    while !line.ends_with(b"\r\n") {
        conn.read_exact(&mut byte).unwrap();
        line.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&line);
    text.strip_prefix(':')
        .and_then(|n| n.trim_end().parse().ok())
        .unwrap_or_else(|| panic!("not an integer reply: {text:?}"))
}

#[test]
fn multi_key_and_whole_keyspace_commands_combine_the_shards() {
    let server = start();
    let mut a = connect(&server);
    let mut b = connect(&server);
    let keys = keys("m", 10);
    let mut mset = vec!["MSET"];
    for key in &keys {
        mset.extend([key.as_str(), key.as_str()]);
    }
    check(&mut a, &cmd(&mset), "+OK\r\n");
    check(&mut b, &cmd(&["DBSIZE"]), ":10\r\n");
    let mut mget = vec!["MGET", "missing"];
    mget.extend(keys.iter().map(String::as_str));
    let mut want = "*11\r\n$-1\r\n".to_string();
    for key in &keys {
        want.push_str(&bulk(key));
    }
    check(&mut b, &cmd(&mget), &want);
    let mut exists = vec!["EXISTS", "missing"];
    exists.extend(keys.iter().map(String::as_str));
    exists.push(&keys[0]); // counted twice, as Redis does
    check(&mut a, &cmd(&exists), ":11\r\n");
    let mut del = vec!["DEL", "missing"];
    del.extend(keys[..6].iter().map(String::as_str));
    check(&mut b, &cmd(&del), ":6\r\n");
    check(&mut a, &cmd(&["DBSIZE"]), ":4\r\n");
    // Errors are answered whole, as by one server.
    check(
        &mut a,
        &cmd(&["MSET", "x"]),
        "-ERR wrong number of arguments for 'mset' command\r\n",
    );
    check(
        &mut a,
        &cmd(&["DBSIZE", "x"]),
        "-ERR wrong number of arguments for 'dbsize' command\r\n",
    );
    check(&mut b, &cmd(&["FLUSHDB"]), "+OK\r\n");
    check(&mut a, &cmd(&["DBSIZE"]), ":0\r\n");
    check(
        &mut b,
        &cmd(&mget),
        &format!("*11\r\n{}", "$-1\r\n".repeat(11)),
    );
    drop((a, b));
    server.stop();
}

#[test]
fn more_commands_in_flight_than_a_connection_holds_are_all_answered() {
    let server = start();
    let mut conn = connect(&server);
    let keys = keys("f", 10);
    let count = MAX_IN_FLIGHT * 4;
    // Commands on both shards, from one connection: some wait on the
    // other loop, and the connection stops reading past the bound.
    let mut request = Vec::new();
    let mut want = String::new();
    for i in 0..count {
        let key = &keys[(i / 2) % keys.len()];
        if i % 2 == 0 {
            request.extend(cmd(&["SET", key, &i.to_string()]));
            want.push_str("+OK\r\n");
        } else {
            request.extend(cmd(&["GET", key]));
            want.push_str(&bulk(&(i - 1).to_string()));
        }
    }
    let mut writer = conn.try_clone().unwrap();
    let sender = thread::spawn(move || writer.write_all(&request));
    let mut got = vec![0; want.len()];
    conn.read_exact(&mut got).unwrap();
    sender.join().unwrap().unwrap();
    assert!(
        String::from_utf8_lossy(&got) == want,
        "replies out of order"
    );
    drop(conn);
    server.stop();
}

#[test]
fn replies_for_a_connection_that_closed_are_dropped() {
    let server = start();
    let keys = keys("c", 10);
    for _ in 0..20 {
        let mut conn = connect(&server);
        let request: Vec<u8> = (0..200)
            .flat_map(|i| cmd(&["INCR", &keys[i % keys.len()]]))
            .collect();
        conn.write_all(&request).unwrap();
        // Closed before the replies, some from the other loop, come back.
    }
    // The server still serves, on both loops, and stops cleanly.
    let mut a = connect(&server);
    let mut b = connect(&server);
    for key in &keys {
        check(&mut a, &cmd(&["SET", key, "x"]), "+OK\r\n");
        check(&mut b, &cmd(&["GET", key]), &bulk("x"));
    }
    drop((a, b));
    server.stop();
}

#[test]
fn a_client_that_ends_its_stream_gets_every_reply_first() {
    let server = start();
    let _first = connect(&server); // so the next is on the other loop too
    for _ in 0..2 {
        let mut conn = connect(&server);
        let keys = keys("e", 10);
        let mut request = Vec::new();
        let mut want = String::new();
        for (i, key) in keys.iter().enumerate() {
            request.extend(cmd(&["SET", key, &i.to_string()]));
            request.extend(cmd(&["GET", key]));
            want.push_str(&format!("+OK\r\n{}", bulk(&i.to_string())));
        }
        conn.write_all(&request).unwrap();
        conn.shutdown(std::net::Shutdown::Write).unwrap();
        let mut got = Vec::new();
        conn.read_to_end(&mut got).unwrap();
        assert_eq!(String::from_utf8_lossy(&got), want);
    }
    server.stop();
}
