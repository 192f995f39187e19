//! The live view of the server examples (`examples/server/stats.rs`), run
//! as a user runs it: `tcp_echo --stats` prints a line per second whose
//! connections and bytes follow what a client does; `--stats-top` adds the
//! table of the busiest sockets every ten lines, and SIGUSR1 asks for it at
//! once (Unix); with `--threads 2` each loop prints its own lines; the
//! other server examples print the line too; `http` serves `/metrics` in
//! Prometheus' text format, to a plain client and to curl.
//!
//! Every wait reads the child's output with a deadline ([`LIMIT`], a bound
//! for a hang): nothing sleeps to synchronise, and nothing asserts a rate
//! or a duration a loaded machine could miss. The figures checked exactly
//! are counts (connections, requests, bytes) that the client's own round
//! trips settle before it asks.
//!
//! Built without the `stats` feature, the one test here checks that the
//! flags are refused with exit code 2.

mod util;

#[cfg(not(feature = "stats"))]
#[test]
fn stats_flags_exit_2_without_the_feature() {
    use std::process::Command;
    use util::harness::{example_binary, output_within};

    for name in ["tcp_echo", "udp_echo", "chat", "kv", "http"] {
        for flag in ["--stats", "--stats-top"] {
            let out = output_within(Command::new(example_binary(name)).args(["--port", "0", flag]));
            assert_eq!(out.status.code(), Some(2), "{name} {flag}");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                stderr.contains("need the `stats` feature"),
                "{name} {flag}: {stderr}"
            );
        }
    }
}

#[cfg(feature = "stats")]
mod live {
    use std::collections::HashMap;
    use std::io::{BufRead as _, BufReader, Read as _, Write as _};
    use std::net::{SocketAddr, TcpStream, UdpSocket};
    use std::process::{Command, Stdio};

    use crate::util::example::{Killed, Log, Server};
    use crate::util::{pattern, LIMIT};

    /// A server example running with its standard output (the live view)
    /// and its standard error (the log) read.
    #[cfg_attr(not(unix), allow(dead_code))] // `name` names it in `stop`
    struct Running {
        name: String,
        addr: SocketAddr,
        out: Log,
        err: Log,
        child: Killed,
    }

    /// Runs example `name` on `--addr 127.0.0.1 --port 0` with `args`;
    /// waits for the line that says where it listens.
    #[track_caller]
    fn start(name: &str, args: &[&str]) -> Running {
        let mut cmd: Command = Server::command(name, "warn");
        let mut child = cmd
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {name}: {e}"));
        let out = Log::of(child.stdout.take().expect("stdout"));
        let mut err = Log::of(child.stderr.take().expect("stderr"));
        let child = Killed(child);
        let prefix = format!("{name}: listening on ");
        let line = err.next_matching("listening line", |l| l.starts_with(&prefix));
        let addr = line[prefix.len()..]
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("{line:?}: {e}"));
        Running {
            name: name.to_string(),
            addr,
            out,
            err,
            child,
        }
    }

    impl Running {
        /// The next stats line (of any loop), parsed; fails the test if
        /// none comes within [`LIMIT`] or one does not parse.
        #[track_caller]
        fn next_line(&mut self) -> StatsLine {
            let line = self
                .out
                .next_matching("stats line", |l| parse_line(l).is_some());
            parse_line(&line).expect("matched")
        }

        /// Stops it with SIGTERM and checks it exits 0 (Unix: the live
        /// view's socket must not hold up a graceful stop).
        #[cfg(unix)]
        #[track_caller]
        fn stop(mut self) {
            let pid = libc::pid_t::try_from(self.child.0.id()).expect("pid");
            // SAFETY: kill(2) of our child, not reaped before `self` is
            // dropped, so its pid is not reused.
            assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
            self.err.until_end();
            let status = self.child.0.wait().expect("wait");
            assert!(
                status.success(),
                "{}: {status:?} after SIGTERM; last lines:\n{}",
                self.name,
                self.err.tail()
            );
        }

        /// Sends it SIGUSR1.
        #[cfg(unix)]
        fn sigusr1(&self) {
            let pid = libc::pid_t::try_from(self.child.0.id()).expect("pid");
            // SAFETY: as in `stop`.
            assert_eq!(unsafe { libc::kill(pid, libc::SIGUSR1) }, 0);
        }
    }

    /// One line of `--stats`: `[loop i] stats: 12 conns, 48210 events/s,
    /// 3.1 MB/s in, 3.1 MB/s out, loop 37% busy, handler p99 14µs`.
    #[derive(Debug)]
    struct StatsLine {
        label: Option<usize>,
        conns: u64,
        bytes_in: f64,
        bytes_out: f64,
    }

    /// `line` without its `[loop i] ` prefix, and `i`.
    fn unlabel(line: &str) -> (Option<usize>, &str) {
        if let Some(rest) = line.strip_prefix("[loop ") {
            let (i, rest) = rest.split_once("] ").expect("a closing bracket");
            (Some(i.parse().expect("a loop index")), rest)
        } else {
            (None, line)
        }
    }

    /// A stats line parsed, `None` for other lines; panics on a stats line
    /// that breaks the format.
    fn parse_line(line: &str) -> Option<StatsLine> {
        let (label, rest) = unlabel(line);
        let rest = rest.strip_prefix("stats: ")?;
        let fields: Vec<&str> = rest.split(", ").collect();
        let bad = || format!("a malformed stats line: {line:?}");
        assert_eq!(fields.len(), 6, "{}", bad());
        let count = |field: &str, unit: &str| -> u64 {
            let n = field
                .strip_suffix(unit)
                .unwrap_or_else(|| panic!("{}", bad()));
            n.parse().unwrap_or_else(|_| panic!("{}", bad()))
        };
        let conns = count(fields[0], " conns");
        count(fields[1], " events/s");
        let rate = |field: &str, dir: &str| -> f64 {
            let field = field
                .strip_suffix(dir)
                .unwrap_or_else(|| panic!("{}", bad()));
            let (value, unit) = field.split_once(' ').unwrap_or_else(|| panic!("{}", bad()));
            let scale = match unit {
                "B/s" => 1.0,
                "kB/s" => 1e3,
                "MB/s" => 1e6,
                "GB/s" => 1e9,
                _ => panic!("{}", bad()),
            };
            value.parse::<f64>().unwrap_or_else(|_| panic!("{}", bad())) * scale
        };
        let bytes_in = rate(fields[2], " in");
        let bytes_out = rate(fields[3], " out");
        let busy = fields[4]
            .strip_prefix("loop ")
            .and_then(|f| f.strip_suffix("% busy"))
            .and_then(|p| p.parse::<u32>().ok())
            .unwrap_or_else(|| panic!("{}", bad()));
        assert!(busy <= 100, "{}", bad());
        let p99 = fields[5]
            .strip_prefix("handler p99 ")
            .unwrap_or_else(|| panic!("{}", bad()));
        let number = p99.trim_end_matches(|c: char| c.is_alphabetic() || c == 'µ');
        assert!(
            number.parse::<f64>().is_ok()
                && ["ns", "µs", "ms", "s"].contains(&&p99[number.len()..]),
            "{}",
            bad()
        );
        Some(StatsLine {
            label,
            conns,
            bytes_in,
            bytes_out,
        })
    }

    /// A row of the table: `token responder… events bytes-in bytes-out
    /// handler-total handler-max queued`.
    #[derive(Debug)]
    struct Row {
        responder: String,
        events: u64,
        bytes_in: u64,
        bytes_out: u64,
    }

    /// Waits for the next table (`stats top: K of N sockets by handler
    /// time`, its header, K rows); returns N and the rows.
    #[track_caller]
    fn next_table(out: &mut Log) -> (usize, Vec<Row>) {
        let title = out.next_matching("stats top line", |l| {
            unlabel(l).1.starts_with("stats top: ")
        });
        let words: Vec<&str> = unlabel(&title).1.split(' ').collect();
        // ["stats", "top:", K, "of", N, "sockets", "by", "handler", "time"]
        assert_eq!(words.len(), 9, "{title:?}");
        let (k, n): (usize, usize) = (words[2].parse().unwrap(), words[4].parse().unwrap());
        assert!(k <= 10 && k == n.min(10), "{title:?}");
        let header = out.next_matching("table header", |_| true);
        assert!(
            unlabel(&header).1.trim_start().starts_with("token")
                && header.contains("responder")
                && header.trim_end().ends_with("queued"),
            "{header:?}"
        );
        let mut rows = Vec::new();
        for _ in 0..k {
            let line = out.next_matching("table row", |_| true);
            let fields: Vec<&str> = unlabel(&line).1.split_whitespace().collect();
            assert!(fields.len() >= 8, "a short row: {line:?}");
            assert!(fields[0].starts_with('#'), "a token first: {line:?}");
            let end = fields.len();
            let number = |i: usize| -> u64 {
                fields[i]
                    .parse()
                    .unwrap_or_else(|_| panic!("not a count: {line:?}"))
            };
            number(end - 1); // queued
            rows.push(Row {
                responder: fields[1..end - 6].join(" "),
                events: number(end - 6),
                bytes_in: number(end - 5),
                bytes_out: number(end - 4),
            });
        }
        (n, rows)
    }

    /// Connects to `addr` and echoes `len` bytes through it (all of them
    /// back before it returns); the connection stays open.
    #[track_caller]
    fn echoed(addr: SocketAddr, len: usize) -> TcpStream {
        let mut client = TcpStream::connect(addr).expect("connect");
        client.set_read_timeout(Some(LIMIT)).unwrap();
        let sent = pattern(len, 7);
        let writer = {
            let mut w = client.try_clone().unwrap();
            let sent = sent.clone();
            std::thread::spawn(move || w.write_all(&sent).expect("write"))
        };
        let mut back = vec![0; len];
        client.read_exact(&mut back).expect("the echo");
        writer.join().unwrap();
        assert!(back == sent, "the echo differs");
        client
    }

    const ECHOED: usize = 100_000;

    /// `tcp_echo --stats`: a line with no connection before the client, a
    /// line with its connection and bytes both ways while it echoes, a line
    /// with its connection and no bytes while it idles (rates, not totals),
    /// and no connection after it leaves; never more connections than the
    /// one client. A graceful stop still works (Unix).
    #[test]
    fn tcp_echo_line_follows_a_client() {
        let mut server = start("tcp_echo", &["--stats"]);
        let first = server.next_line();
        assert_eq!(first.label, None, "one loop, no prefix");
        assert_eq!(
            (first.conns, first.bytes_in, first.bytes_out),
            (0, 0.0, 0.0)
        );

        let client = echoed(server.addr, ECHOED);
        let (mut saw_in, mut saw_out) = (false, false);
        while !(saw_in && saw_out) {
            let line = server.next_line();
            assert!(line.conns <= 1, "{line:?}");
            if line.conns == 1 {
                saw_in |= line.bytes_in > 0.0;
                saw_out |= line.bytes_out > 0.0;
            }
        }
        // Idle now: the rates fall to zero while the connection stays.
        loop {
            let line = server.next_line();
            assert_eq!(line.conns, 1, "{line:?}");
            if line.bytes_in == 0.0 && line.bytes_out == 0.0 {
                break;
            }
        }
        drop(client);
        while server.next_line().conns != 0 {}
        #[cfg(unix)]
        server.stop();
    }

    /// The busy connection's row: its responder, bytes both ways exact.
    #[track_caller]
    fn check_table(n: usize, rows: &[Row]) {
        // The listener and the connection (the view's own socket is left
        // out of its table).
        assert_eq!(n, 2, "{rows:?}");
        let conn = rows
            .iter()
            .find(|r| r.responder.starts_with("Stream<"))
            .unwrap_or_else(|| panic!("no connection in {rows:?}"));
        assert_eq!(conn.responder, "Stream<Raw, Echo>");
        assert_eq!(
            (conn.bytes_in, conn.bytes_out),
            (ECHOED as u64, ECHOED as u64)
        );
        assert!(conn.events >= 2, "{conn:?}");
        let listener = rows
            .iter()
            .find(|r| r.responder.starts_with("Acceptor<"))
            .unwrap_or_else(|| panic!("no listener in {rows:?}"));
        assert!(listener.events >= 1, "{listener:?}");
    }

    /// `tcp_echo --stats` and SIGUSR1: the table at once (plain `--stats`
    /// prints none on its own), with the busy connection.
    #[cfg(unix)]
    #[test]
    fn tcp_echo_table_on_sigusr1() {
        let mut server = start("tcp_echo", &["--stats"]);
        // A line: the view watches SIGUSR1 by now (else it would end the
        // process).
        server.next_line();
        let _client = echoed(server.addr, ECHOED);
        server.sigusr1();
        let (n, rows) = next_table(&mut server.out);
        check_table(n, &rows);
        server.stop();
    }

    /// `tcp_echo --stats-top`: the table comes with the tenth line, and
    /// every tenth after, with the busy connection (all platforms).
    #[test]
    fn tcp_echo_stats_top_prints_the_table_every_ten_lines() {
        let mut server = start("tcp_echo", &["--stats-top"]);
        let _client = echoed(server.addr, ECHOED);
        let (mut n, mut rows) = next_table(&mut server.out);
        let lines = server
            .out
            .seen()
            .iter()
            .filter(|l| parse_line(l).is_some())
            .count();
        assert_eq!(lines, 10, "the table comes with the tenth line");
        // A machine slow enough to print the first table before the echo
        // was over shows the connection in the next.
        while !rows.iter().any(|r| r.bytes_out == ECHOED as u64) {
            (n, rows) = next_table(&mut server.out);
        }
        check_table(n, &rows);
    }

    /// `tcp_echo --threads 2 --stats`: each loop prints its own lines,
    /// prefixed `[loop 0]` and `[loop 1]`, and (Unix) its own table on
    /// SIGUSR1.
    #[test]
    fn tcp_echo_threads_print_a_line_per_loop() {
        let mut server = start("tcp_echo", &["--threads", "2", "--stats"]);
        let mut seen = [false; 2];
        while seen != [true, true] {
            let line = server.next_line();
            let i = line.label.expect("a [loop i] prefix");
            assert!(i < 2, "{line:?}");
            seen[i] = true;
        }
        #[cfg(unix)]
        {
            // Each loop has printed a line: each watches SIGUSR1.
            server.sigusr1();
            let mut tables = [false; 2];
            while tables != [true, true] {
                next_table(&mut server.out);
                let title = server
                    .out
                    .seen()
                    .iter()
                    .rev()
                    .find(|l| l.contains("stats top: "))
                    .expect("the title just read");
                let i = unlabel(title).0.expect("a [loop i] prefix");
                assert!(!tables[i], "loop {i} printed two tables for one signal");
                tables[i] = true;
            }
            server.stop();
        }
    }

    /// The other server examples print the line too: `udp_echo` (no
    /// connections, the bytes of a datagram echoed), `chat`, `kv` (and `kv
    /// --threads 2`, one line per loop).
    #[test]
    fn the_other_examples_print_the_line() {
        let mut udp = start("udp_echo", &["--stats"]);
        udp.next_line();
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client.set_read_timeout(Some(LIMIT)).unwrap();
        client.send_to(b"hello", udp.addr).unwrap();
        let mut buf = [0; 16];
        assert_eq!(client.recv(&mut buf).expect("the echo"), 5);
        loop {
            let line = udp.next_line();
            assert_eq!(line.conns, 0, "UDP has no connections: {line:?}");
            // Both in one line: the reply goes out in the handler call
            // that receives the datagram.
            assert_eq!(line.bytes_in > 0.0, line.bytes_out > 0.0, "{line:?}");
            if line.bytes_in > 0.0 {
                break;
            }
        }
        for (name, args) in [
            ("chat", &["--stats"][..]),
            ("kv", &["--stats"]),
            ("kv", &["--threads", "2", "--stats-top"]),
        ] {
            let mut server = start(name, args);
            let line = server.next_line();
            assert_eq!(line.conns, 0, "{name} {args:?}: {line:?}");
            assert_eq!(
                line.label.is_some(),
                args.contains(&"--threads"),
                "{line:?}"
            );
        }
    }

    /// An HTTP/1.1 exchange on a kept-alive connection: sends `request`,
    /// returns the response's head and body (none for a `HEAD`), and the
    /// response's length.
    #[track_caller]
    fn exchange(
        stream: &mut TcpStream,
        reader: &mut BufReader<TcpStream>,
        request: &[u8],
    ) -> (String, Vec<u8>, usize) {
        stream.write_all(request).expect("request");
        let mut head = String::new();
        loop {
            let before = head.len();
            reader.read_line(&mut head).expect("a head line");
            assert!(head.len() > before, "the response ended early: {head:?}");
            if head.ends_with("\r\n\r\n") {
                break;
            }
        }
        let length: usize = header(&head, "content-length")
            .expect("Content-Length")
            .parse()
            .expect("a length");
        // The answer to a HEAD has the length of a GET's body, and no body.
        let length = if request.starts_with(b"HEAD ") {
            0
        } else {
            length
        };
        let mut body = vec![0; length];
        reader.read_exact(&mut body).expect("the body");
        let total = head.len() + length;
        (head, body, total)
    }

    /// The value of header `name` (lowercase) in `head`.
    fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
        head.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            (n.eq_ignore_ascii_case(name)).then(|| v.trim())
        })
    }

    fn is_name(name: &str) -> bool {
        let mut chars = name.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    }

    /// Parses Prometheus' text format (0.0.4), failing the test on a line
    /// that breaks it: `# HELP name text`, `# TYPE name kind` (at most once
    /// per name, before its samples; counters end in `_total`), and
    /// samples `name{label="value",...} value`, each series once. Returns
    /// each series (`name{labels}`) and its value.
    #[track_caller]
    fn parse_prometheus(text: &str) -> HashMap<String, f64> {
        let mut types: HashMap<&str, &str> = HashMap::new();
        let mut samples = HashMap::new();
        for line in text.lines().filter(|l| !l.is_empty()) {
            if let Some(rest) = line.strip_prefix('#') {
                let mut words = rest.trim_start().splitn(3, ' ');
                let (keyword, name, rest) = (words.next(), words.next(), words.next());
                let name = name.unwrap_or_else(|| panic!("{line:?}"));
                assert!(is_name(name), "{line:?}");
                match keyword {
                    Some("HELP") => assert!(rest.is_some_and(|h| !h.is_empty()), "{line:?}"),
                    Some("TYPE") => {
                        let kind = rest.unwrap_or_else(|| panic!("{line:?}"));
                        assert!(
                            ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                            "{line:?}"
                        );
                        assert!(kind != "counter" || name.ends_with("_total"), "{line:?}");
                        assert!(types.insert(name, kind).is_none(), "TYPE twice: {line:?}");
                    }
                    _ => panic!("a comment that is neither HELP nor TYPE: {line:?}"),
                }
                continue;
            }
            let (series, value) = line
                .rsplit_once(' ')
                .unwrap_or_else(|| panic!("no value: {line:?}"));
            let value: f64 = match value {
                "+Inf" => f64::INFINITY,
                "-Inf" => f64::NEG_INFINITY,
                v => v
                    .parse()
                    .unwrap_or_else(|_| panic!("a bad value: {line:?}")),
            };
            let (name, labels) = match series.split_once('{') {
                Some((name, labels)) => (
                    name,
                    labels
                        .strip_suffix('}')
                        .unwrap_or_else(|| panic!("{line:?}")),
                ),
                None => (series, ""),
            };
            assert!(is_name(name), "a bad name: {line:?}");
            for pair in labels.split(',').filter(|p| !p.is_empty()) {
                let (label, v) = pair.split_once('=').unwrap_or_else(|| panic!("{line:?}"));
                assert!(is_name(label) && !label.contains(':'), "{line:?}");
                assert!(
                    v.len() >= 2 && v.starts_with('"') && v.ends_with('"'),
                    "{line:?}"
                );
            }
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .filter_map(|s| name.strip_suffix(s))
                .find(|f| matches!(types.get(f), Some(&("histogram" | "summary"))))
                .unwrap_or(name);
            assert!(types.contains_key(family), "no TYPE before {line:?}");
            assert!(
                samples.insert(series.to_string(), value).is_none(),
                "{series} twice"
            );
        }
        samples
    }

    /// The figures any scrape must have, consistent with each other.
    #[track_caller]
    fn check_consistent(m: &HashMap<String, f64>) {
        let get = |k: &str| *m.get(k).unwrap_or_else(|| panic!("no {k} in {m:?}"));
        let polls = get("sockmux_polls_total");
        assert!(polls >= 1.0);
        assert_eq!(get("sockmux_events_per_poll_count"), polls);
        assert_eq!(get("sockmux_events_per_poll_bucket{le=\"+Inf\"}"), polls);
        assert_eq!(
            get("sockmux_events_per_poll_sum"),
            get("sockmux_events_total")
        );
        let mut last = 0.0;
        for le in [
            "0", "1", "3", "7", "15", "31", "63", "127", "255", "511", "1023", "+Inf",
        ] {
            let n = get(&format!("sockmux_events_per_poll_bucket{{le=\"{le}\"}}"));
            assert!(n >= last, "buckets are cumulative");
            last = n;
        }
        let mut last = 0.0;
        for q in ["0.5", "0.9", "0.99", "0.999"] {
            let v = get(&format!("sockmux_handler_seconds{{quantile=\"{q}\"}}"));
            assert!(v >= last, "quantiles grow");
            last = v;
        }
        assert!(get("sockmux_handler_seconds_count") >= 1.0);
        assert_eq!(
            get("sockmux_handler_seconds_sum"),
            get("sockmux_handler_seconds_total")
        );
        assert!((0.0..=1.0).contains(&get("sockmux_loop_utilisation")));
        for k in [
            "sockmux_turns_total",
            "sockmux_timers_scheduled_total",
            "sockmux_timers_fired_total",
            "sockmux_wakes_total",
            "sockmux_signals_total",
            "sockmux_loop_busy_seconds_total",
            "sockmux_loop_waiting_seconds_total",
            "sockmux_ready_queue",
            "sockmux_ready_queue_max",
            "sockmux_longest_turn_seconds",
        ] {
            assert!(get(k) >= 0.0, "{k}");
        }
    }

    /// `GET /metrics` with a plain client, on a kept-alive connection that
    /// first echoed a body: Prometheus text, `text/plain; version=0.0.4`,
    /// consistent figures, and counts that match the client's traffic to
    /// the byte (its round trips are over before it asks). A second scrape
    /// moves every counter forward, none back.
    #[test]
    fn http_metrics_is_prometheus_text() {
        let server = start("http", &[]);
        let mut stream = TcpStream::connect(server.addr).expect("connect");
        stream.set_read_timeout(Some(LIMIT)).unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let body = pattern(50_000, 3);
        let mut post = format!(
            "POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        post.extend_from_slice(&body);
        let (head, echo, echo_len) = exchange(&mut stream, &mut reader, &post);
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(echo == body, "the echo differs");

        let get = b"GET /metrics HTTP/1.1\r\nHost: test\r\n\r\n";
        let (head, text, text_len) = exchange(&mut stream, &mut reader, get);
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert_eq!(
            header(&head, "content-type"),
            Some("text/plain; version=0.0.4")
        );
        let first = parse_prometheus(std::str::from_utf8(&text).expect("UTF-8"));
        check_consistent(&first);
        let want = [
            ("sockmux_http_requests_total", 2),
            ("sockmux_http_connections_total", 1),
            ("sockmux_connections", 1),
            // The listener and this connection (no --stats: no view).
            ("sockmux_sockets", 2),
            // Read before the answer: all of both requests.
            ("sockmux_bytes_received_total", post.len() + get.len()),
            // The echo's answer, whole before this request was sent.
            ("sockmux_bytes_sent_total", echo_len),
        ];
        for (name, value) in want {
            assert_eq!(first.get(name).copied(), Some(value as f64), "{name}");
        }

        let (_, text, _) = exchange(&mut stream, &mut reader, get);
        let second = parse_prometheus(std::str::from_utf8(&text).expect("UTF-8"));
        check_consistent(&second);
        for (name, value) in &first {
            if name.contains("_total") {
                assert!(second[name] >= *value, "{name} went back");
            }
        }
        assert_eq!(second["sockmux_http_requests_total"], 3.0);
        assert_eq!(
            second["sockmux_bytes_received_total"],
            (post.len() + 2 * get.len()) as f64
        );
        assert_eq!(
            second["sockmux_bytes_sent_total"],
            (echo_len + text_len) as f64
        );
        // A HEAD has the headers and no body; another method is refused.
        let (head, body, _) = exchange(
            &mut stream,
            &mut reader,
            b"HEAD /metrics HTTP/1.1\r\nHost: test\r\n\r\n",
        );
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(
            header(&head, "content-length").is_some_and(|l| l != "0"),
            "{head}"
        );
        assert!(body.is_empty());
        let (head, _, _) = exchange(
            &mut stream,
            &mut reader,
            b"POST /metrics HTTP/1.1\r\nHost: test\r\nContent-Length: 0\r\n\r\n",
        );
        assert!(head.starts_with("HTTP/1.1 405"), "{head}");
    }

    /// curl scrapes `/metrics` of `http --stats` while a plain client
    /// holds a connection: the same format, both connections counted, and
    /// the live view's line printed meanwhile. Skipped without curl unless
    /// CI requires it (`SOCKMUX_REQUIRE_REAL_CLIENTS`).
    #[cfg(unix)]
    #[test]
    fn curl_scrapes_http_metrics() {
        use crate::util::clients::have;
        use crate::util::harness::output_within;

        if !have("curl", "--version") {
            return;
        }
        let mut server = start("http", &["--stats"]);
        let mut stream = TcpStream::connect(server.addr).expect("connect");
        stream.set_read_timeout(Some(LIMIT)).unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let get = b"GET / HTTP/1.1\r\nHost: test\r\n\r\n";
        let (head, _, _) = exchange(&mut stream, &mut reader, get);
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");

        let url = format!("http://{}/metrics", server.addr);
        let out = output_within(Command::new("curl").args(["-s", "-i", "--max-time", "60", &url]));
        assert!(out.status.success(), "curl: {:?}", out.status);
        let text = String::from_utf8(out.stdout).expect("UTF-8");
        let (head, body) = text.split_once("\r\n\r\n").expect("a head");
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert_eq!(
            header(head, "content-type"),
            Some("text/plain; version=0.0.4")
        );
        let m = parse_prometheus(body);
        check_consistent(&m);
        assert_eq!(m["sockmux_connections"], 2.0, "ours and curl's");
        // The listener, the view's socket, ours and curl's.
        assert_eq!(m["sockmux_sockets"], 4.0);
        assert_eq!(m["sockmux_http_requests_total"], 2.0);
        assert!(m["sockmux_bytes_received_total"] > get.len() as f64);
        server.next_line();
        server.stop();
    }
}
