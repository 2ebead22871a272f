//! Saved folders are complete: transformers' tokenizer from `out_dir/model` and from a
//! converted checkpoint gives the ids training used (BOS included), and transformers'
//! greedy generation from the folder (its generation_config.json) answers every
//! held-out prompt of the built-in suite with rpo-shard's tokens.

mod common;

use common::{rpo, stderr, strs, train_args};
use rpo_data::synthetic::{generate, synthetic_tokenizer, Split};
use rpo_data::{trained_tokenizer_files, PreferenceTokenizer, TokenOverrides, Truncation};
use serde_json::{json, Value};

const SEED: u64 = 5;
const HELD_OUT: usize = 48;
const MAX_NEW_TOKENS: usize = 16;

#[test]
fn saved_and_converted_folders_tokenize_and_generate_in_transformers_as_in_training() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let sets = [
        format!("out_dir={}", out.display()),
        format!("seed={SEED}"),
        "train.micro_batch_size=8".into(),
        "train.global_batch_size=8".into(),
        "train.sft_warmup_steps=30".into(),
        "train.steps=1".into(),
        "data.synthetic_train=64".into(),
        format!("data.synthetic_eval={HELD_OUT}"),
        "eval.max_examples=0".into(),
        "embedding.model=bag-of-words".into(),
        "optim.lr=3e-3".into(),
        "optim.eps=1e-3".into(),
        "optim.warmup_steps=0".into(),
        "checkpoint.at_end=true".into(),
    ];
    let args = train_args(sets, &[]);
    let o = rpo(&strs(&args));
    assert!(o.status.success(), "{}", stderr(&o));
    let model = out.join("model");
    let converted = dir.path().join("converted");
    let o = rpo(&[
        "convert",
        "--checkpoint",
        out.join("checkpoints").to_str().unwrap(),
        "--out",
        converted.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    for folder in [&model, &converted] {
        for file in [
            "tokenizer.json",
            "tokenizer_config.json",
            "special_tokens_map.json",
            "generation_config.json",
        ] {
            assert!(
                folder.join(file).exists(),
                "{} lacks {file}",
                folder.display()
            );
        }
    }

    // Training's view: the built-in tokenizer as a run resolves it.
    let tok = PreferenceTokenizer::from_folder_files(
        synthetic_tokenizer().unwrap(),
        &trained_tokenizer_files(),
        &TokenOverrides::default(),
        Truncation::default(),
    )
    .unwrap();
    let questions = generate(Split::Eval, HELD_OUT, SEED);
    let prompts: Vec<Vec<i64>> = questions
        .iter()
        .map(|q| tok.encode_prompt_for_generation(&q.prompt).unwrap())
        .collect();
    let sequences: Vec<Vec<i64>> = questions
        .iter()
        .map(|q| tok.tokenize(&q.prompt, &q.chosen).unwrap().input_ids)
        .collect();
    let bos = tok.special().bos.unwrap();
    assert!(
        prompts.iter().all(|p| p[0] == bos && p[1] != bos),
        "one BOS per prompt"
    );

    // rpo-shard's greedy answers from the saved folder (what `generate` and eval run).
    let (policy, _, _) = rpo_model::load_hf(&model, tch::Device::Cpu).unwrap();
    let ours =
        rpo_model::generate_greedy(&policy, &prompts, MAX_NEW_TOKENS, &tok.special().stop).unwrap();

    let job = json!({
        "folders": [model, converted],
        "prompts": questions.iter().map(|q| q.prompt.clone()).collect::<Vec<_>>(),
        "responses": questions.iter().map(|q| q.chosen.clone()).collect::<Vec<_>>(),
        "generate": model,
        "max_new_tokens": MAX_NEW_TOKENS,
    });
    let job_path = dir.path().join("job.json");
    std::fs::write(&job_path, job.to_string()).unwrap();
    let peer = rpo_peer::run_json("saved_folder_peer.py", &[job_path.to_str().unwrap()]);

    for t in peer["tokenized"].as_array().unwrap() {
        assert_eq!(t["bos_token"], "<s>");
        assert_eq!(t["eos_token"], "</s>");
        assert_eq!(t["pad_token"], "<pad>");
        let their_prompts: Vec<Vec<i64>> = serde_json::from_value(t["prompt_ids"].clone()).unwrap();
        assert_eq!(their_prompts, prompts, "prompt ids");
        let their_sequences: Vec<Vec<i64>> =
            serde_json::from_value(t["sequence_ids"].clone()).unwrap();
        assert_eq!(their_sequences, sequences, "prompt + response ids");
    }
    let theirs: Vec<Vec<i64>> = serde_json::from_value(peer["generated"].clone()).unwrap();
    let differing: Vec<usize> = (0..HELD_OUT).filter(|&i| ours[i] != theirs[i]).collect();
    assert!(
        differing.is_empty(),
        "{} of {HELD_OUT} greedy answers differ, e.g. prompt {:?}: ours {:?}, transformers {:?}",
        differing.len(),
        differing.first().map(|&i| &questions[i].prompt),
        differing.first().map(|&i| &ours[i]),
        differing.first().map(|&i| &theirs[i]),
    );
    // The answers are not all alike (a model that learnt nothing would make this weak).
    let distinct: std::collections::BTreeSet<&Vec<i64>> = ours.iter().collect();
    assert!(distinct.len() > 1, "every answer is the same");
    let _: Value = peer;
}
