//! Evaluation under ZeRO-3 on several ranks decodes the judged answers data-parallel, one
//! unit gathered at a time (rpo_zero::ShardedDecoder): the answers and the judge accuracy
//! are those of one process holding the whole model.

mod common;
use common::*;
use std::path::Path;

fn args(out: &Path, stage: &str) -> Vec<String> {
    let sets = [
        "model.preset=tiny".to_string(),
        format!("out_dir={}", out.display()),
        "loss.name=sft".into(),
        format!("zero.stage={stage}"),
        "train.steps=3".into(),
        "train.sft_warmup_steps=0".into(),
        "train.global_batch_size=4".into(),
        "train.micro_batch_size=2".into(),
        "optim.lr=1e-2".into(),
        "eval.max_examples=13".into(),
        "eval.max_new_tokens=8".into(),
        "embedding.model=bag-of-words".into(),
        "checkpoint.at_end=false".into(),
    ];
    train_args(sets, &[])
}

#[test]
fn stage_3_evaluation_on_two_ranks_answers_as_one_process() {
    let dir = tempfile::tempdir().unwrap();
    let (one, two) = (dir.path().join("one"), dir.path().join("two"));
    let a = args(&one, "0");
    let o = rpo(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(o.status.success(), "{}", stderr(&o));
    // 13 questions over 2 ranks: shares of 7 and 6, so one rank idles through the last
    // forwards of the other.
    let a = args(&two, "3");
    let o = mpirun(2, &a.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(o.status.success(), "{}", stderr(&o));
    for at in ["init", "final"] {
        let read = |d: &Path| std::fs::read_to_string(d.join(format!("eval_{at}.jsonl"))).unwrap();
        let (x, y) = (read(&one), read(&two));
        assert_eq!(x.lines().count(), 13);
        // The same answers after 3 steps of training on 2 ranks (sums in another order
        // could flip a greedy tie; on this model and data they do not).
        assert_eq!(x, y, "eval_{at}.jsonl");
    }
    let (e1, e2) = (summary_evals(&one), summary_evals(&two));
    assert_eq!(e1.len(), e2.len());
    for (x, y) in e1.iter().zip(&e2) {
        assert_eq!(x["judge_accuracy"], y["judge_accuracy"]);
        assert_eq!(x["judged"], 13);
    }
}
