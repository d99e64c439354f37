//! Grouped bar charts (Redis and Augur side by side per benchmark cell) as PNG.
//!
//! As in the simulator's plots, plotters is built without its system-font backend;
//! text is drawn with the DejaVu Sans face embedded by the `dejavu` crate, so a PNG
//! has labels on any machine.

use std::path::Path;
use std::sync::Once;

use anyhow::anyhow;
use plotters::coord::Shift;
use plotters::prelude::*;

const REDIS: RGBColor = RGBColor(214, 39, 40);
const AUGUR: RGBColor = RGBColor(31, 119, 180);

/// One cell: its label and each server's (requests per second, p99 in ms).
#[derive(Debug, Clone)]
pub struct Group {
    pub label: String,
    pub redis: (f64, f64),
    pub augur: (f64, f64),
}

fn register_font() -> anyhow::Result<()> {
    static ONCE: Once = Once::new();
    let mut result = Ok(());
    ONCE.call_once(|| {
        result = plotters::style::register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular())
            .map_err(|_| anyhow!("the embedded DejaVu Sans font did not load"));
    });
    result
}

/// Draws throughput (top) and p99 latency (bottom) bars for `groups` into a PNG, with
/// Augur / Redis written over each pair.
pub fn draw(path: &Path, title: &str, groups: &[Group]) -> anyhow::Result<()> {
    register_font()?;
    let width = (160 * groups.len() as u32).clamp(800, 2400);
    let root = BitMapBackend::new(path, (width, 900)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
    let root = root.titled(title, ("sans-serif", 26)).map_err(|e| anyhow!("{e}"))?;
    let (top, bottom) = root.split_vertically(430);
    panel(&top, groups, "throughput (thousand requests/s, higher is better)", |v| v.0 / 1000.0)?;
    panel(&bottom, groups, "p99 latency (ms, lower is better)", |v| v.1)?;
    root.present().map_err(|e| anyhow!("{e}"))
}

fn panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    groups: &[Group],
    y_desc: &str,
    value: impl Fn((f64, f64)) -> f64,
) -> anyhow::Result<()> {
    let err = |e: &dyn std::fmt::Display| anyhow!("{e}");
    let n = groups.len().max(1);
    let top =
        groups.iter().flat_map(|g| [value(g.redis), value(g.augur)]).filter(|v| v.is_finite()).fold(0.0, f64::max);
    // Headroom for the ratios and the legend above the tallest bar.
    let top = if top > 0.0 { top * 1.4 } else { 1.0 };
    // Group i is centred on x = i; asking for n labels over a range n wide makes
    // plotters put them on the integers, one under each group.
    let mut chart = ChartBuilder::on(area)
        .margin(14)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(-0.5..n as f64 - 0.5, 0.0..top)
        .map_err(|e| err(&e))?;
    let labels: Vec<String> = groups.iter().map(|g| g.label.clone()).collect();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .y_desc(y_desc)
        .x_labels(n)
        .x_label_style(("sans-serif", 14))
        .x_label_formatter(&|x| {
            let i = x.round();
            if (x - i).abs() > 1e-6 || i < 0.0 {
                return String::new();
            }
            labels.get(i as usize).cloned().unwrap_or_default()
        })
        .draw()
        .map_err(|e| err(&e))?;
    for (name, color, offset, pick) in [
        ("Redis", REDIS, -0.38, (|g: &Group| g.redis) as fn(&Group) -> (f64, f64)),
        ("Augur", AUGUR, 0.02, |g: &Group| g.augur),
    ] {
        let bars = groups.iter().enumerate().map(|(i, g)| {
            let v = value(pick(g));
            let v = if v.is_finite() { v } else { 0.0 };
            let x = i as f64 + offset;
            Rectangle::new([(x, 0.0), (x + 0.36, v)], color.filled())
        });
        chart
            .draw_series(bars)
            .map_err(|e| err(&e))?
            .label(name)
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], color.filled()));
    }
    // Augur / Redis over each group.
    let ratios = groups.iter().enumerate().filter_map(|(i, g)| {
        let (r, a) = (value(g.redis), value(g.augur));
        let ratio = a / r;
        ratio.is_finite().then(|| {
            let y = r.max(a).min(top);
            Text::new(format!("{ratio:.2}x"), (i as f64 - 0.12, y + top * 0.05), ("sans-serif", 14).into_font())
        })
    });
    chart.draw_series(ratios).map_err(|e| err(&e))?;
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 16))
        .draw()
        .map_err(|e| err(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_a_png() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("bars.png");
        let groups = vec![
            Group { label: "GET c50 P1 64 B".into(), redis: (50_000.0, 1.2), augur: (45_000.0, 1.4) },
            Group { label: "SET c50 P16 1 KiB".into(), redis: (400_000.0, 2.0), augur: (f64::NAN, 3.0) },
        ];
        draw(&path, "test", &groups).expect("draws");
        let bytes = std::fs::read(&path).expect("png written");
        assert!(bytes.starts_with(b"\x89PNG"), "a PNG file");
    }
}
