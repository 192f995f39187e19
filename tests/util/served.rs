//! A dispatcher serving on a thread of its own, as a test's server: built
//! on that thread (a dispatcher is not `Send`), turned until the test drops
//! it, then joined (a panic on the thread fails the test).

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Duration;

use sockmux::{Dispatcher, Token};

use super::LIMIT;

/// A dispatcher serving on its own thread; stopped and joined when dropped.
#[derive(Debug)]
pub(crate) struct Served {
    /// Where its listener listens.
    pub(crate) addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Served {
    /// Runs `setup` on a new thread (it returns the dispatcher and its
    /// listener's token), then turns the dispatcher until dropped.
    #[track_caller]
    pub(crate) fn start<S: 'static>(
        setup: impl FnOnce() -> io::Result<(Dispatcher<S>, Token)> + Send + 'static,
    ) -> Served {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel();
        let thread = {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let (mut dispatcher, listener) = setup().unwrap();
                tx.send(dispatcher.sockets().local_addr(listener).unwrap())
                    .unwrap();
                while !stop.load(Ordering::Relaxed) {
                    dispatcher.turn(Some(Duration::from_millis(10))).unwrap();
                }
            })
        };
        let addr = rx.recv_timeout(LIMIT).expect("the server started");
        Served {
            addr,
            stop,
            thread: Some(thread),
        }
    }

    /// A client connection, with [`LIMIT`] on its reads and writes.
    pub(crate) fn connect(&self) -> TcpStream {
        let conn = TcpStream::connect(self.addr).unwrap();
        conn.set_read_timeout(Some(LIMIT)).unwrap();
        conn.set_write_timeout(Some(LIMIT)).unwrap();
        conn
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let result = thread.join();
            if !std::thread::panicking() {
                result.expect("the server thread panicked");
            }
        }
    }
}
