//! The numerical half of `scorelab.audit`: starting points, exact draws, the metrics of a sample
//! against the exact target, the exact flow map, and scorelab's own samplers on the same grid.
//! The loop over budgets and seeds, and the call of the user's sampler, are in
//! `python/scorelab/audit.py`.

use crate::density::{Density, Schedule};
use crate::input::{self, bad, out1, out2, points};
use ndarray::{Array1, Array2, ArrayView2};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use scorelab_core::streams::Stream;
use scorelab_core::{Dimension, Moments, NoisedScore, Sample};
use scorelab_densities::{AnyDensity, GaussianMixture};
use scorelab_pipeline::truth::{self, Start};
use scorelab_samplers::AnySampler;

/// p's exact noised score (its σ checked by the caller's validation of the target).
struct Exact<'a>(&'a AnyDensity);

impl Dimension for Exact<'_> {
    fn dim(&self) -> usize {
        self.0.dim()
    }
}

impl NoisedScore for Exact<'_> {
    fn noised_score(&self, y: ArrayView2<f64>, sigma: f64) -> Array2<f64> {
        self.0
            .noised_score(y, sigma)
            .expect("a Gaussian mixture has every p_σ")
    }
}

fn target_of(t: &Density) -> PyResult<&AnyDensity> {
    if t.p.noised(0.0).is_none() {
        return Err(bad(
            "target",
            format!(
                "must be a gaussian or gaussian_mixture (its p_σ is closed form), got {}",
                t.p.kind()
            ),
        ));
    }
    Ok(&t.p)
}

/// The mixture the metrics read modes from: the target itself, or a Gaussian as one component.
fn as_mixture(p: &AnyDensity) -> GaussianMixture {
    match p {
        AnyDensity::GaussianMixture(m) => m.clone(),
        g => GaussianMixture::new(Array1::ones(1), vec![g.mean()], vec![g.covariance()])
            .expect("a valid Gaussian"),
    }
}

/// `n` starting points at σ̃ = `sigma` in the α = 1 variables: N(0, `std`² I), or with `exact`
/// draws of p_σ (x₀ + σz, x₀ ∼ p), from the audit seed's start stream.
#[pyfunction]
#[pyo3(signature = (target, n, *, seed, sigma, std, exact))]
fn _audit_start<'py>(
    py: Python<'py>,
    target: &Density,
    n: i64,
    seed: i64,
    sigma: f64,
    std: f64,
    exact: bool,
) -> PyResult<Bound<'py, numpy::PyArray2<f64>>> {
    let p = target_of(target)?;
    let n = input::count(n, "chains")?;
    let seed = input::seed(seed, "seed")?;
    let mix = as_mixture(p);
    let start = if exact {
        Start::Exact
    } else {
        Start::Prior { std }
    };
    let x = py.detach(|| truth::starts(&mix, n, sigma, start, &mut Stream::AuditStart.rng(seed)));
    Ok(out2(py, x))
}

/// `n` exact draws of p from the audit seed's exact stream.
#[pyfunction]
#[pyo3(signature = (target, n, *, seed))]
fn _audit_exact<'py>(
    py: Python<'py>,
    target: &Density,
    n: i64,
    seed: i64,
) -> PyResult<Bound<'py, numpy::PyArray2<f64>>> {
    let p = target_of(target)?;
    let n = input::count(n, "chains")?;
    let seed = input::seed(seed, "seed")?;
    Ok(out2(
        py,
        py.detach(|| p.sample(n, &mut Stream::AuditExact.rng(seed))),
    ))
}

/// The metrics of samples x against p, given exact draws of p of the same size: mean log p(x),
/// mode weights, per-mode mean error ‖m̂ₖ − μₖ‖ and relative covariance error
/// ‖Ĉₖ − Σₖ‖_F/‖Σₖ‖_F (samples assigned by largest responsibility; NaN for a mode with < 2),
/// and MMD²_u between x and the exact draws at `bandwidth` (on the first 2000 rows of each). Non-finite rows count as failed and
/// are left out (their fraction is returned).
#[pyfunction]
#[pyo3(signature = (x, target, exact, *, bandwidth))]
fn _audit_metrics<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    target: &Density,
    exact: &Bound<'py, PyAny>,
    bandwidth: f64,
) -> PyResult<Bound<'py, PyDict>> {
    let p = target_of(target)?;
    let d = p.dim();
    let xs = input::floats(x, "samples")?;
    let s = xs.shape();
    if s.len() != 2 || s[1] != d {
        return Err(bad(
            "samples",
            format!("the sampler must return shape (chains, {d}), got {s:?}"),
        ));
    }
    let e = points(exact, "exact", Some(d))?;
    let (xv, ev) = (xs.view2(), e.view2());
    let mix = as_mixture(p);
    let out = py.detach(|| truth::sample_metrics(xv, &mix, Some((ev, bandwidth))));
    let r = PyDict::new(py);
    r.set_item("failed", out.failed)?;
    r.set_item("log_p", out.log_p)?;
    r.set_item("weights", out1(py, out.weights))?;
    r.set_item("mean_error", out1(py, out.mean_error))?;
    r.set_item("cov_error", out1(py, out.cov_error))?;
    r.set_item("mmd2", out.mmd2)?;
    Ok(r)
}

/// The exact probability-flow map in the α = 1 variables from σ̃ = `sigma` to 0,
/// dy/dσ = −σ ∇log p_σ(y), by adaptive Dormand–Prince at tolerance `tol` (relative and absolute).
#[pyfunction]
#[pyo3(signature = (target, y, *, sigma, tol = 1e-10))]
fn _flow_map<'py>(
    py: Python<'py>,
    target: &Density,
    y: &Bound<'py, PyAny>,
    sigma: f64,
    tol: f64,
) -> PyResult<Bound<'py, numpy::PyArray2<f64>>> {
    let p = target_of(target)?;
    let y = points(y, "x", Some(p.dim()))?;
    let v = y.view2();
    let out = py.detach(|| truth::flow_map(&Exact(p), v, sigma, 0.0, tol));
    out.map(|y| out2(py, y))
        .map_err(|e| bad("tol", e.to_string()))
}

/// One of scorelab's samplers (a dict with the keys of `[sampler]`; its `schedule` and `steps`
/// are set here) on p's exact score from the starting points `y` (α = 1 variables at σ̃(T)).
/// Returns the samples and the score evaluations per chain.
#[pyfunction]
#[pyo3(signature = (spec, target, y, *, schedule, steps, seed))]
fn _audit_scorelab<'py>(
    py: Python<'py>,
    spec: &Bound<'py, PyAny>,
    target: &Density,
    y: &Bound<'py, PyAny>,
    schedule: &Schedule,
    steps: i64,
    seed: i64,
) -> PyResult<(Bound<'py, numpy::PyArray2<f64>>, f64)> {
    let p = target_of(target)?;
    let steps = input::count(steps, "steps")?;
    let seed = input::seed(seed, "seed")?;
    let y = points(y, "x", Some(p.dim()))?;
    let spec = spec.cast::<PyDict>().map_err(|_| bad("sampler", "a scorelab sampler is a dict with the keys of [sampler], e.g. {\"kind\": \"heun\"}"))?.copy()?;
    spec.set_item("steps", steps)?;
    spec.set_item("schedule", schedule.spec_dict(py)?)?;
    if !schedule.s.ends_at_zero() && !spec.contains("denoise")? {
        spec.set_item("denoise", true)?;
    }
    let sampler: AnySampler = input::config(Some(spec.as_any()), "sampler")?;
    let v = y.view2();
    let out = py.detach(|| {
        let src = Exact(p);
        truth::run_sampler(
            &sampler,
            &schedule.s,
            &src,
            v,
            &mut Stream::SampleSteps.rng(seed),
        )
    });
    let (x, per_chain) = out.ok_or_else(|| {
        bad(
            "sampler",
            "langevin and mala use the clean score; give a noise-conditional sampler",
        )
    })?;
    Ok((out2(py, x), per_chain))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(_audit_start, m)?)?;
    m.add_function(wrap_pyfunction!(_audit_exact, m)?)?;
    m.add_function(wrap_pyfunction!(_audit_metrics, m)?)?;
    m.add_function(wrap_pyfunction!(_flow_map, m)?)?;
    m.add_function(wrap_pyfunction!(_audit_scorelab, m)?)?;
    m.add_function(wrap_pyfunction!(_error_curves, m)?)?;
    m.add_function(wrap_pyfunction!(_separated_mixture, m)?)?;
    Ok(())
}

/// Draws the audit's figure: `panels` a list of (title, log_y, truth or None, series), each
/// series (label, xs, means, ses); writes `stem.svg` and `stem.png`.
#[pyfunction]
#[allow(clippy::type_complexity)]
fn _error_curves(
    py: Python<'_>,
    stem: std::path::PathBuf,
    panels: Vec<(
        String,
        bool,
        Option<f64>,
        Vec<(String, Vec<f64>, Vec<f64>, Vec<f64>)>,
    )>,
) -> PyResult<()> {
    let panels: Vec<scorelab_figures::CurvePanel> = panels
        .into_iter()
        .map(
            |(title, log_y, truth, series)| scorelab_figures::CurvePanel {
                title,
                log_y,
                truth,
                series: series
                    .into_iter()
                    .map(|(l, x, m, s)| {
                        (
                            l,
                            x.into_iter()
                                .zip(m)
                                .zip(s)
                                .map(|((a, b), c)| (a, b, c))
                                .collect(),
                        )
                    })
                    .collect(),
            },
        )
        .collect();
    py.detach(|| scorelab_figures::error_curves(&stem, &panels))
        .map_err(|e| bad("plot", format!("{e:#}")))
}

/// The separated anisotropic mixture of `scorelab_densities::random::separated_mixture`.
#[pyfunction]
#[pyo3(signature = (dim, components, *, seed))]
fn _separated_mixture(dim: i64, components: i64, seed: i64) -> PyResult<Density> {
    let d = input::count(dim, "dim")?;
    let k = input::count(components, "components")?;
    let seed = input::seed(seed, "seed")?;
    let spec = scorelab_pipeline::spec::DensitySpec::SeparatedMixture {
        dim: d,
        components: k,
        seed,
    };
    let p = spec.build().map_err(crate::lib_err)?;
    Ok(Density::from_density(p))
}
