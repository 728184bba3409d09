//! Classifier-free guidance against the truth: at σ̃ = 0 the guided score is the score of the
//! tilted law p(x | c)^{1+w} p(x)^{−w} (central differences of its log-density), the interval
//! switches guidance off outside it, and w = 0 is the conditional score itself.

use ndarray::{array, Array2};
use scorelab_core::{LogDensity, NoisedScore};
use scorelab_densities::GaussianMixture;
use scorelab_samplers::guidance::{Guidance, Guided};

fn mixture() -> GaussianMixture {
    GaussianMixture::new(
        array![0.5, 0.3, 0.2],
        vec![array![-1.0, 0.0], array![1.5, 0.5], array![0.0, 2.0]],
        vec![
            array![[1.0, 0.3], [0.3, 0.6]],
            array![[0.5, 0.0], [0.0, 1.5]],
            array![[0.8, -0.2], [-0.2, 0.4]],
        ],
    )
    .unwrap()
}

#[test]
fn the_guided_score_at_zero_noise_is_the_tilted_laws() {
    let p = mixture();
    let c = p.restricted(&[1, 2]).unwrap();
    let x = array![[0.3, -0.4], [1.0, 1.0], [-2.0, 2.5], [0.0, 0.0]];
    for w in [0.0, 0.5, 2.0, 7.0] {
        let g = Guided::new(&c, &p, Guidance::new(w, None).unwrap());
        let got = g.noised_score(x.view(), 0.0);
        let tilted =
            |y: &Array2<f64>| &c.log_density(y.view()) * (1.0 + w) - &(p.log_density(y.view()) * w);
        let h = 1e-5;
        for j in 0..2 {
            let mut e = Array2::zeros(x.dim());
            e.column_mut(j).fill(h);
            let fd = (tilted(&(&x + &e)) - tilted(&(&x - &e))) / (2.0 * h);
            for i in 0..x.nrows() {
                // Central differences at h = 1e-5: error O(h²) times third derivatives, plus
                // rounding of log-densities of order 1 divided by h: 1e-6 covers both here.
                assert!(
                    (got[[i, j]] - fd[i]).abs() < 1e-6 * (1.0 + w),
                    "w = {w}, row {i}, column {j}: {} vs {}",
                    got[[i, j]],
                    fd[i]
                );
            }
        }
    }
}

#[test]
fn the_interval_and_weight_zero() {
    let p = mixture();
    let c = p.restricted(&[0]).unwrap();
    let x = array![[0.3, -0.4], [1.0, 1.0]];
    let g = Guided::new(&c, &p, Guidance::new(3.0, Some((0.5, 2.0))).unwrap());
    for sigma in [0.1, 0.49, 2.01, 10.0] {
        assert_eq!(
            g.noised_score(x.view(), sigma),
            c.noised_score(x.view(), sigma),
            "σ = {sigma}"
        );
    }
    for sigma in [0.5, 1.0, 2.0] {
        let want = c.noised_score(x.view(), sigma) * 4.0 - p.noised_score(x.view(), sigma) * 3.0;
        assert_eq!(g.noised_score(x.view(), sigma), want, "σ = {sigma}");
    }
    let plain = Guided::new(&c, &p, Guidance::new(0.0, None).unwrap());
    assert_eq!(
        plain.noised_score(x.view(), 0.7),
        c.noised_score(x.view(), 0.7)
    );
    assert!(Guidance::new(f64::NAN, None).is_err());
    assert!(Guidance::new(1.0, Some((2.0, 1.0)))
        .unwrap_err()
        .to_string()
        .starts_with("interval"));
    assert!(p
        .restricted(&[0, 0])
        .unwrap_err()
        .to_string()
        .contains("twice"));
}
