//! The metric bundle every evaluation reports: MMD², KSD, sliced W₂ and mode weights of a sample
//! set against a target density or a reference sample ([`metrics`]), the nearest-neighbour
//! distances of a memorisation check ([`nearest_distances`]), and the mean and spread over seeds
//! the summaries use ([`mean_sd`]).
//!
//! # Randomness
//! [`metrics`] takes a seed: the exact reference samples come from stream 0, the MMD
//! permutations from stream 1, the KSD bootstrap from stream 2 and the W₂ projections from stream 3
//! of `ChaCha8Rng::seed_from_u64(seed)`.
//!
//! ```
//! use ndarray::array;
//! use scorelab_densities::{AnyDensity, Gaussian};
//! use scorelab_pipeline::metrics::{metrics, Against};
//! let x = array![[0.1, -0.3], [1.2, 0.4], [-0.7, 0.9], [0.3, -1.1], [f64::NAN, 0.0]];
//! let p = Against::Density(Box::new(AnyDensity::from(Gaussian::standard(2))), "p".into());
//! let rows = metrics(x.view(), &p, 0, 0);
//! let names: Vec<&str> = rows.iter().map(|r| r.metric.as_str()).collect();
//! assert_eq!(names, ["mmd2", "mmd_bandwidth", "ksd", "ksd2_u", "sliced_w2", "diverged"]);
//! assert_eq!(rows.last().unwrap().value, 0.2); // one chain of five diverged
//! ```

use crate::files::cell;
use ndarray::{Array1, Array2, ArrayView2};
use scorelab_core::Sample;
use scorelab_densities::AnyDensity;
use scorelab_eval::{ksd, mmd2, mode_weights, sliced_w2, Estimate};

/// The number of random directions of sliced W₂.
pub const PROJECTIONS: usize = 100;

/// One row of `metrics.csv`.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricRow {
    /// The metric's name.
    pub metric: String,
    /// Its value.
    pub value: f64,
    /// Its standard error, where it has one.
    pub se: Option<f64>,
    /// Its test's p-value, where it has one.
    pub p_value: Option<f64>,
    /// What it compares against: `p`, `p_sigma=σ` or `reference`.
    pub target: String,
}

impl MetricRow {
    fn of(metric: &str, e: Estimate, target: &str) -> Self {
        MetricRow {
            metric: metric.into(),
            value: e.value,
            se: e.se.is_finite().then_some(e.se),
            p_value: e.p_value,
            target: target.into(),
        }
    }
}

/// What samples are compared against.
pub enum Against {
    /// The target density (p, or p_σ already noised), with its label.
    Density(Box<AnyDensity>, String),
    /// A reference sample.
    Reference(Array2<f64>),
}

/// The header of `metrics.csv`.
pub const METRIC_COLUMNS: &str = "metric,value,se,p_value,target";

/// Every metric of `x` against `against` (module docs for the streams). `tests` is the number of
/// permutations (MMD) and bootstrap replicates (KSD); 0 skips both p-values.
///
/// Points with a non-finite coordinate (chains that diverged) are left out of every metric; the
/// last row, `diverged`, is their fraction. With fewer than two finite points every other value is
/// NaN.
pub fn metrics(x: ArrayView2<f64>, against: &Against, seed: u64, tests: usize) -> Vec<MetricRow> {
    metrics_with(x, against, seed, tests, &Options::default())
}

/// Choices of [`metrics_with`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Options {
    /// MMD²'s RBF bandwidth, fixed (`None`: the median heuristic), so that the MMD² of different
    /// runs compare on one kernel.
    pub bandwidth: Option<f64>,
    /// Whether to compute KSD (O(n²) score-kernel terms; default true).
    pub ksd: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            bandwidth: None,
            ksd: true,
        }
    }
}

/// [`metrics`] with [`Options`]: a fixed MMD² bandwidth, KSD left out (its rows then absent).
pub fn metrics_with(
    x: ArrayView2<f64>,
    against: &Against,
    seed: u64,
    tests: usize,
    options: &Options,
) -> Vec<MetricRow> {
    let keep: Vec<usize> = (0..x.nrows())
        .filter(|&i| x.row(i).iter().all(|v| v.is_finite()))
        .collect();
    let label = match against {
        Against::Density(_, label) => label.clone(),
        Against::Reference(_) => "reference".into(),
    };
    let diverged = MetricRow {
        metric: "diverged".into(),
        value: (x.nrows() - keep.len()) as f64 / x.nrows() as f64,
        se: None,
        p_value: None,
        target: label,
    };
    let finite = x.select(ndarray::Axis(0), &keep);
    let mut rows = if keep.len() >= 2 {
        finite_metrics(finite.view(), against, seed, tests, options)
    } else {
        metric_names(against, options.ksd)
            .into_iter()
            .map(|metric| MetricRow {
                metric,
                value: f64::NAN,
                se: None,
                p_value: None,
                target: diverged.target.clone(),
            })
            .collect()
    };
    rows.push(diverged);
    rows
}

/// The names of the rows [`metrics`] writes before `diverged`, in order.
fn metric_names(against: &Against, ksd: bool) -> Vec<String> {
    let mut names = vec!["mmd2".to_string(), "mmd_bandwidth".into()];
    if let Against::Density(p, _) = against {
        if ksd {
            names.extend(["ksd".to_string(), "ksd2_u".into()]);
        }
        names.push("sliced_w2".into());
        if let AnyDensity::GaussianMixture(mix) = p.as_ref() {
            names.extend((0..mix.weights().len()).map(|k| format!("mode_weight_{k}")));
        }
    } else {
        names.push("sliced_w2".into());
    }
    names
}

fn finite_metrics(
    x: ArrayView2<f64>,
    against: &Against,
    seed: u64,
    tests: usize,
    options: &Options,
) -> Vec<MetricRow> {
    use scorelab_core::streams::Stream;
    let stream = |s: Stream| s.rng(seed);
    let mut rows = vec![];
    let (reference, label) = match against {
        Against::Density(p, label) => (
            p.sample(x.nrows(), &mut stream(Stream::MetricReference)),
            label.as_str(),
        ),
        Against::Reference(y) => (y.clone(), "reference"),
    };
    let m = mmd2(
        x,
        reference.view(),
        options.bandwidth,
        tests,
        &mut stream(Stream::MetricMmd),
    );
    rows.push(MetricRow::of("mmd2", m.estimate, label));
    rows.push(MetricRow {
        metric: "mmd_bandwidth".into(),
        value: m.bandwidth,
        se: None,
        p_value: None,
        target: label.into(),
    });
    if let (Against::Density(p, _), true) = (against, options.ksd) {
        let k = ksd(x, p.as_ref(), tests, &mut stream(Stream::MetricKsd));
        rows.push(MetricRow::of("ksd", k.ksd, label));
        rows.push(MetricRow::of("ksd2_u", k.u_statistic, label));
    }
    let w = sliced_w2(
        x,
        reference.view(),
        PROJECTIONS,
        &mut stream(Stream::MetricSlicedW2),
    );
    rows.push(MetricRow::of("sliced_w2", w, label));
    if let Against::Density(p, _) = against {
        if let AnyDensity::GaussianMixture(mix) = p.as_ref() {
            for (k, e) in mode_weights(mix, x).into_iter().enumerate() {
                rows.push(MetricRow::of(&format!("mode_weight_{k}"), e, label));
            }
        }
    }
    rows
}

/// `metrics.csv` text.
pub fn to_csv(rows: &[MetricRow]) -> String {
    let mut out = format!("{METRIC_COLUMNS}\n");
    for r in rows {
        out.push_str(&format!(
            "{},{},{},{},{}\n",
            r.metric,
            r.value,
            cell(r.se),
            cell(r.p_value),
            r.target
        ));
    }
    out
}

/// The mean and the sample standard deviation (n − 1) of `v`, the latter as a CSV cell (empty
/// for a single value).
///
/// # Examples
/// ```
/// let (m, sd) = scorelab_pipeline::metrics::mean_sd(&[1.0, 3.0]);
/// assert_eq!((m, sd.as_str()), (2.0, "1.4142135623730951"));
/// assert_eq!(scorelab_pipeline::metrics::mean_sd(&[5.0]).1, "");
/// ```
pub fn mean_sd(v: &[f64]) -> (f64, String) {
    // The arithmetic and its policy for non-finite values are MeanSe's.
    let m = scorelab_core::stats::MeanSe::of_slice(v);
    (m.mean, cell((v.len() > 1).then_some(m.sd)))
}

/// [`mean_sd`] as two CSV cells.
pub fn mean_sd_cell(v: &[f64]) -> (String, String) {
    let (m, sd) = mean_sd(v);
    (m.to_string(), sd)
}

/// Each row's Euclidean distance to its nearest row of `train`, by one matrix product
/// (‖x‖² + ‖t‖² − 2x·t, clamped at 0): the memorisation check of generated samples.
///
/// # Examples
/// ```
/// use ndarray::array;
/// let d = scorelab_pipeline::metrics::nearest_distances(
///     array![[0.0, 0.0], [3.0, 4.0]].view(), array![[0.0, 1.0], [3.0, 4.0]].view());
/// assert_eq!(d, vec![1.0, 0.0]);
/// ```
pub fn nearest_distances(x: ArrayView2<f64>, train: ArrayView2<f64>) -> Vec<f64> {
    let t2: Array1<f64> = train.rows().into_iter().map(|r| r.dot(&r)).collect();
    let g = x.dot(&train.t());
    x.rows()
        .into_iter()
        .zip(g.rows())
        .map(|(r, gr)| {
            let r2 = r.dot(&r);
            gr.iter()
                .zip(&t2)
                .map(|(g, t)| (r2 + t - 2.0 * g).max(0.0))
                .fold(f64::INFINITY, f64::min)
                .sqrt()
        })
        .collect()
}

/// The median of `v` (the mean of the middle two for an even count).
///
/// # Examples
/// ```
/// assert_eq!(scorelab_pipeline::metrics::median(&[3.0, 1.0, 2.0, 10.0]), 2.5);
/// ```
pub fn median(v: &[f64]) -> f64 {
    let mut s: Vec<f64> = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        0.5 * (s[n / 2 - 1] + s[n / 2])
    }
}

/// The rows of `x` whose every coordinate is finite (chains that did not diverge).
pub fn finite_rows(x: ArrayView2<f64>) -> Array2<f64> {
    let keep: Vec<usize> = (0..x.nrows())
        .filter(|&i| x.row(i).iter().all(|v| v.is_finite()))
        .collect();
    x.select(ndarray::Axis(0), &keep)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;
    use scorelab_densities::catalogue;

    /// The NaN rows of a run with no finite point name the same metrics as a normal run.
    #[test]
    fn the_rows_without_finite_points_match_the_normal_rows() {
        let x = array![[0.0, 1.0], [1.0, 0.5], [2.0, -1.0], [f64::NAN, 0.0]];
        let mix = catalogue::all()
            .into_iter()
            .find(|(n, _)| *n == "mix2")
            .unwrap()
            .1;
        for against in [
            Against::Density(Box::new(mix), "p".into()),
            Against::Reference(array![[0.0, 0.0], [1.0, 1.0]]),
        ] {
            let rows = metrics(x.view(), &against, 0, 0);
            let names: Vec<String> = rows.iter().map(|r| r.metric.clone()).collect();
            let mut want = metric_names(&against, true);
            want.push("diverged".into());
            assert_eq!(names, want);
            assert_eq!(rows.last().unwrap().value, 0.25);
            assert!(rows[..rows.len() - 1].iter().all(|r| r.value.is_finite()));
            let all_bad = metrics(x.slice(ndarray::s![3.., ..]), &against, 0, 0);
            assert_eq!(all_bad.len(), want.len());
            assert!(all_bad[..want.len() - 1].iter().all(|r| r.value.is_nan()));
            assert_eq!(all_bad.last().unwrap().value, 1.0);
        }
    }
}
