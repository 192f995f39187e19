//! A quick pass over every echo server and the load generator: a few
//! hundred checked requests each, with server figures from `/proc`.
#![cfg(unix)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use sockmux_bench::{run_load, LoadConfig, Run, Server};

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(server: Server) -> (Killed, SocketAddr) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_echo_server"))
        .args(["--impl", server.name(), "--port", "0"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("{server:?} printed {line:?}"))
        .parse()
        .unwrap();
    (Killed(child), addr)
}

#[test]
fn every_server_echoes_every_byte() {
    for server in Server::ALL {
        let (child, addr) = start(server);
        for (conns, size) in [(1, 64), (8, 4096), (2, 50_000)] {
            let report = run_load(&LoadConfig {
                addr,
                conns,
                size,
                warmup: Duration::ZERO,
                run: Run::Requests(100),
                server_pid: Some(child.0.id()),
            })
            .unwrap_or_else(|e| panic!("{server:?}, {conns} × {size} B: {e}"));
            assert_eq!(report.requests, 100, "{server:?}");
            assert!(report.p50 <= report.p99);
            if cfg!(target_os = "linux") {
                assert!(report.server_peak_rss_kib.unwrap() > 0);
            }
            let line = report.to_string();
            assert_eq!(sockmux_bench::LoadReport::parse(&line).unwrap(), report);
        }
    }
}

#[test]
fn a_timed_load_measures_after_its_warm_up() {
    let (child, addr) = start(Server::Table);
    let report = run_load(&LoadConfig {
        addr,
        conns: 2,
        size: 64,
        warmup: Duration::from_millis(50),
        run: Run::For(Duration::from_millis(200)),
        server_pid: Some(child.0.id()),
    })
    .unwrap();
    assert!(report.requests > 0);
    assert!(report.elapsed >= Duration::from_millis(200), "{report:?}");
    assert!(report.server_cpu.is_some());
}

#[test]
fn the_fairness_load_times_round_trips_and_checks_the_flood() {
    let (_child, addr) = start(Server::Mio);
    let report = sockmux_bench::run_fairness(&sockmux_bench::FairnessConfig {
        addr,
        floods: 1,
        ping_size: 64,
        warmup: Duration::from_millis(50),
        secs: Duration::from_millis(300),
    })
    .unwrap();
    assert!(report.round_trips > 0, "{report:?}");
    assert!(report.p50 <= report.p99 && report.p99 <= report.max);
    assert!(report.flood_bytes > 0 && report.flood_sent >= report.flood_bytes);
    assert!(report.checksum_ok, "{report:?}");
}
