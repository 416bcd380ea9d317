//! `varve bench --plot FILE.svg`: the run as one SVG image. Left, latency
//! percentile curves in the HDR histogram style (x = 1/(1-p) on a log axis,
//! so p99 and p99.99 get as much room as the median; y = latency, log).
//! Right, each throughput beside its bound, with whiskers from the slowest
//! to the fastest round where there were rounds. Figures the run did not
//! measure are listed as "n/a", and a caption names the machine and date.
//! SVG only: no font files, no image libraries.

use std::path::Path;

use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;

use super::report::{rps, tail_skipped, wait_name};
use super::{BenchArgs, Lat, Res, Results, CURVE_QUANTILES};

const SIZE: (u32, u32) = (1500, 820);
const CAPTION_PX: u32 = 92;
const ENGINE: RGBColor = RGBColor(31, 119, 180);
const BOUND: RGBColor = RGBColor(150, 150, 150);
const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(23, 190, 207),
];

/// Draws the results of `args`'s run into `path`.
pub fn draw(path: &Path, args: &BenchArgs, r: &Results) -> Res<()> {
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let (top, body) = root.split_vertically(CAPTION_PX);
    caption(&top, args, r)?;
    let (left, right) = body.split_horizontally(680);
    latency(&left, args, r)?;
    throughput(&right, args, r)?;
    root.present().map_err(|e| e.to_string())?;
    Ok(())
}

fn caption<DB: DrawingBackend>(area: &DrawingArea<DB, plotters::coord::Shift>, args: &BenchArgs, r: &Results) -> Res<()> {
    let big = ("sans-serif", 22).into_font();
    let small = ("sans-serif", 14).into_font().color(&RGBColor(60, 60, 60));
    let lines = [
        (format!("varvelog bench, {}", r.date), big.color(&BLACK)),
        (r.machine.clone(), small.clone()),
        (
            format!(
                "{} records per phase, {} B payloads, {} segments, sync {}, {} tailing and {} scanning reader(s); load average {} before, {} after",
                args.records,
                args.payload_bytes,
                crate::util::human_bytes(args.segment_bytes),
                args.sync,
                args.readers,
                args.scanners,
                r.load.0.map_or("?".into(), |l| format!("{l:.2}")),
                r.load.1.map_or("?".into(), |l| format!("{l:.2}")),
            ),
            small,
        ),
    ];
    let mut y = 10;
    for (text, style) in lines {
        area.draw(&Text::new(text, (16, y), style)).map_err(|e| e.to_string())?;
        y += 26;
    }
    Ok(())
}

/// One latency curve: its name, figures, and whether it is a bound.
struct Curve<'a> {
    name: String,
    lat: &'a Lat,
    bound: bool,
    color: RGBColor,
}

/// Adds a curve and, dashed in the same colour, its bound.
fn push<'a>(curves: &mut Vec<Curve<'a>>, name: String, lat: &'a Lat, bound: Option<(&str, &'a Lat)>) {
    let color = PALETTE[curves.iter().filter(|c| !c.bound).count() % PALETTE.len()];
    curves.push(Curve { name, lat, bound: false, color });
    if let Some((name, lat)) = bound {
        curves.push(Curve { name: name.to_string(), lat, bound: true, color });
    }
}

/// The points of a curve: (1/(1-p), ns). Quantiles finer than the samples
/// can resolve are left out; the maximum sits at x = samples.
fn points(l: &Lat) -> Vec<(f64, f64)> {
    let n = l.count.max(1) as f64;
    CURVE_QUANTILES
        .iter()
        .zip(l.curve)
        .filter_map(|(&q, v)| {
            let x = if q >= 1.0 { n } else { 1.0 / (1.0 - q) };
            (x <= n || q >= 1.0).then_some((x, v.max(1) as f64))
        })
        .collect()
}

/// `1/(1-p)` as a percentile label: 10 -> "90%", 1000 -> "99.9%".
fn percentile_label(x: f64) -> String {
    if x < 1.5 {
        return "0%".into();
    }
    let p = 100.0 * (1.0 - 1.0 / x);
    let digits = (x.log10().round() as usize).saturating_sub(2);
    format!("{p:.digits$}%")
}

fn latency<DB: DrawingBackend>(area: &DrawingArea<DB, plotters::coord::Shift>, args: &BenchArgs, r: &Results) -> Res<()>
where
    DB::ErrorType: 'static,
{
    let mut curves = Vec::new();
    let mut missing = Vec::new();
    push(&mut curves, "append, writer alone".into(), &r.append_lat, Some(("bound: memcpy of one frame", &r.memcpy_lat)));
    // One curve per kind of reader; the ping-pong bound is drawn once, in
    // the first kind's colour.
    for (i, t) in r.tail.iter().enumerate() {
        let bound = (i == 0).then_some(("bound: atomic ping-pong, one way", &r.ping_pong));
        push(&mut curves, format!("writer->tail, {} reader", wait_name(t.wait)), &t.lat, bound);
    }
    if r.tail.is_empty() {
        missing.push(format!("writer->tail: n/a ({})", tail_skipped(args)));
        let color = PALETTE[curves.iter().filter(|c| !c.bound).count() % PALETTE.len()];
        curves.push(Curve { name: "bound: atomic ping-pong, one way".into(), lat: &r.ping_pong, bound: true, color });
    }
    match &r.mixed {
        Some(m) => push(&mut curves, "tail lag, writer at full speed".into(), &m.tail_lag, None),
        None => missing.push("tail lag, writer at full speed: n/a (no readers)".into()),
    }
    for d in &r.durable {
        let bound = r.pwrite.iter().find(|p| p.per_sync == d.per_sync).map(|p| (&p.sync_lat, d.per_sync));
        let name = format!("durable, group of {} + Writer::sync", d.per_sync);
        let bound_name = format!("bound: pwrite+fdatasync of {}, growing file", d.per_sync);
        push(&mut curves, name, &d.sync_lat, bound.map(|(l, _)| (bound_name.as_str(), l)));
    }
    curves.retain(|c| c.lat.count > 0);

    let all: Vec<(f64, f64)> = curves.iter().flat_map(|c| points(c.lat)).collect();
    let x_hi = all.iter().map(|p| p.0).fold(10.0, f64::max) * 1.5;
    let y_lo = all.iter().map(|p| p.1).fold(f64::MAX, f64::min).min(1e9) / 1.5;
    let y_hi = all.iter().map(|p| p.1).fold(1.0, f64::max) * 1.5;
    let (plot, notes) = area.split_vertically(area.dim_in_pixel().1 - 30 - 18 * missing.len() as u32);
    let mut chart = ChartBuilder::on(&plot)
        .caption("Latency by percentile (log-log)", ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d((1.0..x_hi).log_scale(), (y_lo.max(0.5)..y_hi).log_scale())
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("percentile")
        .y_desc("latency")
        .x_label_formatter(&|x| percentile_label(*x))
        .y_label_formatter(&|y| super::axis::ns(*y))
        .draw()
        .map_err(|e| e.to_string())?;
    for c in &curves {
        let pts = points(c.lat);
        let color = c.color;
        let drawn = if c.bound {
            chart.draw_series(DashedLineSeries::new(pts, 6, 4, color.stroke_width(1)))
        } else {
            chart.draw_series(LineSeries::new(pts, color.stroke_width(2)))
        }
        .map_err(|e| e.to_string())?;
        let bound = c.bound;
        drawn.label(&c.name).legend(move |(x, y)| {
            PathElement::new(vec![(x, y), (x + 20, y)], if bound { color.mix(0.6).stroke_width(1) } else { color.stroke_width(2) })
        });
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::LowerRight)
        .label_font(("sans-serif", 12))
        .draw()
        .map_err(|e| e.to_string())?;
    let style = ("sans-serif", 13).into_font();
    let mut y = 6;
    for m in ["dashed: the bound each figure is measured against (same run)".to_string()].iter().chain(&missing) {
        notes.draw(&Text::new(m.clone(), (80, y), style.clone())).map_err(|e| e.to_string())?;
        y += 18;
    }
    Ok(())
}

/// One bar of the throughput chart.
struct Bar {
    label: String,
    /// Records per second, or why there is no figure.
    value: Result<f64, String>,
    /// Slowest and fastest round, when there were rounds.
    whisker: Option<(f64, f64)>,
    bound: bool,
}

impl Bar {
    fn engine(label: impl Into<String>, v: f64) -> Bar {
        Bar { label: label.into(), value: Ok(v), whisker: None, bound: false }
    }
    fn bound(label: impl Into<String>, v: f64) -> Bar {
        Bar { label: format!("bound: {}", label.into()), value: Ok(v), whisker: None, bound: true }
    }
    fn missing(label: impl Into<String>, why: &str) -> Bar {
        Bar { label: label.into(), value: Err(format!("n/a ({why})")), whisker: None, bound: false }
    }
    fn rounds(mut self, rounds: &[super::Rate]) -> Bar {
        let v: Vec<f64> = rounds.iter().map(|r| r.per_sec()).collect();
        if v.len() > 1 {
            self.whisker = Some((v.iter().copied().fold(f64::MAX, f64::min), v.iter().copied().fold(0.0, f64::max)));
        }
        self
    }
}

fn bars(args: &BenchArgs, r: &Results) -> Vec<Bar> {
    let mut b = vec![
        Bar::engine(format!("sustained append (median of {})", r.append_rounds.len()), r.append.per_sec()).rounds(&r.append_rounds),
        Bar::bound("File+BufWriter, growing file", super::median(&r.floor).per_sec()).rounds(&r.floor),
        Bar::bound("memcpy into a pre-faulted mapping", r.memcpy.per_sec()),
    ];
    match &r.mixed {
        Some(m) => {
            b.push(Bar::engine(format!("append beside {} tail + {} scan readers", args.readers, args.scanners), m.rate.per_sec()));
            if args.scanners > 0 {
                b.push(Bar::engine("scanners beside the writer (sum)", m.scan.per_sec()));
            } else {
                b.push(Bar::missing("scanners beside the writer", "--scanners 0"));
            }
        }
        None => b.push(Bar::missing("append beside readers", "no readers")),
    }
    b.push(Bar::engine("scan, checksums verified", r.scan.per_sec()));
    b.push(Bar::bound("CRC32C over the same frames", r.crc.per_sec()));
    for d in &r.durable {
        b.push(Bar::engine(format!("durable, {} per sync", d.per_sync), d.rate.per_sec()));
        if let Some(p) = r.pwrite.iter().find(|p| p.per_sync == d.per_sync) {
            b.push(Bar::bound("pwrite+fdatasync, growing file", p.rate.per_sec()));
        }
        if let Some(p) = r.pwrite_zeroed.iter().find(|p| p.per_sync == d.per_sync) {
            b.push(Bar::bound("pwrite+fdatasync, pre-zeroed file", p.rate.per_sec()));
        }
    }
    if r.producers.is_empty() {
        b.push(Bar::missing("many producers", "no --producer-threads"));
    }
    for p in &r.producers {
        let how = if p.durable { "durable" } else { "visible" };
        b.push(Bar::engine(format!("Ingest, {} thread(s), {how}", p.threads), p.ingest.per_sec()));
        b.push(Bar::bound("Mutex<Writer>, same threads", p.mutex.per_sec()));
    }
    b
}

fn throughput<DB: DrawingBackend>(area: &DrawingArea<DB, plotters::coord::Shift>, args: &BenchArgs, r: &Results) -> Res<()>
where
    DB::ErrorType: 'static,
{
    let bars = bars(args, r);
    let n = bars.len();
    let values: Vec<f64> =
        bars.iter().flat_map(|b| b.value.iter().copied().chain(b.whisker.iter().flat_map(|w| [w.0, w.1]))).filter(|v| *v > 0.0).collect();
    // Fitted to the data, with room on the right for the figures' labels.
    let lo = values.iter().copied().fold(f64::MAX, f64::min).min(1e12) / 2.0;
    let hi = values.iter().copied().fold(1.0, f64::max) * 6.0;
    let labels: Vec<String> = bars.iter().map(|b| b.label.clone()).collect();
    let (plot, notes) = area.split_vertically(area.dim_in_pixel().1 - 30);
    let mut chart = ChartBuilder::on(&plot)
        .caption("Throughput beside its bound (records/s, log)", ("sans-serif", 18))
        .margin(12)
        .margin_right(24)
        .x_label_area_size(40)
        .y_label_area_size(250)
        .build_cartesian_2d((lo..hi).log_scale(), (0..n).into_segmented())
        .map_err(|e| e.to_string())?;
    // Row i of `bars` is drawn top down.
    let row = |i: usize| n - 1 - i;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(n)
        .y_label_formatter(&|v| match v {
            SegmentValue::CenterOf(k) if *k < n => labels[n - 1 - *k].clone(),
            _ => String::new(),
        })
        .x_label_formatter(&|x| super::axis::rate(*x))
        .x_desc("records per second")
        .draw()
        .map_err(|e| e.to_string())?;
    let font = ("sans-serif", 12).into_font();
    for (i, b) in bars.iter().enumerate() {
        let y = row(i);
        match &b.value {
            Ok(v) => {
                let color = if b.bound { BOUND } else { ENGINE };
                let mut rect = Rectangle::new([(lo, SegmentValue::Exact(y)), (*v, SegmentValue::Exact(y + 1))], color.filled());
                rect.set_margin(4, 4, 0, 0);
                chart.draw_series(std::iter::once(rect)).map_err(|e| e.to_string())?;
                let end = b.whisker.map_or(*v, |w| w.1);
                let text = EmptyElement::at((end, SegmentValue::CenterOf(y))) + Text::new(rps(*v), (6, -6), font.clone());
                chart.plotting_area().draw(&text).map_err(|e| e.to_string())?;
            }
            Err(why) => {
                let text = EmptyElement::at((lo, SegmentValue::CenterOf(y))) + Text::new(why.clone(), (6, -6), font.clone().color(&RED));
                chart.plotting_area().draw(&text).map_err(|e| e.to_string())?;
            }
        }
        if let Some((min, max)) = b.whisker {
            let style = BLACK.stroke_width(1);
            let line = vec![(min, SegmentValue::CenterOf(y)), (max, SegmentValue::CenterOf(y))];
            chart.draw_series(std::iter::once(PathElement::new(line, style))).map_err(|e| e.to_string())?;
            for x in [min, max] {
                let tick = EmptyElement::at((x, SegmentValue::CenterOf(y))) + PathElement::new(vec![(0, -6), (0, 6)], style);
                chart.plotting_area().draw(&tick).map_err(|e| e.to_string())?;
            }
        }
    }
    let note = "blue: varvelog; grey: the bound listed under it (same run, same bytes); whiskers: slowest to fastest round";
    notes.draw(&Text::new(note, (20, 6), ("sans-serif", 13).into_font())).map_err(|e| e.to_string())?;
    Ok(())
}
