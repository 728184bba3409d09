//! The dfdx networks against independent references, through the f64 door: JVPs and exact traces
//! against central finite differences of the score, naive = structured traces, the energy network's
//! score against −∇ of its energy, and θ-gradients against finite differences in θ.

use ndarray::{Array1, Array2, ArrayView2};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use scorelab_core::tolerance::{FINITE_DIFF_REL, FINITE_DIFF_STEP};
use scorelab_core::{ParameterGradient, Score, ScoreFunction};
use scorelab_models::{
    Activation, EnergyMlp, Mlp, NoiseConditionalMlp, Params, Precondition, TraceMethod,
};

/// Naive and structured traces are the same sum in another order: rounding only.
const TRACE_AGREEMENT_REL: f64 = 1e-11;

fn normal(n: usize, d: usize, scale: f64, seed: u64) -> Array2<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Array2::from_shape_fn((n, d), |_| {
        let z: f64 = StandardNormal.sample(&mut rng);
        scale * z
    })
}

fn close(a: f64, b: f64, rel: f64, what: &str) {
    let scale = 1.0 + a.abs().max(b.abs());
    assert!(
        (a - b).abs() <= rel * scale,
        "{what}: {a} vs {b} (rel tol {rel})"
    );
}

/// (s(x + hv) − s(x − hv)) / 2h.
fn fd_jvp(m: &dyn Score, x: ArrayView2<f64>, v: ArrayView2<f64>) -> Array2<f64> {
    let h = FINITE_DIFF_STEP;
    let plus = m.score((&x + &(&v * h)).view());
    let minus = m.score((&x - &(&v * h)).view());
    (plus - minus) / (2.0 * h)
}

/// Σₖ ∂sₖ/∂xₖ by central differences.
fn fd_trace(m: &dyn Score, x: ArrayView2<f64>) -> Array1<f64> {
    let (n, d) = x.dim();
    let mut tr = Array1::zeros(n);
    for k in 0..d {
        let mut v = Array2::zeros((n, d));
        v.column_mut(k).fill(1.0);
        tr += &fd_jvp(m, x, v.view()).column(k);
    }
    tr
}

fn check_score_function(m: &dyn ScoreFunction, naive: Array1<f64>, what: &str) {
    let d = m.dim();
    let x = normal(5, d, 1.0, 11);
    let v = normal(5, d, 1.0, 12);
    let jvp = m.score_jvp(x.view(), v.view());
    let fd = fd_jvp(m, x.view(), v.view());
    for (a, b) in jvp.iter().zip(&fd) {
        close(
            *a,
            *b,
            FINITE_DIFF_REL,
            &format!("{what}: JVP vs finite difference"),
        );
    }
    let structured = m.jacobian_trace(x.view());
    let fd = fd_trace(m, x.view());
    for i in 0..5 {
        close(
            structured[i],
            naive[i],
            TRACE_AGREEMENT_REL,
            &format!("{what}: structured vs naive trace"),
        );
        close(
            structured[i],
            fd[i],
            FINITE_DIFF_REL,
            &format!("{what}: trace vs finite difference"),
        );
    }
}

fn x_for(d: usize) -> Array2<f64> {
    normal(5, d, 1.0, 11)
}

/// Σₖ eₖᵀ J eₖ from D Jacobian–vector products with the basis vectors: the trace by a route
/// that does not go through the trace code.
fn basis_trace(m: &dyn ScoreFunction, d: usize) -> Array1<f64> {
    let x = x_for(d);
    let mut tr = Array1::zeros(x.nrows());
    for k in 0..d {
        let mut v = Array2::zeros((x.nrows(), d));
        v.column_mut(k).fill(1.0);
        tr += &m.score_jvp(x.view(), v.view()).column(k);
    }
    tr
}

const ACTS: [Activation; 3] = [Activation::Tanh, Activation::Softplus, Activation::Silu];

#[test]
fn mlp_jvp_and_traces_match_finite_differences() {
    // L = 0 (linear), 1, 2, and L = 3 in each regime of min(D, H₁, H_L).
    let archs: [(usize, &[usize]); 7] = [
        (3, &[]),
        (3, &[7]),
        (4, &[6, 5]),
        (5, &[4, 6, 8]), // H₁ smallest: forward tangents
        (5, &[8, 6, 3]), // H_L smallest: backward tangents
        (2, &[6, 6, 6]), // D smallest: the structured trace is the naive one, so held against JVPs
        (1, &[3, 3]),
    ];
    for act in ACTS {
        for (k, (d, hidden)) in archs.iter().enumerate() {
            let m = Mlp::new(*d, hidden, act, k as u64).unwrap();
            let naive = if hidden.len() == 3 && *d < hidden[0].min(hidden[2]) {
                basis_trace(&m, *d)
            } else {
                m.trace(x_for(*d).view(), TraceMethod::Naive)
            };
            check_score_function(&m, naive, &format!("mlp {act} D={d} {hidden:?}"));
        }
    }
}

#[test]
fn noise_conditional_jvp_and_traces_match_finite_differences() {
    for act in ACTS {
        let m = NoiseConditionalMlp::new(3, &[6, 5], act, 4).unwrap();
        for sigma in [0.05, 1.0, 20.0] {
            let at = m.at(sigma);
            // The naive trace through the door at σ: the same forward with basis tangents.
            let naive = {
                let x = x_for(3);
                let mut tr = Array1::zeros(5);
                for k in 0..3 {
                    let mut v = Array2::zeros((5, 3));
                    v.column_mut(k).fill(1.0);
                    tr += &at.score_jvp(x.view(), v.view()).column(k);
                }
                tr
            };
            check_score_function(&at, naive, &format!("noise-conditional {act} σ={sigma}"));
        }
    }
}

#[test]
fn edm_preconditioning_is_its_formula_around_the_plain_network_and_differentiates_right() {
    let sd = 0.7;
    for act in ACTS {
        let plain = NoiseConditionalMlp::new(3, &[6, 5], act, 4).unwrap();
        let pre = plain
            .clone()
            .with_precondition(Some(Precondition::Edm { sigma_data: sd }));
        for sigma in [0.05, 1.0, 20.0] {
            // s = −x/(σ² + σ_d²) + σ_d c_in g(c_in x, σ), g the plain network (Karras et al. Table 1
            // through s = (D − x)/σ²): c_skip − 1 = −σ²/(σ² + σ_d²), c_out/σ² = σ_d c_in/σ.
            let x = x_for(3);
            let c_in = 1.0 / (sigma * sigma + sd * sd).sqrt();
            let g = plain.at(sigma).score((&x * c_in).view());
            let c_skip = sd * sd / (sigma * sigma + sd * sd);
            let c_out = sigma * sd * c_in;
            // D = c_skip x + c_out F with F = σ g (the plain network outputs F/σ).
            let denoised = &x * c_skip + &(&g * (sigma * c_out));
            let want = (&denoised - &x) / (sigma * sigma);
            let got = pre.at(sigma).score(x.view());
            for (a, b) in got.iter().zip(&want) {
                close(*a, *b, 1e-12, "preconditioned score");
            }
            let at = pre.at(sigma);
            let naive = {
                let mut tr = Array1::zeros(5);
                for k in 0..3 {
                    let mut v = Array2::zeros((5, 3));
                    v.column_mut(k).fill(1.0);
                    tr += &at.score_jvp(x.view(), v.view()).column(k);
                }
                tr
            };
            check_score_function(&at, naive, &format!("preconditioned {act} σ={sigma}"));
        }
    }
}

#[test]
fn noise_conditional_scales_as_one_over_sigma_in_its_output_layer() {
    // With every weight of the σ column zero, s(x, σ) = MLP(x)/σ exactly.
    let mut m = NoiseConditionalMlp::new(2, &[5], Activation::Tanh, 9).unwrap();
    let last = m.params().len() - 1;
    m.params_mut().values_mut()[last]
        .iter_mut()
        .for_each(|w| *w = 0.0);
    let x = x_for(2);
    let s1 = m.at(1.0).score(x.view());
    let s4 = m.at(4.0).score(x.view());
    for (a, b) in s1.iter().zip(&s4) {
        close(*a, 4.0 * b, 1e-14, "s(x, 1) = 4 s(x, 4)");
    }
}

#[test]
fn energy_score_jvp_and_traces_match_finite_differences() {
    let archs: [(usize, &[usize]); 4] = [(3, &[7]), (4, &[6, 5]), (2, &[5, 4, 6]), (6, &[3, 4])];
    for act in ACTS {
        for (k, (d, hidden)) in archs.iter().enumerate() {
            let m = EnergyMlp::new(*d, hidden, act, 2.5, k as u64).unwrap();
            let what = format!("energy {act} D={d} {hidden:?}");
            // s = −∇f by central differences of the energy.
            let x = x_for(*d);
            let s = m.score(x.view());
            let h = FINITE_DIFF_STEP;
            for j in 0..*d {
                let mut e = Array2::zeros(x.dim());
                e.column_mut(j).fill(h);
                let g = (m.energy((&x + &e).view()) - m.energy((&x - &e).view())) / (2.0 * h);
                for i in 0..5 {
                    close(
                        s[[i, j]],
                        -g[i],
                        FINITE_DIFF_REL,
                        &format!("{what}: s = −∇f"),
                    );
                }
            }
            let naive = m.trace(x.view(), TraceMethod::Naive);
            // Both structured forms (rows of Jₗ where D ≤ H₁, G = W₀ᵀW₀ otherwise) equal the naive.
            let structured = m.trace(x.view(), TraceMethod::Structured);
            for (a, b) in structured.iter().zip(&naive) {
                close(*a, *b, 1e-12, &format!("{what}: structured = naive"));
            }
            check_score_function(&m, naive, &what);
        }
    }
}

/// ∂F/∂θ for every scalar θ of `params` by central differences with the steps f32 can represent:
/// θ ± h rounds to f32, so the realised steps δ₊, δ₋ are used in the unequal-step central formula
/// [δ₋²(F₊ − F₀) + δ₊²(F₀ − F₋)] / (δ₊δ₋(δ₊ + δ₋)), still second order.
fn fd_theta<M: Clone>(
    model: &M,
    params: impl Fn(&mut M) -> &mut Params,
    f: impl Fn(&M) -> f64,
) -> Vec<f64> {
    let h = 1e-3f32;
    let f0 = f(model);
    let mut m = model.clone();
    let mut out = Vec::new();
    let blocks = params(&mut m).len();
    for b in 0..blocks {
        let len = params(&mut m).values()[b].len();
        for i in 0..len {
            let theta = params(&mut m).values()[b][i];
            let (up, down) = (theta + h, theta - h);
            let dp = f64::from(up) - f64::from(theta);
            let dm = f64::from(theta) - f64::from(down);
            params(&mut m).values_mut()[b][i] = up;
            let fp = f(&m);
            params(&mut m).values_mut()[b][i] = down;
            let fm = f(&m);
            params(&mut m).values_mut()[b][i] = theta;
            out.push((dm * dm * (fp - f0) + dp * dp * (f0 - fm)) / (dp * dm * (dp + dm)));
        }
    }
    out
}

fn check_param_gradients<M>(m: &M, params: impl Fn(&mut M) -> &mut Params + Copy, what: &str)
where
    M: ParameterGradient + Clone,
{
    let d = m.dim();
    let x = normal(4, d, 1.0, 21);
    let g = normal(4, d, 1.0, 22);
    let vjp = m.score_vjp(x.view(), g.view());
    let fd = fd_theta(m, params, |m| (m.score(x.view()) * &g).sum());
    assert_eq!(vjp.len(), m.num_params());
    for (a, b) in vjp.iter().zip(&fd) {
        close(
            *a,
            *b,
            1e-6,
            &format!("{what}: ∇θ Σ g·s vs finite differences"),
        );
    }
    let tg = m.trace_gradient(x.view());
    let fd = fd_theta(m, params, |m| m.jacobian_trace(x.view()).sum());
    for (a, b) in tg.iter().zip(&fd) {
        close(
            *a,
            *b,
            1e-6,
            &format!("{what}: ∇θ Σ tr J vs finite differences"),
        );
    }
}

#[test]
fn parameter_gradients_match_finite_differences() {
    for act in ACTS {
        let m = Mlp::new(3, &[5, 4], act, 5).unwrap();
        check_param_gradients(&m, |m: &mut Mlp| m.params_mut(), &format!("mlp {act}"));
        let m = Mlp::new(2, &[4, 3, 5], act, 6).unwrap();
        check_param_gradients(&m, |m: &mut Mlp| m.params_mut(), &format!("mlp-3 {act}"));
        let m = EnergyMlp::new(3, &[4, 5], act, 2.0, 7).unwrap();
        check_param_gradients(
            &m,
            |m: &mut EnergyMlp| m.params_mut(),
            &format!("energy {act}"),
        );
    }
}

#[test]
fn activations_match_their_f64_reference() {
    // φ′ and φ″ of Activation::eval against central differences of φ.
    for act in ACTS {
        for h in [-30.0, -3.0, -0.5, 0.0, 0.7, 4.0, 30.0] {
            let (_, d, dd) = act.eval(h);
            let s = 1e-5;
            let fd1 = (act.eval(h + s).0 - act.eval(h - s).0) / (2.0 * s);
            let fd2 = (act.eval(h + s).1 - act.eval(h - s).1) / (2.0 * s);
            close(d, fd1, 1e-8, &format!("{act}' at {h}"));
            close(dd, fd2, 1e-8, &format!("{act}'' at {h}"));
            let ddd = act.derivatives(h)[3];
            let fd3 = (act.derivatives(h + s)[2] - act.derivatives(h - s)[2]) / (2.0 * s);
            close(ddd, fd3, 1e-8, &format!("{act} third derivative at {h}"));
            // f32 agrees with f64 to f32 rounding.
            let single = act.derivatives(h as f32);
            for (k, (a, b)) in single.iter().zip(act.derivatives(h)).enumerate() {
                close(
                    f64::from(*a),
                    b,
                    1e-6,
                    &format!("{act} derivative {k} in f32 at {h}"),
                );
            }
        }
    }
}

#[test]
fn bad_architectures_are_named_errors() {
    let e = Mlp::new(0, &[4], Activation::Tanh, 0).unwrap_err();
    assert!(e.to_string().contains("dim"), "{e}");
    let e = Mlp::new(2, &[4, 0], Activation::Tanh, 0).unwrap_err();
    assert!(e.to_string().contains("hidden"), "{e}");
    let e = EnergyMlp::new(2, &[], Activation::Tanh, 1.0, 0).unwrap_err();
    assert!(e.to_string().contains("at least one hidden layer"), "{e}");
    let e = EnergyMlp::new(2, &[3], Activation::Tanh, 0.0, 0).unwrap_err();
    assert!(e.to_string().contains("tau"), "{e}");
}

#[test]
fn initialisation_is_seeded_and_documented() {
    let a = Mlp::new(2, &[3], Activation::Tanh, 42).unwrap();
    let b = Mlp::new(2, &[3], Activation::Tanh, 42).unwrap();
    let c = Mlp::new(2, &[3], Activation::Tanh, 43).unwrap();
    assert_eq!(a, b);
    assert_ne!(a, c);
    // U(−1/√fan_in, 1/√fan_in): layer 0 has fan-in 2, layer 1 fan-in 3.
    for (i, block) in a.params().values().iter().enumerate() {
        let bound = if i < 2 {
            1.0 / 2f32.sqrt()
        } else {
            1.0 / 3f32.sqrt()
        };
        assert!(block.iter().all(|w| w.abs() <= bound));
    }
}

/// Every taped path (score, JVP, naive trace, structured trace) of every network: ∇θ by dfdx's
/// backward in f64 against finite differences in θ of the f64 door's values.
mod taped_paths {
    use super::*;
    use dfdx::prelude::*;
    use scorelab_models::{Bound, Outputs, Tangents};

    type X = Tensor<(usize, usize), f64, Cpu>;
    type Tp = OwnedTape<f64, Cpu>;

    #[derive(Clone)]
    enum Net {
        Mlp(Mlp),
        Nc(NoiseConditionalMlp, f64),
        Energy(EnergyMlp),
    }

    impl Net {
        fn params_mut(&mut self) -> &mut Params {
            match self {
                Net::Mlp(m) => m.params_mut(),
                Net::Nc(m, _) => m.params_mut(),
                Net::Energy(m) => m.params_mut(),
            }
        }
        fn params(&self) -> &Params {
            match self {
                Net::Mlp(m) => m.params(),
                Net::Nc(m, _) => m.params(),
                Net::Energy(m) => m.params(),
            }
        }
        fn forward(
            &self,
            p: &Bound<f64>,
            x: Tensor<(usize, usize), f64, Cpu, Tp>,
            t: &Tangents<f64>,
        ) -> Outputs<f64, Tp> {
            match self {
                Net::Mlp(m) => m.forward(p, x, t),
                Net::Nc(m, s) => {
                    let n = x.shape().0;
                    let sig = x.device().tensor_from_vec(vec![*s; n], (n,));
                    m.forward(p, x, &sig, t)
                }
                Net::Energy(m) => m.forward(p, x, t),
            }
        }
        /// The value whose θ-gradient is checked, through the f64 door.
        fn value(&self, x: &Array2<f64>, u: &Array2<f64>, v: &Array2<f64>, mode: usize) -> f64 {
            let at;
            let f: &dyn ScoreFunction = match self {
                Net::Mlp(m) => m,
                Net::Energy(m) => m,
                Net::Nc(m, s) => {
                    at = m.at(*s);
                    &at
                }
            };
            match mode {
                0 => (f.score(x.view()) * u).sum(),
                1 => (f.score_jvp(x.view(), v.view()) * u).sum(),
                _ => f.jacobian_trace(x.view()).sum(),
            }
        }
    }

    fn taped_grad(
        net: &Net,
        x: &Array2<f64>,
        u: &Array2<f64>,
        v: &Array2<f64>,
        mode: usize,
    ) -> Vec<f64> {
        let dev = Cpu::default();
        let p = net.params().bind::<f64>(&dev);
        let (n, d) = x.dim();
        let xt: X = dev.tensor_from_vec(x.iter().copied().collect(), (n, d));
        let ut: X = dev.tensor_from_vec(u.iter().copied().collect(), (n, d));
        let tangents = match mode {
            0 => Tangents::None,
            1 => Tangents::Jvp(dev.tensor_from_vec(v.iter().copied().collect(), (n, 1, d))),
            2 => Tangents::Trace(TraceMethod::Naive),
            _ => Tangents::Trace(TraceMethod::Structured),
        };
        let o = net.forward(&p, xt.put_tape(Tp::default()), &tangents);
        let mut grads = match mode {
            0 => (o.score * ut).sum::<(), _>().backward(),
            1 => {
                let zero = o.score.sum::<(), _>() * 0.0;
                let jv = o.jvp.unwrap().reshape_like(&(n, d));
                ((jv * ut).sum::<(), _>() + zero).backward()
            }
            _ => o.merged_trace_sum().unwrap().backward(),
        };
        p.gradients(&mut grads).concat()
    }

    #[test]
    fn every_taped_path_has_the_finite_difference_gradient() {
        let mut nets = Vec::new();
        for act in ACTS {
            nets.push(Net::Mlp(Mlp::new(3, &[4, 5], act, 1).unwrap()));
            nets.push(Net::Mlp(Mlp::new(3, &[4, 3, 5], act, 2).unwrap()));
            nets.push(Net::Mlp(Mlp::new(4, &[5, 3, 3], act, 3).unwrap()));
            nets.push(Net::Nc(
                NoiseConditionalMlp::new(2, &[4, 3], act, 4).unwrap(),
                0.7,
            ));
            nets.push(Net::Energy(
                EnergyMlp::new(3, &[4, 5], act, 2.0, 5).unwrap(),
            ));
            nets.push(Net::Energy(
                EnergyMlp::new(2, &[3, 4, 3], act, 2.0, 6).unwrap(),
            ));
        }
        for (i, net) in nets.iter().enumerate() {
            let d = net.params().shapes()[0].0;
            let x = normal(3, d, 1.0, 31);
            let u = normal(3, d, 1.0, 32);
            let v = normal(3, d, 1.0, 33);
            for mode in 0..4 {
                let got = taped_grad(net, &x, &u, &v, mode);
                let want = fd_theta(
                    net,
                    |n: &mut Net| n.params_mut(),
                    |n| n.value(&x, &u, &v, mode.min(2)),
                );
                for (j, (a, b)) in got.iter().zip(&want).enumerate() {
                    close(*a, *b, 1e-6, &format!("net {i} mode {mode} θ{j}"));
                }
            }
        }
    }
}
