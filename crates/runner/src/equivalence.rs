//! `scorelab equivalence`: audit ESM = ISM + C + B on every case of a config, write one CSV row per
//! case and print a table that makes the point at a glance.

use crate::config::{Case, EquivalenceConfig};
use crate::output::cell;
use crate::InputError;
use anyhow::Result;
use comfy_table::{presets, Cell, CellAlignment, Table};
use indicatif::{ProgressBar, ProgressStyle};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use scorelab_core::{Dimension, Sample};
use scorelab_eval::{audit, closed_form, Audit, ConstantSource};
use std::collections::BTreeMap;

/// The CSV header, in order.
pub const COLUMNS: [&str; 19] = [
    "case",
    "density",
    "model",
    "dim",
    "samples",
    "esm",
    "esm_se",
    "ism",
    "ism_se",
    "gap",
    "gap_se",
    "constant",
    "boundary_term",
    "z_score",
    "grad_rel_diff",
    "esm_closed",
    "ism_closed",
    "esm_quad",
    "ism_quad",
];

/// One case's results.
#[derive(Debug, Clone)]
pub struct Row {
    /// The case's name.
    pub case: String,
    /// The density kind.
    pub density: &'static str,
    /// The model kind.
    pub model: &'static str,
    /// D.
    pub dim: usize,
    /// The audit.
    pub audit: Audit,
    /// Closed-form (ESM, ISM), where one exists.
    pub closed: Option<(f64, f64)>,
}

/// The ChaCha8 stream of a case: the 64-bit FNV-1a hash of its name. Keyed by name, a case's
/// samples do not change when other cases are added, removed or reordered.
///
/// # Examples
/// ```
/// // FNV-1a's published test vector: "a" ↦ 0xaf63dc4c8601ec8c.
/// assert_eq!(scorelab::equivalence::case_stream("a"), 0xaf63dc4c8601ec8c);
/// ```
pub fn case_stream(name: &str) -> u64 {
    name.bytes().fold(0xcbf29ce484222325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    })
}

/// Runs every case; a case draws its samples from `ChaCha8Rng::seed_from_u64(seed)` on stream
/// [`case_stream`]`(name)`, so results depend neither on the order or parallelism of the cases nor
/// on the other cases.
pub fn run(config: &EquivalenceConfig, cases: &[Case], progress: &ProgressBar) -> Vec<Row> {
    let rows = cases
        .par_iter()
        .map(|case| {
            let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
            rng.set_stream(case_stream(&case.spec.name));
            let x = case.density.sample(config.samples, &mut rng);
            let audit = audit(&case.density, &case.model, x.view());
            progress.inc(1);
            Row {
                case: case.spec.name.clone(),
                density: case.spec.density.kind(),
                model: case.spec.model.kind(),
                dim: case.density.dim(),
                audit,
                closed: closed_form(&case.density, &case.model),
            }
        })
        .collect();
    progress.finish_and_clear();
    rows
}

/// A progress bar over `n` cases on stderr (hidden when stderr is not a terminal).
pub fn progress_bar(n: usize) -> ProgressBar {
    let bar = ProgressBar::new(n as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{bar:30}] {pos}/{len} cases  {elapsed_precise} (eta {eta})",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar
}

/// The CSV, header and one row per case.
///
/// # Errors
/// Only if the in-memory CSV writer fails.
pub fn to_csv(rows: &[Row]) -> Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(COLUMNS)?;
    for r in rows {
        let a = &r.audit;
        let q = a.quadrature;
        w.write_record([
            r.case.clone(),
            r.density.to_string(),
            r.model.to_string(),
            r.dim.to_string(),
            a.samples.to_string(),
            cell(Some(a.esm.mean)),
            cell(Some(a.esm.se)),
            cell(Some(a.ism.mean)),
            cell(Some(a.ism.se)),
            cell(Some(a.gap.mean)),
            cell(Some(a.gap.se)),
            cell(Some(a.constant)),
            cell(Some(a.boundary_term)),
            cell(Some(a.z_score)),
            cell(a.grad_rel_diff),
            cell(r.closed.map(|c| c.0)),
            cell(r.closed.map(|c| c.1)),
            cell(q.map(|q| q.esm)),
            cell(q.map(|q| q.ism)),
        ])?;
    }
    Ok(w.into_inner()?)
}

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
    let mut t = Table::new();
    t.load_preset(presets::ASCII_MARKDOWN);
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
            Cell::new(a.grad_rel_diff.map(sig).unwrap_or_default()),
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
    let mut s = Table::new();
    s.load_preset(presets::ASCII_MARKDOWN);
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
    let cases = config.build().map_err(|e| match source {
        Some(path) => InputError(format!("config {}: {}", path.display(), e.0)),
        None => e,
    })?;
    eprintln!(
        "scorelab equivalence: {} cases, {} samples each, seed {}",
        cases.len(),
        config.samples,
        config.seed
    );
    let bar = progress_bar(cases.len());
    let rows = run(config, &cases, &bar);
    let csv = to_csv(&rows)?;
    let config_out = crate::output::beside(out, ".config.toml");
    let write = || -> Result<()> {
        let mut staged = crate::output::Staged::default();
        staged.stage(&config_out, config.to_toml().as_bytes())?;
        staged.stage(out, &csv)?;
        staged.commit()
    };
    write().map_err(|e| InputError(format!("--out {}: {e:#}", out.display())))?;
    Ok(rows)
}
