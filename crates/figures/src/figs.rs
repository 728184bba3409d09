//! The figures. Each reads its CSVs first, then draws the same picture into an SVG string and a
//! PNG file ([`render!`]).

use crate::plot::{
    color, colorbar, isolines, lin_range, log_range, log_ticks, mean_sd, tick, viridis, LABEL, TICK,
};
use crate::{Figure, Table};
use anyhow::{bail, Result};
use plotters::coord::ranged1d::ValueFormatter;
use plotters::coord::CoordTranslate;
use plotters::prelude::*;
use std::path::Path;

/// Draws `$body` (which uses `$root`, a drawing area) once on an SVG string and once on a PNG,
/// then writes `$stem.svg` and `$stem.png` atomically.
macro_rules! render {
    ($stem:expr, $size:expr, |$root:ident| $body:block) => {{
        let stem: &Path = $stem;
        let mut svg = String::new();
        {
            let $root = SVGBackend::with_string(&mut svg, $size).into_drawing_area();
            $root.fill(&WHITE)?;
            $body
            $root.present()?;
        }
        crate::write_atomic(&stem.with_extension("svg"), svg.as_bytes())?;
        let tmp = crate::tmp_png(stem);
        {
            let $root = BitMapBackend::new(&tmp, $size).into_drawing_area();
            $root.fill(&WHITE)?;
            $body
            $root.present()?;
        }
        std::fs::rename(&tmp, stem.with_extension("png"))?;
        Ok(())
    }};
}

/// A legend glyph as the series is drawn, at `$at`: a solid or dashed line of colour `$c` with
/// the series' marker (0 circle, 1 triangle, 2 cross, else none) in its middle. (One type for
/// every case, so a macro: the markers not drawn are transparent.)
macro_rules! line_glyph {
    ($at:expr, $c:expr, $width:expr, $dash:expr, $marker:expr) => {{
        let (c, marker): (RGBColor, usize) = ($c, $marker);
        let style = c.stroke_width($width);
        // Three segments: touching for a solid line, gapped like the dash pattern for a dashed one.
        let (len, step) = if $dash { (8, 13) } else { (13, 13) };
        let seg = |k: i32| PathElement::new(vec![(k * step, 0), (k * step + len, 0)], style);
        let shown = |m: usize| {
            if m == marker {
                c.to_rgba()
            } else {
                TRANSPARENT
            }
        };
        EmptyElement::at($at)
            + seg(0)
            + seg(1)
            + seg(2)
            + Circle::new((19, 0), 6, shown(0).filled())
            + TriangleMarker::new((19, 0), 7, shown(1).filled())
            + Cross::new((19, 0), 6, shown(2).stroke_width(2))
    }};
}

/// A series marker at `$p` (chart or pixel coordinates): 0 circle, 1 triangle, 2 cross (as
/// [`line_glyph!`] draws them), 3 square, 4 diamond, 5 open circle, else open triangle. (One type
/// for every marker, so the shapes not drawn are transparent.)
macro_rules! marker_at {
    ($p:expr, $marker:expr, $c:expr) => {{
        let (c, marker): (RGBColor, usize) = ($c, $marker);
        let shown = |m: usize| {
            if m == marker.min(6) {
                c.to_rgba()
            } else {
                TRANSPARENT
            }
        };
        EmptyElement::at($p)
            + Circle::new((0, 0), 6, shown(0).filled())
            + TriangleMarker::new((0, 0), 7, shown(1).filled())
            + Cross::new((0, 0), 6, shown(2).stroke_width(2))
            + Rectangle::new([(-5, -5), (5, 5)], shown(3).filled())
            + Polygon::new(vec![(0, -7), (7, 0), (0, 7), (-7, 0)], shown(4).filled())
            + Circle::new((0, 0), 6, shown(5).stroke_width(2))
            + TriangleMarker::new((0, 0), 7, shown(6).stroke_width(2))
    }};
}

/// The mesh of a panel against score evaluations per chain (log x), its y axis described by
/// `$y` (the part of the panel's title after its colon), with the dashed reference line `truth`
/// (an `&Option<f64>`) across the x range `xr`.
macro_rules! evals_mesh {
    ($chart:ident, $truth:expr, $xr:expr, $y:expr) => {
        let y: &str = $y;
        $chart
            .configure_mesh()
            .x_label_formatter(&tick)
            .y_label_formatter(&tick)
            .x_desc("score evaluations per chain")
            .y_desc(y.rsplit(": ").next().unwrap_or(y))
            .label_style(("sans-serif", TICK))
            .axis_desc_style(("sans-serif", LABEL))
            .draw()?;
        if let Some(v) = $truth {
            $chart.draw_series(DashedLineSeries::new(
                vec![($xr.start, *v), ($xr.end, *v)],
                10,
                6,
                BLACK.stroke_width(2),
            ))?;
        }
    };
}

/// One series of (x, mean, se) points: its line (dashed or solid), markers and ±1 SE bars; on a
/// log y axis the points ≤ 0 (and bars reaching ≤ 0) are left out, as are non-finite means.
macro_rules! curve {
    ($chart:ident, $pts:expr, $log:expr, $style:expr, $dashed:expr, $marker:expr, $c:expr) => {
        let (pts, log, c): (&Vec<(f64, f64, f64)>, bool, RGBColor) = ($pts, $log, $c);
        let line: Vec<(f64, f64)> = pts
            .iter()
            .map(|q| (q.0, q.1))
            .filter(|q| q.1.is_finite() && (!log || q.1 > 0.0))
            .collect();
        if $dashed {
            $chart.draw_series(DashedLineSeries::new(line.clone(), 8, 5, $style))?;
        } else {
            $chart.draw_series(LineSeries::new(line.clone(), $style))?;
        }
        $chart.draw_series(line.iter().map(|&p| marker_at!(p, $marker, c)))?;
        $chart.draw_series(
            pts.iter()
                .filter(|q| q.2.is_finite() && (!log || q.1 - q.2 > 0.0))
                .map(|q| {
                    ErrorBar::new_vertical(q.0, q.1 - q.2, q.1, q.1 + q.2, c.stroke_width(1), 6)
                }),
        )?;
    };
}

/// Builds the chart on a log x axis and a log or linear y axis covering `ys` (and `truth`), then
/// runs the panel's `body!` macro on it.
macro_rules! log_or_linear {
    ($builder:ident, $xr:expr, $ys:expr, $truth:expr, $log:expr, $body:ident) => {
        if $log {
            let yr = log_range($ys, 1.5);
            let ticks = log_ticks(&yr);
            let mut chart = $builder.build_cartesian_2d(
                $xr.clone().log_scale(),
                yr.log_scale().with_key_points(ticks),
            )?;
            $body!(chart);
        } else {
            let yr = lin_range($ys.chain($truth.iter().copied()), 0.08);
            let mut chart = $builder.build_cartesian_2d($xr.clone().log_scale(), yr)?;
            $body!(chart);
        }
    };
}

pub fn catalogue() -> Vec<Figure> {
    vec![
        Figure {
            name: "equivalence",
            inputs: &["equivalence_models.csv"],
            caption: "ESM against ISM for many models per density: parallel lines offset by the constant C; on the half-normal the gap moves by exactly the boundary term p(0)·s_θ(0).",
            made_by: "scorelab equivalence --config paper/experiments/equivalence_models.toml --out results/equivalence_models.csv",
            draw: equivalence,
        },
        Figure {
            name: "equivalence_training",
            inputs: &["models/train_mixture_ism/loss.csv"],
            caption: "ESM and ISM during ISM training of a 64-64 MLP on a 2-D mixture, on one set of 4096 points drawn once (left), and the residual ESM − ISM − C on those points with ± 2 standard errors of the per-point differences (right): the same points at every evaluation, so the residuals are one Monte Carlo draw's error as the model changes, not independent errors.",
            made_by: "scorelab train --config paper/experiments/train_mixture_ism.toml --out results/models/train_mixture_ism --force",
            draw: equivalence_training,
        },
        Figure {
            name: "jacobian_cost",
            inputs: &["jacobian_cost_runs/machine.csv", "jacobian_cost_runs/scorelab_1.csv", "jacobian_cost_runs/jax_1.csv"],
            caption: "Time per training step against the dimension D (log-log, ticks at the D measured), every objective, scorelab beside JAX in one run on one machine (the CPU is in the figure's title); medians over the interleaved repeats.",
            made_by: "bash scripts/compare_jacobian_cost.sh (needs the JAX environment of results/baselines/README.md)",
            draw: jacobian_cost,
        },
        Figure {
            name: "score_field",
            inputs: &["noise_tradeoff_field.csv"],
            caption: "Learned (DSM at the smallest σ) against true score on the NCSN mixture, and its error ½‖s_θ − ∇log p‖² over the plane: accurate near the data, wrong away from it (low coverage). At the largest σ the network fits ∇log p_σ everywhere (right): noise covers the plane, at the price of fitting p_σ instead of p.",
            made_by: "scorelab experiment --config paper/experiments/noise_tradeoff.toml",
            draw: score_field,
        },
        Figure {
            name: "noise_tradeoff",
            inputs: &["noise_tradeoff.csv", "noise_tradeoff_summary.csv"],
            caption: "Single-σ DSM on the NCSN mixture: error to the clean score against σ, and against the distance from the data.",
            made_by: "scorelab experiment --config paper/experiments/noise_tradeoff.toml",
            draw: noise_tradeoff,
        },
        Figure {
            name: "ncsn_toy",
            inputs: &["ncsn_toy.csv", "ncsn_toy_samples.csv"],
            caption: "Plain against annealed Langevin on p = 0.8·N((5,5), I) + 0.2·N((−5,−5), I) with exact scores, from two starts (uniform on [−8, 8]², and every chain at the majority mode (5,5) with unit spread): the first seed's chains of three runs, titled with their minority weight (top), and every run's minority weight per seed (bottom).",
            made_by: "scorelab experiment --config paper/experiments/ncsn_toy.toml",
            draw: ncsn_toy,
        },
        Figure {
            name: "old_faithful",
            inputs: &["old_faithful_density.csv", "old_faithful_samples.csv", "old_faithful.csv"],
            caption: "Old Faithful, first split: log-density contours of the energy network fitted by ISM, SSM-VR and DSM, and of the Scott KDE, at 0.5, 1.5, 3 and 5 nats below each density's maximum, with each method's samples (colour) and that split's held-out eruptions (black); titles give that split's held-out log-likelihood (nats per eruption).",
            made_by: "scorelab experiment --config paper/experiments/old_faithful.toml",
            draw: old_faithful,
        },
        Figure {
            name: "digits",
            inputs: &["digits_samples.csv", "digits_summary.csv"],
            caption: "Digits: 36 held-out real images (the floor set) and the first 36 samples (first seed) of each score model and sampler, pixels clipped to [0, 1] for display (ink dark); titles give the Fréchet distance (FD) of the classifier's features to the reference set's, MMD² to the reference set and the median distance to the nearest training image, means over seeds.",
            made_by: "scorelab experiment --config paper/experiments/digits.toml",
            draw: digits,
        },
        Figure {
            name: "digits_inpaint",
            inputs: &["digits_inpaint_images.csv", "digits_inpaint_summary.csv"],
            caption: "Digits inpainting (first seed): for each mask, held-out digits with the hidden pixels in orange (top row), completed by the best network with PC and the known pixels kept at their noise level (middle), and the originals (bottom), pixels clipped to [0, 1] (ink dark); titles give the classifier's accuracy on the completions, mean over seeds, beside the masked inputs with the hidden pixels at 0 and the originals.",
            made_by: "scorelab experiment --config paper/experiments/digits_inpaint.toml",
            draw: digits_inpaint,
        },
        Figure {
            name: "toy_zoo",
            inputs: &["toy_zoo_samples.csv", "toy_zoo_density.csv", "toy_zoo_summary.csv"],
            caption: "The 2-D toy zoo (first seed): held-out points (top), samples of the noise-conditional network by Heun with churn (middle) and its density exp(log p_θ) through the probability-flow ODE on a grid, scaled to its maximum (bottom, dark = high); titles give the held-out NLL in nats per point, mean over seeds.",
            made_by: "scorelab experiment --config paper/experiments/toy_zoo.toml",
            draw: toy_zoo,
        },
        Figure {
            name: "likelihood",
            inputs: &[
                "likelihood_accuracy.csv",
                "likelihood_accuracy_hutchinson.csv",
                "likelihood_accuracy_cost.csv",
            ],
            caption: "Exact likelihoods through the probability-flow ODE with exact scores: the largest mean |log p̂ − log p| over the densities and dimensions against the solver's rtol, per schedule (left); the standard deviation of a one-probe Hutchinson divergence estimate, Rademacher against Gaussian probes, against D (middle); the time per point of the exact divergence (structured and naive) over one Hutchinson probe's, one run on this machine (right).",
            made_by: "scorelab experiment --config paper/experiments/likelihood_accuracy.toml",
            draw: likelihood,
        },
        Figure {
            name: "samplers_cost",
            inputs: &["samplers_cost_mixture_summary.csv", "samplers_cost_banana_summary.csv"],
            caption: "Sample quality against score evaluations per chain, mean ± sd over seeds: the NCSN mixture (top) and the banana (bottom).",
            made_by: "scorelab experiment --config paper/experiments/samplers_cost_mixture.toml (and samplers_cost_banana.toml)",
            draw: samplers_cost,
        },
        Figure {
            name: "sampler_zoo",
            inputs: &["sampler_zoo_summary.csv", "sampler_zoo_four_summary.csv"],
            caption: "Every sampler × schedule against score evaluations per chain (mean over 3 seeds, no error bars drawn; rk45 at rtol 1e-2 … 1e-5 exact, 1e-2 … 1e-4 learned): the minority weight and sliced W₂ on the NCSN toy with exact scores (left), with the learned network (middle), and sliced W₂ and MMD² (bandwidth 2) on the 4-mode mixture (right). Colour is the sampler, line style the schedule (solid vp, thin subvp, dashed edm, dotted ve).",
            made_by: "scorelab experiment --config paper/experiments/sampler_zoo.toml (and sampler_zoo_four.toml)",
            draw: sampler_zoo,
        },
        Figure {
            name: "solvers",
            inputs: &["solvers_summary.csv"],
            caption: "Every sampler on exact scores against score evaluations per chain, mean ± SE over seeds, from the Gaussian prior on EDM's schedule and Karras's grid, one column per target: the RMS distance of the outputs from the exact probability-flow map of the same starting points (top; deterministic samplers) and the outputs' mean exact log p minus that of the exact flow map's (bottom).",
            made_by: "scorelab experiment --config paper/experiments/solvers.toml",
            draw: solvers,
        },
        Figure {
            name: "guidance",
            inputs: &["guidance_summary.csv", "guidance_modes.csv"],
            caption: "Classifier-free guidance on exact class-conditional mixtures against the guidance scale 1 + w, one row per target: KL(q ‖ π_w) of the exact guided ODE's law q to the tilted law π_w ∝ p(x|c)^{1+w} p(x)^{−w}, guidance everywhere and in σ̃ ∈ [0.28, 5.42] (left; mean ± SE over seeds); the weight of the class's first mode in every sampler's output and in π_w (middle; guidance everywhere); every sampler's per-mode spread tr Cov over π_w's (right).",
            made_by: "scorelab experiment --config paper/experiments/guidance.toml",
            draw: guidance,
        },
        Figure {
            name: "straight_paths",
            inputs: &["straight_paths_ncsn_summary.csv", "straight_paths_8g_summary.csv"],
            caption: "Networks of one size and training budget, trained by DSM (EDM's σ̃ distribution and weighting), flow matching on the linear path (FM) and flow matching with a minibatch OT coupling (FM-OT), sampled by Euler and DPM-Solver++(2M) on the linear and EDM paths: MMD² to p against score evaluations per chain, mean ± SE over seeds, on the NCSN mixture (left) and 8gaussians (right).",
            made_by: "scorelab experiment --config paper/experiments/straight_paths_ncsn.toml (and straight_paths_8g.toml)",
            draw: straight_paths,
        },
    ]
}

/// The axes every figure uses: short tick labels, the axis descriptions, the shared text sizes.
fn mesh<'a, DB, X, Y>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    x: &str,
    y: &str,
) -> Result<()>
where
    DB: DrawingBackend + 'a,
    DB::ErrorType: 'static,
    X: Ranged<ValueType = f64> + ValueFormatter<f64>,
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    chart
        .configure_mesh()
        .x_label_formatter(&tick)
        .y_label_formatter(&tick)
        .x_desc(x)
        .y_desc(y)
        .label_style(("sans-serif", TICK))
        .axis_desc_style(("sans-serif", LABEL))
        .draw()?;
    Ok(())
}

/// The legend box every figure uses, at `pos`, with text of `size` pixels.
fn legend<'a, DB, CT>(
    chart: &mut ChartContext<'a, DB, CT>,
    pos: SeriesLabelPosition,
    size: u32,
) -> Result<()>
where
    DB: DrawingBackend + 'a,
    DB::ErrorType: 'static,
    CT: CoordTranslate,
{
    chart
        .configure_series_labels()
        .position(pos)
        .legend_area_size(48)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", size))
        .draw()?;
    Ok(())
}

/// Solid marker style.
fn dot(c: RGBColor) -> ShapeStyle {
    c.filled()
}

fn equivalence(results: &Path, stem: &Path) -> Result<()> {
    let t = Table::read(&results.join("equivalence_models.csv"))?;
    let densities: Vec<String> = t
        .distinct("density")?
        .into_iter()
        .filter(|d| d != "half_normal")
        .collect();
    if densities.is_empty() {
        bail!("{}: no density other than half_normal", t.path.display());
    }
    struct Panel {
        name: String,
        c: f64,
        ism: Vec<f64>,
        esm: Vec<f64>,
    }
    let mut panels = vec![];
    for d in &densities {
        let s = t.filter("density", d)?;
        let dim = s.strings("dim")?[0].clone();
        panels.push(Panel {
            name: format!("{} (D = {dim})", d.replace('_', " ")),
            c: s.f64s("constant")?[0],
            ism: s.f64s("ism")?,
            esm: s.f64s("esm")?,
        });
    }
    let others: Vec<f64> = {
        let gap = t.f64s("gap")?;
        let c = t.f64s("constant")?;
        let dens = t.strings("density")?;
        (0..gap.len())
            .filter(|&i| dens[i] != "half_normal")
            .map(|i| gap[i] - c[i])
            .collect()
    };
    let half = t.filter("density", "half_normal")?;
    let hb = half.f64s("boundary_term")?;
    let hr: Vec<f64> = half
        .f64s("gap")?
        .iter()
        .zip(half.f64s("constant")?)
        .map(|(g, c)| g - c)
        .collect();
    let hse = half.f64s("gap_se")?;
    // Every model's z = (ESM − ISM − C − B)/SE, by density: within Monte Carlo error is |z| of
    // order 1, which a strip of z shows and ESM against ISM on the losses' own scale cannot.
    let all_dens = t.distinct("density")?;
    let (zd, zs) = (t.strings("density")?, t.f64s("z_score")?);
    let strip: Vec<(f64, f64)> = (0..zs.len())
        .filter(|&i| zs[i].is_finite())
        .map(|i| {
            let k = all_dens.iter().position(|d| *d == zd[i]).unwrap_or(0) as f64;
            // A deterministic jitter so the models of one density do not overlap.
            (k + ((i % 9) as f64 - 4.0) / 14.0, zs[i])
        })
        .collect();
    let zmax = strip.iter().map(|p| p.1.abs()).fold(3.0, f64::max) * 1.1;
    render!(stem, (2600, 900), |root| {
        let (left, rest) = root.split_horizontally(1200);
        let (middle, right) = rest.split_horizontally(750);
        {
            let names = all_dens.clone();
            let mut chart = ChartBuilder::on(&middle)
                .caption("z of every model, by density", ("sans-serif", LABEL))
                .margin(12)
                .x_label_area_size(110)
                .y_label_area_size(90)
                .build_cartesian_2d(-0.6..(names.len() as f64 - 0.4), -zmax..zmax)?;
            chart
                .configure_mesh()
                .disable_x_mesh()
                .x_labels(names.len())
                .x_label_formatter(&|v| {
                    let k = v.round();
                    if (v - k).abs() < 1e-9 && k >= 0.0 && (k as usize) < names.len() {
                        match names[k as usize].as_str() {
                            "gaussian" => "Gauss".to_string(),
                            "gaussian_mixture" => "mixture".to_string(),
                            "student_t" => "t".to_string(),
                            "half_normal" => "half-N".to_string(),
                            other => other.replace('_', " "),
                        }
                    } else {
                        String::new()
                    }
                })
                .y_desc("(ESM − ISM − C − B) / SE")
                .label_style(("sans-serif", TICK))
                .axis_desc_style(("sans-serif", LABEL))
                .draw()?;
            for y in [-2.0, 2.0] {
                chart.draw_series(DashedLineSeries::new(
                    vec![(-0.6, y), (names.len() as f64 - 0.4, y)],
                    8,
                    6,
                    RGBColor(150, 150, 150).stroke_width(2),
                ))?;
            }
            chart.draw_series(strip.iter().map(|&p| Circle::new(p, 5, dot(color(0)))))?;
        }
        let cells = left.split_evenly((2, 2));
        for (k, (p, area)) in panels.iter().zip(cells.iter()).enumerate() {
            let xr = lin_range(p.ism.iter().copied(), 0.08);
            let yr = lin_range(p.esm.iter().copied().chain([xr.start, xr.end]), 0.05);
            let mut chart = ChartBuilder::on(area)
                .caption(format!("{}: C = {:.3}", p.name, p.c), ("sans-serif", LABEL))
                .margin(12)
                .x_label_area_size(70)
                .y_label_area_size(115)
                .build_cartesian_2d(xr.clone(), yr)?;
            mesh(&mut chart, "ISM loss J(θ)", "ESM loss")?;
            let xs = [xr.start, xr.end];
            chart
                .draw_series(DashedLineSeries::new(
                    xs.iter().map(|&x| (x, x)),
                    8,
                    6,
                    RGBColor(150, 150, 150).stroke_width(2),
                ))?
                .label("ESM = ISM")
                .legend(|p| line_glyph!(p, RGBColor(150, 150, 150), 2, true, 9));
            let c = color(k);
            chart
                .draw_series(LineSeries::new(
                    xs.iter().map(|&x| (x, x + p.c)),
                    c.stroke_width(2),
                ))?
                .label("ESM = ISM + C")
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 24, y)], c.stroke_width(2))
                });
            chart
                .draw_series(
                    p.ism
                        .iter()
                        .zip(&p.esm)
                        .map(|(&x, &y)| Circle::new((x, y), 5, dot(c))),
                )?
                .label(format!("{} models", p.ism.len()))
                .legend(move |(x, y)| Circle::new((x + 12, y), 5, dot(c)));
            legend(&mut chart, SeriesLabelPosition::UpperLeft, TICK)?;
        }
        let xr = lin_range(hb.iter().copied().chain([0.0]), 0.1);
        let yr = lin_range(
            hr.iter()
                .zip(&hse)
                .flat_map(|(r, s)| [r - 2.0 * s, r + 2.0 * s])
                .chain(others.iter().copied()),
            0.1,
        );
        let mut chart = ChartBuilder::on(&right)
            .caption(
                "half-normal: ESM − ISM − C = p(0)·s(0)",
                ("sans-serif", LABEL),
            )
            .margin(12)
            .x_label_area_size(70)
            .y_label_area_size(105)
            .build_cartesian_2d(xr.clone(), yr)?;
        mesh(
            &mut chart,
            "boundary term p(0)·ŝ(0)",
            "ESM − ISM − C (± 2 SE)",
        )?;
        chart
            .draw_series(LineSeries::new(
                [xr.start, xr.end].iter().map(|&x| (x, x)),
                BLACK.stroke_width(2),
            ))?
            .label("y = x")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], BLACK.stroke_width(2)));
        chart
            .draw_series(
                others
                    .iter()
                    .map(|&r| Circle::new((0.0, r), 4, RGBColor(150, 150, 150).filled())),
            )?
            .label(format!("{} models on ℝᴰ", others.len()))
            .legend(|(x, y)| Circle::new((x + 12, y), 4, RGBColor(150, 150, 150).filled()));
        let hc = color(1);
        chart.draw_series(hb.iter().zip(&hr).zip(&hse).map(|((&b, &r), &s)| {
            ErrorBar::new_vertical(b, r - 2.0 * s, r, r + 2.0 * s, hc.stroke_width(2), 10)
        }))?;
        chart
            .draw_series(
                hb.iter()
                    .zip(&hr)
                    .map(|(&b, &r)| Circle::new((b, r), 6, dot(hc))),
            )?
            .label(format!("{} linear models on [0, ∞)", hb.len()))
            .legend(move |(x, y)| Circle::new((x + 12, y), 6, dot(hc)));
        legend(&mut chart, SeriesLabelPosition::UpperLeft, TICK)?;
    })
}

fn equivalence_training(results: &Path, stem: &Path) -> Result<()> {
    let t = Table::read(&results.join("models/train_mixture_ism/loss.csv"))?;
    let step = t.f64s("step")?;
    let esm = t.f64s("esm")?;
    let ism = t.f64s("ism")?;
    let relative = t.f64s("relative_fisher")?;
    // relative_fisher = ESM/C, so C = ESM/relative_fisher (the same for every row).
    let c = esm[0] / relative[0];
    if !c.is_finite() {
        bail!(
            "{}: the first row has no esm/relative_fisher",
            t.path.display()
        );
    }
    let xr = 0.0..step.iter().copied().fold(1.0, f64::max);
    let yr = lin_range(esm.iter().chain(&ism).copied(), 0.05);
    let residual: Vec<f64> = esm.iter().zip(&ism).map(|(e, i)| e - i - c).collect();
    // The residual's standard error per evaluation (a loss.csv from before esm_ism_se has none).
    let se: Vec<f64> = t
        .f64s("esm_ism_se")
        .unwrap_or_else(|_| vec![f64::NAN; residual.len()]);
    let bars = se.iter().all(|v| v.is_finite());
    let rr = lin_range(
        residual
            .iter()
            .zip(&se)
            .flat_map(|(r, s)| [r + 2.0 * s.max(0.0), r - 2.0 * s.max(0.0)])
            .filter(|v| v.is_finite())
            .chain([0.0]),
        0.1,
    );
    let positive = residual.iter().filter(|r| **r > 0.0).count();
    let within = residual
        .iter()
        .zip(&se)
        .filter(|(r, s)| r.abs() <= 2.0 * **s)
        .count();
    let title = if bars {
        format!(
            "ESM − ISM − C ± 2 SE: {positive}/{} > 0, {within} within",
            residual.len()
        )
    } else {
        format!("ESM − ISM − C: > 0 in {positive} of {}", residual.len())
    };
    render!(stem, (1800, 750), |root| {
        let (left, right) = root.split_horizontally(1050);
        let mut chart = ChartBuilder::on(&left)
            .caption(
                format!("ESM and ISM during ISM training: C = {c:.4}"),
                ("sans-serif", LABEL + 2),
            )
            .margin(20)
            .x_label_area_size(72)
            .y_label_area_size(105)
            .build_cartesian_2d(xr.clone(), yr.clone())?;
        mesh(&mut chart, "Adam step", "loss on 4096 points drawn once")?;
        let pts = |v: &[f64]| -> Vec<(f64, f64)> {
            step.iter().copied().zip(v.iter().copied()).collect()
        };
        let (c0, c1) = (color(0), color(1));
        chart
            .draw_series(LineSeries::new(pts(&esm), c0.stroke_width(3)))?
            .label("ESM ½E‖ŝ − ∇log p‖²")
            .legend(move |p| line_glyph!(p, c0, 3, false, 9));
        chart
            .draw_series(LineSeries::new(pts(&ism), c1.stroke_width(3)))?
            .label("ISM E[½‖ŝ‖² + tr ∇ŝ]")
            .legend(move |p| line_glyph!(p, c1, 3, false, 9));
        let shifted: Vec<f64> = ism.iter().map(|v| v + c).collect();
        chart
            .draw_series(DashedLineSeries::new(
                pts(&shifted),
                10,
                6,
                BLACK.stroke_width(2),
            ))?
            .label("ISM + C")
            .legend(|p| line_glyph!(p, BLACK, 2, true, 9));
        legend(&mut chart, SeriesLabelPosition::UpperRight, TICK)?;
        let mut chart = ChartBuilder::on(&right)
            .caption(title.as_str(), ("sans-serif", LABEL))
            .margin(20)
            .x_label_area_size(72)
            .y_label_area_size(125)
            .build_cartesian_2d(xr.clone(), rr.clone())?;
        // Ticks at a rounding error from 0 read as 0.
        let snapped = |v: &f64| {
            tick(if v.abs() < 1e-9 * (rr.end - rr.start) {
                &0.0
            } else {
                v
            })
        };
        chart
            .configure_mesh()
            .x_label_formatter(&tick)
            .y_label_formatter(&snapped)
            .x_desc("Adam step")
            .y_desc("on the same 4096 points")
            .label_style(("sans-serif", TICK))
            .axis_desc_style(("sans-serif", LABEL))
            .draw()?;
        chart.draw_series(DashedLineSeries::new(
            vec![(xr.start, 0.0), (xr.end, 0.0)],
            10,
            6,
            BLACK.stroke_width(2),
        ))?;
        chart.draw_series(LineSeries::new(pts(&residual), c0.stroke_width(3)))?;
        if bars {
            chart.draw_series((0..residual.len()).map(|i| {
                let (r, e) = (residual[i], 2.0 * se[i]);
                ErrorBar::new_vertical(step[i], r - e, r, r + e, c0.stroke_width(2), 10)
            }))?;
        }
        chart.draw_series(
            pts(&residual)
                .into_iter()
                .map(|p| Circle::new(p, 5, c0.filled())),
        )?;
    })
}

/// One series of the cost figure.
struct CostSeries {
    label: String,
    framework: usize,
    dash: bool,
    points: Vec<(f64, f64)>,
}

fn jacobian_cost(results: &Path, stem: &Path) -> Result<()> {
    use crate::cost::{SameRun, Side, DIMS};
    let runs = SameRun::read(&results.join(crate::cost::RUNS))?;
    // (side, objective, legend label, dashed)
    type Item = (Side, &'static str, &'static str, bool);
    let groups: [(&str, &[Item]); 3] = [
        (
            "exact ISM (trace of the Jacobian)",
            &[
                (
                    Side::Scorelab,
                    "ism_naive",
                    "scorelab naive (D passes)",
                    true,
                ),
                (
                    Side::Scorelab,
                    "ism_structured",
                    "scorelab structured",
                    false,
                ),
                (Side::Jax, "ism_structured", "JAX structured", false),
                (Side::Jax, "ism_jacrev", "JAX jacrev (D passes)", true),
            ],
        ),
        (
            "sliced score matching",
            &[
                (Side::Scorelab, "ssm", "scorelab SSM", false),
                (Side::Scorelab, "ssm_vr", "scorelab SSM-VR", true),
                (Side::Jax, "ssm", "JAX SSM", false),
                (Side::Jax, "ssm_vr", "JAX SSM-VR", true),
            ],
        ),
        (
            "denoising and explicit",
            &[
                (Side::Scorelab, "dsm", "scorelab DSM", false),
                (Side::Scorelab, "esm", "scorelab ESM", true),
                (Side::Jax, "dsm", "JAX DSM", false),
            ],
        ),
    ];
    let mut panels: Vec<(&str, Vec<CostSeries>)> = vec![];
    for (title, items) in groups {
        let mut series = vec![];
        for &(side, obj, label, dash) in items {
            let points: Vec<(f64, f64)> = DIMS
                .iter()
                .filter_map(|&d| Some((f64::from(d), runs.time(side, obj, d)?)))
                .collect();
            if !points.is_empty() {
                series.push(CostSeries {
                    label: label.to_string(),
                    framework: if side == Side::Scorelab { 0 } else { 2 },
                    dash,
                    points,
                });
            }
        }
        panels.push((title, series));
    }
    let all = panels
        .iter()
        .flat_map(|p| p.1.iter().flat_map(|s| s.points.clone()))
        .collect::<Vec<_>>();
    let xr = 1.5..700.0;
    let yr = log_range(all.iter().map(|p| p.1), 1.5);
    let ticks: Vec<f64> = DIMS.iter().map(|&d| f64::from(d)).collect();
    let machine = format!("scorelab and JAX in one run: {}", runs.machine());
    render!(stem, (1800, 760), |root| {
        let root = root.titled(&machine, ("sans-serif", LABEL))?;
        let areas = root.split_evenly((1, 3));
        for ((title, series), area) in panels.iter().zip(areas.iter()) {
            let mut chart = ChartBuilder::on(area)
                .caption(*title, ("sans-serif", LABEL + 2))
                .margin(12)
                .x_label_area_size(70)
                .y_label_area_size(115)
                .build_cartesian_2d(
                    xr.clone().log_scale().with_key_points(ticks.clone()),
                    yr.clone().log_scale(),
                )?;
            chart
                .configure_mesh()
                .x_label_formatter(&|v| tick(v))
                .y_label_formatter(&tick)
                .x_desc("dimension D")
                .y_desc("ms per training step")
                .label_style(("sans-serif", TICK))
                .axis_desc_style(("sans-serif", LABEL))
                .draw()?;
            for s in series {
                let c = color(s.framework);
                let style = c.stroke_width(3);
                let (dash, marker) = (s.dash, s.framework);
                if s.dash {
                    chart.draw_series(DashedLineSeries::new(s.points.clone(), 10, 6, style))?
                } else {
                    chart.draw_series(LineSeries::new(s.points.clone(), style))?
                }
                .label(s.label.clone())
                .legend(move |p| line_glyph!(p, c, 3, dash, marker));
                chart.draw_series(s.points.iter().map(move |&p| {
                    let e: DynElement<_, _> = match marker {
                        0 => Circle::new(p, 6, c.filled()).into_dyn(),
                        _ => Cross::new(p, 6, c.stroke_width(2)).into_dyn(),
                    };
                    e
                }))?;
            }
            legend(&mut chart, SeriesLabelPosition::UpperLeft, TICK)?;
        }
    })
}

/// The field CSV of one σ: the grid, log p, true and learned scores.
struct Field {
    sigma: f64,
    n: usize,
    x0: f64,
    h: f64,
    x: Vec<f64>,
    y: Vec<f64>,
    log_p: Vec<f64>,
    truth: Vec<(f64, f64)>,
    noised: Vec<(f64, f64)>,
    learned: Vec<(f64, f64)>,
}

impl Field {
    /// ½‖s_θ − ∇log p‖² (`noised`: ∇log p_σ instead) at grid point i.
    fn error(&self, i: usize, noised: bool) -> f64 {
        let (a, b) = if noised {
            self.noised[i]
        } else {
            self.truth[i]
        };
        let (c, d) = self.learned[i];
        0.5 * ((a - c).powi(2) + (b - d).powi(2))
    }

    /// Iso-lines of log p at `below` nats under its maximum.
    fn contours(&self, below: &[f64]) -> Vec<Vec<(f64, f64)>> {
        let max = self.log_p.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let levels: Vec<f64> = below.iter().map(|b| max - b).collect();
        isolines(
            &self.log_p,
            self.n,
            self.n,
            self.x0,
            self.x0,
            self.h,
            &levels,
        )
    }
}

fn read_fields(path: &Path) -> Result<Vec<Field>> {
    let t = Table::read(path)?;
    let mut out = vec![];
    for s in t.distinct("sigma")? {
        let f = t.filter("sigma", &s)?;
        let x = f.f64s("x0")?;
        let y = f.f64s("x1")?;
        let n = (x.len() as f64).sqrt().round() as usize;
        if n * n != x.len() || n < 2 {
            bail!("{}: σ = {s}: the grid is not square", t.path.display());
        }
        let zip = |a: Vec<f64>, b: Vec<f64>| a.into_iter().zip(b).collect::<Vec<_>>();
        out.push(Field {
            sigma: s.parse()?,
            n,
            x0: x[0],
            h: x[1] - x[0],
            log_p: f.f64s("log_p")?,
            truth: zip(f.f64s("true0")?, f.f64s("true1")?),
            noised: zip(f.f64s("noised0")?, f.f64s("noised1")?),
            learned: zip(f.f64s("learned0")?, f.f64s("learned1")?),
            x,
            y,
        });
    }
    if out.is_empty() {
        bail!("{}: no rows", t.path.display());
    }
    Ok(out)
}

fn score_field(results: &Path, stem: &Path) -> Result<()> {
    let fields = read_fields(&results.join("noise_tradeoff_field.csv"))?;
    let small = &fields[0];
    let large = fields.last().expect("non-empty");
    // The colour scale spans both error maps, in whole decades, so that no cell saturates.
    let errors = (0..small.x.len())
        .map(|i| small.error(i, false))
        .chain((0..large.x.len()).map(|i| large.error(i, true)))
        .filter(|e| *e > 0.0 && e.is_finite())
        .map(f64::log10);
    let (lo, hi) = errors.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), e| {
        (a.min(e), b.max(e))
    });
    let (lo, hi) = if lo < hi {
        (lo.floor(), hi.ceil())
    } else {
        (-3.0, 3.0)
    };
    let range = small.x0..(small.x0 + small.h * (small.n - 1) as f64);
    // Iso-lines of log p at these many nats below its maximum (stated in the first panel).
    const LEVELS: [f64; 2] = [2.0, 6.0];
    let contours = small.contours(&LEVELS);
    render!(stem, (2040, 640), |root| {
        let (plots, bar) = root.split_horizontally(1830);
        let areas = plots.split_evenly((1, 3));
        // (a) arrows, every `k`-th grid point.
        let k = (small.n / 12).max(1);
        let mut chart = ChartBuilder::on(&areas[0])
            .caption(
                format!("scores, DSM σ = {}", small.sigma),
                ("sans-serif", LABEL + 2),
            )
            .margin(12)
            .x_label_area_size(70)
            .y_label_area_size(105)
            .build_cartesian_2d(range.clone(), range.clone())?;
        chart
            .configure_mesh()
            .x_label_formatter(&tick)
            .y_label_formatter(&tick)
            .disable_mesh()
            .x_desc("x₁")
            .y_desc("x₂")
            .label_style(("sans-serif", TICK))
            .axis_desc_style(("sans-serif", LABEL))
            .draw()?;
        for line in &contours {
            chart.draw_series(LineSeries::new(line.clone(), BLACK.stroke_width(1)))?;
        }
        // One length scale for both fields: the grid spacing at the largest true ‖s‖ shown, and
        // length ∝ log(1 + ‖s‖) below it, so that short arrows near the modes stay visible.
        let spacing = 0.8 * k as f64 * small.h;
        let idx: Vec<usize> = (0..small.x.len())
            .filter(|&i| (i % small.n) % k == 0 && (i / small.n) % k == 0)
            .collect();
        let top = idx
            .iter()
            .map(|&i| small.truth[i].0.hypot(small.truth[i].1))
            .fold(1e-12, f64::max);
        let arrow = |x: f64, y: f64, (u, v): (f64, f64)| {
            let m = u.hypot(v);
            let l = spacing * ((1.0 + m).ln() / (1.0 + top).ln()).min(1.0);
            let (ux, uy) = if m > 0.0 { (u / m, v / m) } else { (0.0, 0.0) };
            let (ex, ey) = (x + ux * l, y + uy * l);
            // A head of a quarter of the length, at ±25°.
            let (c, s_) = (25f64.to_radians().cos(), 25f64.to_radians().sin());
            let hl = l / 4.0;
            let left = (ex - hl * (ux * c - uy * s_), ey - hl * (uy * c + ux * s_));
            let right = (ex - hl * (ux * c + uy * s_), ey - hl * (uy * c - ux * s_));
            vec![(x, y), (ex, ey), left, (ex, ey), right]
        };
        let grey = RGBColor(150, 150, 150);
        let blue = color(0);
        chart
            .draw_series(idx.iter().map(|&i| {
                PathElement::new(
                    arrow(small.x[i], small.y[i], small.truth[i]),
                    grey.stroke_width(5),
                )
            }))?
            .label("true ∇log p")
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 24, y)], grey.stroke_width(5))
            });
        chart
            .draw_series(idx.iter().map(|&i| {
                PathElement::new(
                    arrow(small.x[i], small.y[i], small.learned[i]),
                    blue.stroke_width(2),
                )
            }))?
            .label("learned score ŝ")
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 24, y)], blue.stroke_width(2))
            });
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![],
                BLACK.stroke_width(1),
            )))?
            .label(format!(
                "log p: {} and {} nats below max",
                LEVELS[0], LEVELS[1]
            ))
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], BLACK.stroke_width(1)));
        legend(&mut chart, SeriesLabelPosition::UpperLeft, TICK - 4)?;
        // (b), (c) error maps.
        for (area, f, noised) in [(&areas[1], small, false), (&areas[2], large, true)] {
            let title = if noised {
                format!("DSM σ = {}: error to the noised score", f.sigma)
            } else {
                format!("DSM σ = {}: error to ∇log p", f.sigma)
            };
            let mut chart = ChartBuilder::on(area)
                .caption(title, ("sans-serif", LABEL + 2))
                .margin(12)
                .x_label_area_size(70)
                .y_label_area_size(105)
                .build_cartesian_2d(range.clone(), range.clone())?;
            chart
                .configure_mesh()
                .x_label_formatter(&tick)
                .y_label_formatter(&tick)
                .disable_mesh()
                .x_desc("x₁")
                .y_desc("x₂")
                .label_style(("sans-serif", TICK))
                .axis_desc_style(("sans-serif", LABEL))
                .draw()?;
            let h = f.h;
            chart.draw_series((0..f.x.len()).map(|i| {
                let e = f.error(i, noised).max(1e-300).log10();
                Rectangle::new(
                    [
                        (f.x[i] - h / 2.0, f.y[i] - h / 2.0),
                        (f.x[i] + h / 2.0, f.y[i] + h / 2.0),
                    ],
                    viridis((e - lo) / (hi - lo)).filled(),
                )
            }))?;
            for line in &f.contours(&LEVELS) {
                chart.draw_series(LineSeries::new(line.clone(), WHITE.stroke_width(2)))?;
            }
        }
        colorbar(&bar, lo, hi, "log₁₀ ½‖ŝ − target‖²")?;
    })
}

fn noise_tradeoff(results: &Path, stem: &Path) -> Result<()> {
    let s = Table::read(&results.join("noise_tradeoff_summary.csv"))?;
    let sig = s.f64s("sigma")?;
    let cm = s.f64s("error_clean_mean")?;
    let cs = s.f64s("error_clean_sd")?;
    let nm = s.f64s("error_noised_mean")?;
    let ns = s.f64s("error_noised_sd")?;
    let t = Table::read(&results.join("noise_tradeoff.csv"))?.filter("region", "box")?;
    let sigmas = t.distinct("sigma")?;
    let mut curves = vec![];
    for sg in &sigmas {
        let r = t.filter("sigma", sg)?;
        let lo = r.f64s("bin_low")?;
        let hi = r.f64s("bin_high")?;
        // Each model against its own target, the score of p ∗ N(0, σ²I), relative to the
        // target's own size ½‖∇log p_σ‖² (which shrinks with σ).
        let e = crate::checks::relative_error_noised(&r)?;
        // Mean over seeds per bin.
        let mut bins: Vec<(f64, f64, Vec<f64>)> = vec![];
        for i in 0..lo.len() {
            match bins.iter_mut().find(|b| b.0 == lo[i]) {
                Some(b) => b.2.push(e[i]),
                None => bins.push((lo[i], hi[i], vec![e[i]])),
            }
        }
        let pts: Vec<(f64, f64)> = bins
            .iter()
            .map(|(l, h, v)| (0.5 * (l + h), mean_sd(v).0))
            .filter(|p| p.1.is_finite() && p.1 > 0.0)
            .collect();
        curves.push((sg.clone(), pts));
    }
    let xr = log_range(sig.iter().copied(), 1.6);
    let yr = log_range(
        cm.iter()
            .zip(&cs)
            .map(|(m, s)| m + s.max(0.0))
            .chain(nm.iter().copied())
            .chain(cm.iter().zip(&cs).map(|(m, s)| (m - s).max(m / 3.0))),
        2.0,
    );
    let dr = lin_range(curves.iter().flat_map(|c| c.1.iter().map(|p| p.0)), 0.04);
    let er = log_range(curves.iter().flat_map(|c| c.1.iter().map(|p| p.1)), 2.0);
    render!(stem, (1700, 700), |root| {
        let areas = root.split_evenly((1, 2));
        let mut chart = ChartBuilder::on(&areas[0])
            .caption(
                "error against the DSM noise level",
                ("sans-serif", LABEL + 2),
            )
            .margin(12)
            .x_label_area_size(72)
            .y_label_area_size(125)
            .build_cartesian_2d(xr.clone().log_scale(), yr.clone().log_scale())?;
        mesh(
            &mut chart,
            "DSM noise level σ",
            "½ E‖ŝ − target‖² over p (mean ± sd)",
        )?;
        for (k, (m, sd, label)) in [
            (&cm, &cs, "to the clean score ∇log p"),
            (&nm, &ns, "to the noised score ∇log(p ∗ N(0, σ²I))"),
        ]
        .into_iter()
        .enumerate()
        {
            let c = color(k);
            let pts: Vec<(f64, f64)> = sig.iter().copied().zip(m.iter().copied()).collect();
            chart
                .draw_series(LineSeries::new(pts.clone(), c.stroke_width(3)))?
                .label(label)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 24, y)], c.stroke_width(3))
                });
            chart.draw_series(pts.iter().map(|&p| Circle::new(p, 6, c.filled())))?;
            chart.draw_series(
                sig.iter()
                    .zip(m.iter())
                    .zip(sd.iter())
                    .filter(|(_, s)| s.is_finite())
                    .map(|((&x, &y), &s)| {
                        ErrorBar::new_vertical(
                            x,
                            (y - s).max(y / 3.0),
                            y,
                            y + s,
                            c.stroke_width(2),
                            10,
                        )
                    }),
            )?;
        }
        legend(&mut chart, SeriesLabelPosition::LowerLeft, TICK)?;
        let mut chart = ChartBuilder::on(&areas[1])
            .caption(
                "error relative to its own target",
                ("sans-serif", LABEL + 2),
            )
            .margin(12)
            .x_label_area_size(72)
            .y_label_area_size(125)
            .build_cartesian_2d(dr.clone(), er.clone().log_scale())?;
        mesh(
            &mut chart,
            "distance to the nearest data point",
            "‖ŝ − ∇log p_σ‖² / ‖∇log p_σ‖²",
        )?;
        let n = curves.len().max(2) - 1;
        for (k, (sg, pts)) in curves.iter().enumerate() {
            let c = viridis(0.9 * k as f64 / n as f64);
            chart
                .draw_series(LineSeries::new(pts.clone(), c.stroke_width(3)))?
                .label(format!("σ = {sg}"))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 24, y)], c.stroke_width(3))
                });
            chart.draw_series(pts.iter().map(|&p| Circle::new(p, 5, c.filled())))?;
        }
        legend(&mut chart, SeriesLabelPosition::LowerRight, TICK)?;
    })
}

/// Short names of the NCSN-toy runs for the axis.
fn run_label(run: &str) -> String {
    match run {
        "langevin" => "Langevin".into(),
        "annealed_exact" => "annealed".into(),
        "annealed_ncsn_toy" => "annealed, σ²I".into(),
        "annealed_exact_denoised" => "+ Tweedie".into(),
        "langevin_majority_start" => "Langevin, (5,5)".into(),
        "annealed_majority_start" => "annealed, (5,5)".into(),
        "exact_samples" => "exact samples of p".into(),
        other => other.into(),
    }
}

fn ncsn_toy(results: &Path, stem: &Path) -> Result<()> {
    let t = Table::read(&results.join("ncsn_toy.csv"))?;
    let w = t.filter("metric", "mode_weight_1")?;
    let runs = w.distinct("run")?;
    let mut weights = vec![];
    for r in &runs {
        weights.push((r.clone(), w.filter("run", r)?.f64s("value")?));
    }
    let s = Table::read(&results.join("ncsn_toy_samples.csv"))?;
    let shown: Vec<String> = ["langevin", "langevin_majority_start", "annealed_exact"]
        .iter()
        .map(|s| s.to_string())
        .filter(|r| runs.contains(r))
        .collect();
    let mut clouds = vec![];
    for r in &shown {
        let c = s.filter("run", r)?;
        let pts: Vec<(f64, f64)> = c.f64s("x0")?.into_iter().zip(c.f64s("x1")?).collect();
        clouds.push((r.clone(), pts, mean_sd(&w.filter("run", r)?.f64s("value")?)));
    }
    let range = -10.0..10.0;
    // "mean ± sd" over seeds, or the one seed's value.
    let pm = |m: f64, sd: f64| {
        if sd.is_finite() {
            format!("{m:.3} ± {sd:.3}")
        } else {
            format!("{m:.3}")
        }
    };
    let start = |name: &str| {
        if name.ends_with("majority_start") {
            "start at (5,5)"
        } else {
            "uniform start"
        }
    };
    render!(stem, (1800, 1150), |root| {
        let (top, bottom) = root.split_vertically(640);
        let areas = top.split_evenly((1, 3));
        for (k, (name, pts, (m, sd))) in clouds.iter().enumerate() {
            let label = run_label(name);
            let label = label.split(',').next().unwrap_or(&label);
            let mut chart = ChartBuilder::on(&areas[k])
                .caption(
                    format!("{label}, {}", start(name)),
                    ("sans-serif", LABEL - 4),
                )
                .margin(16)
                .x_label_area_size(70)
                .y_label_area_size(105)
                .build_cartesian_2d(range.clone(), range.clone())?;
            mesh(&mut chart, "x₁", "x₂")?;
            // The minority weight, inside the panel's upper-left corner.
            chart.draw_series(std::iter::once(Text::new(
                format!("minority weight {}", pm(*m, *sd)),
                (range.start + 0.4, range.end - 0.4),
                ("sans-serif", TICK),
            )))?;
            let c = color(runs.iter().position(|r| r == name).unwrap_or(k));
            chart.draw_series(
                pts.iter()
                    .filter(|p| range.contains(&p.0) && range.contains(&p.1))
                    .map(|&p| Circle::new(p, 2, c.mix(0.5).filled())),
            )?;
        }
        let mut chart = ChartBuilder::on(&bottom)
            .caption(
                "weight of the minority mode (−5,−5), every seed (dots) and mean ± sd (bar)",
                ("sans-serif", LABEL),
            )
            .margin(12)
            .x_label_area_size(70)
            .y_label_area_size(115)
            .build_cartesian_2d(-0.5..(weights.len() as f64 - 0.5), -0.02..0.6)?;
        chart
            .configure_mesh()
            .y_label_formatter(&tick)
            .disable_x_mesh()
            .x_labels(weights.len())
            .x_label_formatter(&|x| {
                let i = x.round();
                if (x - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < weights.len() {
                    run_label(&weights[i as usize].0)
                } else {
                    String::new()
                }
            })
            .x_desc("run")
            .y_desc("fraction of chains")
            .label_style(("sans-serif", TICK - 2))
            .axis_desc_style(("sans-serif", LABEL))
            .draw()?;
        chart
            .draw_series(DashedLineSeries::new(
                vec![(-0.5, 0.2), (weights.len() as f64 - 0.5, 0.2)],
                10,
                6,
                BLACK.stroke_width(2),
            ))?
            .label("true weight 0.2")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], BLACK.stroke_width(2)));
        for (i, (_, v)) in weights.iter().enumerate() {
            let c = color(i);
            let (m, sd) = mean_sd(v);
            chart.draw_series(v.iter().enumerate().map(|(j, &y)| {
                Circle::new(
                    (i as f64 - 0.15 + 0.3 * j as f64 / v.len().max(2) as f64, y),
                    5,
                    c.filled(),
                )
            }))?;
            chart.draw_series([ErrorBar::new_vertical(
                i as f64 + 0.25,
                m - sd,
                m,
                m + sd,
                BLACK.stroke_width(2),
                12,
            )])?;
        }
        legend(&mut chart, SeriesLabelPosition::UpperRight, TICK)?;
    })
}

/// One panel of the sampler-cost figure: (run, points (evals, mean, sd)).
type CostPanel = (
    String,
    bool,
    Vec<(String, Vec<(f64, f64, f64)>)>,
    Option<f64>,
);

fn cost_panel(
    t: &Table,
    metric: &str,
    title: &str,
    log: bool,
    truth: Option<f64>,
) -> Result<CostPanel> {
    let m = t.filter("metric", metric)?;
    let mut series = vec![];
    // Exact samples of p (the `exact_samples` run) are not a sampler: their value is the metric's
    // floor at this many chains, drawn as the panel's reference line where no truth is given.
    let floor = m
        .filter("run", "exact_samples")?
        .f64s("mean")?
        .first()
        .copied();
    let truth = truth.or(floor);
    for r in m.distinct("run")? {
        if r == "exact_samples" {
            continue;
        }
        let s = m.filter("run", &r)?;
        let pts: Vec<(f64, f64, f64)> = s
            .f64s("score_evals")?
            .into_iter()
            .zip(s.f64s("mean")?)
            .zip(s.f64s("sd")?)
            .map(|((e, m), sd)| (e, m, sd))
            .collect();
        series.push((r, pts));
    }
    Ok((title.to_string(), log, series, truth))
}

/// "MMD² (bandwidth h)" when every row of the summary `t` has the one MMD² bandwidth h, else
/// "MMD² (median bandwidth per run)".
fn mmd_title(t: &Table) -> Result<String> {
    Ok(match crate::paper::mmd_bandwidths(t)?.as_slice() {
        [b] => format!("MMD² (bandwidth {b})"),
        _ => "MMD² (median bandwidth per run)".to_string(),
    })
}

fn samplers_cost(results: &Path, stem: &Path) -> Result<()> {
    let mix = Table::read(&results.join("samplers_cost_mixture_summary.csv"))?;
    let ban = Table::read(&results.join("samplers_cost_banana_summary.csv"))?;
    let (mix_mmd, ban_mmd) = (
        format!("mixture: {}", mmd_title(&mix)?),
        format!("banana: {}", mmd_title(&ban)?),
    );
    let panels = vec![
        cost_panel(
            &mix,
            "mode_weight_1",
            "mixture: minority-mode weight",
            false,
            Some(0.2),
        )?,
        cost_panel(&mix, "mmd2", &mix_mmd, false, None)?,
        cost_panel(&mix, "ksd", "mixture: KSD", true, None)?,
        cost_panel(&ban, "sliced_w2", "banana: sliced W₂", true, None)?,
        cost_panel(&ban, "mmd2", &ban_mmd, false, None)?,
        cost_panel(&ban, "ksd", "banana: KSD", true, None)?,
    ];
    // Colour and marker by sampler (no two samplers share both), dashed for a learned score;
    // one legend for the figure.
    let samplers: [(&str, RGBColor, usize); 6] = [
        ("langevin", color(0), 0),
        ("mala", color(1), 1),
        ("annealed", color(2), 0),
        ("reverse_sde", color(3), 2),
        ("pc", color(7), 1),
        ("ode", color(5), 2),
    ];
    let hue = |run: &str| {
        samplers
            .iter()
            .position(|s| run.starts_with(s.0))
            .unwrap_or(6)
    };
    let style_of = |run: &str| {
        samplers
            .iter()
            .find(|s| run.starts_with(s.0))
            .map_or((color(6), 0), |s| (s.1, s.2))
    };
    let mut names: Vec<String> = vec![];
    for p in &panels {
        for (r, _) in &p.2 {
            if !names.contains(r) {
                names.push(r.clone());
            }
        }
    }
    names.sort_by_key(|n| (hue(n), n.contains("learned")));
    let xr = log_range(
        panels
            .iter()
            .flat_map(|p| p.2.iter().flat_map(|s| s.1.iter().map(|q| q.0))),
        1.4,
    );
    render!(stem, (1900, 1300), |root| {
        let (top, legend) = root.split_vertically(1160);
        for (k, name) in names.iter().enumerate() {
            let (x, y) = (40 + (k % 4) as i32 * 470, 22 + (k / 4) as i32 * 40);
            let (c, marker) = style_of(name);
            legend.draw(&line_glyph!((x, y), c, 3, name.contains("learned"), marker))?;
            legend.draw(&Text::new(
                name.replace('_', " "),
                (x + 50, y - 15),
                ("sans-serif", TICK),
            ))?;
        }
        let areas = top.split_evenly((2, 3));
        for (area, (title, log, series, truth)) in areas.iter().zip(&panels) {
            let ys = series.iter().flat_map(|s| s.1.iter().map(|q| q.1));
            let mut chart_builder = ChartBuilder::on(area);
            chart_builder
                .caption(title.as_str(), ("sans-serif", LABEL))
                .margin(12)
                .x_label_area_size(72)
                .y_label_area_size(115);
            macro_rules! body {
                ($chart:ident) => {
                    evals_mesh!($chart, truth, xr, title.as_str());
                    for (run, pts) in series {
                        let (c, marker) = style_of(run);
                        let style = if run.contains("learned") {
                            c.stroke_width(2)
                        } else {
                            c.stroke_width(3)
                        };
                        curve!($chart, pts, *log, style, run.contains("learned"), marker, c);
                    }
                };
            }
            log_or_linear!(chart_builder, xr, ys, truth, *log, body);
        }
    })
}

/// The runs of a sampler-zoo summary as (sampler, schedule, points (evals, mean, sd)) for one metric
/// and score source (`learned` or not); rk45's rtol runs are joined into one line per schedule.
type ZooSeries = (String, String, Vec<(f64, f64, f64)>);

fn zoo_series(t: &Table, metric: &str, learned: bool) -> Result<Vec<ZooSeries>> {
    let m = t.filter("metric", metric)?;
    let mut out: Vec<ZooSeries> = vec![];
    for r in m.distinct("run")? {
        if r.starts_with("prior_")
            || r == "exact_samples"
            || r.starts_with("objective_")
            || r.ends_with("_learned") != learned
        {
            continue;
        }
        let base = r.trim_end_matches("_learned");
        let (sampler, schedule) = match base.rsplit_once('_') {
            Some((head, tail)) if head.starts_with("rk45") || tail.starts_with("rtol") => {
                let mut parts = base.split('_');
                let _ = parts.next();
                ("rk45".to_string(), parts.next().unwrap_or("").to_string())
            }
            Some((head, tail)) => (head.to_string(), tail.to_string()),
            None => (base.to_string(), String::new()),
        };
        let s = m.filter("run", &r)?;
        let pts: Vec<(f64, f64, f64)> = s
            .f64s("score_evals")?
            .into_iter()
            .zip(s.f64s("mean")?)
            .zip(s.f64s("sd")?)
            .map(|((e, m), sd)| (e, m, sd))
            .collect();
        match out.iter_mut().find(|o| o.0 == sampler && o.1 == schedule) {
            Some(o) => o.2.extend(pts),
            None => out.push((sampler, schedule, pts)),
        }
    }
    for o in &mut out {
        o.2.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    Ok(out)
}

fn sampler_zoo(results: &Path, stem: &Path) -> Result<()> {
    let toy = Table::read(&results.join("sampler_zoo_summary.csv"))?;
    let four = Table::read(&results.join("sampler_zoo_four_summary.csv"))?;
    // The floor of a metric: the exact samples of p, judged like the runs.
    let floor = |t: &Table, metric: &str| -> Result<Option<f64>> {
        Ok(t.filter("metric", metric)?
            .filter("run", "exact_samples")?
            .f64s("mean")?
            .first()
            .copied())
    };
    // Small multiples: one row per question, one column per schedule, one line per sampler.
    // (row title, summary, metric, learned score, log scale, reference line)
    type Row<'a> = (&'a str, &'a Table, &'a str, bool, bool, Option<f64>);
    let rows: Vec<Row> = vec![
        (
            "toy, exact: minority weight",
            &toy,
            "mode_weight_1",
            false,
            false,
            Some(0.2),
        ),
        (
            "toy, learned: minority weight",
            &toy,
            "mode_weight_1",
            true,
            false,
            Some(0.2),
        ),
        (
            "toy, exact: sliced W₂",
            &toy,
            "sliced_w2",
            false,
            true,
            floor(&toy, "sliced_w2")?,
        ),
        (
            "4 modes, exact: sliced W₂",
            &four,
            "sliced_w2",
            false,
            true,
            floor(&four, "sliced_w2")?,
        ),
    ];
    let schedules = [
        ("vp", "VP"),
        ("subvp", "sub-VP"),
        ("edm", "EDM"),
        ("ve", "VE"),
    ];
    let mut panels: Vec<(String, bool, Vec<ZooSeries>, Option<f64>)> = vec![];
    for (title, t, metric, learned, log, truth) in &rows {
        let all = zoo_series(t, metric, *learned)?;
        for (key, name) in schedules {
            let series: Vec<ZooSeries> = all.iter().filter(|s| s.1 == key).cloned().collect();
            panels.push((format!("{name}, {title}"), *log, series, *truth));
        }
    }
    let samplers = [
        "reverse_sde",
        "pc",
        "ancestral",
        "ddim",
        "heun",
        "heun_churn",
        "rk45",
    ];
    let hue = |s: &str| samplers.iter().position(|k| *k == s).unwrap_or(7);
    let xr = log_range(
        panels
            .iter()
            .flat_map(|p| p.2.iter().flat_map(|s| s.2.iter().map(|q| q.0))),
        1.3,
    );
    render!(stem, (2400, 2200), |root| {
        let (top, legend) = root.split_vertically(2130);
        // Each sampler has its colour and its marker; the dashed line is the truth (weights) or
        // the metric's floor (exact samples of p); bars are ± sd over seeds.
        for (k, name) in samplers.iter().enumerate() {
            let (x, y) = (40 + k as i32 * 300, 30);
            legend.draw(&PathElement::new(
                vec![(x, y), (x + 34, y)],
                color(k).stroke_width(4),
            ))?;
            legend.draw(&marker_at!((x + 17, y), k, color(k)))?;
            legend.draw(&Text::new(
                name.replace('_', " "),
                (x + 44, y - 11),
                ("sans-serif", TICK),
            ))?;
        }
        let areas = top.split_evenly((rows.len(), schedules.len()));
        for (area, (title, log, series, truth)) in areas.iter().zip(&panels) {
            let ys = series
                .iter()
                .flat_map(|s| s.2.iter().flat_map(|q| [q.1 - q.2, q.1 + q.2]))
                .filter(|y| !*log || *y > 0.0);
            let mut chart_builder = ChartBuilder::on(area);
            chart_builder
                .caption(title.as_str(), ("sans-serif", TICK))
                .margin(10)
                .x_label_area_size(64)
                .y_label_area_size(100);
            macro_rules! body {
                ($chart:ident) => {
                    evals_mesh!($chart, truth, xr, title.as_str());
                    for (sampler, _, pts) in series {
                        let c = color(hue(sampler));
                        let kept: Vec<(f64, f64, f64)> =
                            pts.iter().copied().filter(|q| !*log || q.1 > 0.0).collect();
                        $chart.draw_series(LineSeries::new(
                            kept.iter().map(|q| (q.0, q.1)),
                            c.stroke_width(3),
                        ))?;
                        $chart.draw_series(kept.iter().map(|q| {
                            let lo = if *log {
                                (q.1 - q.2).max(q.1 / 10.0)
                            } else {
                                q.1 - q.2
                            };
                            ErrorBar::new_vertical(q.0, lo, q.1, q.1 + q.2, c.stroke_width(2), 8)
                        }))?;
                        let m = hue(sampler);
                        $chart.draw_series(kept.iter().map(|q| marker_at!((q.0, q.1), m, c)))?;
                    }
                };
            }
            log_or_linear!(chart_builder, xr, ys, truth, *log, body);
        }
    })
}

/// Named series of (x, y) points.
type Series = Vec<(String, Vec<(f64, f64)>)>;

/// Per group of `key`, the points (x, largest y at that x) of the rows of `t`, sorted by x.
fn max_by_x(t: &Table, key: &str, x: &str, y: &str) -> Result<Series> {
    let mut out = vec![];
    for g in t.distinct(key)? {
        let r = t.filter(key, &g)?;
        let mut pts: Vec<(f64, f64)> = vec![];
        for (a, b) in r.f64s(x)?.into_iter().zip(r.f64s(y)?) {
            match pts.iter_mut().find(|p| p.0 == a) {
                Some(p) => p.1 = p.1.max(b),
                None => pts.push((a, b)),
            }
        }
        pts.sort_by(|p, q| p.0.total_cmp(&q.0));
        out.push((g, pts));
    }
    Ok(out)
}

fn likelihood(results: &Path, stem: &Path) -> Result<()> {
    let acc = Table::read(&results.join("likelihood_accuracy.csv"))?;
    let hut = Table::read(&results.join("likelihood_accuracy_hutchinson.csv"))?;
    let cost = Table::read(&results.join("likelihood_accuracy_cost.csv"))?;
    // A schedule's label without its parameters: "vp(t_min=…)" → "vp".
    let short = |s: &str| s.split('(').next().unwrap_or(s).to_string();
    // (title, x label, y label, series)
    let panels: Vec<(String, &str, &str, Series)> = vec![
        (
            "accuracy against the exact log p".into(),
            "solver rtol",
            "worst mean |log p error| (nats)",
            max_by_x(&acc, "schedule", "rtol", "mean_abs_error")?
                .into_iter()
                .map(|(g, p)| (short(&g), p))
                .collect(),
        ),
        (
            "one Hutchinson probe's noise".into(),
            "D",
            "sd of one-probe log p (nats)",
            max_by_x(&hut, "probe", "dim", "one_probe_sd")?,
        ),
        (
            "exact divergence: cost".into(),
            "D",
            "time per point / one probe's",
            ["exact_structured", "exact_naive"]
                .iter()
                .map(|m| -> Result<(String, Vec<(f64, f64)>)> {
                    let r = cost.filter("method", m)?;
                    let pts = r
                        .f64s("dim")?
                        .into_iter()
                        .zip(r.f64s("ratio_to_hutchinson")?);
                    Ok((m.replace('_', " "), pts.collect()))
                })
                .collect::<Result<Vec<_>>>()?,
        ),
    ];
    render!(stem, (2100, 700), |root| {
        let areas = root.split_evenly((1, 3));
        for (k, (area, (title, xd, yd, series))) in areas.iter().zip(&panels).enumerate() {
            let ys = series.iter().flat_map(|s| s.1.iter().map(|p| p.1));
            // Ticks at the x values measured (rtols, dimensions), decades on y.
            let mut xt: Vec<f64> = series
                .iter()
                .flat_map(|s| s.1.iter().map(|p| p.0))
                .collect();
            xt.sort_by(f64::total_cmp);
            xt.dedup();
            let (xr, yr) = (log_range(xt.iter().copied(), 1.6), log_range(ys, 1.6));
            let yt = log_ticks(&yr);
            let mut chart = ChartBuilder::on(area)
                .caption(title.as_str(), ("sans-serif", LABEL))
                .margin(14)
                .x_label_area_size(72)
                .y_label_area_size(125)
                .build_cartesian_2d(
                    xr.clone().log_scale().with_key_points(xt.clone()),
                    yr.clone().log_scale().with_key_points(yt.clone()),
                )?;
            chart
                .configure_mesh()
                .x_label_formatter(&tick)
                .y_label_formatter(&tick)
                .x_desc(*xd)
                .y_desc(*yd)
                .label_style(("sans-serif", TICK))
                .axis_desc_style(("sans-serif", LABEL))
                .draw()?;
            if k == 2 {
                // Equal cost.
                chart.draw_series(DashedLineSeries::new(
                    vec![(xr.start, 1.0), (xr.end, 1.0)],
                    10,
                    6,
                    BLACK.stroke_width(2),
                ))?;
            }
            for (i, (name, pts)) in series.iter().enumerate() {
                let c = color(i);
                chart
                    .draw_series(LineSeries::new(pts.clone(), c.stroke_width(3)))?
                    .label(name.as_str())
                    .legend(move |p| line_glyph!(p, c, 3, false, i));
                chart.draw_series(pts.iter().map(|&p| marker_at!(p, i, c)))?;
            }
            legend(&mut chart, SeriesLabelPosition::UpperLeft, TICK)?;
        }
    })
}

fn old_faithful(results: &Path, stem: &Path) -> Result<()> {
    let d = Table::read(&results.join("old_faithful_density.csv"))?;
    let smp = Table::read(&results.join("old_faithful_samples.csv"))?;
    let per = Table::read(&results.join("old_faithful.csv"))?;
    let methods: Vec<String> = ["ism", "ssm_vr", "dsm", "kde_scott"]
        .iter()
        .map(|s| s.to_string())
        .filter(|m| d.distinct("method").map(|v| v.contains(m)).unwrap_or(false))
        .collect();
    if methods.is_empty() {
        bail!("{}: none of ism, ssm_vr, dsm, kde_scott", d.path.display());
    }
    let test = smp.filter("method", "test")?;
    let test_pts: Vec<(f64, f64)> = test.f64s("x0")?.into_iter().zip(test.f64s("x1")?).collect();
    struct Panel {
        title: String,
        lines: Vec<Vec<(f64, f64)>>,
        draws: Vec<(f64, f64)>,
    }
    let mut panels = vec![];
    let mut xr = 0.0..1.0;
    let mut yr = 0.0..1.0;
    for m in &methods {
        let g = d.filter("method", m)?;
        let x = g.f64s("x0")?;
        let y = g.f64s("x1")?;
        let lp = g.f64s("log_p")?;
        let n = (x.len() as f64).sqrt().round() as usize;
        if n * n != x.len() || n < 2 {
            bail!("{}: {m}: the grid is not square", d.path.display());
        }
        xr = x[0]..x[n - 1];
        yr = y[0]..y[n * (n - 1)];
        // contour wants one step; rescale y to x's step and back.
        let (hx, hy) = (x[1] - x[0], y[n] - y[0]);
        let max = lp.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let levels: Vec<f64> = [0.5, 1.5, 3.0, 5.0].iter().map(|b| max - b).collect();
        let lines = isolines(&lp, n, n, 0.0, 0.0, 1.0, &levels)
            .into_iter()
            .map(|l| {
                l.into_iter()
                    .map(|(i, j)| (x[0] + i * hx, y[0] + j * hy))
                    .collect()
            })
            .collect();
        let s = smp.filter("method", m)?;
        let draws = s.f64s("x0")?.into_iter().zip(s.f64s("x1")?).collect();
        // The held-out log-likelihood of the split the panel shows (its first seed).
        let r = per.filter("method", m)?;
        let (seed, ll) = (
            r.strings("seed")?.first().cloned().unwrap_or_default(),
            r.f64s("heldout_ll")?.first().copied().unwrap_or(f64::NAN),
        );
        let label = match m.as_str() {
            "ism" => "ISM",
            "ssm_vr" => "SSM-VR",
            "dsm" => "DSM (fits the noised density)",
            _ => "KDE (Scott)",
        };
        panels.push(Panel {
            title: format!("{label}: split {seed}, {ll:.2} nats"),
            lines,
            draws,
        });
    }
    render!(stem, (1600, 1300), |root| {
        let areas = root.split_evenly((2, 2));
        for (k, (p, area)) in panels.iter().zip(areas.iter()).enumerate() {
            let mut chart = ChartBuilder::on(area)
                .caption(p.title.as_str(), ("sans-serif", LABEL))
                .margin(12)
                .x_label_area_size(70)
                .y_label_area_size(115)
                .build_cartesian_2d(xr.clone(), yr.clone())?;
            mesh(&mut chart, "eruption duration (min)", "waiting time (min)")?;
            let c = color(k);
            chart
                .draw_series(
                    p.draws
                        .iter()
                        .filter(|q| xr.contains(&q.0) && yr.contains(&q.1))
                        .map(|&q| Circle::new(q, 2, c.mix(0.35).filled())),
                )?
                .label("samples")
                .legend(move |(x, y)| Circle::new((x + 12, y), 4, c.filled()));
            for line in &p.lines {
                chart.draw_series(LineSeries::new(line.clone(), c.stroke_width(2)))?;
            }
            chart
                .draw_series(
                    test_pts
                        .iter()
                        .map(|&q| Cross::new(q, 5, BLACK.stroke_width(2))),
                )?
                .label("held-out eruptions")
                .legend(|(x, y)| Cross::new((x + 12, y), 5, BLACK.stroke_width(2)));
            legend(&mut chart, SeriesLabelPosition::UpperLeft, TICK)?;
        }
    })
}

/// Images per method in the digits grid.
const GRID: usize = 36;

fn digits(results: &Path, stem: &Path) -> Result<()> {
    let t = Table::read(&results.join("digits_samples.csv"))?;
    let sum = Table::read(&results.join("digits_summary.csv"))?;
    let methods = t.distinct("method")?;
    let d = t.header.len() - 1;
    let side = (d as f64).sqrt().round() as usize;
    if side * side != d {
        bail!("{}: {d} pixels is not a square image", t.path.display());
    }
    struct Panel {
        title: String,
        images: Vec<Vec<f64>>,
    }
    let mut panels = vec![];
    for m in &methods {
        let rows = t.filter("method", m)?;
        // The first 36 of each method's samples (the file keeps at least 1000).
        let images: Vec<Vec<f64>> = rows
            .rows
            .iter()
            .take(GRID)
            .map(|r| {
                r[1..]
                    .iter()
                    .map(|v| v.parse::<f64>().unwrap_or(f64::NAN))
                    .collect()
            })
            .collect();
        let s = sum.filter("method", m)?;
        let mmd = s.f64s("mmd2_mean")?.first().copied().unwrap_or(f64::NAN);
        let nn = s
            .f64s("nn_median_mean")?
            .first()
            .copied()
            .unwrap_or(f64::NAN);
        let frechet = s
            .strings("frechet_mean")
            .ok()
            .and_then(|v| v.first().and_then(|c| c.parse::<f64>().ok()));
        let label = match m.as_str() {
            "real_digits" => "held-out digits".to_string(),
            "edm_heun" => "best + Heun".to_string(),
            "edm_heun_churn" => "best + Heun, churn".to_string(),
            "edm_reverse_sde" => "best + reverse SDE".to_string(),
            "ism_langevin" => "ISM + Langevin".to_string(),
            "ssm_vr_langevin" => "SSM-VR + Langevin".to_string(),
            "dsm_annealed" => "DSM + annealed".to_string(),
            "dsm_pc" => "DSM + PC".to_string(),
            "dsm_equal_time_pc" => "DSM + PC, ISM's time".to_string(),
            other => other.to_string(),
        };
        // Score evaluations per chain, not sampler steps (a Heun step takes two).
        let evals = s.f64s("score_evals")?.first().copied().unwrap_or(0.0);
        let label = if evals > 0.0 {
            format!("{label}\n{evals} score evaluations")
        } else {
            format!("{label}\n")
        };
        panels.push(Panel {
            title: match frechet {
                Some(f) => format!(
                    "{label}\nFD {}, MMD² {}, NN {:.2}",
                    crate::paper::sig(f, 3),
                    crate::paper::sig(mmd, 2),
                    nn
                ),
                None => format!("{label}\nMMD² {}, NN {:.2}", crate::paper::sig(mmd, 2), nn),
            },
            images,
        });
    }
    let per_row = 6usize;
    let cell = 6i32; // figure pixels per image pixel
    let img = side as i32 * cell;
    let gap = 8i32;
    let panel_w = per_row as i32 * (img + gap);
    let n_rows = panels
        .iter()
        .map(|p| p.images.len().div_ceil(per_row))
        .max()
        .unwrap_or(1) as i32;
    let top = 108i32;
    let panel_h = top + n_rows * (img + gap);
    // Panels in rows of at most four, so the figure reads at page width.
    let across = panels.len().clamp(1, 4);
    let down = panels.len().div_ceil(across) as i32;
    let width = (across as i32 * (panel_w + 30) + 20) as u32;
    let height = (down * (panel_h + 24) + 10) as u32;
    // Each pixel is a filled square: exact in SVG and PNG alike.
    render!(stem, (width, height), |root| {
        for (k, p) in panels.iter().enumerate() {
            let x0 = 20 + (k % across) as i32 * (panel_w + 30);
            let y0 = 10 + (k / across) as i32 * (panel_h + 24);
            let mut lines = p.title.lines();
            if let Some(l) = lines.next() {
                root.draw(&Text::new(
                    l.to_string(),
                    (x0, y0),
                    ("sans-serif", LABEL - 4),
                ))?;
            }
            for (l, y) in lines.zip([y0 + 34, y0 + 64]) {
                root.draw(&Text::new(l.to_string(), (x0, y), ("sans-serif", TICK - 4)))?;
            }
            for (i, im) in p.images.iter().enumerate() {
                let gx = x0 + (i % per_row) as i32 * (img + gap);
                let gy = y0 + top + (i / per_row) as i32 * (img + gap);
                draw_image(&root, (gx, gy), im, side, cell, RGBColor(255, 255, 255))?;
            }
        }
    })
}

/// Rows masked / completed / original per mask, side by side.
fn digits_inpaint(results: &Path, stem: &Path) -> Result<()> {
    let t = Table::read(&results.join("digits_inpaint_images.csv"))?;
    let sum = Table::read(&results.join("digits_inpaint_summary.csv"))?;
    let masks = t.distinct("mask")?;
    let d = t.header.len() - 3;
    let side = (d as f64).sqrt().round() as usize;
    if side * side != d {
        bail!("{}: {d} pixels is not a square image", t.path.display());
    }
    let kinds = ["masked", "completed", "original"];
    // Per mask: the title and the images of each kind, hidden pixels NaN.
    let mut panels: Vec<(String, Vec<Vec<Vec<f64>>>)> = vec![];
    for m in &masks {
        let rows = t.filter("mask", m)?;
        let mut by_kind = vec![];
        for k in kinds {
            let r = rows.filter("row", k)?;
            by_kind.push(
                r.rows
                    .iter()
                    .map(|r| {
                        r[3..]
                            .iter()
                            .map(|v| v.parse::<f64>().unwrap_or(f64::NAN))
                            .collect()
                    })
                    .collect::<Vec<Vec<f64>>>(),
            );
        }
        let s = sum.filter("mask", m)?;
        let acc = |c: &str| {
            s.f64s(c)
                .ok()
                .and_then(|v| v.first().copied())
                .unwrap_or(f64::NAN)
        };
        let title = format!(
            "{}: accuracy {:.3}\n(masked {:.3}, original {:.3})",
            m.replace('_', " "),
            acc("accuracy_completed_mean"),
            acc("accuracy_masked"),
            acc("accuracy_original")
        );
        panels.push((title, by_kind));
    }
    let cell = 8i32;
    let img = side as i32 * cell;
    let gap = 8i32;
    let per_row = panels
        .iter()
        .map(|p| p.1.iter().map(|k| k.len()).max().unwrap_or(0))
        .max()
        .unwrap_or(1)
        .max(1) as i32;
    let panel_w = per_row * (img + gap);
    let label_w = 175i32;
    let top = 108i32;
    let panel_h = top + 3 * (img + gap);
    let width = (label_w + panels.len() as i32 * (panel_w + 40) + 20) as u32;
    let height = (panel_h + 20) as u32;
    render!(stem, (width, height), |root| {
        for (r, k) in kinds.iter().enumerate() {
            let y = top + r as i32 * (img + gap) + img / 2 - 12;
            root.draw(&Text::new(k.to_string(), (10, y), ("sans-serif", LABEL)))?;
        }
        for (p, (title, by_kind)) in panels.iter().enumerate() {
            let x0 = label_w + p as i32 * (panel_w + 40);
            for (l, y) in title.lines().zip([8, 42]) {
                root.draw(&Text::new(l.to_string(), (x0, y), ("sans-serif", TICK)))?;
            }
            for (r, images) in by_kind.iter().enumerate() {
                for (i, im) in images.iter().enumerate() {
                    let gx = x0 + i as i32 * (img + gap);
                    let gy = top + r as i32 * (img + gap);
                    draw_image(&root, (gx, gy), im, side, cell, RGBColor(230, 159, 0))?;
                }
            }
        }
    })
}

/// The toy zoo: per data set, held-out points, samples and the learned density on a grid.
fn toy_zoo(results: &Path, stem: &Path) -> Result<()> {
    let pts = Table::read(&results.join("toy_zoo_samples.csv"))?;
    let dens = Table::read(&results.join("toy_zoo_density.csv"))?;
    let sum = Table::read(&results.join("toy_zoo_summary.csv"))?;
    let toys = pts.distinct("toy")?;
    if toys.is_empty() {
        bail!("{}: no toy", pts.path.display());
    }
    struct Column {
        title: String,
        data: Vec<(f64, f64)>,
        samples: Vec<(f64, f64)>,
        /// Grid cells: centre, half-width and exp(log p) over its maximum.
        cells: Vec<(f64, f64, f64)>,
        half: f64,
    }
    let mut cols = vec![];
    let mut lim = 0.0f64;
    for t in &toys {
        let g = pts.filter("toy", t)?;
        let get = |what: &str| -> Result<Vec<(f64, f64)>> {
            let r = g.filter("what", what)?;
            Ok(r.f64s("x0")?.into_iter().zip(r.f64s("x1")?).collect())
        };
        let d = dens.filter("toy", t)?;
        let (x, y, lp) = (d.f64s("x0")?, d.f64s("x1")?, d.f64s("log_p")?);
        let n = (x.len() as f64).sqrt().round() as usize;
        if n * n != x.len() || n < 2 {
            bail!("{}: {t}: the grid is not square", dens.path.display());
        }
        let half = 0.5 * (x[1] - x[0]).abs().max((y[n] - y[0]).abs());
        lim = lim.max(x.iter().chain(&y).fold(0.0f64, |m, v| m.max(v.abs())) + half);
        let max = lp.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        // The grid's log p interpolated bilinearly at UP× its resolution (the grid is the
        // experiment's; the finer cells only smooth the drawing between its nodes).
        const UP: usize = 4;
        let at = |i: usize, j: usize| lp[j * n + i];
        let (dx, dy) = (x[1] - x[0], y[n] - y[0]);
        let mut cells = vec![];
        for j in 0..(n - 1) * UP + 1 {
            for i in 0..(n - 1) * UP + 1 {
                let (fi, fj) = (i as f64 / UP as f64, j as f64 / UP as f64);
                let (i0, j0) = (
                    (fi.floor() as usize).min(n - 2),
                    (fj.floor() as usize).min(n - 2),
                );
                let (u, v) = (fi - i0 as f64, fj - j0 as f64);
                let l = (1.0 - u) * (1.0 - v) * at(i0, j0)
                    + u * (1.0 - v) * at(i0 + 1, j0)
                    + (1.0 - u) * v * at(i0, j0 + 1)
                    + u * v * at(i0 + 1, j0 + 1);
                cells.push((x[0] + fi * dx, y[0] + fj * dy, (l - max).exp()));
            }
        }
        let half = half / UP as f64;
        let s = sum.filter("toy", t)?;
        let nll = s.f64s("nll_mean")?.first().copied().unwrap_or(f64::NAN);
        let kde = s
            .f64s("nll_kde_mean")
            .ok()
            .and_then(|v| v.first().copied())
            .unwrap_or(f64::NAN);
        cols.push(Column {
            title: format!("{t}\nNLL {nll:.2} / KDE {kde:.2}"),
            data: get("data")?,
            samples: get("samples")?,
            cells,
            half,
        });
    }
    let rows = ["data", "samples", "density"];
    let side = 300u32;
    let (left, top) = (120u32, 70u32);
    // Two blocks of at most four toys, one above the other, so the figure reads at page width.
    let across = cols.len().min(4) as u32;
    let block = top + rows.len() as u32 * side;
    let blocks = cols.len().div_ceil(across as usize) as u32;
    let width = left + across * side;
    let height = blocks * block + 80;
    render!(stem, (width, height), |root| {
        for (k, line) in [
            "held-out NLL of the network / of a cross-validated KDE, in nats;".to_string(),
            format!("every panel spans [−{lim:.1}, {lim:.1}]² in the data's units"),
        ]
        .into_iter()
        .enumerate()
        {
            root.draw(&Text::new(
                line,
                (8, (blocks * block + 6) as i32 + 34 * k as i32),
                ("sans-serif", TICK),
            ))?;
        }
        for b in 0..blocks {
            for (r, label) in rows.iter().enumerate() {
                let y = (b * block + top + r as u32 * side + side / 2) as i32;
                root.draw(&Text::new(
                    label.to_string(),
                    (8, y - 30),
                    ("sans-serif", TICK),
                ))?;
            }
        }
        for (c, col) in cols.iter().enumerate() {
            let x0 = (left + (c as u32 % across) * side) as i32;
            let by = (c as u32 / across) * block;
            let mut lines = col.title.lines();
            if let Some(l) = lines.next() {
                root.draw(&Text::new(
                    l.to_string(),
                    (x0 + 10, by as i32 + 4),
                    ("sans-serif", LABEL),
                ))?;
            }
            if let Some(l) = lines.next() {
                root.draw(&Text::new(
                    l.to_string(),
                    (x0 + 10, by as i32 + 36),
                    ("sans-serif", TICK),
                ))?;
            }
            for r in 0..rows.len() {
                let y0 = (by + top + r as u32 * side) as i32;
                let area = root
                    .clone()
                    .shrink((x0 as u32 + 6, y0 as u32 + 6), (side - 12, side - 12));
                let mut chart = ChartBuilder::on(&area).build_cartesian_2d(-lim..lim, -lim..lim)?;
                chart.plotting_area().fill(&WHITE)?;
                match r {
                    0 | 1 => {
                        let (p, colour) = if r == 0 {
                            (&col.data, RGBColor(0, 0, 0))
                        } else {
                            (&col.samples, RGBColor(0, 114, 178))
                        };
                        chart.draw_series(
                            p.iter()
                                .filter(|q| q.0.abs() < lim && q.1.abs() < lim)
                                .map(|&q| Circle::new(q, 1, colour.mix(0.5).filled())),
                        )?;
                    }
                    _ => {
                        chart.draw_series(col.cells.iter().map(|&(x, y, v)| {
                            let g = (255.0 * (1.0 - v.clamp(0.0, 1.0))).round() as u8;
                            Rectangle::new(
                                [(x - col.half, y - col.half), (x + col.half, y + col.half)],
                                RGBColor(g, g, g).filled(),
                            )
                        }))?;
                    }
                }
                area.draw(&Rectangle::new(
                    [(0, 0), (side as i32 - 13, side as i32 - 13)],
                    RGBColor(180, 180, 180).stroke_width(1),
                ))?;
            }
        }
    })
}

/// One side × side image at (gx, gy), `cell` figure pixels per image pixel, values clipped to
/// [0, 1] (ink dark), a non-finite pixel in `missing`, with a light frame.
fn draw_image<DB: DrawingBackend>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    (gx, gy): (i32, i32),
    im: &[f64],
    side: usize,
    cell: i32,
    missing: RGBColor,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    for (j, v) in im.iter().enumerate() {
        let colour = if v.is_finite() {
            let g = (255.0 * (1.0 - v.clamp(0.0, 1.0))).round() as u8;
            RGBColor(g, g, g)
        } else {
            missing
        };
        let px = gx + (j % side) as i32 * cell;
        let py = gy + (j / side) as i32 * cell;
        root.draw(&Rectangle::new(
            [(px, py), (px + cell, py + cell)],
            colour.filled(),
        ))?;
    }
    let img = side as i32 * cell;
    root.draw(&Rectangle::new(
        [(gx, gy), (gx + img, gy + img)],
        RGBColor(180, 180, 180).stroke_width(1),
    ))?;
    Ok(())
}

/// One panel of [`error_curves`]: a title, whether y is on a log scale, an optional reference
/// value drawn dashed (the truth or a floor), and the series as (label, points (x, mean, se)).
#[derive(Debug, Clone, PartialEq)]
pub struct CurvePanel {
    /// The caption; its part after the last ": " labels the y axis.
    pub title: String,
    /// Log y axis (points ≤ 0 are left out).
    pub log_y: bool,
    /// A horizontal dashed reference line.
    pub truth: Option<f64>,
    /// (label, points (x, mean, standard error)); a label starting with `scorelab` is drawn
    /// dashed (the reference curves beside a user's).
    pub series: Vec<Curve>,
}

/// A series of [`CurvePanel`]: its label and points (x, mean, standard error).
pub type Curve = (String, Vec<(f64, f64, f64)>);

/// Error against evaluations: panels in a grid (two columns for four panels, four for eight, else
/// up to three)
/// on a log x axis (score evaluations per chain, ticks at powers of 2), one line per series with
/// ±1 SE bars, one legend; written as `stem.svg` and `stem.png`. A linear y axis spans the values
/// at the larger half of each series' budgets (and the reference), so that a few very poor
/// coarse-budget values do not flatten the rest: those are cut at the panel's edge. The figure of
/// the Python package's sampler audit.
///
/// # Errors
/// If a file cannot be written or there is nothing to draw.
pub fn error_curves(stem: &Path, panels: &[CurvePanel]) -> Result<()> {
    curves_against(stem, panels, "score evaluations per chain")
}

/// [`error_curves`] against another positive x (log axis, ticks at powers of 2), named `x_label`.
///
/// # Errors
/// As [`error_curves`].
pub fn curves_against(stem: &Path, panels: &[CurvePanel], x_label: &str) -> Result<()> {
    crate::plot::register_font();
    if panels.is_empty() || panels.iter().all(|p| p.series.is_empty()) {
        bail!("no series to draw");
    }
    let mut names: Vec<String> = vec![];
    for p in panels {
        for (r, _) in &p.series {
            if !names.contains(r) {
                names.push(r.clone());
            }
        }
    }
    let xs: Vec<f64> = panels
        .iter()
        .flat_map(|p| p.series.iter().flat_map(|s| s.1.iter().map(|q| q.0)))
        .filter(|&x| x > 0.0)
        .collect();
    let xr = log_range(xs.iter().copied(), 1.4);
    let mut x_ticks = vec![];
    let mut t = 1.0;
    while t <= xr.end {
        if t >= xr.start {
            x_ticks.push(t);
        }
        t *= 2.0;
    }
    let cols = match panels.len() {
        4 => 2,
        8 => 4,
        n => n.min(3),
    };
    let rows = panels.len().div_ceil(cols);
    let legend_rows = names.len().div_ceil(cols);
    let (w, h) = (
        720 * cols as u32,
        600 * rows as u32 + 50 * legend_rows as u32 + 20,
    );
    let style_of = |name: &str| {
        let k = names.iter().position(|n| n == name).unwrap_or(0);
        (color(k), k % 3, name.starts_with("scorelab"))
    };
    render!(stem, (w, h), |root| {
        let (top, legend) = root.split_vertically(600 * rows as u32);
        for (k, name) in names.iter().enumerate() {
            let (x, y) = (40 + (k % cols) as i32 * 700, 25 + (k / cols) as i32 * 46);
            let (c, marker, dashed) = style_of(name);
            legend.draw(&line_glyph!((x, y), c, 3, dashed, marker))?;
            legend.draw(&Text::new(
                name.clone(),
                (x + 50, y - 15),
                ("sans-serif", TICK),
            ))?;
        }
        let areas = top.split_evenly((rows, cols));
        for (area, panel) in areas.iter().zip(panels) {
            let (title, log, truth) = (&panel.title, &panel.log_y, &panel.truth);
            let ys = panel
                .series
                .iter()
                .flat_map(|s| s.1.iter().map(|q| q.1))
                .filter(|&v| v.is_finite() && (!*log || v > 0.0));
            // The larger half of each series' budgets decides a linear axis.
            let focus = panel.series.iter().flat_map(|s| {
                let half = s.1.len() / 2;
                s.1[half..].iter().map(|q| q.1).filter(|v| v.is_finite())
            });
            let mut chart_builder = ChartBuilder::on(area);
            chart_builder
                .caption(title.as_str(), ("sans-serif", LABEL))
                .margin(12)
                .x_label_area_size(72)
                .y_label_area_size(115);
            // A linear axis's tick a rounding error from 0 reads as 0 (no error curve here is
            // near 1e-12).
            let near_zero = |v: &f64| tick(if v.abs() < 1e-12 { &0.0 } else { v });
            macro_rules! body {
                ($chart:ident) => {
                    $chart
                        .configure_mesh()
                        .x_label_formatter(&tick)
                        .y_label_formatter(&near_zero)
                        .x_desc(x_label)
                        .y_desc(title.rsplit(": ").next().unwrap_or(title))
                        .label_style(("sans-serif", TICK))
                        .axis_desc_style(("sans-serif", LABEL))
                        .draw()?;
                    if let Some(v) = truth {
                        $chart.draw_series(DashedLineSeries::new(
                            vec![(xr.start, *v), (xr.end, *v)],
                            10,
                            6,
                            BLACK.stroke_width(2),
                        ))?;
                    }
                    for (run, pts) in &panel.series {
                        let (c, marker, dashed) = style_of(run);
                        let style = c.stroke_width(3);
                        curve!($chart, pts, *log, style, dashed, marker, c);
                    }
                };
            }
            let x_axis = xr.clone().log_scale().with_key_points(x_ticks.clone());
            if *log {
                let yr = log_range(ys, 1.5);
                let ticks = log_ticks(&yr);
                let mut chart = chart_builder
                    .build_cartesian_2d(x_axis, yr.log_scale().with_key_points(ticks))?;
                chart.plotting_area().fill(&WHITE)?;
                body!(chart);
            } else {
                let yr = lin_range(focus.chain(truth.iter().copied()), 0.15);
                let mut chart = chart_builder.build_cartesian_2d(x_axis, yr)?;
                body!(chart);
            }
        }
    })
}

/// The (x, mean, SE) points of summary rows: x from column `x` plus `shift`, the mean from
/// `mean`, SE = `sd`/√`seeds` (NaN where the sd is not a number: one seed).
fn mean_se_points(r: &Table, x: &str, shift: f64) -> Result<Vec<(f64, f64, f64)>> {
    let (xs, m, sd, n) = (r.f64s(x)?, r.f64s("mean")?, r.f64s("sd")?, r.f64s("seeds")?);
    Ok((0..xs.len())
        .map(|i| {
            let se = if sd[i].is_finite() {
                sd[i] / n[i].sqrt()
            } else {
                f64::NAN
            };
            (xs[i] + shift, m[i], se)
        })
        .collect())
}

/// The solver study (`solvers_summary.csv`): per target (columns), the flow-map error and the
/// log-p gap to the exact flow from the prior against evaluations, for every sampler on EDM's
/// schedule and Karras's grid (its own grid for `ddim` and `heun`: EDM's is Karras's).
fn solvers(results: &Path, stem: &Path) -> Result<()> {
    let t = Table::read(&results.join("solvers_summary.csv"))?
        .filter("schedule", "edm")?
        .filter("start", "prior")?;
    let targets = t.distinct("target")?;
    let samplers: Vec<String> = t
        .distinct("sampler")?
        .into_iter()
        .filter(|s| s != "exact_flow")
        .collect();
    let mut panels = vec![];
    for (metric, what, log) in [
        ("flow_error", "flow-map error (RMS)", true),
        ("log_p_gap", "mean log p − exact flow's", false),
    ] {
        for target in &targets {
            let mut series = vec![];
            for m in &samplers {
                let r = t
                    .filter("target", target)?
                    .filter("sampler", m)?
                    .filter("metric", metric)?;
                let grids = r.distinct("grid")?;
                let grid = if grids.iter().any(|g| g == "karras") {
                    "karras"
                } else {
                    "schedule"
                };
                let pts = mean_se_points(&r.filter("grid", grid)?, "nfe", 0.0)?;
                if !pts.is_empty() {
                    series.push((m.clone(), pts));
                }
            }
            panels.push(CurvePanel {
                title: format!("{target}: {what}"),
                log_y: log,
                truth: (!log).then_some(0.0),
                series,
            });
        }
    }
    error_curves(stem, &panels)
}

/// The guidance study (`guidance_summary.csv`, `guidance_modes.csv`), one row per target, against
/// the guidance scale 1 + w: KL(q ‖ π_w) of the exact guided ODE with guidance everywhere and in
/// the limited interval; the weight of the class's first mode, every sampler beside π_w's; and
/// every sampler's spread over π_w's.
fn guidance(results: &Path, stem: &Path) -> Result<()> {
    let t = Table::read(&results.join("guidance_summary.csv"))?;
    let modes = Table::read(&results.join("guidance_modes.csv"))?;
    let targets = t.distinct("target")?;
    let samplers = t.distinct("sampler")?;
    // (1 + w, mean, se) of one metric along the weights.
    let series = |target: &str,
                  interval: &str,
                  sampler: &str,
                  metric: &str|
     -> Result<Vec<(f64, f64, f64)>> {
        let r = t
            .filter("target", target)?
            .filter("interval", interval)?
            .filter("sampler", sampler)?
            .filter("metric", metric)?;
        mean_se_points(&r, "weight", 1.0)
    };
    let mut panels = vec![];
    for target in &targets {
        let kl = vec![
            (
                "exact ODE".to_string(),
                series(target, "all", "exact_ode", "kl")?,
            ),
            (
                "exact ODE, limited interval".to_string(),
                series(target, "limited", "exact_ode", "kl")?,
            ),
        ];
        panels.push(CurvePanel {
            title: format!("{target}: KL(q ‖ π_w), nats"),
            log_y: false,
            truth: Some(0.0),
            series: kl,
        });
        // The first mode of the class: each sampler's weight (mean over seeds), and π's.
        let m = modes.filter("target", target)?.filter("interval", "all")?;
        let first = m.strings("mode")?.first().cloned().unwrap_or_default();
        let m = m.filter("mode", &first)?;
        let mean_by_weight = |rows: &Table, col: &str| -> Result<Vec<(f64, f64, f64)>> {
            let (w, v) = (rows.f64s("weight")?, rows.f64s(col)?);
            let mut out: Vec<(f64, f64, f64)> = vec![];
            let mut ws: Vec<f64> = w.clone();
            ws.sort_by(f64::total_cmp);
            ws.dedup();
            for x in ws {
                let vals: Vec<f64> = (0..w.len()).filter(|&i| w[i] == x).map(|i| v[i]).collect();
                out.push((
                    1.0 + x,
                    vals.iter().sum::<f64>() / vals.len() as f64,
                    f64::NAN,
                ));
            }
            Ok(out)
        };
        let mut weights = vec![(
            "π_w".to_string(),
            mean_by_weight(&m.filter("sampler", "exact_ode")?, "weight_pi")?,
        )];
        let mut spreads = vec![];
        for s in &samplers {
            let name = if s == "exact_ode" {
                "exact ODE".to_string()
            } else {
                s.clone()
            };
            weights.push((
                name.clone(),
                mean_by_weight(&m.filter("sampler", s)?, "weight_q")?,
            ));
            spreads.push((name, series(target, "all", s, "spread_ratio")?));
        }
        panels.push(CurvePanel {
            title: format!("{target}: mode {first}'s weight"),
            log_y: false,
            truth: None,
            series: weights,
        });
        panels.push(CurvePanel {
            title: format!("{target}: spread over π_w's"),
            log_y: false,
            truth: Some(1.0),
            series: spreads,
        });
    }
    curves_against(stem, &panels, "guidance scale 1 + w")
}

/// Straight paths against DSM (`straight_paths_*_summary.csv`): MMD² to p against evaluations
/// per chain, one panel per target, one line per network, path and sampler.
fn straight_paths(results: &Path, stem: &Path) -> Result<()> {
    let mut panels = vec![];
    for (file, name) in crate::paths_study::TARGETS {
        let t = Table::read(&results.join(format!("{file}_summary.csv")))?;
        let mut series = vec![];
        for (run, what) in crate::paths_study::RUNS {
            let r = t.filter("run", run)?.filter("metric", "mmd2")?;
            let pts = mean_se_points(&r, "score_evals", 0.0)?;
            series.push((what.to_string(), pts));
        }
        panels.push(CurvePanel {
            title: format!("{name}: MMD² to p"),
            log_y: true,
            truth: None,
            series,
        });
    }
    error_curves(stem, &panels)
}
