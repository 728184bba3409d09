//! The paper's values and checks of the straight-path comparison (`results/straight_paths_*`,
//! written by `scorelab experiment --config paper/experiments/straight_paths_{ncsn,8g}.toml`).

use crate::checks::{edit, Check, Outcome};
use crate::paper::sig;
use crate::table::Table;
use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::path::Path;

/// The two experiments: (file stem, the name the paper gives the target).
pub(crate) const TARGETS: &[(&str, &str)] = &[
    ("straight_paths_ncsn", "NCSN mixture"),
    ("straight_paths_8g", "8gaussians"),
];

/// The runs in the paper's order, with what each is.
pub(crate) const RUNS: &[(&str, &str)] = &[
    ("dsm_edm_euler", "DSM, EDM path, Euler"),
    ("dsm_edm_2m", "DSM, EDM path, 2M"),
    ("dsm_linear_euler", "DSM, linear path, Euler"),
    ("fm_linear_euler", "FM, linear path, Euler"),
    ("fm_linear_2m", "FM, linear path, 2M"),
    ("fm_edm_euler", "FM, EDM path, Euler"),
    ("fm_ot_linear_euler", "FM-OT, linear path, Euler"),
    ("fm_ot_linear_2m", "FM-OT, linear path, 2M"),
];

fn summary(r: &Path, stem: &str) -> Result<Table> {
    Table::read(&r.join(format!("{stem}_summary.csv")))
}

/// (evaluations per chain, mean) of a run's metric along its sweep.
pub(crate) fn sweep(t: &Table, run: &str, metric: &str) -> Result<Vec<(f64, f64)>> {
    let r = t.filter("run", run)?.filter("metric", metric)?;
    Ok(r.f64s("score_evals")?
        .into_iter()
        .zip(r.f64s("mean")?)
        .collect())
}

/// The paper's values of the comparison.
///
/// # Errors
/// If the files are missing or malformed.
pub fn values(r: &Path) -> Result<BTreeMap<String, String>> {
    let mut v = BTreeMap::new();
    for (stem, _) in TARGETS {
        let t = summary(r, stem)?;
        let mut rows = vec![];
        let mut header_nfe: Vec<String> = vec![];
        for (run, what) in RUNS {
            let s = sweep(&t, run, "mmd2")?;
            if header_nfe.is_empty() {
                header_nfe = (1..=s.len()).map(|k| format!("budget {k}")).collect();
            }
            let w = sweep(&t, run, "mode_weight_1")?;
            let mut row = vec![what.to_string()];
            row.extend(s.iter().map(|q| format!("{} ({})", sig(q.1, 2), q.0)));
            row.push(sig(w.last().map_or(f64::NAN, |q| q.1), 3));
            rows.push(row);
        }
        let floor = sweep(&t, "exact_samples", "mmd2")?;
        let wfloor = sweep(&t, "exact_samples", "mode_weight_1")?;
        let mut header: Vec<&str> = vec!["network, path, sampler"];
        header.extend(header_nfe.iter().map(String::as_str));
        header.push("mode 1's weight, largest budget");
        v.insert(
            format!("table_{stem}"),
            crate::paper::md_table(&header, &rows),
        );
        v.insert(
            format!("{stem}_floor"),
            sig(floor.first().map_or(f64::NAN, |q| q.1), 2),
        );
        v.insert(
            format!("{stem}_weight_exact"),
            sig(wfloor.first().map_or(f64::NAN, |q| q.1), 3),
        );
    }
    Ok(v)
}

/// The true weight of component 1 of an experiment's base density, from its config.
fn true_weight(r: &Path, stem: &str) -> Result<f64> {
    let weights = crate::paper::config_value(r, &format!("{stem}:base.density.weights"))?;
    weights
        .split(", ")
        .nth(1)
        .context("no base.density.weights[1]")?
        .parse()
        .context("base.density.weights[1] is not a number")
}

/// The checks of the comparison.
pub fn checks() -> Vec<Check> {
    vec![
        Check {
            name: "ot_coupling_best_at_the_smallest_budget",
            claim: "on both targets, at the smallest budget, the OT-coupled flow-matching network sampled by Euler on its linear path has a lower MMD² to p than every other network, path and sampler at their smallest budget",
            run: |r| {
                let mut pass = true;
                let mut parts = vec![];
                for (stem, name) in TARGETS {
                    let t = summary(r, stem)?;
                    let first = |run: &str| -> Result<f64> { sweep(&t, run, "mmd2")?.first().map(|q| q.1).context("empty sweep") };
                    let ot = first("fm_ot_linear_euler")?;
                    let mut best_other = f64::INFINITY;
                    for (run, _) in RUNS.iter().filter(|(r, _)| *r != "fm_ot_linear_euler" && *r != "fm_ot_linear_2m") {
                        best_other = best_other.min(first(run)?);
                    }
                    pass &= ot < best_other;
                    parts.push(format!("{name}: {} against {}", sig(ot, 2), sig(best_other, 2)));
                }
                Ok(Outcome { pass, numbers: parts.join("; ") })
            },
            tamper: |r| edit(r, "straight_paths_8g_summary.csv", &|c| c.text("run") == "fm_ot_linear_euler" && c.text("metric") == "mmd2" && c.text("steps") == "2", "mean", &|_| 5.0),
        },
        Check {
            name: "independent_fm_no_better_at_small_budgets",
            claim: "on both targets, at the two smallest budgets, the independent-coupling flow-matching network's Euler samples on the linear path have an MMD² to p no lower than the DSM network's on the same path",
            run: |r| {
                let mut pass = true;
                let mut parts = vec![];
                for (stem, name) in TARGETS {
                    let t = summary(r, stem)?;
                    let (fm, dsm) = (sweep(&t, "fm_linear_euler", "mmd2")?, sweep(&t, "dsm_linear_euler", "mmd2")?);
                    for k in 0..2.min(fm.len()) {
                        pass &= fm[k].1 >= dsm[k].1;
                        parts.push(format!("{name} at {}: {} against {}", fm[k].0, sig(fm[k].1, 2), sig(dsm[k].1, 2)));
                    }
                }
                Ok(Outcome { pass, numbers: parts.join("; ") })
            },
            tamper: |r| edit(r, "straight_paths_ncsn_summary.csv", &|c| c.text("run") == "fm_linear_euler" && c.text("metric") == "mmd2" && c.text("steps") == "2", "mean", &|_| 0.01),
        },
        Check {
            name: "ot_coupling_best_at_the_largest_budget",
            claim: "on both targets, at the largest budget, an OT-coupled flow-matching run has the lowest MMD² to p of all runs",
            run: |r| {
                let mut pass = true;
                let mut parts = vec![];
                for (stem, name) in TARGETS {
                    let t = summary(r, stem)?;
                    let last = |run: &str| -> Result<f64> { sweep(&t, run, "mmd2")?.last().map(|q| q.1).context("empty sweep") };
                    let (mut ot, mut other) = (f64::INFINITY, f64::INFINITY);
                    for (run, _) in RUNS {
                        let v = last(run)?;
                        if run.starts_with("fm_ot") {
                            ot = ot.min(v);
                        } else {
                            other = other.min(v);
                        }
                    }
                    pass &= ot < other;
                    parts.push(format!("{name}: {} against {}", sig(ot, 2), sig(other, 2)));
                }
                Ok(Outcome { pass, numbers: parts.join("; ") })
            },
            tamper: |r| edit(r, "straight_paths_8g_summary.csv", &|c| c.text("run").starts_with("fm_ot") && c.text("metric") == "mmd2" && c.text("steps") == "32", "mean", &|_| 1.0),
        },
        Check {
            name: "dsm_network_misweights_the_ncsn_modes",
            claim: "on the NCSN mixture at the largest budget, every DSM run's minority weight is farther from the true weight than every flow-matching run's",
            run: |r| {
                let stem = "straight_paths_ncsn";
                let t = summary(r, stem)?;
                let truth = true_weight(r, stem)?;
                let last = |run: &str| -> Result<f64> { Ok((sweep(&t, run, "mode_weight_1")?.last().context("empty sweep")?.1 - truth).abs()) };
                let (mut dsm_least, mut fm_most) = (f64::INFINITY, 0.0f64);
                for (run, _) in RUNS {
                    let e = last(run)?;
                    if run.starts_with("dsm") {
                        dsm_least = dsm_least.min(e);
                    } else {
                        fm_most = fm_most.max(e);
                    }
                }
                Ok(Outcome {
                    pass: dsm_least > fm_most,
                    numbers: format!("|weight − {truth}|: DSM at least {}, flow matching at most {}", sig(dsm_least, 2), sig(fm_most, 2)),
                })
            },
            tamper: |r| edit(r, "straight_paths_ncsn_summary.csv", &|c| c.text("run") == "dsm_edm_euler" && c.text("metric") == "mode_weight_1", "mean", &|_| 0.2),
        },
    ]
}
