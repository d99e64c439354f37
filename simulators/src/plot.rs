//! `--plot FILE.png|svg`: hit ratio against cache size, one line per
//! (policy, prefetcher).
//!
//! plotters is built without its system-font backend (font-kit pulls in
//! fontconfig/freetype); text is rendered with ab_glyph from the DejaVu Sans face
//! embedded by the `dejavu` crate, so a PNG has labels on any machine.

use std::path::Path;
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::error::TraceError;
use crate::report::Report;

/// One colour per policy (Tableau 10); prefetchers are told apart by marker.
const COLORS: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// Registers the embedded DejaVu Sans face as plotters' `sans-serif`, once per
/// process. Any plot in the workspace needs it: cargo unifies plotters' features,
/// so every crate's plotters has the `ab_glyph` text backend this crate enables,
/// and that backend measures text with registered fonts only.
pub fn register_font() -> Result<(), String> {
    static ONCE: Once = Once::new();
    let mut result = Ok(());
    ONCE.call_once(|| {
        result = plotters::style::register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular())
            .map_err(|_| "the embedded DejaVu Sans font did not load".to_string());
    });
    result
}

/// A line: its policy, prefetcher and (cache size, hit ratio) points.
struct Line {
    policy: String,
    prefetch: String,
    points: Vec<(f64, f64)>,
}

impl Line {
    fn label(&self) -> String {
        if self.prefetch == "none" {
            self.policy.clone()
        } else {
            format!("{} + {}", self.policy, self.prefetch)
        }
    }
}

/// Lines per configuration, in first-seen order, points sorted by size.
fn lines(reports: &[Report]) -> Vec<Line> {
    let mut out: Vec<Line> = Vec::new();
    for r in reports {
        let point = (r.cache_size as f64, r.hit_ratio);
        match out.iter_mut().find(|l| l.policy == r.policy && l.prefetch == r.prefetch) {
            Some(l) => l.points.push(point),
            None => out.push(Line { policy: r.policy.clone(), prefetch: r.prefetch.clone(), points: vec![point] }),
        }
    }
    for l in &mut out {
        l.points.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    out
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    reports: &[Report],
    object_mode: bool,
    title: &str,
) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Display| e.to_string();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let (mut lo, mut hi) =
        reports.iter().map(|r| r.cache_size as f64).fold((f64::MAX, 0f64), |(lo, hi), x| (lo.min(x), hi.max(x)));
    if reports.is_empty() {
        (lo, hi) = (1.0, 10.0);
    }
    lo = (lo / 1.2).max(0.5);
    hi *= 1.2;
    let top = reports.iter().map(|r| r.hit_ratio).fold(0.0f64, f64::max);
    let top = ((top * 10.0).ceil() / 10.0 + 0.05).min(1.0);
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(50)
        .y_label_area_size(64)
        .build_cartesian_2d((lo..hi).log_scale(), 0f64..top)
        .map_err(|e| err(&e))?;
    let unit = if object_mode { "objects" } else { "bytes" };
    chart
        .configure_mesh()
        .x_desc(format!("cache size ({unit}, log scale)"))
        .y_desc("hit ratio")
        .x_labels(12)
        .x_label_formatter(&|x| crate::report::human_size(*x as u64, object_mode))
        .draw()
        .map_err(|e| err(&e))?;
    let all = lines(reports);
    let mut policies: Vec<&str> = Vec::new();
    let mut prefetchers: Vec<&str> = Vec::new();
    for l in &all {
        if !policies.contains(&l.policy.as_str()) {
            policies.push(&l.policy);
        }
        if !prefetchers.contains(&l.prefetch.as_str()) {
            prefetchers.push(&l.prefetch);
        }
    }
    for l in &all {
        let color = COLORS[policies.iter().position(|p| *p == l.policy).unwrap_or(0) % COLORS.len()];
        let marker = prefetchers.iter().position(|p| *p == l.prefetch).unwrap_or(0);
        // Demand fetching is the thick line; prefetch variants are thinner.
        let width = if l.prefetch == "none" { 3 } else { 1 };
        chart
            .draw_series(LineSeries::new(l.points.iter().copied(), color.stroke_width(width)))
            .map_err(|e| err(&e))?
            .label(l.label())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(width)));
        for &p in &l.points {
            let drawn = match marker % 4 {
                0 => chart.draw_series(std::iter::once(Circle::new(p, 4, color.filled()))),
                1 => chart.draw_series(std::iter::once(TriangleMarker::new(p, 6, color.filled()))),
                2 => chart.draw_series(std::iter::once(Cross::new(p, 5, color.stroke_width(2)))),
                _ => {
                    chart.draw_series(std::iter::once(Rectangle::new([(p.0, p.1), (p.0, p.1)], color.stroke_width(6))))
                }
            };
            drawn.map_err(|e| err(&e))?;
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))
}

/// Draws `reports` into `path`: SVG when it ends in `.svg`, else PNG.
pub fn plot(reports: &[Report], path: &Path, object_mode: bool, title: &str) -> Result<(), TraceError> {
    let fail = |reason: String| TraceError::Plot { path: path.to_path_buf(), reason };
    register_font().map_err(fail)?;
    let svg = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("svg"));
    let size = (1024, 640);
    if svg {
        let root = SVGBackend::new(path, size).into_drawing_area();
        draw(&root, reports, object_mode, title).map_err(fail)
    } else {
        let root = BitMapBackend::new(path, size).into_drawing_area();
        draw(&root, reports, object_mode, title).map_err(fail)
    }
}
