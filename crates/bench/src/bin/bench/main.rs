//! The benchmark command: every echo server against every load, in one run,
//! as ratios to raw mio; or, with `--counts`, instructions and system calls
//! per request; or, with `--fairness`, a ping-pong's latency next to a
//! flood.
//!
//! `cargo run --release -p sockmux-bench --bin bench -- [--quick]`
//! `cargo run --release -p sockmux-bench --bin bench -- --counts`
//! `cargo run --release -p sockmux-bench --bin bench -- --fairness [--reps 1]`
//! (`ci/bench.sh` and `ci/bench-counts.sh` wrap these.)

#[cfg(unix)]
mod unix;

#[cfg(unix)]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    unix::main()
}

#[cfg(not(unix))]
fn main() {
    println!("bench: unix only");
}
