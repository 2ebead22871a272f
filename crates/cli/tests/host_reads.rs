//! A device-friendly step: at most one device-to-host read per optimizer step (its
//! metrics and gradient norm), none per micro-batch.
//!
//! Every read of the training step goes through `rpo_comm::host`, which counts it; the
//! trainer takes a snapshot of the counter when a step starts and writes the reads made
//! until its metrics line (`host_reads`), so evaluation, checkpoints and the final save
//! are outside the window. On the CPU a read costs nothing, but it is counted all the
//! same: what is counted here is what would stall a GPU.

mod common;

use common::*;

/// `train` with 4 micro-batches per optimizer step (2 examples each, global batch 8).
fn host_reads(ranks: usize, extra: &[&str]) -> Vec<u64> {
    let dir = tempfile::tempdir().unwrap();
    let micro = 2;
    let accumulation = 4 / ranks;
    let mut sets = three_step_sets(dir.path(), micro, micro * ranks * accumulation);
    sets.extend([
        "optim.max_grad_norm=0.5".into(), // clipping on
        "checkpoint.every=1".into(),      // checkpoints outside the window
    ]);
    let args = train_args(sets, extra);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = if ranks == 1 {
        rpo(&args)
    } else {
        mpirun(ranks, &args)
    };
    assert!(o.status.success(), "{extra:?}: {}", stderr(&o));
    metrics(dir.path())
        .iter()
        .map(|m| {
            m["host_reads"]
                .as_u64()
                .unwrap_or_else(|| panic!("no host_reads in {m}"))
        })
        .collect()
}

#[test]
fn a_training_step_reads_the_device_once() {
    let cases: &[(usize, &[&str])] = &[
        (1, &["zero.stage=0"]),
        (1, &["zero.stage=3"]),
        (1, &["loss.pairing=unpaired", "zero.stage=3"]),
        (1, &["loss.name=dpo", "zero.stage=0"]),
        (1, &["loss.name=dpo", "zero.stage=3", "train.pack=false"]),
        (1, &["loss.name=kto", "zero.stage=0"]),
        (
            1,
            &["loss.name=kto", "zero.stage=3", "reference.mode=sharded"],
        ),
        (1, &["loss.name=sft", "zero.stage=0"]),
        (1, &["loss.name=sft", "zero.stage=3"]),
        (1, &["train.sft_warmup_steps=2", "zero.stage=3"]),
        // Two ranks: the step's figures, the stop flag and the KL estimate are summed on
        // the device, block sizes come from the host.
        (2, &["loss.pairing=unpaired", "zero.stage=3"]),
        (2, &["loss.name=kto", "zero.stage=1"]),
    ];
    for &(ranks, extra) in cases {
        let reads = host_reads(ranks, extra);
        eprintln!("{ranks} rank(s) {extra:?}: reads per step {reads:?}");
        assert!(!reads.is_empty(), "{extra:?}: no steps");
        assert!(
            reads.iter().all(|&r| r <= 1),
            "{ranks} rank(s) {extra:?}: {reads:?} device-to-host reads per step (at most 1)"
        );
    }
}
