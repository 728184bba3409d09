//! Reading the result CSVs: a header and string cells, with typed column access that names the
//! file and the column in every error.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// A CSV file read whole: its header and its rows as strings.
#[derive(Debug, Clone)]
pub struct Table {
    /// Where it came from (for messages).
    pub path: PathBuf,
    /// The column names.
    pub header: Vec<String>,
    /// The rows, one string per column.
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// Reads `path`.
    ///
    /// # Errors
    /// If the file is missing or not a rectangular CSV with a header.
    pub fn read(path: &Path) -> Result<Table> {
        let mut r = csv::Reader::from_path(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let header = r
            .headers()
            .with_context(|| format!("{}: no header", path.display()))?
            .iter()
            .map(str::to_string)
            .collect();
        let mut rows = vec![];
        for (i, rec) in r.records().enumerate() {
            let rec = rec.with_context(|| format!("{}: row {}", path.display(), i + 2))?;
            rows.push(rec.iter().map(str::to_string).collect());
        }
        Ok(Table {
            path: path.to_path_buf(),
            header,
            rows,
        })
    }

    /// The index of a column.
    ///
    /// # Errors
    /// If there is no such column.
    pub fn col(&self, name: &str) -> Result<usize> {
        match self.header.iter().position(|h| h == name) {
            Some(i) => Ok(i),
            None => bail!(
                "{}: no column {name:?} (columns: {})",
                self.path.display(),
                self.header.join(", ")
            ),
        }
    }

    /// The rows whose column `name` equals `value`.
    ///
    /// # Errors
    /// If there is no such column.
    pub fn filter(&self, name: &str, value: &str) -> Result<Table> {
        let j = self.col(name)?;
        Ok(Table {
            path: self.path.clone(),
            header: self.header.clone(),
            rows: self
                .rows
                .iter()
                .filter(|r| r[j] == value)
                .cloned()
                .collect(),
        })
    }

    /// Column `name` as strings.
    ///
    /// # Errors
    /// If there is no such column.
    pub fn strings(&self, name: &str) -> Result<Vec<String>> {
        let j = self.col(name)?;
        Ok(self.rows.iter().map(|r| r[j].clone()).collect())
    }

    /// Column `name` as numbers; an empty cell is NaN.
    ///
    /// # Errors
    /// If there is no such column or a cell is not a number.
    pub fn f64s(&self, name: &str) -> Result<Vec<f64>> {
        let j = self.col(name)?;
        self.rows
            .iter()
            .enumerate()
            .map(|(i, r)| {
                if r[j].is_empty() {
                    Ok(f64::NAN)
                } else {
                    r[j].parse::<f64>().with_context(|| {
                        format!(
                            "{}: row {}, column {name}: {:?} is not a number",
                            self.path.display(),
                            i + 2,
                            r[j]
                        )
                    })
                }
            })
            .collect()
    }

    /// The distinct values of column `name`, in order of first appearance.
    ///
    /// # Errors
    /// If there is no such column.
    pub fn distinct(&self, name: &str) -> Result<Vec<String>> {
        let mut out: Vec<String> = vec![];
        for v in self.strings(name)? {
            if !out.contains(&v) {
                out.push(v);
            }
        }
        Ok(out)
    }
}
