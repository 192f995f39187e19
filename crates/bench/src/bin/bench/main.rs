//! The benchmark command: every echo server against every load, in one run,
//! as ratios to raw mio; or, with `--counts`, instructions and system calls
//! per request.
//!
//! `cargo run --release -p sockmux-bench --bin bench -- [--quick]`
//! `cargo run --release -p sockmux-bench --bin bench -- --counts`
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
