//! The 2-D toy data sets of FFJORD's experiments (Grathwohl et al. 2019, "FFJORD: Free-form
//! continuous dynamics for scalable reversible generative models", §5.1 and its `toy_data.py`),
//! under FFJORD's names, as seeded samplers ([`Toy`]) and, where one exists in closed form, their
//! exact density ([`Toy::log_density`]).
//!
//! Each is written from its definition (below, with its scale), not from FFJORD's code. Where
//! FFJORD splits a batch into equal parts (one per ring, moon, spiral arm or pinwheel blade) or
//! spaces angles evenly, every draw here picks its part and angle at random instead, so that the
//! draws are independent and identically distributed, from the distribution FFJORD's batches
//! approximate:
//!
//! | name | definition (z ∼ N(0, I), u ∼ U(0, 1)) | scale |
//! | --- | --- | --- |
//! | `8gaussians` | ½√2 · (4(cos kπ/4, sin kπ/4) + ½z), k uniform on 0…7 | centres at radius 2.83, sd 0.354 |
//! | `checkerboard` | uniform on the 8 squares (i, j) ∈ {−2, …, 1}², i + j even, of side 2: [2i, 2i+2) × [2j, 2j+2) | [−4, 4)², density 1/32 |
//! | `2spirals` | ±(−n cos n + ½u₁, n sin n + ½u₂)/3 + 0.1z, n = 3π√u | radius up to 3.2 |
//! | `swissroll` | (t cos t + z₁, t sin t + z₂)/5, t = 1.5π(1 + 2u) | radius 0.94 to 2.8 |
//! | `circles` | 3(r cos θ, r sin θ) + 0.24z, r ∈ {1, ½}, θ uniform | radii 3 and 1.5 |
//! | `rings` | r(cos θ, sin θ) + 0.08z, r ∈ {3, 2.25, 1.5, 0.75}, θ uniform | four rings |
//! | `moons` | 2v + (−1, −0.2), v = (cos θ, sin θ) or (1 − cos θ, ½ − sin θ), θ ∼ U(0, π), + 0.1z before scaling | width 6 |
//! | `pinwheel` | 2 R(a)(1 + 0.3z₁, 0.1z₂), a = 2πk/5 + ¼e^{1 + 0.3z₁}, k uniform on 0…4 | 5 blades, radius about 2 |
//!
//! (In `pinwheel`, R(a)f = (f₁ cos a + f₂ sin a, −f₁ sin a + f₂ cos a).) `8gaussians` is an
//! equal-weight mixture of isotropic Gaussians and `checkerboard` piecewise uniform: those two
//! have [`Toy::log_density`]; the others are convolutions of curves with noise and have none here.
//!
//! ```
//! use rand::SeedableRng;
//! use rand_chacha::ChaCha8Rng;
//! use scorelab_core::Sample;
//! use scorelab_densities::Toy;
//! let toy: Toy = "checkerboard".parse()?;
//! let x = toy.sample(1000, &mut ChaCha8Rng::seed_from_u64(0));
//! // Every draw lies on a square of the board, where the density is 1/32.
//! let lp = toy.log_density(x.view()).expect("closed form");
//! assert!(lp.iter().all(|&v| (v + 32f64.ln()).abs() < 1e-12));
//! # Ok::<(), scorelab_densities::DensityError>(())
//! ```

use crate::{DensityError, GaussianMixture};
use ndarray::{Array1, Array2, ArrayView2};
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};
use scorelab_core::{Dimension, LogDensity, Sample};
use std::f64::consts::PI;

/// The names of the toy data sets, in FFJORD's order of its figure.
pub const TOY_NAMES: [&str; 8] = [
    "8gaussians",
    "checkerboard",
    "2spirals",
    "swissroll",
    "circles",
    "rings",
    "moons",
    "pinwheel",
];

/// One of the toy data sets (module docs). A config names it as [`Toy::name`] does (`8gaussians`,
/// `checkerboard`, …); serde goes through [`Toy::from_str`](std::str::FromStr).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Toy {
    /// `8gaussians`.
    EightGaussians,
    /// `checkerboard`.
    Checkerboard,
    /// `2spirals`.
    TwoSpirals,
    /// `swissroll`.
    Swissroll,
    /// `circles`.
    Circles,
    /// `rings`.
    Rings,
    /// `moons`.
    Moons,
    /// `pinwheel`.
    Pinwheel,
}

impl TryFrom<String> for Toy {
    type Error = DensityError;
    fn try_from(s: String) -> Result<Self, DensityError> {
        s.parse()
    }
}

impl From<Toy> for String {
    fn from(t: Toy) -> String {
        t.name().to_string()
    }
}

impl std::str::FromStr for Toy {
    type Err = DensityError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "8gaussians" => Toy::EightGaussians,
            "checkerboard" => Toy::Checkerboard,
            "2spirals" => Toy::TwoSpirals,
            "swissroll" => Toy::Swissroll,
            "circles" => Toy::Circles,
            "rings" => Toy::Rings,
            "moons" => Toy::Moons,
            "pinwheel" => Toy::Pinwheel,
            other => {
                return Err(DensityError::Invalid {
                    field: "toy".into(),
                    message: format!(
                        "unknown toy data set {other:?}; use one of {}",
                        TOY_NAMES.join(", ")
                    ),
                })
            }
        })
    }
}

/// The `8gaussians` scale: FFJORD divides by 1.414.
const EIGHT_SCALE: f64 = 1.0 / 1.414;

impl Toy {
    /// The name as configs spell it.
    pub fn name(&self) -> &'static str {
        match self {
            Toy::EightGaussians => "8gaussians",
            Toy::Checkerboard => "checkerboard",
            Toy::TwoSpirals => "2spirals",
            Toy::Swissroll => "swissroll",
            Toy::Circles => "circles",
            Toy::Rings => "rings",
            Toy::Moons => "moons",
            Toy::Pinwheel => "pinwheel",
        }
    }

    /// `8gaussians` as the mixture it is: weights 1/8, means 4(cos kπ/4, sin kπ/4)/1.414,
    /// covariances (0.5/1.414)² I.
    pub fn eight_gaussians_mixture() -> GaussianMixture {
        let s2 = (0.5 * EIGHT_SCALE).powi(2);
        let means = (0..8)
            .map(|k| {
                let a = k as f64 * PI / 4.0;
                ndarray::array![4.0 * EIGHT_SCALE * a.cos(), 4.0 * EIGHT_SCALE * a.sin()]
            })
            .collect();
        GaussianMixture::new(
            Array1::from_elem(8, 1.0 / 8.0),
            means,
            vec![Array2::eye(2) * s2; 8],
        )
        .expect("valid by construction")
    }

    /// The exact log-density of every row where it is closed form (`8gaussians`,
    /// `checkerboard`: −ln 32 on the board, −∞ off it); `None` for the others.
    pub fn log_density(&self, x: ArrayView2<f64>) -> Option<Array1<f64>> {
        match self {
            Toy::EightGaussians => Some(Self::eight_gaussians_mixture().log_density(x)),
            Toy::Checkerboard => Some(
                x.rows()
                    .into_iter()
                    .map(|r| {
                        if on_board(r[0], r[1]) {
                            -(32f64.ln())
                        } else {
                            f64::NEG_INFINITY
                        }
                    })
                    .collect(),
            ),
            _ => None,
        }
    }

    /// The square \[lo, hi\]² that holds all of p's mass for a quadrature of KL(p ‖ q), where p
    /// is closed form: `8gaussians` on \[−`half_width`, `half_width`\]² (the caller chooses how
    /// much of its Gaussian tails to keep), `checkerboard` on \[−4, 4\]² (its support, so that
    /// panels aligned with its squares put every node inside one); `None` for the toys without a
    /// closed-form density.
    pub fn kl_square(&self, half_width: f64) -> Option<(f64, f64)> {
        match self {
            Toy::EightGaussians => Some((-half_width, half_width)),
            Toy::Checkerboard => Some((-4.0, 4.0)),
            _ => None,
        }
    }

    /// The fixed held-out set of a seed: 10 000 draws from `ChaCha8Rng` seeded with `seed` on
    /// stream 6 (the training draws use other streams), the same wherever it is asked for.
    pub fn heldout(&self, seed: u64) -> Array2<f64> {
        use rand::SeedableRng;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(scorelab_core::streams::Stream::ToyHeldout.id());
        self.sample(HELDOUT, &mut rng)
    }

    fn draw<R: Rng + ?Sized>(&self, rng: &mut R) -> [f64; 2] {
        match self {
            Toy::EightGaussians => {
                let k = rng.gen_range(0..8) as f64;
                let a = k * PI / 4.0;
                let (z1, z2) = (normal(rng), normal(rng));
                [
                    EIGHT_SCALE * (4.0 * a.cos() + 0.5 * z1),
                    EIGHT_SCALE * (4.0 * a.sin() + 0.5 * z2),
                ]
            }
            Toy::Checkerboard => {
                let x1: f64 = rng.gen_range(-2.0..2.0);
                let lower = rng.gen_bool(0.5);
                let u: f64 = rng.gen();
                let x2 = u - if lower { 2.0 } else { 0.0 } + x1.floor().rem_euclid(2.0);
                [2.0 * x1, 2.0 * x2]
            }
            Toy::TwoSpirals => {
                let u: f64 = rng.gen();
                let n = 3.0 * PI * u.sqrt();
                let (u1, u2): (f64, f64) = (rng.gen(), rng.gen());
                let sign = if rng.gen_bool(0.5) { 1.0 } else { -1.0 };
                let (z1, z2) = (normal(rng), normal(rng));
                [
                    sign * (-n.cos() * n + 0.5 * u1) / 3.0 + 0.1 * z1,
                    sign * (n.sin() * n + 0.5 * u2) / 3.0 + 0.1 * z2,
                ]
            }
            Toy::Swissroll => {
                let u: f64 = rng.gen();
                let t = 1.5 * PI * (1.0 + 2.0 * u);
                let (z1, z2) = (normal(rng), normal(rng));
                [(t * t.cos() + z1) / 5.0, (t * t.sin() + z2) / 5.0]
            }
            Toy::Circles => {
                let r = if rng.gen_bool(0.5) { 1.0 } else { 0.5 };
                let th: f64 = rng.gen_range(0.0..2.0 * PI);
                let (z1, z2) = (normal(rng), normal(rng));
                [
                    3.0 * (r * th.cos() + 0.08 * z1),
                    3.0 * (r * th.sin() + 0.08 * z2),
                ]
            }
            Toy::Rings => {
                let r = [3.0, 2.25, 1.5, 0.75][rng.gen_range(0..4)];
                let th: f64 = rng.gen_range(0.0..2.0 * PI);
                let (z1, z2) = (normal(rng), normal(rng));
                [r * th.cos() + 0.08 * z1, r * th.sin() + 0.08 * z2]
            }
            Toy::Moons => {
                let th: f64 = rng.gen_range(0.0..PI);
                let v = if rng.gen_bool(0.5) {
                    [th.cos(), th.sin()]
                } else {
                    [1.0 - th.cos(), 0.5 - th.sin()]
                };
                let (z1, z2) = (normal(rng), normal(rng));
                [2.0 * (v[0] + 0.1 * z1) - 1.0, 2.0 * (v[1] + 0.1 * z2) - 0.2]
            }
            Toy::Pinwheel => {
                let k = rng.gen_range(0..5) as f64;
                let f1 = 1.0 + 0.3 * normal(rng);
                let f2 = 0.1 * normal(rng);
                let a = 2.0 * PI * k / 5.0 + 0.25 * f1.exp();
                [
                    2.0 * (f1 * a.cos() + f2 * a.sin()),
                    2.0 * (-f1 * a.sin() + f2 * a.cos()),
                ]
            }
        }
    }
}

fn normal<R: Rng + ?Sized>(rng: &mut R) -> f64 {
    StandardNormal.sample(rng)
}

/// The size of [`Toy::heldout`].
pub const HELDOUT: usize = 10_000;

/// Whether (x, y) lies on the checkerboard: in [−4, 4)² on a square (i, j) with i + j even.
fn on_board(x: f64, y: f64) -> bool {
    if !((-4.0..4.0).contains(&x) && (-4.0..4.0).contains(&y)) {
        return false;
    }
    let (i, j) = ((x / 2.0).floor() as i64, (y / 2.0).floor() as i64);
    (i + j).rem_euclid(2) == 0
}

impl Dimension for Toy {
    fn dim(&self) -> usize {
        2
    }
}

impl Sample for Toy {
    fn sample<R: Rng + ?Sized>(&self, n: usize, rng: &mut R) -> Array2<f64> {
        let mut x = Array2::zeros((n, 2));
        for mut r in x.rows_mut() {
            let p = self.draw(rng);
            r[0] = p[0];
            r[1] = p[1];
        }
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    /// E‖x‖² and E x of every toy in closed form from its definition (module docs).
    fn moments(t: Toy) -> (f64, [f64; 2]) {
        match t {
            Toy::EightGaussians => (EIGHT_SCALE.powi(2) * (16.0 + 2.0 * 0.25), [0.0, 0.0]),
            // Both coordinates are marginally uniform on [−4, 4).
            Toy::Checkerboard => (2.0 * 16.0 / 3.0, [0.0, 0.0]),
            Toy::TwoSpirals => {
                // n has density 2n/(3π)² on [0, 3π]: E n² = 4.5π²,
                // E n sin n = 2(9π² − 4)/(9π²), E n cos n = −12π/(9π²); E(u₁² + u₂²)/4 = 1/6.
                let pi2 = PI * PI;
                let e_n_sin = 2.0 * (9.0 * pi2 - 4.0) / (9.0 * pi2);
                let e_n_cos = -12.0 * PI / (9.0 * pi2);
                let inner = 4.5 * pi2 + 0.5 * (e_n_sin - e_n_cos) + 1.0 / 6.0;
                (inner / 9.0 + 2.0 * 0.01, [0.0, 0.0])
            }
            Toy::Swissroll => {
                // t ∼ U(1.5π, 4.5π): E t² = 9.75π², E t cos t = 6π/(3π), E t sin t = 2/(3π).
                (
                    (9.75 * PI * PI + 2.0) / 25.0,
                    [2.0 / 5.0, 2.0 / (3.0 * PI) / 5.0],
                )
            }
            Toy::Circles => (
                9.0 * (0.5 * 1.0 + 0.5 * 0.25) + 2.0 * 0.24f64.powi(2),
                [0.0, 0.0],
            ),
            Toy::Rings => (
                (9.0 + 5.0625 + 2.25 + 0.5625) / 4.0 + 2.0 * 0.0064,
                [0.0, 0.0],
            ),
            Toy::Moons => {
                // v: E v = (½, ¼); E‖v‖² = (1 + 2.25 − 2/π)/2, plus the noise 2·0.01.
                let ev = [0.5, 0.25];
                let ev2 = (1.0 + 2.25 - 2.0 / PI) / 2.0 + 0.02;
                let a = [-1.0, -0.2];
                (
                    4.0 * ev2 + 4.0 * (a[0] * ev[0] + a[1] * ev[1]) + a[0] * a[0] + a[1] * a[1],
                    [2.0 * ev[0] + a[0], 2.0 * ev[1] + a[1]],
                )
            }
            // A rotation keeps |f|: E‖x‖² = 4(1 + 0.09 + 0.01); five-fold symmetry: mean 0.
            Toy::Pinwheel => (4.0 * 1.1, [0.0, 0.0]),
        }
    }

    /// Every toy's sample mean and mean squared norm against the closed forms, each within 5
    /// standard errors (estimated from the same 40 000 draws; a two-sided miss has probability
    /// about 6e-7 per comparison for a correct sampler), with a fixed seed.
    #[test]
    fn every_toy_has_the_moments_of_its_definition() {
        for name in TOY_NAMES {
            let t: Toy = name.parse().unwrap();
            assert_eq!(t.name(), name);
            let x = t.sample(40_000, &mut ChaCha8Rng::seed_from_u64(11));
            let n = x.nrows() as f64;
            let sq: Array1<f64> = x.rows().into_iter().map(|r| r.dot(&r)).collect();
            let (want_sq, want_mean) = moments(t);
            let se = sq.std(1.0) / n.sqrt();
            let got = sq.mean().unwrap();
            assert!(
                (got - want_sq).abs() < 5.0 * se,
                "{name}: E|x|² {got} vs {want_sq} (se {se})"
            );
            for j in 0..2 {
                let c = x.column(j);
                let se = c.std(1.0) / n.sqrt();
                let m = c.mean().unwrap();
                assert!(
                    (m - want_mean[j]).abs() < 5.0 * se,
                    "{name}: mean {j} {m} vs {} (se {se})",
                    want_mean[j]
                );
            }
        }
    }

    /// The checkerboard's draws fill each of its 8 squares equally (χ² with 7 df below 24.3,
    /// its 0.1% point) and never leave the board; its density is 1/32 there and integrates to 1
    /// over [−4, 4)² by a rule on panels aligned with the squares.
    #[test]
    fn the_checkerboard_is_uniform_on_its_squares() {
        let t = Toy::Checkerboard;
        let x = t.sample(16_000, &mut ChaCha8Rng::seed_from_u64(3));
        let mut counts = std::collections::BTreeMap::new();
        for r in x.rows() {
            assert!(on_board(r[0], r[1]), "{r}");
            let key = ((r[0] / 2.0).floor() as i64, (r[1] / 2.0).floor() as i64);
            *counts.entry(key).or_insert(0.0) += 1.0;
        }
        assert_eq!(counts.len(), 8);
        let chi2: f64 = counts
            .values()
            .map(|c| (c - 2000.0f64).powi(2) / 2000.0)
            .sum();
        assert!(chi2 < 24.3, "{chi2}");
        let rule = crate::quadrature::legendre_box([-4.0; 2], [4.0; 2], 4, 2);
        let lp = t.log_density(rule.nodes.view()).unwrap();
        let total: f64 = lp.iter().zip(&rule.weights).map(|(l, w)| w * l.exp()).sum();
        assert!((total - 1.0).abs() < 1e-12, "{total}");
    }

    /// The 8 Gaussians' draws have the mixture's log-likelihood: their mean log-density is within
    /// 5 SE of the mixture's negative entropy estimated from its own draws (a second sampler).
    #[test]
    fn eight_gaussians_draws_come_from_its_mixture() {
        let t = Toy::EightGaussians;
        let a = t.sample(20_000, &mut ChaCha8Rng::seed_from_u64(5));
        let b = Toy::eight_gaussians_mixture().sample(20_000, &mut ChaCha8Rng::seed_from_u64(6));
        let la = t.log_density(a.view()).unwrap();
        let lb = t.log_density(b.view()).unwrap();
        let se = ((la.var(1.0) + lb.var(1.0)) / 20_000.0).sqrt();
        let d = la.mean().unwrap() - lb.mean().unwrap();
        assert!(d.abs() < 5.0 * se, "{d} (se {se})");
        assert!(Toy::Rings.log_density(a.view()).is_none());
    }

    #[test]
    fn unknown_names_are_refused_with_the_list() {
        let e = "spirals".parse::<Toy>().unwrap_err().to_string();
        assert!(
            e.contains("toy") && e.contains("2spirals") && e.contains("pinwheel"),
            "{e}"
        );
        let h = Toy::Moons.heldout(4);
        assert_eq!(h.dim(), (HELDOUT, 2));
        assert_eq!(h, Toy::Moons.heldout(4));
        assert_ne!(h, Toy::Moons.heldout(5));
    }
}
