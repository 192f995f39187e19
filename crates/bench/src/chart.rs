//! The chart: server CPU per request and p99 latency per server, one panel
//! per connection count, figure and request size (SVG), linear scales from
//! zero with each bar's value written on it.

use std::error::Error;
use std::path::Path;

use plotters::prelude::*;

use crate::report::{Case, Results, Summary};

/// A panel column: its name, the figure it shows, the request size.
type Figure = (&'static str, fn(&Summary) -> Option<f64>);

/// Bar colours, one per server (cycled): the raw mio pair in greys.
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
    sizes.sort_unstable();
    sizes.dedup();
    let mut conns: Vec<usize> = results.cases.iter().map(|c| c.conns).collect();
    conns.sort_unstable();
    conns.dedup();
    let figures: [Figure; 2] = [
        ("server CPU µs/request", |s| s.cpu_us),
        ("p99 latency µs", |s| Some(s.p99_us)),
    ];
    let columns: Vec<(Figure, usize)> = figures
        .iter()
        .flat_map(|&f| sizes.iter().map(move |&size| (f, size)))
        .collect();
    let (width, height) = (
        (420 * columns.len()).max(420) as u32,
        (300 * conns.len() + 90) as u32,
    );
    let root = SVGBackend::new(path, (width, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let (top, rest) = root.split_vertically(40);
    top.titled(title, ("sans-serif", 20))?;
    let (body, legend) = rest.split_vertically(height - 80);
    let panels = body.split_evenly((conns.len().max(1), columns.len().max(1)));
    let n = results.labels.len();
    for (row, &c) in conns.iter().enumerate() {
        for (col, &((name, value), size)) in columns.iter().enumerate() {
            let area = &panels[row * columns.len() + col];
            let case = Case { conns: c, size };
            let bars: Vec<(usize, f64)> = results
                .labels
                .iter()
                .enumerate()
                .filter_map(|(i, label)| {
                    let s = results.summary(label, case)?;
                    Some((i, value(&s)?))
                })
                .collect();
            let max = bars.iter().map(|b| b.1).fold(0.0, f64::max).max(1e-3);
            let mut chart = ChartBuilder::on(area)
                .caption(format!("{name}, {c} conns × {size} B"), ("sans-serif", 14))
                .margin(8)
                .x_label_area_size(18)
                .y_label_area_size(44)
                .build_cartesian_2d(0.0..n as f64, 0.0..max * 1.18)?;
            chart
                .configure_mesh()
                .disable_x_mesh()
                .x_labels(0)
                .y_labels(5)
                .draw()?;
            chart.draw_series(bars.iter().map(|&(i, v)| {
                let x = i as f64;
                Rectangle::new(
                    [(x + 0.12, 0.0), (x + 0.88, v)],
                    COLORS[i % COLORS.len()].filled(),
                )
            }))?;
            chart.draw_series(bars.iter().map(|&(i, v)| {
                let text = if v >= 100.0 {
                    format!("{v:.0}")
                } else {
                    format!("{v:.2}")
                };
                Text::new(text, (i as f64 + 0.12, v + max * 0.07), ("sans-serif", 10))
            }))?;
        }
    }
    // The legend: one swatch per server, in a row.
    let step = (width as i32 - 40) / n.max(1) as i32;
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
