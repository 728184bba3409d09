//! # scorelab-python: the `scorelab` Python package
//!
//! pyo3 + numpy bindings to the library crates, built by maturin from the root `pyproject.toml`
//! (`pip install .`); the pure-Python half of the package (the sampler audit, the wrappers with
//! their keyword arguments, the type stubs) is in `python/scorelab/`. `docs/python.md` is the
//! user's guide.
//!
//! Conventions: arrays are float64 `(n, d)`, read without a copy when they are C-contiguous
//! float64 ndarrays; every computation runs with the interpreter released (`Python::detach`);
//! configs are dicts with the keys of the TOML files, deserialised through the library types'
//! own validating constructors; bad input raises `scorelab.ScorelabError` (a `ValueError`) naming
//! the argument, before any work.

mod audit;
mod density;
mod input;
mod metrics;
mod run;

use pyo3::prelude::*;

pyo3::create_exception!(
    scorelab,
    ScorelabError,
    pyo3::exceptions::PyValueError,
    "Bad input to scorelab: the message names the argument (or config key) and what would be valid."
);

/// A library error (a config key, a file, a model folder) as a `ScorelabError`.
pub(crate) fn lib_err(e: impl std::fmt::Display) -> PyErr {
    ScorelabError::new_err(e.to_string())
}

#[pymodule]
fn _scorelab(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("ScorelabError", m.py().get_type::<ScorelabError>())?;
    m.add_class::<density::Density>()?;
    m.add_class::<density::Toy>()?;
    m.add_class::<density::Schedule>()?;
    m.add_class::<density::Diffusion>()?;
    m.add_class::<density::Denoiser>()?;
    m.add_class::<run::Model>()?;
    m.add_function(wrap_pyfunction!(run::_sample, m)?)?;
    m.add_function(wrap_pyfunction!(run::_likelihood, m)?)?;
    m.add_function(wrap_pyfunction!(run::_train, m)?)?;
    metrics::register(m)?;
    audit::register(m)?;
    Ok(())
}
