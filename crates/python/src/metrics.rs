//! Sample metrics with their errors, and the ESM = ISM + C audit.

use crate::density::Density;
use crate::input::{self, bad, out1, points};
use crate::run::Model;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use scorelab_core::streams::Stream;
use scorelab_core::{Dimension, Sample, ScoreFunction};
use scorelab_densities::AnyDensity;
use scorelab_eval::metrics::Estimate;

fn estimate<'py>(py: Python<'py>, e: &Estimate) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("value", e.value)?;
    d.set_item("se", e.se)?;
    d.set_item("p_value", e.p_value)?;
    Ok(d)
}

fn same_width(x: usize, y: usize) -> PyResult<()> {
    if x != y {
        return Err(bad("y", format!("has {y} columns but x has {x}")));
    }
    Ok(())
}

fn at_least_two(n: usize, arg: &str) -> PyResult<()> {
    if n < 2 {
        return Err(bad(arg, format!("needs at least 2 rows, got {n}")));
    }
    Ok(())
}

/// MMD²_u between x and y with the RBF kernel of bandwidth h (the pooled median distance when
/// None), its standard error and the permutation test's p-value over `permutations` relabellings.
#[pyfunction]
#[pyo3(signature = (x, y, *, bandwidth = None, permutations = 200, seed = 0))]
fn _mmd2<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    y: &Bound<'py, PyAny>,
    bandwidth: Option<f64>,
    permutations: i64,
    seed: i64,
) -> PyResult<Bound<'py, PyDict>> {
    let (x, y) = (points(x, "x", None)?, points(y, "y", None)?);
    let (xv, yv) = (x.view2(), y.view2());
    same_width(xv.ncols(), yv.ncols())?;
    at_least_two(xv.nrows(), "x")?;
    at_least_two(yv.nrows(), "y")?;
    if let Some(h) = bandwidth {
        if !(h.is_finite() && h > 0.0) {
            return Err(bad("bandwidth", format!("must be finite and > 0, got {h}")));
        }
    }
    if permutations < 0 {
        return Err(bad(
            "permutations",
            format!("must be ≥ 0, got {permutations}"),
        ));
    }
    let seed = input::seed(seed, "seed")?;
    let m = py.detach(|| {
        scorelab_eval::mmd2(
            xv,
            yv,
            bandwidth,
            permutations as usize,
            &mut Stream::MetricMmd.rng(seed),
        )
    });
    let d = estimate(py, &m.estimate)?;
    d.set_item("bandwidth", m.bandwidth)?;
    Ok(d)
}

/// The kernel Stein discrepancy of x against the target's score (IMQ kernel), its SE and the
/// wild-bootstrap p-value.
#[pyfunction]
#[pyo3(signature = (x, target, *, bootstrap = 200, seed = 0))]
fn _ksd<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    target: &Density,
    bootstrap: i64,
    seed: i64,
) -> PyResult<Bound<'py, PyDict>> {
    let x = points(x, "x", Some(target.p.dim()))?;
    let xv = x.view2();
    at_least_two(xv.nrows(), "x")?;
    if bootstrap < 0 {
        return Err(bad("bootstrap", format!("must be ≥ 0, got {bootstrap}")));
    }
    let seed = input::seed(seed, "seed")?;
    let k = py.detach(|| {
        scorelab_eval::ksd(
            xv,
            &target.p,
            bootstrap as usize,
            &mut Stream::MetricKsd.rng(seed),
        )
    });
    let d = estimate(py, &k.ksd)?;
    d.set_item("u_statistic", estimate(py, &k.u_statistic)?)?;
    Ok(d)
}

/// Sliced W₂ between x and y over `projections` directions; with `floor=` a density, also the
/// same distance between two independent exact samples of it of the sizes of x and y (what
/// sampling error alone gives).
#[pyfunction]
#[pyo3(signature = (x, y, *, projections = 200, seed = 0, floor = None))]
fn _sliced_w2<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    y: &Bound<'py, PyAny>,
    projections: i64,
    seed: i64,
    floor: Option<&Density>,
) -> PyResult<Bound<'py, PyDict>> {
    let (x, y) = (points(x, "x", None)?, points(y, "y", None)?);
    let (xv, yv) = (x.view2(), y.view2());
    same_width(xv.ncols(), yv.ncols())?;
    let p = input::count(projections, "projections")?;
    let seed = input::seed(seed, "seed")?;
    if let Some(f) = floor {
        if f.p.dim() != xv.ncols() {
            return Err(bad(
                "floor",
                format!(
                    "is {}-dimensional but the points have {} columns",
                    f.p.dim(),
                    xv.ncols()
                ),
            ));
        }
    }
    let (w, fl) = py.detach(|| {
        let w = scorelab_eval::sliced_w2(xv, yv, p, &mut Stream::MetricSlicedW2.rng(seed));
        let fl = floor.map(|f| {
            let mut rng = Stream::MetricReference.rng(seed);
            let a = f.p.sample(xv.nrows(), &mut rng);
            let b = f.p.sample(yv.nrows(), &mut rng);
            scorelab_eval::sliced_w2(a.view(), b.view(), p, &mut Stream::MetricSlicedW2.rng(seed))
        });
        (w, fl)
    });
    let d = estimate(py, &w)?;
    if let Some(f) = fl {
        d.set_item("floor", estimate(py, &f)?)?;
    }
    Ok(d)
}

/// The Fréchet distance between the Gaussians fitted to x and to y.
#[pyfunction]
fn _frechet_distance(py: Python<'_>, x: &Bound<'_, PyAny>, y: &Bound<'_, PyAny>) -> PyResult<f64> {
    let (x, y) = (points(x, "x", None)?, points(y, "y", None)?);
    let (xv, yv) = (x.view2(), y.view2());
    same_width(xv.ncols(), yv.ncols())?;
    py.detach(|| scorelab_eval::frechet::frechet_distance(xv, yv))
        .map_err(|e| bad("x", e))
}

/// The fraction of x assigned to each component of a mixture (largest responsibility), with
/// binomial SEs and the p-values of ŵₖ = wₖ.
#[pyfunction]
fn _mode_weights<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    mixture: &Density,
) -> PyResult<Bound<'py, PyDict>> {
    let m = match &mixture.p {
        AnyDensity::GaussianMixture(m) => m,
        _ => {
            return Err(bad(
                "mixture",
                format!("must be a gaussian_mixture, got {}", mixture.p.kind()),
            ))
        }
    };
    let x = points(x, "x", Some(m.dim()))?;
    let xv = x.view2();
    let w = py.detach(|| scorelab_eval::mode_weights(m, xv));
    let d = PyDict::new(py);
    d.set_item("value", out1(py, w.iter().map(|e| e.value).collect()))?;
    d.set_item("se", out1(py, w.iter().map(|e| e.se).collect()))?;
    d.set_item(
        "p_value",
        out1(
            py,
            w.iter().map(|e| e.p_value.unwrap_or(f64::NAN)).collect(),
        ),
    )?;
    d.set_item("truth", out1(py, m.weights().clone()))?;
    Ok(d)
}

/// ESM = ISM + C (+ B) for a model on a density, on `n` exact draws of the density: Monte Carlo
/// ESM, ISM, their paired gap with its SE, C and B, and z = (gap − C − B)/se.
#[pyfunction]
#[pyo3(signature = (density, model, *, n = 20000, seed = 0))]
fn _esm_audit<'py>(
    py: Python<'py>,
    density: &Density,
    model: &Bound<'py, PyAny>,
    n: i64,
    seed: i64,
) -> PyResult<Bound<'py, PyDict>> {
    let n = input::count(n, "n")?;
    at_least_two(n, "n")?;
    let seed = input::seed(seed, "seed")?;
    let net: Box<dyn ScoreFunction + Send> = if let Ok(m) = model.cast::<Model>() {
        let m = m.get();
        let f = scorelab_models::F32Score::new(&m.m.network, None).map_err(|e| bad("model", e))?;
        Box::new(f)
    } else if let Ok(q) = model.cast::<Density>() {
        Box::new(q.get().p.clone())
    } else {
        return Err(bad(
            "model",
            format!(
                "must be a scorelab.Model or a scorelab.Density, got {}",
                model.get_type().name()?
            ),
        ));
    };
    if net.dim() != density.p.dim() {
        return Err(bad(
            "model",
            format!(
                "is {}-dimensional but the density is {}-dimensional",
                net.dim(),
                density.p.dim()
            ),
        ));
    }
    let a = py.detach(|| {
        let x = density.p.sample(n, &mut Stream::MetricReference.rng(seed));
        scorelab_eval::audit(&density.p, &*net, x.view())
    });
    let d = PyDict::new(py);
    d.set_item("samples", a.samples)?;
    for (k, m) in [("esm", a.esm), ("ism", a.ism), ("gap", a.gap)] {
        let e = PyDict::new(py);
        e.set_item("value", m.mean)?;
        e.set_item("se", m.se)?;
        d.set_item(k, e)?;
    }
    d.set_item("constant", a.constant)?;
    d.set_item("boundary_term", a.boundary_term)?;
    d.set_item("z", a.z_score)?;
    Ok(d)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(_mmd2, m)?)?;
    m.add_function(wrap_pyfunction!(_ksd, m)?)?;
    m.add_function(wrap_pyfunction!(_sliced_w2, m)?)?;
    m.add_function(wrap_pyfunction!(_frechet_distance, m)?)?;
    m.add_function(wrap_pyfunction!(_mode_weights, m)?)?;
    m.add_function(wrap_pyfunction!(_esm_audit, m)?)?;
    m.add_function(wrap_pyfunction!(_time_library, m)?)?;
    Ok(())
}

/// Seconds per call of the library itself, without the Python layer, for the overhead benchmark
/// (`scripts/python_overhead.py`): `what` is `score` (p.score on x) or `likelihood` (the
/// default likelihood plan of p on x), each timed `repeats` times with the interpreter released.
#[pyfunction]
fn _time_library(
    py: Python<'_>,
    what: &str,
    target: &Density,
    x: &Bound<'_, PyAny>,
    repeats: i64,
) -> PyResult<Vec<f64>> {
    use scorelab_core::Score;
    let x = points(x, "x", Some(target.p.dim()))?;
    let v = x.view2();
    let r = input::count(repeats, "repeats")?;
    let plan = scorelab_pipeline::likelihood::LikelihoodPlan {
        density: Some(target.spec.clone()),
        ..Default::default()
    };
    match what {
        "score" | "likelihood" => {}
        _ => {
            return Err(bad(
                "what",
                format!("must be 'score' or 'likelihood', got {what:?}"),
            ))
        }
    }
    py.detach(|| {
        (0..r)
            .map(|_| {
                let t = std::time::Instant::now();
                if what == "score" {
                    std::hint::black_box(target.p.score(v));
                } else {
                    let est = plan.prepare().map_err(crate::lib_err)?;
                    std::hint::black_box(est.run(v, &mut ()).map_err(crate::lib_err)?);
                }
                Ok(t.elapsed().as_secs_f64())
            })
            .collect()
    })
}
