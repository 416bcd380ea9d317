//! The SVG plot: throughput per engine (log scale) and append latency
//! percentiles per engine (log scale). SVG backend: no font files needed.

use std::path::Path;

use plotters::prelude::*;

use crate::Res;

pub struct Row {
    pub name: String,
    /// append, batch of 100, durable 100/sync, scan (records/s).
    pub rates: [Option<f64>; 4],
    /// append p50, p99, p99.9 (ns).
    pub lat: [Option<f64>; 3],
}

const RATE_NAMES: [&str; 4] = ["append", "batch of 100", "durable, 100/sync", "scan"];
const LAT_NAMES: [&str; 3] = ["p50", "p99", "p99.9"];
const COLORS: [RGBColor; 4] = [RGBColor(31, 119, 180), RGBColor(255, 127, 14), RGBColor(44, 160, 44), RGBColor(214, 39, 40)];

pub fn draw(path: &Path, rows: &[Row]) -> Res<()> {
    let root = SVGBackend::new(path, (1600, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let (left, right) = root.split_horizontally(820);
    bars(&left, rows, "Throughput (records/s, log scale, median of rounds)", &RATE_NAMES, |r| r.rates.to_vec(), 1e3, 1e9)?;
    bars(&right, rows, "Append latency per call (ns, log scale, median of rounds)", &LAT_NAMES, |r| r.lat.to_vec(), 1.0, 1e7)?;
    root.present().map_err(|e| e.to_string())?;
    Ok(())
}

fn bars<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    rows: &[Row],
    title: &str,
    series: &[&str],
    values: impl Fn(&Row) -> Vec<Option<f64>>,
    lo: f64,
    hi: f64,
) -> Res<()>
where
    DB::ErrorType: 'static,
{
    let n = rows.len().max(1);
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .margin_right(40)
        .x_label_area_size(90)
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
        .y_label_formatter(&|y| {
            if *y >= 1e6 {
                format!("{:.0}M", y / 1e6)
            } else if *y >= 1e3 {
                format!("{:.0}k", y / 1e3)
            } else {
                format!("{y:.0}")
            }
        })
        .draw()
        .map_err(|e| e.to_string())?;
    let k = series.len() as f64;
    let width = 0.8 / k;
    for (s, name) in series.iter().enumerate() {
        let color = COLORS[s % COLORS.len()];
        let rects: Vec<_> = rows
            .iter()
            .enumerate()
            .filter_map(|(i, r)| {
                let v = values(r).get(s).copied().flatten()?;
                let x0 = i as f64 + 0.1 + s as f64 * width;
                Some(Rectangle::new([(x0, lo), (x0 + width * 0.9, v.clamp(lo, hi))], color.filled()))
            })
            .collect();
        chart
            .draw_series(rects)
            .map_err(|e| e.to_string())?
            .label(*name)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled()));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(|e| e.to_string())?;
    Ok(())
}
