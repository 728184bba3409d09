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
//!   network is sampled by `langevin_steps` steps of unadjusted Langevin with step `langevin_eps`
//!   from N(0, I); the baselines exactly. The row `train` is the training rows themselves: the MMD
//!   a perfect model would get with this few held-out points.
//!
//! Writes `NAME.csv` (one row per method and seed), `NAME_summary.csv` (mean and sd over seeds),
//! `NAME_density.csv` (log-density in data units on a grid, first seed) and `NAME_samples.csv`
//! (the first seed's samples and data split, data units), and `NAME_timing.csv` (training seconds:
//! the one file that differs between reruns).

use crate::bad;
use crate::experiment::{mean_sd_cell, train_model, Outputs};
use anyhow::{Context, Result};
use ndarray::{concatenate, Array1, Array2, ArrayView2, Axis};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use scorelab_core::{LogDensity, Sample, Score, ScoreFunction};
use scorelab_densities::{Gaussian, GaussianMixture};
use scorelab_eval::mmd2;
use scorelab_models::{EnergyMlp, Network};
use scorelab_samplers::{sample, standard_normal, Langevin};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

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
    /// `[model]` of the train configs: an `energy_mlp`.
    pub model: toml::Table,
    /// `[train]` of the train configs.
    pub train: toml::Table,
    /// The objectives, each `{ name = "…", kind = "…", … }` as the train config's `[objective]`,
    /// with an optional `train = { … }` merged over `[train]` for this objective alone.
    pub objective: Vec<toml::Table>,
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

/// log Σ exp(aᵢ).
fn log_sum_exp(a: impl Iterator<Item = f64>) -> f64 {
    let v: Vec<f64> = a.collect();
    let m = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !m.is_finite() {
        return m;
    }
    m + v.iter().map(|x| (x - m).exp()).sum::<f64>().ln()
}

/// log ∫_{[−b,b]²} e^{−f(z)} dz by composite Gauss–Legendre, `panels` × `nodes` per axis.
fn log_partition(m: &EnergyMlp, b: f64, panels: usize, nodes: usize) -> f64 {
    let rule = gauss_quad::legendre::GaussLegendre::new(nodes).expect("at least two nodes");
    let width = 2.0 * b / panels as f64;
    let mut z = vec![];
    let mut w = vec![];
    for p in 0..panels {
        let (lo, hi) = (-b + p as f64 * width, -b + (p + 1) as f64 * width);
        for &(t, wt) in rule.as_node_weight_pairs() {
            z.push(0.5 * (lo + hi) + 0.5 * (hi - lo) * t);
            w.push(0.5 * (hi - lo) * wt);
        }
    }
    let n = z.len();
    let pts = Array2::from_shape_fn(
        (n * n, 2),
        |(i, j)| if j == 0 { z[i % n] } else { z[i / n] },
    );
    let f = m.energy(pts.view());
    log_sum_exp((0..n * n).map(|i| -f[i] + w[i % n].ln() + w[i / n].ln()))
}

/// Mean of ½‖s‖² + tr ∇s over the rows.
fn ism_loss(f: &dyn ScoreFunction, z: ArrayView2<f64>) -> f64 {
    let s = f.score(z);
    let tr = f.jacobian_trace(z);
    (0..z.nrows())
        .map(|i| 0.5 * s.row(i).dot(&s.row(i)) + tr[i])
        .sum::<f64>()
        / z.nrows() as f64
}

/// The unbiased sample covariance of the rows.
fn covariance(x: ArrayView2<f64>) -> Array2<f64> {
    let m = x.mean_axis(Axis(0)).expect("rows");
    let c = &x - &m;
    c.t().dot(&c) / (x.nrows() as f64 - 1.0)
}

pub(crate) fn run(
    e: &DensityFitExperiment,
    name: &str,
    results: &Path,
    stop: &Arc<AtomicBool>,
) -> Result<Outputs> {
    if e.seeds.is_empty() || e.objective.is_empty() {
        return Err(bad("seeds and objective: give at least one of each").into());
    }
    for (k, v) in [
        ("panels", e.panels),
        ("nodes", e.nodes.saturating_sub(1)),
        ("samples", e.samples.saturating_sub(1)),
        ("langevin_steps", e.langevin_steps),
        ("grid", e.grid.saturating_sub(1)),
    ] {
        if v == 0 {
            return Err(bad(format!(
                "{k}: too small (panels, langevin_steps ≥ 1; nodes, samples, grid ≥ 2)"
            ))
            .into());
        }
    }
    if !(e.box_half_width > 0.0 && e.box_half_width.is_finite()) {
        return Err(bad("box_half_width: must be positive and finite").into());
    }
    if !(e.langevin_eps > 0.0 && e.langevin_eps.is_finite()) {
        return Err(bad("langevin_eps: must be positive and finite").into());
    }
    let mut names = vec![];
    for (i, o) in e.objective.iter().enumerate() {
        let n = o
            .get("name")
            .and_then(|v| v.as_str())
            .ok_or_else(|| bad(format!("objective[{i}]: needs name = \"…\"")))?;
        if names.iter().any(|m| m == n) || ["gaussian", "kde_scott", "train"].contains(&n) {
            return Err(bad(format!(
                "objective[{i}]: name {n:?} is used twice or reserved"
            ))
            .into());
        }
        names.push(n.to_string());
    }
    if e.model.get("kind").and_then(|v| v.as_str()) != Some("energy_mlp") {
        return Err(bad(
            "model.kind: must be \"energy_mlp\" (the held-out likelihood needs the energy f_θ)",
        )
        .into());
    }
    let models = results.join("models").join(name);
    std::fs::create_dir_all(&models)
        .with_context(|| format!("cannot create {}", models.display()))?;
    let config_for = |seed: u64, objective: &toml::Table| -> toml::Table {
        let mut cfg = toml::Table::new();
        cfg.insert("seed".into(), (seed as i64).into());
        let mut data = toml::Table::new();
        data.insert("csv".into(), e.csv.to_string_lossy().to_string().into());
        if let Some(c) = &e.columns {
            data.insert("columns".into(), toml::Value::try_from(c).expect("strings"));
        }
        data.insert("test_fraction".into(), e.test_fraction.into());
        cfg.insert("data".into(), data.into());
        cfg.insert("model".into(), e.model.clone().into());
        let mut o = objective.clone();
        o.remove("name");
        let mut train = e.train.clone();
        if let Some(toml::Value::Table(t)) = o.remove("train") {
            crate::experiment::deep_merge(&mut train, &t);
        }
        cfg.insert("objective".into(), o.into());
        cfg.insert("train".into(), train.into());
        cfg
    };
    let mut csv = format!("{COLUMNS}\n");
    let mut timing = String::from("method,seed,train_seconds\n");
    let mut density = String::from("method,x0,x1,log_p\n");
    let mut samples_csv = String::from("method,x0,x1\n");
    let mut per_method: Vec<(String, Vec<[f64; 3]>)> = vec![];
    let total = (e.seeds.len() * e.objective.len()) as u64;
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} fits · {msg} · eta {eta}")
            .expect("template"),
    );
    for (si, &seed) in e.seeds.iter().enumerate() {
        // The split and transform of this seed, as `scorelab train` makes them.
        let (train, test, transform) =
            crate::train::split_of(config_for(seed, &e.objective[0]), "objective[0]")?;
        if transform.columns.len() != 2 {
            return Err(bad(format!(
                "columns: density_fit needs exactly two columns, got {} ({}); set columns = [\"a\", \"b\"]",
                transform.columns.len(),
                transform.columns.join(", ")
            ))
            .into());
        }
        let log_jac = transform.log_jacobian();
        let to_data = |z: &Array2<f64>| {
            let m = Array1::from(transform.mean.clone());
            let sd = Array1::from(transform.scale.clone());
            z * &sd + &m
        };
        let stream = |k: u64| {
            let mut r = ChaCha8Rng::seed_from_u64(seed);
            r.set_stream(100 + k);
            r
        };
        // One bandwidth per seed for every method's MMD.
        let bandwidth = scorelab_eval::median_bandwidth(train.view(), test.view());
        let mut fitted: Vec<Fitted> = vec![];
        for (o, oname) in e.objective.iter().zip(&names) {
            if stop.load(Ordering::SeqCst) {
                bar.abandon();
                return Ok((csv, String::new(), vec![], true));
            }
            bar.set_message(format!("{oname} seed {seed}"));
            let cfg_path = models.join(format!("{oname}_seed{seed}.toml"));
            std::fs::write(
                &cfg_path,
                toml::to_string(&config_for(seed, o)).expect("toml"),
            )
            .with_context(|| format!("cannot write {}", cfg_path.display()))?;
            let dir = models.join(format!("{oname}_seed{seed}"));
            let started = std::time::Instant::now();
            train_model(&cfg_path, &dir, stop)?;
            timing.push_str(&format!(
                "{oname},{seed},{:.3}\n",
                started.elapsed().as_secs_f64()
            ));
            let net = Network::load(&dir.join("model.safetensors"))?;
            let Network::Energy(m) = net else {
                unreachable!("model.kind checked to be energy_mlp")
            };
            fitted.push(Fitted::Net(Box::new(m), oname.clone()));
            bar.inc(1);
        }
        let mean = train.mean_axis(Axis(0)).expect("rows");
        let cov = covariance(train.view());
        fitted.push(Fitted::Gaussian(Box::new(
            Gaussian::new(mean, cov.clone()).map_err(|err| bad(format!("gaussian fit: {err}")))?,
        )));
        // Scott's rule: H = n^{−2/(d+4)} Σ̂.
        let n = train.nrows();
        let h = &cov * (n as f64).powf(-2.0 / 6.0);
        fitted.push(Fitted::Kde(Box::new(
            GaussianMixture::new(
                Array1::from_elem(n, 1.0 / n as f64),
                train.rows().into_iter().map(|r| r.to_owned()).collect(),
                vec![h; n],
            )
            .map_err(|err| bad(format!("kde: {err}")))?,
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
        if si == 0 {
            for (set, z) in [("train", &train), ("test", &test)] {
                for r in to_data(z).rows() {
                    samples_csv.push_str(&format!("{set},{},{}\n", r[0], r[1]));
                }
            }
        }
        for (k, f) in fitted.iter().enumerate() {
            let mut rng = stream(k as u64);
            let (ll, ism, draws, log_z, change, grid_lp) = match f {
                Fitted::Net(m, _) => {
                    let lz = log_partition(m, e.box_half_width, e.panels, e.nodes);
                    let lz2 = log_partition(m, e.box_half_width, (e.panels / 2).max(1), e.nodes);
                    let ll = (-m.energy(test.view())).mean().expect("rows") - lz + log_jac;
                    let ism = ism_loss(m.as_ref(), test.view());
                    let langevin = Langevin::new(e.langevin_eps, e.langevin_steps)
                        .map_err(|err| bad(format!("langevin: {err}")))?;
                    let x0 = standard_normal(e.samples, 2, &mut rng);
                    let draws = sample(&langevin, m.as_ref() as &dyn Score, x0, &mut rng);
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
                    let ism = ism_loss(q.as_ref(), test.view());
                    let draws = q.sample(e.samples, &mut rng);
                    let glp = q.log_density(grid_z.view()) + log_jac;
                    (ll, Some(ism), Some(draws), None, None, Some(glp))
                }
                Fitted::Kde(q) => {
                    let ll = q.log_density(test.view()).mean().expect("rows") + log_jac;
                    let ism = ism_loss(q.as_ref(), test.view());
                    let draws = q.sample(e.samples, &mut rng);
                    let glp = q.log_density(grid_z.view()) + log_jac;
                    (ll, Some(ism), Some(draws), None, None, Some(glp))
                }
                Fitted::Train => (f64::NAN, None, None, None, None, None),
            };
            let finite: Array2<f64> = match &draws {
                Some(d) => {
                    let keep: Vec<usize> = (0..d.nrows())
                        .filter(|&i| d.row(i).iter().all(|v| v.is_finite()))
                        .collect();
                    d.select(Axis(0), &keep)
                }
                None => train.clone(),
            };
            let mmd = mmd2(
                finite.view(),
                test.view(),
                Some(bandwidth),
                e.tests,
                &mut rng,
            );
            let cell = crate::output::cell;
            let ll_cell = if ll.is_nan() {
                String::new()
            } else {
                ll.to_string()
            };
            csv.push_str(&format!(
                "{},{seed},{},{},{ll_cell},{},{},{},{},{},{}\n",
                f.name(),
                train.nrows(),
                test.nrows(),
                cell(ism),
                mmd.estimate.value,
                mmd.estimate.se,
                cell(mmd.estimate.p_value),
                cell(log_z),
                cell(change),
            ));
            let entry = [ll, ism.unwrap_or(f64::NAN), mmd.estimate.value];
            match per_method.iter_mut().find(|p| p.0 == f.name()) {
                Some(p) => p.1.push(entry),
                None => per_method.push((f.name(), vec![entry])),
            }
            if si == 0 {
                if let Some(glp) = &grid_lp {
                    for i in 0..grid_x.nrows() {
                        density.push_str(&format!(
                            "{},{},{},{}\n",
                            f.name(),
                            grid_x[[i, 0]],
                            grid_x[[i, 1]],
                            glp[i]
                        ));
                    }
                }
                if draws.is_some() {
                    for r in to_data(&finite).rows() {
                        samples_csv.push_str(&format!("{},{},{}\n", f.name(), r[0], r[1]));
                    }
                }
            }
        }
    }
    bar.finish_and_clear();
    let mut summary = String::from(
        "method,seeds,heldout_ll_mean,heldout_ll_sd,heldout_ism_mean,heldout_ism_sd,mmd2_mean,mmd2_sd\n",
    );
    for (m, v) in &per_method {
        let col = |j: usize| {
            let x: Vec<f64> = v.iter().map(|a| a[j]).collect();
            if x.iter().all(|a| a.is_nan()) {
                (String::new(), String::new())
            } else {
                mean_sd_cell(&x)
            }
        };
        let (a, b) = col(0);
        let (c, d) = col(1);
        let (f, g) = col(2);
        summary.push_str(&format!("{m},{},{a},{b},{c},{d},{f},{g}\n", v.len()));
    }
    Ok((
        csv,
        summary,
        vec![
            ("density".into(), density),
            ("samples".into(), samples_csv),
            ("timing".into(), timing),
        ],
        false,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use scorelab_models::Activation;

    /// With every weight zero the energy is the confining term alone, f = ‖z‖²/(2τ²), so
    /// Z over [−b, b]² is 2πτ² (1 − 2Φ(−b/τ))² exactly.
    #[test]
    fn the_quadrature_normaliser_of_a_gaussian_energy_is_exact() {
        let tau = 1.5;
        let mut m = EnergyMlp::new(2, &[8], Activation::Softplus, tau, 1).unwrap();
        for v in m.params_mut().values_mut() {
            v.iter_mut().for_each(|w| *w = 0.0);
        }
        // f also carries the MLP's constant output, which is the same at every point; subtract it.
        let c = m.energy(ndarray::array![[0.0, 0.0]].view())[0];
        for b in [2.0, 12.0] {
            let phi = statrs::function::erf::erfc(b / tau / std::f64::consts::SQRT_2) / 2.0;
            let exact =
                (2.0 * std::f64::consts::PI * tau * tau).ln() + 2.0 * (1.0 - 2.0 * phi).ln() - c;
            let got = log_partition(&m, b, 24, 8);
            assert!((got - exact).abs() < 1e-10, "b = {b}: {got} vs {exact}");
        }
    }
}
