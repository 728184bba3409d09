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
    plan.prepare(scorelab_pipeline::memory::MemoryLimit::default())
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
