//! Reading Python arguments: arrays checked for dtype, shape and finiteness before any work, and
//! dicts turned into the TOML values the library's own config types deserialise from.

use crate::ScorelabError;
use ndarray::{Array1, Array2, ArrayView2};
use numpy::{PyArrayDyn, PyArrayMethods, PyReadonlyArrayDyn, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

/// An error of bad input, naming the argument.
pub fn bad(arg: &str, msg: impl std::fmt::Display) -> PyErr {
    ScorelabError::new_err(format!("{arg}: {msg}"))
}

/// A float64 array argument: borrowed without a copy when it is a C-contiguous float64 ndarray,
/// copied once otherwise (a list, a tuple, a strided view).
pub enum Floats<'py> {
    Borrowed(PyReadonlyArrayDyn<'py, f64>),
    Owned(Vec<f64>, Vec<usize>),
}

impl Floats<'_> {
    pub fn shape(&self) -> Vec<usize> {
        match self {
            Floats::Borrowed(a) => a.shape().to_vec(),
            Floats::Owned(_, s) => s.clone(),
        }
    }

    pub fn slice(&self) -> &[f64] {
        match self {
            Floats::Borrowed(a) => a.as_slice().expect("checked contiguous"),
            Floats::Owned(v, _) => v,
        }
    }

    /// The array as `(n, d)`; a 1-D array of length n is `(n, 1)` only where `column` allows.
    pub fn view2(&self) -> ArrayView2<'_, f64> {
        let s = self.shape();
        let (n, d) = match s.len() {
            2 => (s[0], s[1]),
            1 => (s[0], 1),
            _ => unreachable!("checked 2-D"),
        };
        ArrayView2::from_shape((n, d), self.slice()).expect("contiguous of its shape")
    }
}

/// Reads `obj` as float64: an ndarray of another dtype is refused (its conversion is the caller's
/// choice: `x.astype(np.float64)`), a list or tuple of numbers is converted.
pub fn floats<'py>(obj: &Bound<'py, PyAny>, arg: &str) -> PyResult<Floats<'py>> {
    let py = obj.py();
    if let Ok(a) = obj.cast::<PyArrayDyn<f64>>() {
        let ro = a.readonly();
        // `as_slice` also accepts Fortran order, which is not the row-major view read below.
        if ro.is_c_contiguous() && ro.as_slice().is_ok() {
            return Ok(Floats::Borrowed(ro));
        }
        let owned = ro.as_array().iter().copied().collect();
        return Ok(Floats::Owned(owned, ro.shape().to_vec()));
    }
    let np = py.import("numpy")?;
    if obj.is_instance(&np.getattr("ndarray")?)? {
        let dtype = obj.getattr("dtype")?.str()?.to_string();
        return Err(bad(
            arg,
            format!("expected a float64 array, got dtype {dtype}; convert it with {arg}.astype(numpy.float64)"),
        ));
    }
    if obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>() {
        let a = np
            .call_method1("asarray", (obj, np.getattr("float64")?))
            .map_err(|e| bad(arg, format!("is not an array of numbers ({e})")))?;
        let a = a.cast::<PyArrayDyn<f64>>()?;
        let ro = a.readonly();
        let owned = ro.as_array().iter().copied().collect();
        return Ok(Floats::Owned(owned, ro.shape().to_vec()));
    }
    Err(bad(
        arg,
        format!(
            "expected a float64 numpy array, got {}",
            obj.get_type().name()?
        ),
    ))
}

/// Points `(n, d)`: 2-D, d = `dim` where given, n ≥ 1, every entry finite.
pub fn points<'py>(
    obj: &Bound<'py, PyAny>,
    arg: &str,
    dim: Option<usize>,
) -> PyResult<Floats<'py>> {
    let a = floats(obj, arg)?;
    let s = a.shape();
    if s.len() != 2 {
        let want = dim.map_or("(n, d)".to_string(), |d| format!("(n, {d})"));
        let hint = if s.len() == 1 {
            format!("; for one point write {arg}[None, :], for n points in 1-D {arg}[:, None]")
        } else {
            String::new()
        };
        return Err(bad(arg, format!("expected shape {want}, got {s:?}{hint}")));
    }
    if let Some(d) = dim {
        if s[1] != d {
            return Err(bad(
                arg,
                format!(
                    "expected shape (n, {d}), got ({}, {}): the points must have {d} columns",
                    s[0], s[1]
                ),
            ));
        }
    }
    if s[0] == 0 {
        return Err(bad(arg, "has no rows; give at least one point"));
    }
    finite(&a, arg)?;
    Ok(a)
}

/// Every entry finite, or an error naming the first that is not.
pub fn finite(a: &Floats<'_>, arg: &str) -> PyResult<()> {
    if let Some(i) = a.slice().iter().position(|v| !v.is_finite()) {
        let s = a.shape();
        let at = if s.len() == 2 && s[1] > 0 {
            format!("row {}, column {}", i / s[1], i % s[1])
        } else {
            format!("entry {i}")
        };
        return Err(bad(
            arg,
            format!("{at} is {}; every entry must be finite", a.slice()[i]),
        ));
    }
    Ok(())
}

/// A finite float.
pub fn number(v: f64, arg: &str) -> PyResult<f64> {
    if v.is_finite() {
        Ok(v)
    } else {
        Err(bad(arg, format!("must be finite, got {v}")))
    }
}

/// A noise level: a float, or one per point (`(n,)`), every one finite and ≥ 0.
pub enum Sigmas {
    One(f64),
    Each(Array1<f64>),
}

pub fn sigmas(obj: &Bound<'_, PyAny>, arg: &str, n: usize) -> PyResult<Sigmas> {
    let ok = |v: f64| v.is_finite() && v >= 0.0;
    if let Ok(v) = obj.extract::<f64>() {
        if !ok(v) {
            return Err(bad(arg, format!("must be finite and ≥ 0, got {v}")));
        }
        return Ok(Sigmas::One(v));
    }
    let a = floats(obj, arg)?;
    let s = a.shape();
    let flat = match s.as_slice() {
        [m] | [m, 1] if *m == n => a.slice().to_vec(),
        [] => a.slice().to_vec(),
        _ => {
            return Err(bad(
                arg,
                format!("expected a float or shape ({n},), one per point, got {s:?}"),
            ))
        }
    };
    if let Some(v) = flat.iter().find(|v| !ok(**v)) {
        return Err(bad(arg, format!("must be finite and ≥ 0, got {v}")));
    }
    if flat.len() == 1 && s.is_empty() {
        return Ok(Sigmas::One(flat[0]));
    }
    Ok(Sigmas::Each(Array1::from(flat)))
}

/// A count ≥ 1.
pub fn count(v: i64, arg: &str) -> PyResult<usize> {
    if v < 1 {
        return Err(bad(arg, format!("must be at least 1, got {v}")));
    }
    Ok(v as usize)
}

/// A seed ≥ 0.
pub fn seed(v: i64, arg: &str) -> PyResult<u64> {
    if v < 0 {
        return Err(bad(arg, format!("must be a non-negative integer, got {v}")));
    }
    Ok(v as u64)
}

/// A Python value as the serde value the library's config types deserialise from: dict → map,
/// list/tuple/ndarray → array, bool, int, float (finite), str; `None` in a dict leaves the key
/// out (its default). The path names the key in errors.
pub fn to_value(obj: &Bound<'_, PyAny>, path: &str) -> PyResult<serde_json::Value> {
    use serde_json::Value;
    if obj.is_instance_of::<PyBool>() {
        return Ok(Value::Bool(obj.extract()?));
    }
    if obj.is_instance_of::<PyInt>() {
        let v: i64 = obj
            .extract()
            .map_err(|_| bad(path, "integer out of range"))?;
        return Ok(Value::from(v));
    }
    if obj.is_instance_of::<PyFloat>() {
        let v: f64 = obj.extract()?;
        return serde_json::Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| bad(path, format!("must be a finite number, got {v}")));
    }
    if obj.is_instance_of::<PyString>() {
        return Ok(Value::String(obj.extract()?));
    }
    if let Ok(d) = obj.cast::<PyDict>() {
        let mut t = serde_json::Map::new();
        for (k, v) in d.iter() {
            let key: String = k
                .extract()
                .map_err(|_| bad(path, format!("keys must be strings, got {k}")))?;
            let sub = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            if v.is_none() {
                continue;
            }
            t.insert(key, to_value(&v, &sub)?);
        }
        return Ok(Value::Object(t));
    }
    let py = obj.py();
    let np = py.import("numpy")?;
    if obj.is_instance(&np.getattr("ndarray")?)? || obj.is_instance(&np.getattr("generic")?)? {
        return to_value(&obj.call_method0("tolist")?, path);
    }
    if obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>() {
        let mut v = vec![];
        for (i, item) in obj.try_iter()?.enumerate() {
            v.push(to_value(&item?, &format!("{path}[{i}]"))?);
        }
        return Ok(Value::Array(v));
    }
    if obj.hasattr("__fspath__")? {
        return to_value(&py.import("os")?.call_method1("fspath", (obj,))?, path);
    }
    Err(bad(
        path,
        format!(
            "cannot be read as a config value: {} (use dicts, lists, numbers, strings and booleans)",
            obj.get_type().name()?
        ),
    ))
}

/// A dict (or `None` for an empty one) deserialised into a library config type, through its own
/// validating constructor; errors name the key.
pub fn config<T: serde::de::DeserializeOwned>(
    obj: Option<&Bound<'_, PyAny>>,
    arg: &str,
) -> PyResult<T> {
    let v = match obj {
        Some(o) if !o.is_none() => {
            if o.cast::<PyDict>().is_err() {
                return Err(bad(
                    arg,
                    format!("expected a dict, got {}", o.get_type().name()?),
                ));
            }
            to_value(o, "")?
        }
        _ => serde_json::Value::Object(serde_json::Map::new()),
    };
    serde_path_to_error::deserialize::<_, T>(v).map_err(|e| {
        let at = e.path().to_string();
        let inner = e.into_inner().to_string();
        let inner = inner.trim_end().to_string();
        if at == "." || at.is_empty() {
            bad(arg, inner)
        } else {
            bad(&format!("{arg}[{at}]"), inner)
        }
    })
}

/// A library config value as the Python value it reads as (maps as dicts, arrays as lists).
pub fn to_py<'py>(py: Python<'py>, v: &serde_json::Value) -> PyResult<Bound<'py, PyAny>> {
    use serde_json::Value;
    Ok(match v {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => b.into_pyobject(py)?.to_owned().into_any(),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => i.into_pyobject(py)?.into_any(),
            (None, Some(u)) => u.into_pyobject(py)?.into_any(),
            _ => n.as_f64().unwrap_or(f64::NAN).into_pyobject(py)?.into_any(),
        },
        Value::String(s) => s.into_pyobject(py)?.into_any(),
        Value::Array(a) => {
            let l = PyList::empty(py);
            for x in a {
                l.append(to_py(py, x)?)?;
            }
            l.into_any()
        }
        Value::Object(t) => {
            let d = PyDict::new(py);
            for (k, x) in t {
                d.set_item(k, to_py(py, x)?)?;
            }
            d.into_any()
        }
    })
}

/// A serialisable library type as a Python dict.
pub fn spec_of<'py, T: serde::Serialize>(py: Python<'py>, t: &T) -> PyResult<Bound<'py, PyAny>> {
    to_py(py, &serde_json::to_value(t).expect("a config serialises"))
}

/// An owned `(n, d)` result as a numpy array (a copy only if it is not in standard layout).
pub fn out2<'py>(py: Python<'py>, a: Array2<f64>) -> Bound<'py, numpy::PyArray2<f64>> {
    let (n, d) = a.dim();
    let v = if a.is_standard_layout() {
        a.into_raw_vec_and_offset().0
    } else {
        a.iter().copied().collect()
    };
    let arr = numpy::ndarray::Array2::from_shape_vec((n, d), v).expect("n·d entries");
    numpy::IntoPyArray::into_pyarray(arr, py)
}

/// An owned vector as a 1-D numpy array.
pub fn out1<'py>(py: Python<'py>, a: Array1<f64>) -> Bound<'py, numpy::PyArray1<f64>> {
    numpy::PyArray1::from_vec(py, a.to_vec())
}
