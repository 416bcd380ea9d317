//! The SVG plot of every column of peers.md: throughput per engine
//! (sustained, append, batch of 100, durable 1/sync, durable 100/sync, scan), append latency
//! percentiles, and reopen time; each a bar at the median with an error bar
//! from the slowest to the fastest round. Axes are fitted to the data (log
//! scale), figures an engine does not have are marked "n/a", and a caption
//! names the machine and date. SVG backend: no font files needed.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::Res;

/// A figure over the rounds: median, slowest, fastest.
pub type Spread = Option<(f64, f64, f64)>;

pub struct Row {
    pub name: String,
    /// Why every round failed, if they all did.
    pub failed: Option<String>,
    /// sustained, append, batch of 100, durable 1/sync, durable 100/sync, scan (records/s).
    pub rates: [Spread; 6],
    /// append p50, p99, p99.9 (ns).
    pub lat: [Spread; 3],
    /// Reopen (recovery) time.
    pub reopen_ms: Spread,
}

const RATE_NAMES: [&str; 6] = ["sustained", "append", "batch of 100", "durable, 1/sync", "durable, 100/sync", "scan"];
const LAT_NAMES: [&str; 3] = ["p50", "p99", "p99.9"];
const COLORS: [RGBColor; 6] = [
    RGBColor(140, 86, 75),
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
];

pub fn draw(path: &Path, caption: &str, rows: &[Row]) -> Res<()> {
    let root = SVGBackend::new(path, (1600, 1300)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let (top, body) = root.split_vertically(60);
    top.draw(&Text::new("varvelog and its peers", (16, 8), ("sans-serif", 22).into_font())).map_err(|e| e.to_string())?;
    top.draw(&Text::new(caption.to_string(), (16, 36), ("sans-serif", 14).into_font())).map_err(|e| e.to_string())?;
    // Stacked, each the full width, so seven engines' names fit under their groups.
    let (upper, lower) = body.split_vertically(500);
    let (left, right) = lower.split_vertically(390);
    let rates: Vec<Vec<Spread>> = rows.iter().map(|r| r.rates.to_vec()).collect();
    bars(&upper, rows, "Throughput (records/s, log scale)", &RATE_NAMES, &rates, crate::axis::rate)?;
    let lat: Vec<Vec<Spread>> = rows.iter().map(|r| r.lat.to_vec()).collect();
    bars(&left, rows, "Append latency per call (log scale)", &LAT_NAMES, &lat, crate::axis::ns)?;
    let reopen: Vec<Vec<Spread>> = rows.iter().map(|r| vec![r.reopen_ms]).collect();
    bars(&right, rows, "Reopen (ms, log scale)", &["reopen"], &reopen, ms_label)?;
    root.present().map_err(|e| e.to_string())?;
    Ok(())
}

fn ms_label(v: f64) -> String {
    crate::axis::ns(v * 1e6)
}

/// A log range fitted to `values` (every median, slowest and fastest),
/// with a little room either side; no empty decades.
fn fitted(values: &[Vec<Spread>]) -> (f64, f64) {
    let all: Vec<f64> = values.iter().flatten().flatten().flat_map(|&(m, lo, hi)| [m, lo, hi]).filter(|v| *v > 0.0).collect();
    let lo = all.iter().copied().fold(f64::MAX, f64::min);
    let hi = all.iter().copied().fold(0.0, f64::max);
    if all.is_empty() {
        (1.0, 10.0)
    } else {
        (lo / 1.6, hi * 1.6)
    }
}

/// Grouped bars: one group per engine, one bar per series; error bars
/// from the slowest to the fastest round; "n/a" where an engine has no
/// such figure, "failed" where all its rounds failed.
fn bars<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    rows: &[Row],
    title: &str,
    series: &[&str],
    values: &[Vec<Spread>],
    label: fn(f64) -> String,
) -> Res<()>
where
    DB::ErrorType: 'static,
{
    let n = rows.len().max(1);
    let (lo, hi) = fitted(values);
    // The legend in a row of its own above the bars, so it hides none.
    let (legend, area) = area.split_vertically(30);
    let mut x = 90;
    for (s, name) in series.iter().enumerate() {
        let color = COLORS[s % COLORS.len()];
        legend.draw(&Rectangle::new([(x, 12), (x + 12, 24)], color.filled())).map_err(|e| e.to_string())?;
        legend.draw(&Text::new(name.to_string(), (x + 18, 12), ("sans-serif", 13).into_font())).map_err(|e| e.to_string())?;
        x += 30 + 8 * name.len() as i32;
    }
    let mut chart = ChartBuilder::on(&area)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .margin_right(30)
        .x_label_area_size(60)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..n as f64, (lo..hi).log_scale())
        .map_err(|e| e.to_string())?;
    let names: Vec<String> = rows.iter().map(|r| r.name.clone()).collect();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n * 2 + 1)
        .x_label_formatter(&|x| {
            let i = x.floor() as usize;
            if (x - i as f64 - 0.5).abs() < 0.26 {
                names.get(i).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .y_label_formatter(&|y| label(*y))
        .draw()
        .map_err(|e| e.to_string())?;
    let k = series.len() as f64;
    let width = 0.8 / k;
    let small = ("sans-serif", 11).into_font();
    for s in 0..series.len() {
        let color = COLORS[s % COLORS.len()];
        let x0 = |i: usize| i as f64 + 0.1 + s as f64 * width;
        let figures: Vec<(usize, (f64, f64, f64))> =
            values.iter().enumerate().filter_map(|(i, v)| v.get(s).copied().flatten().map(|f| (i, f))).collect();
        let rects =
            figures.iter().map(|&(i, (m, _, _))| Rectangle::new([(x0(i), lo), (x0(i) + width * 0.85, m.clamp(lo, hi))], color.filled()));
        chart.draw_series(rects).map_err(|e| e.to_string())?;
        for &(i, (_, slow, fast)) in &figures {
            let mid = x0(i) + width * 0.425;
            let whisker = [(mid, slow), (mid, fast)];
            let caps = [slow, fast].map(|v| PathElement::new(vec![(mid - width * 0.2, v), (mid + width * 0.2, v)], BLACK.stroke_width(1)));
            chart.draw_series(std::iter::once(PathElement::new(whisker.to_vec(), BLACK.stroke_width(1)))).map_err(|e| e.to_string())?;
            chart.draw_series(caps).map_err(|e| e.to_string())?;
        }
        // Engines without this figure: say so where the bar would be.
        for (i, row) in rows.iter().enumerate() {
            if values[i].get(s).copied().flatten().is_some() {
                continue;
            }
            let text = if row.failed.is_some() { "failed" } else { "n/a" };
            let at = EmptyElement::at((x0(i) + width * 0.1, lo)) + Text::new(text, (0, -16), small.clone().color(&RED));
            chart.plotting_area().draw(&at).map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}
