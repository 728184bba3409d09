//! Where a sampling run starts: given points (`init = { csv = … }`, `Sampling::with_start`), the
//! snapshot at step 0, and the refusals of bad starts.

use ndarray::array;
use rand::SeedableRng;
use scorelab_pipeline::sample::SamplePlan;
use scorelab_samplers::AnySampler;

const PLAN: &str = r#"
seed = 3
chains = 4
density = { kind = "gaussian_mixture", weights = [0.8, 0.2], means = [[5.0, 5.0], [-5.0, -5.0]], covs = [[[1.0, 0.0], [0.0, 1.0]], [[1.0, 0.0], [0.0, 1.0]]] }
snapshots = [0, 3]
sampler = { kind = "dpmpp_2m", steps = 12 }
"#;

fn plan_with(init: &str) -> SamplePlan {
    toml::from_str(&format!("{PLAN}init = {init}\n")).unwrap()
}

#[test]
fn a_run_starts_from_the_given_points() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("start.csv");
    let x0 = array![[80.0, -3.0], [0.5, 0.25], [-40.0, 12.0], [1e-3, 7.0]];
    std::fs::write(&path, "x0,x1\n80,-3\n0.5,0.25\n-40,12\n0.001,7\n").unwrap();
    let plan = plan_with(&format!("{{ csv = {:?} }}", path.display().to_string()));
    let out = plan.prepare().unwrap().run(&mut ());
    // The snapshot at step 0 is the file's points, bit for bit.
    assert_eq!(out.snapshots[0], (0, x0.clone()));
    assert_eq!(out.snapshots[1].0, 3);
    // The run from them is the sampler's own run from them (a deterministic solver).
    let s: AnySampler = toml::from_str("kind = \"dpmpp_2m\"\nsteps = 12").unwrap();
    let p = scorelab_pipeline::spec::DensitySpec::GaussianMixture {
        weights: vec![0.8, 0.2],
        means: vec![vec![5.0, 5.0], vec![-5.0, -5.0]],
        covs: vec![vec![vec![1.0, 0.0], vec![0.0, 1.0]]; 2],
    }
    .build()
    .unwrap();
    let want = s
        .sample_noised(
            &Exact(p),
            x0.clone(),
            &mut rand_chacha::ChaCha8Rng::seed_from_u64(0),
        )
        .unwrap();
    assert_eq!(out.x, want);
    // The same through the library's form.
    let plain: SamplePlan = toml::from_str(PLAN).unwrap();
    let again = plain
        .prepare()
        .unwrap()
        .with_start(x0)
        .unwrap()
        .run(&mut ());
    assert_eq!(again.x, out.x);
}

/// The density's exact noised score, as the pipeline gives it.
struct Exact(scorelab_densities::AnyDensity);
impl scorelab_core::Dimension for Exact {
    fn dim(&self) -> usize {
        scorelab_core::Dimension::dim(&self.0)
    }
}
impl scorelab_core::NoisedScore for Exact {
    fn noised_score(&self, x: ndarray::ArrayView2<f64>, s: f64) -> ndarray::Array2<f64> {
        self.0.noised_score(x, s).unwrap()
    }
}

#[test]
fn bad_starts_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let short = dir.path().join("short.csv");
    std::fs::write(&short, "x0,x1\n1,2\n").unwrap();
    let wide = dir.path().join("wide.csv");
    std::fs::write(&wide, "x0,x1,x2\n1,2,3\n1,2,3\n1,2,3\n1,2,3\n").unwrap();
    let err = |init: &str| plan_with(init).prepare().unwrap_err().to_string();
    assert!(
        err(&format!("{{ csv = {:?} }}", short.display().to_string())).starts_with("init.csv: ")
    );
    assert!(
        err(&format!("{{ csv = {:?} }}", short.display().to_string()))
            .contains("1 rows but chains = 4")
    );
    assert!(err(&format!("{{ csv = {:?} }}", wide.display().to_string())).contains("init.csv"));
    assert!(err("{ csv = \"absent.csv\" }").contains("init.csv"));
    let parse = |init: &str| {
        toml::from_str::<SamplePlan>(&format!("{PLAN}init = {init}\n"))
            .unwrap_err()
            .to_string()
    };
    assert!(parse("{ kind = \"uniform\", csv = \"a.csv\" }").contains("csv: give either kind"));
    assert!(parse("{ kind = \"uniform\", low = 1.0 }").contains("high: missing"));
    assert!(parse("{ kind = \"prior\", std = 1.0 }").contains("std: not a key"));
    assert!(parse("{ csv = \"a.csv\", shape = 3 }").contains("unknown field `shape`"));
    let plain: SamplePlan = toml::from_str(PLAN).unwrap();
    let e = plain
        .prepare()
        .unwrap()
        .with_start(array![[1.0, 2.0]])
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("init: "), "{e}");
}

/// A guided run with w = 0 is a run on the class's own mixture, bit for bit; bad guidance is
/// refused by name.
#[test]
fn guidance_from_a_plan() {
    let guided: SamplePlan = toml::from_str(&format!(
        "{}guidance = {{ weight = 0.0, class = [1] }}\n",
        PLAN.replace("snapshots = [0, 3]\n", "")
    ))
    .unwrap();
    let own: SamplePlan = toml::from_str(&PLAN.replace("snapshots = [0, 3]\n", "").replace(
        "weights = [0.8, 0.2], means = [[5.0, 5.0], [-5.0, -5.0]], covs = [[[1.0, 0.0], [0.0, 1.0]], [[1.0, 0.0], [0.0, 1.0]]]",
        "weights = [1.0], means = [[-5.0, -5.0]], covs = [[[1.0, 0.0], [0.0, 1.0]]]",
    ))
    .unwrap();
    assert_eq!(
        guided.prepare().unwrap().run(&mut ()).x,
        own.prepare().unwrap().run(&mut ()).x
    );
    let strong: SamplePlan = toml::from_str(&format!(
        "{PLAN}guidance = {{ weight = 3.0, class = [1], interval = [0.5, 10.0] }}\n"
    ))
    .unwrap();
    let s = strong.prepare().unwrap();
    assert_eq!(s.target_label(), "guided(weight=3)");
    assert!(s.run(&mut ()).x.iter().all(|v| v.is_finite()));
    let err = |g: &str| {
        toml::from_str::<SamplePlan>(&format!("{PLAN}guidance = {g}\n"))
            .map_err(|e| e.to_string())
            .and_then(|p| p.prepare().map(|_| ()).map_err(|e| e.to_string()))
            .unwrap_err()
    };
    assert!(err("{ weight = -1.0, class = [1] }").starts_with("guidance.weight"));
    assert!(err("{ weight = 1.0, class = [2] }").starts_with("guidance.class"));
    assert!(err("{ weight = 1.0, class = [1], interval = [3.0, 1.0] }")
        .starts_with("guidance.interval"));
    assert!(err("{ weight = 1.0 }").contains("class"));
    let banana: SamplePlan = toml::from_str(
        "chains = 4\ndensity = { kind = \"standard_normal\", dim = 2 }\nsampler = { kind = \"heun\", steps = 5 }\nguidance = { weight = 1.0, class = [0] }",
    )
    .unwrap();
    assert!(banana
        .prepare()
        .unwrap_err()
        .to_string()
        .starts_with("guidance: needs density"));
}
