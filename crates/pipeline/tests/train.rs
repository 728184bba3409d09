//! Training from the library: in memory and in a folder give the same weights; a run stopped by
//! its observer and resumed ends bit for bit where an uninterrupted one does; a model folder reads
//! back to what was saved.

use scorelab_pipeline::files::FolderLock;
use scorelab_pipeline::observe::Control;
use scorelab_pipeline::train::{
    loss_csv, train, train_in, RunFolder, TrainEvent, TrainPlan, TrainedModel,
};

/// CSV data (so the transform is exercised), standardised, 60 steps with an EMA.
fn plan(dir: &std::path::Path) -> TrainPlan {
    let csv = dir.join("data.csv");
    let mut text = String::from("a,b,c\n");
    for i in 0..40 {
        let t = i as f64 / 7.0;
        text.push_str(&format!("{},{},{}\n", t.sin() * 3.0, t.cos() + 10.0, i % 5));
    }
    std::fs::write(&csv, text).unwrap();
    TrainPlan::from_toml(&format!(
        "seed = 4\n[data]\ncsv = {:?}\ncolumns = [\"a\", \"b\"]\n[model]\nkind = \"mlp\"\nhidden = [8]\n\
         [objective]\nkind = \"ssm_vr\"\n[train]\nsteps = 60\nbatch = 16\neval_every = 20\nema = 0.9\n",
        csv.to_str().unwrap()
    ))
    .unwrap()
}

fn prepare(plan: &TrainPlan) -> scorelab_pipeline::train::Prepared {
    plan.prepare_within(scorelab_pipeline::memory::MemoryLimit::bytes(1 << 30))
        .unwrap()
}

#[test]
fn memory_folder_and_resumed_runs_agree_bit_for_bit() {
    let tmp = tempfile::tempdir().unwrap();
    let plan = plan(tmp.path());
    let whole = train(&plan, &mut ()).unwrap();
    assert_eq!(whole.steps(), 60);
    assert_eq!(
        whole.history.iter().map(|r| r.step).collect::<Vec<_>>(),
        [0, 20, 40, 60]
    );

    let dir = tmp.path().join("run");
    let lock = FolderLock::acquire(&dir, "run").unwrap();
    // Stopped after step 30 (between evaluations): saved with an evaluation at step 30.
    let mut stop_at_30 = |e: &TrainEvent| match e {
        TrainEvent::Step { step: 30, .. } => Control::Stop,
        _ => Control::Continue,
    };
    let part = train_in(&lock, prepare(&plan), RunFolder::default(), &mut stop_at_30).unwrap();
    assert_eq!(part.steps(), 30);
    assert_ne!(part.network, whole.network);
    // The stop's own evaluation is in loss.csv until the run is resumed.
    let stopped = std::fs::read_to_string(dir.join("loss.csv")).unwrap();
    assert_eq!(
        stopped.lines().last().unwrap().split(',').next(),
        Some("30")
    );
    let resumed = train_in(
        &lock,
        prepare(&plan),
        RunFolder {
            resume: true,
            ..RunFolder::default()
        },
        &mut (),
    )
    .unwrap();
    assert_eq!(resumed.steps(), 60);
    assert_eq!(resumed.network, whole.network, "resumed weights differ");
    // The folder holds the model and the history, which read back exactly.
    let loaded = TrainedModel::load(&dir).unwrap();
    assert_eq!(loaded.network, whole.network);
    assert_eq!(loaded.transform, whole.transform);
    let steps: Vec<u64> = loaded.history.iter().map(|r| r.step).collect();
    assert_eq!(steps, [0, 20, 40, 60], "the stop's extra row is gone");
    assert_eq!(
        std::fs::read_to_string(dir.join("loss.csv")).unwrap(),
        loss_csv(&whole.history),
        "loss.csv equals the uninterrupted run's, byte for byte"
    );
    let at_40 =
        |h: &[scorelab_objectives::training::EvalRow]| *h.iter().find(|r| r.step == 40).unwrap();
    assert_eq!(
        at_40(&loaded.history).val_loss,
        at_40(&whole.history).val_loss
    );
}

#[test]
fn resuming_refuses_a_changed_model() {
    let tmp = tempfile::tempdir().unwrap();
    let plan = plan(tmp.path());
    let dir = tmp.path().join("run");
    let lock = FolderLock::acquire(&dir, "run").unwrap();
    train_in(&lock, prepare(&plan), RunFolder::default(), &mut ()).unwrap();
    let mut other = plan.clone();
    other.seed = 5;
    let e = train_in(
        &lock,
        prepare(&other),
        RunFolder {
            resume: true,
            ..RunFolder::default()
        },
        &mut (),
    )
    .unwrap_err();
    assert!(e.to_string().contains("only [train] may change"), "{e}");
}

/// `data.dequantize` per column: drawn once at load (the integer column moves by less than q/2,
/// the continuous one stays), or with `dequantize_fresh` not at load but per batch, with the
/// widths carried to model units as q/scale; a width list of the wrong length is refused.
#[test]
fn dequantisation_per_column_once_or_fresh() {
    use scorelab_pipeline::data::Dequantize;
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("ints.csv");
    let mut text = String::from("a,b\n");
    for i in 0..40 {
        text.push_str(&format!("{},{}\n", (i as f64 * 0.37).sin(), i % 9));
    }
    std::fs::write(&csv, text).unwrap();
    let mut data = scorelab_pipeline::train::DataSpec::csv(&csv, None, 0.25);
    data.transform = Some("none".into());
    data.dequantize = Some(Dequantize::Columns(vec![0.0, 1.0]));
    let once = data.clone().prepare_csv(1).unwrap();
    assert!(once.dequantize.is_none());
    let all =
        |x: &ndarray::Array2<f64>| x.rows().into_iter().map(|r| r.to_vec()).collect::<Vec<_>>();
    let rows: Vec<Vec<f64>> = all(&once.train)
        .into_iter()
        .chain(all(&once.test))
        .collect();
    assert!(rows
        .iter()
        .all(|r| (r[1] - r[1].round()).abs() <= 0.5 && r[1].fract() != 0.0));
    // The continuous column is untouched: every value is one of the file's, bit for bit.
    let written: Vec<f64> = (0..40)
        .map(|i| format!("{}", (i as f64 * 0.37).sin()).parse().unwrap())
        .collect();
    assert!(rows.iter().all(|r| written.contains(&r[0])));
    let mut fresh = data.clone();
    fresh.dequantize_fresh = Some(true);
    fresh.transform = None; // standardised: widths q/scale
    let f = fresh.prepare_csv(1).unwrap();
    let q = f.dequantize.clone().unwrap();
    assert_eq!(q[0], 0.0);
    assert!((q[1] - 1.0 / f.transform.scale[1]).abs() < 1e-15);
    // Not drawn at load: the model-unit rows map back to the integers exactly.
    let back = f.transform.inverse(&f.train);
    assert!(back.column(1).iter().all(|v| (v - v.round()).abs() < 1e-9));
    let mut bad = data;
    bad.dequantize = Some(Dequantize::Columns(vec![1.0]));
    let e = bad.prepare_csv(1).unwrap_err().to_string();
    assert!(e.contains("data.dequantize"), "{e}");
}

/// `data.split_seed` fixes the held-out rows across run seeds (the runs still differ in their
/// noise); without it each seed holds out its own rows; a toy source refuses the key.
#[test]
fn split_seed_keeps_one_heldout_set_across_seeds() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("rows.csv");
    let mut text = String::from("a,b\n");
    for i in 0..50 {
        text.push_str(&format!("{i},{}\n", i * i));
    }
    std::fs::write(&csv, text).unwrap();
    let mut data = scorelab_pipeline::train::DataSpec::csv(&csv, None, 0.3);
    data.transform = Some("none".into());
    let heldout = |d: &scorelab_pipeline::train::DataSpec, seed: u64| {
        let mut v: Vec<i64> = d
            .clone()
            .prepare_csv(seed)
            .unwrap()
            .test
            .column(0)
            .iter()
            .map(|&x| x as i64)
            .collect();
        v.sort_unstable();
        v
    };
    assert_ne!(heldout(&data, 1), heldout(&data, 2));
    data.split_seed = Some(9);
    let fixed = heldout(&data, 1);
    assert_eq!(fixed.len(), 15);
    assert_eq!(fixed, heldout(&data, 2));
    // The same rows as the run of seed 9 without a split seed.
    let mut plain = data.clone();
    plain.split_seed = None;
    assert_eq!(fixed, heldout(&plain, 9));
    let toy = scorelab_pipeline::train::DataSpec {
        toy: Some(scorelab_densities::Toy::Moons),
        split_seed: Some(1),
        ..Default::default()
    };
    let plan = scorelab_pipeline::train::TrainPlan::from_toml(&format!(
        "seed = 1\n[data]\n{}\n[model]\nkind = \"mlp\"\nhidden = [8]\n[objective]\nkind = \"dsm\"\nsigma = 0.1\n[train]\nsteps = 1\nbatch = 4\nlr = 1e-3\n",
        toml::to_string(&toy).unwrap()
    ));
    let e = match plan {
        Ok(p) => p
            .prepare_within(scorelab_pipeline::memory::MemoryLimit::bytes(1 << 30))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default(),
        Err(e) => e.to_string(),
    };
    assert!(e.contains("data.split_seed"), "{e}");
}

/// A standardised CSV, a noise-conditional network with EDM preconditioning and the default σ_d
/// (the data's standard deviation after the transform, 1 up to rounding: 1.0000000000000007 here),
/// trained with a cosine learning-rate decay from 2e-3 to 2e-5: every float of the run (the
/// learning rate of every step, σ_d, the σ̃ range) passes through the metadata's JSON.
fn decaying_plan(dir: &std::path::Path) -> TrainPlan {
    decaying_plan_with(dir, 90, 8)
}

fn decaying_plan_with(dir: &std::path::Path, steps: u64, hidden: usize) -> TrainPlan {
    let csv = dir.join("edm.csv");
    let mut text = String::from("a,b\n");
    for i in 0..53 {
        let t = i as f64 * 0.731;
        text.push_str(&format!(
            "{},{}\n",
            t.sin() * 2.3 + 0.1 * t,
            t.cos() * 0.7 - 4.0
        ));
    }
    std::fs::write(&csv, text).unwrap();
    TrainPlan::from_toml(&format!(
        "seed = 11\n[data]\ncsv = {:?}\ntransform = \"standardize\"\n\
         [model]\nkind = \"noise_conditional_mlp\"\nhidden = [{hidden}]\nprecondition = \"edm\"\n\
         [objective]\nkind = \"dsm_continuous\"\nsigma_min = 0.01\nsigma_max = 20.0\n\
         [train]\nsteps = {steps}\nbatch = 8\nlr = 2e-3\nlr_final = 2e-5\neval_every = 7\nema = 0.99\n",
        csv.to_str().unwrap()
    ))
    .unwrap()
}

/// Stopped at random steps (once or twice per run, by a seeded draw) and resumed, a run with a
/// decaying learning rate and a default σ_d always resumes, and ends bit for bit where the
/// uninterrupted run ends, `loss.csv` included.
#[test]
fn stopped_at_random_steps_with_a_decaying_lr_always_resumes_bit_for_bit() {
    use rand::{Rng, SeedableRng};
    let tmp = tempfile::tempdir().unwrap();
    let plan = decaying_plan(tmp.path());
    let whole = train(&plan, &mut ()).unwrap();
    let whole_loss = loss_csv(&whole.history);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(28);
    for case in 0..12 {
        let dir = tmp.path().join(format!("run{case}"));
        let lock = FolderLock::acquire(&dir, "run").unwrap();
        let first: u64 = rng.gen_range(1..89);
        let second: Option<u64> = rng.gen_bool(0.5).then(|| rng.gen_range(first + 1..90));
        let stop_at = |at: u64| {
            move |e: &TrainEvent| match e {
                TrainEvent::Step { step, .. } if *step == at => Control::Stop,
                _ => Control::Continue,
            }
        };
        let resume = RunFolder {
            resume: true,
            ..RunFolder::default()
        };
        let part = train_in(
            &lock,
            prepare(&plan),
            RunFolder::default(),
            &mut stop_at(first),
        )
        .unwrap();
        assert_eq!(part.steps(), first);
        if let Some(s) = second {
            let again = train_in(&lock, prepare(&plan), resume.clone(), &mut stop_at(s))
                .unwrap_or_else(|e| panic!("case {case}: resume at {first} refused: {e}"));
            assert_eq!(again.steps(), s);
        }
        let done = train_in(&lock, prepare(&plan), resume, &mut ()).unwrap_or_else(|e| {
            panic!("case {case}: resume after {first}, {second:?} refused: {e}")
        });
        assert_eq!(
            done.network, whole.network,
            "case {case}: stopped at {first}, {second:?}"
        );
        assert_eq!(
            std::fs::read_to_string(dir.join("loss.csv")).unwrap(),
            whole_loss,
            "case {case}"
        );
    }
}

/// A resume refused because the new `[train]` cannot continue the run (fewer steps than the
/// checkpoint's) leaves every file of the folder as it was.
#[test]
fn a_refused_resume_changes_no_file() {
    let tmp = tempfile::tempdir().unwrap();
    let plan = decaying_plan(tmp.path());
    let dir = tmp.path().join("run");
    let lock = FolderLock::acquire(&dir, "run").unwrap();
    let mut stop = |e: &TrainEvent| match e {
        TrainEvent::Step { step: 50, .. } => Control::Stop,
        _ => Control::Continue,
    };
    train_in(&lock, prepare(&plan), RunFolder::default(), &mut stop).unwrap();
    let snapshot = |d: &std::path::Path| -> Vec<(String, Vec<u8>)> {
        let mut v: Vec<_> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap())
            .filter(|e| e.file_type().unwrap().is_file())
            .map(|e| {
                (
                    e.file_name().to_string_lossy().into_owned(),
                    std::fs::read(e.path()).unwrap(),
                )
            })
            .collect();
        v.sort();
        v
    };
    let before = snapshot(&dir);
    let resume = RunFolder {
        resume: true,
        ..RunFolder::default()
    };
    // Fewer steps than the checkpoint's.
    let fewer = decaying_plan_with(tmp.path(), 40, 8);
    let e = train_in(&lock, prepare(&fewer), resume.clone(), &mut ()).unwrap_err();
    assert!(e.to_string().contains("train.steps"), "{e}");
    assert_eq!(
        snapshot(&dir),
        before,
        "the refused resume changed the folder"
    );
    // Another architecture.
    let wider = decaying_plan_with(tmp.path(), 90, 9);
    let e = train_in(&lock, prepare(&wider), resume, &mut ()).unwrap_err();
    assert!(e.to_string().contains("--resume"), "{e}");
    assert_eq!(
        snapshot(&dir),
        before,
        "the refused resume changed the folder"
    );
}
