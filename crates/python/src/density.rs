//! `Density`, `Toy`, `Schedule`, `Diffusion` and the exact `Denoiser`: scorelab's analytic targets
//! and their marginals under every schedule.

use crate::input::{self, bad, count, number, out1, out2, points, Sigmas};
use crate::lib_err;
use ndarray::{Array1, Array2, ArrayView2};
use numpy::PyArrayMethods;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use scorelab_core::streams::Stream;
use scorelab_core::{Dimension, LogDensity, Moments, Sample, Score};
use scorelab_densities::{AnyDensity, Toy as LibToy};
use scorelab_pipeline::spec::DensitySpec;
use scorelab_samplers::prediction::Prediction;
use scorelab_samplers::Schedule as LibSchedule;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The spec of a Gaussian or mixture built from its parameters (for a noised or marginal law).
fn density_spec(p: &AnyDensity) -> Option<DensitySpec> {
    let rows = |m: Array2<f64>| m.rows().into_iter().map(|r| r.to_vec()).collect::<Vec<_>>();
    match p {
        AnyDensity::Gaussian(g) => Some(DensitySpec::Gaussian {
            mean: g.mean_vector().to_vec(),
            cov: rows(g.covariance()),
        }),
        AnyDensity::GaussianMixture(m) => Some(DensitySpec::GaussianMixture {
            weights: m.weights().to_vec(),
            means: m
                .components()
                .iter()
                .map(|c| c.mean_vector().to_vec())
                .collect(),
            covs: m
                .components()
                .iter()
                .map(|c| rows(c.covariance()))
                .collect(),
        }),
        _ => None,
    }
}

/// An analytic density p, built from a dict with the keys of a config's `density = {…}` table.
///
/// `Density({"kind": "gaussian_mixture", "weights": [0.8, 0.2], "means": [[5, 5], [-5, -5]],
/// "covs": [[[1, 0], [0, 1]], [[1, 0], [0, 1]]]})`; kinds: `gaussian` (mean, cov),
/// `gaussian_mixture` (weights, means, covs), `standard_normal` (dim), `banana` (a, b),
/// `student_t` (mean, scale, nu), `half_normal` (scale). Points are float64 arrays `(n, d)`.
#[pyclass(module = "scorelab", name = "Density", frozen)]
pub struct Density {
    pub p: AnyDensity,
    pub spec: DensitySpec,
}

impl Density {
    pub fn from_density(p: AnyDensity) -> Density {
        let spec = density_spec(&p).expect("a Gaussian or a mixture");
        Density { p, spec }
    }

    fn closed_form(&self, what: &str) -> PyErr {
        bad(
            what,
            format!(
                "p_σ is closed form only for gaussian, standard_normal and gaussian_mixture, not {}",
                self.p.kind()
            ),
        )
    }
}

#[pymethods]
impl Density {
    #[new]
    fn new(spec: &Bound<'_, PyAny>) -> PyResult<Self> {
        let spec: DensitySpec = input::config(Some(spec), "spec")?;
        let p = spec.build().map_err(lib_err)?;
        Ok(Density { p, spec })
    }

    /// N(mean, cov).
    #[staticmethod]
    fn gaussian(py: Python<'_>, mean: &Bound<'_, PyAny>, cov: &Bound<'_, PyAny>) -> PyResult<Self> {
        let d = PyDict::new(py);
        d.set_item("kind", "gaussian")?;
        d.set_item("mean", mean)?;
        d.set_item("cov", cov)?;
        Self::new(d.as_any())
    }

    /// Σₖ wₖ N(meansₖ, covsₖ).
    #[staticmethod]
    fn mixture(
        py: Python<'_>,
        weights: &Bound<'_, PyAny>,
        means: &Bound<'_, PyAny>,
        covs: &Bound<'_, PyAny>,
    ) -> PyResult<Self> {
        let d = PyDict::new(py);
        d.set_item("kind", "gaussian_mixture")?;
        d.set_item("weights", weights)?;
        d.set_item("means", means)?;
        d.set_item("covs", covs)?;
        Self::new(d.as_any())
    }

    /// N(0, I) in `dim` dimensions.
    #[staticmethod]
    fn standard_normal(py: Python<'_>, dim: i64) -> PyResult<Self> {
        let d = PyDict::new(py);
        d.set_item("kind", "standard_normal")?;
        d.set_item("dim", count(dim, "dim")?)?;
        Self::new(d.as_any())
    }

    /// D, the dimension.
    #[getter]
    fn dim(&self) -> usize {
        self.p.dim()
    }

    /// The kind as configs spell it.
    #[getter]
    fn kind(&self) -> &'static str {
        self.spec.kind()
    }

    /// The parameters as a dict with the keys of a config's `density = {…}` (`Density(d.spec)`
    /// rebuilds it).
    #[getter]
    fn spec<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        input::spec_of(py, &self.spec)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let full = format!("Density({})", self.spec(py)?.repr()?);
        if full.chars().count() <= 240 {
            return Ok(full);
        }
        let k = match &self.p {
            AnyDensity::GaussianMixture(m) => format!(", components={}", m.weights().len()),
            _ => String::new(),
        };
        Ok(format!(
            "Density(kind='{}', dim={}{k})",
            self.kind(),
            self.dim()
        ))
    }

    /// log p(x) for every row of x `(n, d)`: an `(n,)` array.
    fn log_density<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, numpy::PyArray1<f64>>> {
        let x = points(x, "x", Some(self.dim()))?;
        let v = x.view2();
        let lp = py.detach(|| self.p.log_density(v));
        Ok(out1(py, lp))
    }

    /// s(x) = ∇ₓ log p(x), `(n, d)`.
    fn score<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, numpy::PyArray2<f64>>> {
        let x = points(x, "x", Some(self.dim()))?;
        let v = x.view2();
        let s = py.detach(|| self.p.score(v));
        Ok(out2(py, s))
    }

    /// `n` independent draws of p, `(n, d)`, from `ChaCha8Rng` seeded with `seed` (the same seed,
    /// the same draws on every machine).
    #[pyo3(signature = (n, *, seed))]
    fn sample<'py>(
        &self,
        py: Python<'py>,
        n: i64,
        seed: i64,
    ) -> PyResult<Bound<'py, numpy::PyArray2<f64>>> {
        let n = count(n, "n")?;
        let seed = input::seed(seed, "seed")?;
        let x = py.detach(|| self.p.sample(n, &mut Stream::Draws.rng(seed)));
        Ok(out2(py, x))
    }

    /// p_σ = p ∗ N(0, σ²I), itself a `Density` (Gaussians and mixtures: every covariance gains σ²I).
    fn noised(&self, sigma: f64) -> PyResult<Density> {
        if !(sigma.is_finite() && sigma >= 0.0) {
            return Err(bad("sigma", format!("must be finite and ≥ 0, got {sigma}")));
        }
        self.p
            .noised(sigma)
            .map(Density::from_density)
            .ok_or_else(|| self.closed_form("noised"))
    }

    /// s(x, σ) = ∇ₓ log p_σ(x), `(n, d)`; `sigma` a float or one per row `(n,)`.
    fn noised_score<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        sigma: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, numpy::PyArray2<f64>>> {
        let x = points(x, "x", Some(self.dim()))?;
        let v = x.view2();
        let sig = input::sigmas(sigma, "sigma", v.nrows())?;
        if self.p.noised(0.0).is_none() {
            return Err(self.closed_form("noised_score"));
        }
        let s =
            py.detach(|| per_sigma(v, &sig, |y, s| self.p.noised_score(y, s).expect("checked")));
        Ok(out2(py, s))
    }

    /// The law of α(x₀ + σ̃z), x₀ ∼ p, at time `t` of `schedule` (α = α(t), σ̃ = σ̃(t)): a `Density`
    /// with means α μₖ and covariances α²(Σₖ + σ̃²I).
    fn marginal(&self, schedule: &Schedule, t: f64) -> PyResult<Density> {
        let (a, s) = schedule.at(t, "t")?;
        self.p
            .marginal(a, s)
            .map(Density::from_density)
            .ok_or_else(|| self.closed_form("marginal"))
    }

    /// E[x], `(d,)`.
    fn mean<'py>(&self, py: Python<'py>) -> Bound<'py, numpy::PyArray1<f64>> {
        out1(py, self.p.mean())
    }

    /// Cov[x], `(d, d)`.
    fn cov<'py>(&self, py: Python<'py>) -> Bound<'py, numpy::PyArray2<f64>> {
        out2(py, self.p.covariance())
    }

    /// The exact denoiser of p in k-diffusion's and EDM's convention, a callable
    /// `denoiser(x, sigma) -> E[x₀ | x₀ + σz = x]` (`Denoiser`).
    fn denoiser(&self) -> PyResult<Denoiser> {
        if self.p.noised(0.0).is_none() {
            return Err(self.closed_form("denoiser"));
        }
        Ok(Denoiser {
            p: self.p.clone(),
            calls: AtomicUsize::new(0),
            evals: AtomicUsize::new(0),
        })
    }
}

/// f(y, σ) row-block by row-block: once for one σ, once per distinct σ otherwise.
pub fn per_sigma(
    x: ArrayView2<f64>,
    sig: &Sigmas,
    f: impl Fn(ArrayView2<f64>, f64) -> Array2<f64>,
) -> Array2<f64> {
    match sig {
        Sigmas::One(s) => f(x, *s),
        Sigmas::Each(s) => {
            if s.iter().all(|&v| v == s[0]) {
                return f(x, s[0]);
            }
            let mut out = Array2::zeros(x.dim());
            for (i, &si) in s.iter().enumerate() {
                let r = f(x.slice(ndarray::s![i..i + 1, ..]), si);
                out.row_mut(i).assign(&r.row(0));
            }
            out
        }
    }
}

/// The exact denoiser D(x, σ) = E[x₀ | x₀ + σz = x] = x + σ² ∇log p_σ(x) of a Gaussian or mixture
/// p (Tweedie's formula), called as k-diffusion and EDM call a model: `denoiser(x, sigma)` with
/// x `(n, d)` and sigma a float or an `(n,)` array (σ = 0 gives x). `calls` and `evals` count
/// the calls and the rows evaluated.
#[pyclass(module = "scorelab", name = "Denoiser", frozen)]
pub struct Denoiser {
    p: AnyDensity,
    calls: AtomicUsize,
    evals: AtomicUsize,
}

#[pymethods]
impl Denoiser {
    fn __call__<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        sigma: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, numpy::PyArray2<f64>>> {
        let x = points(x, "x", Some(self.p.dim()))?;
        let v = x.view2();
        let sig = input::sigmas(sigma, "sigma", v.nrows())?;
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.evals.fetch_add(v.nrows(), Ordering::Relaxed);
        let d = py.detach(|| {
            per_sigma(v, &sig, |y, s| {
                if s == 0.0 {
                    return y.to_owned();
                }
                let mut d = self.p.noised_score(y, s).expect("checked") * (s * s);
                d += &y;
                d
            })
        });
        Ok(out2(py, d))
    }

    /// The number of calls so far.
    #[getter]
    fn calls(&self) -> usize {
        self.calls.load(Ordering::Relaxed)
    }

    /// The number of rows evaluated so far (calls × batch size).
    #[getter]
    fn evals(&self) -> usize {
        self.evals.load(Ordering::Relaxed)
    }

    /// Sets both counters back to 0.
    fn reset(&self) {
        self.calls.store(0, Ordering::Relaxed);
        self.evals.store(0, Ordering::Relaxed);
    }

    #[getter]
    fn dim(&self) -> usize {
        self.p.dim()
    }

    fn __repr__(&self) -> String {
        format!(
            "Denoiser(kind='{}', dim={}, calls={})",
            self.p.kind(),
            self.p.dim(),
            self.calls()
        )
    }
}

/// A 2-D toy data set of FFJORD's figures, by name: `8gaussians`, `checkerboard`, `2spirals`,
/// `swissroll`, `circles`, `rings`, `moons`, `pinwheel`.
#[pyclass(module = "scorelab", name = "Toy", frozen)]
pub struct Toy {
    toy: LibToy,
}

#[pymethods]
impl Toy {
    #[new]
    fn new(name: &str) -> PyResult<Self> {
        let toy = name.parse::<LibToy>().map_err(|e| bad("name", e))?;
        Ok(Toy { toy })
    }

    #[getter]
    fn name(&self) -> &'static str {
        self.toy.name()
    }

    #[getter]
    fn dim(&self) -> usize {
        2
    }

    fn __repr__(&self) -> String {
        format!("Toy('{}')", self.toy.name())
    }

    /// `n` draws, `(n, 2)`, seeded.
    #[pyo3(signature = (n, *, seed))]
    fn sample<'py>(
        &self,
        py: Python<'py>,
        n: i64,
        seed: i64,
    ) -> PyResult<Bound<'py, numpy::PyArray2<f64>>> {
        let n = count(n, "n")?;
        let seed = input::seed(seed, "seed")?;
        let x = py.detach(|| self.toy.sample(n, &mut Stream::Draws.rng(seed)));
        Ok(out2(py, x))
    }

    /// The exact log-density where it is closed form (`8gaussians`; `checkerboard`: −ln 32 on the
    /// board, −∞ off it); an error for the others.
    fn log_density<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, numpy::PyArray1<f64>>> {
        let x = points(x, "x", Some(2))?;
        let v = x.view2();
        match py.detach(|| self.toy.log_density(v)) {
            Some(lp) => Ok(out1(py, lp)),
            None => Err(bad(
                "log_density",
                format!(
                    "{} has no closed-form density (only 8gaussians and checkerboard do)",
                    self.toy.name()
                ),
            )),
        }
    }

    /// `8gaussians` as the Gaussian mixture it is (a `Density`, with its score, p_σ and
    /// denoiser); an error for the others.
    fn density(&self) -> PyResult<Density> {
        match self.toy {
            LibToy::EightGaussians => Ok(Density::from_density(
                LibToy::eight_gaussians_mixture().into(),
            )),
            _ => Err(bad(
                "density",
                format!(
                    "{} is not a Gaussian mixture (only 8gaussians is)",
                    self.toy.name()
                ),
            )),
        }
    }
}

/// A diffusion schedule: x_t = α(t)(x₀ + σ̃(t) z). Built from a dict with the keys of a config's
/// `schedule = {…}` (`{"kind": "vp", "beta_min": 0.1, "beta_max": 20.0}`) or by `Schedule.ve`,
/// `.vp`, `.subvp`, `.edm`.
#[pyclass(module = "scorelab", name = "Schedule", frozen)]
pub struct Schedule {
    pub s: LibSchedule,
}

impl Schedule {
    /// (α(t), σ̃(t)) for a t in the schedule's range [0 or t_min… T].
    pub fn at(&self, t: f64, arg: &str) -> PyResult<(f64, f64)> {
        self.check_t(t, arg)?;
        Ok((self.s.alpha(t), self.s.sigma(t)))
    }

    pub fn spec_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        input::spec_of(py, &self.s)
    }

    fn check_t(&self, t: f64, arg: &str) -> PyResult<()> {
        let lo = if self.s.ends_at_zero() {
            0.0
        } else {
            self.s.t_end()
        };
        let lo = lo.min(self.s.t_end());
        let hi = self.s.t_max();
        number(t, arg)?;
        if t < lo || t > hi {
            return Err(bad(
                arg,
                format!("{t} is outside the schedule's times [{lo}, {hi}]"),
            ));
        }
        Ok(())
    }

    fn map_t<'py>(
        &self,
        py: Python<'py>,
        t: &Bound<'py, PyAny>,
        f: impl Fn(&LibSchedule, f64) -> f64,
    ) -> PyResult<Bound<'py, PyAny>> {
        if let Ok(v) = t.extract::<f64>() {
            self.check_t(v, "t")?;
            return Ok(f(&self.s, v).into_pyobject(py)?.into_any());
        }
        let a = input::floats(t, "t")?;
        input::finite(&a, "t")?;
        for &v in a.slice() {
            self.check_t(v, "t")?;
        }
        let vals: Vec<f64> = a.slice().iter().map(|&v| f(&self.s, v)).collect();
        let arr = numpy::PyArray1::from_vec(py, vals);
        Ok(arr.reshape(a.shape())?.into_any())
    }

    fn from_spec(py: Python<'_>, kind: &str, kw: &[(&str, f64)]) -> PyResult<Self> {
        let d = PyDict::new(py);
        d.set_item("kind", kind)?;
        for (k, v) in kw {
            d.set_item(k, v)?;
        }
        Self::new(d.as_any())
    }

    fn betas(
        py: Python<'_>,
        kind: &str,
        beta_min: f64,
        beta_max: f64,
        t_min: f64,
    ) -> PyResult<Self> {
        let kw = [
            ("beta_min", beta_min),
            ("beta_max", beta_max),
            ("t_min", t_min),
        ];
        Self::from_spec(py, kind, &kw)
    }
}

#[pymethods]
impl Schedule {
    #[new]
    fn new(spec: &Bound<'_, PyAny>) -> PyResult<Self> {
        Ok(Schedule {
            s: input::config(Some(spec), "spec")?,
        })
    }

    /// VE: α = 1, σ̃(t) = σ_min (σ_max/σ_min)ᵗ, t ∈ [0, 1].
    #[staticmethod]
    fn ve(py: Python<'_>, sigma_min: f64, sigma_max: f64) -> PyResult<Self> {
        let kw = [("sigma_min", sigma_min), ("sigma_max", sigma_max)];
        Self::from_spec(py, "ve", &kw)
    }

    /// VP: α(t) = exp(−½B(t)), σ̃ = √(α⁻² − 1), B(t) = β_min t + ½(β_max − β_min)t², t ∈ [t_min, 1].
    #[staticmethod]
    #[pyo3(signature = (beta_min = 0.1, beta_max = 20.0, t_min = 1e-3))]
    fn vp(py: Python<'_>, beta_min: f64, beta_max: f64, t_min: f64) -> PyResult<Self> {
        Self::betas(py, "vp", beta_min, beta_max, t_min)
    }

    /// sub-VP: α as VP, σ̃ = (1 − α²)/α.
    #[staticmethod]
    #[pyo3(signature = (beta_min = 0.1, beta_max = 20.0, t_min = 1e-3))]
    fn subvp(py: Python<'_>, beta_min: f64, beta_max: f64, t_min: f64) -> PyResult<Self> {
        Self::betas(py, "subvp", beta_min, beta_max, t_min)
    }

    /// The linear path of rectified flow x_t = (1 − t)x₀ + tε: α = 1 − t, σ̃ = t/(1 − t), on
    /// t ∈ [t_min, t_max].
    #[staticmethod]
    #[pyo3(signature = (t_min = 1e-3, t_max = 0.999))]
    fn linear(py: Python<'_>, t_min: f64, t_max: f64) -> PyResult<Self> {
        let kw = [("t_min", t_min), ("t_max", t_max)];
        Self::from_spec(py, "linear", &kw)
    }

    /// EDM: α = 1, σ̃ = t, on Karras et al.'s ρ-spaced grid from σ_max to σ_min, then 0.
    #[staticmethod]
    #[pyo3(signature = (sigma_min = 0.002, sigma_max = 80.0, rho = 7.0))]
    fn edm(py: Python<'_>, sigma_min: f64, sigma_max: f64, rho: f64) -> PyResult<Self> {
        let kw = [
            ("sigma_min", sigma_min),
            ("sigma_max", sigma_max),
            ("rho", rho),
        ];
        Self::from_spec(py, "edm", &kw)
    }

    #[getter]
    fn kind(&self) -> &'static str {
        self.s.kind()
    }

    /// The parameters as a dict (`Schedule(s.spec)` rebuilds it).
    #[getter]
    fn spec<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.spec_dict(py)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!("Schedule({})", self.spec(py)?.repr()?))
    }

    /// T, where sampling starts.
    #[getter]
    fn t_max(&self) -> f64 {
        self.s.t_max()
    }

    /// Where the grid ends: 0 for `ve`, t_min for `vp`/`subvp`, σ_min for `edm` (whose grid then
    /// steps to 0).
    #[getter]
    fn t_end(&self) -> f64 {
        self.s.t_end()
    }

    /// c of the prior N(0, c²I).
    #[getter]
    fn prior_std(&self) -> f64 {
        self.s.prior_std()
    }

    /// α(t); `t` a float or an array.
    fn alpha<'py>(&self, py: Python<'py>, t: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        self.map_t(py, t, LibSchedule::alpha)
    }

    /// σ̃(t).
    fn sigma<'py>(&self, py: Python<'py>, t: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        self.map_t(py, t, LibSchedule::sigma)
    }

    /// dα/dt.
    fn alpha_dot<'py>(
        &self,
        py: Python<'py>,
        t: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.map_t(py, t, LibSchedule::alpha_dot)
    }

    /// dσ̃/dt.
    fn sigma_dot<'py>(
        &self,
        py: Python<'py>,
        t: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.map_t(py, t, LibSchedule::sigma_dot)
    }

    /// f(t) = α̇/α, the forward SDE's drift coefficient.
    fn drift<'py>(&self, py: Python<'py>, t: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        self.map_t(py, t, LibSchedule::drift)
    }

    /// g(t)² = 2α²σ̃σ̃̇, the forward SDE's squared diffusion.
    fn g2<'py>(&self, py: Python<'py>, t: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        self.map_t(py, t, LibSchedule::g2)
    }

    /// The time grid of N = `steps` steps the samplers walk, t₀ = T > … > t_N, `(N + 1,)`.
    fn times<'py>(
        &self,
        py: Python<'py>,
        steps: i64,
    ) -> PyResult<Bound<'py, numpy::PyArray1<f64>>> {
        let n = count(steps, "steps")?;
        Ok(out1(
            py,
            (0..=n).map(|k| self.s.time(n, k)).collect::<Array1<f64>>(),
        ))
    }

    /// σ̃ on that grid, `(N + 1,)` (k-diffusion's `sigmas`: ends at 0 for `edm`).
    fn sigmas<'py>(
        &self,
        py: Python<'py>,
        steps: i64,
    ) -> PyResult<Bound<'py, numpy::PyArray1<f64>>> {
        let n = count(steps, "steps")?;
        Ok(out1(
            py,
            (0..=n)
                .map(|k| self.s.sigma(self.s.time(n, k)))
                .collect::<Array1<f64>>(),
        ))
    }
}

/// A Gaussian or mixture target diffused by a schedule: the exact law p_t of x_t = α(x₀ + σ̃z)
/// and, at every time, its score, the denoiser E[x₀ | x_t], the noise prediction and the
/// probability-flow velocity. With y = x/α and s(y, σ̃) = ∇log p_σ̃(y):
///
/// - score ∇ₓ log p_t(x) = s(y, σ̃)/α;
/// - denoiser E[x₀ | x_t = x] = y + σ̃² s(y, σ̃) (Tweedie);
/// - noise prediction E[z | x_t = x] = −σ̃ s(y, σ̃);
/// - velocity dx/dt = (α̇/α) x − α σ̃ σ̃̇ s(y, σ̃) (the probability-flow ODE).
#[pyclass(module = "scorelab", name = "Diffusion", frozen)]
pub struct Diffusion {
    p: AnyDensity,
    schedule: LibSchedule,
}

impl Diffusion {
    fn eval<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        t: f64,
        f: impl Fn(ArrayView2<f64>, Array2<f64>, f64, f64, f64) -> Array2<f64> + Send + Sync,
    ) -> PyResult<Bound<'py, numpy::PyArray2<f64>>> {
        let sch = Schedule { s: self.schedule };
        let (a, s) = sch.at(t, "t")?;
        let x = points(x, "x", Some(self.p.dim()))?;
        let v = x.view2();
        let out = py.detach(|| {
            let y = &v / a;
            let sc = self.p.noised_score(y.view(), s).expect("checked");
            f(v, sc, a, s, t)
        });
        Ok(out2(py, out))
    }

    /// One parameterisation of the exact model at (x, t), from its score
    /// (`scorelab_samplers::prediction`).
    fn predict<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        t: f64,
        which: Prediction,
    ) -> PyResult<Bound<'py, numpy::PyArray2<f64>>> {
        let sch = self.schedule;
        self.eval(py, x, t, move |x, sc, a, _, t| {
            which.from_score(&sch, t, x, (sc / a).view())
        })
    }
}

#[pymethods]
impl Diffusion {
    #[new]
    fn new(target: &Density, schedule: &Schedule) -> PyResult<Self> {
        if target.p.noised(0.0).is_none() {
            return Err(target.closed_form("target"));
        }
        Ok(Diffusion {
            p: target.p.clone(),
            schedule: schedule.s,
        })
    }

    fn __repr__(&self) -> String {
        format!(
            "Diffusion(target={}, dim={}, schedule='{}')",
            self.p.kind(),
            self.p.dim(),
            self.schedule.label()
        )
    }

    /// p_t, a `Density`.
    fn marginal(&self, t: f64) -> PyResult<Density> {
        let (a, s) = Schedule { s: self.schedule }.at(t, "t")?;
        Ok(Density::from_density(
            self.p.marginal(a, s).expect("checked"),
        ))
    }

    /// ∇ₓ log p_t(x).
    fn score<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        t: f64,
    ) -> PyResult<Bound<'py, numpy::PyArray2<f64>>> {
        self.eval(py, x, t, |_, sc, a, _, _| sc / a)
    }

    /// E[x₀ | x_t = x].
    fn denoiser<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        t: f64,
    ) -> PyResult<Bound<'py, numpy::PyArray2<f64>>> {
        self.predict(py, x, t, Prediction::Data)
    }

    /// E[z | x_t = x], the noise prediction ε̂.
    fn noise<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        t: f64,
    ) -> PyResult<Bound<'py, numpy::PyArray2<f64>>> {
        self.predict(py, x, t, Prediction::Noise)
    }

    /// The probability-flow velocity dx/dt at (x, t).
    fn velocity<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        t: f64,
    ) -> PyResult<Bound<'py, numpy::PyArray2<f64>>> {
        self.predict(py, x, t, Prediction::Velocity)
    }
}
