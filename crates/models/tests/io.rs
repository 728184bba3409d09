//! Save/load round trips and the errors a user sees for a wrong or broken file.

use scorelab_models::{
    Activation, Adam, Checkpoint, Ema, LoadError, Network, NetworkKind, NetworkSpec, TrainingState,
};

fn spec(kind: NetworkKind, hidden: &[usize]) -> NetworkSpec {
    NetworkSpec {
        kind,
        dim: 3,
        hidden: hidden.to_vec(),
        activation: Activation::Silu,
        tau: (kind == NetworkKind::EnergyMlp).then_some(2.5),
        precondition: None,
    }
}

#[test]
fn every_kind_round_trips_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    for kind in [
        NetworkKind::Mlp,
        NetworkKind::NoiseConditionalMlp,
        NetworkKind::EnergyMlp,
    ] {
        let net = spec(kind, &[5, 4]).build(9).unwrap();
        let path = dir.path().join(format!("{}.safetensors", kind.name()));
        net.save(&path).unwrap();
        assert_eq!(Network::load(&path).unwrap(), net);
        // Same weights, same bytes: the file is deterministic.
        let again = dir.path().join("again.safetensors");
        net.save(&again).unwrap();
        assert_eq!(
            std::fs::read(&path).unwrap(),
            std::fs::read(&again).unwrap()
        );
    }
    // EDM's preconditioning is part of the architecture and survives the round trip.
    let mut pre = spec(NetworkKind::NoiseConditionalMlp, &[5, 4]);
    pre.precondition = Some(scorelab_models::Precondition::Edm { sigma_data: 0.625 });
    let net = pre.build(3).unwrap();
    let path = dir.path().join("pre.safetensors");
    net.save(&path).unwrap();
    let back = Network::load(&path).unwrap();
    assert_eq!(back.spec().precondition, pre.precondition);
    assert_eq!(back, net);
    // Refused on the other kinds and for σ_d ≤ 0, by name.
    let mut bad = spec(NetworkKind::Mlp, &[5]);
    bad.precondition = pre.precondition;
    assert!(bad
        .build(0)
        .unwrap_err()
        .to_string()
        .starts_with("precondition"));
    pre.precondition = Some(scorelab_models::Precondition::Edm { sigma_data: 0.0 });
    assert!(pre
        .build(0)
        .unwrap_err()
        .to_string()
        .starts_with("sigma_data"));
}

#[test]
fn a_wrong_shape_is_rejected_naming_the_tensor_and_both_shapes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    spec(NetworkKind::Mlp, &[5, 4])
        .build(1)
        .unwrap()
        .save(&path)
        .unwrap();
    // Rewrite the metadata to claim another architecture with the same tensor names.
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes
        .windows(5)
        .position(|w| w == b"[5,4]")
        .expect("hidden in the metadata");
    bytes[at + 1] = b'6';
    std::fs::write(&path, &bytes).unwrap();
    let err = Network::load(&path).unwrap_err();
    assert!(matches!(err, LoadError::Shape { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("layers.0.weight") && msg.contains("[3, 5]") && msg.contains("[3, 6]"),
        "{msg}"
    );
}

#[test]
fn broken_files_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.safetensors");
    assert!(matches!(
        Network::load(&missing).unwrap_err(),
        LoadError::Io { .. }
    ));
    let junk = dir.path().join("junk.safetensors");
    std::fs::write(&junk, b"not a model").unwrap();
    let msg = Network::load(&junk).unwrap_err().to_string();
    assert!(msg.contains("not a safetensors file"), "{msg}");
}

#[test]
fn a_checkpoint_round_trips_and_refuses_any_damage() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.safetensors");
    let mut net = spec(NetworkKind::Mlp, &[4]).build(2).unwrap();
    let mut adam = Adam::new(net.params(), 1e-2).unwrap();
    let grads: Vec<Vec<f64>> = net
        .params()
        .values()
        .iter()
        .map(|b| vec![0.5; b.len()])
        .collect();
    adam.step(net.params_mut(), &grads);
    let mut ema = Ema::new(net.params(), 0.9).unwrap();
    ema.update(net.params());
    let state = TrainingState {
        adam,
        ema: Some(ema),
        step: 7,
        rng_word_pos: 1 << 70,
    };
    let ckpt = Checkpoint {
        raw: net,
        state,
        notes: "step,loss\n0,1\n".into(),
    };
    ckpt.save(&path).unwrap();
    assert_eq!(Checkpoint::load(&path).unwrap(), ckpt);
    // Every single-byte change anywhere in the file is refused (the header, the metadata with its
    // step and notes, the tensors): the checksum or the format catches it, and nothing loads.
    let bytes = std::fs::read(&path).unwrap();
    for i in (0..bytes.len()).step_by(7) {
        let mut b = bytes.clone();
        b[i] ^= 0x20;
        std::fs::write(&path, &b).unwrap();
        assert!(
            Checkpoint::load(&path).is_err(),
            "byte {i} changed, still loaded"
        );
    }
    // A truncated file (a torn write) is refused too.
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    assert!(Checkpoint::load(&path).is_err());
}

/// A header that claims an enormous architecture is refused before anything of that size is
/// allocated (it used to abort the process: out of memory).
#[test]
fn metadata_claiming_an_absurd_size_is_refused_not_allocated() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    let data = vec![0u8; 16];
    let view =
        safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![2, 2], &data).unwrap();
    let meta =
        r#"{"format":1,"kind":"mlp","dim":1000000000000,"hidden":[64],"activation":"softplus"}"#;
    let info = Some(std::collections::HashMap::from([(
        "scorelab".to_string(),
        meta.to_string(),
    )]));
    let bytes = safetensors::serialize(vec![("layers.0.weight", view)], &info).unwrap();
    std::fs::write(&path, bytes).unwrap();
    let msg = Network::load(&path).unwrap_err().to_string();
    assert!(msg.contains("claims an architecture"), "{msg}");
    assert!(msg.contains("the file holds 4"), "{msg}");
}
