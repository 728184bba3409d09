//! `scorelab equivalence`: the audit of ESM = ISM + C + B on every case of a config
//! ([`scorelab_pipeline::equivalence`]), one CSV row per case, and a table that makes the point at
//! a glance.

use crate::InputError;
use anyhow::Result;
use comfy_table::{Cell, CellAlignment};
use scorelab_eval::{Audit, ConstantSource};
use scorelab_pipeline::equivalence::{self as eq, EquivalenceConfig, Row};
use scorelab_pipeline::files::{beside, Staged};
use scorelab_pipeline::memory::MemoryLimit;
use std::collections::BTreeMap;

fn sig(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if v.abs() >= 1e-3 && v.abs() < 1e5 {
        let digits = (5 - v.abs().log10().floor() as i32).max(0) as usize;
        format!("{v:.digits$}")
    } else {
        format!("{v:.4e}")
    }
}

/// C, marked "(MC)" when it is a Monte Carlo estimate.
fn constant(a: &Audit) -> String {
    match a.constant_source {
        ConstantSource::ClosedForm => sig(a.constant),
        ConstantSource::MonteCarlo { .. } => format!("{} (MC)", sig(a.constant)),
    }
}

/// The per-case table and the per-density summary, as text.
pub fn table(rows: &[Row]) -> String {
    let mut t = crate::markdown_table();
    t.set_header([
        "case",
        "D",
        "ESM",
        "ISM",
        "gap = ESM − ISM",
        "C",
        "boundary B",
        "z",
        "grad rel diff",
        "after ∇B",
        "quadrature rel error",
    ]);
    for r in rows {
        let a = &r.audit;
        t.add_row([
            Cell::new(&r.case),
            Cell::new(r.dim).set_alignment(CellAlignment::Right),
            Cell::new(sig(a.esm.mean)),
            Cell::new(sig(a.ism.mean)),
            Cell::new(format!("{} ± {}", sig(a.gap.mean), sig(a.gap.se))),
            Cell::new(constant(a)),
            Cell::new(sig(a.boundary_term)),
            Cell::new(format!("{:+.2}", a.z_score)),
            Cell::new(a.gradient.map(|g| sig(g.rel_diff)).unwrap_or_default()),
            Cell::new(
                a.gradient
                    .map(|g| format!("{} ± {}", sig(g.residual_rel), sig(g.residual_rel_se)))
                    .unwrap_or_default(),
            ),
            Cell::new(
                a.quadrature
                    .map(|q| format!("{:.1e}", q.identity_rel_error))
                    .unwrap_or_default(),
            ),
        ]);
    }
    // Per density: the gap is one constant C (+ B) whatever the model.
    let mut by_density: BTreeMap<String, Vec<&Row>> = BTreeMap::new();
    for r in rows {
        let key = r.case.split('/').next().unwrap_or(&r.case).to_string();
        by_density.entry(key).or_default().push(r);
    }
    let mut s = crate::markdown_table();
    s.set_header([
        "density",
        "models",
        "gap range over models",
        "C",
        "gap − C − B range",
        "max abs z",
    ]);
    for (name, rs) in &by_density {
        let gaps: Vec<f64> = rs.iter().map(|r| r.audit.gap.mean).collect();
        let resid: Vec<f64> = rs
            .iter()
            .map(|r| r.audit.gap.mean - r.audit.constant - r.audit.boundary_term)
            .collect();
        let range = |v: &[f64]| {
            let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            format!("[{}, {}]", sig(lo), sig(hi))
        };
        let zmax = rs.iter().map(|r| r.audit.z_score.abs()).fold(0.0, f64::max);
        s.add_row([
            name.clone(),
            rs.len().to_string(),
            range(&gaps),
            constant(&rs[0].audit),
            range(&resid),
            format!("{zmax:.2}"),
        ]);
    }
    format!(
        "{t}\n\nPer density: the gap ESM − ISM is the model-independent constant C on ℝᴰ; on the half-line \
         it moves with the model by the boundary term B = p(0)·s_θ(0).\n{s}\n"
    )
}

/// Runs `config` and writes its CSV to `out` and the resolved config beside it
/// (`<out without .csv>.config.toml`), both or neither; `source` (the config file, if any) names
/// the file in errors. Prints its progress to stderr.
///
/// # Errors
/// An [`InputError`] for an invalid config or an unwritable `out`.
pub fn write(
    config: &EquivalenceConfig,
    source: Option<&std::path::Path>,
    out: &std::path::Path,
) -> Result<Vec<Row>> {
    let cases = config
        .build(MemoryLimit::from_env()?)
        .map_err(|e| match source {
            Some(path) => InputError(format!("config {}: {e}", path.display())),
            None => InputError(e.to_string()),
        })?;
    eprintln!(
        "scorelab equivalence: {} cases, {} samples each, seed {}",
        cases.len(),
        config.samples,
        config.seed
    );
    let bar = crate::bar(
        cases.len() as u64,
        "{spinner} [{bar:30}] {pos}/{len} cases  {elapsed_precise} (eta {eta})",
    );
    let rows = eq::run(config, &cases, &|_| bar.inc(1));
    bar.finish_and_clear();
    let csv = eq::to_csv(&rows);
    let config_out = beside(out, ".config.toml");
    let write = || -> Result<()> {
        let mut staged = Staged::default();
        staged.stage(&config_out, config.to_toml().as_bytes())?;
        staged.stage(out, &csv)?;
        Ok(staged.commit()?)
    };
    write().map_err(|e| InputError(format!("--out {}: {e:#}", out.display())))?;
    Ok(rows)
}
