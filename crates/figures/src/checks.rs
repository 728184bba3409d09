//! Claims as code: every comparison the paper makes is a named check over the files in
//! `results/`, which returns whether it holds and the numbers it compared. The template names a
//! check as `{{check:NAME}}`; [`crate::paper::render`] writes its numbers there, and refuses to
//! render (naming the check and its numbers) when it fails, so a sentence cannot claim what the
//! results do not show.
//!
//! ```
//! use std::collections::BTreeMap;
//! let mut v = BTreeMap::new();
//! scorelab_figures::checks::insert(&mut v, "demo", Ok(scorelab_figures::checks::Outcome {
//!     pass: false,
//!     numbers: "3 against 2".into(),
//! }));
//! let e = scorelab_figures::paper::render("x {{check:demo}}", &v).unwrap_err().to_string();
//! assert!(e.contains("check demo fails: 3 against 2"));
//! ```

use crate::cost::{SameRun, Side, Side::*};
use crate::paper::sig;
use crate::table::Table;
use anyhow::Result;
use std::collections::BTreeMap;
use std::path::Path;

/// What a check found.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// Whether the claim holds.
    pub pass: bool,
    /// The numbers it compared, as the paper shows them.
    pub numbers: String,
}

/// A named check.
pub struct Check {
    /// Its name in the template.
    pub name: &'static str,
    /// The claim, in words.
    pub claim: &'static str,
    /// The check itself, over a results folder.
    pub run: fn(&Path) -> Result<Outcome>,
    /// Edits a copy of the results (with [`edit`]) so that the claim no longer holds: the
    /// numbers it compares moved past its threshold. The test
    /// `every_check_fails_on_its_tampered_results` runs each one, so a check that cannot fail
    /// does not pass review.
    pub tamper: fn(&Path) -> Result<()>,
}

/// One row of a CSV under [`edit`]: its cells by column name.
pub struct Cells<'a> {
    header: &'a [String],
    row: &'a [String],
}

impl Cells<'_> {
    /// The cell of column `col` as a number (NaN when missing or not a number).
    pub fn num(&self, col: &str) -> f64 {
        self.text(col).parse().unwrap_or(f64::NAN)
    }

    /// The cell of column `col` as text (empty when there is no such column).
    pub fn text(&self, col: &str) -> &str {
        self.header
            .iter()
            .position(|h| h == col)
            .map_or("", |j| self.row[j].as_str())
    }
}

/// Sets column `col` of every row of `dir/file` that `keep` selects to `to(row)`, in place.
///
/// # Errors
/// If the file cannot be read or written, has no column `col`, or `keep` selects no row (a
/// tamper that changes nothing would make its test pass vacuously).
pub fn edit(
    dir: &Path,
    file: &str,
    keep: &dyn Fn(&Cells) -> bool,
    col: &str,
    to: &dyn Fn(&Cells) -> f64,
) -> Result<()> {
    let path = dir.join(file);
    let t = Table::read(&path)?;
    let j = t.col(col)?;
    let mut w = csv::Writer::from_writer(vec![]);
    w.write_record(&t.header)?;
    let mut changed = 0;
    for row in &t.rows {
        let cells = Cells {
            header: &t.header,
            row,
        };
        let mut out = row.clone();
        if keep(&cells) {
            out[j] = format!("{}", to(&cells));
            changed += 1;
        }
        w.write_record(&out)?;
    }
    anyhow::ensure!(changed > 0, "{file}: no row to tamper with in column {col}");
    std::fs::write(&path, w.into_inner()?)?;
    Ok(())
}

/// [`edit`] of the same-run cost files: `objective` at `dim` multiplied by `factor` in every
/// repeat's file of `side` (`scorelab` or `jax`).
fn slow(dir: &Path, side: &str, objective: &str, dim: &str, factor: f64) -> Result<()> {
    let (d, ms) = if side == "jax" {
        ("D", "median_step_ms")
    } else {
        ("dim", "median_ms")
    };
    let runs = dir.join(crate::cost::RUNS);
    let mut n = 0;
    for e in std::fs::read_dir(&runs)? {
        let name = e?.file_name().to_string_lossy().into_owned();
        if name.starts_with(&format!("{side}_")) {
            edit(
                &runs,
                &name,
                &|c| c.text("objective") == objective && c.text(d) == dim,
                ms,
                &|c| factor * c.num(ms),
            )?;
            n += 1;
        }
    }
    anyhow::ensure!(n > 0, "no {side} files in {}", runs.display());
    Ok(())
}

/// The key a failed check's numbers are kept under in the values map.
pub(crate) const FAILED: &str = "check_failed:";

/// Records a check's outcome in the values map: `check:NAME` for a pass, `check_failed:NAME`
/// for a failure (rendering it is refused). An error (a missing file) is a failure too.
pub fn insert(v: &mut BTreeMap<String, String>, name: &str, outcome: Result<Outcome>) {
    match outcome {
        Ok(o) if o.pass => {
            v.insert(format!("check:{name}"), o.numbers);
        }
        Ok(o) => {
            v.insert(format!("{FAILED}{name}"), o.numbers);
        }
        Err(e) => {
            v.insert(format!("{FAILED}{name}"), format!("{e:#}"));
        }
    }
}

/// Every check's outcome on `results`.
pub fn values(results: &Path) -> BTreeMap<String, String> {
    let mut v = BTreeMap::new();
    for c in registry() {
        insert(&mut v, c.name, (c.run)(results));
    }
    v
}

/// The equal-time rule of `scorelab_pipeline::train::equal_time_steps`, recomputed here from
/// the recorded costs (this crate reads results, it does not link the pipeline): the reference's
/// steps times the cost ratio, to the nearest twentieth of the reference's steps.
fn equal_time_rule(reference_steps: u64, reference_cost: f64, cost: f64) -> u64 {
    let quantum = (reference_steps / 20).max(1);
    let k = (reference_steps as f64 * reference_cost / cost / quantum as f64)
        .round()
        .max(1.0);
    k as u64 * quantum
}

fn summary_value(t: &Table, key: &str, row: &str, col: &str) -> Result<f64> {
    t.filter(key, row)?
        .f64s(col)?
        .first()
        .copied()
        .ok_or_else(|| anyhow::anyhow!("{}: no row {key} = {row}", t.path.display()))
}

/// The noise study's error to the noised score relative to that score's own size,
/// `error_noised / target_noised`, row by row (Fig. 4 right and its check).
pub(crate) fn relative_error_noised(t: &Table) -> Result<Vec<f64>> {
    Ok(t.f64s("error_noised")?
        .iter()
        .zip(t.f64s("target_noised")?)
        .map(|(e, n)| e / n)
        .collect())
}

/// A digits summary row's Fréchet distance: (mean, sd) over seeds.
fn frechet(t: &Table, method: &str) -> Result<(f64, f64)> {
    Ok((
        summary_value(t, "method", method, "frechet_mean")?,
        summary_value(t, "method", method, "frechet_sd")?,
    ))
}

/// The checks (module docs).
pub fn registry() -> Vec<Check> {
    vec![
        Check {
            name: "best_digits_below_floor_nearer_training_images",
            claim: "the best digits network's Heun samples have a Fréchet distance below the floor's (real digits no model saw), and a median distance to the nearest training image below the held-out digits' (partial memorisation)",
            run: |r| {
                let t = Table::read(&r.join("digits_summary.csv"))?;
                let best = summary_value(&t, "method", "edm_heun", "frechet_mean")?;
                let floor = summary_value(&t, "method", "real_digits", "frechet_mean")?;
                let nn_best = summary_value(&t, "method", "edm_heun", "nn_median_mean")?;
                let nn_real = summary_value(&t, "method", "real_digits", "nn_median_mean")?;
                Ok(Outcome {
                    pass: best < floor && nn_best < nn_real,
                    numbers: format!(
                        "{} against the floor's {}, {}× the floor; median nearest-training-image distance {} against the held-out digits' {}",
                        sig(best, 3),
                        sig(floor, 3),
                        sig(best / floor, 2),
                        sig(nn_best, 3),
                        sig(nn_real, 3)
                    ),
                })
            },
            tamper: |r| edit(r, "digits_summary.csv", &|c| c.text("method") == "edm_heun", "frechet_mean", &|c| 3.0 * c.num("frechet_mean")),
        },
        Check {
            name: "annealing_beats_single_level",
            claim: "every annealed row (annealed Langevin, PC, and PC on the network trained for ISM's time) has a lower Fréchet distance than both single-level Langevin runs, by more than their sds",
            run: |r| {
                let t = Table::read(&r.join("digits_summary.csv"))?;
                let get = |m: &str| frechet(&t, m);
                let annealed = [
                    get("dsm_annealed")?,
                    get("dsm_pc")?,
                    get("dsm_equal_time_pc")?,
                ];
                let single = [get("ism_langevin")?, get("ssm_vr_langevin")?];
                let worst = annealed.iter().map(|a| a.0 + a.1).fold(0.0, f64::max);
                let best = single
                    .iter()
                    .map(|a| a.0 - a.1)
                    .fold(f64::INFINITY, f64::min);
                Ok(Outcome {
                    pass: worst < best,
                    numbers: format!(
                        "at most {} (mean + sd) against at least {} (mean − sd)",
                        sig(worst, 3),
                        sig(best, 3)
                    ),
                })
            },
            tamper: |r| edit(r, "digits_summary.csv", &|c| c.text("method") == "dsm_pc", "frechet_mean", &|_| 1e4),
        },
        Check {
            name: "single_level_langevin_far_from_digits",
            claim: "on the digits, both single-level Langevin rows (ISM and SSM-VR) have a Fréchet distance more than 3× the floor's: they do not reach the digits",
            run: |r| {
                let t = Table::read(&r.join("digits_summary.csv"))?;
                let floor = summary_value(&t, "method", "real_digits", "frechet_mean")?;
                let ism = summary_value(&t, "method", "ism_langevin", "frechet_mean")?;
                let ssm = summary_value(&t, "method", "ssm_vr_langevin", "frechet_mean")?;
                Ok(Outcome {
                    pass: ism.min(ssm) > 3.0 * floor,
                    numbers: format!(
                        "{}× and {}× the floor's {}",
                        sig(ism / floor, 2),
                        sig(ssm / floor, 2),
                        sig(floor, 3)
                    ),
                })
            },
            tamper: |r| edit(r, "digits_summary.csv", &|c| c.text("method") == "ism_langevin", "frechet_mean", &|c| c.num("frechet_mean") / 100.0),
        },
        Check {
            name: "memorised_images_score_below_the_floor",
            claim: "on the digits, the training images themselves, judged like a sampler's output, have a Fréchet distance below the floor's (real digits no model saw) by more than 3 of their sds over seeds: a distance below the floor is what memorising the training set scores",
            run: |r| {
                let t = Table::read(&r.join("digits_summary.csv"))?;
                let floor = summary_value(&t, "method", "real_digits", "frechet_mean")?;
                let own = summary_value(&t, "method", "training_images", "frechet_mean")?;
                let sd = summary_value(&t, "method", "training_images", "frechet_sd")?;
                Ok(Outcome {
                    pass: own + 3.0 * sd < floor,
                    numbers: format!(
                        "training images {} ± {} against the floor's {}",
                        sig(own, 3),
                        sig(sd, 2),
                        sig(floor, 3)
                    ),
                })
            },
            tamper: |r| edit(r, "digits_summary.csv", &|c| c.text("method") == "training_images", "frechet_mean", &|c| 2.0 * c.num("frechet_mean")),
        },
        Check {
            name: "a_gaussian_mixture_beats_the_annealed_networks",
            claim: "on the digits, samples of a Gaussian mixture fitted by EM to the training images have a lower Fréchet distance than every annealed DSM row (annealed Langevin, PC, PC at ISM's time) and a higher one than the best network (Heun), each by more than the two rows' sds added, and a single Gaussian's is within 2 of its sds of the floor",
            run: |r| {
                let t = Table::read(&r.join("digits_summary.csv"))?;
                let get = |m: &str| frechet(&t, m);
                let (mix, msd) = get("mixture_em")?;
                let (gau, gsd) = get("gaussian")?;
                let (floor, _) = get("real_digits")?;
                let (best, bsd) = get("edm_heun")?;
                let mut pass = (gau - floor).abs() < 2.0 * gsd && best + bsd < mix - msd;
                let mut parts = vec![];
                for m in ["dsm_annealed", "dsm_pc", "dsm_equal_time_pc"] {
                    let (v, sd) = get(m)?;
                    pass &= mix + msd < v - sd;
                    parts.push(format!("{} {}", m.replace('_', " "), sig(v, 3)));
                }
                Ok(Outcome {
                    pass,
                    numbers: format!(
                        "the EM mixture {} ± {} against {} (the best network {}); a single Gaussian {} ± {} against the floor's {}",
                        sig(mix, 3),
                        sig(msd, 2),
                        parts.join(", "),
                        sig(best, 3),
                        sig(gau, 3),
                        sig(gsd, 2),
                        sig(floor, 3)
                    ),
                })
            },
            tamper: |r| edit(r, "digits_summary.csv", &|c| c.text("method") == "mixture_em", "frechet_mean", &|_| 40.0),
        },
        Check {
            name: "the_nearest_image_completes_the_lower_half_better",
            claim: "on the lower-half mask the nearest training image's completions are recognised more often than the network's, by more than 4 sds of the network's over seeds; on the random-half mask the network's completions have the lowest squared error per hidden pixel of the three, by more than 4 of its sds",
            run: |r| {
                let t = Table::read(&r.join("digits_inpaint_summary.csv"))?;
                let v = |m: &str, c: &str| summary_value(&t, "mask", m, c);
                let (done, sd) = (v("lower_half", "accuracy_completed_mean")?, v("lower_half", "accuracy_completed_sd")?);
                let near = v("lower_half", "accuracy_nearest")?;
                let (mse, msd) = (v("random_half", "mse_hidden_mean")?, v("random_half", "mse_hidden_sd")?);
                let (mn, mg) = (v("random_half", "mse_nearest")?, v("random_half", "mse_gaussian")?);
                Ok(Outcome {
                    pass: near > done + 4.0 * sd && mse + 4.0 * msd < mn.min(mg),
                    numbers: format!(
                        "lower half: nearest image {} against the network's {} ± {}; random half: squared error {} ± {} against the nearest image's {} and the Gaussian's {}",
                        sig(near, 3),
                        sig(done, 3),
                        sig(sd, 1),
                        sig(mse, 3),
                        sig(msd, 1),
                        sig(mn, 3),
                        sig(mg, 3)
                    ),
                })
            },
            tamper: |r| edit(r, "digits_inpaint_summary.csv", &|c| c.text("mask") == "lower_half", "accuracy_nearest", &|_| 0.1),
        },
        Check {
            name: "inpainting_beats_masked_inputs",
            claim: "for every mask, the completions are recognised more often than the masked inputs, by more than 4 sds over seeds",
            run: |r| {
                let t = Table::read(&r.join("digits_inpaint_summary.csv"))?;
                let mut pass = true;
                let mut parts = vec![];
                for m in t.distinct("mask")? {
                    let done = summary_value(&t, "mask", &m, "accuracy_completed_mean")?;
                    let sd = summary_value(&t, "mask", &m, "accuracy_completed_sd")?;
                    let masked = summary_value(&t, "mask", &m, "accuracy_masked")?;
                    pass &= done - 4.0 * sd.max(0.0) > masked;
                    parts.push(format!(
                        "{}: {} against {}",
                        m.replace('_', " "),
                        sig(done, 3),
                        sig(masked, 3)
                    ));
                }
                Ok(Outcome {
                    pass: pass && !parts.is_empty(),
                    numbers: parts.join("; "),
                })
            },
            tamper: |r| edit(r, "digits_inpaint_summary.csv", &|c| c.text("mask") == "lower_half", "accuracy_completed_mean", &|c| c.num("accuracy_masked")),
        },
        Check {
            name: "only_the_ncsn_code_row_samples_p",
            claim: "on the NCSN toy, against p, the annealed rows that end at p_σ (exact noised score) and at Tweedie's posterior mean have MMD² and KSD larger than the NCSN code's row (whose last level is p itself), by more than 3 standard errors over seeds",
            run: |r| {
                let t = Table::read(&r.join("ncsn_toy_summary.csv"))?;
                let get = |run: &str, m: &str| -> Result<(f64, f64, f64)> {
                    let g = t.filter("run", run)?;
                    Ok((
                        summary_value(&g, "metric", m, "mean")?,
                        summary_value(&g, "metric", m, "sd")?,
                        summary_value(&g, "metric", m, "seeds")?,
                    ))
                };
                let mut parts = vec![];
                let mut pass = true;
                for m in ["mmd2", "ksd"] {
                    let (base, bsd, n) = get("annealed_ncsn_toy", m)?;
                    let mut cells = vec![];
                    for run in ["annealed_exact", "annealed_exact_denoised"] {
                        let (v, sd, _) = get(run, m)?;
                        let se = (sd * sd + bsd * bsd).sqrt() / n.sqrt();
                        pass &= n >= 2.0 && v - base > 3.0 * se;
                        cells.push(sig(v, 2));
                    }
                    parts.push(format!(
                        "{}: {} (p_σ) and {} (Tweedie) against {}",
                        if m == "mmd2" { "MMD²" } else { "KSD" },
                        cells[0],
                        cells[1],
                        sig(base, 2)
                    ));
                }
                Ok(Outcome {
                    pass,
                    numbers: parts.join("; "),
                })
            },
            tamper: |r| edit(r, "ncsn_toy_summary.csv", &|c| c.text("run") == "annealed_ncsn_toy" && c.text("metric") == "mmd2", "mean", &|_| 10.0),
        },
        Check {
            name: "ksd_blind_to_mixing_proportions",
            claim: "on the NCSN toy, plain Langevin (about half the chains in each mode) and plain Langevin started in the majority basin (almost none in the minority mode) have KSDs within 3 standard errors over seeds of the NCSN code's row, whose minority weight is near 0.2, although their weights differ from it by more than 0.15",
            run: |r| {
                let t = Table::read(&r.join("ncsn_toy_summary.csv"))?;
                let get = |run: &str, m: &str| -> Result<(f64, f64, f64)> {
                    let g = t.filter("run", run)?;
                    Ok((
                        summary_value(&g, "metric", m, "mean")?,
                        summary_value(&g, "metric", m, "sd")?,
                        summary_value(&g, "metric", m, "seeds")?,
                    ))
                };
                let (k0, s0, n0) = get("annealed_ncsn_toy", "ksd")?;
                let (w0, _, _) = get("annealed_ncsn_toy", "mode_weight_1")?;
                let mut pass = true;
                let mut parts = vec![];
                for run in ["langevin", "langevin_majority_start"] {
                    let (k, sd, n) = get(run, "ksd")?;
                    let (w, _, _) = get(run, "mode_weight_1")?;
                    let se = (s0 * s0 / n0 + sd * sd / n).sqrt();
                    pass &= (k - k0).abs() < 3.0 * se && (w - w0).abs() > 0.15;
                    parts.push(format!(
                        "{}: KSD {} at minority weight {}",
                        run.replace('_', " "),
                        sig(k, 3),
                        sig(w, 2)
                    ));
                }
                Ok(Outcome {
                    pass,
                    numbers: format!(
                        "{}; against the NCSN code's row's KSD {} at weight {}",
                        parts.join("; "),
                        sig(k0, 3),
                        sig(w0, 3)
                    ),
                })
            },
            tamper: |r| {
                edit(r, "ncsn_toy_summary.csv", &|c| c.text("run") == "langevin" && c.text("metric") == "ksd", "mean", &|c| c.num("mean") + 0.1)
            },
        },
        Check {
            name: "langevin_keeps_its_start_annealing_forgets_it",
            claim: "on the NCSN toy, plain Langevin started in the majority basin puts fewer than 1% of its chains in the minority mode, while annealed Langevin from that start ends within 0.01 of its weight from the uniform start",
            run: |r| {
                let t = Table::read(&r.join("ncsn_toy_summary.csv"))?;
                let w = |run: &str| -> Result<f64> {
                    summary_value(&t.filter("run", run)?, "metric", "mode_weight_1", "mean")
                };
                let (l, a, u) = (
                    w("langevin_majority_start")?,
                    w("annealed_majority_start")?,
                    w("annealed_exact")?,
                );
                Ok(Outcome {
                    pass: l < 0.01 && (a - u).abs() < 0.01,
                    numbers: format!(
                        "Langevin {}; annealed {} against {} from the uniform start",
                        sig(l, 2),
                        sig(a, 4),
                        sig(u, 4)
                    ),
                })
            },
            tamper: |r| edit(r, "ncsn_toy_summary.csv", &|c| c.text("run") == "langevin_majority_start" && c.text("metric") == "mode_weight_1", "mean", &|_| 0.2),
        },
        Check {
            name: "annealed_minority_weight_above_truth",
            claim: "on the NCSN toy, annealed Langevin's minority weight, pooled over every seed's chains, lies above the truth 0.2 by more than 2 binomial standard errors",
            run: |r| {
                let t = Table::read(&r.join("ncsn_toy.csv"))?
                    .filter("run", "annealed_exact")?
                    .filter("metric", "mode_weight_1")?;
                let (w, se) = (t.f64s("value")?, t.f64s("se")?);
                // Each seed's chains from its binomial standard error, se² = w(1 − w)/n.
                let n: Vec<f64> = w
                    .iter()
                    .zip(&se)
                    .map(|(w, s)| (w * (1.0 - w) / (s * s)).round())
                    .collect();
                let total: f64 = n.iter().sum();
                let pooled = w.iter().zip(&n).map(|(w, n)| w * n).sum::<f64>() / total;
                let z = (pooled - 0.2) / (0.2 * 0.8 / total).sqrt();
                Ok(Outcome {
                    pass: z > 2.0,
                    numbers: format!(
                        "pooled over {} seeds and {} chains: {}, z = {} against 0.2",
                        w.len(),
                        total,
                        sig(pooled, 4),
                        sig(z, 2)
                    ),
                })
            },
            tamper: |r| edit(r, "ncsn_toy.csv", &|c| c.text("run") == "annealed_exact" && c.text("metric") == "mode_weight_1", "value", &|_| 0.2),
        },
        Check {
            name: "independent_pixels_beat_the_digits_ode",
            claim: "on every seed, independent pixels (exact, discrete) take fewer bits/dim on the held-out digits than the ODE's exact likelihood (an upper bound on the discrete bits/dim), by more than 2 paired standard errors",
            run: |r| {
                let t = Table::read(&r.join("digits_likelihood_paired.csv"))?
                    .filter("method", "independent_pixels")?
                    .filter("reference", "ode_exact")?;
                let (d, se) = (t.f64s("mean_difference")?, t.f64s("se_difference")?);
                let worst = d
                    .iter()
                    .zip(&se)
                    .map(|(d, s)| d + 2.0 * s)
                    .fold(f64::NEG_INFINITY, f64::max);
                Ok(Outcome {
                    pass: !d.is_empty() && worst < 0.0,
                    numbers: format!(
                        "independent pixels minus the ODE, per seed: {} bits/dim",
                        d.iter()
                            .zip(&se)
                            .map(|(d, s)| format!("{} ± {}", sig(*d, 2), sig(*s, 2)))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                })
            },
            tamper: |r| edit(r, "digits_likelihood_paired.csv", &|c| c.text("method") == "independent_pixels" && c.text("reference") == "ode_exact" && c.text("seed") == "1", "mean_difference", &|c| c.num("se_difference")),
        },
        Check {
            name: "gradients_differ_by_the_boundary_gradient",
            claim: "over every case of the audit, the per-parameter t-tests of ∇_θ ESM − ∇_θ ISM − ∇_θ B = 0 (batch means, Bonferroni over the parameters and then over the cases) do not reject at the 1% level, while on every half-normal case the same test of ∇_θ ESM − ∇_θ ISM = 0 rejects with p < 1e-6",
            run: |r| {
                let t = Table::read(&r.join("equivalence.csv"))?;
                let dens = t.strings("density")?;
                let (rp, dp) = (t.f64s("grad_residual_p")?, t.f64s("grad_difference_p")?);
                let cases: Vec<usize> = (0..rp.len()).filter(|&i| rp[i].is_finite()).collect();
                let least = cases.iter().map(|&i| rp[i]).fold(1.0, f64::min);
                let family = (least * cases.len() as f64).min(1.0);
                let half: Vec<f64> = cases
                    .iter()
                    .filter(|&&i| dens[i] == "half_normal")
                    .map(|&i| dp[i])
                    .collect();
                let half_worst = half.iter().copied().fold(0.0, f64::max);
                Ok(Outcome {
                    pass: !cases.is_empty() && !half.is_empty() && family > 0.01 && half_worst < 1e-6,
                    numbers: format!(
                        "the residual after ∇_θB has family-wise p = {} over {} cases (least per-case p {}); on the half-normal the difference without ∇_θB has p ≤ {}",
                        sig(family, 2),
                        cases.len(),
                        sig(least, 2),
                        sig(half_worst, 1)
                    ),
                })
            },
            tamper: |r| edit(r, "equivalence.csv", &|c| c.text("density") == "gaussian", "grad_residual_p", &|_| 1e-9),
        },
        Check {
            name: "equal_time_budgets_by_construction",
            claim: "each equal-time row trained for the steps its budget file gives (ISM's steps × ISM's per-step cost / its own, both measured on the machine that ran it); the wall-clock ratio it then took is reported, not tested",
            run: |r| {
                let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
                let mut parts = vec![];
                let mut pass = true;
                for (exp, method, label) in [
                    ("old_faithful", "dsm_equal_time", "Old Faithful"),
                    ("digits", "dsm_multi_equal_time", "the digits"),
                ] {
                    let b = Table::read(&r.join(format!("{exp}_budget.csv")))?.filter("method", method)?;
                    let field = |c: &str| -> Result<f64> {
                        b.f64s(c)?.first().copied().ok_or_else(|| {
                            anyhow::anyhow!("{exp}_budget.csv: no row for {method}")
                        })
                    };
                    let (ref_steps, ref_s, s, steps) = (
                        field("reference_steps")?,
                        field("reference_seconds_per_step")?,
                        field("seconds_per_step")?,
                        field("steps")?,
                    );
                    let (ref_ms, ms) = (1e3 * ref_s, 1e3 * s);
                    let rule = equal_time_rule(ref_steps as u64, ref_s, s) as f64;
                    // The networks trained for the steps of the budget (their configs say).
                    let mut trained = vec![];
                    for entry in std::fs::read_dir(r.join("models").join(exp))? {
                        let entry = entry?;
                        let name = entry.file_name().to_string_lossy().into_owned();
                        if name.starts_with(&format!("{method}_seed")) {
                            let text = std::fs::read_to_string(entry.path().join("config.toml"))?;
                            let cfg: toml::Table = toml::from_str(&text)?;
                            trained.push(
                                cfg.get("train")
                                    .and_then(|t| t.get("steps"))
                                    .and_then(|v| v.as_integer())
                                    .unwrap_or(-1) as f64,
                            );
                        }
                    }
                    let ok = rule == steps && !trained.is_empty() && trained.iter().all(|&t| t == steps);
                    pass &= ok;
                    let wall = if exp == "old_faithful" {
                        let of = Table::read(&r.join("old_faithful_timing.csv"))?;
                        mean(&of.filter("method", method)?.f64s("train_seconds")?)
                            / mean(&of.filter("method", "ism")?.f64s("train_seconds")?)
                    } else {
                        let dg = Table::read(&r.join("digits_timing.csv"))?.filter("what", "train")?;
                        mean(&dg.filter("name", method)?.f64s("seconds")?)
                            / mean(&dg.filter("name", "ism")?.f64s("seconds")?)
                    };
                    parts.push(format!(
                        "{label}: {} steps against ISM's {} (a step {} ms against {} ms), which took {}× ISM's wall-clock time in this run",
                        steps,
                        ref_steps,
                        sig(ms, 2),
                        sig(ref_ms, 2),
                        sig(wall, 2)
                    ));
                }
                Ok(Outcome {
                    pass,
                    numbers: parts.join("; "),
                })
            },
            tamper: |r| edit(r, "old_faithful_budget.csv", &|c| c.text("method") == "dsm_equal_time", "steps", &|c| c.num("steps") + (c.num("reference_steps") / 20.0).max(1.0).floor()),
        },
        Check {
            name: "audit_within_monte_carlo_error",
            claim: "the built-in audit's largest |z| of ESM − ISM − C − B over its cases is what independent N(0, 1) z-scores give under the identity: its family-wise (Šidák) p-value is above 1%",
            run: |r| {
                let t = Table::read(&r.join("equivalence.csv"))?;
                let z: Vec<f64> = t.f64s("z_score")?.into_iter().filter(|z| z.is_finite()).collect();
                let worst = z.iter().map(|z| z.abs()).fold(0.0, f64::max);
                let p = sidak_max_abs_z(worst, z.len());
                Ok(Outcome {
                    pass: !z.is_empty() && p > 0.01,
                    numbers: format!(
                        "largest |z| {} over {} cases, family-wise p = {}",
                        sig(worst, 3),
                        z.len(),
                        sig(p, 2)
                    ),
                })
            },
            tamper: |r| {
                let first = Table::read(&r.join("equivalence.csv"))?.rows[0][0].clone();
                edit(r, "equivalence.csv", &|c| c.text("case") == first, "z_score", &|_| 6.0)
            },
        },
        Check {
            name: "mle_still_improving_when_it_stops",
            claim: "on every Old Faithful split, the maximum-likelihood fine-tuning's training NLL is lower at its last step than at 90% of its steps: it stops before it converges",
            run: |r| {
                let t = Table::read(&r.join("old_faithful_mle.csv"))?;
                let mut falls = vec![];
                for seed in t.distinct("seed")? {
                    let g = t.filter("seed", &seed)?;
                    let (step, nll) = (g.f64s("step")?, g.f64s("train_nll")?);
                    let last = step.iter().copied().fold(0.0, f64::max);
                    let at = |s: f64| {
                        (0..step.len())
                            .filter(|&i| step[i] <= s)
                            .max_by(|&a, &b| step[a].total_cmp(&step[b]))
                            .map_or(f64::NAN, |i| nll[i])
                    };
                    falls.push(at(0.9 * last) - at(last));
                }
                Ok(Outcome {
                    pass: !falls.is_empty() && falls.iter().all(|&f| f > 0.0),
                    numbers: format!(
                        "the training NLL fell by {} nats over the last tenth of the steps",
                        falls.iter().map(|f| sig(*f, 2)).collect::<Vec<_>>().join(", ")
                    ),
                })
            },
            tamper: |r| {
                edit(r, "old_faithful_mle.csv", &|c| c.text("seed") == "1", "train_nll", &|c| c.num("step"))
            },
        },
        Check {
            name: "em_and_ml_tie_ism",
            claim: "on Old Faithful, the EM Gaussian mixture's and the maximum-likelihood fine-tuning's held-out log-likelihoods minus ISM's, paired by split, are not significant at the 5% level (two-sided paired t-tests)",
            run: |r| {
                let t = Table::read(&r.join("old_faithful_likelihood.csv"))?;
                let per = |m: &str| -> Result<Vec<(f64, f64)>> {
                    let g = t.filter("method", m)?;
                    Ok(g.f64s("seed")?.into_iter().zip(g.f64s("heldout_ll")?).collect())
                };
                let mut pass = true;
                let mut parts = vec![];
                for m in ["mixture_em", "mle"] {
                    let p = crate::paper::paired_t(&per(m)?, &per("ism")?)?;
                    pass &= p.p > 0.05;
                    parts.push(format!(
                        "{} − ISM {} nats, t = {}, p = {}",
                        if m == "mle" { "ML" } else { "EM" },
                        sig(p.mean, 2),
                        sig(p.t, 2),
                        sig(p.p, 2)
                    ));
                }
                Ok(Outcome {
                    pass,
                    numbers: parts.join("; "),
                })
            },
            tamper: |r| {
                edit(r, "old_faithful_likelihood.csv", &|c| c.text("method") == "mixture_em", "heldout_ll", &|c| c.num("heldout_ll") + 1.0)
            },
        },
        Check {
            name: "dsm_at_equal_time_no_better_than_the_kde",
            claim: "on Old Faithful, DSM trained for ISM's time has a held-out log-likelihood below the Scott KDE's on average over the splits (paired mean difference negative; its paired t-test is reported, not required to be significant)",
            run: |r| {
                let t = Table::read(&r.join("old_faithful_likelihood.csv"))?;
                let per = |m: &str| -> Result<Vec<(f64, f64)>> {
                    let g = t.filter("method", m)?;
                    Ok(g.f64s("seed")?.into_iter().zip(g.f64s("heldout_ll")?).collect())
                };
                let p = crate::paper::paired_t(&per("dsm_equal_time")?, &per("kde_scott")?)?;
                Ok(Outcome {
                    pass: p.mean < 0.0,
                    numbers: format!(
                        "DSM at equal time minus the KDE {} nats paired by split, t = {} on {} df, p = {}",
                        sig(p.mean, 2),
                        sig(p.t, 2),
                        p.df,
                        sig(p.p, 2)
                    ),
                })
            },
            tamper: |r| {
                edit(r, "old_faithful_likelihood.csv", &|c| c.text("method") == "dsm_equal_time", "heldout_ll", &|c| c.num("heldout_ll") + 1.0)
            },
        },
        Check {
            name: "every_model_on_its_line",
            claim: "the many-models audit's largest |z| of ESM − ISM − C − B is what independent N(0, 1) z-scores give under the identity: its family-wise (Šidák) p-value over the models is above 1%",
            run: |r| {
                let m = Table::read(&r.join("equivalence_models.csv"))?;
                let (g, c, b, se) = (
                    m.f64s("gap")?,
                    m.f64s("constant")?,
                    m.f64s("boundary_term")?,
                    m.f64s("gap_se")?,
                );
                let z: Vec<f64> = (0..g.len())
                    .map(|i| ((g[i] - c[i] - b[i]) / se[i]).abs())
                    .filter(|z| z.is_finite())
                    .collect();
                let worst = z.iter().copied().fold(0.0, f64::max);
                let p = sidak_max_abs_z(worst, z.len());
                Ok(Outcome {
                    pass: !z.is_empty() && p > 0.01,
                    numbers: format!(
                        "largest |z| {} over {} models, family-wise p = {}",
                        sig(worst, 3),
                        z.len(),
                        sig(p, 2)
                    ),
                })
            },
            tamper: |r| {
                let first = Table::read(&r.join("equivalence_models.csv"))?.rows[0][0].clone();
                edit(r, "equivalence_models.csv", &|c| c.text("case") == first, "gap", &|c| c.num("gap") + 10.0 * c.num("gap_se"))
            },
        },
        Check {
            name: "hutchinson_agrees_with_exact",
            claim: "on every split, one-probe Hutchinson's digits bits/dim minus the exact divergence's is within 3 of its standard errors",
            run: |r| {
                let t = Table::read(&r.join("digits_likelihood_paired.csv"))?
                    .filter("method", "ode_hutchinson")?
                    .filter("reference", "ode_exact")?;
                let (m, se) = (t.f64s("mean_difference")?, t.f64s("se_difference")?);
                let worst = m
                    .iter()
                    .zip(&se)
                    .map(|(m, s)| (m / s).abs())
                    .fold(0.0, f64::max);
                Ok(Outcome {
                    pass: !m.is_empty() && worst < 3.0,
                    numbers: format!("largest |difference|/SE {} over {} splits", sig(worst, 2), m.len()),
                })
            },
            tamper: |r| edit(r, "digits_likelihood_paired.csv", &|c| c.text("method") == "ode_hutchinson" && c.text("reference") == "ode_exact" && c.text("seed") == "1", "mean_difference", &|c| 4.0 * c.num("se_difference")),
        },
        Check {
            name: "structured_trace_1_to_2_1x_dsm",
            claim: "in the same-run comparison, the structured exact trace's step costs 1.0–2.1× our DSM step at every D measured",
            run: |r| {
                let runs = SameRun::read(&r.join(crate::cost::RUNS))?;
                let rs = ratios(&runs, (Scorelab, "ism_structured"), (Scorelab, "dsm"))?;
                let (lo, hi) = extremes(&rs);
                Ok(Outcome {
                    pass: lo >= 1.0 && hi <= 2.1,
                    numbers: format!(
                        "{}–{}× (medians over {} repeats; {})",
                        sig(lo, 2),
                        sig(hi, 2),
                        runs.repeats.len(),
                        dims_text(&rs)
                    ),
                })
            },
            tamper: |r| slow(r, "scorelab", "ism_structured", "512", 5.0),
        },
        Check {
            name: "structured_trace_faster_than_jax_jacrev",
            claim: "in every repeat of the same-run comparison, at every D, the structured exact trace's step is faster than JAX's jacrev step",
            run: |r| {
                let runs = SameRun::read(&r.join(crate::cost::RUNS))?;
                let worst = every_repeat_below_one(&runs, (Scorelab, "ism_structured"), (Jax, "ism_jacrev"))?;
                let speedups = ratios(&runs, (Jax, "ism_jacrev"), (Scorelab, "ism_structured"))?;
                Ok(Outcome {
                    pass: worst < 1.0,
                    numbers: format!(
                        "JAX's step takes {}× ours at D = {} and {}× at D = {}; in the least favourable repeat and D ours takes {}× JAX's",
                        sig(speedups[0].1, 2),
                        speedups[0].0,
                        sig(speedups[speedups.len() - 1].1, 3),
                        speedups[speedups.len() - 1].0,
                        sig(worst, 2)
                    ),
                })
            },
            tamper: |r| slow(r, "scorelab", "ism_structured", "512", 1e4),
        },
        Check {
            name: "structured_trace_faster_than_jax_structured",
            claim: "like with like: in every repeat of the same-run comparison, at every D, our structured exact trace's step is faster than the same formula's step written in JAX",
            run: |r| faster_than_jax(r, "ism_structured"),
            tamper: |r| slow(r, "scorelab", "ism_structured", "32", 10.0),
        },
        Check {
            name: "structured_trace_about_ssm_vr",
            claim: "in the same-run comparison, the structured exact trace's step costs 0.8–1.25× our one-probe SSM-VR step at every D (median over repeats): the exact trace at the price of one random projection",
            run: |r| {
                let runs = SameRun::read(&r.join(crate::cost::RUNS))?;
                let rs = ratios(&runs, (Scorelab, "ism_structured"), (Scorelab, "ssm_vr"))?;
                let (lo, hi) = extremes(&rs);
                Ok(Outcome {
                    pass: lo >= 0.8 && hi <= 1.25,
                    numbers: format!("{}–{}× SSM-VR's step ({})", sig(lo, 2), sig(hi, 2), dims_text(&rs)),
                })
            },
            tamper: |r| slow(r, "scorelab", "ssm_vr", "8", 0.5),
        },
        Check {
            name: "naive_trace_grows_with_d",
            claim: "in the same-run comparison, our naive exact trace (D Jacobian–vector products) over the structured trace grows with D at every step of D, to more than 10× at the largest D",
            run: |r| {
                let runs = SameRun::read(&r.join(crate::cost::RUNS))?;
                let rs = ratios(&runs, (Scorelab, "ism_naive"), (Scorelab, "ism_structured"))?;
                let grows = rs.windows(2).all(|w| w[1].1 > w[0].1);
                let last = rs.last().map_or(0.0, |x| x.1);
                Ok(Outcome {
                    pass: grows && last > 10.0,
                    numbers: format!("naive over structured: {}", dims_text(&rs)),
                })
            },
            tamper: |r| slow(r, "scorelab", "ism_naive", "512", 0.01),
        },
        Check {
            name: "dsm_faster_than_jax",
            claim: "in every repeat of the same-run comparison, at every D, our DSM step is faster than JAX's",
            run: |r| faster_than_jax(r, "dsm"),
            tamper: |r| slow(r, "scorelab", "dsm", "128", 10.0),
        },
        Check {
            name: "large_sigma_models_cover_the_plane",
            claim: "on the NCSN mixture, relative to the size of its own target (the score of p ∗ N(0, σ²I)), every single-σ model with σ ≥ 1 has a smaller error than every model with σ < 1 in every distance bin from the data (the growth from the nearest bin to the farthest is reported, not tested)",
            run: |r| {
                let t = Table::read(&r.join("noise_tradeoff.csv"))?.filter("region", "box")?;
                // Mean over seeds per (σ, bin).
                let mut cells: BTreeMap<(String, String), Vec<f64>> = BTreeMap::new();
                // The error relative to the target's own size ½‖∇log p_σ‖², which shrinks with σ.
                let (sg, lo) = (t.strings("sigma")?, t.strings("bin_low")?);
                let e = relative_error_noised(&t)?;
                for i in 0..sg.len() {
                    cells.entry((sg[i].clone(), lo[i].clone())).or_default().push(e[i]);
                }
                let mean = |v: &Vec<f64>| v.iter().sum::<f64>() / v.len() as f64;
                let mut by_sigma: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
                for ((s, l), v) in &cells {
                    by_sigma.entry(s.clone()).or_default().push((l.parse()?, mean(v)));
                }
                let mut pass = by_sigma.len() >= 2;
                let mut growth = vec![];
                for (s, bins) in by_sigma.iter_mut() {
                    bins.sort_by(|a, b| a.0.total_cmp(&b.0));
                    let g = bins[bins.len() - 1].1 / bins[0].1;
                    growth.push((s.parse::<f64>()?, g));
                }
                growth.sort_by(|a, b| a.0.total_cmp(&b.0));
                let bins: Vec<f64> = by_sigma.values().next().map(|b| b.iter().map(|x| x.0).collect()).unwrap_or_default();
                for b in &bins {
                    let at = |big: bool| by_sigma.iter().filter(move |(s, _)| (s.parse::<f64>().unwrap_or(0.0) >= 1.0) == big).filter_map(move |(_, v)| v.iter().find(|x| x.0 == *b).map(|x| x.1));
                    let worst_big = at(true).fold(f64::NEG_INFINITY, f64::max);
                    let best_small = at(false).fold(f64::INFINITY, f64::min);
                    pass &= worst_big < best_small;
                }
                Ok(Outcome {
                    pass,
                    numbers: format!(
                        "σ ≥ 1 below σ < 1 in all {} bins; from the nearest bin to the farthest the relative error changes {}",
                        bins.len(),
                        growth
                            .iter()
                            .map(|(s, g)| format!("{}× (σ = {})", sig(*g, 2), sig(*s, 1)))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                })
            },
            tamper: |r| edit(r, "noise_tradeoff.csv", &|c| c.text("region") == "box" && c.num("sigma") >= 1.0, "error_noised", &|_| 100.0),
        },
        Check {
            name: "stochastic_samplers_forget_the_prior",
            claim: "in the sampler zoo, at their largest budgets, the reverse VP SDE, DDPM's ancestral sampler and Heun with churn on the EDM grid end nearer the truth 0.2 than the probability-flow ODE from the VP prior does",
            run: |r| {
                let s = Table::read(&r.join("sampler_zoo_summary.csv"))?.filter("metric", "mode_weight_1")?;
                let last = |run: &str| -> Result<f64> {
                    let m = s.filter("run", run)?.f64s("mean")?;
                    m.last().copied().ok_or_else(|| anyhow::anyhow!("sampler_zoo_summary.csv: no run {run}"))
                };
                let ode = last("prior_ode_vp")?;
                let mut pass = true;
                let mut parts = vec![];
                for run in ["reverse_sde_vp", "ancestral_vp", "heun_churn_edm"] {
                    let w = last(run)?;
                    pass &= (w - 0.2).abs() < (ode - 0.2).abs();
                    parts.push(format!("{} {}", run.replace('_', " "), sig(w, 3)));
                }
                Ok(Outcome {
                    pass,
                    numbers: format!("{} against the VP ODE's {}", parts.join(", "), sig(ode, 3)),
                })
            },
            tamper: |r| edit(r, "sampler_zoo_summary.csv", &|c| c.text("run") == "ancestral_vp" && c.text("metric") == "mode_weight_1", "mean", &|_| 0.9),
        },
        Check {
            name: "preconditioning_fixes_large_sigma",
            claim: "in the sampler zoo, the network trained with EDM's preconditioning has a lower sliced W₂ with the reverse VP SDE (1000 steps) than the same objective without it, by more than 3 standard errors over seeds",
            run: |r| {
                let s = Table::read(&r.join("sampler_zoo_summary.csv"))?.filter("metric", "sliced_w2")?;
                let last = |run: &str| -> Result<(f64, f64)> {
                    let g = s.filter("run", run)?;
                    let (m, sd, n) = (g.f64s("mean")?, g.f64s("sd")?, g.f64s("seeds")?);
                    let i = m.len().checked_sub(1).ok_or_else(|| anyhow::anyhow!("sampler_zoo_summary.csv: no run {run}"))?;
                    Ok((m[i], sd[i] / n[i].sqrt()))
                };
                let (plain, pse) = last("objective_sigma2_reverse_sde_vp_1000")?;
                let (pre, qse) = last("objective_sigma2_edm_reverse_sde_vp_1000")?;
                Ok(Outcome {
                    pass: plain - pre > 3.0 * pse.hypot(qse),
                    numbers: format!(
                        "sliced W₂ {} without preconditioning against {} with it",
                        sig(plain, 3),
                        sig(pre, 3)
                    ),
                })
            },
            tamper: |r| edit(r, "sampler_zoo_summary.csv", &|c| c.text("run") == "objective_sigma2_reverse_sde_vp_1000" && c.text("metric") == "sliced_w2", "mean", &|_| 0.0),
        },
        Check {
            name: "every_ode_weight_is_its_priors",
            claim: "every probability-flow ODE run of the sampler zoo ends at the minority weight its prior predicts, within 3 standard errors over seeds",
            run: |r| {
                let s = Table::read(&r.join("sampler_zoo_summary.csv"))?
                    .filter("metric", "mode_weight_1")?;
                let prior = Table::read(&r.join("sampler_zoo_prior.csv"))?;
                let mut worst: f64 = 0.0;
                let mut n = 0;
                for run in s.distinct("run")?.iter().filter(|r| r.starts_with("prior_")) {
                    let g = s.filter("run", run)?;
                    let (m, sd, seeds) = (g.f64s("mean")?, g.f64s("sd")?, g.f64s("seeds")?);
                    let i = m.len().checked_sub(1).ok_or_else(|| anyhow::anyhow!("{run}: no rows"))?;
                    let predicted = summary_value(&prior, "run", run, "predicted_mode_weight_1")?;
                    let se = sd[i] / seeds[i].sqrt();
                    worst = worst.max((m[i] - predicted).abs() / se);
                    n += 1;
                }
                Ok(Outcome {
                    pass: n > 0 && worst < 3.0,
                    numbers: format!("largest |measured − predicted| {} standard errors over {n} runs", sig(worst, 2)),
                })
            },
            tamper: |r| edit(r, "sampler_zoo_summary.csv", &|c| c.text("run").starts_with("prior_") && c.text("metric") == "mode_weight_1", "mean", &|c| c.num("mean") + 0.3),
        },
        Check {
            name: "ode_keeps_its_priors_weight",
            claim: "on the NCSN toy with exact scores, the probability-flow ODE from N(0, 20²I) ends at the weight that prior predicts (within 3 SE at the largest budget) and not at 0.2, while PC ends within 3 SE of 0.2",
            run: |r| {
                let t = Table::read(&r.join("samplers_cost_mixture_summary.csv"))?
                    .filter("metric", "mode_weight_1")?;
                let last = |run: &str| -> Result<(f64, f64)> {
                    let g = t.filter("run", run)?;
                    let (m, sd, seeds) = (g.f64s("mean")?, g.f64s("sd")?, g.f64s("seeds")?);
                    let i = m.len().checked_sub(1).ok_or_else(|| anyhow::anyhow!("{run}: no rows"))?;
                    Ok((m[i], sd[i] / seeds[i].sqrt()))
                };
                let prior = Table::read(&r.join("sampler_zoo_prior.csv"))?;
                let predicted = summary_value(&prior, "run", "prior_ode_ve20", "predicted_mode_weight_1")?;
                let (ode, ode_se) = last("ode_exact")?;
                let (pc, pc_se) = last("pc_exact")?;
                let pass = (ode - predicted).abs() < 3.0 * ode_se
                    && (ode - 0.2).abs() > 3.0 * ode_se
                    && (pc - 0.2).abs() < 3.0 * pc_se;
                Ok(Outcome {
                    pass,
                    numbers: format!(
                        "ODE {} ± {} (SE) against the predicted {}; PC {} ± {}",
                        sig(ode, 4),
                        sig(ode_se, 1),
                        sig(predicted, 4),
                        sig(pc, 3),
                        sig(pc_se, 1)
                    ),
                })
            },
            tamper: |r| edit(r, "samplers_cost_mixture_summary.csv", &|c| c.text("run") == "pc_exact" && c.text("metric") == "mode_weight_1", "mean", &|_| 0.5),
        },
        Check {
            name: "of_ism_vs_kde_not_significant",
            claim: "on Old Faithful, ISM's held-out log-likelihood minus the Scott KDE's, paired by split, is not significant at the 5% level (two-sided paired t-test)",
            run: |r| {
                let t = Table::read(&r.join("old_faithful_likelihood.csv"))?;
                let per = |m: &str| -> Result<Vec<(f64, f64)>> {
                    let g = t.filter("method", m)?;
                    Ok(g.f64s("seed")?.into_iter().zip(g.f64s("heldout_ll")?).collect())
                };
                let p = crate::paper::paired_t(&per("ism")?, &per("kde_scott")?)?;
                Ok(Outcome {
                    pass: p.p > 0.05,
                    numbers: format!(
                        "t = {} on {} df, p = {}",
                        sig(p.t, 2),
                        p.df,
                        sig(p.p, 2)
                    ),
                })
            },
            tamper: |r| edit(r, "old_faithful_likelihood.csv", &|c| c.text("method") == "ism", "heldout_ll", &|c| c.num("heldout_ll") + 1.0),
        },
        Check {
            name: "ode_likelihood_to_solver_tolerance",
            claim: "on the analytic densities, for every density and schedule, the probability-flow ODE's log p (exact divergence) has a worst mean absolute error against the closed form below 1e-5 nats at the tightest rtol, at most 1% of its error at the loosest",
            run: |r| {
                let t = Table::read(&r.join("likelihood_accuracy_summary.csv"))?;
                let rt = t.f64s("rtol")?;
                let (tight, loose) = (
                    rt.iter().copied().fold(f64::INFINITY, f64::min),
                    rt.iter().copied().fold(0.0, f64::max),
                );
                let (dens, sch, err) = (t.strings("density")?, t.strings("schedule")?, t.f64s("worst_mean_abs_error")?);
                let mut pass = tight < loose;
                let (mut worst_tight, mut worst_loose, mut n) = (0.0f64, 0.0f64, 0);
                let mut combos: Vec<(String, String)> = (0..dens.len()).map(|i| (dens[i].clone(), sch[i].clone())).collect();
                combos.dedup();
                for (d, sc) in &combos {
                    let at = |x: f64| {
                        (0..dens.len())
                            .find(|&i| &dens[i] == d && &sch[i] == sc && rt[i] == x)
                            .map_or(f64::NAN, |i| err[i])
                    };
                    let (a, b) = (at(tight), at(loose));
                    pass &= a < 1e-5 && a <= 0.01 * b;
                    worst_tight = worst_tight.max(a);
                    worst_loose = worst_loose.max(b);
                    n += 1;
                }
                Ok(Outcome {
                    pass: pass && n > 0,
                    numbers: format!(
                        "worst over {n} densities and schedules: {} nats at rtol {} and {} at rtol {}",
                        sig(worst_tight, 2),
                        sig(tight, 1),
                        sig(worst_loose, 2),
                        sig(loose, 1)
                    ),
                })
            },
            tamper: |r| {
                let tight = Table::read(&r.join("likelihood_accuracy_summary.csv"))?
                    .f64s("rtol")?
                    .into_iter()
                    .fold(f64::INFINITY, f64::min);
                edit(r, "likelihood_accuracy_summary.csv", &|c| c.num("rtol") == tight && c.text("density") == "mixture", "worst_mean_abs_error", &|_| 1e-3)
            },
        },
        Check {
            name: "a_kde_beats_every_toy_network",
            claim: "in the toy zoo, on every toy and every seed, the network's held-out NLL through the ODE is higher than a cross-validated KDE's fitted to 2000 draws of the toy, and on every toy an EM mixture's mean NLL over seeds is lower than the network's",
            run: |r| {
                let t = Table::read(&r.join("toy_zoo.csv"))?;
                let mut pass = !t.rows.is_empty();
                let mut parts = vec![];
                for toy in t.distinct("toy")? {
                    let g = t.filter("toy", &toy)?;
                    let gap: Vec<f64> = g
                        .f64s("nll")?
                        .iter()
                        .zip(g.f64s("nll_kde")?)
                        .map(|(a, b)| a - b)
                        .collect();
                    pass &= gap.iter().all(|&d| d > 0.0);
                    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
                    pass &= mean(&g.f64s("nll_mixture")?) < mean(&g.f64s("nll")?);
                    let m = mean(&gap);
                    parts.push(format!("{toy} {}", sig(m, 2)));
                }
                Ok(Outcome {
                    pass,
                    numbers: format!("the network's NLL minus the KDE's, mean over seeds, in nats: {}", parts.join(", ")),
                })
            },
            tamper: |r| edit(r, "toy_zoo.csv", &|c| c.text("toy") == "rings", "nll_kde", &|c| c.num("nll") + 1.0),
        },
        Check {
            name: "the_fine_mmd_sees_the_rings",
            claim: "in the toy zoo, on every seed, the rings' MMD² at the median bandwidth is within 2 of its standard errors of 0 while at a tenth of it the MMD² is above 0 by more than 3 of its standard errors",
            run: |r| {
                let t = Table::read(&r.join("toy_zoo.csv"))?.filter("toy", "rings")?;
                let (m, mse) = (t.f64s("mmd2")?, t.f64s("mmd2_se")?);
                let (f, fse) = (t.f64s("mmd2_fine")?, t.f64s("mmd2_fine_se")?);
                let coarse = (0..m.len()).map(|i| (m[i] / mse[i]).abs()).fold(0.0, f64::max);
                let fine = (0..f.len()).map(|i| f[i] / fse[i]).fold(f64::INFINITY, f64::min);
                Ok(Outcome {
                    pass: !m.is_empty() && coarse < 2.0 && fine > 3.0,
                    numbers: format!(
                        "largest |z| of the median-bandwidth MMD² {} over {} seeds; smallest z at a tenth of the bandwidth {}",
                        sig(coarse, 2),
                        m.len(),
                        sig(fine, 2)
                    ),
                })
            },
            tamper: |r| edit(r, "toy_zoo.csv", &|c| c.text("toy") == "rings", "mmd2_fine", &|_| 0.0),
        },
        Check {
            name: "checkerboard_kl_largest",
            claim: "in the toy zoo, the checkerboard's KL(p ‖ p_θ), mean over seeds, is larger than 8gaussians' by more than 3 standard errors of the difference",
            run: |r| {
                let t = Table::read(&r.join("toy_zoo.csv"))?;
                let kl = |toy: &str| -> Result<(f64, f64)> {
                    let v: Vec<f64> = t.filter("toy", toy)?.f64s("kl")?;
                    let n = v.len() as f64;
                    let m = v.iter().sum::<f64>() / n;
                    let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
                    Ok((m, var / n))
                };
                let (c, cv) = kl("checkerboard")?;
                let (g, gv) = kl("8gaussians")?;
                Ok(Outcome {
                    pass: c - g > 3.0 * (cv + gv).sqrt(),
                    numbers: format!("{} against {} nats", sig(c, 3), sig(g, 3)),
                })
            },
            tamper: |r| edit(r, "toy_zoo.csv", &|c| c.text("toy") == "checkerboard", "kl", &|_| 0.1),
        },
        Check {
            name: "ode_density_integrates_to_one",
            claim: "an untrained network's probability-flow ODE density integrates to one within 1e-4 on the widest quadrature box, for every seed",
            run: |r| {
                let n = Table::read(&r.join("likelihood_accuracy_normalization.csv"))?;
                let (boxes, err) = (n.f64s("box_factor")?, n.f64s("integral_minus_one")?);
                let widest = boxes.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let worst = boxes
                    .iter()
                    .zip(&err)
                    .filter(|(b, _)| **b == widest)
                    .map(|(_, e)| e.abs())
                    .fold(0.0, f64::max);
                Ok(Outcome {
                    pass: !err.is_empty() && worst < 1e-4,
                    numbers: format!("|∫p_θ − 1| ≤ {} on a box {}× its samples' extent", sig(worst, 2), sig(widest, 2)),
                })
            },
            tamper: |r| edit(r, "likelihood_accuracy_normalization.csv", &|c| c.num("box_factor") >= 2.0, "integral_minus_one", &|_| 0.01),
        },
        Check {
            name: "structured_divergence_cheaper_than_naive",
            claim: "in the likelihood cost run, at the largest D timed, the structured exact divergence costs less per point than the naive one (D tangents)",
            run: |r| {
                let t = Table::read(&r.join("likelihood_accuracy_cost.csv"))?;
                let d = t.f64s("dim")?.into_iter().fold(0.0, f64::max);
                let g = t.filter("dim", &format!("{d}"))?;
                let s = summary_value(&g, "method", "exact_structured", "ratio_to_hutchinson")?;
                let n = summary_value(&g, "method", "exact_naive", "ratio_to_hutchinson")?;
                Ok(Outcome {
                    pass: s < n,
                    numbers: format!("at D = {d}: {}× a probe's time against {}×", sig(s, 2), sig(n, 2)),
                })
            },
            tamper: |r| edit(r, "likelihood_accuracy_cost.csv", &|c| c.text("method") == "exact_structured", "ratio_to_hutchinson", &|_| 1e3),
        },
        Check {
            name: "hutchinson_unbiased_rademacher_tighter",
            claim: "on the mixtures of every dimension, Hutchinson's log-likelihood minus the exact one, pooled over the dimensions (Σd/√Σse², for each probe and for both together), is not significant at the 1% level (|z| < 2.576), and the Rademacher probe's one-probe sd is below the Gaussian probe's at every D",
            run: |r| {
                let h = Table::read(&r.join("likelihood_accuracy_hutchinson.csv"))?;
                let pooled = |t: &Table| -> Result<(f64, usize, usize)> {
                    let (d, se) = (t.f64s("mean_difference")?, t.f64s("se_difference")?);
                    let z = d.iter().sum::<f64>() / se.iter().map(|s| s * s).sum::<f64>().sqrt();
                    Ok((z, d.iter().filter(|&&d| d < 0.0).count(), d.len()))
                };
                let (z_all, neg, n) = pooled(&h)?;
                let mut pass = n > 0 && z_all.abs() < 2.576;
                let mut per_probe = vec![];
                for probe in ["rademacher", "gaussian"] {
                    let (z, _, k) = pooled(&h.filter("probe", probe)?)?;
                    pass &= k > 0 && z.abs() < 2.576;
                    per_probe.push(format!("{probe} {}", sig(z, 2)));
                }
                let mut ratios = vec![];
                for d in h.distinct("dim")? {
                    let g = h.filter("dim", &d)?;
                    let rad = summary_value(&g, "probe", "rademacher", "one_probe_sd")?;
                    let gau = summary_value(&g, "probe", "gaussian", "one_probe_sd")?;
                    pass &= rad < gau;
                    ratios.push(format!("{}× at D = {d}", sig(gau / rad, 2)));
                }
                Ok(Outcome {
                    pass,
                    numbers: format!(
                        "pooled z = {} over the {n} rows, {neg} of which are negative (per probe: {}); the Gaussian probe's sd is {} the Rademacher probe's",
                        sig(z_all, 2),
                        per_probe.join(", "),
                        ratios.join(", ")
                    ),
                })
            },
            tamper: |r| edit(r, "likelihood_accuracy_hutchinson.csv", &|_| true, "mean_difference", &|c| -5.0 * c.num("se_difference")),
        },
    ]
    .into_iter()
    .chain(crate::solver_study::checks())
    .chain(crate::guidance_study::checks())
    .chain(crate::paths_study::checks())
    .collect()
}

/// Šidák's family-wise p-value of the largest of `n` independent |z| ~ |N(0, 1)|:
/// P(max |z| ≥ z_max) = 1 − (1 − 2Φ(−z_max))ⁿ.
///
/// ```
/// // One z at the two-sided 5% point: p = 0.05.
/// let p = scorelab_figures::checks::sidak_max_abs_z(1.959964, 1);
/// assert!((p - 0.05).abs() < 1e-6);
/// ```
pub fn sidak_max_abs_z(z_max: f64, n: usize) -> f64 {
    use statrs::distribution::{ContinuousCDF, Normal};
    let one = 2.0 * Normal::standard().cdf(-z_max.abs());
    1.0 - (1.0 - one).powi(n as i32)
}

/// Our `objective`'s step against JAX's same objective in the same-run comparison: passes when
/// ours is faster in every repeat at every D; the numbers are the range of the median ratios over
/// D and the worst single repeat.
fn faster_than_jax(r: &Path, objective: &str) -> Result<Outcome> {
    let runs = SameRun::read(&r.join(crate::cost::RUNS))?;
    let worst = every_repeat_below_one(&runs, (Scorelab, objective), (Jax, objective))?;
    let rs = ratios(&runs, (Scorelab, objective), (Jax, objective))?;
    let (lo, hi) = extremes(&rs);
    Ok(Outcome {
        pass: worst < 1.0,
        numbers: format!(
            "{}–{}× JAX's time (medians over repeats, by D; at most {}× in any repeat)",
            sig(lo, 2),
            sig(hi, 2),
            sig(worst, 2)
        ),
    })
}

/// The median ratio num/den of the same-run comparison at every D, as (D, ratio).
fn ratios(runs: &SameRun, num: (Side, &str), den: (Side, &str)) -> Result<Vec<(u32, f64)>> {
    crate::cost::DIMS
        .iter()
        .map(|&d| {
            runs.ratio(num, den, d)
                .map(|r| (d, r.0))
                .ok_or_else(|| anyhow::anyhow!("no {} / {} at D = {d}", num.1, den.1))
        })
        .collect()
}

/// The largest ratio num/den of any repeat at any D.
fn every_repeat_below_one(runs: &SameRun, num: (Side, &str), den: (Side, &str)) -> Result<f64> {
    let mut worst = f64::NEG_INFINITY;
    for &d in &crate::cost::DIMS {
        let r = runs
            .ratio(num, den, d)
            .ok_or_else(|| anyhow::anyhow!("no {} / {} at D = {d}", num.1, den.1))?;
        worst = worst.max(r.2);
    }
    Ok(worst)
}

fn extremes(rs: &[(u32, f64)]) -> (f64, f64) {
    rs.iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), r| {
            (a.min(r.1), b.max(r.1))
        })
}

fn dims_text(rs: &[(u32, f64)]) -> String {
    rs.iter()
        .map(|(d, r)| format!("D = {d}: {}", sig(*r, 2)))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The registered check called `name`.
    fn named(name: &str) -> Check {
        registry().into_iter().find(|c| c.name == name).unwrap()
    }

    fn results() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../results")
    }

    /// Every check passes on the committed results.
    #[test]
    fn every_check_passes_on_the_committed_results() {
        for c in registry() {
            let o = (c.run)(&results()).unwrap();
            assert!(o.pass, "{}: {}", c.name, o.numbers);
        }
    }

    /// Every check fails on a copy of the results its own tamper edited (and passes on the
    /// untouched copy, so the copy is complete): no check is one that cannot fail.
    #[test]
    fn every_check_fails_on_its_tampered_results() {
        fn copy_text(from: &Path, to: &Path) {
            std::fs::create_dir_all(to).unwrap();
            for e in std::fs::read_dir(from).unwrap() {
                let e = e.unwrap();
                let (src, dst) = (e.path(), to.join(e.file_name()));
                if src.is_dir() {
                    copy_text(&src, &dst);
                } else if matches!(
                    src.extension().and_then(|x| x.to_str()),
                    Some("csv" | "toml")
                ) && src.metadata().unwrap().len() < 2_000_000
                {
                    std::fs::copy(&src, &dst).unwrap();
                }
            }
        }
        let mut names = std::collections::BTreeSet::new();
        for c in registry() {
            assert!(names.insert(c.name), "{} is registered twice", c.name);
            let dir = tempfile::tempdir().unwrap();
            copy_text(&results(), dir.path());
            let before = (c.run)(dir.path()).unwrap();
            assert!(
                before.pass,
                "{} on the untampered copy: {}",
                c.name, before.numbers
            );
            (c.tamper)(dir.path()).unwrap();
            match (c.run)(dir.path()) {
                Ok(o) => assert!(
                    !o.pass,
                    "{} passes on its tampered results: {}",
                    c.name, o.numbers
                ),
                Err(e) => panic!(
                    "{}: the tamper broke the files instead of the claim: {e:#}",
                    c.name
                ),
            }
        }
    }

    /// The annealed minority weight's check pools the seeds' chains into one binomial z: five
    /// seeds of 1,280 chains at 0.2 + 0.015 give z = 0.015/√(0.16/6400) = 3, and at 0.2 + 0.005
    /// z = 1, which fails (a weight within its error of the truth is not "above" it).
    #[test]
    fn the_annealed_weight_check_pools_the_chains() {
        let check = named("annealed_minority_weight_above_truth");
        for (w, z, pass) in [(0.215, 3.0, true), (0.205, 1.0, false)] {
            let dir = tempfile::tempdir().unwrap();
            let se = (w * (1.0 - w) / 1280.0f64).sqrt();
            let mut csv = String::from(
                "run,sampler,score,seed,steps,score_evals,metric,value,se,p_value,target\n",
            );
            for seed in 1..=5 {
                csv.push_str(&format!("annealed_exact,annealed_langevin,exact,{seed},1000,1000,mode_weight_1,{w},{se},1,p\n"));
                csv.push_str(&format!(
                    "langevin,langevin,exact,{seed},1000,1000,mode_weight_1,0.5,{se},1,p\n"
                ));
            }
            std::fs::write(dir.path().join("ncsn_toy.csv"), csv).unwrap();
            let o = (check.run)(dir.path()).unwrap();
            assert_eq!(o.pass, pass, "{}", o.numbers);
            let shown: f64 = o
                .numbers
                .rsplit("z = ")
                .next()
                .unwrap()
                .split(' ')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            assert!(
                o.numbers.contains("6400 chains") && (shown - z).abs() < 0.01,
                "{}",
                o.numbers
            );
        }
    }

    /// The digits' ODE check fails as soon as one seed's paired difference is within 2 SEs of 0.
    #[test]
    fn the_digits_ode_check_needs_every_seed() {
        let check = named("independent_pixels_beat_the_digits_ode");
        for (third, pass) in [("-0.14,0.018", true), ("-0.03,0.018", false)] {
            let dir = tempfile::tempdir().unwrap();
            let csv = format!(
                "method,reference,seed,n_test,mean_difference,se_difference\n\
                 independent_pixels,ode_exact,1,359,-0.15,0.018\n\
                 gaussian,ode_exact,1,359,0.4,0.02\n\
                 independent_pixels,ode_exact,2,359,-0.13,0.015\n\
                 independent_pixels,ode_exact,3,359,{third}\n"
            );
            std::fs::write(dir.path().join("digits_likelihood_paired.csv"), csv).unwrap();
            let o = (check.run)(dir.path()).unwrap();
            assert_eq!(o.pass, pass, "{}", o.numbers);
        }
    }

    /// A tampered result fails its check, and a template naming that check does not render:
    /// the best network's distance raised to twice the floor's, and an inpainting accuracy
    /// lowered to the masked inputs'.
    #[test]
    fn a_tampered_result_fails_the_render() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let digits = std::fs::read_to_string(results().join("digits_summary.csv")).unwrap();
        let tampered: String = digits
            .lines()
            .map(|l| {
                if l.starts_with("edm_heun,") {
                    let mut c: Vec<String> = l.split(',').map(str::to_string).collect();
                    c[7] = "30".into();
                    c.join(",")
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        std::fs::write(d.join("digits_summary.csv"), tampered + "\n").unwrap();
        let inpaint =
            std::fs::read_to_string(results().join("digits_inpaint_summary.csv")).unwrap();
        let lowered: String = inpaint
            .lines()
            .map(|l| {
                if l.starts_with("lower_half,") {
                    let mut c: Vec<String> = l.split(',').map(str::to_string).collect();
                    c[2] = c[4].clone();
                    c.join(",")
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        std::fs::write(d.join("digits_inpaint_summary.csv"), lowered + "\n").unwrap();
        let v = values(d);
        for (name, want) in [
            (
                "best_digits_below_floor_nearer_training_images",
                "30.0 against the floor's",
            ),
            ("inpainting_beats_masked_inputs", "lower half"),
        ] {
            let e = crate::paper::render(&format!("a {{{{check:{name}}}}} b"), &v)
                .unwrap_err()
                .to_string();
            assert!(
                e.contains(&format!("check {name} fails")) && e.contains(want),
                "{e}"
            );
        }
        // Not strict (reproduce --quick): the failure is marked in place.
        let marked = crate::paper::render_with(
            "{{check:best_digits_below_floor_nearer_training_images}}",
            &v,
            false,
        )
        .unwrap();
        assert!(
            marked.starts_with("**[check best_digits_below_floor_nearer_training_images fails"),
            "{marked}"
        );
        // The untampered checks of that folder still render; a missing file fails by name.
        assert!(crate::paper::render("{{check:annealing_beats_single_level}}", &v).is_ok());
        let e = crate::paper::render("{{check:hutchinson_agrees_with_exact}}", &v)
            .unwrap_err()
            .to_string();
        assert!(e.contains("digits_likelihood_paired.csv"), "{e}");
    }

    /// The same-run cost checks read only `jacobian_cost_runs/`: slowing the structured trace at
    /// D = 512 in one repeat past JAX's jacrev fails both cost claims about it (the ratio to DSM
    /// by its median over repeats only once two repeats are slowed), and `{{assert:…}}` renders
    /// as nothing while its check passes.
    #[test]
    fn a_slowed_structured_trace_fails_the_cost_checks() {
        let dir = tempfile::tempdir().unwrap();
        let runs = dir.path().join(crate::cost::RUNS);
        std::fs::create_dir_all(&runs).unwrap();
        for e in std::fs::read_dir(results().join(crate::cost::RUNS)).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), runs.join(e.file_name())).unwrap();
        }
        let v = values(dir.path());
        assert_eq!(
            crate::paper::render("a{{assert:structured_trace_faster_than_jax_jacrev}}b", &v)
                .unwrap(),
            "ab"
        );
        assert!(v.contains_key("check:structured_trace_1_to_2_1x_dsm"));
        let slow = |r: usize| {
            let p = runs.join(format!("scorelab_{r}.csv"));
            let t = std::fs::read_to_string(&p).unwrap();
            let t: Vec<String> = t
                .lines()
                .map(|l| {
                    if l.starts_with("ism_structured,512,") {
                        let mut c: Vec<&str> = l.split(',').collect();
                        c[4] = "5000";
                        c.join(",")
                    } else {
                        l.to_string()
                    }
                })
                .collect();
            std::fs::write(&p, t.join("\n") + "\n").unwrap();
        };
        slow(1);
        let v = values(dir.path());
        let e = crate::paper::render("{{assert:structured_trace_faster_than_jax_jacrev}}", &v)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("check structured_trace_faster_than_jax_jacrev fails"),
            "{e}"
        );
        // One slow repeat of three leaves the median ratio to DSM in range.
        assert!(v.contains_key("check:structured_trace_1_to_2_1x_dsm"));
        slow(2);
        let v = values(dir.path());
        let e = crate::paper::render("{{check:structured_trace_1_to_2_1x_dsm}}", &v)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("check structured_trace_1_to_2_1x_dsm fails") && e.contains("D = 512: "),
            "{e}"
        );
    }

    /// The equal-time check holds by construction, and fails when the construction does not:
    /// a budget whose steps are not the rule applied to its measured costs, or a network that
    /// trained for other steps than its budget's. A slow wall clock (the equal-time row taking
    /// three times ISM's time) changes the numbers it reports, never the verdict.
    #[test]
    fn the_equal_time_check_tests_the_construction_not_the_wall_clock() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let copy = |rel: &str| {
            let to = d.join(rel);
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(results().join(rel), &to).unwrap();
        };
        for f in [
            "old_faithful_budget.csv",
            "old_faithful_timing.csv",
            "digits_budget.csv",
            "digits_timing.csv",
        ] {
            copy(f);
        }
        for (exp, method) in [
            ("old_faithful", "dsm_equal_time"),
            ("digits", "dsm_multi_equal_time"),
        ] {
            for e in std::fs::read_dir(results().join("models").join(exp)).unwrap() {
                let name = e.unwrap().file_name().to_string_lossy().into_owned();
                if name.starts_with(&format!("{method}_seed")) {
                    copy(&format!("models/{exp}/{name}/config.toml"));
                }
            }
        }
        let check = named("equal_time_budgets_by_construction");
        assert!((check.run)(d).unwrap().pass);
        let edit = |rel: &str, f: &dyn Fn(&str) -> String| {
            let p = d.join(rel);
            let t = std::fs::read_to_string(&p).unwrap();
            std::fs::write(&p, f(&t)).unwrap();
        };
        // The wall clock: dsm_equal_time's seconds tripled. Still a pass.
        edit("old_faithful_timing.csv", &|t| {
            t.lines()
                .map(|l| match l.strip_prefix("dsm_equal_time,") {
                    Some(rest) => {
                        let (seed, secs) = rest.split_once(',').unwrap();
                        format!(
                            "dsm_equal_time,{seed},{}",
                            3.0 * secs.parse::<f64>().unwrap()
                        )
                    }
                    None => l.to_string(),
                })
                .collect::<Vec<_>>()
                .join("\n")
                + "\n"
        });
        let o = (check.run)(d).unwrap();
        assert!(o.pass, "{}", o.numbers);
        // The budget's steps off the rule by one quantum: a failure.
        let budget = std::fs::read_to_string(d.join("old_faithful_budget.csv")).unwrap();
        edit("old_faithful_budget.csv", &|t| {
            let mut lines: Vec<String> = t.lines().map(str::to_string).collect();
            let mut c: Vec<String> = lines[1].split(',').map(str::to_string).collect();
            let steps: u64 = c[6].parse().unwrap();
            let reference: u64 = c[2].parse().unwrap();
            c[6] = (steps + reference / 20).to_string();
            lines[1] = c.join(",");
            lines.join("\n") + "\n"
        });
        assert!(!(check.run)(d).unwrap().pass);
        std::fs::write(d.join("old_faithful_budget.csv"), budget).unwrap();
        assert!((check.run)(d).unwrap().pass);
        // A network that trained for other steps than its budget: a failure.
        let cfg = std::fs::read_dir(d.join("models/digits"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path()
            .join("config.toml");
        let text = std::fs::read_to_string(&cfg).unwrap();
        let mut t: toml::Table = toml::from_str(&text).unwrap();
        let steps = t["train"]["steps"].as_integer().unwrap();
        t["train"]
            .as_table_mut()
            .unwrap()
            .insert("steps".into(), (steps + 1).into());
        std::fs::write(&cfg, toml::to_string(&t).unwrap()).unwrap();
        assert!(!(check.run)(d).unwrap().pass);
    }
}
