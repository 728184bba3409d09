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

/// Every float in the metadata comes back with the bits written: the learning rate at every step
/// of a cosine decay from 2e-3 to 2e-5 (without serde_json's exact float parsing, about one in
/// seven came back one ulp off and the checkpoint was refused as damaged), and σ_d values one ulp
/// either side of 1, as a standardised data set gives them.
#[test]
fn every_metadata_float_round_trips_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.safetensors");
    let net = spec(NetworkKind::Mlp, &[3]).build(1).unwrap();
    let (lr0, lr1, steps) = (2e-3_f64, 2e-5_f64, 400u64);
    let mut off = 0;
    for step in 0..=steps {
        let c = 0.5 * (1.0 + (std::f64::consts::PI * step as f64 / steps as f64).cos());
        let lr = lr1 + (lr0 - lr1) * c;
        // The parse the previous metadata reader did, for the record of what this guards.
        let text = serde_json::json!({ "lr": lr }).to_string();
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        off += usize::from(back["lr"].as_f64() != Some(lr));
        let state = TrainingState {
            adam: Adam::new(net.params(), lr).unwrap(),
            ema: None,
            step,
            rng_word_pos: 3 * step as u128,
        };
        let ckpt = Checkpoint {
            raw: net.clone(),
            state,
            notes: String::new(),
        };
        ckpt.save(&path).unwrap();
        let loaded =
            Checkpoint::load(&path).unwrap_or_else(|e| panic!("step {step}, lr {lr:e}: {e}"));
        assert_eq!(
            loaded.state.adam.lr().to_bits(),
            lr.to_bits(),
            "step {step}"
        );
    }
    assert_eq!(off, 0, "serde_json parses {off} learning rates inexactly");
    for sigma_data in [
        1.0000000000000007,
        1.0000000000000009,
        0.9999999999999998,
        f64::from_bits(0x3ff0_0000_0000_0003),
        0.5 + f64::EPSILON,
    ] {
        let mut s = spec(NetworkKind::NoiseConditionalMlp, &[4]);
        s.precondition = Some(scorelab_models::Precondition::Edm { sigma_data });
        let net = s.build(2).unwrap();
        let p = dir.path().join("edm.safetensors");
        net.save(&p).unwrap();
        assert_eq!(Network::load(&p).unwrap().spec(), s, "σ_d {sigma_data:e}");
    }
}
