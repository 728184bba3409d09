//! [`Classifier`]: a small MLP classifier, p(y = k | x) = softmax(MLP(x))ₖ, trained by Adam on the
//! cross-entropy −mean log p(yᵢ | xᵢ) on a dfdx tape, whose last hidden layer is a feature map:
//! the feature extractor of a Fréchet distance (FID's construction, Heusel et al. 2017, with this
//! network in place of Inception).
//!
//! Layers hₗ = aₗ₋₁Wₗ₋₁ + bₗ₋₁, aₗ = φ(hₗ) (a₀ = x) for the hidden widths, then the logits
//! a_L W_L + b_L; [`Classifier::features`] is a_L (at most a few dozen columns for the digits).
//! Parameters `layers.l.weight`, `layers.l.bias`, drawn from U(−1/√fan_in, 1/√fan_in) with
//! `ChaCha8Rng::seed_from_u64(seed)`; minibatches from stream 1 of the fit's seed.
//!
//! ```
//! use ndarray::array;
//! use scorelab_models::{Activation, Classifier};
//! // Two classes split by the sign of the first coordinate.
//! let x = array![[-2.0, 0.1], [-1.5, -0.3], [1.8, 0.2], [2.2, -0.1]];
//! let y = [0, 0, 1, 1];
//! let mut c = Classifier::new(2, &[8], 2, Activation::Tanh, 0)?;
//! c.fit(x.view(), &y, 200, 4, 1e-2, 1)?;
//! assert_eq!(c.predict(x.view()), vec![0, 0, 1, 1]);
//! assert_eq!(c.features(x.view()).dim(), (4, 8));
//! # Ok::<(), scorelab_models::ModelError>(())
//! ```

use crate::net::{per_col, tensor2, Activation, Dev, Taped};
use crate::network::{load_blocks, write_blocks, LoadError};
use crate::params::Params;
use crate::{Adam, ModelError};
use dfdx::prelude::*;
use ndarray::{Array2, ArrayView2};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::path::Path;

/// An MLP classifier with a feature layer (module docs).
#[derive(Debug, Clone, PartialEq)]
pub struct Classifier {
    dim: usize,
    hidden: Vec<usize>,
    classes: usize,
    activation: Activation,
    params: Params,
}

impl Classifier {
    /// A randomly initialised classifier of `dim` inputs, the `hidden` widths and `classes`
    /// outputs.
    ///
    /// # Errors
    /// A [`ModelError`] naming `dim`, `hidden` or `classes` for D = 0, no hidden layer, a width of
    /// 0 or fewer than two classes.
    pub fn new(
        dim: usize,
        hidden: &[usize],
        classes: usize,
        activation: Activation,
        seed: u64,
    ) -> Result<Self, ModelError> {
        let invalid = |field: &str, message: &str| ModelError::Invalid {
            field: field.into(),
            message: message.into(),
        };
        if dim == 0 {
            return Err(invalid("dim", "must be at least 1"));
        }
        if hidden.is_empty() || hidden.contains(&0) {
            return Err(invalid(
                "hidden",
                "give at least one hidden layer, each of width ≥ 1",
            ));
        }
        if classes < 2 {
            return Err(invalid("classes", "must be at least 2"));
        }
        let mut sizes = vec![dim];
        sizes.extend_from_slice(hidden);
        sizes.push(classes);
        let mut params = Params::empty();
        params.push_layers(&sizes, 0, &mut ChaCha8Rng::seed_from_u64(seed));
        Ok(Classifier {
            dim,
            hidden: hidden.to_vec(),
            classes,
            activation,
            params,
        })
    }

    /// Writes the classifier to `path` as safetensors (the blocks under their parameter names; the
    /// `scorelab` metadata holds `{"kind": "classifier", "dim", "hidden", "classes",
    /// "activation"}` with sorted keys, so the same classifier writes the same bytes), whole or
    /// not at all.
    ///
    /// # Errors
    /// A [`LoadError::Io`] if the file cannot be written.
    pub fn save(&self, path: &Path) -> Result<(), LoadError> {
        self.save_with_data(path, None)
    }

    /// [`Classifier::save`] with a description of the data it was trained on (the file, its
    /// columns, the split) under the metadata key `"data"`, read back by
    /// [`Classifier::load_with_data`] so that a user of the classifier can check that it matches
    /// the data it is applied to.
    ///
    /// # Errors
    /// A [`LoadError::Io`] if the file cannot be written.
    pub fn save_with_data(
        &self,
        path: &Path,
        data: Option<&serde_json::Value>,
    ) -> Result<(), LoadError> {
        let mut meta = serde_json::json!({
            "kind": "classifier",
            "dim": self.dim,
            "hidden": self.hidden,
            "classes": self.classes,
            "activation": self.activation.name(),
        });
        if let Some(d) = data {
            meta["data"] = d.clone();
        }
        write_blocks(path, meta.to_string(), &[("", &self.params)])
    }

    /// Reads a classifier written by [`Classifier::save`].
    ///
    /// # Errors
    /// A [`LoadError`] naming the file: not a classifier's file (a score network's, say), bad
    /// metadata, a missing, extra, non-finite or wrongly shaped tensor.
    pub fn load(path: &Path) -> Result<Self, LoadError> {
        Self::load_with_data(path).map(|(c, _)| c)
    }

    /// [`Classifier::load`], with the `"data"` metadata of [`Classifier::save_with_data`] (`None`
    /// if the file has none).
    ///
    /// # Errors
    /// As [`Classifier::load`].
    pub fn load_with_data(path: &Path) -> Result<(Self, Option<serde_json::Value>), LoadError> {
        let format = |message: String| LoadError::Format {
            path: path.to_path_buf(),
            message,
        };
        let (meta, mut blocks) = load_blocks(path)?;
        let v: serde_json::Value =
            serde_json::from_str(&meta).map_err(|e| format(format!("bad metadata: {e}")))?;
        if v.get("kind").and_then(|k| k.as_str()) != Some("classifier") {
            return Err(format(
                "not a classifier (its metadata has no kind = \"classifier\"): give a file written by the classifier's training".into(),
            ));
        }
        let num = |k: &str| {
            v.get(k)
                .and_then(|x| x.as_u64())
                .map(|x| x as usize)
                .ok_or_else(|| format(format!("bad metadata: {k}")))
        };
        let hidden: Vec<usize> = v
            .get("hidden")
            .and_then(|h| h.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_u64().map(|x| x as usize))
                    .collect()
            })
            .ok_or_else(|| format("bad metadata: hidden".into()))?;
        let activation: Activation = v
            .get("activation")
            .and_then(|a| a.as_str())
            .ok_or_else(|| format("bad metadata: activation".into()))?
            .parse()
            .map_err(|e: String| format(format!("bad metadata: {e}")))?;
        let (dim, classes) = (num("dim")?, num("classes")?);
        let mut c = Classifier::new(dim, &hidden, classes, activation, 0)
            .map_err(|e| format(format!("bad metadata: {e}")))?;
        let arch = format!("classifier {dim} → {hidden:?} → {classes}");
        let names = c.params.names().to_vec();
        let shapes = c.params.shapes().to_vec();
        for (i, (name, (r, k))) in names.iter().zip(shapes).enumerate() {
            let (shape, data) = blocks
                .remove(name)
                .ok_or_else(|| format(format!("missing tensor {name:?}")))?;
            if shape != [r, k] {
                return Err(LoadError::Shape {
                    path: path.to_path_buf(),
                    tensor: name.clone(),
                    found: shape,
                    expected: vec![r, k],
                    arch,
                });
            }
            if data.iter().any(|x| !x.is_finite()) {
                return Err(format(format!("tensor {name:?} has a non-finite value")));
            }
            c.params.values_mut()[i] = data;
        }
        if let Some(extra) = blocks.keys().min() {
            return Err(format(format!("unexpected tensor {extra:?} for {arch}")));
        }
        Ok((c, v.get("data").cloned()))
    }

    /// The parameters, in order.
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// The input dimension D.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The number of classes.
    pub fn classes(&self) -> usize {
        self.classes
    }

    /// The hidden widths.
    pub fn hidden(&self) -> &[usize] {
        &self.hidden
    }

    /// Layer `l`'s weight and bias as f64 matrices.
    fn layer(&self, l: usize) -> (Array2<f64>, Array2<f64>) {
        let get = |i: usize| {
            let (r, c) = self.params.shapes()[i];
            Array2::from_shape_fn((r, c), |(a, b)| self.params.values()[i][a * c + b] as f64)
        };
        (get(2 * l), get(2 * l + 1))
    }

    /// The last hidden layer's activations a_L of every row, `(n, H_L)`, in f64.
    pub fn features(&self, x: ArrayView2<f64>) -> Array2<f64> {
        let mut a = x.to_owned();
        for l in 0..self.hidden.len() {
            let (w, b) = self.layer(l);
            a = (a.dot(&w) + &b).mapv(|h| self.activation.eval(h).0);
        }
        a
    }

    /// The logits of every row, `(n, classes)`.
    pub fn logits(&self, x: ArrayView2<f64>) -> Array2<f64> {
        let (w, b) = self.layer(self.hidden.len());
        self.features(x).dot(&w) + &b
    }

    /// The most probable class of every row.
    pub fn predict(&self, x: ArrayView2<f64>) -> Vec<usize> {
        self.logits(x)
            .rows()
            .into_iter()
            .map(|r| {
                r.iter()
                    .enumerate()
                    .fold((0, f64::NEG_INFINITY), |best, (k, &v)| {
                        if v > best.1 {
                            (k, v)
                        } else {
                            best
                        }
                    })
                    .0
            })
            .collect()
    }

    /// The fraction of rows whose predicted class is their label.
    pub fn accuracy(&self, x: ArrayView2<f64>, labels: &[usize]) -> f64 {
        let p = self.predict(x);
        p.iter().zip(labels).filter(|(a, b)| a == b).count() as f64 / labels.len().max(1) as f64
    }

    /// The cross-entropy −mean log p(yᵢ | xᵢ) of the rows and its gradient with respect to every
    /// parameter (f32 tape, in parameter order).
    ///
    /// # Panics
    /// If `labels` has not one label per row, a label is not below `classes`, or the rows do not
    /// have D columns.
    pub fn loss_and_gradient(&self, x: ArrayView2<f64>, labels: &[usize]) -> (f64, Vec<Vec<f64>>) {
        let (n, d) = x.dim();
        assert!(
            labels.len() == n && d == self.dim && labels.iter().all(|&y| y < self.classes),
            "one label below `classes` per row of D columns"
        );
        let dev = Dev::default();
        let p = self.params.bind::<f32>(&dev);
        let flat: Vec<f64> = x.iter().copied().collect();
        let mut act = tensor2::<f32>(&dev, &flat, (n, d)).put_tape(Taped::<f32>::default());
        let l = self.hidden.len();
        for i in 0..l {
            let h =
                act.matmul(p.mat::<Taped<f32>>(2 * i)) + per_col(p.vec::<Taped<f32>>(2 * i + 1), n);
            act = self.activation.apply(h, false, true).0;
        }
        let logits =
            act.matmul(p.mat::<Taped<f32>>(2 * l)) + per_col(p.vec::<Taped<f32>>(2 * l + 1), n);
        let mut onehot = vec![0.0; n * self.classes];
        for (i, &y) in labels.iter().enumerate() {
            onehot[i * self.classes + y] = -1.0 / n as f64;
        }
        let target = tensor2::<f32>(&dev, &onehot, (n, self.classes));
        let loss = (logits.log_softmax::<dfdx::shapes::Axis<1>>() * target).sum::<(), _>();
        let value = loss.array() as f64;
        let mut grads = loss.backward();
        (value, p.gradients(&mut grads))
    }

    /// Fits by Adam (learning rate `lr`) on minibatches of `batch` rows drawn without
    /// replacement, epoch by epoch, from stream 1 of `seed`, for `steps` steps; returns the
    /// minibatch loss of every step.
    ///
    /// # Errors
    /// A [`ModelError`] naming `steps`, `batch`, `lr` or `labels` for a bad value, or `training`
    /// if the loss stops being finite.
    pub fn fit(
        &mut self,
        x: ArrayView2<f64>,
        labels: &[usize],
        steps: usize,
        batch: usize,
        lr: f64,
        seed: u64,
    ) -> Result<Vec<f64>, ModelError> {
        let invalid = |field: &str, message: String| ModelError::Invalid {
            field: field.into(),
            message,
        };
        if steps == 0 || batch == 0 {
            return Err(invalid(
                "steps",
                "steps and batch must be at least 1".into(),
            ));
        }
        if labels.len() != x.nrows() || labels.iter().any(|&y| y >= self.classes) {
            return Err(invalid(
                "labels",
                format!("one label in 0..{} per row", self.classes),
            ));
        }
        if x.ncols() != self.dim {
            return Err(invalid(
                "dim",
                format!(
                    "the rows have {} columns, the classifier {}",
                    x.ncols(),
                    self.dim
                ),
            ));
        }
        let mut adam = Adam::new(&self.params, lr)?;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(scorelab_core::streams::Stream::Steps.id());
        let n = x.nrows();
        let mut order: Vec<usize> = (0..n).collect();
        let mut at = n;
        let mut losses = Vec::with_capacity(steps);
        for step in 0..steps {
            let mut idx = Vec::with_capacity(batch.min(n));
            while idx.len() < batch.min(n) {
                if at == n {
                    order.shuffle(&mut rng);
                    at = 0;
                }
                idx.push(order[at]);
                at += 1;
            }
            let xb = x.select(ndarray::Axis(0), &idx);
            let yb: Vec<usize> = idx.iter().map(|&i| labels[i]).collect();
            let (loss, g) = self.loss_and_gradient(xb.view(), &yb);
            if !loss.is_finite() {
                return Err(invalid(
                    "training",
                    format!("the loss is {loss} at step {step}; lower lr"),
                ));
            }
            adam.step(&mut self.params, &g);
            losses.push(loss);
        }
        Ok(losses)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_distr::{Distribution, StandardNormal};

    /// The taped gradient against central finite differences of the f64 loss (computed from the
    /// f64 logits, an independent forward), every parameter of a small network; f32 rounding
    /// bounds the agreement.
    #[test]
    fn the_gradient_matches_finite_differences() {
        let x = ndarray::array![
            [0.3, -0.5, 1.0],
            [-1.2, 0.4, 0.1],
            [0.7, 0.9, -0.6],
            [0.0, 0.2, 0.3]
        ];
        let y = [0, 2, 1, 2];
        let c = Classifier::new(3, &[5, 4], 3, Activation::Silu, 3).unwrap();
        let loss64 = |m: &Classifier| {
            let z = m.logits(x.view());
            let mut total = 0.0;
            for (r, &k) in z.rows().into_iter().zip(&y) {
                let mx = r.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let lse = mx + r.iter().map(|v| (v - mx).exp()).sum::<f64>().ln();
                total += lse - r[k];
            }
            total / 4.0
        };
        let (value, g) = c.loss_and_gradient(x.view(), &y);
        assert!(
            (value - loss64(&c)).abs() < 1e-5,
            "{value} vs {}",
            loss64(&c)
        );
        let h = 1e-2f32;
        for (i, block) in g.iter().enumerate() {
            for (j, &gij) in block.iter().enumerate() {
                let mut plus = c.clone();
                plus.params.values_mut()[i][j] += h;
                let mut minus = c.clone();
                minus.params.values_mut()[i][j] -= h;
                let fd = (loss64(&plus) - loss64(&minus)) / (2.0 * h as f64);
                assert!(
                    (gij - fd).abs() < 2e-4 + 1e-3 * fd.abs(),
                    "block {i} entry {j}: {gij} vs {fd}"
                );
            }
        }
    }

    /// Save and load give the same classifier and the same bytes; a score network's file is
    /// refused by name.
    #[test]
    fn it_saves_and_loads_whole() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (
            dir.path().join("a.safetensors"),
            dir.path().join("b.safetensors"),
        );
        let c = Classifier::new(5, &[7, 3], 4, Activation::Softplus, 9).unwrap();
        c.save(&a).unwrap();
        c.save(&b).unwrap();
        assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
        assert_eq!(Classifier::load(&a).unwrap(), c);
        assert_eq!(Classifier::load_with_data(&a).unwrap().1, None);
        let data = serde_json::json!({"csv": "digits.csv", "rows": 1797});
        c.save_with_data(&a, Some(&data)).unwrap();
        let (back, meta) = Classifier::load_with_data(&a).unwrap();
        assert_eq!((back, meta), (c.clone(), Some(data)));
        let net = crate::NetworkSpec {
            kind: crate::NetworkKind::Mlp,
            dim: 5,
            hidden: vec![7],
            activation: Activation::Tanh,
            tau: None,
            precondition: None,
        }
        .build(0)
        .unwrap();
        net.save(&b).unwrap();
        let e = Classifier::load(&b).unwrap_err().to_string();
        assert!(e.contains("not a classifier"), "{e}");
    }

    /// Three well-separated Gaussian classes in 4-D: the fit's held-out accuracy exceeds 0.97
    /// (the Bayes accuracy is above 0.999 here), the loss falls, and the fit is deterministic.
    #[test]
    fn it_learns_separated_classes_deterministically() {
        let mut rng = ChaCha8Rng::seed_from_u64(8);
        let centres = [
            [3.0, 0.0, 0.0, 0.0],
            [0.0, 3.0, 0.0, 0.0],
            [0.0, 0.0, 3.0, 0.0],
        ];
        let draw = |n: usize, rng: &mut ChaCha8Rng| {
            let mut x = Array2::zeros((n, 4));
            let mut y = vec![];
            for i in 0..n {
                let k = i % 3;
                for j in 0..4 {
                    let z: f64 = StandardNormal.sample(rng);
                    x[[i, j]] = centres[k][j] + 0.6 * z;
                }
                y.push(k);
            }
            (x, y)
        };
        let (xt, yt) = draw(600, &mut rng);
        let (xv, yv) = draw(600, &mut rng);
        let mut a = Classifier::new(4, &[16], 3, Activation::Tanh, 1).unwrap();
        let mut b = a.clone();
        let la = a.fit(xt.view(), &yt, 300, 64, 1e-2, 2).unwrap();
        b.fit(xt.view(), &yt, 300, 64, 1e-2, 2).unwrap();
        assert_eq!(a, b);
        assert!(
            la.last().unwrap() < &(0.2 * la[0]),
            "{} → {}",
            la[0],
            la.last().unwrap()
        );
        let acc = a.accuracy(xv.view(), &yv);
        assert!(acc > 0.97, "{acc}");
        assert!(a.fit(xt.view(), &yt[..10], 1, 8, 1e-2, 0).is_err());
        assert!(Classifier::new(4, &[], 3, Activation::Tanh, 0).is_err());
        assert!(Classifier::new(4, &[8], 1, Activation::Tanh, 0).is_err());
    }
}
