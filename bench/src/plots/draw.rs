//! Generic SVG charts on plotters: lines over log or linear axes, horizontal
//! bars, horizontal ranges (quantiles), and a two-axis timeline. Every drawing error becomes a
//! [`BenchError::Plot`] naming the file; nothing here unwraps.

use std::path::Path;

use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;

use crate::error::{BenchError, Result};

/// Canvas size of every chart, pixels.
pub const SIZE: (u32, u32) = (960, 600);

/// Distinct colours (Tableau 10 then darker variants) for up to 20 series.
const COLORS: [(u8, u8, u8); 20] = [
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
    (0, 63, 92),
    (160, 60, 0),
    (0, 100, 0),
    (120, 0, 0),
    (80, 40, 120),
    (90, 50, 40),
    (150, 40, 110),
    (50, 50, 50),
    (110, 110, 0),
    (0, 110, 120),
];

/// The colour of series `i`.
pub fn color(i: usize) -> RGBColor {
    let (r, g, b) = COLORS[i % COLORS.len()];
    RGBColor(r, g, b)
}

fn perr<E: std::fmt::Display>(path: &Path) -> impl Fn(E) -> BenchError + '_ {
    move |e| BenchError::Plot { plot: path.display().to_string(), reason: e.to_string() }
}

/// One point of a line: the median, its interval (drawn as an error bar) when known, and
/// whether to draw it hollow (a cell where the load generator was the limit, or with starved
/// connections: the figure is the client's or a partial one, not the server's).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pt {
    pub x: f64,
    pub y: f64,
    pub lo: Option<f64>,
    pub hi: Option<f64>,
    pub hollow: bool,
}

impl From<(f64, f64)> for Pt {
    fn from((x, y): (f64, f64)) -> Pt {
        Pt { x, y, lo: None, hi: None, hollow: false }
    }
}

/// What a hollow marker means, in every legend that has one.
pub const HOLLOW_MEANS: &str = "hollow: client-bound or starved";

/// A line chart's description.
pub struct Lines<'a> {
    pub title: &'a str,
    pub x_label: &'a str,
    pub y_label: &'a str,
    pub x_log: bool,
    pub y_log: bool,
    /// `(name, points)`; points are drawn sorted by x, non-positive values dropped on log axes.
    pub series: Vec<(String, Vec<Pt>)>,
    /// Optional horizontal reference line `(y, label)`.
    pub hline: Option<(f64, String)>,
}

impl<'a> Lines<'a> {
    /// Both axes logarithmic, no reference line: the usual chart of a ladder.
    pub fn log_log(title: &'a str, x_label: &'a str, y_label: &'a str, series: Vec<(String, Vec<Pt>)>) -> Lines<'a> {
        Lines { title, x_label, y_label, x_log: true, y_log: true, series, hline: None }
    }
}

/// Compact number: 1500 -> 1.5k, 2000000 -> 2M.
pub fn si(v: f64) -> String {
    let a = v.abs();
    let (x, unit) = if a >= 1e6 {
        (v / 1e6, "M")
    } else if a >= 1e3 {
        (v / 1e3, "k")
    } else {
        (v, "")
    };
    let s = if x.abs() >= 100.0 || x.fract().abs() < 1e-9 { format!("{x:.0}") } else { format!("{x:.1}") };
    format!("{s}{unit}")
}

fn bounds(values: impl Iterator<Item = f64>, log: bool) -> (f64, f64) {
    let vals: Vec<f64> = values.filter(|v| v.is_finite() && (!log || *v > 0.0)).collect();
    let lo = vals.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = vals.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !lo.is_finite() || !hi.is_finite() {
        return if log { (1.0, 10.0) } else { (0.0, 1.0) };
    }
    if log {
        let lo = 10f64.powf(lo.log10().floor());
        let hi = 10f64.powf(hi.log10().ceil()).max(lo * 10.0);
        (lo, hi)
    } else {
        let lo = lo.min(0.0);
        let hi = if hi <= lo { lo + 1.0 } else { hi * 1.08 };
        (lo, hi)
    }
}

/// Draw `spec` to `path`.
pub fn lines(path: &Path, spec: &Lines<'_>) -> Result<()> {
    let pos = |v: f64, log: bool| v.is_finite() && (!log || v > 0.0);
    let keep = |p: &Pt| pos(p.x, spec.x_log) && pos(p.y, spec.y_log);
    let series: Vec<(String, Vec<Pt>)> = spec
        .series
        .iter()
        .map(|(n, pts)| {
            let mut p: Vec<Pt> = pts
                .iter()
                .copied()
                .filter(keep)
                .map(|mut p| {
                    // An interval end that a log axis cannot show is dropped, not clamped.
                    p.lo = p.lo.filter(|v| pos(*v, spec.y_log));
                    p.hi = p.hi.filter(|v| pos(*v, spec.y_log));
                    p
                })
                .collect();
            p.sort_by(|a, b| a.x.total_cmp(&b.x));
            (n.clone(), p)
        })
        .collect();
    let xs = bounds(series.iter().flat_map(|s| s.1.iter().map(|p| p.x)), spec.x_log);
    let extra = spec.hline.as_ref().map(|h| h.0);
    let ys = bounds(
        series.iter().flat_map(|s| s.1.iter().flat_map(|p| [Some(p.y), p.lo, p.hi].into_iter().flatten())).chain(extra),
        spec.y_log,
    );
    match (spec.x_log, spec.y_log) {
        (true, true) => draw_lines(path, spec, &series, (xs.0..xs.1).log_scale(), (ys.0..ys.1).log_scale()),
        (true, false) => draw_lines(path, spec, &series, (xs.0..xs.1).log_scale(), ys.0..ys.1),
        (false, true) => draw_lines(path, spec, &series, xs.0..xs.1, (ys.0..ys.1).log_scale()),
        (false, false) => draw_lines(path, spec, &series, xs.0..xs.1, ys.0..ys.1),
    }
}

fn draw_lines<X, Y>(path: &Path, spec: &Lines<'_>, series: &[(String, Vec<Pt>)], x: X, y: Y) -> Result<()>
where
    X: AsRangedCoord<Value = f64>,
    Y: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    let err = perr(path);
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(&err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(spec.title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(80)
        .build_cartesian_2d(x, y)
        .map_err(&err)?;
    chart
        .configure_mesh()
        .x_desc(spec.x_label)
        .y_desc(spec.y_label)
        .x_label_formatter(&|v| si(*v))
        .y_label_formatter(&|v| si(*v))
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 16))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(&err)?;
    if let Some((yv, label)) = &spec.hline {
        let (x0, x1) = (chart.x_range().start, chart.x_range().end);
        chart
            .draw_series(LineSeries::new(vec![(x0, *yv), (x1, *yv)], BLACK.stroke_width(1)))
            .map_err(&err)?
            .label(label.clone())
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK));
    }
    for (i, (name, pts)) in series.iter().enumerate() {
        if pts.is_empty() {
            continue;
        }
        let c = color(i);
        chart.draw_series(LineSeries::new(pts.iter().map(|p| (p.x, p.y)), c.stroke_width(2))).map_err(&err)?;
        let bars =
            pts.iter().filter_map(|p| Some(ErrorBar::new_vertical(p.x, p.lo?, p.y, p.hi?, c.stroke_width(1), 8)));
        chart.draw_series(bars).map_err(&err)?;
        chart
            .draw_series(pts.iter().map(|p| {
                let style = if p.hollow { WHITE.filled() } else { c.filled() };
                Circle::new((p.x, p.y), 4, style)
            }))
            .map_err(&err)?;
        chart
            .draw_series(pts.iter().filter(|p| p.hollow).map(|p| Circle::new((p.x, p.y), 4, c.stroke_width(2))))
            .map_err(&err)?
            .label(name.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
    }
    if series.iter().any(|(_, pts)| pts.iter().any(|p| p.hollow)) {
        chart
            .draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())
            .map_err(&err)?
            .label(HOLLOW_MEANS)
            .legend(|(x, y)| Circle::new((x + 10, y), 4, BLACK.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(180, 180, 180))
        .label_font(("sans-serif", 13))
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(&err)?;
    root.present().map_err(&err)?;
    Ok(())
}

/// A chart of horizontal rows, one per label top to bottom, over `0..hi` on x: what
/// [`bars`] and [`ranges`] draw on.
type Rows<'a> = ChartContext<
    'a,
    SVGBackend<'a>,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

fn labelled_rows<'a>(
    root: &DrawingArea<SVGBackend<'a>, plotters::coord::Shift>,
    title: &str,
    x_label: &str,
    labels: &[String],
    hi: f64,
) -> std::result::Result<Rows<'a>, DrawingAreaErrorKind<std::io::Error>> {
    let n = labels.len().max(1);
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(190)
        .build_cartesian_2d(0.0..hi, 0.0..n as f64)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(n * 2 + 1)
        .y_label_formatter(&|v: &f64| {
            let i = v.floor() as usize;
            if (v - v.floor() - 0.5).abs() < 0.01 && i < labels.len() {
                labels[n - 1 - i].clone()
            } else {
                String::new()
            }
        })
        .x_label_formatter(&|v| si(*v))
        .x_desc(x_label)
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 16))
        .draw()?;
    Ok(chart)
}

/// Horizontal bars: one per `(label, value, colour index)`, top to bottom.
pub fn bars(path: &Path, title: &str, x_label: &str, bars: &[(String, f64, usize)]) -> Result<()> {
    let err = perr(path);
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(&err)?;
    let n = bars.len().max(1);
    let hi = bars.iter().map(|b| b.1).fold(0.0, f64::max).max(1e-9) * 1.15;
    let labels: Vec<String> = bars.iter().map(|b| b.0.clone()).collect();
    let mut chart = labelled_rows(&root, title, x_label, &labels, hi).map_err(&err)?;
    chart
        .draw_series(bars.iter().enumerate().map(|(i, (_, v, c))| {
            let row = (n - 1 - i) as f64;
            Rectangle::new([(0.0, row + 0.15), (*v, row + 0.85)], color(*c).filled())
        }))
        .map_err(&err)?;
    chart
        .draw_series(bars.iter().enumerate().map(|(i, (_, v, _))| {
            let row = (n - 1 - i) as f64;
            Text::new(si(*v), (*v + hi * 0.01, row + 0.62), ("sans-serif", 13))
        }))
        .map_err(&err)?;
    root.present().map_err(&err)?;
    Ok(())
}

/// One row of [`ranges`]: a distribution by its quantiles, or a note where it has none.
#[derive(Clone, Debug, PartialEq)]
pub struct Range {
    pub label: String,
    /// Palette index of the row's colour.
    pub colour: usize,
    /// min, p1, median, p99, max; `None` writes `note` in the row instead.
    pub quantiles: Option<[f64; 5]>,
    pub note: String,
}

/// Horizontal ranges, one row each: a thin line from min to max, a bar from p1 to p99
/// and a black tick at the median. Values beyond `clip` are drawn to it and labelled.
pub fn ranges(path: &Path, title: &str, x_label: &str, rows: &[Range], clip: f64) -> Result<()> {
    let err = perr(path);
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(&err)?;
    let n = rows.len().max(1);
    let hi = rows.iter().filter_map(|r| r.quantiles).map(|q| q[4].min(clip)).fold(0.0, f64::max).max(1e-9) * 1.15;
    let labels: Vec<String> = rows.iter().map(|r| r.label.clone()).collect();
    let mut chart = labelled_rows(&root, title, x_label, &labels, hi).map_err(&err)?;
    for (i, r) in rows.iter().enumerate() {
        let row = (n - 1 - i) as f64;
        let c = color(r.colour);
        let Some([min, p1, median, p99, max]) = r.quantiles else {
            chart
                .draw_series(std::iter::once(Text::new(r.note.clone(), (hi * 0.01, row + 0.62), ("sans-serif", 13))))
                .map_err(&err)?;
            continue;
        };
        let x = |v: f64| v.min(clip);
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(x(min), row + 0.5), (x(max), row + 0.5)],
                c.stroke_width(2),
            )))
            .map_err(&err)?;
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(x(p1), row + 0.3), (x(p99), row + 0.7)],
                c.mix(0.6).filled(),
            )))
            .map_err(&err)?;
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(x(median), row + 0.2), (x(median), row + 0.8)],
                BLACK.stroke_width(3),
            )))
            .map_err(&err)?;
        if max > clip {
            let label = format!("max {}", si(max));
            chart
                .draw_series(std::iter::once(Text::new(label, (x(max) - hi * 0.1, row + 0.95), ("sans-serif", 12))))
                .map_err(&err)?;
        }
        if !r.note.is_empty() {
            let at = (x(max) + hi * 0.01).min(hi * 0.8);
            chart
                .draw_series(std::iter::once(Text::new(r.note.clone(), (at, row + 0.62), ("sans-serif", 12))))
                .map_err(&err)?;
        }
    }
    root.present().map_err(&err)?;
    Ok(())
}

/// Per-second timeline: answers per second (left axis) and p99 in ms (right axis).
pub fn timeline(path: &Path, title: &str, points: &[(u32, u64, f64)]) -> Result<()> {
    let err = perr(path);
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(&err)?;
    let secs = points.iter().map(|p| p.0 as f64 + 1.0).fold(1.0, f64::max);
    let hi = points.iter().map(|p| p.1 as f64).fold(1.0, f64::max) * 1.15;
    let hi_ms = points.iter().map(|p| p.2 / 1000.0).fold(0.001, f64::max) * 1.15;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(80)
        .right_y_label_area_size(80)
        .build_cartesian_2d(0.0..secs, 0.0..hi)
        .map_err(&err)?
        .set_secondary_coord(0.0..secs, 0.0..hi_ms);
    chart
        .configure_mesh()
        .x_desc("second of the measured window")
        .y_desc("answers per second")
        .y_label_formatter(&|v| si(*v))
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 16))
        .draw()
        .map_err(&err)?;
    chart
        .configure_secondary_axes()
        .y_desc("p99 latency (ms)")
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 16))
        .draw()
        .map_err(&err)?;
    let a = color(0);
    let b = color(3);
    chart
        .draw_series(LineSeries::new(points.iter().map(|p| (p.0 as f64 + 0.5, p.1 as f64)), a.stroke_width(2)))
        .map_err(&err)?
        .label("answers per second (left)")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], a.stroke_width(2)));
    chart
        .draw_secondary_series(LineSeries::new(
            points.iter().map(|p| (p.0 as f64 + 0.5, p.2 / 1000.0)),
            b.stroke_width(2),
        ))
        .map_err(&err)?
        .label("p99 latency, ms (right)")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], b.stroke_width(2)));
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(180, 180, 180))
        .position(SeriesLabelPosition::LowerRight)
        .draw()
        .map_err(&err)?;
    root.present().map_err(&err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn si_formats() {
        assert_eq!(si(1500.0), "1.5k");
        assert_eq!(si(2_000_000.0), "2M");
        assert_eq!(si(12.0), "12");
        assert_eq!(si(0.25), "0.2");
    }

    #[test]
    fn draws_every_kind() {
        let dir = std::env::temp_dir().join(format!("c10k-charts-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tmp dir");
        let spec = Lines {
            title: "t",
            x_label: "connections",
            y_label: "req/s",
            x_log: true,
            y_log: true,
            series: vec![
                (
                    "a".into(),
                    vec![
                        Pt::from((1.0, 10.0)),
                        Pt { x: 100.0, y: 1000.0, lo: Some(800.0), hi: Some(1100.0), hollow: true },
                        // A lower end a log axis cannot show is dropped, not clamped.
                        Pt { x: 300.0, y: 900.0, lo: Some(-1.0), hi: Some(950.0), hollow: false },
                    ],
                ),
                ("empty".into(), vec![]),
            ],
            hline: Some((500.0, "bound".into())),
        };
        lines(&dir.join("l.svg"), &spec).expect("lines");
        lines(&dir.join("l2.svg"), &Lines { x_log: false, y_log: false, series: vec![], ..spec }).expect("empty chart");
        bars(&dir.join("b.svg"), "t", "KiB", &[("x".into(), 3.0, 0), ("y".into(), 7.5, 4)]).expect("bars");
        timeline(&dir.join("t.svg"), "t", &[(0, 100, 900.0), (1, 120, 1200.0)]).expect("timeline");
        let svg = std::fs::read_to_string(dir.join("l.svg")).expect("svg");
        assert!(svg.contains("<svg") && svg.contains("connections"));
        assert!(svg.contains(HOLLOW_MEANS), "a hollow point puts its meaning in the legend");
        if std::env::var_os("C10K_KEEP_CHARTS").is_none() {
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}
