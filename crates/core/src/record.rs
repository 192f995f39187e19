//! Record and replay (the `faults` feature): a table's OS reports, per
//! poll, and the result of every OS call it makes, in a compact file; and
//! a table that takes both from such a file instead of the OS, so that a
//! run seen once (a rare interleaving, a fault plan's doing) can be played
//! again, exactly, under a debugger.
//!
//! The file: a header line, then records. A poll record is `P`, the number
//! of reports, and per report the slot key (LEB128) and the readiness
//! bits (a byte). A call record is `C`, the call's kind (a byte), the
//! socket's key and generation, the length asked of the OS, then `0` and
//! the byte count, the bytes read (reads only) and the sender's address
//! (`recv_from` only), or `1` and the error (its OS code, or its kind). A
//! `W` says that the poll waited on after the wait before it (a decision
//! that depends on the clock, so the replay takes it from the record).

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;

use log::{debug, warn};

use crate::hooks::Op;
use crate::ready::Ready;
use crate::selector::RawEvent;
use crate::socket::Inner;
use crate::{Socket, Token};

const MAGIC: &[u8] = b"sockmux record 1\n";
const POLL: u8 = b'P';
const CALL: u8 = b'C';
const WAIT_ON: u8 = b'W';

/// An I/O error as recorded: the OS code where there is one, else the kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ErrorCode {
    Os(i32),
    Kind(u8),
}

/// Kinds without an OS code that the table's calls give (the plan's
/// answers, the table's own checks); the rest come back as `Other`.
const KINDS: [io::ErrorKind; 14] = [
    io::ErrorKind::Other,
    io::ErrorKind::WouldBlock,
    io::ErrorKind::Interrupted,
    io::ErrorKind::ConnectionReset,
    io::ErrorKind::BrokenPipe,
    io::ErrorKind::ConnectionAborted,
    io::ErrorKind::ConnectionRefused,
    io::ErrorKind::NotConnected,
    io::ErrorKind::InvalidInput,
    io::ErrorKind::InvalidData,
    io::ErrorKind::UnexpectedEof,
    io::ErrorKind::TimedOut,
    io::ErrorKind::NotFound,
    io::ErrorKind::Unsupported,
];

impl ErrorCode {
    pub(crate) fn of(e: &io::Error) -> ErrorCode {
        match e.raw_os_error() {
            Some(code) => ErrorCode::Os(code),
            None => ErrorCode::Kind(KINDS.iter().position(|&k| k == e.kind()).unwrap_or(0) as u8),
        }
    }

    fn error(self) -> io::Error {
        match self {
            ErrorCode::Os(code) => io::Error::from_raw_os_error(code),
            ErrorCode::Kind(i) => KINDS
                .get(usize::from(i))
                .copied()
                .unwrap_or(io::ErrorKind::Other)
                .into(),
        }
    }
}

/// The result of one OS call as recorded: a byte count, the bytes read and
/// the sender's address (where the call gives them), or an error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Done {
    Ok(usize, Vec<u8>, Option<SocketAddr>),
    Err(ErrorCode),
}

impl Done {
    /// The byte count, or the error.
    pub(crate) fn count(&self) -> io::Result<usize> {
        match self {
            Done::Ok(n, ..) => Ok(*n),
            Done::Err(code) => Err(code.error()),
        }
    }

    /// A read's result: the recorded bytes copied into `buf`.
    pub(crate) fn fill(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Done::Ok(n, data, _) if data.len() == *n && *n <= buf.len() => {
                buf[..*n].copy_from_slice(data);
                Ok(*n)
            }
            Done::Ok(n, data, _) => Err(diverged(format!(
                "a read into a buffer of {} bytes was recorded with {n} bytes and {} of data",
                buf.len(),
                data.len()
            ))),
            Done::Err(code) => Err(code.error()),
        }
    }

    /// A `recv_from`'s sender.
    pub(crate) fn addr(&self) -> io::Result<SocketAddr> {
        match self {
            Done::Ok(_, _, Some(addr)) => Ok(*addr),
            Done::Ok(..) => Err(diverged(
                "a recv_from was recorded without its sender".into(),
            )),
            Done::Err(code) => Err(code.error()),
        }
    }
}

fn diverged(what: String) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("the replay diverged: {what}"),
    )
}

/// Writes a table's record (see the module documentation).
#[derive(Debug)]
pub(crate) struct Recorder {
    out: BufWriter<File>,
    buf: Vec<u8>,
    failed: bool,
}

impl Recorder {
    pub(crate) fn create(path: &Path) -> io::Result<Recorder> {
        let mut out = BufWriter::new(File::create(path)?);
        out.write_all(MAGIC)?;
        debug!("recording to {}", path.display());
        Ok(Recorder {
            out,
            buf: Vec::new(),
            failed: false,
        })
    }

    /// One wait's reports; the file is flushed, so that a run that dies
    /// leaves a record up to its last poll.
    pub(crate) fn poll(&mut self, reports: &[RawEvent]) {
        self.buf.clear();
        self.buf.push(POLL);
        put(&mut self.buf, reports.len() as u64);
        for r in reports {
            put(&mut self.buf, r.key as u64);
            self.buf.push(r.ready.bits());
        }
        self.write();
        if !self.failed {
            if let Err(e) = self.out.flush() {
                self.fail(&e);
            }
        }
    }

    /// The poll waits on after its last wait.
    pub(crate) fn wait_on(&mut self) {
        self.buf.clear();
        self.buf.push(WAIT_ON);
        self.write();
    }

    pub(crate) fn call(&mut self, op: Op, token: Token, len: usize, done: &Done) {
        self.buf.clear();
        self.buf.push(CALL);
        self.buf.push(op as u8);
        put(&mut self.buf, token.key() as u64);
        put(&mut self.buf, u64::from(token.generation()));
        put(&mut self.buf, len as u64);
        match done {
            Done::Ok(n, data, addr) => {
                self.buf.push(0);
                put(&mut self.buf, *n as u64);
                put(&mut self.buf, data.len() as u64);
                self.buf.extend_from_slice(data);
                match addr {
                    None => self.buf.push(0),
                    Some(SocketAddr::V4(a)) => {
                        self.buf.push(4);
                        self.buf.extend_from_slice(&a.ip().octets());
                        put(&mut self.buf, u64::from(a.port()));
                    }
                    Some(SocketAddr::V6(a)) => {
                        self.buf.push(6);
                        self.buf.extend_from_slice(&a.ip().octets());
                        put(&mut self.buf, u64::from(a.port()));
                    }
                }
            }
            Done::Err(ErrorCode::Os(code)) => {
                self.buf.push(1);
                put(&mut self.buf, u64::from(*code as u32) + 1);
            }
            Done::Err(ErrorCode::Kind(kind)) => {
                self.buf.push(1);
                put(&mut self.buf, 0);
                self.buf.push(*kind);
            }
        }
        self.write();
    }

    fn write(&mut self) {
        if self.failed {
            return;
        }
        if let Err(e) = self.out.write_all(&self.buf) {
            self.fail(&e);
        }
    }

    fn fail(&mut self, e: &io::Error) {
        warn!("recording stopped: {e}");
        self.failed = true;
    }
}

/// LEB128.
fn put(buf: &mut Vec<u8>, mut v: u64) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            buf.push(byte);
            return;
        }
        buf.push(byte | 0x80);
    }
}

/// A call record, read.
#[derive(Debug)]
struct CallRecord {
    op: u8,
    key: u64,
    generation: u64,
    len: usize,
    done: Done,
}

/// Reads a record back for a table that replays it.
#[derive(Debug)]
pub(crate) struct Replayer {
    data: Vec<u8>,
    at: usize,
    polls: u64,
    calls: u64,
}

impl Replayer {
    pub(crate) fn open(path: &Path) -> io::Result<Replayer> {
        let data = std::fs::read(path)?;
        if !data.starts_with(MAGIC) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} is not a sockmux record", path.display()),
            ));
        }
        Ok(Replayer {
            at: MAGIC.len(),
            data,
            polls: 0,
            calls: 0,
        })
    }

    /// The next wait's reports.
    pub(crate) fn next_poll(&mut self, out: &mut Vec<RawEvent>) -> io::Result<()> {
        match self.data.get(self.at) {
            None => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "the replay is over: its record ends after {} polls and {} calls",
                        self.polls, self.calls
                    ),
                ))
            }
            Some(&POLL) => {}
            Some(_) => {
                let call = self.read_call(self.at)?.0;
                return Err(diverged(format!(
                    "poll {} came where the record has a call of kind {} on slot {}",
                    self.polls + 1,
                    call.op,
                    call.key
                )));
            }
        }
        let mut at = self.at + 1;
        let n = self.get(&mut at)?;
        for _ in 0..n {
            let key = self.get(&mut at)?;
            let ready = *self.data.get(at).ok_or_else(truncated)?;
            at += 1;
            out.push(RawEvent {
                key: usize::try_from(key).unwrap_or(usize::MAX),
                ready: Ready::from_bits(ready),
            });
        }
        self.at = at;
        self.polls += 1;
        Ok(())
    }

    /// Whether the poll waited on here (and the record says so).
    pub(crate) fn waits_on(&mut self) -> bool {
        if self.data.get(self.at) == Some(&WAIT_ON) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    /// The length the next call asked of the OS, which must be `op` on
    /// `token`; the record is not consumed.
    pub(crate) fn peek_call(&self, op: Op, token: Token) -> io::Result<usize> {
        Ok(self.expect_call(op, token)?.0.len)
    }

    /// The next call's result, which must be `op` on `token`.
    pub(crate) fn next_call(&mut self, op: Op, token: Token) -> io::Result<Done> {
        let (call, at) = self.expect_call(op, token)?;
        self.at = at;
        self.calls += 1;
        Ok(call.done)
    }

    fn expect_call(&self, op: Op, token: Token) -> io::Result<(CallRecord, usize)> {
        let what = || format!("{op:?} on {token}");
        match self.data.get(self.at) {
            Some(&CALL) => {}
            Some(_) => {
                return Err(diverged(format!(
                    "call {} ({}) came where the record has poll {}",
                    self.calls + 1,
                    what(),
                    self.polls + 1
                )))
            }
            None => {
                return Err(diverged(format!(
                    "call {} ({}) came after the end of the record",
                    self.calls + 1,
                    what()
                )))
            }
        }
        let (call, at) = self.read_call(self.at)?;
        if call.op != op as u8
            || call.key != token.key() as u64
            || call.generation != u64::from(token.generation())
        {
            let recorded = Op::ALL
                .iter()
                .find(|o| **o as u8 == call.op)
                .map_or_else(|| format!("kind {}", call.op), |o| format!("{o:?}"));
            return Err(diverged(format!(
                "call {} is {}, the record has {recorded} on slot {} (generation {})",
                self.calls + 1,
                what(),
                call.key,
                call.generation
            )));
        }
        Ok((call, at))
    }

    fn read_call(&self, mut at: usize) -> io::Result<(CallRecord, usize)> {
        at += 1;
        let op = self.byte(&mut at)?;
        let key = self.get(&mut at)?;
        let generation = self.get(&mut at)?;
        let len = self.get(&mut at)? as usize;
        let done = match self.byte(&mut at)? {
            0 => {
                let n = self.get(&mut at)? as usize;
                let data_len = self.get(&mut at)? as usize;
                let end = at.checked_add(data_len).filter(|&e| e <= self.data.len());
                let data = self.data[at..end.ok_or_else(truncated)?].to_vec();
                at += data_len;
                let addr = match self.byte(&mut at)? {
                    0 => None,
                    4 => {
                        let o: [u8; 4] = self.bytes(&mut at)?;
                        let port = self.get(&mut at)? as u16;
                        Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::from(o)), port))
                    }
                    6 => {
                        let o: [u8; 16] = self.bytes(&mut at)?;
                        let port = self.get(&mut at)? as u16;
                        Some(SocketAddr::new(IpAddr::V6(Ipv6Addr::from(o)), port))
                    }
                    t => return Err(corrupt(format!("address tag {t}"))),
                };
                Done::Ok(n, data, addr)
            }
            1 => match self.get(&mut at)? {
                0 => Done::Err(ErrorCode::Kind(self.byte(&mut at)?)),
                code => Done::Err(ErrorCode::Os((code - 1) as u32 as i32)),
            },
            t => return Err(corrupt(format!("result tag {t}"))),
        };
        Ok((
            CallRecord {
                op,
                key,
                generation,
                len,
                done,
            },
            at,
        ))
    }

    fn byte(&self, at: &mut usize) -> io::Result<u8> {
        let b = *self.data.get(*at).ok_or_else(truncated)?;
        *at += 1;
        Ok(b)
    }

    fn bytes<const N: usize>(&self, at: &mut usize) -> io::Result<[u8; N]> {
        let slice = self.data.get(*at..*at + N).ok_or_else(truncated)?;
        *at += N;
        Ok(slice.try_into().expect("N bytes"))
    }

    /// LEB128.
    fn get(&self, at: &mut usize) -> io::Result<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte(at)?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(corrupt("a number longer than 64 bits".into()))
    }
}

fn truncated() -> io::Error {
    corrupt("it ends in the middle of an entry".into())
}

fn corrupt(what: String) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("corrupt sockmux record: {what}"),
    )
}

/// The socket a replayed `accept` hands over: a TCP socket with no
/// connection, never read or written (the replay answers its calls).
pub(crate) fn stand_in() -> io::Result<Socket> {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    socket.set_nonblocking(true)?;
    let stream = mio::net::TcpStream::from_std(socket.into());
    Ok(Inner::TcpStream(stream).into())
}
