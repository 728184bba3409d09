//! `paper/paper.md` from `paper/paper.template.md`: every number and table of the paper is read
//! from the result CSVs here, and the template names them as `{{name}}`.
//!
//! [`values`] computes the named values (single numbers such as `of_ll_ism`, and Markdown tables
//! such as `table_old_faithful`); [`render`] substitutes them and refuses a name it does not know,
//! so the paper can never show a number that no file backs.
//!
//! ```
//! let mut v = std::collections::BTreeMap::new();
//! v.insert("x".to_string(), "4.2".to_string());
//! assert_eq!(scorelab_figures::paper::render("x = {{x}}", &v).unwrap(), "x = 4.2");
//! assert!(scorelab_figures::paper::render("{{y}}", &v).is_err());
//! ```

use crate::plot::mean_sd;
use crate::Table;
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::path::Path;

/// `v` to `sig` significant digits: fixed notation for 1e-3 ≤ |v| < 1e5, else scientific.
pub fn sig(v: f64, sig: usize) -> String {
    if !v.is_finite() {
        return "—".into();
    }
    let a = v.abs();
    if a == 0.0 {
        return "0".into();
    }
    if !(1e-3..1e5).contains(&a) {
        return format!("{:.*e}", sig.saturating_sub(1), v);
    }
    let decimals = (sig as i32 - 1 - a.log10().floor() as i32).max(0) as usize;
    format!("{v:.decimals$}")
}

/// "m ± sd" with the sd to two significant digits and m to the same decimals.
pub fn pm(m: f64, sd: f64) -> String {
    if !sd.is_finite() || sd == 0.0 {
        return sig(m, 3);
    }
    if !(1e-3..1e5).contains(&m.abs().max(sd)) {
        return format!("{m:.2e} ± {sd:.1e}");
    }
    let decimals = (1 - sd.log10().floor() as i32).max(0) as usize;
    format!("{m:.decimals$} ± {sd:.decimals$}")
}

/// Substitutes every `{{name}}` of `template` by its value; `{{check:NAME}}` by the numbers of a
/// passing check ([`crate::checks`]); `{{assert:NAME}}` by nothing when the check passes (it guards
/// a sentence whose numbers are given otherwise).
///
/// # Errors
/// If the template names a check that fails (all such checks are listed with their numbers), a
/// value that `values` does not have (all such names are listed), or a `{{` is not closed.
pub fn render(template: &str, values: &BTreeMap<String, String>) -> Result<String> {
    render_with(template, values, true)
}

/// [`render`], or with `strict = false` a failing check rendered in place as a marked note
/// (`reproduce --quick`, whose reduced runs are not the paper's results) instead of refused.
///
/// # Errors
/// As [`render`] (failing checks only when `strict`).
pub fn render_with(
    template: &str,
    values: &BTreeMap<String, String>,
    strict: bool,
) -> Result<String> {
    let mut out = String::with_capacity(template.len() * 2);
    let mut rest = template;
    let mut unknown = vec![];
    let mut failures = vec![];
    while let Some(i) = rest.find("{{") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let Some(j) = after.find("}}") else {
            bail!(
                "an unclosed {{{{ at …{}",
                &rest[i..(i + 40).min(rest.len())]
            );
        };
        // `{{assert:NAME}}`: the check guards the sentence it sits in and renders as nothing.
        let raw = after[..j].trim();
        let (name, silent) = match raw.strip_prefix("assert:") {
            Some(c) => (format!("check:{c}"), true),
            None => (raw.to_string(), false),
        };
        let name = name.as_str();
        let failed = name.strip_prefix("check:").and_then(|c| {
            values
                .get(&format!("{}{c}", crate::checks::FAILED))
                .map(|n| (c, n))
        });
        match (values.get(name), failed) {
            (Some(_), _) if silent => {}
            (Some(v), _) => out.push_str(v),
            (None, Some((c, numbers))) if !strict => out.push_str(&format!(
                "**[check {c} fails in these results: {numbers}]**"
            )),
            (None, Some((c, numbers))) => failures.push(format!("check {c} fails: {numbers}")),
            (None, None) => unknown.push(name.to_string()),
        }
        rest = &after[j + 2..];
    }
    out.push_str(rest);
    if !failures.is_empty() {
        bail!("the results contradict the text: {}", failures.join("; "));
    }
    if !unknown.is_empty() {
        bail!(
            "the template names values no result file gives: {}",
            unknown.join(", ")
        );
    }
    Ok(out)
}

/// A paired t-test over splits (two-sided).
pub(crate) struct Paired {
    /// Mean of the differences.
    pub mean: f64,
    /// Their sample sd.
    pub sd: f64,
    /// The t statistic.
    pub t: f64,
    /// Its degrees of freedom.
    pub df: usize,
    /// Its two-sided p-value.
    pub p: f64,
}

impl Paired {
    fn cell(&self) -> String {
        format!(
            "{}, t = {} ({} df), p = {}",
            pm(self.mean, self.sd),
            sig(self.t, 2),
            self.df,
            sig(self.p, 2)
        )
    }
}

/// The paired t-test of a − b over the seeds both have: t = mean/(sd/√n) on n − 1 degrees of
/// freedom, p = 2·(1 − F_t(|t|)) with Student's t distribution (statrs).
pub(crate) fn paired_t(a: &[(f64, f64)], b: &[(f64, f64)]) -> Result<Paired> {
    use statrs::distribution::{ContinuousCDF, StudentsT};
    let d: Vec<f64> = a
        .iter()
        .filter_map(|(s, x)| b.iter().find(|(t, _)| t == s).map(|(_, y)| x - y))
        .collect();
    if d.len() < 2 {
        bail!("a paired test needs two common seeds, got {}", d.len());
    }
    let (mean, sd) = mean_sd(&d);
    let df = d.len() - 1;
    let t = mean / (sd / (d.len() as f64).sqrt());
    let dist = StudentsT::new(0.0, 1.0, df as f64).context("Student's t")?;
    Ok(Paired {
        mean,
        sd,
        t,
        df,
        p: 2.0 * (1.0 - dist.cdf(t.abs())),
    })
}

/// A Markdown table: a header row and right-aligned number columns after the first.
pub(crate) fn md_table(header: &[&str], rows: &[Vec<String>]) -> String {
    md(header, rows)
}

/// A Markdown table.
fn md(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut s = format!("| {} |\n", header.join(" | "));
    s.push_str(&format!(
        "|{}\n",
        header
            .iter()
            .enumerate()
            .map(|(i, _)| if i == 0 { " --- |" } else { " ---: |" })
            .collect::<String>()
    ));
    for r in rows {
        s.push_str(&format!("| {} |\n", r.join(" | ")));
    }
    s
}

/// The distinct MMD² bandwidths of a samplers summary `t`, in order of appearance: one when the
/// experiment fixes `mmd_bandwidth`.
pub(crate) fn mmd_bandwidths(t: &Table) -> Result<Vec<String>> {
    let mut out: Vec<String> = vec![];
    for b in t.filter("metric", "mmd_bandwidth")?.f64s("mean")? {
        let b = format!("{b}");
        if !out.contains(&b) {
            out.push(b);
        }
    }
    Ok(out)
}

/// The first value of column `col` in the rows where `key` = `value`.
fn one(t: &Table, key: &str, value: &str, col: &str) -> Result<f64> {
    t.filter(key, value)?
        .f64s(col)?
        .first()
        .copied()
        .with_context(|| format!("{}: no row with {key} = {value}", t.path.display()))
}

/// Every setting of every experiment as it ran: each leaf of `results/NAME.config.toml` (the
/// config an experiment wrote beside its results) as `cfg:NAME:dotted.path`, so that the paper
/// renders a setting (a network's widths, a step count) instead of typing it. Numbers render as
/// written (`0.002`, `400`; a whole float without its `.0`), strings as they are, arrays as their
/// elements joined by `, ` (`hidden` arrays by `-`, as in "64-64"), and every array's length as
/// `cfg:NAME:dotted.path#len` (and its ends as `#first` and `#last`); an array of tables (`[[objective]]`) is walked element by element,
/// each under its `name` key (else its index). The provenance table `[run_info]` is left out.
///
/// ```
/// let dir = tempfile::tempdir()?;
/// std::fs::write(
///     dir.path().join("fit.config.toml"),
///     "seeds = [1, 2, 3]\n[model]\nhidden = [64, 64]\n[train]\nlr = 0.002\nbox = 6.0\n",
/// )?;
/// let v = scorelab_figures::paper::config_values(dir.path())?;
/// assert_eq!(v["cfg:fit:model.hidden"], "64-64");
/// assert_eq!(v["cfg:fit:seeds#len"], "3");
/// assert_eq!(v["cfg:fit:train.lr"], "0.002");
/// assert_eq!(v["cfg:fit:train.box"], "6");
/// # Ok::<(), anyhow::Error>(())
/// ```
///
/// # Errors
/// If `results` cannot be listed or a config does not parse (the message names it).
pub fn config_values(results: &Path) -> Result<BTreeMap<String, String>> {
    fn leaf(v: &toml::Value, key: &str) -> String {
        match v {
            toml::Value::Float(f) => format!("{f}"),
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::String(s) => s.clone(),
            toml::Value::Array(a) => a
                .iter()
                .map(|e| leaf(e, key))
                .collect::<Vec<_>>()
                .join(if key == "hidden" { "-" } else { ", " }),
            other => other.to_string(),
        }
    }
    fn walk(prefix: &str, t: &toml::Value, out: &mut BTreeMap<String, String>) {
        let Some(t) = t.as_table() else { return };
        for (k, v) in t {
            let path = format!("{prefix}{k}");
            match v {
                toml::Value::Table(_) if k != "run_info" => walk(&format!("{path}."), v, out),
                toml::Value::Table(_) => {}
                // An array of tables ([[objective]]): each under its `name`, else its index.
                toml::Value::Array(a) if !a.is_empty() && a.iter().all(toml::Value::is_table) => {
                    out.insert(format!("{path}#len"), a.len().to_string());
                    for (i, e) in a.iter().enumerate() {
                        let key = e
                            .get("name")
                            .and_then(toml::Value::as_str)
                            .map_or(i.to_string(), str::to_string);
                        walk(&format!("{path}.{key}."), e, out);
                    }
                }
                toml::Value::Array(a) => {
                    out.insert(format!("{path}#len"), a.len().to_string());
                    if let (Some(first), Some(last)) = (a.first(), a.last()) {
                        out.insert(format!("{path}#first"), leaf(first, k));
                        out.insert(format!("{path}#last"), leaf(last, k));
                    }
                    out.insert(path, leaf(v, k));
                }
                _ => {
                    out.insert(path, leaf(v, k));
                }
            }
        }
    }
    let mut out = BTreeMap::new();
    let mut entries: Vec<_> = std::fs::read_dir(results)
        .with_context(|| format!("cannot list {}", results.display()))?
        .collect::<std::io::Result<_>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(stem) = name.strip_suffix(".config.toml") else {
            continue;
        };
        let text = std::fs::read_to_string(e.path())?;
        let t: toml::Value =
            toml::from_str(&text).with_context(|| format!("{}", e.path().display()))?;
        walk(&format!("cfg:{stem}:"), &t, &mut out);
    }
    Ok(out)
}

/// One setting of an experiment's written config, as [`config_values`] renders it
/// (`key` = `NAME:dotted.path`, with `#len`, `#first` or `#last` as there).
///
/// # Errors
/// As [`config_values`], or when the config has no such setting.
pub(crate) fn config_value(results: &Path, key: &str) -> Result<String> {
    config_values(results)?
        .remove(&format!("cfg:{key}"))
        .with_context(|| format!("{}: no config setting {key}", results.display()))
}

/// Every named value and table of the paper, from the CSVs in `results`.
///
/// # Errors
/// If a file the paper needs is missing or malformed (the message names it).
pub fn values(results: &Path) -> Result<BTreeMap<String, String>> {
    let mut v = crate::checks::values(results);
    v.extend(config_values(results)?);
    v.extend(crate::solver_study::values(results)?);
    v.extend(crate::guidance_study::values(results)?);
    v.extend(crate::paths_study::values(results)?);
    let read = |name: &str| Table::read(&results.join(name));
    // The equivalence audit.
    {
        let t = read("equivalence.csv")?;
        let dens = t.distinct("density")?;
        let z = t.f64s("z_score")?;
        let g = t.f64s("grad_rel_diff")?;
        // The θ-gradient residual after ∇_θ B: its calibrated p-value (Bonferroni over θ).
        let gp = t.f64s("grad_residual_p")?;
        let c = t.f64s("constant")?;
        let all = t.strings("density")?;
        let mut rows = vec![];
        for d in &dens {
            let idx: Vec<usize> = (0..all.len()).filter(|&i| &all[i] == d).collect();
            let zmax = idx.iter().map(|&i| z[i].abs()).fold(0.0, f64::max);
            let gmax = idx.iter().map(|&i| g[i]).fold(0.0, f64::max);
            let gpmin = idx
                .iter()
                .map(|&i| gp[i])
                .filter(|v| v.is_finite())
                .fold(f64::INFINITY, f64::min);
            // C differs between the cases of one density (its dimension, its parameters): every
            // distinct value, in the order of the cases.
            let mut cs: Vec<String> = vec![];
            for &i in &idx {
                let c = sig(c[i], 4);
                if !cs.contains(&c) {
                    cs.push(c);
                }
            }
            rows.push(vec![
                d.clone(),
                idx.len().to_string(),
                cs.join(", "),
                sig(zmax, 2),
                sig(gmax, 2),
                if gpmin.is_finite() {
                    sig(gpmin, 2)
                } else {
                    "—".into()
                },
            ]);
        }
        v.insert(
            "table_equivalence".into(),
            md(
                &[
                    "density",
                    "cases",
                    "C (each distinct value)",
                    "max |z|",
                    "max θ-gradient rel. diff.",
                    "least p of the residual after ∇_θB",
                ],
                &rows,
            ),
        );
        v.insert("eq_cases".into(), all.len().to_string());
        // The θ-gradients: equal where p vanishes at infinity; on the half-normal the boundary
        // term p(0)s_θ(0) depends on θ, so they must differ.
        let grad_max = |keep: &dyn Fn(&str) -> bool| {
            (0..all.len())
                .filter(|&i| keep(&all[i]))
                .map(|i| g[i])
                .fold(0.0, f64::max)
        };
        v.insert(
            "eq_grad_max_smooth".into(),
            sig(grad_max(&|d| d != "half_normal"), 2),
        );
        v.insert(
            "eq_grad_half_normal".into(),
            sig(grad_max(&|d| d == "half_normal"), 2),
        );
        v.insert(
            "audit_gradient_batches".into(),
            t.strings("grad_batches")?
                .into_iter()
                .find(|b| !b.is_empty())
                .context("equivalence.csv: no case with a gradient audit")?,
        );
        let zmax = z.iter().map(|a| a.abs()).fold(0.0, f64::max);
        v.insert("eq_max_z".into(), sig(zmax, 2));
        v.insert(
            "eq_max_z_p".into(),
            sig(crate::checks::sidak_max_abs_z(zmax, z.len()), 2),
        );
        let m = read("equivalence_models.csv")?;
        v.insert("eqm_cases".into(), m.rows.len().to_string());
        let h = m.filter("density", "half_normal")?;
        let (gap, c, b) = (
            h.f64s("gap")?,
            h.f64s("constant")?,
            h.f64s("boundary_term")?,
        );
        let se = h.f64s("gap_se")?;
        let worst = (0..gap.len())
            .map(|i| ((gap[i] - c[i] - b[i]) / se[i]).abs())
            .fold(0.0, f64::max);
        v.insert("eqm_half_models".into(), gap.len().to_string());
        // The same identity by quadrature: deterministic, exact to rounding.
        let (eq, iq) = (h.f64s("esm_quad")?, h.f64s("ism_quad")?);
        let quad = (0..gap.len())
            .map(|i| (eq[i] - iq[i] - c[i] - b[i]).abs())
            .fold(0.0, f64::max);
        v.insert("eqm_half_quad".into(), format!("{quad:.1e}"));
        v.insert("eqm_half_max_z".into(), sig(worst, 2));
    }
    // Training lock-step.
    {
        let t = read("models/train_mixture_ism/loss.csv")?;
        let esm = t.f64s("esm")?;
        let ism = t.f64s("ism")?;
        let relative = t.f64s("relative_fisher")?;
        let c = esm[0] / relative[0];
        let dev = (0..esm.len())
            .map(|i| (esm[i] - ism[i] - c).abs())
            .fold(0.0, f64::max);
        v.insert("lock_c".into(), sig(c, 4));
        // The evaluation points, as the run's written config gives them.
        let cfg: toml::Value = toml::from_str(&std::fs::read_to_string(
            results.join("models/train_mixture_ism/config.toml"),
        )?)?;
        v.insert(
            "lock_points".into(),
            cfg.get("train")
                .and_then(|t| t.get("eval_batch"))
                .and_then(toml::Value::as_integer)
                .context("models/train_mixture_ism/config.toml: no train.eval_batch")?
                .to_string(),
        );
        v.insert("lock_max_dev".into(), sig(dev, 2));
        v.insert("lock_evals".into(), esm.len().to_string());
        // The residual's standard error per evaluation (loss.csv's esm_ism_se).
        let se = t.f64s("esm_ism_se")?;
        let zs: Vec<f64> = (0..esm.len())
            .map(|i| ((esm[i] - ism[i] - c) / se[i]).abs())
            .collect();
        v.insert(
            "lock_within_2se".into(),
            zs.iter().filter(|z| **z <= 2.0).count().to_string(),
        );
        v.insert(
            "lock_max_z".into(),
            sig(zs.iter().copied().fold(0.0, f64::max), 2),
        );
        v.insert(
            "lock_se_range".into(),
            format!(
                "{}–{}",
                sig(se.iter().copied().fold(f64::INFINITY, f64::min), 2),
                sig(se.iter().copied().fold(0.0, f64::max), 2)
            ),
        );
        v.insert(
            "lock_positive".into(),
            (0..esm.len())
                .filter(|&i| esm[i] - ism[i] - c > 0.0)
                .count()
                .to_string(),
        );
    }
    // The Jacobian cost: the same-run comparison only (crate::cost).
    {
        use crate::cost::{SameRun, Side::*, DIMS};
        let runs = SameRun::read(&results.join(crate::cost::RUNS))?;
        let mut rows = vec![];
        for (label, side, obj) in [
            ("scorelab ism_structured", Scorelab, "ism_structured"),
            ("scorelab ism_naive", Scorelab, "ism_naive"),
            ("scorelab ssm_vr", Scorelab, "ssm_vr"),
            ("scorelab dsm", Scorelab, "dsm"),
            ("JAX ism_structured", Jax, "ism_structured"),
            ("JAX ism_jacrev", Jax, "ism_jacrev"),
            ("JAX ism_jacfwd", Jax, "ism_jacfwd"),
            ("JAX ssm_vr", Jax, "ssm_vr"),
            ("JAX dsm", Jax, "dsm"),
        ] {
            let mut r = vec![label.to_string()];
            r.extend(
                DIMS.iter()
                    .map(|&d| sig(runs.time(side, obj, d).unwrap_or(f64::NAN), 3)),
            );
            rows.push(r);
        }
        let cell = |r: Option<(f64, f64, f64)>| match r {
            Some((m, lo, hi)) => format!("{} ({}–{})", sig(m, 2), sig(lo, 2), sig(hi, 2)),
            None => "—".into(),
        };
        for (label, num, den) in [
            (
                "scorelab ism_structured / scorelab dsm",
                (Scorelab, "ism_structured"),
                (Scorelab, "dsm"),
            ),
            (
                "scorelab ism_structured / JAX ism_structured",
                (Scorelab, "ism_structured"),
                (Jax, "ism_structured"),
            ),
            (
                "scorelab ism_structured / scorelab ssm_vr",
                (Scorelab, "ism_structured"),
                (Scorelab, "ssm_vr"),
            ),
            (
                "scorelab ism_structured / JAX ism_jacrev",
                (Scorelab, "ism_structured"),
                (Jax, "ism_jacrev"),
            ),
            (
                "JAX ism_jacrev / JAX dsm",
                (Jax, "ism_jacrev"),
                (Jax, "dsm"),
            ),
            (
                "scorelab ssm_vr / JAX ssm_vr",
                (Scorelab, "ssm_vr"),
                (Jax, "ssm_vr"),
            ),
            ("scorelab dsm / JAX dsm", (Scorelab, "dsm"), (Jax, "dsm")),
        ] {
            let mut r = vec![format!("ratio {label}")];
            r.extend(DIMS.iter().map(|&d| cell(runs.ratio(num, den, d))));
            rows.push(r);
        }
        v.insert(
            "table_cost".into(),
            md(
                &["ms per step", "D=2", "D=8", "D=32", "D=128", "D=512"],
                &rows,
            ),
        );
        v.insert("cost_machine".into(), runs.machine());
        v.insert("cost_commit".into(), runs.commit.clone());
        v.insert("cost_repeats".into(), runs.repeats.len().to_string());
        for d in [128, 512] {
            let r = |num, den| runs.ratio(num, den, d).map_or(f64::NAN, |r| r.0);
            v.insert(
                format!("cost_structured_vs_jax_structured_{d}"),
                sig(r((Scorelab, "ism_structured"), (Jax, "ism_structured")), 2),
            );
            v.insert(
                format!("cost_structured_vs_ssm_vr_{d}"),
                sig(r((Scorelab, "ism_structured"), (Scorelab, "ssm_vr")), 2),
            );
            v.insert(
                format!("cost_ssm_vr_vs_jax_{d}"),
                sig(r((Scorelab, "ssm_vr"), (Jax, "ssm_vr")), 2),
            );
        }
        let growth = |side, obj| {
            runs.time(side, obj, 512).unwrap_or(f64::NAN)
                / runs.time(side, obj, 2).unwrap_or(f64::NAN)
        };
        v.insert(
            "cost_structured_growth".into(),
            sig(growth(Scorelab, "ism_structured"), 2),
        );
        v.insert("cost_dsm_growth".into(), sig(growth(Scorelab, "dsm"), 2));
        // The structured trace over DSM: the smallest and largest median ratio over the D measured.
        let rs: Vec<f64> = crate::cost::DIMS
            .iter()
            .filter_map(|&d| {
                runs.ratio((Scorelab, "ism_structured"), (Scorelab, "dsm"), d)
                    .map(|r| r.0)
            })
            .collect();
        let lo = rs.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = rs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        v.insert(
            "cost_structured_vs_dsm".into(),
            format!("{}–{}", sig(lo, 2), sig(hi, 2)),
        );
    }
    // The noise trade-off.
    {
        let s = read("noise_tradeoff_summary.csv")?;
        let sig_ = s.f64s("sigma")?;
        let (cm, cs) = (s.f64s("error_clean_mean")?, s.f64s("error_clean_sd")?);
        let (nm, ns) = (s.f64s("error_noised_mean")?, s.f64s("error_noised_sd")?);
        let rows: Vec<Vec<String>> = (0..sig_.len())
            .map(|i| vec![sig(sig_[i], 2), pm(cm[i], cs[i]), pm(nm[i], ns[i])])
            .collect();
        v.insert(
            "table_noise".into(),
            md(
                &["σ", "½E_p‖s_θ − ∇log p‖²", "½E_p‖s_θ − ∇log p_σ‖²"],
                &rows,
            ),
        );
        let best = (0..cm.len())
            .min_by(|&a, &b| cm[a].total_cmp(&cm[b]))
            .unwrap_or(0);
        v.insert("noise_best_sigma".into(), sig(sig_[best], 2));
        v.insert("noise_best_error".into(), pm(cm[best], cs[best]));
        v.insert(
            "noise_seeds".into(),
            s.strings("seeds")?.first().cloned().unwrap_or_default(),
        );
    }
    // The NCSN toy.
    {
        let s = read("ncsn_toy_summary.csv")?;
        let runs = s.distinct("run")?;
        let mut rows = vec![];
        for r in &runs {
            let g = s.filter("run", r)?;
            let cell = |m: &str| -> Result<String> {
                Ok(pm(
                    one(&g, "metric", m, "mean")?,
                    one(&g, "metric", m, "sd")?,
                ))
            };
            rows.push(vec![
                r.clone(),
                cell("mode_weight_1")?,
                cell("mmd2")?,
                cell("ksd")?,
            ]);
            v.insert(format!("toy_w_{r}"), cell("mode_weight_1")?);
            v.insert(
                format!("toy_evals_{r}"),
                g.strings("score_evals")?
                    .first()
                    .cloned()
                    .unwrap_or_default(),
            );
        }
        v.insert(
            "table_ncsn_toy".into(),
            md(
                &["run", "weight of (−5,−5) (truth 0.2)", "MMD²", "KSD"],
                &rows,
            ),
        );
        // The MMD² bandwidth(s) of the table: one value when the experiment fixes it.
        v.insert("toy_mmd_bandwidth".into(), mmd_bandwidths(&s)?.join(", "));
        v.insert(
            "toy_seeds".into(),
            s.strings("seeds")?.first().cloned().unwrap_or_default(),
        );
        let l = read("ncsn_toy_learned_summary.csv")?.filter("metric", "mode_weight_1")?;
        let mut rows = vec![];
        for smp in ["annealed", "reverse_sde", "pc", "ode"] {
            let cell = |which: &str| -> Result<String> {
                let name = format!("{smp}_{which}");
                Ok(pm(
                    one(&l, "run", &name, "mean")?,
                    one(&l, "run", &name, "sd")?,
                ))
            };
            rows.push(vec![smp.to_string(), cell("exact")?, cell("learned")?]);
        }
        v.insert(
            "table_ncsn_learned".into(),
            md(
                &["sampler", "exact score", "learned score (dsm_multi)"],
                &rows,
            ),
        );
    }
    // Sampler cost: the minority weight of each sampler at its largest budget.
    {
        let s = read("samplers_cost_mixture_summary.csv")?.filter("metric", "mode_weight_1")?;
        let mut rows = vec![];
        for r in s.distinct("run")? {
            let g = s.filter("run", &r)?;
            let e = g.f64s("score_evals")?;
            let m = g.f64s("mean")?;
            let sd = g.f64s("sd")?;
            let cells: Vec<String> = (0..e.len())
                .map(|i| format!("{}: {}", e[i], pm(m[i], sd[i])))
                .collect();
            rows.push(vec![r.clone(), cells.join("; ")]);
        }
        v.insert(
            "table_samplers_cost".into(),
            md(&["run", "score evaluations: minority weight"], &rows),
        );
    }
    // The sampler zoo: the prior mismatch, every sampler × schedule, the training objectives.
    {
        let s = read("sampler_zoo_summary.csv")?;
        let prior = read("sampler_zoo_prior.csv")?;
        let weight = s.filter("metric", "mode_weight_1")?;
        let w2 = s.filter("metric", "sliced_w2")?;
        let mmd = s.filter("metric", "mmd2")?;
        // (mean, sd) of a metric table's row for `run` at `steps` (its last row when None).
        let at = |t: &Table, run: &str, steps: Option<&str>| -> Result<(f64, f64, f64)> {
            let g = t.filter("run", run)?;
            let g = match steps {
                Some(k) => g.filter("steps", k)?,
                None => g,
            };
            let i = g.f64s("mean")?.len().checked_sub(1).context("no rows")?;
            Ok((
                g.f64s("score_evals")?[i],
                g.f64s("mean")?[i],
                g.f64s("sd")?[i],
            ))
        };
        let mut rows = vec![];
        for r in s
            .distinct("run")?
            .iter()
            .filter(|r| r.starts_with("prior_"))
        {
            let (_, m, sd) = at(&weight, r, None)?;
            let p = prior.filter("run", r)?;
            let predicted = p.f64s("predicted_mode_weight_1")?[0];
            let kind = p.col("prior").map(|j| p.rows[0][j].clone())?;
            rows.push(vec![
                r.trim_start_matches("prior_").replace('_', " "),
                kind,
                sig(predicted, 3),
                pm(m, sd),
            ]);
        }
        v.insert(
            "table_zoo_prior".into(),
            md(
                &[
                    "ODE run",
                    "start",
                    "predicted minority weight",
                    "measured (mean ± sd, 3 seeds)",
                ],
                &rows,
            ),
        );
        let mut rows = vec![];
        for r in s.distinct("run")? {
            if r.starts_with("prior_")
                || r == "exact_samples"
                || r.starts_with("objective_")
                || r.ends_with("_learned")
                || r.starts_with("rk45")
            {
                continue;
            }
            let g = weight.filter("run", &r)?;
            let j = g.col("steps")?;
            let steps: Vec<String> = g.rows.iter().map(|row| row[j].clone()).collect();
            let first_100 = steps
                .iter()
                .zip(g.f64s("score_evals")?)
                .find(|(_, e)| *e >= 99.0)
                .map(|(k, _)| k.clone())
                .context("no run of 100 evaluations")?;
            let (e1, m1, s1) = at(&weight, &r, Some(&first_100))?;
            let (e2, m2, s2) = at(&weight, &r, None)?;
            let (_, wa, wsa) = at(&w2, &r, Some(&first_100))?;
            let (_, wb, wsb) = at(&w2, &r, None)?;
            let learned = format!("{r}_learned");
            let (el, ml, sl) = at(&weight, &learned, None)?;
            // The smallest budget from which on every mean weight is within 2 standard errors
            // over seeds (sd/√seeds) of the truth 0.2.
            let (evals, means) = (g.f64s("score_evals")?, g.f64s("mean")?);
            let (sds, seeds) = (g.f64s("sd")?, g.f64s("seeds")?);
            let consistent: Vec<bool> = (0..means.len())
                .map(|i| (means[i] - 0.2).abs() <= 2.0 * sds[i] / seeds[i].sqrt())
                .collect();
            let within = (0..means.len())
                .find(|&i| consistent[i..].iter().all(|&c| c))
                .map_or("—".to_string(), |i| evals[i].to_string());
            rows.push(vec![
                r.replace('_', " "),
                within,
                format!("{e1}: {}", pm(m1, s1)),
                format!("{e2}: {}", pm(m2, s2)),
                format!("{} / {}", pm(wa, wsa), pm(wb, wsb)),
                format!("{el}: {}", pm(ml, sl)),
            ]);
        }
        v.insert(
            "table_zoo".into(),
            md(
                &[
                    "sampler, schedule",
                    "exact: fewest evaluations from which the weight is within 2 SE of 0.2",
                    "exact: weight at ≈100 evaluations",
                    "exact: weight at the most",
                    "exact: sliced W₂ at ≈100 / the most",
                    "learned: weight at the most",
                ],
                &rows,
            ),
        );
        let mut rows = vec![];
        let nets = ["sigma2", "sigma2_edm", "edm", "likelihood_edm"];
        let smps = [
            "heun_edm_18",
            "heun_churn_edm_64",
            "reverse_sde_vp_1000",
            "ancestral_vp_1000",
            "ddim_vp_100",
            "rk45_vp",
        ];
        for smp in smps {
            let mut row = vec![smp.replace('_', " ")];
            for net in nets {
                let r = format!("objective_{net}_{smp}");
                let (_, m, sd) = at(&mmd, &r, None)?;
                let (_, w, wsd) = at(&w2, &r, None)?;
                row.push(format!("{} / {}", pm(m, sd), pm(w, wsd)));
            }
            rows.push(row);
        }
        v.insert(
            "table_zoo_objectives".into(),
            md(
                &[
                    "sampler (MMD² / sliced W₂)",
                    "log-uniform, λ = σ̃²",
                    "log-uniform, λ = σ̃², EDM preconditioning",
                    "EDM (log-normal, λ_EDM, preconditioning)",
                    "likelihood λ = g², log-normal, preconditioning",
                ],
                &rows,
            ),
        );
        // The numbers the text quotes.
        let one = |t: &Table, run: &str, steps: Option<&str>| -> Result<String> {
            let (_, m, sd) = at(t, run, steps)?;
            Ok(pm(m, sd))
        };
        v.insert("zoo_w_ve20".into(), one(&weight, "prior_ode_ve20", None)?);
        v.insert("zoo_w_vp".into(), one(&weight, "prior_ode_vp", None)?);
        v.insert(
            "zoo_w_exact_vp".into(),
            one(&weight, "prior_exact_ode_vp", None)?,
        );
        v.insert("zoo_w2_floor".into(), one(&w2, "exact_samples", None)?);
        v.insert(
            "zoo_evals_heun_edm10".into(),
            sig(at(&w2, "heun_edm", Some("10"))?.0, 3),
        );
        let evals = s.f64s("score_evals")?;
        v.insert(
            "zoo_evals_min".into(),
            sig(
                evals
                    .iter()
                    .copied()
                    .filter(|e| *e > 0.0)
                    .fold(f64::INFINITY, f64::min),
                3,
            ),
        );
        v.insert(
            "zoo_evals_max".into(),
            sig(evals.iter().copied().fold(0.0, f64::max), 3),
        );
        v.insert(
            "zoo_w2_heun_edm10".into(),
            one(&w2, "heun_edm", Some("10"))?,
        );
        v.insert(
            "zoo_w2_heun_edm10_learned".into(),
            one(&w2, "heun_edm_learned", Some("10"))?,
        );
    }
    // Old Faithful.
    {
        let s = read("old_faithful_summary.csv")?;
        let timing = read("old_faithful_timing.csv")?;
        let mut rows = vec![];
        for m in s.distinct("method")? {
            let g = s.filter("method", &m)?;
            let cell = |c: &str| -> Result<String> {
                Ok(pm(
                    g.f64s(&format!("{c}_mean"))?[0],
                    g.f64s(&format!("{c}_sd"))?[0],
                ))
            };
            let ll = cell("heldout_ll")?;
            let secs = timing.filter("method", &m)?.f64s("train_seconds")?;
            let t = if secs.is_empty() {
                "—".to_string()
            } else {
                sig(mean_sd(&secs).0, 2)
            };
            if m != "train" {
                v.insert(format!("of_ll_{m}"), ll.clone());
                v.insert(format!("of_train_s_{m}"), t.clone());
            }
            rows.push(vec![m.clone(), ll, cell("heldout_ism")?, cell("mmd2")?, t]);
        }
        v.insert(
            "table_old_faithful".into(),
            md(
                &[
                    "method",
                    "held-out log-lik. (nats/point, minutes)",
                    "held-out ISM loss",
                    "MMD² to held-out",
                    "training s",
                ],
                &rows,
            ),
        );
        v.insert(
            "of_seeds".into(),
            s.strings("seeds")?.first().cloned().unwrap_or_default(),
        );
        // Paired by seed: ISM minus KDE.
        let per = read("old_faithful.csv")?;
        // The quadrature's own error estimate: the largest change of log Z when the panels are
        // halved, over every energy model and seed.
        let change = per
            .strings("log_z_change")?
            .iter()
            .filter_map(|c| c.parse::<f64>().ok())
            .map(f64::abs)
            .fold(0.0, f64::max);
        v.insert("of_log_z_change_max".into(), sig(change, 2));
        let ism = per.filter("method", "ism")?.f64s("heldout_ll")?;
        let kde = per.filter("method", "kde_scott")?.f64s("heldout_ll")?;
        let diff: Vec<f64> = ism.iter().zip(&kde).map(|(a, b)| a - b).collect();
        let (m, sd) = mean_sd(&diff);
        v.insert("of_ism_minus_kde".into(), pm(m, sd));
        v.insert(
            "of_ism_beats_kde".into(),
            format!(
                "{} of {}",
                diff.iter().filter(|d| **d > 0.0).count(),
                diff.len()
            ),
        );
    }
    // Old Faithful's likelihood routes and references, paired by split.
    {
        let t = read("old_faithful_likelihood.csv")?;
        let per = |m: &str| -> Result<Vec<(f64, f64)>> {
            let g = t.filter("method", m)?;
            Ok(g.f64s("seed")?
                .into_iter()
                .zip(g.f64s("heldout_ll")?)
                .collect())
        };
        let timing = read("old_faithful_timing.csv")?;
        let ism = per("ism")?;
        let mut rows = vec![];
        for m in t.distinct("method")? {
            let ll: Vec<f64> = per(&m)?.iter().map(|p| p.1).collect();
            let (mean, sd) = mean_sd(&ll);
            v.insert(format!("of_lik_{m}"), pm(mean, sd));
            // Paired by split against ISM: mean ± sd of the per-split differences.
            let diffs: Vec<f64> = per(&m)?
                .iter()
                .filter_map(|(seed, l)| ism.iter().find(|p| p.0 == *seed).map(|p| l - p.1))
                .collect();
            let (dm, dsd) = mean_sd(&diffs);
            v.insert(format!("of_minus_ism_{m}"), pm(dm, dsd));
            let secs = timing.filter("method", &m)?.f64s("train_seconds")?;
            if !secs.is_empty() {
                let (s_mean, _) = mean_sd(&secs);
                v.insert(format!("of_fit_ms_{m}"), sig(1e3 * s_mean, 2));
            }
            let mut r = vec![m.replace('_', " "), pm(mean, sd)];
            for reference in ["kde_scott", "mle"] {
                if m == reference {
                    r.push("—".into());
                    continue;
                }
                // A run of one split (`reproduce --quick`) has no paired test.
                r.push(match paired_t(&per(&m)?, &per(reference)?) {
                    Ok(p) => p.cell(),
                    Err(_) => "— (fewer than two splits)".into(),
                });
            }
            rows.push(r);
        }
        v.insert(
            "table_of_likelihood".into(),
            md(
                &[
                    "method",
                    "held-out log-lik. (mean ± sd over splits)",
                    "minus KDE (Scott), paired: mean ± sd, t, p",
                    "minus maximum likelihood, paired",
                ],
                &rows,
            ),
        );
    }
    // Exact likelihoods through the probability-flow ODE.
    {
        let t = read("likelihood_accuracy_summary.csv")?;
        let rtols = t.distinct("rtol")?;
        let mut rows = vec![];
        for d in t.distinct("density")? {
            let g = t.filter("density", &d)?;
            for sch in g.distinct("schedule")? {
                let h = g.filter("schedule", &sch)?;
                let mut r = vec![format!("{d}, {sch}")];
                for rt in &rtols {
                    let cell = h.filter("rtol", rt)?.f64s("worst_mean_abs_error")?;
                    r.push(cell.first().map_or("—".into(), |v| sig(*v, 2)));
                }
                rows.push(r);
            }
        }
        let header: Vec<String> = std::iter::once("density, schedule".to_string())
            .chain(rtols.iter().map(|r| format!("rtol {r}")))
            .collect();
        let header: Vec<&str> = header.iter().map(String::as_str).collect();
        v.insert("table_lik_accuracy".into(), md(&header, &rows));
        let h = read("likelihood_accuracy_hutchinson.csv")?;
        let (dim, probe) = (h.strings("dim")?, h.strings("probe")?);
        let (m, se, sd) = (
            h.f64s("mean_difference")?,
            h.f64s("se_difference")?,
            h.f64s("one_probe_sd")?,
        );
        let rows: Vec<Vec<String>> = (0..dim.len())
            .map(|i| {
                vec![
                    dim[i].clone(),
                    probe[i].clone(),
                    format!("{} ± {}", sig(m[i], 2), sig(se[i], 2)),
                    sig(m[i] / se[i], 2),
                    sig(sd[i], 3),
                ]
            })
            .collect();
        v.insert(
            "table_lik_hutchinson".into(),
            md(
                &[
                    "D",
                    "probe",
                    "Hutchinson − exact log p (mean ± SE)",
                    "z",
                    "one-probe sd of log p",
                ],
                &rows,
            ),
        );
        let dl = read("digits_likelihood_summary.csv")?;
        let mut rows = vec![];
        for m in dl.distinct("method")? {
            let g = dl.filter("method", &m)?;
            rows.push(vec![
                m.replace('_', " "),
                pm(
                    g.f64s("bits_per_dim_mean")?[0],
                    g.f64s("bits_per_dim_sd")?[0],
                ),
                sig(g.f64s("bits_per_dim_se_mean")?[0], 2),
            ]);
        }
        v.insert(
            "table_digits_bpd".into(),
            md(
                &[
                    "model",
                    "bits/dim (mean ± sd over seeds)",
                    "SE within a seed",
                ],
                &rows,
            ),
        );
    }
    // The toy zoo.
    {
        let s = read("toy_zoo_summary.csv")?;
        let per = read("toy_zoo.csv")?;
        let mut rows = vec![];
        for t in s.distinct("toy")? {
            let g = s.filter("toy", &t)?;
            let nll = pm(g.f64s("nll_mean")?[0], g.f64s("nll_sd")?[0]);
            let kde = pm(g.f64s("nll_kde_mean")?[0], g.f64s("nll_kde_sd")?[0]);
            let mixture = pm(g.f64s("nll_mixture_mean")?[0], g.f64s("nll_mixture_sd")?[0]);
            let mmd = pm(g.f64s("mmd2_mean")?[0], g.f64s("mmd2_sd")?[0]);
            let fine = pm(g.f64s("mmd2_fine_mean")?[0], g.f64s("mmd2_fine_sd")?[0]);
            let p = per.filter("toy", &t)?;
            let truth: Vec<f64> = p
                .strings("nll_true")?
                .iter()
                .filter_map(|c| c.parse::<f64>().ok())
                .collect();
            let (nll_true, kl) = if truth.is_empty() {
                ("—".to_string(), "—".to_string())
            } else {
                let (m, sd) = mean_sd(&truth);
                (pm(m, sd), pm(g.f64s("kl_mean")?[0], g.f64s("kl_sd")?[0]))
            };
            v.insert(format!("tz_nll_{t}"), nll.clone());
            v.insert(format!("tz_kl_{t}"), kl.clone());
            v.insert(format!("tz_nll_true_{t}"), nll_true.clone());
            rows.push(vec![t.clone(), nll, kde, mixture, nll_true, kl, mmd, fine]);
        }
        // Each network's training time in this run (the timing file), as a range.
        let timing = read("toy_zoo_timing.csv")?.filter("what", "train")?;
        let secs = timing.f64s("seconds")?;
        let (lo, hi) = (
            secs.iter().copied().fold(f64::INFINITY, f64::min),
            secs.iter().copied().fold(0.0, f64::max),
        );
        v.insert(
            "tz_train_seconds".into(),
            format!("{}–{}", sig(lo, 2), sig(hi, 2)),
        );
        v.insert(
            "table_toy_zoo".into(),
            md(
                &[
                    "data set",
                    "held-out NLL (nats)",
                    "KDE (cross-validated)",
                    "EM mixture",
                    "true density",
                    "KL(p ‖ p_θ) (nats)",
                    "MMD² to held-out points",
                    "MMD², a tenth of the bandwidth",
                ],
                &rows,
            ),
        );
    }
    // Digits.
    {
        let s = read("digits_summary.csv")?;
        let timing = read("digits_timing.csv")?;
        let per = read("digits.csv")?;
        let mut rows = vec![];
        for m in s.distinct("method")? {
            let g = s.filter("method", &m)?;
            let mmd = pm(g.f64s("mmd2_mean")?[0], g.f64s("mmd2_sd")?[0]);
            let nn = pm(g.f64s("nn_median_mean")?[0], g.f64s("nn_median_sd")?[0]);
            let fit = per
                .filter("method", &m)?
                .strings("fit")?
                .first()
                .cloned()
                .unwrap_or_default();
            let train_s = if fit.is_empty() {
                "—".to_string()
            } else {
                let t = timing
                    .filter("what", "train")?
                    .filter("name", &fit)?
                    .f64s("seconds")?;
                if t.is_empty() {
                    "pretrained".to_string()
                } else {
                    sig(mean_sd(&t).0, 2)
                }
            };
            v.insert(format!("dg_train_s_{m}"), train_s.clone());
            let evals = g
                .strings("score_evals")?
                .first()
                .cloned()
                .unwrap_or_default();
            let opt = |c: &str| -> Option<f64> {
                g.strings(c)
                    .ok()
                    .and_then(|v| v.first().and_then(|x| x.parse::<f64>().ok()))
            };
            let fd = match (opt("frechet_mean"), opt("frechet_sd")) {
                (Some(a), Some(b)) => pm(a, b),
                _ => "—".into(),
            };
            let cov = match (opt("coverage_mean"), opt("coverage_sd")) {
                (Some(a), Some(b)) => pm(a, b),
                _ => "—".into(),
            };
            v.insert(format!("dg_mmd_{m}"), mmd.clone());
            v.insert(format!("dg_nn_{m}"), nn.clone());
            v.insert(format!("dg_fd_{m}"), fd.clone());
            v.insert(format!("dg_cov_{m}"), cov.clone());
            rows.push(vec![m.clone(), fd, cov, mmd, nn, evals, train_s]);
        }
        v.insert(
            "table_digits".into(),
            md(
                &[
                    "method",
                    "Fréchet distance to the reference set",
                    "class coverage",
                    "MMD² to the reference set",
                    "median distance to nearest training image",
                    "score evaluations",
                    "training s",
                ],
                &rows,
            ),
        );
        // The metric's classifier and its bias at smaller sizes.
        let acc = read("digits_classifier.csv")?;
        for part in ["reference", "floor"] {
            let g = acc.filter("part", part)?;
            let a = g.f64s("accuracy")?;
            v.insert(format!("dg_classifier_{part}"), sig(a[0], 3));
            let n = g.strings("rows")?;
            v.insert(
                format!("dg_{part}_n"),
                n.first().cloned().unwrap_or_default(),
            );
        }
        let bias = read("digits_frechet_bias.csv")?;
        let mut brows = vec![];
        for (n, (m, sd)) in bias.strings("n")?.iter().zip(
            bias.f64s("frechet_mean")?
                .into_iter()
                .zip(bias.strings("frechet_sd")?),
        ) {
            let sd = sd.parse::<f64>().map_or("—".to_string(), |x| sig(x, 2));
            brows.push(vec![n.clone(), sig(m, 3), sd]);
        }
        v.insert(
            "table_digits_bias".into(),
            md(
                &[
                    "floor images n",
                    "Fréchet distance to the reference set (mean)",
                    "sd over disjoint chunks",
                ],
                &brows,
            ),
        );
        // Inpainting.
        let inp = read("digits_inpaint_summary.csv")?;
        let mut irows = vec![];
        for m in inp.distinct("mask")? {
            let g = inp.filter("mask", &m)?;
            let done = pm(
                g.f64s("accuracy_completed_mean")?[0],
                g.f64s("accuracy_completed_sd")?[0],
            );
            let masked = sig(g.f64s("accuracy_masked")?[0], 3);
            let orig = sig(g.f64s("accuracy_original")?[0], 3);
            let mse = pm(g.f64s("mse_hidden_mean")?[0], g.f64s("mse_hidden_sd")?[0]);
            let nearest = sig(g.f64s("accuracy_nearest")?[0], 3);
            let gaussian = sig(g.f64s("accuracy_gaussian")?[0], 3);
            let mse_nearest = sig(g.f64s("mse_nearest")?[0], 3);
            let mse_gaussian = sig(g.f64s("mse_gaussian")?[0], 3);
            v.insert(format!("ip_done_{m}"), done.clone());
            v.insert(format!("ip_masked_{m}"), masked.clone());
            v.insert("ip_original".into(), orig.clone());
            irows.push(vec![
                m.clone(),
                done,
                nearest,
                gaussian,
                masked,
                orig,
                mse,
                mse_nearest,
                mse_gaussian,
            ]);
        }
        v.insert(
            "table_inpaint".into(),
            md(
                &[
                    "mask",
                    "accuracy on completions",
                    "nearest training image",
                    "Gaussian conditional mean",
                    "masked inputs (hidden = 0)",
                    "originals",
                    "squared error per hidden pixel",
                    "… nearest image",
                    "… Gaussian",
                ],
                &irows,
            ),
        );
        v.insert(
            "dg_seeds".into(),
            s.strings("seeds")?.first().cloned().unwrap_or_default(),
        );
        // The chains per sampler, as the experiment ran them (its written config).
        #[derive(serde::Deserialize)]
        struct Chains {
            chains: usize,
        }
        let text = std::fs::read_to_string(results.join("digits.config.toml"))?;
        let chains: Chains = toml::from_str(&text)?;
        v.insert("dg_chains".into(), chains.chains.to_string());
        // The closest any sample of any sampler comes to a training image.
        let methods = per.strings("method")?;
        let mins = per.f64s("nn_min")?;
        // The networks' samplers only: not the real images, nor the baselines (the training
        // images are at distance 0 from themselves).
        let baselines = [
            "real_digits",
            "uniform_noise",
            "training_images",
            "gaussian",
            "mixture_em",
        ];
        let closest = (0..mins.len())
            .filter(|&i| !baselines.contains(&methods[i].as_str()))
            .map(|i| mins[i])
            .fold(f64::INFINITY, f64::min);
        v.insert("dg_nn_min_samples".into(), sig(closest, 3));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against closed forms: on one degree of freedom Student's t is the Cauchy distribution,
    /// p = 1 − (2/π)·atan|t|; on four, t = 2.7764 is the two-sided 5% point (the printed tables).
    #[test]
    fn paired_t_matches_closed_forms() {
        let a = [(1.0, 3.0), (2.0, 5.5)];
        let b = [(2.0, 1.0), (1.0, 1.0), (7.0, 0.0)];
        let p = paired_t(&a, &b).unwrap();
        // Differences 2 and 4.5: mean 3.25, sd 1.7678, t = 3.25/(1.7678/√2) = 2.6.
        assert!((p.t - 2.6).abs() < 1e-9, "{}", p.t);
        assert_eq!(p.df, 1);
        let cauchy = 1.0 - 2.0 / std::f64::consts::PI * p.t.atan();
        assert!((p.p - cauchy).abs() < 1e-9, "{} {cauchy}", p.p);
        // Five differences with mean/(sd/√5) = 2.7764: p = 0.05.
        let d = [1.0, 2.0, 3.0, 4.0, 5.0];
        let (m, sd) = mean_sd(&d);
        let shift = 2.7764 * sd / 5f64.sqrt() - m;
        let a: Vec<(f64, f64)> = d
            .iter()
            .enumerate()
            .map(|(i, x)| (i as f64, x + shift))
            .collect();
        let zero: Vec<(f64, f64)> = (0..5).map(|i| (i as f64, 0.0)).collect();
        let p = paired_t(&a, &zero).unwrap();
        assert!((p.p - 0.05).abs() < 1e-4, "{}", p.p);
        assert!(paired_t(&a[..1], &zero).is_err());
    }
}
