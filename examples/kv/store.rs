//! The data and the commands: [`Store`], a map of byte-string keys to
//! byte-string values with optional expiry times, and [`execute`], which
//! runs one command's [`Args`] against it and appends the reply.
//!
//! Keys expire lazily (a command that finds an expired key removes it
//! first) and by [`Store::sweep`], which the server runs periodically: the
//! memory of an expired key is freed either way. A `GET` of an existing
//! key and a `SET` that overwrites a value with one of the same size (or
//! shorter) allocate nothing: the value's buffer is reused.

// Included by `#[path]` from the tests, which use parts of it.
#![allow(dead_code)]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::resp::{self, parse_int, Args};

/// A value, and when it expires.
#[derive(Debug)]
struct Entry {
    value: Vec<u8>,
    expires: Option<Instant>,
}

impl Entry {
    fn expired(&self, now: Instant) -> bool {
        self.expires.is_some_and(|at| at <= now)
    }
}

/// The keys and their values.
#[derive(Debug, Default)]
pub(crate) struct Store {
    /// Hashed with foldhash, seeded per process (hashbrown's default):
    /// several times faster than std's SipHash for short keys.
    map: HashMap<Box<[u8]>, Entry, foldhash::fast::RandomState>,
    /// How many entries have an expiry time (the sweep skips a store with
    /// none).
    volatile: usize,
    /// Keys removed because they expired.
    pub(crate) expired: u64,
    /// Commands run.
    pub(crate) commands: u64,
}

/// What the connection does after a command's reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    /// Reads the next command.
    Continue,
    /// Closes once the reply is written (`QUIT`).
    Close,
}

const NOT_INTEGER: &str = "ERR value is not an integer or out of range";
const SYNTAX: &str = "ERR syntax error";
const OVERFLOW: &str = "ERR increment or decrement would overflow";

impl Store {
    /// An empty store.
    pub(crate) fn new() -> Store {
        Store::default()
    }

    /// How many keys it holds (expired ones not yet removed included).
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// Removes every expired key; returns how many. Gives memory back to
    /// the allocator when the map is mostly empty.
    pub(crate) fn sweep(&mut self, now: Instant) -> usize {
        if self.volatile == 0 {
            return 0;
        }
        let before = self.map.len();
        self.map.retain(|_, e| !e.expired(now));
        let removed = before - self.map.len();
        self.volatile -= removed;
        self.expired += removed as u64;
        if self.map.capacity() > 64 && self.map.len() < self.map.capacity() / 4 {
            self.map.shrink_to_fit();
        }
        removed
    }

    /// The live entry of `key`: an expired one is removed first.
    fn live(&mut self, key: &[u8]) -> Option<&mut Entry> {
        if self.volatile == 0 {
            // No key can have expired: one lookup.
            return self.map.get_mut(key);
        }
        let entry = self.map.get(key)?;
        if entry.expires.is_some() && entry.expired(Instant::now()) {
            self.remove(key);
            self.expired += 1;
            return None;
        }
        self.map.get_mut(key)
    }

    fn remove(&mut self, key: &[u8]) -> bool {
        match self.map.remove(key) {
            Some(e) => {
                if e.expires.is_some() {
                    self.volatile -= 1;
                }
                true
            }
            None => false,
        }
    }

    /// Sets `key` to `value`; `expires`: `Some(t)` sets the expiry time,
    /// `None` clears it unless `keep_ttl`. Reuses the value's buffer.
    fn set(&mut self, key: &[u8], value: &[u8], expires: Option<Instant>, keep_ttl: bool) {
        if let Some(entry) = self.live(key) {
            entry.value.clear();
            entry.value.extend_from_slice(value);
            if !keep_ttl || expires.is_some() {
                let had = entry.expires.is_some();
                entry.expires = expires;
                self.volatile = self.volatile + usize::from(expires.is_some()) - usize::from(had);
            }
            return;
        }
        self.volatile += usize::from(expires.is_some());
        let entry = Entry {
            value: value.to_vec(),
            expires,
        };
        self.map.insert(key.into(), entry);
    }

    fn set_expiry(&mut self, key: &[u8], expires: Option<Instant>) {
        if let Some(entry) = self.map.get_mut(key) {
            let had = entry.expires.is_some();
            entry.expires = expires;
            self.volatile = self.volatile + usize::from(expires.is_some()) - usize::from(had);
        }
    }

    /// The value of `key`, if it is live.
    pub(crate) fn get(&mut self, key: &[u8]) -> Option<&[u8]> {
        self.live(key).map(|e| &e.value[..])
    }
}

/// Runs the command `args` (its name first; not empty) against `store`
/// and appends its reply to `out`.
pub(crate) fn execute(store: &mut Store, mut args: Args<'_>, out: &mut Vec<u8>) -> Flow {
    let argc = args.len();
    let Some(name) = args.next() else {
        return Flow::Continue;
    };
    store.commands += 1;
    let Some(command) = lookup(name) else {
        unknown_command(name, args, out);
        return Flow::Continue;
    };
    let arity_ok = if command.arity >= 0 {
        argc == command.arity as usize
    } else {
        argc >= command.arity.unsigned_abs() as usize
    };
    if !arity_ok {
        wrong_arity(command.name, out);
        return Flow::Continue;
    }
    (command.run)(store, args, argc, out)
}

/// A command: its name (lower case), its arity as Redis counts it (the
/// name included; negative: at least that many) and its code.
struct Command {
    name: &'static str,
    arity: i32,
    run: fn(&mut Store, Args<'_>, usize, &mut Vec<u8>) -> Flow,
}

const COMMANDS: &[Command] = &[
    Command {
        name: "get",
        arity: 2,
        run: get,
    },
    Command {
        name: "set",
        arity: -3,
        run: set,
    },
    Command {
        name: "ping",
        arity: -1,
        run: ping,
    },
    Command {
        name: "incr",
        arity: 2,
        run: incr,
    },
    Command {
        name: "decr",
        arity: 2,
        run: decr,
    },
    Command {
        name: "incrby",
        arity: 3,
        run: incrby,
    },
    Command {
        name: "decrby",
        arity: 3,
        run: decrby,
    },
    Command {
        name: "mset",
        arity: -3,
        run: mset,
    },
    Command {
        name: "mget",
        arity: -2,
        run: mget,
    },
    Command {
        name: "del",
        arity: -2,
        run: del,
    },
    Command {
        name: "exists",
        arity: -2,
        run: exists,
    },
    Command {
        name: "echo",
        arity: 2,
        run: echo,
    },
    Command {
        name: "expire",
        arity: -3,
        run: expire,
    },
    Command {
        name: "pexpire",
        arity: -3,
        run: pexpire,
    },
    Command {
        name: "ttl",
        arity: 2,
        run: ttl,
    },
    Command {
        name: "pttl",
        arity: 2,
        run: pttl,
    },
    Command {
        name: "persist",
        arity: 2,
        run: persist,
    },
    Command {
        name: "dbsize",
        arity: 1,
        run: dbsize,
    },
    Command {
        name: "flushdb",
        arity: -1,
        run: flushdb,
    },
    Command {
        name: "flushall",
        arity: -1,
        run: flushdb,
    },
    Command {
        name: "select",
        arity: 2,
        run: select,
    },
    Command {
        name: "quit",
        arity: -1,
        run: quit,
    },
    Command {
        name: "command",
        arity: -1,
        run: command,
    },
    Command {
        name: "client",
        arity: -2,
        run: client,
    },
    Command {
        name: "config",
        arity: -2,
        run: config,
    },
];

fn lookup(name: &[u8]) -> Option<&'static Command> {
    // GET and SET, most of what a cache serves, without the search: three
    // bytes folded to lower case at once.
    debug_assert!(COMMANDS[0].name == "get" && COMMANDS[1].name == "set");
    if let [a, b, c] = *name {
        let folded = u32::from_le_bytes([a, b, c, 0]) | 0x0020_2020;
        if folded == u32::from_le_bytes(*b"get\0") {
            return Some(&COMMANDS[0]);
        }
        if folded == u32::from_le_bytes(*b"set\0") {
            return Some(&COMMANDS[1]);
        }
    }
    COMMANDS
        .iter()
        .find(|c| c.name.as_bytes().eq_ignore_ascii_case(name))
}

/// Redis's reply to an unknown command: its name and the start of its
/// arguments, each cut to what fits in 128 bytes.
fn unknown_command(name: &[u8], args: Args<'_>, out: &mut Vec<u8>) {
    out.extend_from_slice(b"-ERR unknown command '");
    push_sanitized(out, &name[..name.len().min(128)]);
    out.extend_from_slice(b"', with args beginning with: ");
    let mut listed = 0;
    for arg in args {
        if listed >= 128 {
            break;
        }
        let arg = &arg[..arg.len().min(128 - listed)];
        out.push(b'\'');
        push_sanitized(out, arg);
        out.extend_from_slice(b"' ");
        listed += arg.len() + 3;
    }
    out.extend_from_slice(b"\r\n");
}

/// Appends `bytes` with line ends turned into spaces (an error reply is
/// one line).
fn push_sanitized(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend(
        bytes
            .iter()
            .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
    );
}

fn wrong_arity(name: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(b"-ERR wrong number of arguments for '");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"' command\r\n");
}

fn arg<'a>(args: &mut Args<'a>) -> &'a [u8] {
    args.next().unwrap_or_default()
}

fn get(store: &mut Store, mut args: Args<'_>, _: usize, out: &mut Vec<u8>) -> Flow {
    match store.get(arg(&mut args)) {
        Some(value) => resp::bulk(out, value),
        None => resp::nil(out),
    }
    Flow::Continue
}

fn set(store: &mut Store, mut args: Args<'_>, _: usize, out: &mut Vec<u8>) -> Flow {
    let key = arg(&mut args);
    let value = arg(&mut args);
    let (mut nx, mut xx, mut keep_ttl, mut get) = (false, false, false, false);
    let mut ttl: Option<(i64, bool)> = None; // (amount, in seconds)
    while let Some(option) = args.next() {
        let is = |name: &str| option.eq_ignore_ascii_case(name.as_bytes());
        if is("nx") && !xx {
            nx = true;
        } else if is("xx") && !nx {
            xx = true;
        } else if is("keepttl") && ttl.is_none() {
            keep_ttl = true;
        } else if is("get") {
            get = true;
        } else if (is("ex") || is("px")) && ttl.is_none() && !keep_ttl {
            let Some(amount) = args.next() else {
                resp::error(out, SYNTAX);
                return Flow::Continue;
            };
            let Some(amount) = parse_int(amount) else {
                resp::error(out, NOT_INTEGER);
                return Flow::Continue;
            };
            ttl = Some((amount, is("ex")));
        } else {
            resp::error(out, SYNTAX);
            return Flow::Continue;
        }
    }
    let expires = match ttl {
        None => None,
        Some((amount, seconds)) => match deadline(amount, seconds) {
            Some(at) if amount > 0 => Some(at),
            _ => {
                resp::error(out, "ERR invalid expire time in 'set' command");
                return Flow::Continue;
            }
        },
    };
    let exists = store.live(key).is_some();
    if get {
        match store.get(key) {
            Some(old) => resp::bulk(out, old),
            None => resp::nil(out),
        }
    }
    if (nx && exists) || (xx && !exists) {
        if !get {
            resp::nil(out);
        }
        return Flow::Continue;
    }
    store.set(key, value, expires, keep_ttl);
    if !get {
        resp::ok(out);
    }
    Flow::Continue
}

/// Now plus `amount` seconds (or milliseconds); `None` when that
/// overflows. A negative amount gives a time in the past.
fn deadline(amount: i64, seconds: bool) -> Option<Instant> {
    let ms = if seconds {
        amount.checked_mul(1000)?
    } else {
        amount
    };
    let now = Instant::now();
    if ms >= 0 {
        now.checked_add(Duration::from_millis(ms as u64))
    } else {
        Some(
            now.checked_sub(Duration::from_millis(ms.unsigned_abs()))
                .unwrap_or(now),
        )
    }
}

fn ping(_: &mut Store, mut args: Args<'_>, argc: usize, out: &mut Vec<u8>) -> Flow {
    match argc {
        1 => resp::simple(out, "PONG"),
        2 => resp::bulk(out, arg(&mut args)),
        _ => wrong_arity("ping", out),
    }
    Flow::Continue
}

fn echo(_: &mut Store, mut args: Args<'_>, _: usize, out: &mut Vec<u8>) -> Flow {
    resp::bulk(out, arg(&mut args));
    Flow::Continue
}

/// Adds `by` to the integer value of `key` (0 when missing), keeping its
/// expiry time.
fn add(store: &mut Store, key: &[u8], by: i64, out: &mut Vec<u8>) {
    let current = match store.get(key) {
        None => 0,
        Some(value) => match parse_int(value) {
            Some(n) => n,
            None => return resp::error(out, NOT_INTEGER),
        },
    };
    let Some(new) = current.checked_add(by) else {
        return resp::error(out, OVERFLOW);
    };
    // Formatted into the reply first, then copied into the value.
    let start = out.len();
    resp::integer(out, new);
    let digits = &out[start + 1..out.len() - 2];
    match store.live(key) {
        Some(entry) => {
            entry.value.clear();
            entry.value.extend_from_slice(digits);
        }
        None => {
            let digits = digits.to_vec();
            store.set(key, &digits, None, false);
        }
    }
}

fn incr(store: &mut Store, mut args: Args<'_>, _: usize, out: &mut Vec<u8>) -> Flow {
    add(store, arg(&mut args), 1, out);
    Flow::Continue
}

fn decr(store: &mut Store, mut args: Args<'_>, _: usize, out: &mut Vec<u8>) -> Flow {
    add(store, arg(&mut args), -1, out);
    Flow::Continue
}

fn incrby(store: &mut Store, mut args: Args<'_>, _: usize, out: &mut Vec<u8>) -> Flow {
    let key = arg(&mut args);
    match parse_int(arg(&mut args)) {
        Some(by) => add(store, key, by, out),
        None => resp::error(out, NOT_INTEGER),
    }
    Flow::Continue
}

fn decrby(store: &mut Store, mut args: Args<'_>, _: usize, out: &mut Vec<u8>) -> Flow {
    let key = arg(&mut args);
    match parse_int(arg(&mut args)).and_then(i64::checked_neg) {
        Some(by) => add(store, key, by, out),
        None => resp::error(out, NOT_INTEGER),
    }
    Flow::Continue
}

fn mset(store: &mut Store, mut args: Args<'_>, argc: usize, out: &mut Vec<u8>) -> Flow {
    if argc % 2 == 0 {
        wrong_arity("mset", out);
        return Flow::Continue;
    }
    while let (Some(key), Some(value)) = (args.next(), args.next()) {
        store.set(key, value, None, false);
    }
    resp::ok(out);
    Flow::Continue
}

fn mget(store: &mut Store, args: Args<'_>, argc: usize, out: &mut Vec<u8>) -> Flow {
    resp::array(out, argc - 1);
    for key in args {
        match store.get(key) {
            Some(value) => resp::bulk(out, value),
            None => resp::nil(out),
        }
    }
    Flow::Continue
}

fn del(store: &mut Store, args: Args<'_>, _: usize, out: &mut Vec<u8>) -> Flow {
    let mut n = 0;
    for key in args {
        if store.live(key).is_some() {
            store.remove(key);
            n += 1;
        }
    }
    resp::integer(out, n);
    Flow::Continue
}

fn exists(store: &mut Store, args: Args<'_>, _: usize, out: &mut Vec<u8>) -> Flow {
    let mut n = 0;
    for key in args {
        n += i64::from(store.live(key).is_some());
    }
    resp::integer(out, n);
    Flow::Continue
}

fn expire(store: &mut Store, args: Args<'_>, argc: usize, out: &mut Vec<u8>) -> Flow {
    expire_generic(store, args, argc, true, out)
}

fn pexpire(store: &mut Store, args: Args<'_>, argc: usize, out: &mut Vec<u8>) -> Flow {
    expire_generic(store, args, argc, false, out)
}

/// `EXPIRE key seconds [NX|XX|GT|LT]` (or `PEXPIRE`, in milliseconds).
fn expire_generic(
    store: &mut Store,
    mut args: Args<'_>,
    _: usize,
    seconds: bool,
    out: &mut Vec<u8>,
) -> Flow {
    let name = if seconds { "expire" } else { "pexpire" };
    let key = arg(&mut args);
    let amount = arg(&mut args);
    let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
    for option in args {
        let is = |name: &str| option.eq_ignore_ascii_case(name.as_bytes());
        if is("nx") {
            nx = true;
        } else if is("xx") {
            xx = true;
        } else if is("gt") {
            gt = true;
        } else if is("lt") {
            lt = true;
        } else {
            out.extend_from_slice(b"-ERR Unsupported option ");
            push_sanitized(out, option);
            out.extend_from_slice(b"\r\n");
            return Flow::Continue;
        }
    }
    if nx && (xx || gt || lt) {
        resp::error(
            out,
            "ERR NX and XX, GT or LT options at the same time are not compatible",
        );
        return Flow::Continue;
    }
    if gt && lt {
        resp::error(
            out,
            "ERR GT and LT options at the same time are not compatible",
        );
        return Flow::Continue;
    }
    let Some(amount) = parse_int(amount) else {
        resp::error(out, NOT_INTEGER);
        return Flow::Continue;
    };
    let Some(at) = deadline(amount, seconds) else {
        out.extend_from_slice(b"-ERR invalid expire time in '");
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"' command\r\n");
        return Flow::Continue;
    };
    let Some(entry) = store.live(key) else {
        resp::integer(out, 0);
        return Flow::Continue;
    };
    // No expiry time counts as an infinite one for GT and LT.
    let applies = match entry.expires {
        None => !xx && !gt,
        Some(current) => !nx && (!gt || at > current) && (!lt || at < current),
    };
    if !applies {
        resp::integer(out, 0);
        return Flow::Continue;
    }
    if amount <= 0 {
        store.remove(key);
        store.expired += 1;
    } else {
        store.set_expiry(key, Some(at));
    }
    resp::integer(out, 1);
    Flow::Continue
}

fn ttl(store: &mut Store, mut args: Args<'_>, _: usize, out: &mut Vec<u8>) -> Flow {
    let left = remaining(store, arg(&mut args));
    resp::integer(out, left.map_or_else(|n| n, |ms| (ms + 500) / 1000));
    Flow::Continue
}

fn pttl(store: &mut Store, mut args: Args<'_>, _: usize, out: &mut Vec<u8>) -> Flow {
    let left = remaining(store, arg(&mut args));
    resp::integer(out, left.unwrap_or_else(|n| n));
    Flow::Continue
}

/// The milliseconds `key` has left, or Redis's answer without any: `-2`
/// for no key, `-1` for a key that does not expire.
fn remaining(store: &mut Store, key: &[u8]) -> Result<i64, i64> {
    let entry = store.live(key).ok_or(-2)?;
    let at = entry.expires.ok_or(-1)?;
    let left = at.saturating_duration_since(Instant::now());
    Ok(i64::try_from(left.as_millis()).unwrap_or(i64::MAX))
}

fn persist(store: &mut Store, mut args: Args<'_>, _: usize, out: &mut Vec<u8>) -> Flow {
    let key = arg(&mut args);
    let had = store.live(key).is_some_and(|e| e.expires.is_some());
    if had {
        store.set_expiry(key, None);
    }
    resp::integer(out, i64::from(had));
    Flow::Continue
}

fn dbsize(store: &mut Store, _: Args<'_>, _: usize, out: &mut Vec<u8>) -> Flow {
    resp::integer(out, store.len() as i64);
    Flow::Continue
}

fn flushdb(store: &mut Store, args: Args<'_>, _: usize, out: &mut Vec<u8>) -> Flow {
    for option in args {
        if !option.eq_ignore_ascii_case(b"sync") && !option.eq_ignore_ascii_case(b"async") {
            resp::error(out, SYNTAX);
            return Flow::Continue;
        }
    }
    store.map = HashMap::default();
    store.volatile = 0;
    resp::ok(out);
    Flow::Continue
}

fn select(_: &mut Store, mut args: Args<'_>, _: usize, out: &mut Vec<u8>) -> Flow {
    match parse_int(arg(&mut args)) {
        Some(0) => resp::ok(out),
        Some(_) => resp::error(out, "ERR DB index is out of range"),
        None => resp::error(out, NOT_INTEGER),
    }
    Flow::Continue
}

fn quit(_: &mut Store, _: Args<'_>, _: usize, out: &mut Vec<u8>) -> Flow {
    resp::ok(out);
    Flow::Close
}

/// `COMMAND` and its subcommands: no command documents itself here, so
/// the lists are empty (redis-cli then shows no hints) and the count 0.
fn command(_: &mut Store, mut args: Args<'_>, _: usize, out: &mut Vec<u8>) -> Flow {
    match args.next() {
        Some(sub) if sub.eq_ignore_ascii_case(b"count") => resp::integer(out, 0),
        _ => resp::array(out, 0),
    }
    Flow::Continue
}

/// `CLIENT` subcommands that only set something answer `+OK`.
fn client(_: &mut Store, mut args: Args<'_>, _: usize, out: &mut Vec<u8>) -> Flow {
    let sub = arg(&mut args);
    let is = |name: &str| sub.eq_ignore_ascii_case(name.as_bytes());
    if is("setname") || is("setinfo") || is("no-evict") || is("no-touch") {
        resp::ok(out);
    } else if is("getname") {
        resp::nil(out);
    } else {
        unknown_subcommand(sub, "CLIENT", out);
    }
    Flow::Continue
}

/// `CONFIG GET parameter`: `save` and `appendonly` (what redis-benchmark
/// asks at its start), an empty list for the others.
fn config(_: &mut Store, mut args: Args<'_>, _: usize, out: &mut Vec<u8>) -> Flow {
    let sub = arg(&mut args);
    if sub.eq_ignore_ascii_case(b"get") {
        // What a server without persistence answers for the two
        // parameters redis-benchmark reads; nothing for the others.
        let pattern = arg(&mut args);
        let known: &[(&str, &[u8])] = &[("save", b""), ("appendonly", b"no")];
        match known
            .iter()
            .find(|(name, _)| name.as_bytes().eq_ignore_ascii_case(pattern))
        {
            Some((name, value)) => {
                resp::array(out, 2);
                resp::bulk(out, name.as_bytes());
                resp::bulk(out, value);
            }
            None => resp::array(out, 0),
        }
    } else {
        unknown_subcommand(sub, "CONFIG", out);
    }
    Flow::Continue
}

fn unknown_subcommand(sub: &[u8], command: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(b"-ERR unknown subcommand '");
    push_sanitized(out, &sub[..sub.len().min(128)]);
    out.extend_from_slice(b"'. Try ");
    out.extend_from_slice(command.as_bytes());
    out.extend_from_slice(b" HELP.\r\n");
}
