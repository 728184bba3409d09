//! The same-run Jacobian-cost comparison: scorelab's and JAX's ms per training step measured back
//! to back on one machine (`scripts/compare_jacobian_cost.sh`), read from
//! `results/jacobian_cost_runs/`. Every timing number and ratio of the paper, its figure and the
//! README comes from here, never from a timing `reproduce` measured alone (so noise in a rerun
//! cannot fail a check) nor from baselines measured on another machine.
//!
//! A time is the median over the repeats of each run's median ms per step; a ratio is the median
//! over repeats of the ratio within one repeat (the two sides measured back to back), with its
//! range over the repeats.
//!
//! ```
//! let dir = std::env::temp_dir().join(format!("scorelab-cost-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir).unwrap();
//! std::fs::write(dir.join("machine.csv"), "commit,cpu,threads,steps\nabc,Test CPU,2,30\n").unwrap();
//! for (r, ours, jax) in [(1, 1.0, 4.0), (2, 2.0, 4.0), (3, 1.0, 1.0)] {
//!     std::fs::write(dir.join(format!("scorelab_{r}.csv")),
//!         format!("objective,dim,median_ms\ndsm,2,{ours}\n")).unwrap();
//!     std::fs::write(dir.join(format!("jax_{r}.csv")),
//!         format!("objective,D,median_step_ms\ndsm,2,{jax}\n")).unwrap();
//! }
//! let runs = scorelab_figures::cost::SameRun::read(&dir).unwrap();
//! use scorelab_figures::cost::Side::{Jax, Scorelab};
//! assert_eq!(runs.time(Scorelab, "dsm", 2), Some(1.0));
//! // Within-repeat ratios 0.25, 0.5, 1: median 0.5, range 0.25–1.
//! assert_eq!(runs.ratio((Scorelab, "dsm"), (Jax, "dsm"), 2), Some((0.5, 0.25, 1.0)));
//! assert_eq!(runs.cpu, "Test CPU");
//! ```

use crate::Table;
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::path::Path;

/// The folder of the runs, inside a results folder.
pub const RUNS: &str = "jacobian_cost_runs";

/// The dimensions every comparison reports.
pub const DIMS: [u32; 5] = [2, 8, 32, 128, 512];

/// Which side of the comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// `scorelab cost`.
    Scorelab,
    /// `results/baselines/jax_sm_bench.py`.
    Jax,
}

type Times = BTreeMap<(String, u32), f64>;

/// Every repeat of one same-run comparison, and the machine it ran on.
#[derive(Debug, Clone)]
pub struct SameRun {
    /// Per repeat: scorelab's and JAX's median ms per step by (objective, D).
    pub repeats: Vec<(Times, Times)>,
    /// The CPU both sides ran on (`/proc/cpuinfo`'s model name).
    pub cpu: String,
    /// Threads each side used.
    pub threads: String,
    /// The commit of the scorelab binary measured.
    pub commit: String,
}

fn times(path: &Path, d_col: &str, ms_col: &str) -> Result<Times> {
    let t = Table::read(path)?;
    let (o, d, ms) = (t.strings("objective")?, t.f64s(d_col)?, t.f64s(ms_col)?);
    Ok(o.into_iter()
        .zip(d)
        .zip(ms)
        .map(|((o, d), ms)| ((o, d as u32), ms))
        .collect())
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    })
}

impl SameRun {
    /// Reads `dir` (`machine.csv`, then `scorelab_R.csv` and `jax_R.csv` for R = 1, 2, …).
    ///
    /// # Errors
    /// If `machine.csv` or the first repeat is missing, or a file is malformed.
    pub fn read(dir: &Path) -> Result<SameRun> {
        let m = Table::read(&dir.join("machine.csv"))?;
        let field = |c: &str| -> Result<String> {
            m.strings(c)?
                .into_iter()
                .next()
                .with_context(|| format!("{}: no row", m.path.display()))
        };
        let mut repeats = vec![];
        for r in 1.. {
            let (ours, jax) = (
                dir.join(format!("scorelab_{r}.csv")),
                dir.join(format!("jax_{r}.csv")),
            );
            if !ours.exists() && !jax.exists() {
                break;
            }
            repeats.push((
                times(&ours, "dim", "median_ms")?,
                times(&jax, "D", "median_step_ms")?,
            ));
        }
        if repeats.is_empty() {
            bail!("{}: no scorelab_1.csv and jax_1.csv", dir.display());
        }
        Ok(SameRun {
            repeats,
            cpu: field("cpu")?,
            threads: field("threads")?,
            commit: field("commit")?,
        })
    }

    fn get(rep: &(Times, Times), side: Side, objective: &str, d: u32) -> Option<f64> {
        let t = match side {
            Side::Scorelab => &rep.0,
            Side::Jax => &rep.1,
        };
        t.get(&(objective.to_string(), d)).copied()
    }

    /// The median over repeats of one side's ms per step (None if never measured).
    pub fn time(&self, side: Side, objective: &str, d: u32) -> Option<f64> {
        median(
            self.repeats
                .iter()
                .filter_map(|r| Self::get(r, side, objective, d))
                .collect(),
        )
    }

    /// The ratio num/den within each repeat: (median, min, max) over repeats.
    pub fn ratio(&self, num: (Side, &str), den: (Side, &str), d: u32) -> Option<(f64, f64, f64)> {
        let rs: Vec<f64> = self
            .repeats
            .iter()
            .filter_map(|r| Some(Self::get(r, num.0, num.1, d)? / Self::get(r, den.0, den.1, d)?))
            .collect();
        let lo = rs.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = rs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        Some((median(rs)?, lo, hi))
    }

    /// The machine and the repeats, for captions: "AMD EPYC, 2 threads each side, 3 interleaved
    /// repeats".
    pub fn machine(&self) -> String {
        format!(
            "{}, {} threads each side, {} interleaved repeats",
            self.cpu,
            self.threads,
            self.repeats.len()
        )
    }
}
