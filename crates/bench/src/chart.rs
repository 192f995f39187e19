//! The chart: server CPU per request and p99 latency, per server and
//! connection count, one panel per figure and request size (SVG).

use std::error::Error;
use std::path::Path;

use plotters::prelude::*;

use crate::report::{Case, Results, Summary};

/// A panel row: its name, the figure it shows, and whether on a log scale.
type Figure = (&'static str, fn(&Summary) -> Option<f64>, bool);

/// Bar colours, one per server (cycled).
const COLORS: [RGBColor; 8] = [
    RGBColor(90, 90, 90),
    RGBColor(160, 160, 160),
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// Writes the chart of `results` to `path` as SVG.
///
/// # Errors
///
/// The drawing or file error.
pub fn write_chart(results: &Results, title: &str, path: &Path) -> Result<(), Box<dyn Error>> {
    let mut sizes: Vec<usize> = results.cases.iter().map(|c| c.size).collect();
    sizes.dedup();
    let mut conns: Vec<usize> = results.cases.iter().map(|c| c.conns).collect();
    conns.sort_unstable();
    conns.dedup();
    let width = 560 * sizes.len() as u32;
    let root = SVGBackend::new(path, (width.max(560), 860)).into_drawing_area();
    root.fill(&WHITE)?;
    let (top, rest) = root.split_vertically(40);
    top.titled(title, ("sans-serif", 20))?;
    let (body, legend) = rest.split_vertically(780);
    let panels = body.split_evenly((2, sizes.len()));
    let figures: [Figure; 2] = [
        ("server CPU µs/request", |s| s.cpu_us, false),
        ("p99 latency µs (log scale)", |s| Some(s.p99_us), true),
    ];
    for (row, (name, value, log)) in figures.iter().enumerate() {
        for (col, &size) in sizes.iter().enumerate() {
            let area = &panels[row * sizes.len() + col];
            let bars = bars(results, &conns, size, *value);
            let max = bars.iter().map(|b| b.3).fold(0.0, f64::max).max(1e-3);
            let caption = format!("{name}, {size}-byte requests");
            let mut builder = ChartBuilder::on(area);
            builder
                .caption(caption, ("sans-serif", 16))
                .margin(12)
                .x_label_area_size(28)
                .y_label_area_size(56);
            let x_range = 0.0..conns.len() as f64;
            let label_groups = |x: &f64| {
                let i = x.floor() as usize;
                if (x - i as f64 - 0.5).abs() < 1e-6 && i < conns.len() {
                    format!("{} conns", conns[i])
                } else {
                    String::new()
                }
            };
            if *log {
                let min = bars
                    .iter()
                    .map(|b| b.3)
                    .filter(|v| *v > 0.0)
                    .fold(f64::INFINITY, f64::min)
                    .min(max)
                    / 2.0;
                let mut chart =
                    builder.build_cartesian_2d(x_range, (min..max * 2.0).log_scale())?;
                chart
                    .configure_mesh()
                    .disable_x_mesh()
                    .x_labels(conns.len() * 2 + 1)
                    .x_label_formatter(&label_groups)
                    .draw()?;
                chart.draw_series(bars.iter().map(|&(x0, x1, i, v)| {
                    Rectangle::new(
                        [(x0, min), (x1, v.max(min))],
                        COLORS[i % COLORS.len()].filled(),
                    )
                }))?;
            } else {
                let mut chart = builder.build_cartesian_2d(x_range, 0.0..max * 1.1)?;
                chart
                    .configure_mesh()
                    .disable_x_mesh()
                    .x_labels(conns.len() * 2 + 1)
                    .x_label_formatter(&label_groups)
                    .draw()?;
                chart.draw_series(bars.iter().map(|&(x0, x1, i, v)| {
                    Rectangle::new([(x0, 0.0), (x1, v)], COLORS[i % COLORS.len()].filled())
                }))?;
            }
        }
    }
    // The legend: one swatch per server, in a row.
    let step = (width.max(560) as i32 - 40) / results.labels.len().max(1) as i32;
    for (i, label) in results.labels.iter().enumerate() {
        let x = 20 + step * i as i32;
        legend.draw(&Rectangle::new(
            [(x, 12), (x + 14, 26)],
            COLORS[i % COLORS.len()].filled(),
        ))?;
        legend.draw(&Text::new(label.clone(), (x + 20, 12), ("sans-serif", 14)))?;
    }
    root.present()?;
    Ok(())
}

/// Bars for one panel: (x from, x to, server index, value).
fn bars(
    results: &Results,
    conns: &[usize],
    size: usize,
    value: fn(&Summary) -> Option<f64>,
) -> Vec<(f64, f64, usize, f64)> {
    let n = results.labels.len().max(1) as f64;
    let width = 0.8 / n;
    let mut out = Vec::new();
    for (g, &c) in conns.iter().enumerate() {
        for (i, label) in results.labels.iter().enumerate() {
            let case = Case { conns: c, size };
            let Some(v) = results.summary(label, case).as_ref().and_then(value) else {
                continue;
            };
            let x0 = g as f64 + 0.1 + width * i as f64;
            out.push((x0, x0 + width * 0.9, i, v));
        }
    }
    out
}
