//! Numeric CSV input with a header row: every value parsed and finite, errors naming the file
//! (with the caller's label), the row and the column.

use crate::InputError;
use ndarray::Array2;
use std::fs::File;
use std::path::Path;

/// An open CSV file, header read.
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
    /// An [`InputError`] if the file cannot be read or has no header.
    pub fn open(path: &Path, label: &str) -> Result<Self, InputError> {
        let at = |m: String| InputError(format!("{label}: {m}"));
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
    /// An [`InputError`] naming the row and column of a ragged row, a non-number or a non-finite
    /// value.
    pub fn read(mut self, idx: &[usize], names: &[String]) -> Result<Array2<f64>, InputError> {
        let label = self.label;
        let at = |m: String| InputError(format!("{label}: {m}"));
        let mut values = Vec::new();
        let mut n = 0;
        for (r, rec) in self.rdr.records().enumerate() {
            let rec = rec.map_err(|e| at(format!("row {}: {e}", r + 1)))?;
            for (&i, name) in idx.iter().zip(names) {
                let raw = rec.get(i).unwrap_or("");
                let v: f64 = raw.trim().parse().map_err(|_| {
                    at(format!(
                        "row {}, column {name:?}: {raw:?} is not a number",
                        r + 1
                    ))
                })?;
                if !v.is_finite() {
                    return Err(at(format!(
                        "row {}, column {name:?}: {raw} is not finite",
                        r + 1
                    )));
                }
                values.push(v);
            }
            n += 1;
        }
        Ok(Array2::from_shape_vec((n, idx.len()), values).expect("n × columns"))
    }
}
