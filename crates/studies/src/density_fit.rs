//! `kind = "density_fit"`: an energy network p_θ = e^{−f_θ}/Z_θ fitted to a 2-D data file by
//! several score-matching objectives, scored by held-out log-likelihood with Z_θ by quadrature,
//! next to a Gaussian KDE (Scott's rule) and a single Gaussian.
//!
//! For each seed the data are split (the seed's `scorelab train` split: stream 4, `test_fraction`
//! held out) and standardised by the training rows, z = (x − m)/s. For each method:
//!
//! - **held-out log-likelihood** in nats per point in the data's own units:
//!   log p_x(x) = log p_z(z) − Σⱼ log sⱼ, averaged over the held-out rows. For a network,
//!   log p_z(z) = −f_θ(z) − log Z_θ with Z_θ = ∫ e^{−f_θ} over the box [−b, b]² by composite
//!   Gauss–Legendre (`panels` panels of `nodes` nodes per axis); `log_z_change` is the change in
//!   log Z_θ when the panels are halved (the quadrature's own error estimate);
//! - **held-out ISM loss** E[½‖s(z)‖² + tr ∇s(z)] over the held-out rows, in standardised units
//!   (for the baselines from their exact scores and Laplacians);
//! - **MMD²** (unbiased, RBF, one bandwidth per seed: the median distance of the pooled training
//!   and held-out rows) between `samples` draws and the held-out rows, in standardised units. A
//!   network is sampled (its score by the f32 inference path) by `langevin_steps` steps of
//!   unadjusted Langevin with step `langevin_eps` from N(0, I); the baselines exactly. The row
//!   `train` is the training rows themselves: the MMD a perfect model would get with this few
//!   held-out points.
//!
//! One unit per seed (every objective's network, the baselines and the likelihood part); the
//! equal-time budgets are measured once, before any ([`Study::setup`]).
//!
//! Writes `NAME.csv` (one row per method and seed), `NAME_summary.csv` (mean and sd over seeds),
//! `NAME_density.csv` (log-density in data units on a grid, first seed) and `NAME_samples.csv`
//! (the first seed's samples and data split, data units), and `NAME_timing.csv` (the seconds of
//! every fit, the networks' and the likelihood part's: the one file that differs between reruns).

use crate::bad;
use crate::shared::train_into;
use crate::study::{Context, Fixed, Num, PairedRow, Study, Table, Tables, Unit};
use anyhow::Result;
use ndarray::{concatenate, Array2, Axis};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use scorelab_core::stats::MeanSe;
use scorelab_core::{LogDensity, Sample, Score};
use scorelab_densities::{AnyDensity, Gaussian, GaussianMixture};
use scorelab_eval::mmd2;
use scorelab_models::{EnergyMlp, F32Score, Network};
use scorelab_pipeline::baselines::{fit_gaussian, heldout_ism, kde_scott, log_partition};
use scorelab_pipeline::likelihood::LikelihoodPlan;
use scorelab_pipeline::metrics::{finite_rows, mean_sd_cell};
use scorelab_pipeline::train::{
    DataSpec, ModelSpec, Objective, TrainOverrides, TrainPlan, TrainSettings,
};
use scorelab_samplers::{sample, standard_normal, Langevin};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// `kind = "density_fit"` (module docs).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DensityFitExperiment {
    /// One line saying what the experiment shows.
    pub description: String,
    /// Seeds: each gives its own split, initial weights and draws.
    pub seeds: Vec<u64>,
    /// The data file (two numeric columns are used).
    pub csv: PathBuf,
    /// The two columns (default: all, which must be two).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub columns: Option<Vec<String>>,
    /// Held-out fraction (default 0.2).
    #[serde(default = "default_test_fraction")]
    pub test_fraction: f64,
    /// The network, as `[model]` of a train config: an `energy_mlp`.
    pub model: ModelSpec,
    /// `[train]` of the train configs.
    pub train: TrainSettings,
    /// The objectives, each `{ name = "…", kind = "…", … }` as the train config's `[objective]`,
    /// with an optional `train = { … }` laid over `[train]` for this objective alone.
    pub objective: Vec<ObjectiveCase>,
    /// Half-width b of the quadrature box [−b, b]² in standardised units (default 12).
    #[serde(default = "default_box")]
    pub box_half_width: f64,
    /// Gauss–Legendre panels per axis (default 48).
    #[serde(default = "default_panels")]
    pub panels: usize,
    /// Nodes per panel (default 8).
    #[serde(default = "default_nodes")]
    pub nodes: usize,
    /// Draws per method for the MMD (default 2000).
    #[serde(default = "default_samples")]
    pub samples: usize,
    /// Langevin step size for the networks' samples, standardised units (default 0.005).
    #[serde(default = "default_eps")]
    pub langevin_eps: f64,
    /// Langevin steps (default 2000).
    #[serde(default = "default_steps")]
    pub langevin_steps: usize,
    /// Points per axis of the density grid of the figure (default 80).
    #[serde(default = "default_grid")]
    pub grid: usize,
    /// Permutations of the MMD test (default 200; 0: no p-values).
    #[serde(default = "default_tests")]
    pub tests: usize,
    /// The likelihood comparison (`NAME_likelihood.csv`, `NAME_paired.csv`, `NAME_mle.csv`: the
    /// maximum-likelihood fit's training NLL path; default none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub likelihood: Option<Box<LikelihoodPart>>,
}

/// `[likelihood]` of a density fit: every method's held-out log-likelihood, raw and dequantised,
/// with three references (module docs).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LikelihoodPart {
    /// Bin widths per column in the data's units (0: continuous), as `data.dequantize`.
    pub dequantize: Vec<f64>,
    /// Uniform draws per held-out point (the same draws for every method).
    pub draws: usize,
    /// The maximum-likelihood fit of the energy network: warm-started from the objective named
    /// `from`, `steps` Adam steps at `lr`, log Z and its gradient by `panels` × `nodes` per axis.
    pub mle: MleSettings,
    /// Components, restarts and iterations of the EM mixture.
    pub mixture: [usize; 3],
    /// Bandwidth factors h of the cross-validated KDE (h²Σ̂).
    pub kde_factors: Vec<f64>,
    /// The noise-conditional network whose likelihood goes through the ODE: `[model]`,
    /// `[objective]`, `[train]` of a train config (trained on the seed's split with the
    /// dequantisation drawn afresh per batch).
    pub ode_model: ModelSpec,
    /// See `ode_model`.
    pub ode_objective: Objective,
    /// See `ode_model`.
    pub ode_train: TrainSettings,
    /// The `scorelab likelihood` keys (schedule, divergence, solver, rtol, atol) of its ODE.
    pub ode: LikelihoodPlan,
}

/// `[[objective]]` of a density fit: a train config's `[objective]` with a name.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ObjectiveCase {
    /// Its name in the CSVs.
    pub name: String,
    /// The name of another objective whose training time this one gets: its steps are the
    /// equal-time budget measured before any work (default: its own `train.steps`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub equal_time: Option<String>,
    /// Keys laid over `[train]` for this objective alone.
    #[serde(default)]
    pub train: TrainOverrides,
    /// The objective (`kind` and its keys).
    #[serde(flatten)]
    pub objective: Objective,
}

/// `[likelihood.mle]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MleSettings {
    /// The objective whose network starts the fit.
    pub from: String,
    /// Adam steps (full batch).
    pub steps: usize,
    /// Learning rate.
    pub lr: f64,
    /// Panels per axis of the training quadrature.
    pub panels: usize,
    /// Nodes per panel.
    pub nodes: usize,
    /// Half-width of the training quadrature's box [−b, b]² (the held-out likelihood is always
    /// evaluated with the experiment's own `box_half_width`, `panels` and `nodes`).
    pub box_half_width: f64,
}

fn default_test_fraction() -> f64 {
    0.2
}
fn default_box() -> f64 {
    12.0
}
fn default_panels() -> usize {
    48
}
fn default_nodes() -> usize {
    8
}
fn default_samples() -> usize {
    2000
}
fn default_eps() -> f64 {
    0.005
}
fn default_steps() -> usize {
    2000
}
fn default_grid() -> usize {
    80
}
fn default_tests() -> usize {
    200
}

/// The CSV header of a density-fit experiment.
pub const COLUMNS: &str =
    "method,seed,n_train,n_test,heldout_ll,heldout_ism,mmd2,mmd2_se,mmd2_p,log_z,log_z_change";

/// A fitted method, in standardised units.
enum Fitted {
    Net(Box<EnergyMlp>, String),
    Gaussian(Box<Gaussian>),
    Kde(Box<GaussianMixture>),
    Train,
}

impl Fitted {
    fn name(&self) -> String {
        match self {
            Fitted::Net(_, n) => n.clone(),
            Fitted::Gaussian(_) => "gaussian".into(),
            Fitted::Kde(_) => "kde_scott".into(),
            Fitted::Train => "train".into(),
        }
    }
}

/// A row of `NAME.csv`: one method and seed.
#[derive(Debug, Serialize, Deserialize)]
pub struct FitRow {
    /// The objective's name, `gaussian`, `kde_scott` or `train`.
    pub method: String,
    /// The seed.
    pub seed: u64,
    /// Training rows.
    pub n_train: usize,
    /// Held-out rows.
    pub n_test: usize,
    /// Held-out log-likelihood, nats per point in data units.
    pub heldout_ll: Option<Num>,
    /// Held-out ISM loss, standardised units.
    pub heldout_ism: Option<Num>,
    /// MMD² to the held-out rows.
    pub mmd2: Num,
    /// Its standard error.
    pub mmd2_se: Num,
    /// Its permutation test's p-value.
    pub mmd2_p: Option<Num>,
    /// log Z_θ by quadrature (networks).
    pub log_z: Option<Num>,
    /// Its change when the panels are halved.
    pub log_z_change: Option<Num>,
}

/// The objectives: names, cases, and `equal_time` references.
type Objectives = (Vec<String>, Vec<ObjectiveCase>, Vec<Option<String>>);

impl DensityFitExperiment {
    fn data(&self) -> DataSpec {
        DataSpec::csv(&self.csv, self.columns.clone(), self.test_fraction)
    }

    /// The plan of a (seed, objective): the file's data, model and [train], the objective's own
    /// kind and its `train` overrides.
    fn plan_for(&self, seed: u64, case: &ObjectiveCase) -> Result<TrainPlan> {
        let train = case
            .train
            .apply(&self.train)
            .map_err(|e| bad(format!("objective {}: {}", case.name, e.within("train"))))?;
        Ok(TrainPlan::new(
            seed,
            self.data(),
            self.model.clone(),
            case.objective.clone(),
            train,
        ))
    }

    fn objectives(&self) -> Result<Objectives> {
        let mut names: Vec<String> = vec![];
        for (i, o) in self.objective.iter().enumerate() {
            let n = &o.name;
            if names.iter().any(|m| m == n)
                || ["gaussian", "kde_scott", "train"].contains(&n.as_str())
            {
                return Err(bad(format!(
                    "objective[{i}]: name {n:?} is used twice or reserved"
                ))
                .into());
            }
            names.push(n.clone());
        }
        // `equal_time = "REF"`: the steps that take REF's training time, measured once (setup).
        let refs = self
            .objective
            .iter()
            .map(|o| o.equal_time.clone())
            .collect();
        Ok((names, self.objective.clone(), refs))
    }
}

impl Study for DensityFitExperiment {
    fn check(&self) -> Result<()> {
        if self.seeds.is_empty() || self.objective.is_empty() {
            return Err(bad("seeds and objective: give at least one of each").into());
        }
        for (k, v) in [
            ("panels", self.panels),
            ("nodes", self.nodes.saturating_sub(1)),
            ("samples", self.samples.saturating_sub(1)),
            ("langevin_steps", self.langevin_steps),
            ("grid", self.grid.saturating_sub(1)),
        ] {
            if v == 0 {
                return Err(bad(format!(
                    "{k}: too small (panels, langevin_steps ≥ 1; nodes, samples, grid ≥ 2)"
                ))
                .into());
            }
        }
        if !(self.box_half_width > 0.0 && self.box_half_width.is_finite()) {
            return Err(bad("box_half_width: must be positive and finite").into());
        }
        if !(self.langevin_eps > 0.0 && self.langevin_eps.is_finite()) {
            return Err(bad("langevin_eps: must be positive and finite").into());
        }
        if !matches!(self.model, ModelSpec::EnergyMlp { .. }) {
            return Err(bad(
                "model.kind: must be \"energy_mlp\" (the held-out likelihood needs the energy f_θ)",
            )
            .into());
        }
        let (names, objectives, _) = self.objectives()?;
        // Every objective's plan is valid before any work.
        for o in &objectives {
            self.plan_for(self.seeds[0], o)?;
        }
        if let Some(l) = &self.likelihood {
            if l.draws == 0 || !names.contains(&l.mle.from) {
                return Err(bad(format!(
                    "likelihood: draws ≥ 1 and mle.from one of the objectives ({})",
                    names.join(", ")
                ))
                .into());
            }
        }
        Ok(())
    }

    /// The equal-time budgets (`NAME_budget.csv`), measured once for every seed.
    fn setup(&self, _cx: &Context) -> Result<Tables> {
        let (names, objectives, refs) = self.objectives()?;
        let mut out = Tables::default();
        if refs.iter().any(Option::is_some) {
            let mut runs = vec![];
            for ((o, n), r) in objectives.iter().zip(&names).zip(&refs) {
                runs.push((n.clone(), r.clone(), self.plan_for(self.seeds[0], o)?));
            }
            let (_, csv) = scorelab_pipeline::train::equal_time_budgets(&runs, "objective")?;
            out.insert("budget", Table::from_csv(&csv));
        }
        Ok(out)
    }

    /// One unit per seed: every objective's network, the baselines, and the likelihood part.
    fn units(&self) -> Vec<Unit> {
        crate::study::seed_units(&self.seeds)
    }

    fn run(&self, unit: &Unit, cx: &Context) -> Result<Tables> {
        let (si, seed) = crate::study::seed_of(&self.seeds, unit)?;
        let first = si == 0;
        let (names, mut objectives, _) = self.objectives()?;
        // The steps of the equal-time objectives, from the setup's budgets.
        for (method, steps) in crate::study::budget_steps(cx.setup())? {
            if let Some(k) = names.iter().position(|n| *n == method) {
                objectives[k].train.steps = Some(steps);
            }
        }
        let e = self;
        let mut csv = Table::new(COLUMNS);
        let mut timing = Table::new("method,seed,train_seconds");
        let mut density = Table::new("method,x0,x1,log_p");
        let mut samples_csv = Table::new("method,x0,x1");
        let plan_for = |seed: u64, o: &ObjectiveCase| self.plan_for(seed, o);
        let data = || self.data();
        // The split and transform of this seed, as `scorelab train` makes them.
        let prepared = data().prepare_csv(seed)?;
        let (train, test, transform) = (prepared.train, prepared.test, prepared.transform);
        if transform.columns.len() != 2 {
            return Err(bad(format!(
            "columns: density_fit needs exactly two columns, got {} ({}); set columns = [\"a\", \"b\"]",
            transform.columns.len(),
            transform.columns.join(", ")
        ))
        .into());
        }
        let log_jac = transform.log_jacobian();
        let to_data = |z: &Array2<f64>| transform.inverse(z);
        let stream = |k: u64| scorelab_core::streams::Stream::FitDraws(k).rng(seed);
        // One bandwidth per seed for every method's MMD.
        let bandwidth = scorelab_eval::median_bandwidth(train.view(), test.view());
        let mut fitted: Vec<Fitted> = vec![];
        for (o, oname) in objectives.iter().zip(&names) {
            if cx.stopped() {
                let mut t = Tables::main(csv);
                t.stopped = true;
                return Ok(t);
            }
            let dir = cx.models().join(format!("{oname}_seed{seed}"));
            let plan = plan_for(seed, o)?;
            let started = std::time::Instant::now();
            let m = train_into(&plan, &dir, cx.stop())?.as_energy()?;
            timing.push(&TimingRow {
                method: oname.clone(),
                seed,
                train_seconds: Fixed(started.elapsed().as_secs_f64()),
            })?;
            fitted.push(Fitted::Net(Box::new(m), oname.clone()));
        }
        fitted.push(Fitted::Gaussian(Box::new(
            fit_gaussian(train.view()).map_err(|err| bad(err.to_string()))?,
        )));
        fitted.push(Fitted::Kde(Box::new(
            kde_scott(train.view()).map_err(|err| bad(err.to_string()))?,
        )));
        fitted.push(Fitted::Train);
        // The density grid of the figure, in data units: the data's range ± 15%.
        let all = to_data(&concatenate![Axis(0), train, test]);
        let g = e.grid;
        // Per column: (min − 15% of the range, max + 15% of the range).
        let (lo, hi): (Vec<f64>, Vec<f64>) = all
            .columns()
            .into_iter()
            .map(|c| {
                let a = c.fold(f64::INFINITY, |x, &y| x.min(y));
                let b = c.fold(f64::NEG_INFINITY, |x, &y| x.max(y));
                (a - 0.15 * (b - a), b + 0.15 * (b - a))
            })
            .unzip();
        let grid_x = Array2::from_shape_fn((g * g, 2), |(i, j)| {
            let k = if j == 0 { i % g } else { i / g };
            lo[j] + (hi[j] - lo[j]) * k as f64 / (g - 1) as f64
        });
        let grid_z = transform.forward(&grid_x);
        if first {
            for (set, z) in [("train", &train), ("test", &test)] {
                for r in to_data(z).rows() {
                    samples_csv.push(&PointRow {
                        method: set.into(),
                        x0: Num(r[0]),
                        x1: Num(r[1]),
                    })?;
                }
            }
        }
        for (k, f) in fitted.iter().enumerate() {
            let mut rng = stream(k as u64);
            let (ll, ism, draws, log_z, change, grid_lp) = match f {
                Fitted::Net(m, _) => {
                    let lz = log_partition(m, e.box_half_width, e.panels, e.nodes)?;
                    let lz2 = log_partition(m, e.box_half_width, (e.panels / 2).max(1), e.nodes)?;
                    let ll = (-m.energy(test.view())).mean().expect("rows") - lz + log_jac;
                    let ism = heldout_ism(m.as_ref(), test.view());
                    let langevin = Langevin::new(e.langevin_eps, e.langevin_steps)
                        .map_err(|err| bad(format!("langevin: {err}")))?;
                    let x0 = standard_normal(e.samples, 2, &mut rng);
                    // The chains evaluate the trained network by the f32 inference path; the
                    // quadrature normaliser and the held-out ISM above stay on the f64 door.
                    let fast = F32Score::new(&Network::Energy(m.as_ref().clone()), None)
                        .map_err(|err| bad(format!("{}: {err}", f.name())))?;
                    let draws = sample(&langevin, &fast as &dyn Score, x0, &mut rng);
                    let glp = -m.energy(grid_z.view()) - lz + log_jac;
                    (
                        ll,
                        Some(ism),
                        Some(draws),
                        Some(lz),
                        Some(lz2 - lz),
                        Some(glp),
                    )
                }
                Fitted::Gaussian(q) => {
                    let ll = q.log_density(test.view()).mean().expect("rows") + log_jac;
                    let ism = heldout_ism(q.as_ref(), test.view());
                    let draws = q.sample(e.samples, &mut rng);
                    let glp = q.log_density(grid_z.view()) + log_jac;
                    (ll, Some(ism), Some(draws), None, None, Some(glp))
                }
                Fitted::Kde(q) => {
                    let ll = q.log_density(test.view()).mean().expect("rows") + log_jac;
                    let ism = heldout_ism(q.as_ref(), test.view());
                    let draws = q.sample(e.samples, &mut rng);
                    let glp = q.log_density(grid_z.view()) + log_jac;
                    (ll, Some(ism), Some(draws), None, None, Some(glp))
                }
                Fitted::Train => (f64::NAN, None, None, None, None, None),
            };
            let finite: Array2<f64> = match &draws {
                Some(d) => finite_rows(d.view()),
                None => train.clone(),
            };
            let mmd = mmd2(
                finite.view(),
                test.view(),
                Some(bandwidth),
                e.tests,
                &mut rng,
            );
            csv.push(&FitRow {
                method: f.name(),
                seed,
                n_train: train.nrows(),
                n_test: test.nrows(),
                heldout_ll: (!ll.is_nan()).then_some(Num(ll)),
                heldout_ism: ism.map(Num),
                mmd2: Num(mmd.estimate.value),
                mmd2_se: Num(mmd.estimate.se),
                mmd2_p: mmd.estimate.p_value.map(Num),
                log_z: log_z.map(Num),
                log_z_change: change.map(Num),
            })?;
            if first {
                if let Some(glp) = &grid_lp {
                    for i in 0..grid_x.nrows() {
                        density.push(&DensityRow {
                            method: f.name(),
                            x0: Num(grid_x[[i, 0]]),
                            x1: Num(grid_x[[i, 1]]),
                            log_p: Num(glp[i]),
                        })?;
                    }
                }
                if draws.is_some() {
                    for r in to_data(&finite).rows() {
                        samples_csv.push(&PointRow {
                            method: f.name(),
                            x0: Num(r[0]),
                            x1: Num(r[1]),
                        })?;
                    }
                }
            }
        }

        let mut out = Tables::default();
        if let Some(l) = &self.likelihood {
            if cx.stopped() {
                let mut t = Tables::main(csv);
                t.stopped = true;
                return Ok(t);
            }
            let (lik, paired, mle, fits) =
                likelihood_part(self, l, &names, seed, cx.models(), cx.stop())?;
            // The likelihood part's fitting times go with the networks' training times.
            for (method, secs) in fits {
                timing.push(&TimingRow {
                    method,
                    seed,
                    train_seconds: Fixed(secs),
                })?;
            }
            out.insert("likelihood", lik);
            out.insert("paired", paired);
            out.insert("mle", mle);
        }
        out.insert("", csv);
        out.insert("timing", timing);
        if first {
            out.insert("density", density);
            out.insert("samples", samples_csv);
        }
        Ok(out)
    }

    fn finish(&self, done: Vec<Tables>) -> Result<Tables> {
        let rows = Tables::concat(&done, "")?;
        let parsed: Vec<FitRow> = rows.rows()?;
        let mut summary = Table::new(
            "method,seeds,heldout_ll_mean,heldout_ll_sd,heldout_ism_mean,heldout_ism_sd,mmd2_mean,mmd2_sd",
        );
        let mut methods: Vec<&str> = vec![];
        for r in &parsed {
            if !methods.contains(&r.method.as_str()) {
                methods.push(&r.method);
            }
        }
        for m in methods {
            let v: Vec<&FitRow> = parsed.iter().filter(|r| r.method == m).collect();
            let col = |f: &dyn Fn(&FitRow) -> Option<Num>| {
                let x: Vec<f64> = v.iter().map(|r| f(r).map_or(f64::NAN, |n| n.0)).collect();
                if x.iter().all(|a| a.is_nan()) {
                    (String::new(), String::new())
                } else {
                    mean_sd_cell(&x)
                }
            };
            let (a, b) = col(&|r| r.heldout_ll);
            let (c, d) = col(&|r| r.heldout_ism);
            let (f, g) = col(&|r| Some(r.mmd2));
            summary.push(&SummaryRow {
                method: m.into(),
                seeds: v.len(),
                heldout_ll_mean: a,
                heldout_ll_sd: b,
                heldout_ism_mean: c,
                heldout_ism_sd: d,
                mmd2_mean: f,
                mmd2_sd: g,
            })?;
        }
        let mut out = Tables::main(rows);
        out.insert("summary", summary);
        for name in ["density", "samples", "timing"] {
            out.insert(name, Tables::concat(&done, name)?);
        }
        if self.likelihood.is_some() {
            for name in ["likelihood", "paired", "mle"] {
                out.insert(name, Tables::concat(&done, name)?);
            }
        }
        Ok(out)
    }
}

/// A method's name, per-point held-out log p (raw, dequantised), score evaluations, fit seconds.
type PerPoint = (
    String,
    ndarray::Array1<f64>,
    ndarray::Array1<f64>,
    String,
    f64,
);

/// A row of `NAME_timing.csv`.
#[derive(Serialize)]
struct TimingRow {
    method: String,
    seed: u64,
    train_seconds: Fixed<3>,
}

/// A row of `NAME_samples.csv`: a point of a method's samples (or of the `train`/`test` split).
#[derive(Serialize)]
struct PointRow {
    method: String,
    x0: Num,
    x1: Num,
}

/// A row of `NAME_density.csv`.
#[derive(Serialize)]
struct DensityRow {
    method: String,
    x0: Num,
    x1: Num,
    log_p: Num,
}

/// A row of `NAME_summary.csv`: mean and sd over seeds (empty where a method has no value).
#[derive(Serialize)]
struct SummaryRow {
    method: String,
    seeds: usize,
    heldout_ll_mean: String,
    heldout_ll_sd: String,
    heldout_ism_mean: String,
    heldout_ism_sd: String,
    mmd2_mean: String,
    mmd2_sd: String,
}

/// A row of `NAME_mle.csv`: the maximum-likelihood fit's training NLL.
#[derive(Serialize)]
struct MleStepRow {
    seed: u64,
    step: usize,
    train_nll: Num,
}

/// A row of `NAME_likelihood.csv`.
#[derive(Serialize)]
struct LikelihoodRow {
    method: String,
    seed: u64,
    n_test: usize,
    heldout_ll: Num,
    heldout_ll_dequantized: Num,
    score_evals: String,
}

/// The likelihood part's tables (`likelihood`, `paired`, `mle`) and the seconds of its fits.
type LikelihoodTables = (Table, Table, Table, Vec<(String, f64)>);

/// The references every score-matching fit is judged against, and the methods' likelihoods by
/// both routes.
const REFERENCES: [&str; 3] = ["mle", "mixture_em", "kde_cv"];

/// The `[likelihood]` part (module docs): per seed, every method's per-point held-out
/// log-likelihood, raw and dequantised (the same uniform draws for every method), and the paired
/// differences against the references.
fn likelihood_part(
    e: &DensityFitExperiment,
    l: &LikelihoodPart,
    names: &[String],
    seed: u64,
    models: &Path,
    stop: &AtomicBool,
) -> Result<LikelihoodTables> {
    use scorelab_pipeline::baselines::{fit_energy_ml, fit_mixture_em, kde_cv};
    use scorelab_pipeline::data::Dequantize;
    if l.draws == 0 || !names.contains(&l.mle.from) {
        return Err(bad(format!(
            "likelihood: draws ≥ 1 and mle.from one of the objectives ({})",
            names.join(", ")
        ))
        .into());
    }
    let mut rows = Table::new("method,seed,n_test,heldout_ll,heldout_ll_dequantized,score_evals");
    // Seconds each of the likelihood part's own fits took (written to the timing file).
    let mut fits: Vec<(String, f64)> = vec![];
    let mut paired = Table::new("method,reference,seed,n_test,mean_difference,se_difference");
    let mut mle_path = Table::new("seed,step,train_nll");
    {
        let data = DataSpec::csv(&e.csv, e.columns.clone(), e.test_fraction);
        let prepared = data.clone().prepare_csv(seed)?;
        let (train, test, transform) = (prepared.train, prepared.test, prepared.transform);
        let log_jac = transform.log_jacobian();
        let test_x = transform.inverse(&test);
        if l.dequantize.len() != test_x.ncols() {
            return Err(bad("likelihood.dequantize: one width per column").into());
        }
        // The draws, data units, the same for every method.
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(scorelab_core::streams::Stream::HeldoutDequantize.id());
        let deq: Vec<Array2<f64>> = (0..l.draws)
            .map(|_| {
                let mut x = test_x.clone();
                for r in x.rows_mut() {
                    scorelab_pipeline::data::add_uniform(r, &l.dequantize, &mut rng);
                }
                x
            })
            .collect();
        let mut per_point: Vec<PerPoint> = vec![];
        // A density in model units at points in data units.
        let eval = |f: &dyn Fn(ndarray::ArrayView2<f64>) -> ndarray::Array1<f64>| {
            let raw = f(test.view()) + log_jac;
            let mut mean = ndarray::Array1::zeros(test.nrows());
            for x in &deq {
                mean += &(f(transform.forward(x).view()) + log_jac);
            }
            (raw, mean / l.draws as f64)
        };
        let mut nets: Vec<(String, EnergyMlp)> = vec![];
        for n in names {
            let path = models.join(format!("{n}_seed{seed}"));
            let m = scorelab_pipeline::train::TrainedModel::load(&path)?;
            let m = m.as_energy()?;
            nets.push((n.clone(), m));
        }
        let started = std::time::Instant::now();
        let from = &nets
            .iter()
            .find(|(n, _)| n == &l.mle.from)
            .expect("checked")
            .1;
        let (mle, history) = fit_energy_ml(
            from,
            train.view(),
            l.mle.box_half_width,
            l.mle.panels,
            l.mle.nodes,
            l.mle.steps,
            l.mle.lr,
        )?;
        let mle_seconds = started.elapsed().as_secs_f64();
        // The training NLL (model units) every 10 steps and at the end: its flattening is the
        // fit's convergence check.
        let last = history.len() - 1;
        for (k, v) in history.iter().enumerate() {
            if k % 10 == 0 || k == last {
                mle_path.push(&MleStepRow {
                    seed,
                    step: k,
                    train_nll: Num(*v),
                })?;
            }
        }
        nets.push(("mle".into(), mle));
        for (n, m) in &nets {
            let lz = log_partition(m, e.box_half_width, e.panels, e.nodes)?;
            let (raw, dq) = eval(&|z| -m.energy(z) - lz);
            let secs = if n == "mle" { mle_seconds } else { f64::NAN };
            per_point.push((n.clone(), raw, dq, String::new(), secs));
        }
        let gauss = fit_gaussian(train.view()).map_err(|err| bad(err.to_string()))?;
        let scott = kde_scott(train.view()).map_err(|err| bad(err.to_string()))?;
        let t0 = std::time::Instant::now();
        let [k, restarts, iters] = l.mixture;
        let (em, _) = fit_mixture_em(train.view(), k, restarts, iters, seed)?;
        let em_s = t0.elapsed().as_secs_f64();
        let t0 = std::time::Instant::now();
        let (cv, _, _) = kde_cv(train.view(), &l.kde_factors)?;
        let cv_s = t0.elapsed().as_secs_f64();
        for (n, q, secs) in [
            ("gaussian", AnyDensity::from(gauss), f64::NAN),
            ("kde_scott", scott.into(), f64::NAN),
            ("mixture_em", em.into(), em_s),
            ("kde_cv", cv.into(), cv_s),
        ] {
            let (raw, dq) = eval(&|z| q.log_density(z));
            per_point.push((n.into(), raw, dq, String::new(), secs));
        }
        if stop.load(Ordering::SeqCst) {
            return Err(scorelab_pipeline::Interrupted(
                "while fitting the likelihood references".into(),
            )
            .into());
        }
        // The noise-conditional network, trained with fresh dequantisation, through its ODE.
        let mut ode_data = data;
        ode_data.dequantize = Some(Dequantize::Columns(l.dequantize.clone()));
        ode_data.dequantize_fresh = Some(true);
        let plan = TrainPlan::new(
            seed,
            ode_data,
            l.ode_model.clone(),
            l.ode_objective.clone(),
            l.ode_train.clone(),
        );
        let t0 = std::time::Instant::now();
        let trained = train_into(&plan, &models.join(format!("ode_seed{seed}")), stop)?;
        let ode_train_s = t0.elapsed().as_secs_f64();
        let lp = l.ode.clone();
        let est = lp
            .prepare_with(trained)
            .map_err(|err| bad(format!("likelihood.ode: {err}")))?;
        let run = |x: &Array2<f64>| -> Result<(ndarray::Array1<f64>, usize)> {
            let out = est
                .run(x.view(), &mut ())
                .map_err(|err| bad(format!("likelihood.ode: {err}")))?;
            let evals = out.rows.iter().map(|r| r.score_evals).max().unwrap_or(0);
            Ok((out.rows.iter().map(|r| r.log_p).collect(), evals))
        };
        let (raw, mut evals) = run(&test_x)?;
        let mut dq = ndarray::Array1::zeros(test.nrows());
        for x in &deq {
            let (v, e2) = run(x)?;
            dq += &v;
            evals += e2;
        }
        per_point.push((
            "ode".into(),
            raw,
            dq / l.draws as f64,
            evals.to_string(),
            ode_train_s,
        ));
        let n_test = test.nrows();
        for (m, raw, dq, evals, secs) in &per_point {
            rows.push(&LikelihoodRow {
                method: m.clone(),
                seed,
                n_test,
                heldout_ll: Num(raw.mean().expect("rows")),
                heldout_ll_dequantized: Num(dq.mean().expect("rows")),
                score_evals: evals.clone(),
            })?;
            if !secs.is_nan() {
                fits.push((m.clone(), *secs));
            }
        }
        for r in REFERENCES {
            let reference = &per_point.iter().find(|p| p.0 == r).expect("computed").2;
            for (m, _, dq, _, _) in &per_point {
                if m == r {
                    continue;
                }
                let diff = MeanSe::of((dq - reference).view());
                paired.push(&PairedRow {
                    method: m.clone(),
                    reference: r.into(),
                    seed,
                    n_test,
                    mean_difference: Num(diff.mean),
                    se_difference: Num(diff.se),
                })?;
            }
        }
    }
    Ok((rows, paired, mle_path, fits))
}
