//! `sample`, `likelihood`, `train` and `Model`: the pipeline's plans from dicts, with a score from
//! an analytic target, a trained model, or a Python callable.

use crate::input::{self, bad, out1, out2, points};
use crate::lib_err;
use ndarray::{Array1, Array2, ArrayView2};
use numpy::{PyArray2, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::prelude::*;
use scorelab_core::{Dimension, NoisedScore, NoisedScoreFunction, Score};
use scorelab_models::{F32Noised, F32Score};
use scorelab_pipeline::likelihood::LikelihoodPlan;
use scorelab_pipeline::observe::Control;
use scorelab_pipeline::sample::{External, SamplePlan};
use scorelab_pipeline::train::{TrainPlan, TrainedModel};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// What a Python callable computes.
#[derive(Clone, Copy, PartialEq)]
enum Returns {
    /// D(y, σ) = E[x₀ | y]: s = (D − y)/σ².
    Denoiser,
    /// s(y, σ) itself.
    Score,
    /// s(x), no σ.
    Clean,
}

/// A Python function as a score: called with the whole batch once per evaluation, with the
/// interpreter re-acquired for the call; the first exception (or a wrong shape, dtype or a
/// non-finite value) is kept, later calls return zeros at once, and the run stops after the
/// step it happened in.
pub struct PyFn {
    f: Py<PyAny>,
    jvp: Option<Py<PyAny>>,
    returns: Returns,
    dim: usize,
    name: &'static str,
    pub error: Mutex<Option<PyErr>>,
    pub calls: AtomicUsize,
}

impl PyFn {
    fn failed(&self) -> bool {
        self.error.lock().expect("not poisoned").is_some()
    }

    fn fail(&self, e: PyErr) {
        let mut g = self.error.lock().expect("not poisoned");
        if g.is_none() {
            *g = Some(e);
        }
    }

    /// Calls `f(args…)` and reads an `(n, d)` float64 result.
    fn call(
        &self,
        py: Python<'_>,
        f: &Py<PyAny>,
        what: &str,
        x: ArrayView2<f64>,
        sigma: Option<f64>,
        v: Option<ArrayView2<f64>>,
    ) -> PyResult<Array2<f64>> {
        py.check_signals()?;
        let xa = out2(py, x.to_owned());
        let r = match (sigma, v) {
            (None, _) => f.call1(py, (xa,)),
            (Some(s), None) => f.call1(py, (xa, s)),
            (Some(s), Some(v)) => f.call1(py, (xa, s, out2(py, v.to_owned()))),
        }?;
        let r = r.bind(py);
        let arr = r.cast::<PyArray2<f64>>().map_err(|_| {
            let got = match r.getattr("shape") {
                Ok(s) => format!(
                    "{} of shape {}",
                    r.get_type()
                        .name()
                        .map(|n| n.to_string())
                        .unwrap_or_default(),
                    s
                ),
                Err(_) => r
                    .get_type()
                    .name()
                    .map(|n| n.to_string())
                    .unwrap_or_default(),
            };
            bad(
                what,
                format!(
                    "must return a float64 array of shape ({}, {}), got {got}",
                    x.nrows(),
                    x.ncols()
                ),
            )
        })?;
        if arr.shape() != [x.nrows(), x.ncols()] {
            return Err(bad(
                what,
                format!(
                    "must return shape ({}, {}), got {:?}",
                    x.nrows(),
                    x.ncols(),
                    arr.shape()
                ),
            ));
        }
        let a: Array2<f64> = {
            let ro = arr.readonly();
            let v = ro.as_array();
            Array2::from_shape_fn((x.nrows(), x.ncols()), |(i, j)| v[[i, j]])
        };
        if let Some(bad_v) = a.iter().find(|v| !v.is_finite()) {
            return Err(bad(
                what,
                format!(
                    "returned {bad_v} at σ = {}; every entry must be finite",
                    sigma.unwrap_or(f64::NAN)
                ),
            ));
        }
        Ok(a)
    }

    fn eval(&self, x: ArrayView2<f64>, sigma: Option<f64>) -> Array2<f64> {
        if self.failed() {
            return Array2::zeros(x.dim());
        }
        self.calls.fetch_add(1, Ordering::Relaxed);
        let r = Python::attach(|py| self.call(py, &self.f, self.name, x, sigma, None));
        match r {
            Ok(out) => match (self.returns, sigma) {
                (Returns::Denoiser, Some(s)) => (out - x) / (s * s),
                _ => out,
            },
            Err(e) => {
                self.fail(e);
                Array2::zeros(x.dim())
            }
        }
    }
}

impl Dimension for PyFn {
    fn dim(&self) -> usize {
        self.dim
    }
}

impl NoisedScore for PyFn {
    fn noised_score(&self, x: ArrayView2<f64>, sigma: f64) -> Array2<f64> {
        self.eval(x, Some(sigma))
    }
}

impl Score for PyFn {
    fn score(&self, x: ArrayView2<f64>) -> Array2<f64> {
        self.eval(x, None)
    }
}

impl NoisedScoreFunction for PyFn {
    fn noised_score_jvp(
        &self,
        x: ArrayView2<f64>,
        v: ArrayView2<f64>,
        sigma: f64,
    ) -> (Array2<f64>, Array2<f64>) {
        let s = self.eval(x, Some(sigma));
        if self.failed() {
            return (s, Array2::zeros(v.dim()));
        }
        let jvp = self.jvp.as_ref().expect("checked: a jvp was given");
        // The probes come as k blocks of n rows; the callable sees x repeated to match.
        let k = v.nrows() / x.nrows();
        let xs = if k == 1 {
            x.to_owned()
        } else {
            ndarray::concatenate(ndarray::Axis(0), &vec![x; k]).expect("same width")
        };
        let r = Python::attach(|py| self.call(py, jvp, "jvp", xs.view(), Some(sigma), Some(v)));
        match r {
            Ok(jv) => match self.returns {
                Returns::Denoiser => (s, (jv - v) / (sigma * sigma)),
                _ => (s, jv),
            },
            Err(e) => {
                self.fail(e);
                (s, Array2::zeros(v.dim()))
            }
        }
    }
}

/// The callable given as `score=` or `denoiser=` (exactly one), checked to be callable.
fn callable(
    score: Option<&Bound<'_, PyAny>>,
    denoiser: Option<&Bound<'_, PyAny>>,
    jvp: Option<&Bound<'_, PyAny>>,
    clean: bool,
    dim: usize,
) -> PyResult<Option<Arc<PyFn>>> {
    let (f, returns, name) = match (score, denoiser) {
        (Some(_), Some(_)) => return Err(bad("score and denoiser", "give one of them, not both")),
        (None, None) => {
            if jvp.is_some() {
                return Err(bad(
                    "jvp",
                    "is the Jacobian-vector product of score= or denoiser=; give one of them",
                ));
            }
            return Ok(None);
        }
        (Some(f), None) => (
            f,
            if clean {
                Returns::Clean
            } else {
                Returns::Score
            },
            "score",
        ),
        (None, Some(f)) => {
            if clean {
                return Err(bad(
                    "denoiser",
                    "langevin uses a clean score s(x); give score= instead",
                ));
            }
            (f, Returns::Denoiser, "denoiser")
        }
    };
    if !f.is_callable() {
        return Err(bad(
            name,
            format!("must be callable, got {}", f.get_type().name()?),
        ));
    }
    if let Some(j) = jvp {
        if !j.is_callable() {
            return Err(bad(
                "jvp",
                format!("must be callable, got {}", j.get_type().name()?),
            ));
        }
    }
    Ok(Some(Arc::new(PyFn {
        f: f.clone().unbind(),
        jvp: jvp.map(|j| j.clone().unbind()),
        returns,
        dim,
        name,
        error: Mutex::new(None),
        calls: AtomicUsize::new(0),
    })))
}

fn dim_of(dim: Option<i64>) -> PyResult<usize> {
    match dim {
        Some(d) => input::count(d, "dim"),
        None => Err(bad(
            "dim",
            "a Python score or denoiser needs dim, the number of columns of its points",
        )),
    }
}

/// Runs a sampling plan (a dict with the keys of `scorelab sample`'s config); with `score=` or
/// `denoiser=` a Python callable is the source (the plan then names neither `density` nor
/// `model_dir`). Returns the samples `(chains, d)` and the score evaluations per chain.
#[pyfunction]
#[pyo3(signature = (config, *, model = None, score = None, denoiser = None, dim = None, x0 = None))]
#[allow(clippy::too_many_arguments)]
pub fn _sample<'py>(
    py: Python<'py>,
    config: &Bound<'py, PyAny>,
    model: Option<&Model>,
    score: Option<&Bound<'py, PyAny>>,
    denoiser: Option<&Bound<'py, PyAny>>,
    dim: Option<i64>,
    x0: Option<&Bound<'py, PyAny>>,
) -> PyResult<(Bound<'py, PyArray2<f64>>, usize)> {
    let plan: SamplePlan = input::config(Some(config), "config")?;
    let clean = !plan.sampler.noise_conditional();
    let given = if score.is_some() || denoiser.is_some() {
        Some(dim_of(dim)?)
    } else {
        None
    };
    let f = match given {
        Some(d) => callable(score, denoiser, None, clean, d)?,
        None => None,
    };
    let sampling = match (&f, model) {
        (Some(_), Some(_)) => return Err(bad("model", "give a model or a Python score, not both")),
        (Some(f), None) => {
            let ext = if clean {
                External::Clean(f.clone())
            } else {
                External::Noised(f.clone())
            };
            plan.prepare_external(ext)
        }
        (None, Some(m)) => plan.prepare_with(m.m.clone()),
        (None, None) => plan.prepare(),
    }
    .map_err(lib_err)?;
    let sampling = match x0 {
        None => sampling,
        Some(x0) => {
            let pts = points(x0, "init", Some(sampling.dim))?;
            sampling
                .with_start(pts.view2().to_owned())
                .map_err(lib_err)?
        }
    };
    let failed = |f: &Option<Arc<PyFn>>| f.as_ref().is_some_and(|f| f.failed());
    let out = py.detach(|| {
        let mut stop = |_: &scorelab_samplers::Info| {
            let interrupted = Python::attach(|py| py.check_signals().is_err());
            if failed(&f) || interrupted {
                Control::Stop
            } else {
                Control::Continue
            }
        };
        sampling.run(&mut stop)
    });
    if let Some(f) = &f {
        if let Some(e) = f.error.lock().expect("not poisoned").take() {
            return Err(e);
        }
    }
    py.check_signals()?;
    if out.interrupted {
        return Err(pyo3::exceptions::PyKeyboardInterrupt::new_err(
            "sampling stopped",
        ));
    }
    Ok((out2(py, out.x), out.score_evals))
}

/// log p of every row of `x` through the probability-flow ODE (a dict with the keys of
/// `scorelab likelihood`'s config). Returns (log_p, log_p_se or None, bits_per_dim, evals).
#[pyfunction]
#[pyo3(signature = (x, config, *, model = None, score = None, denoiser = None, jvp = None))]
#[allow(clippy::type_complexity)]
pub fn _likelihood<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    config: &Bound<'py, PyAny>,
    model: Option<&Model>,
    score: Option<&Bound<'py, PyAny>>,
    denoiser: Option<&Bound<'py, PyAny>>,
    jvp: Option<&Bound<'py, PyAny>>,
) -> PyResult<(
    Bound<'py, numpy::PyArray1<f64>>,
    Option<Bound<'py, numpy::PyArray1<f64>>>,
    Bound<'py, numpy::PyArray1<f64>>,
    usize,
)> {
    let plan: LikelihoodPlan = input::config(Some(config), "config")?;
    let xs = points(x, "x", None)?;
    let v = xs.view2();
    let f = callable(score, denoiser, jvp, false, v.ncols())?;
    if let Some(f) = &f {
        if f.jvp.is_none() {
            let how = if plan.divergence
                == Some(scorelab_pipeline::likelihood::DivergenceKind::Hutchinson)
            {
                "Hutchinson's estimator needs vᵀ∇s v"
            } else {
                "the exact divergence needs tr ∇s, here by D products"
            };
            return Err(bad("jvp", format!("{how}: give jvp(x, sigma, v) -> J v, the Jacobian-vector product of the {} in x", f.name)));
        }
    }
    let est = match (&f, model) {
        (Some(_), Some(_)) => return Err(bad("model", "give a model or a Python score, not both")),
        (Some(f), None) => plan.prepare_external(f.clone()),
        (None, Some(m)) => plan.prepare_with(m.m.clone()),
        (None, None) => plan.prepare(),
    }
    .map_err(lib_err)?;
    est.check_points(v, "x").map_err(lib_err)?;
    let out = py.detach(|| {
        let mut obs = |_: &scorelab_pipeline::likelihood::Progress| {
            let interrupted = Python::attach(|py| py.check_signals().is_err());
            if interrupted || f.as_ref().is_some_and(|f| f.failed()) {
                Control::Stop
            } else {
                Control::Continue
            }
        };
        est.run(v, &mut obs)
    });
    if let Some(f) = &f {
        if let Some(e) = f.error.lock().expect("not poisoned").take() {
            return Err(e);
        }
    }
    py.check_signals()?;
    let out = out.map_err(lib_err)?;
    if out.interrupted {
        return Err(pyo3::exceptions::PyKeyboardInterrupt::new_err(
            "likelihood stopped",
        ));
    }
    let lp: Array1<f64> = out.rows.iter().map(|r| r.log_p).collect();
    let se: Option<Array1<f64>> = out.rows.first().and_then(|r| r.log_p_se).map(|_| {
        out.rows
            .iter()
            .map(|r| r.log_p_se.unwrap_or(f64::NAN))
            .collect()
    });
    let bpd: Array1<f64> = out.rows.iter().map(|r| r.bits_per_dim).collect();
    let evals = out.rows.first().map_or(0, |r| r.score_evals);
    Ok((out1(py, lp), se.map(|s| out1(py, s)), out1(py, bpd), evals))
}

/// A trained scorelab model: `Model(path)` loads a folder written by `scorelab train` (or
/// `scorelab.train(..., out=path)`), checking its checksums; `scorelab.train(config)` returns one
/// trained in memory. Its scores are the f32 inference path's, as the CLI's.
#[pyclass(module = "scorelab", name = "Model", frozen)]
pub struct Model {
    pub m: TrainedModel,
    path: Option<PathBuf>,
}

impl Model {
    fn noised(&self, what: &str) -> PyResult<F32Noised> {
        F32Noised::new(&self.m.network).map_err(|e| bad(what, e))
    }

    fn to_model_units(&self, x: ArrayView2<f64>) -> Array2<f64> {
        match &self.m.transform {
            Some(t) => t.forward(&x.to_owned()),
            None => x.to_owned(),
        }
    }

    fn back(&self, s: Array2<f64>) -> Array2<f64> {
        match &self.m.transform {
            Some(t) => t.score_back(&s),
            None => s,
        }
    }
}

#[pymethods]
impl Model {
    #[new]
    fn new(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let m = py
            .detach(|| TrainedModel::load(&path))
            .map_err(|e| bad("path", e))?;
        Ok(Model {
            m,
            path: Some(path),
        })
    }

    #[getter]
    fn dim(&self) -> usize {
        self.m.network.spec().dim
    }

    /// The architecture as configs spell it.
    #[getter]
    fn kind(&self) -> &'static str {
        self.m.network.spec().kind.name()
    }

    /// Training steps finished.
    #[getter]
    fn steps(&self) -> u64 {
        self.m.steps()
    }

    /// (σ̃_min, σ̃_max) it was trained on, or None.
    #[getter]
    fn sigma_range(&self) -> Option<(f64, f64)> {
        self.m.sigma_range
    }

    #[getter]
    fn noise_conditional(&self) -> bool {
        self.m.network.is_noise_conditional()
    }

    fn __repr__(&self) -> String {
        let at = self.path.as_ref().map_or("in memory".to_string(), |p| {
            format!("path='{}'", p.display())
        });
        format!(
            "Model(kind='{}', dim={}, steps={}, {at})",
            self.kind(),
            self.dim(),
            self.steps()
        )
    }

    /// s(x) = ∇ₓ log p_θ(x) of a model without σ input, in the data's units.
    fn score<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let x = points(x, "x", Some(self.dim()))?;
        let f = F32Score::new(&self.m.network, None).map_err(|e| bad("score", e))?;
        let v = x.view2();
        let s = py.detach(|| self.back(f.score(self.to_model_units(v).view())));
        Ok(out2(py, s))
    }

    /// s_θ(x, σ) of a noise-conditional model (model units), `(n, d)`.
    fn noised_score<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        sigma: f64,
    ) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let f = self.noised("noised_score")?;
        let x = points(x, "x", Some(self.dim()))?;
        positive_sigma(sigma)?;
        let v = x.view2();
        Ok(out2(py, py.detach(|| f.noised_score(v, sigma))))
    }

    /// D_θ(x, σ) = x + σ² s_θ(x, σ), k-diffusion's and EDM's denoiser convention (model units).
    fn denoiser<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        sigma: f64,
    ) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let f = self.noised("denoiser")?;
        let x = points(x, "x", Some(self.dim()))?;
        positive_sigma(sigma)?;
        let v = x.view2();
        Ok(out2(
            py,
            py.detach(|| f.noised_score(v, sigma) * (sigma * sigma) + v),
        ))
    }

    /// The exact tr ∇ₓ s_θ(x, σ) of every row (the structured trace), `(n,)`.
    fn trace<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        sigma: f64,
    ) -> PyResult<Bound<'py, numpy::PyArray1<f64>>> {
        let f = self.noised("trace")?;
        let x = points(x, "x", Some(self.dim()))?;
        positive_sigma(sigma)?;
        let v = x.view2();
        Ok(out1(py, py.detach(|| f.noised_score_trace(v, sigma).1)))
    }

    /// Writes the model folder's files into `path` (model.safetensors, loss.csv, transform.toml).
    fn save(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        py.detach(|| self.m.save(&path)).map_err(lib_err)
    }
}

fn positive_sigma(sigma: f64) -> PyResult<()> {
    if !(sigma.is_finite() && sigma > 0.0) {
        return Err(bad("sigma", format!("must be finite and > 0, got {sigma}")));
    }
    Ok(())
}

/// Trains a plan given as a dict with the keys of `scorelab train`'s config, through the same
/// validating constructors; in memory, or into the folder `out` (which must be empty, or hold
/// this plan's run to continue with `resume=True`).
#[pyfunction]
#[pyo3(signature = (config, *, out = None, resume = false))]
pub fn _train(
    py: Python<'_>,
    config: &Bound<'_, PyAny>,
    out: Option<PathBuf>,
    resume: bool,
) -> PyResult<Model> {
    let plan: TrainPlan = input::config(Some(config), "config")?;
    let prepared = plan.prepare().map_err(lib_err)?;
    let mut stop = |_: &scorelab_pipeline::train::TrainEvent| {
        if Python::attach(|py| py.check_signals().is_err()) {
            Control::Stop
        } else {
            Control::Continue
        }
    };
    let m = match &out {
        None => py.detach(|| scorelab_pipeline::train::train(&plan, &mut stop)),
        Some(dir) => {
            if dir.exists() && !dir.is_dir() {
                return Err(bad("out", format!("{} is a file; give a folder", dir.display())));
            }
            let lock = scorelab_pipeline::files::FolderLock::acquire(dir, "out").map_err(lib_err)?;
            if !resume && lock.has_other_files().map_err(lib_err)? {
                return Err(bad("out", format!("{} exists and is not empty; give an empty or new folder, or resume=True to continue its run", dir.display())));
            }
            let folder = scorelab_pipeline::train::RunFolder { resume, run: None };
            py.detach(|| scorelab_pipeline::train::train_in(&lock, prepared, folder, &mut stop))
        }
    }
    .map_err(lib_err)?;
    py.check_signals()?;
    Ok(Model { m, path: out })
}
