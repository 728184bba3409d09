//! Data: a [`Dataset`] read from a CSV file (named columns, every value finite), its seeded
//! train/held-out [`Split`], uniform dequantisation, and the [`Transform`] to model units.
//!
//! # Randomness
//! From the master seed, as `scorelab train` has always drawn them: the dequantisation noise from
//! stream 5 and the split's permutation from stream 4 of `ChaCha8Rng::seed_from_u64(seed)`
//! (streams 0–3 belong to the network's initialisation and the trainer).
//!
//! # Model units
//! Networks work on z = (x − m)/s per column ([`Transform`]). A score carries back by the chain
//! rule, s_x(x) = s_z(z)/s, and a log-density by the log-Jacobian, log p_x(x) = log p_z(z) − Σⱼ log sⱼ.
//!
//! ```
//! use ndarray::array;
//! use scorelab_pipeline::data::{Dataset, TransformKind};
//! let data = Dataset::new(vec!["a".into(), "b".into()],
//!     array![[1.0, 10.0], [2.0, 20.0], [3.0, 30.0], [4.0, 40.0], [5.0, 50.0]])?;
//! let split = data.split(0.4, 7)?;
//! assert_eq!((split.train.nrows(), split.test.nrows()), (3, 2));
//! let t = split.fit_transform(TransformKind::Standardize)?;
//! let z = t.forward(&split.train);
//! assert!(z.column(0).mean().unwrap().abs() < 1e-12);
//! assert!((t.inverse(&z) - &split.train).iter().all(|e| e.abs() < 1e-12));
//! # Ok::<(), scorelab_pipeline::PipelineError>(())
//! ```

use crate::error::{PipelineError, Result};
use crate::files::{clip, quote};
use ndarray::{Array1, Array2, Axis};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::path::Path;

/// `ChaCha8Rng::seed_from_u64(seed)` on `stream`.
pub(crate) fn stream(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    r.set_stream(stream);
    r
}

/// An open numeric CSV file with a header row: every value parsed and finite, errors naming the
/// file (with the caller's label), the row and the column.
pub struct Table {
    /// The header's column names, trimmed.
    pub header: Vec<String>,
    rdr: csv::Reader<File>,
    label: String,
}

impl Table {
    /// Opens `path`; `label` (e.g. `data.csv FILE`) prefixes every error.
    ///
    /// # Errors
    /// [`PipelineError::Input`] if the file cannot be read or has no header.
    pub fn open(path: &Path, label: &str) -> Result<Self> {
        let at = |m: String| PipelineError::Input(format!("{label}: {m}"));
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(true)
            .from_path(path)
            .map_err(|e| at(format!("cannot read: {e}")))?;
        let header = rdr
            .headers()
            .map_err(|e| at(e.to_string()))?
            .iter()
            .map(|h| h.trim().to_string())
            .collect();
        Ok(Table {
            header,
            rdr,
            label: label.to_string(),
        })
    }

    /// Reads every row's columns `idx` (named `names` in errors) as finite numbers.
    ///
    /// # Errors
    /// [`PipelineError::Input`] naming the row and column of a ragged row, a non-number or a
    /// non-finite value.
    pub fn read(self, idx: &[usize], names: &[String]) -> Result<Array2<f64>> {
        let mut rows = self.rows(idx.to_vec(), names.to_vec());
        Ok(rows
            .next_batch(usize::MAX)?
            .unwrap_or_else(|| Array2::zeros((0, idx.len()))))
    }

    /// The rows' columns `idx` (named `names` in errors), read a batch at a time
    /// ([`Rows::next_batch`]): memory holds one batch, whatever the file's length.
    pub fn rows(self, idx: Vec<usize>, names: Vec<String>) -> Rows {
        Rows {
            records: self.rdr.into_records(),
            label: self.label,
            idx,
            names,
            row: 0,
        }
    }
}

/// A [`Table`]'s rows, read in batches with the same checks and messages as [`Table::read`].
pub struct Rows {
    records: csv::StringRecordsIntoIter<File>,
    label: String,
    idx: Vec<usize>,
    names: Vec<String>,
    /// Rows read so far.
    row: usize,
}

impl Rows {
    /// The next (at most) `max` rows, or `None` at the end of the file.
    ///
    /// # Errors
    /// [`PipelineError::Input`] naming the row (counted from the file's first data row) and the
    /// column of a ragged row, a non-number or a non-finite value.
    pub fn next_batch(&mut self, max: usize) -> Result<Option<Array2<f64>>> {
        let label = &self.label;
        let at = |m: String| PipelineError::Input(format!("{label}: {m}"));
        let mut values = Vec::new();
        let mut n = 0;
        while n < max {
            let Some(rec) = self.records.next() else {
                break;
            };
            let r = self.row;
            self.row += 1;
            let rec = rec.map_err(|e| at(format!("row {}: {e}", r + 1)))?;
            for (&i, name) in self.idx.iter().zip(&self.names) {
                let raw = rec.get(i).unwrap_or("");
                let v: f64 = raw.trim().parse().map_err(|_| {
                    at(format!(
                        "row {}, column {}: {} is not a number",
                        r + 1,
                        quote(name),
                        quote(raw)
                    ))
                })?;
                if !v.is_finite() {
                    return Err(at(format!(
                        "row {}, column {}: {} is not finite",
                        r + 1,
                        quote(name),
                        clip(raw.trim())
                    )));
                }
                if !(v * v).is_finite() {
                    return Err(at(format!(
                        "row {}, column {}: {} is too large (its square overflows; every |value| must be below 1e154): rescale the column",
                        r + 1,
                        quote(name),
                        clip(raw.trim())
                    )));
                }
                values.push(v);
            }
            n += 1;
        }
        if n == 0 {
            return Ok(None);
        }
        Ok(Some(
            Array2::from_shape_vec((n, self.idx.len()), values).expect("n × columns"),
        ))
    }

    /// The rows read so far.
    pub fn rows_read(&self) -> usize {
        self.row
    }
}

/// Opens a points CSV whose header is exactly `x0,…,x{D−1}` (as [`read_points`]) for reading
/// in batches.
///
/// # Errors
/// [`PipelineError::Input`] naming the label and file for an unreadable file or a wrong header.
pub fn open_points(path: &Path, label: &str, dim: Option<usize>) -> Result<Rows> {
    let label = format!("{label} {}", path.display());
    let table = Table::open(path, &label)?;
    let d = dim.unwrap_or(table.header.len());
    let want: Vec<String> = (0..d).map(|j| format!("x{j}")).collect();
    if table.header != want || d == 0 {
        return Err(PipelineError::Input(match dim {
            Some(d) => format!(
                "{label}: the header is {} but this {d}-dimensional model needs {}",
                quote(&table.header.join(",")),
                want.join(",")
            ),
            None => format!(
                "{label}: the header is {}; points have the header x0,x1,…,x{{D-1}}",
                quote(&table.header.join(","))
            ),
        }));
    }
    Ok(table.rows((0..d).collect(), want))
}

/// Reads a points CSV whose header is exactly `x0,…,x{D−1}`: with `dim`, D must be that; without,
/// D is read from the header. `label` (e.g. `--points`) names the file in errors.
///
/// # Errors
/// [`PipelineError::Input`] naming the label, file, row and column.
pub fn read_points(path: &Path, label: &str, dim: Option<usize>) -> Result<Array2<f64>> {
    let mut rows = open_points(path, label, dim)?;
    let d = rows.idx.len();
    Ok(rows
        .next_batch(usize::MAX)?
        .unwrap_or_else(|| Array2::zeros((0, d))))
}

/// A data set: named columns and one row per observation, every value finite.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    columns: Vec<String>,
    rows: Array2<f64>,
}

impl Dataset {
    /// A data set of `rows` with these column names.
    ///
    /// # Errors
    /// [`PipelineError::Invalid`] (`columns`) if the names do not match the columns, repeat, or
    /// there are no rows; a non-finite value is refused too.
    pub fn new(columns: Vec<String>, rows: Array2<f64>) -> Result<Self> {
        if columns.len() != rows.ncols() || columns.is_empty() {
            return Err(PipelineError::invalid(
                "columns",
                format!(
                    "{} names for {} columns; give one name per column",
                    columns.len(),
                    rows.ncols()
                ),
            ));
        }
        if let Some(k) = (0..columns.len()).find(|&k| columns[..k].contains(&columns[k])) {
            return Err(PipelineError::invalid(
                "columns",
                format!("{:?} is listed twice", columns[k]),
            ));
        }
        if rows.nrows() == 0 {
            return Err(PipelineError::invalid("rows", "no data rows"));
        }
        if rows.iter().any(|v| !v.is_finite()) {
            return Err(PipelineError::invalid("rows", "every value must be finite"));
        }
        Ok(Dataset { columns, rows })
    }

    /// Reads the CSV `path` (header row, numbers): the named `columns`, in order (all if `None`).
    ///
    /// # Errors
    /// [`PipelineError::Invalid`] (`data.columns`) for an empty, repeated or unknown column;
    /// [`PipelineError::Input`] naming the file, row and column of a bad value.
    pub fn from_csv(path: &Path, columns: Option<&[String]>) -> Result<Self> {
        let table = Table::open(path, &format!("data.csv {}", path.display()))?;
        let header = table.header.clone();
        let names: Vec<String> = match columns {
            Some([]) => {
                return Err(PipelineError::invalid(
                    "data.columns",
                    "empty; name at least one column",
                ))
            }
            Some(c) => c.to_vec(),
            None => header.clone(),
        };
        let mut idx = Vec::with_capacity(names.len());
        for (k, name) in names.iter().enumerate() {
            if names[..k].contains(name) {
                return Err(PipelineError::invalid(
                    "data.columns",
                    format!("{} is listed twice", quote(name)),
                ));
            }
            let i = header.iter().position(|h| h == name).ok_or_else(|| {
                PipelineError::invalid(
                    "data.columns",
                    format!(
                        "no column {} in {}; its columns are {}",
                        quote(name),
                        path.display(),
                        quote(&header.join(", "))
                    ),
                )
            })?;
            idx.push(i);
        }
        let rows = table.read(&idx, &names)?;
        if rows.nrows() == 0 {
            return Err(PipelineError::Input(format!(
                "data.csv {}: no data rows",
                path.display()
            )));
        }
        Ok(Dataset {
            columns: names,
            rows,
        })
    }

    /// The column names.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// The rows, `(n, d)`.
    pub fn rows(&self) -> &Array2<f64> {
        &self.rows
    }

    /// D, the number of columns.
    pub fn dim(&self) -> usize {
        self.columns.len()
    }

    /// The data with uniform dequantisation noise U(−qⱼ/2, qⱼ/2) added once to every value of
    /// each column j with qⱼ > 0 (row by row, from stream 5 of `seed`); the data themselves where
    /// every qⱼ = 0 (no draws). With integer data and q their bin widths, a density of the result
    /// bounds the discrete likelihood.
    ///
    /// # Errors
    /// [`PipelineError::Invalid`] (`data.dequantize`) unless there is one width per column, each
    /// ≥ 0 and finite.
    pub fn dequantized(mut self, q: &[f64], seed: u64) -> Result<Self> {
        check_widths(q, self.dim(), "data.dequantize")?;
        if q.iter().any(|&w| w > 0.0) {
            let mut r5 = stream(seed, scorelab_core::streams::Stream::Dequantize.id());
            for mut row in self.rows.rows_mut() {
                add_uniform(row.view_mut(), q, &mut r5);
            }
        }
        Ok(self)
    }

    /// The seeded split: round(n · `test_fraction`) rows held out, chosen by a permutation from
    /// stream 4 of `seed`.
    ///
    /// # Errors
    /// [`PipelineError::Invalid`] (`data.test_fraction`) unless the fraction is in (0, 1) and
    /// leaves at least two rows on each side.
    pub fn split(&self, test_fraction: f64, seed: u64) -> Result<Split> {
        let bad = |m: String| PipelineError::invalid("data.test_fraction", m);
        if !(test_fraction > 0.0 && test_fraction < 1.0) {
            return Err(bad(format!("must be in (0, 1), got {test_fraction}")));
        }
        let n = self.rows.nrows();
        let n_test = ((n as f64) * test_fraction).round() as usize;
        if n_test < 2 || n - n_test < 2 {
            return Err(bad(format!(
                "{test_fraction} of {n} rows leaves {n_test} held-out and {} training rows; each needs at least 2",
                n - n_test
            )));
        }
        let mut order: Vec<usize> = (0..n).collect();
        order.shuffle(&mut stream(
            seed,
            scorelab_core::streams::Stream::Split.id(),
        ));
        Ok(Split {
            columns: self.columns.clone(),
            test: self.rows.select(Axis(0), &order[..n_test]),
            train: self.rows.select(Axis(0), &order[n_test..]),
        })
    }
}

/// `dequantize = q` (one bin width for every column) or `[q₀, q₁, …]` (one per column, 0 for a
/// continuous one), as `train`'s `data.dequantize` and `likelihood`'s `dequantize` spell it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Dequantize {
    /// One bin width for every column.
    All(f64),
    /// One per column; 0 leaves a column continuous.
    Columns(Vec<f64>),
}

impl Dequantize {
    /// The width of each of `dim` columns, checked: one per column, each finite and ≥ 0.
    ///
    /// # Errors
    /// [`PipelineError::Invalid`] naming `field`.
    ///
    /// # Examples
    /// ```
    /// use scorelab_pipeline::data::Dequantize;
    /// assert_eq!(Dequantize::All(1.0).widths(2, "dequantize")?, vec![1.0, 1.0]);
    /// assert!(Dequantize::Columns(vec![1.0]).widths(2, "dequantize").is_err());
    /// # Ok::<(), scorelab_pipeline::PipelineError>(())
    /// ```
    pub fn widths(&self, dim: usize, field: &str) -> Result<Vec<f64>> {
        let q = match self {
            Dequantize::All(q) => vec![*q; dim],
            Dequantize::Columns(q) => q.clone(),
        };
        check_widths(&q, dim, field)?;
        Ok(q)
    }
}

fn check_widths(q: &[f64], dim: usize, field: &str) -> Result<()> {
    if q.len() != dim {
        return Err(PipelineError::invalid(
            field,
            format!(
                "has {} widths but the data have {dim} columns; give one per column (0 for a continuous one) or one number",
                q.len()
            ),
        ));
    }
    if let Some(w) = q.iter().find(|w| !(w.is_finite() && **w >= 0.0)) {
        return Err(PipelineError::invalid(
            field,
            format!("every bin width must be finite and ≥ 0, got {w}"),
        ));
    }
    // The dequantised data's variance (q²/12 per column) must be a finite number.
    let most = scorelab_core::error::SIGMA_RANGE.1;
    if let Some(w) = q.iter().find(|w| **w > most) {
        return Err(PipelineError::invalid(
            field,
            format!("a bin width of {w:e} is above {most:e}: the data's variance would not be a finite number; give the width of one level of the data (1 for integer pixels)"),
        ));
    }
    Ok(())
}

/// Refuses a value of a column with bin width q > 0 that is not on that column's grid (a
/// multiple of q, to 1e-6 of q): dequantisation is for integer-valued data, and a continuous
/// column given a width would be blurred without a likelihood bound to show for it. The same
/// rule `scorelab likelihood` applies to its points. `row_of(i)` gives the file's row number of
/// row i; `field` names the setting.
///
/// # Errors
/// [`PipelineError::Invalid`] naming `field`, the file's row, the column and the value.
pub fn check_on_grid(
    x: ndarray::ArrayView2<f64>,
    q: &[f64],
    columns: &[String],
    field: &str,
    row_of: impl Fn(usize) -> usize,
) -> Result<()> {
    for (i, row) in x.rows().into_iter().enumerate() {
        for (j, (&v, &w)) in row.iter().zip(q).enumerate() {
            if w > 0.0 && ((v / w) - (v / w).round()).abs() > 1e-6 {
                return Err(PipelineError::invalid(
                    field,
                    format!(
                        "is for integer data on a grid of width {w}, but row {}, column {} is {v}; remove it (or set its width to 0 for that column) for continuous data",
                        row_of(i),
                        columns.get(j).map(String::as_str).unwrap_or("?")
                    ),
                ));
            }
        }
    }
    Ok(())
}

pub use scorelab_objectives::training::add_uniform;

/// Training and held-out rows of a [`Dataset`], in the data's own units.
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    /// The column names.
    pub columns: Vec<String>,
    /// Training rows.
    pub train: Array2<f64>,
    /// Held-out rows.
    pub test: Array2<f64>,
}

impl Split {
    /// The transform of `kind`, fitted to the training rows.
    ///
    /// # Errors
    /// [`PipelineError::Invalid`] (`data.columns`) for standardising a constant column.
    pub fn fit_transform(&self, kind: TransformKind) -> Result<Transform> {
        Transform::fit(kind, &self.columns, &self.train)
    }
}

/// How data map to model units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TransformKind {
    /// z = (x − mean)/sd per column, fitted to the training rows.
    Standardize,
    /// z = x / s, one divisor for every column (e.g. 16 for 4-bit pixels).
    Scale(f64),
    /// z = x.
    None,
}

impl TransformKind {
    /// The name configs use: `standardize`, `scale`, `none`.
    pub fn name(self) -> &'static str {
        match self {
            TransformKind::Standardize => "standardize",
            TransformKind::Scale(_) => "scale",
            TransformKind::None => "none",
        }
    }
}

/// The affine map to model units, z = (x − mean)/scale per column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transform {
    /// The columns, in order.
    pub columns: Vec<String>,
    /// Per-column shift.
    pub mean: Vec<f64>,
    /// Per-column scale (> 0).
    pub scale: Vec<f64>,
}

impl Transform {
    /// The transform of `kind` for data whose training rows are `train`.
    ///
    /// # Errors
    /// [`PipelineError::Invalid`]: `data.columns` for standardising a constant column,
    /// `data.scale` for a divisor that is not positive and finite.
    pub fn fit(kind: TransformKind, columns: &[String], train: &Array2<f64>) -> Result<Self> {
        let d = columns.len();
        match kind {
            TransformKind::Standardize => {
                let mean = train.mean_axis(Axis(0)).expect("rows");
                let sd = train.std_axis(Axis(0), 1.0);
                if let Some(j) = sd.iter().position(|s| s.is_nan() || *s <= 0.0) {
                    return Err(PipelineError::invalid(
                        "data.columns",
                        format!(
                            "column {:?} is constant in the training rows; drop it or use transform = \"none\"",
                            columns[j]
                        ),
                    ));
                }
                Ok(Transform {
                    columns: columns.to_vec(),
                    mean: mean.to_vec(),
                    scale: sd.to_vec(),
                })
            }
            TransformKind::Scale(v) => {
                if !(v > 0.0 && v.is_finite()) {
                    return Err(PipelineError::invalid(
                        "data.scale",
                        format!("must be positive and finite, got {v}"),
                    ));
                }
                Ok(Transform {
                    columns: columns.to_vec(),
                    mean: vec![0.0; d],
                    scale: vec![v; d],
                })
            }
            TransformKind::None => Ok(Transform {
                columns: columns.to_vec(),
                mean: vec![0.0; d],
                scale: vec![1.0; d],
            }),
        }
    }

    /// Checks a transform read from a file for data in D = `dim`: one column name, one finite
    /// shift and one finite positive scale per dimension.
    ///
    /// # Errors
    /// A message naming the key and what is wrong.
    ///
    /// # Examples
    /// ```
    /// use scorelab_pipeline::data::Transform;
    /// let t = Transform { columns: vec!["a".into(), "b".into()], mean: vec![0.0, 1.0], scale: vec![1.0] };
    /// assert!(t.validate(2).unwrap_err().contains("scale"));
    /// ```
    pub fn validate(&self, dim: usize) -> std::result::Result<(), String> {
        for (key, n) in [
            ("columns", self.columns.len()),
            ("mean", self.mean.len()),
            ("scale", self.scale.len()),
        ] {
            if n != dim {
                return Err(format!(
                    "{key} has {n} entries but the model is {dim}-dimensional"
                ));
            }
        }
        if let Some(j) = self.mean.iter().position(|m| !m.is_finite()) {
            return Err(format!("mean[{j}] = {} is not finite", self.mean[j]));
        }
        if let Some(j) = self.scale.iter().position(|s| !(s.is_finite() && *s > 0.0)) {
            return Err(format!(
                "scale[{j}] = {} must be finite and > 0",
                self.scale[j]
            ));
        }
        Ok(())
    }

    /// x ↦ z = (x − mean)/scale, row by row.
    pub fn forward(&self, x: &Array2<f64>) -> Array2<f64> {
        (x - &Array1::from(self.mean.clone())) / &Array1::from(self.scale.clone())
    }

    /// z ↦ x = mean + scale·z, row by row: the inverse of [`Transform::forward`].
    pub fn inverse(&self, z: &Array2<f64>) -> Array2<f64> {
        z * &Array1::from(self.scale.clone()) + &Array1::from(self.mean.clone())
    }

    /// A score in model units to data units: s_x(x) = s_z(z)/scale (chain rule).
    pub fn score_back(&self, s: &Array2<f64>) -> Array2<f64> {
        s / &Array1::from(self.scale.clone())
    }

    /// log |det ∂z/∂x| = −Σ log scaleⱼ: add to a log-density in model units to get one in data
    /// units.
    pub fn log_jacobian(&self) -> f64 {
        -self.scale.iter().map(|s| s.ln()).sum::<f64>()
    }
}
