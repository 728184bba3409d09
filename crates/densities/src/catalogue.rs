//! A catalogue of named example densities: every kind, in 1, 2, 3 and 10 dimensions, with
//! overlapping and separated mixtures, a mild and a strong banana, light- and heavy-tailed, and the
//! boundary case. The test suites of every crate run their checks over it.

use crate::{AnyDensity, Banana, Gaussian, GaussianMixture, HalfNormal, StudentT};
use ndarray::{array, Array1, Array2};

/// The catalogue as (name, density) pairs.
///
/// # Examples
/// ```
/// use scorelab_core::Dimension;
/// let all = scorelab_densities::catalogue::all();
/// assert!(all.iter().any(|(name, p)| *name == "ncsn_toy" && p.dim() == 2));
/// ```
///
/// # Panics
/// Never: every entry is valid by construction.
pub fn all() -> Vec<(&'static str, AnyDensity)> {
    let eye2 = array![[1.0, 0.0], [0.0, 1.0]];
    let ok = "catalogue entries are valid";
    vec![
        (
            "gauss1",
            Gaussian::new(array![0.5], array![[2.0]]).expect(ok).into(),
        ),
        (
            "gauss2",
            Gaussian::new(array![1.0, -0.5], array![[1.0, 0.6], [0.6, 2.0]])
                .expect(ok)
                .into(),
        ),
        (
            "gauss3",
            Gaussian::new(
                array![0.5, -1.0, 2.0],
                array![[2.0, 0.3, 0.0], [0.3, 1.0, 0.2], [0.0, 0.2, 0.5]],
            )
            .expect(ok)
            .into(),
        ),
        (
            "gauss10",
            Gaussian::new(Array1::linspace(-1.0, 1.0, 10), Array2::eye(10) * 0.5)
                .expect(ok)
                .into(),
        ),
        (
            "mix1",
            GaussianMixture::new(
                array![0.3, 0.7],
                vec![array![-1.0], array![2.0]],
                vec![array![[0.5]], array![[1.0]]],
            )
            .expect(ok)
            .into(),
        ),
        (
            "mix2",
            GaussianMixture::new(
                array![0.5, 0.5],
                vec![array![1.0, 1.0], array![-1.0, 0.0]],
                vec![
                    array![[0.3, 0.0], [0.0, 0.3]],
                    array![[0.5, 0.2], [0.2, 0.4]],
                ],
            )
            .expect(ok)
            .into(),
        ),
        (
            "ncsn_toy",
            GaussianMixture::new(
                array![0.8, 0.2],
                vec![array![5.0, 5.0], array![-5.0, -5.0]],
                vec![eye2.clone(), eye2],
            )
            .expect(ok)
            .into(),
        ),
        ("banana_1", Banana::new(1.0, 0.5).expect(ok).into()),
        ("banana_haario", Banana::new(10.0, 0.03).expect(ok).into()),
        (
            "t1",
            StudentT::new(array![1.0], array![[2.0]], 5.0)
                .expect(ok)
                .into(),
        ),
        (
            "t3",
            StudentT::new(
                array![0.0, 1.0, -1.0],
                array![[1.0, 0.2, 0.1], [0.2, 2.0, -0.3], [0.1, -0.3, 0.7]],
                7.0,
            )
            .expect(ok)
            .into(),
        ),
        ("half_normal", HalfNormal::new(1.5).expect(ok).into()),
        ("half_normal_narrow", HalfNormal::new(0.3).expect(ok).into()),
    ]
}
