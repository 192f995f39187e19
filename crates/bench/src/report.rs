//! Medians of repeated runs, and the table of ratios to the baseline.

use std::collections::HashMap;
use std::fmt::Write as _;

use crate::LoadReport;

/// One load shape: connections × bytes per request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Case {
    /// Connections, each with one request in flight.
    pub conns: usize,
    /// Bytes per request.
    pub size: usize,
}

/// Medians over the repetitions of one server under one case.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Summary {
    /// Requests per second.
    pub requests_per_sec: f64,
    /// Median latency, µs.
    pub p50_us: f64,
    /// 99th percentile latency, µs.
    pub p99_us: f64,
    /// Server CPU (user + system) per request, µs.
    pub cpu_us: Option<f64>,
    /// The lowest server CPU per request of the runs, µs: on a shared
    /// virtual machine the one least disturbed.
    pub cpu_min_us: Option<f64>,
    /// Server peak resident memory, MiB.
    pub rss_mib: Option<f64>,
    /// How many runs the medians are over.
    pub runs: usize,
}

/// Every run of a benchmark, by server label and case.
#[derive(Clone, Debug, Default)]
pub struct Results {
    /// Server labels, in table order; the first is the baseline.
    pub labels: Vec<String>,
    /// Cases, in table order.
    pub cases: Vec<Case>,
    runs: HashMap<(String, Case), Vec<LoadReport>>,
}

/// The median of some values (the mean of the middle two for an even count).
#[must_use]
pub fn median(mut values: Vec<f64>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    })
}

impl Results {
    /// Results for these servers and cases, with no runs yet.
    #[must_use]
    pub fn new(labels: Vec<String>, cases: Vec<Case>) -> Results {
        Results {
            labels,
            cases,
            runs: HashMap::new(),
        }
    }

    /// Records one run.
    pub fn add(&mut self, label: &str, case: Case, report: LoadReport) {
        self.runs
            .entry((label.to_string(), case))
            .or_default()
            .push(report);
    }

    /// Medians of the runs of `label` under `case`; `None` without runs.
    #[must_use]
    pub fn summary(&self, label: &str, case: Case) -> Option<Summary> {
        let runs = self.runs.get(&(label.to_string(), case))?;
        let of =
            |f: &dyn Fn(&LoadReport) -> Option<f64>| median(runs.iter().filter_map(f).collect());
        Some(Summary {
            requests_per_sec: of(&|r| Some(r.requests_per_sec()))?,
            p50_us: of(&|r| Some(r.p50.as_secs_f64() * 1e6))?,
            p99_us: of(&|r| Some(r.p99.as_secs_f64() * 1e6))?,
            cpu_us: of(&|r| r.cpu_us_per_request()),
            cpu_min_us: runs
                .iter()
                .filter_map(LoadReport::cpu_us_per_request)
                .min_by(f64::total_cmp),
            rss_mib: of(&|r| r.server_peak_rss_kib.map(|k| k as f64 / 1024.0)),
            runs: runs.len(),
        })
    }

    /// The table: one row per case and server, each figure with its ratio
    /// to the first server's under the same case (Markdown).
    #[must_use]
    pub fn table(&self) -> String {
        let base_label = &self.labels[0];
        let mut out = String::new();
        out.push_str(
            "| conns | bytes | server | req/s | ×base | p50 µs | p99 µs | ×base | server CPU µs/req | ×base | min CPU µs/req | ×base | peak RSS MiB | ×base |\n\
             |---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        );
        for &case in &self.cases {
            let base = self.summary(base_label, case);
            for label in &self.labels {
                let Some(s) = self.summary(label, case) else {
                    continue;
                };
                let ratio = |v: Option<f64>, b: Option<f64>| match (v, b) {
                    (Some(v), Some(b)) if b > 0.0 => format!("{:.2}", v / b),
                    _ => "–".into(),
                };
                let num = |v: Option<f64>, digits: usize| {
                    v.map_or("–".into(), |v| format!("{v:.digits$}"))
                };
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {:.0} | {} | {:.0} | {:.0} | {} | {} | {} | {} | {} | {} | {} |",
                    case.conns,
                    case.size,
                    label,
                    s.requests_per_sec,
                    ratio(Some(s.requests_per_sec), base.map(|b| b.requests_per_sec)),
                    s.p50_us,
                    s.p99_us,
                    ratio(Some(s.p99_us), base.map(|b| b.p99_us)),
                    num(s.cpu_us, 2),
                    ratio(s.cpu_us, base.and_then(|b| b.cpu_us)),
                    num(s.cpu_min_us, 2),
                    ratio(s.cpu_min_us, base.and_then(|b| b.cpu_min_us)),
                    num(s.rss_mib, 2),
                    ratio(s.rss_mib, base.and_then(|b| b.rss_mib)),
                );
            }
        }
        out
    }

    /// The A/A check: for each case, the second copy's server CPU per
    /// request as a ratio to the first's. Far from 1, the run was disturbed.
    #[must_use]
    pub fn aa_ratios(&self, copy: &str) -> Vec<(Case, f64)> {
        let base = &self.labels[0];
        self.cases
            .iter()
            .filter_map(|&case| {
                let a = self.summary(base, case)?.cpu_us?;
                let b = self.summary(copy, case)?.cpu_us?;
                Some((case, b / a))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn medians_and_ratios() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(vec![]), None);
        let case = Case { conns: 1, size: 64 };
        let mut results = Results::new(vec!["a".into(), "b".into()], vec![case]);
        let report = |cpu_ms: u64| LoadReport {
            requests: 1000,
            elapsed: Duration::from_secs(1),
            p50: Duration::from_micros(10),
            p99: Duration::from_micros(20),
            server_cpu: Some(Duration::from_millis(cpu_ms)),
            server_peak_rss_kib: Some(2048),
        };
        for ms in [100, 300, 200] {
            results.add("a", case, report(ms));
        }
        results.add("b", case, report(100));
        assert_eq!(results.summary("a", case).unwrap().cpu_us, Some(200.0));
        assert_eq!(results.aa_ratios("b"), vec![(case, 0.5)]);
        let table = results.table();
        assert!(
            table.contains(
                "| 1 | 64 | b | 1000 | 1.00 | 10 | 20 | 1.00 | 100.00 | 0.50 | 100.00 | 1.00 | 2.00 | 1.00 |"
            ),
            "{table}"
        );
    }
}
