//! The paper's values and checks of the guidance study (`results/guidance_*.csv`, written by
//! `scorelab experiment --config paper/experiments/guidance.toml`).

use crate::checks::{edit, Check, Outcome};
use crate::paper::{pm, sig};
use crate::table::Table;
use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::path::Path;

/// The sampler names of the study's config, as the paper's table heads them.
const ANCESTRAL: &str = "euler_ancestral_512";

fn read(r: &Path, suffix: &str) -> Result<Table> {
    Table::read(&r.join(format!("guidance{suffix}.csv")))
}

/// (mean, sd, seeds) of one summary cell.
fn stat(
    s: &Table,
    target: &str,
    interval: &str,
    w: &str,
    sampler: &str,
    metric: &str,
) -> Result<(f64, f64, f64)> {
    let r = s
        .filter("target", target)?
        .filter("interval", interval)?
        .filter("weight", w)?
        .filter("sampler", sampler)?
        .filter("metric", metric)?;
    let f = |c: &str| -> Result<f64> {
        r.f64s(c)?.first().copied().with_context(|| {
            format!("guidance_summary.csv: no {target}/{interval}/{w}/{sampler}/{metric}")
        })
    };
    Ok((f("mean")?, f("sd")?, f("seeds")?))
}

fn mean(
    s: &Table,
    target: &str,
    interval: &str,
    w: &str,
    sampler: &str,
    metric: &str,
) -> Result<f64> {
    Ok(stat(s, target, interval, w, sampler, metric)?.0)
}

/// The class's first mode: its weight in `sampler`'s output (mean over seeds) and in π's.
fn first_mode(modes: &Table, target: &str, w: &str, sampler: &str) -> Result<(f64, f64)> {
    let m = modes
        .filter("target", target)?
        .filter("interval", "all")?
        .filter("weight", w)?;
    let first = m
        .strings("mode")?
        .first()
        .cloned()
        .context("guidance_modes.csv: no mode")?;
    let m = m.filter("mode", &first)?.filter("sampler", sampler)?;
    let avg = |v: Vec<f64>| v.iter().sum::<f64>() / v.len().max(1) as f64;
    Ok((avg(m.f64s("weight_q")?), avg(m.f64s("weight_pi")?)))
}

fn weights(s: &Table) -> Result<Vec<String>> {
    let mut w = s.distinct("weight")?;
    w.sort_by(|a, b| {
        a.parse::<f64>()
            .unwrap_or(0.0)
            .total_cmp(&b.parse::<f64>().unwrap_or(0.0))
    });
    Ok(w)
}

/// The paper's values of the guidance study.
///
/// # Errors
/// If the study's files are missing or malformed.
pub fn values(r: &Path) -> Result<BTreeMap<String, String>> {
    let mut v = BTreeMap::new();
    let s = read(r, "_summary")?;
    let modes = read(r, "_modes")?;
    // The dimension of the 8-D target: the length of its first mean.
    let first = crate::paper::config_value(r, "guidance:target.overlap8d.density.means#first")?;
    let dim = first.split(", ").count();
    v.insert("guidance_high_dim".into(), dim.to_string());
    let mut rows = vec![];
    for t in s.distinct("target")? {
        for w in weights(&s)? {
            let kl = stat(&s, &t, "all", &w, "exact_ode", "kl")?;
            let kl_lim = stat(&s, &t, "limited", &w, "exact_ode", "kl")?;
            let kl_c = stat(&s, &t, "all", &w, "exact_ode", "kl_conditional")?;
            let (q, p) = first_mode(&modes, &t, &w, "exact_ode")?;
            let (qa, _) = first_mode(&modes, &t, &w, ANCESTRAL)?;
            rows.push(vec![
                t.clone(),
                w.clone(),
                pm(kl.0, kl.1),
                pm(kl_lim.0, kl_lim.1),
                pm(kl_c.0, kl_c.1),
                sig(p, 3),
                sig(q, 3),
                sig(qa, 3),
                sig(mean(&s, &t, "all", &w, "exact_ode", "spread_ratio")?, 3),
                sig(mean(&s, &t, "all", &w, ANCESTRAL, "spread_ratio")?, 3),
            ]);
        }
    }
    v.insert(
        "table_guidance".into(),
        crate::paper::md_table(
            &[
                "target",
                "w",
                "KL(q ‖ π_w)",
                "same, limited interval",
                "KL(q ‖ p(·|c))",
                "π_w: mode 0",
                "ODE: mode 0",
                "Euler anc.: mode 0",
                "ODE: spread / π_w's",
                "Euler anc.: spread / π_w's",
            ],
            &rows,
        ),
    );
    Ok(v)
}

/// The checks of the guidance study.
pub fn checks() -> Vec<Check> {
    vec![
        Check {
            name: "guided_ode_does_not_sample_the_tilted_law",
            claim: "on every target and seed, the exact guided ODE's KL(q ‖ π_w) is within 0.005 nats of 0 at w = 0 (where q is p(·|c) up to the solver's tolerance and σ_min) and above 0 by more than 10 standard errors at every w ≥ 1",
            run: |r| {
                let t = read(r, "")?.filter("interval", "all")?.filter("sampler", "exact_ode")?.filter("metric", "kl")?;
                let (w, v, se, tg) = (t.f64s("weight")?, t.f64s("value")?, t.f64s("se")?, t.strings("target")?);
                let mut pass = !w.is_empty();
                let mut at_zero = 0.0f64;
                const ZERO: f64 = 0.005;
                let mut largest: BTreeMap<String, (f64, f64)> = BTreeMap::new();
                for i in 0..w.len() {
                    if w[i] == 0.0 {
                        pass &= v[i].abs() <= ZERO;
                        at_zero = at_zero.max(v[i].abs());
                    } else if w[i] >= 1.0 {
                        pass &= v[i] > 10.0 * se[i];
                    }
                    let e = largest.entry(tg[i].clone()).or_insert((f64::NEG_INFINITY, 0.0));
                    if w[i] >= e.0 {
                        *e = (w[i], v[i]);
                    }
                }
                let parts: Vec<String> = largest.iter().map(|(t, (w, v))| format!("{t} {} nats at w = {w}", sig(*v, 2))).collect();
                Ok(Outcome { pass, numbers: format!("|KL| at w = 0 at most {} nats; {}", sig(at_zero, 2), parts.join(", ")) })
            },
            tamper: |r| edit(r, "guidance.csv", &|c| c.text("metric") == "kl" && c.text("weight") == "0" && c.text("interval") == "all", "value", &|_| 0.01),
        },
        Check {
            name: "limited_interval_nearer_the_tilted_law",
            claim: "guidance only in σ̃ ∈ [0.28, 5.42] gives the exact ODE a smaller mean KL(q ‖ π_w) than guidance everywhere at every w > 0, on every target",
            run: |r| {
                let s = read(r, "_summary")?;
                let mut pass = true;
                let mut parts = vec![];
                for t in s.distinct("target")? {
                    for w in weights(&s)?.into_iter().filter(|w| w != "0") {
                        let (a, l) = (mean(&s, &t, "all", &w, "exact_ode", "kl")?, mean(&s, &t, "limited", &w, "exact_ode", "kl")?);
                        pass &= l < a;
                        parts.push(format!("{t} w = {w}: {} against {}", sig(l, 2), sig(a, 2)));
                    }
                }
                Ok(Outcome { pass, numbers: parts.join("; ") })
            },
            tamper: |r| edit(r, "guidance_summary.csv", &|c| c.text("metric") == "kl" && c.text("interval") == "limited" && c.text("weight") == "2", "mean", &|_| 10.0),
        },
        Check {
            name: "guided_ode_narrower_and_off_weight",
            claim: "at every w ≥ 1 on every target, the exact guided ODE's modes are narrower than π_w's (spread ratio below 1) and the class's first mode holds more mass than under π_w",
            run: |r| {
                let s = read(r, "_summary")?;
                let modes = read(r, "_modes")?;
                let mut pass = true;
                let mut parts = vec![];
                for t in s.distinct("target")? {
                    for w in weights(&s)?.into_iter().filter(|w| w.parse::<f64>().unwrap_or(0.0) >= 1.0) {
                        let ratio = mean(&s, &t, "all", &w, "exact_ode", "spread_ratio")?;
                        let (q, p) = first_mode(&modes, &t, &w, "exact_ode")?;
                        pass &= ratio < 1.0 && q > p;
                        parts.push(format!("{t} w = {w}: spread {}, mode 0 {} against {}", sig(ratio, 3), sig(q, 3), sig(p, 3)));
                    }
                }
                Ok(Outcome { pass, numbers: parts.join("; ") })
            },
            tamper: |r| edit(r, "guidance_summary.csv", &|c| c.text("metric") == "spread_ratio" && c.text("sampler") == "exact_ode" && c.text("weight") == "4", "mean", &|_| 1.05),
        },
        Check {
            name: "ancestral_nearer_the_tilted_law_than_the_ode",
            claim: "at the largest w, on every target, Euler ancestral's mode-weight error against π_w and its |1 − spread ratio| are both smaller than the exact guided ODE's",
            run: |r| {
                let s = read(r, "_summary")?;
                let w = weights(&s)?.last().cloned().context("no weights")?;
                let mut pass = true;
                let mut parts = vec![];
                for t in s.distinct("target")? {
                    let we = |m: &str| mean(&s, &t, "all", &w, m, "weight_error");
                    let sp = |m: &str| -> Result<f64> { Ok((1.0 - mean(&s, &t, "all", &w, m, "spread_ratio")?).abs()) };
                    let (wa, wo, sa, so) = (we(ANCESTRAL)?, we("exact_ode")?, sp(ANCESTRAL)?, sp("exact_ode")?);
                    pass &= wa < wo && sa < so;
                    parts.push(format!("{t}: weight error {} against {}, |1 − spread ratio| {} against {}", sig(wa, 2), sig(wo, 2), sig(sa, 2), sig(so, 2)));
                }
                Ok(Outcome { pass, numbers: format!("w = {w}: {}", parts.join("; ")) })
            },
            tamper: |r| edit(r, "guidance_summary.csv", &|c| c.text("metric") == "weight_error" && c.text("sampler") == ANCESTRAL && c.text("weight") == "4" && c.text("interval") == "all", "mean", &|_| 0.5),
        },
        Check {
            name: "tilted_normaliser_by_monte_carlo_matches_quadrature",
            claim: "in 2-D, the Monte Carlo log Z_w of the tilted law agrees with tensor Gauss–Legendre quadrature within 4 of its standard errors, at every w and seed",
            run: |r| {
                let t = read(r, "_tilted")?;
                let (q, m, se) = (t.f64s("log_z_quadrature")?, t.f64s("log_z_mc")?, t.f64s("log_z_mc_se")?);
                let mut pass = false;
                let mut worst = 0.0f64;
                let mut all = true;
                for i in 0..q.len() {
                    if !q[i].is_finite() {
                        continue;
                    }
                    pass = true;
                    let z = if se[i] > 0.0 { (m[i] - q[i]).abs() / se[i] } else { (m[i] - q[i]).abs() / 1e-12 };
                    all &= z <= 4.0;
                    worst = worst.max(if se[i] > 0.0 { z } else { 0.0 });
                }
                Ok(Outcome { pass: pass && all, numbers: format!("largest |difference|/SE {}", sig(worst, 2)) })
            },
            tamper: |r| edit(r, "guidance_tilted.csv", &|c| c.text("weight") == "2" && !c.text("log_z_quadrature").is_empty(), "log_z_mc", &|c| c.num("log_z_quadrature") + 10.0 * c.num("log_z_mc_se")),
        },
    ]
}
