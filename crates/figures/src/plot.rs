//! Shared drawing helpers: the font, the palette, ranges, markers, heat maps and iso-lines.

use plotters::coord::Shift;
use plotters::prelude::*;
use std::ops::Range;
use std::sync::Once;

/// The bundled font.
static FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

/// Registers the bundled font as `sans-serif` (once).
pub fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        plotters::style::register_font("sans-serif", FontStyle::Normal, FONT)
            .unwrap_or_else(|_| panic!("the bundled DejaVuSans.ttf is a valid TrueType font"));
    });
}

/// Text sizes (pixels) for a figure about 1200–1800 px wide, readable at page width: 1800 px
/// printed 6.5 in wide makes a tick label of 30 px about 8 pt. Axis descriptions (panel titles
/// are LABEL + 2).
pub const LABEL: u32 = 34;
/// Tick labels and legends.
pub const TICK: u32 = 30;

/// Okabe–Ito colours (distinguishable with colour-vision deficiency), then black.
pub const COLORS: [RGBColor; 8] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
    RGBColor(120, 120, 120),
    RGBColor(0, 0, 0),
];

/// The i-th palette colour (cycling).
pub fn color(i: usize) -> RGBColor {
    COLORS[i % COLORS.len()]
}

/// Viridis at t ∈ [0, 1].
pub fn viridis(t: f64) -> RGBColor {
    use plotters::style::colors::colormaps::{ColorMap, ViridisRGB};
    ViridisRGB.get_color(t.clamp(0.0, 1.0) as f32)
}

/// A linear range covering the finite values, padded by `pad` of its width on both sides.
pub fn lin_range(values: impl IntoIterator<Item = f64>, pad: f64) -> Range<f64> {
    let (lo, hi) = values
        .into_iter()
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
    if !lo.is_finite() {
        return 0.0..1.0;
    }
    let w = (hi - lo).max(1e-12 * (1.0 + hi.abs()));
    (lo - pad * w)..(hi + pad * w)
}

/// A log range covering the positive finite values, widened by `factor` on both sides.
pub fn log_range(values: impl IntoIterator<Item = f64>, factor: f64) -> Range<f64> {
    let (lo, hi) = values
        .into_iter()
        .filter(|v| v.is_finite() && *v > 0.0)
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
    if !lo.is_finite() {
        return 0.1..10.0;
    }
    (lo / factor)..(hi * factor)
}

/// Tick positions for a log axis over `r`: the decades 10ᵏ when the range holds four or more of
/// them (every second one past eight, so a tall axis keeps few labels), else 1, 2, 5 × 10ᵏ, or
/// every m × 10ᵏ (m = 1…9) when the range holds fewer than four of those, so that a narrow log
/// axis is labelled where its data are.
pub fn log_ticks(r: &Range<f64>) -> Vec<f64> {
    let decades = log_ticks_of(r, &[1.0]);
    if decades.len() >= 4 {
        let step = if decades.len() > 8 { 2 } else { 1 };
        return decades.into_iter().step_by(step).collect();
    }
    log_ticks_of(r, &[])
}

/// [`log_ticks`] without the decades-only tier, or with `only` the multipliers given.
fn log_ticks_of(r: &Range<f64>, only: &[f64]) -> Vec<f64> {
    let (lo, hi) = (r.start.max(f64::MIN_POSITIVE), r.end);
    let within = |ms: &[f64]| -> Vec<f64> {
        let mut out = vec![];
        let mut k = lo.log10().floor() as i32 - 1;
        while 10f64.powi(k) <= hi * 10.0 {
            for m in ms {
                let v = m * 10f64.powi(k);
                if v >= lo && v <= hi {
                    out.push(v);
                }
            }
            k += 1;
        }
        out
    };
    if !only.is_empty() {
        return within(only);
    }
    let coarse = within(&[1.0, 2.0, 5.0]);
    if coarse.len() >= 4 {
        coarse
    } else {
        within(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0])
    }
}

/// Mean and sample sd (NaN for fewer than two values) of the finite values: a figure draws the
/// runs that finished, and its table or caption reports any that diverged (the arithmetic is
/// [`scorelab_core::stats::MeanSe`]'s).
pub fn mean_sd(v: &[f64]) -> (f64, f64) {
    let finite: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    let m = scorelab_core::stats::MeanSe::of_slice(&finite);
    (m.mean, m.sd)
}

/// A vertical colour bar for `lo..hi` (the values the colour map spans) with a label.
pub fn colorbar<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    lo: f64,
    hi: f64,
    label: &str,
) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    let mut chart = ChartBuilder::on(area)
        .margin_top(60)
        .margin_bottom(80)
        .margin_right(10)
        .y_label_area_size(120)
        .build_cartesian_2d(0.0..1.0, lo..hi)?;
    chart
        .configure_mesh()
        .y_label_formatter(&tick)
        .disable_x_mesh()
        .disable_y_mesh()
        .disable_x_axis()
        .y_desc(label)
        .label_style(("sans-serif", TICK))
        .axis_desc_style(("sans-serif", LABEL))
        .draw()?;
    let n = 100;
    chart.draw_series((0..n).map(|k| {
        let a = lo + (hi - lo) * k as f64 / n as f64;
        let b = lo + (hi - lo) * (k + 1) as f64 / n as f64;
        Rectangle::new(
            [(0.0, a), (1.0, b)],
            viridis((k as f64 + 0.5) / n as f64).filled(),
        )
    }))?;
    Ok(())
}

/// Iso-lines of `values` (row-major, `nx` columns, `ny` rows, on the grid x0 + i·h, y0 + j·h) at
/// `levels`, as polylines in data coordinates (marching squares, by the `contour` crate).
pub fn isolines(
    values: &[f64],
    nx: usize,
    ny: usize,
    x0: f64,
    y0: f64,
    h: f64,
    levels: &[f64],
) -> Vec<Vec<(f64, f64)>> {
    // contour places value (i, j) at the centre of the unit cell [i, i+1]×[j, j+1].
    let builder = contour::ContourBuilder::new(nx, ny, true)
        .x_origin(x0 - 0.5 * h)
        .y_origin(y0 - 0.5 * h)
        .x_step(h)
        .y_step(h);
    let Ok(lines) = builder.lines(values, levels) else {
        return vec![];
    };
    // Rings of a region that reaches the grid's edge are closed along the edge; cut those parts.
    let (x1, y1) = (x0 + (nx - 1) as f64 * h, y0 + (ny - 1) as f64 * h);
    let tol = 0.51 * h;
    let on_edge = |p: &(f64, f64)| {
        p.0 <= x0 - 0.5 * h + tol
            || p.0 >= x1 + 0.5 * h - tol
            || p.1 <= y0 - 0.5 * h + tol
            || p.1 >= y1 + 0.5 * h - tol
    };
    let mut out = vec![];
    for l in &lines {
        for ls in &l.geometry().0 {
            let mut cur: Vec<(f64, f64)> = vec![];
            for c in &ls.0 {
                let p = (c.x, c.y);
                if on_edge(&p) {
                    if cur.len() > 1 {
                        out.push(std::mem::take(&mut cur));
                    }
                    cur.clear();
                } else {
                    cur.push(p);
                }
            }
            if cur.len() > 1 {
                out.push(cur);
            }
        }
    }
    out
}

/// A tick label: up to three decimals without trailing zeros, or scientific for tiny and huge.
pub fn tick(v: &f64) -> String {
    let a = v.abs();
    if a == 0.0 {
        return "0".into();
    }
    if !(1e-3..1e5).contains(&a) {
        return format!("{v:.0e}");
    }
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The iso-line of ‖x‖² at level 1 on a grid of step h lies on the unit circle to within the
    /// linear interpolation's error (≤ h²/(4·r) for a circle sampled at spacing h).
    #[test]
    fn isolines_of_a_paraboloid_are_circles() {
        let (n, x0, h) = (81, -2.0, 0.05);
        let values: Vec<f64> = (0..n * n)
            .map(|i| {
                let (x, y) = (x0 + (i % n) as f64 * h, x0 + (i / n) as f64 * h);
                x * x + y * y
            })
            .collect();
        let lines = isolines(&values, n, n, x0, x0, h, &[1.0]);
        let pts: Vec<(f64, f64)> = lines.into_iter().flatten().collect();
        assert!(pts.len() > 100, "{} points", pts.len());
        for (x, y) in pts {
            let r = (x * x + y * y).sqrt();
            assert!((r - 1.0).abs() < h * h, "radius {r}");
        }
    }

    /// Against hand-listed decades: a wide range gets 1-2-5 ticks, a narrow one every digit.
    #[test]
    fn log_ticks_cover_the_range() {
        assert_eq!(
            log_ticks(&(0.8..60.0)),
            vec![1.0, 2.0, 5.0, 10.0, 20.0, 50.0]
        );
        // Four decades or more: the decades alone, every second one past eight.
        assert_eq!(log_ticks(&(0.5..2e3)), vec![1.0, 10.0, 100.0, 1000.0]);
        let tall = log_ticks(&(1e-9..0.5));
        assert_eq!(tall.len(), 5, "{tall:?}");
        assert!((tall[0] - 1e-9).abs() < 1e-24 && (tall[4] - 1e-1).abs() < 1e-15);
        let narrow = log_ticks(&(0.15..0.45));
        assert_eq!(narrow.len(), 3);
        assert!((narrow[0] - 0.2).abs() < 1e-12 && (narrow[2] - 0.4).abs() < 1e-12);
    }

    #[test]
    fn ticks_are_short() {
        assert_eq!(tick(&0.5), "0.5");
        assert_eq!(tick(&3000.0), "3000");
        assert_eq!(tick(&1e-4), "1e-4");
        assert_eq!(tick(&0.0), "0");
    }
}
