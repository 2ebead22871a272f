//! The refusals a caller acts on come back as their own `TrainError` kinds, with the
//! messages the binary prints.

use rpo_train::config::{TrainConfig, EMBEDDED_DEFAULT};
use rpo_train::data_source::RunData;
use rpo_train::error::chain;
use rpo_train::objective::Objective;
use rpo_train::{out_dir, trainer, TrainError};

fn config(overrides: &[String]) -> TrainConfig {
    TrainConfig::from_toml(EMBEDDED_DEFAULT, overrides).unwrap()
}

#[test]
fn an_out_dir_of_another_run_is_refused_by_kind() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&[format!("out_dir={}", dir.path().display())]);
    let metrics = dir.path().join("metrics.jsonl");
    std::fs::write(&metrics, "{\"step\": 1}\n").unwrap();
    match out_dir::claim(&cfg, false, false) {
        Err(TrainError::OutDirTaken { dir: d, found }) => {
            assert_eq!(d, dir.path());
            assert_eq!(found, [metrics.clone()]);
        }
        other => panic!("{:?}", other.err()),
    }
    // Resuming continues it; while that run holds the lock, no other may start.
    let _held = out_dir::claim(&cfg, true, false).unwrap();
    let e = out_dir::claim(&cfg, true, false).err().unwrap();
    assert!(matches!(e, TrainError::OutDirInUse { .. }), "{e:?}");
    assert!(
        chain(&e).contains("is in use by another run"),
        "{}",
        chain(&e)
    );
}

#[test]
fn data_that_does_not_fill_a_batch_is_its_own_kind() {
    let cfg = config(&["data.synthetic_train=3".into()]);
    let data = RunData::load(&cfg).unwrap();
    let objective = Objective::from_config(&cfg.loss).unwrap();
    let e = trainer::check_batches(objective, &data, 8, 0).unwrap_err();
    assert!(matches!(e, TrainError::TooFewExamples(_)), "{e:?}");
    assert!(
        chain(&e).contains("do not fill one batch of 8"),
        "{}",
        chain(&e)
    );
}
