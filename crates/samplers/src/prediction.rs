//! What a network predicts, and the exact conversions between the four parameterisations of one
//! noise-conditional model. At time t of a [`Schedule`] with x = α(x₀ + σ̃z), each prediction is
//! affine in the score s = ∇ₓ log p_t(x) with coefficients of the schedule alone,
//! P(x, t) = a(t) x + b(t) s:
//!
//! | prediction | what it is | a(t) | b(t) |
//! | --- | --- | --- | --- |
//! | [`Prediction::Score`] | ∇ₓ log p_t(x) | 0 | 1 |
//! | [`Prediction::Data`] | E[x₀ \| x] (Tweedie; EDM's D) | 1/α | σ̃²α |
//! | [`Prediction::Noise`] | E[z \| x] (DDPM's ε̂) | 0 | −σ̃α |
//! | [`Prediction::Velocity`] | the probability-flow velocity dx/dt = f x − ½g² s | α̇/α | −α²σ̃σ̃̇ |
//!
//! so every conversion is exact wherever b(t) ≠ 0 (σ̃ > 0). On the linear path of flow matching
//! (α = 1 − t, σ̃ = t/(1 − t)) the velocity is E[ε − x₀ | x], the target of conditional flow
//! matching (Lipman et al. 2023), and the data and noise predictions are the ones rectified flow's
//! x₀- and ε-parameterisations give.
//!
//! ```
//! use ndarray::array;
//! use scorelab_samplers::{prediction::Prediction, Schedule};
//! let lin = Schedule::linear(1e-3, 0.999)?;
//! let (x, s) = (array![[0.3, -1.0]], array![[-0.5, 2.0]]);
//! let v = Prediction::Velocity.from_score(&lin, 0.4, x.view(), s.view());
//! let d = Prediction::Data.from_score(&lin, 0.4, x.view(), s.view());
//! let e = Prediction::Noise.from_score(&lin, 0.4, x.view(), s.view());
//! // On the linear path the velocity is E[ε − x₀ | x] = ε̂ − D.
//! assert!((&v - &(&e - &d)).iter().all(|r| r.abs() < 1e-12));
//! // And back: the score from the velocity.
//! let back = Prediction::Velocity.to_score(&lin, 0.4, x.view(), v.view());
//! assert!((&back - &s).iter().all(|r| r.abs() < 1e-12));
//! # Ok::<(), scorelab_core::ParamError>(())
//! ```

use crate::Schedule;
use ndarray::{Array2, ArrayView2};

/// A parameterisation of a noise-conditional model (module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prediction {
    /// ∇ₓ log p_t(x).
    Score,
    /// E[x₀ | x].
    Data,
    /// E[z | x].
    Noise,
    /// dx/dt of the probability-flow ODE.
    Velocity,
}

impl Prediction {
    /// (a(t), b(t)) with P = a x + b s (module docs).
    pub fn coefficients(&self, schedule: &Schedule, t: f64) -> (f64, f64) {
        let (a, s) = (schedule.alpha(t), schedule.sigma(t));
        match self {
            Prediction::Score => (0.0, 1.0),
            Prediction::Data => (1.0 / a, s * s * a),
            Prediction::Noise => (0.0, -s * a),
            Prediction::Velocity => (schedule.drift(t), -a * a * s * schedule.sigma_dot(t)),
        }
    }

    /// This prediction at (x, t) from the score s = ∇ₓ log p_t(x) there.
    pub fn from_score(
        &self,
        schedule: &Schedule,
        t: f64,
        x: ArrayView2<f64>,
        score: ArrayView2<f64>,
    ) -> Array2<f64> {
        let (a, b) = self.coefficients(schedule, t);
        let mut out = &score * b;
        if a != 0.0 {
            out.scaled_add(a, &x);
        }
        out
    }

    /// The score at (x, t) from this prediction there: (P − a x)/b.
    ///
    /// # Panics
    /// Where b(t) = 0 (σ̃(t) = 0, where no prediction but the score determines it).
    pub fn to_score(
        &self,
        schedule: &Schedule,
        t: f64,
        x: ArrayView2<f64>,
        prediction: ArrayView2<f64>,
    ) -> Array2<f64> {
        let (a, b) = self.coefficients(schedule, t);
        assert!(b != 0.0, "the score is not determined where σ̃ = 0");
        let mut out = prediction.to_owned();
        if a != 0.0 {
            out.scaled_add(-a, &x);
        }
        out / b
    }

    /// `prediction` of this kind converted to `to` at (x, t).
    ///
    /// # Panics
    /// As [`Prediction::to_score`].
    pub fn convert(
        &self,
        to: Prediction,
        schedule: &Schedule,
        t: f64,
        x: ArrayView2<f64>,
        prediction: ArrayView2<f64>,
    ) -> Array2<f64> {
        let s = self.to_score(schedule, t, x, prediction);
        to.from_score(schedule, t, x, s.view())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    /// N(μ, v) in 1-D: p_t = N(αμ, α²(v + σ̃²)), so D, ε̂ and the flow map are closed forms: each
    /// prediction from the exact score matches its own closed form, the velocity matches the
    /// central difference of the exact flow map x(t) = α(μ + √(v + σ̃²) u), and every conversion
    /// round-trips, on every schedule.
    #[test]
    fn every_prediction_is_its_closed_form_on_a_gaussian() {
        let (mu, v) = (0.7, 0.4);
        let schedules = [
            Schedule::vp(0.1, 20.0, 1e-3).unwrap(),
            Schedule::subvp(0.1, 20.0, 1e-3).unwrap(),
            Schedule::linear(1e-3, 0.999).unwrap(),
            Schedule::edm(
                scorelab_core::SigmaRange {
                    min: 0.002,
                    max: 80.0,
                },
                7.0,
            )
            .unwrap(),
        ];
        for sch in &schedules {
            let t = 0.37 * sch.t_max() + 0.1 * sch.t_end();
            let (a, s) = (sch.alpha(t), sch.sigma(t));
            let x = array![[-1.3], [0.2], [2.5]];
            let var = a * a * (v + s * s);
            let score = x.mapv(|xi| -(xi - a * mu) / var);
            let y = &x / a;
            let d = y.mapv(|yi| mu + v * (yi - mu) / (v + s * s));
            let eps = y.mapv(|yi| s * (yi - mu) / (v + s * s));
            let close = |p: &Array2<f64>, q: &Array2<f64>, tol: f64| {
                p.iter()
                    .zip(q)
                    .all(|(u, w)| (u - w).abs() <= tol * (1.0 + w.abs()))
            };
            let pd = Prediction::Data.from_score(sch, t, x.view(), score.view());
            let pe = Prediction::Noise.from_score(sch, t, x.view(), score.view());
            assert!(close(&pd, &d, 1e-12), "{pd} {d}");
            assert!(close(&pe, &eps, 1e-12), "{pe} {eps}");
            // The flow map through each x: u fixed, x(t) = α(t)(μ + √(v + σ̃(t)²) u).
            let u = y.mapv(|yi| (yi - mu) / (v + s * s).sqrt());
            let h = 1e-6 * sch.t_max();
            let at = |tt: f64| {
                u.mapv(|ui| sch.alpha(tt) * (mu + (v + sch.sigma(tt).powi(2)).sqrt() * ui))
            };
            let fd = (at(t + h) - at(t - h)) / (2.0 * h);
            let pv = Prediction::Velocity.from_score(sch, t, x.view(), score.view());
            assert!(close(&pv, &fd, 1e-6), "{pv} {fd}");
            for from in [
                Prediction::Score,
                Prediction::Data,
                Prediction::Noise,
                Prediction::Velocity,
            ] {
                let p = from.from_score(sch, t, x.view(), score.view());
                for to in [
                    Prediction::Score,
                    Prediction::Data,
                    Prediction::Noise,
                    Prediction::Velocity,
                ] {
                    let want = to.from_score(sch, t, x.view(), score.view());
                    assert!(close(
                        &from.convert(to, sch, t, x.view(), p.view()),
                        &want,
                        1e-10
                    ));
                }
            }
        }
    }
}
