//! The echo server as a tokio user writes it: a `current_thread` runtime,
//! one task per connection, each with its own 8 KiB buffer; and the same
//! on the multi-thread runtime with 2 workers (the peer of sockmux's
//! 2-loop rows).

use std::io;
use std::net::TcpListener as StdListener;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Serves echo on `listener` forever on a tokio `current_thread` runtime.
///
/// # Errors
///
/// An OS error from building the runtime or from accepting.
pub fn serve_tokio(listener: StdListener) -> io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    serve_on(&runtime, listener)
}

/// Serves echo on `listener` forever on a tokio multi-thread runtime with
/// `workers` worker threads (tasks move between them by work stealing).
///
/// # Errors
///
/// An OS error from building the runtime or from accepting.
pub fn serve_tokio_multi(listener: StdListener, workers: usize) -> io::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_io()
        .build()?;
    serve_on(&runtime, listener)
}

/// Accepts on `listener` forever, a task per connection, on `runtime`.
fn serve_on(runtime: &tokio::runtime::Runtime, listener: StdListener) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    runtime.block_on(async move {
        let listener = TcpListener::from_std(listener)?;
        loop {
            let (stream, _) = listener.accept().await?;
            tokio::spawn(echo(stream));
        }
    })
}

async fn echo(mut stream: TcpStream) {
    let mut buf = vec![0u8; 8192];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if stream.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        }
    }
}
