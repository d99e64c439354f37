//! The hit-ratio plot of `augur validate`: the control's and the treatment's hit
//! ratio per window across the trace, with a vertical marker wherever the learned
//! prefetcher detected drift (dashed, red) or its active model changed (solid,
//! green, labelled with the version).
//!
//! The markers are the point of the plot: a treatment that falls behind for a
//! while and recovers reads as "drift, retrain, new version" only when the events
//! sit on the same time axis as the hit ratios. SVG, so the Markdown report embeds
//! it by relative path and it stays sharp at any zoom; text is left to the viewer's
//! fonts (plotters' SVG backend writes `<text>` elements).

use std::path::Path;

use plotters::prelude::*;

use crate::ab::AbReport;

const CONTROL: RGBColor = RGBColor(31, 119, 180);
const TREATMENT: RGBColor = RGBColor(255, 127, 14);
const DRIFT: RGBColor = RGBColor(214, 39, 40);
const VERSION: RGBColor = RGBColor(44, 160, 44);

/// `12000` → `12k`, `3500000` → `3.5M`: request counts on the x axis.
fn requests_label(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.1}M", x / 1e6)
    } else if x >= 1e3 {
        format!("{:.0}k", x / 1e3)
    } else {
        format!("{x:.0}")
    }
}

/// Draws `report`'s per-window hit ratios and its timeline (if any) into the SVG
/// file `path`.
pub fn hit_ratio_svg(path: &Path, title: &str, report: &AbReport) -> Result<(), String> {
    augur_simulators::plot::register_font()?;
    let root = SVGBackend::new(path, (1024, 560)).into_drawing_area();
    draw(&root, title, report)
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    r: &AbReport,
) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Display| e.to_string();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let window = r.window.max(1) as f64;
    let n = r.control_windows.len().max(r.treatment_windows.len()).max(1);
    let end = n as f64 * window;
    let highest = r.control_windows.iter().chain(&r.treatment_windows).copied().fold(0.0f64, f64::max);
    let top = (highest * 1.15).clamp(0.1, 1.0);
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 20))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(56)
        .build_cartesian_2d(0f64..end, 0f64..top)
        .map_err(|e| err(&e))?;
    let crossover = if r.crossover { ", crossover" } else { "" };
    chart
        .configure_mesh()
        .x_desc(format!("trace position (requests; windows of {}{crossover})", r.window))
        .y_desc("hit ratio")
        .x_label_formatter(&|x| requests_label(*x))
        .draw()
        .map_err(|e| err(&e))?;
    // Each window's ratio at its middle.
    let points = |ratios: &[f64]| -> Vec<(f64, f64)> {
        ratios.iter().enumerate().map(|(i, &h)| ((i as f64 + 0.5) * window, h)).collect()
    };
    chart
        .draw_series(LineSeries::new(points(&r.control_windows), CONTROL.stroke_width(2)))
        .map_err(|e| err(&e))?
        .label("control (no prefetching)")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], CONTROL.stroke_width(2)));
    chart
        .draw_series(LineSeries::new(points(&r.treatment_windows), TREATMENT.stroke_width(2)))
        .map_err(|e| err(&e))?
        .label(format!("treatment ({})", r.prefetch))
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], TREATMENT.stroke_width(2)));
    if let Some(tl) = &r.timeline {
        for (i, d) in tl.drifts.iter().enumerate() {
            let x = d.at as f64;
            let line = DashedLineSeries::new(vec![(x, 0.0), (x, top)], 6, 4, DRIFT.stroke_width(1));
            let drawn = chart.draw_series(line).map_err(|e| err(&e))?;
            if i == 0 {
                drawn
                    .label("drift detected")
                    .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], DRIFT.stroke_width(1)));
            }
        }
        for (i, (at, version)) in tl.activations().into_iter().enumerate() {
            let x = at as f64;
            let line = PathElement::new(vec![(x, 0.0), (x, top)], VERSION.stroke_width(1));
            let drawn = chart.draw_series(std::iter::once(line)).map_err(|e| err(&e))?;
            if i == 0 {
                drawn
                    .label("model version made active")
                    .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], VERSION.stroke_width(1)));
            }
            let style = ("sans-serif", 14).into_font().color(&VERSION);
            chart
                .draw_series(std::iter::once(Text::new(format!("v{version}"), (x + window * 0.1, top * 0.97), style)))
                .map_err(|e| err(&e))?;
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_counts_read_short() {
        assert_eq!(requests_label(800.0), "800");
        assert_eq!(requests_label(12_000.0), "12k");
        assert_eq!(requests_label(3_500_000.0), "3.5M");
    }
}
