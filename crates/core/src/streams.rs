//! Every random stream of the workspace, named in one place.
//!
//! All randomness comes from a `ChaCha8Rng` seeded by a run's seed, split into independent
//! streams by [`rand_chacha::ChaCha8Rng::set_stream`]: [`Stream::rng`] gives stream `s` of seed
//! `seed`. A stream's number is fixed forever (changing it changes every result that used it), and
//! two uses of one seed never share a stream unless the table says so. Streams of different seeds
//! (a train plan's, a sample plan's, an evaluation's) are independent whatever their numbers.
//!
//! | seed | stream | variant | what it draws |
//! | --- | --- | --- | --- |
//! | train plan | 0 | [`Stream::Weights`] | the network's initial weights |
//! | train plan | 1 | [`Stream::Steps`] | minibatches, noise and probes of every training step |
//! | train plan | 2 | [`Stream::Validation`] | the validation points of an analytic density |
//! | train plan | 3 | [`Stream::Evaluation`] | the evaluation points of the loss history (and their noise) |
//! | train plan | 4 | [`Stream::Split`] | the permutation that splits a data file into training and held-out rows |
//! | train plan | 5 | [`Stream::Dequantize`] | dequantisation noise of fixed (not fresh) dequantised data |
//! | toy's seed | 6 | [`Stream::ToyHeldout`] | a 2-D toy's fixed 10 000 held-out points |
//! | train plan | 7 | [`Stream::DataStd`] | the 10 000 draws whose sd is σ_d of an analytic density |
//! | classifier / cost seed | 1 | [`Stream::Steps`] | the digit classifier's minibatches; the cost benchmark's draws |
//! | sample plan | 0 | [`Stream::SampleStart`] | the chains' initial points |
//! | sample plan | 1 | [`Stream::SampleSteps`] | the sampler's noise |
//! | evaluation seed | 0 | [`Stream::MetricReference`] | the reference sample of a metric bundle against a density |
//! | evaluation seed | 1 | [`Stream::MetricMmd`] | MMD²'s permutations |
//! | evaluation seed | 2 | [`Stream::MetricKsd`] | KSD's bootstrap |
//! | evaluation seed | 3 | [`Stream::MetricSlicedW2`] | sliced W₂'s directions |
//! | EM seed | r | [`Stream::EmRestart`] | the starts of the mixture EM's restart r |
//! | seed 0 of a noise study | 0, 1, 2 | [`Stream::NoisePoints`] | its points from p, in the box, and its data points |
//! | density-fit seed | 100 + k | [`Stream::FitDraws`] | method k's samples and MMD permutations |
//! | study seed | 200 | [`Stream::HeldoutDequantize`] | the dequantisation draws of held-out images or rows; the image-fit metrics' draws |
//! | image-fit seed | 201 | [`Stream::UniformImages`] | the uniform-noise images |
//! | image-fit seed | 202 | [`Stream::BaselineImages`] | the baseline samplers' draws: the training images' order, the Gaussian's and the EM mixture's samples, the mixture's dequantisation |
//! | inpainting seed | 300 | [`Stream::Inpaint`] | the inpainting sampler |
//! | toy-zoo seed | 300 + i | [`Stream::ToyMmd`] | toy i's MMD² |
//! | samplers seed | 203 | [`Stream::ExactSamples`] | the exact samples of p whose metrics are every metric's floor |
//! | toy-zoo seed | 500 + i | [`Stream::ToyBaseline`] | toy i's baselines' training points and EM starts |
//! | draws' seed | 0 | [`Stream::Draws`] | a density's or toy's draws asked for with a seed (the Python package's `sample(n, seed=…)`) |
//! | audit seed | 0 | [`Stream::AuditStart`] | a sampler audit's starting points (the prior, or p_T) |
//! | audit seed | 1 | [`Stream::AuditExact`] | a sampler audit's exact draws of the target, the reference of its metrics |
//!
//! ```
//! use rand::Rng;
//! use scorelab_core::streams::Stream;
//! let a: f64 = Stream::SampleStart.rng(7).gen();
//! let b: f64 = Stream::SampleSteps.rng(7).gen();
//! assert_ne!(a, b); // independent streams of one seed
//! assert_eq!(a, Stream::SampleStart.rng(7).gen::<f64>()); // the same stream, the same draws
//! assert_eq!(Stream::ToyMmd(2).id(), 302);
//! ```

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// A named random stream (module docs for the table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Initial weights of a network.
    Weights,
    /// Every training step's draws (also the digit classifier's and the cost benchmark's).
    Steps,
    /// Validation points of an analytic density.
    Validation,
    /// Evaluation points of the loss history.
    Evaluation,
    /// The training / held-out split of a data file.
    Split,
    /// Fixed dequantisation noise.
    Dequantize,
    /// A toy's held-out points.
    ToyHeldout,
    /// The draws that give σ_d of an analytic density.
    DataStd,
    /// The chains' initial points of a sample run.
    SampleStart,
    /// The sampler's noise of a sample run.
    SampleSteps,
    /// A metric bundle's reference sample.
    MetricReference,
    /// MMD²'s permutations in a metric bundle.
    MetricMmd,
    /// KSD's bootstrap in a metric bundle.
    MetricKsd,
    /// Sliced W₂'s directions in a metric bundle.
    MetricSlicedW2,
    /// The starts of an EM restart.
    EmRestart(u64),
    /// A noise study's evaluation points: 0 from p, 1 in the box, 2 the data points.
    NoisePoints(u64),
    /// Method k's draws in a density fit.
    FitDraws(u64),
    /// Dequantisation draws of held-out images or rows (and the image-fit metrics' draws).
    HeldoutDequantize,
    /// The uniform-noise images of an image fit.
    UniformImages,
    /// The baseline samplers of an image fit (training images, Gaussian, EM mixture).
    BaselineImages,
    /// The exact samples of a samplers experiment's target (its metrics' floor).
    ExactSamples,
    /// The inpainting sampler.
    Inpaint,
    /// Toy i's MMD² in the toy zoo.
    ToyMmd(u64),
    /// Toy i's baselines (their training points) in the toy zoo.
    ToyBaseline(u64),
    /// Draws of a density or toy asked for with a seed.
    Draws,
    /// A sampler audit's starting points.
    AuditStart,
    /// A sampler audit's exact draws of the target.
    AuditExact,
}

impl Stream {
    /// The stream's number (module docs).
    pub const fn id(self) -> u64 {
        match self {
            Stream::Weights => 0,
            Stream::Steps => 1,
            Stream::Validation => 2,
            Stream::Evaluation => 3,
            Stream::Split => 4,
            Stream::Dequantize => 5,
            Stream::ToyHeldout => 6,
            Stream::DataStd => 7,
            Stream::SampleStart => 0,
            Stream::SampleSteps => 1,
            Stream::MetricReference => 0,
            Stream::MetricMmd => 1,
            Stream::MetricKsd => 2,
            Stream::MetricSlicedW2 => 3,
            Stream::EmRestart(r) => r,
            Stream::NoisePoints(k) => k,
            Stream::FitDraws(k) => 100 + k,
            Stream::HeldoutDequantize => 200,
            Stream::UniformImages => 201,
            Stream::BaselineImages => 202,
            Stream::ExactSamples => 203,
            Stream::Inpaint => 300,
            Stream::ToyMmd(i) => 300 + i,
            Stream::ToyBaseline(i) => 500 + i,
            Stream::Draws => 0,
            Stream::AuditStart => 0,
            Stream::AuditExact => 1,
        }
    }

    /// This stream of `ChaCha8Rng::seed_from_u64(seed)`.
    pub fn rng(self, seed: u64) -> ChaCha8Rng {
        let mut r = ChaCha8Rng::seed_from_u64(seed);
        r.set_stream(self.id());
        r
    }
}
