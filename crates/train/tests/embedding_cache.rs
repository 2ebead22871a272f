//! The `rpo-shard embed` cache as training meets it: the rows training reads equal those it
//! would embed on the fly, and a cache made for another model, text mode or data is
//! refused before training, naming what differs and how to remake it.
//!
//! Bag-of-words embeddings keep these fast and exact; tests/cli.rs runs the same path
//! with the MiniLM encoder end to end.

use rpo_data::{PairedBatch, PairedExample, UnpairedBatch, UnpairedExample};
use rpo_train::config::{TrainConfig, EMBEDDED_DEFAULT};
use rpo_train::data_source::{RunData, TrainExamples};
use rpo_train::error::chain;
use rpo_train::precompute::{precompute, CacheDtype};
use rpo_train::prompt_embedding::{
    self, paired_embeddings, run_texts, unpaired_embeddings, PromptEmbedder, TextMode,
};
use rpo_train::TrainError;
use std::path::Path;
use tch::{Device, Tensor};

fn config(extra: &[&str]) -> TrainConfig {
    let o: Vec<String> = [
        "embedding.model=bag-of-words",
        "data.synthetic_train=48",
        "data.synthetic_eval=8",
    ]
    .iter()
    .chain(extra)
    .map(|s| s.to_string())
    .collect();
    TrainConfig::from_toml(EMBEDDED_DEFAULT, &o).unwrap()
}

/// `cfg` reading the cache at `path`.
fn with_cache(cfg: &TrainConfig, path: &Path) -> TrainConfig {
    let mut cfg = cfg.clone();
    cfg.embedding.cache = Some(path.to_path_buf());
    cfg
}

fn embedder(cfg: &TrainConfig, data: &RunData) -> rpo_train::Result<Box<dyn PromptEmbedder>> {
    prompt_embedding::build(&cfg.embedding, data, Device::Cpu)
}

/// The error refusing `cfg`'s cache, and its message as the binary prints it.
fn refusal(cfg: &TrainConfig) -> (TrainError, String) {
    let data = RunData::load(cfg).unwrap();
    match embedder(cfg, &data) {
        Ok(_) => panic!("the cache {:?} was accepted", cfg.embedding.cache),
        Err(e) => {
            let text = chain(&e);
            (e, text)
        }
    }
}

fn pairs(data: &RunData, n: usize) -> Vec<&PairedExample> {
    match &data.train {
        TrainExamples::Paired(p) => p.iter().take(n).collect(),
        TrainExamples::Unpaired(_) => panic!("paired data expected"),
    }
}

fn unpaired(data: &RunData, n: usize) -> Vec<&UnpairedExample> {
    match &data.train {
        TrainExamples::Unpaired(u) => u.iter().take(n).collect(),
        TrainExamples::Paired(_) => panic!("unpaired data expected"),
    }
}

fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a - b).abs().max().double_value(&[])
}

#[test]
fn cached_rows_are_the_rows_embedded_on_the_fly() {
    let dir = tempfile::tempdir().unwrap();
    for (text, pairing) in [
        ("prompt", "paired"),
        ("prompt+response", "paired"),
        ("prompt", "unpaired"),
        ("prompt+response", "unpaired"),
    ] {
        let cfg = config(&[
            &format!("embedding.text={text}"),
            &format!("loss.pairing={pairing}"),
        ]);
        let data = RunData::load(&cfg).unwrap();
        let fly = embedder(&cfg, &data).unwrap();
        for dtype in [CacheDtype::F32, CacheDtype::Bf16] {
            let path = dir.path().join(format!("{text}-{pairing}-{dtype}.bin"));
            let report = precompute(&cfg, &path, dtype).unwrap();
            assert_eq!(
                report.texts,
                run_texts(&data, fly.text_mode()).unwrap().len()
            );
            let cached = embedder(&with_cache(&cfg, &path), &data).unwrap();
            assert_eq!(cached.text_mode(), fly.text_mode());
            // bf16 keeps 8 significant bits.
            let tol = if dtype == CacheDtype::F32 { 0.0 } else { 4e-3 };
            let (a, b) = if pairing == "paired" {
                let batch = PairedBatch::from_examples(&pairs(&data, 8), &data.tokenizer).unwrap();
                let (w1, l1) = paired_embeddings(fly.as_ref(), &batch).unwrap();
                let (w2, l2) = paired_embeddings(cached.as_ref(), &batch).unwrap();
                (Tensor::cat(&[w1, l1], 0), Tensor::cat(&[w2, l2], 0))
            } else {
                let batch =
                    UnpairedBatch::with_rotated_kl(&unpaired(&data, 8), &data.tokenizer).unwrap();
                (
                    unpaired_embeddings(fly.as_ref(), &batch).unwrap(),
                    unpaired_embeddings(cached.as_ref(), &batch).unwrap(),
                )
            };
            let d = max_diff(&a, &b);
            assert!(
                d <= tol,
                "{text} {pairing} {dtype}: cached rows differ by {d}"
            );
        }
    }
}

#[test]
fn prompt_response_embeds_each_response_on_its_own() {
    let cfg = config(&["embedding.text=prompt+response"]);
    let data = RunData::load(&cfg).unwrap();
    let e = embedder(&cfg, &data).unwrap();
    assert_eq!(e.text_mode(), TextMode::PromptResponse);
    let examples = pairs(&data, 4);
    let batch = PairedBatch::from_examples(&examples, &data.tokenizer).unwrap();
    let (win, lose) = paired_embeddings(e.as_ref(), &batch).unwrap();
    assert!(
        max_diff(&win, &lose) > 0.0,
        "chosen and rejected share an embedding"
    );
    let texts = run_texts(&data, TextMode::PromptResponse).unwrap();
    let ex = examples[0];
    for response in [&ex.chosen, &ex.rejected] {
        let joined = format!("{}{response}", ex.prompt);
        assert!(
            texts.contains(&joined),
            "{joined:?} is not among the run's texts"
        );
    }
    // In prompt mode both sides are the prompt, and each prompt is one text.
    let prompts = run_texts(&data, TextMode::Prompt).unwrap();
    assert!(prompts.contains(&ex.prompt));
    assert!(prompts.len() < texts.len());
    let p = embedder(&config(&[]), &data).unwrap();
    let (win, lose) = paired_embeddings(p.as_ref(), &batch).unwrap();
    assert!(win.equal(&lose));

    // Unpaired: each example is its prompt joined with its own completion.
    let cfg = config(&["embedding.text=prompt+response", "loss.pairing=unpaired"]);
    let data = RunData::load(&cfg).unwrap();
    let examples = unpaired(&data, 4);
    let texts = run_texts(&data, TextMode::PromptResponse).unwrap();
    for ex in &examples {
        assert!(texts.contains(&format!("{}{}", ex.prompt, ex.completion)));
    }
}

#[test]
fn stale_or_missing_caches_are_refused_naming_what_differs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("e.bin");
    let cfg = config(&[]);
    precompute(&cfg, &path, CacheDtype::F32).unwrap();
    let cached = with_cache(&cfg, &path);
    let data = RunData::load(&cached).unwrap();
    embedder(&cached, &data).unwrap();

    let how = "rpo-shard embed --config";
    let cases: [(&[&str], &[&str]); 4] = [
        (&["data.synthetic_train=40"], &["texts fingerprint"]),
        (&["data.synthetic_eval=9"], &["texts fingerprint"]),
        (
            &["embedding.text=prompt+response"],
            &["text mode", "prompt+response"],
        ),
        (&["embedding.dim=128"], &["model fingerprint", "dim128"]),
    ];
    for (change, needles) in cases {
        let (err, e) = refusal(&with_cache(&config(change), &path));
        assert!(matches!(err, TrainError::StaleEmbeddingCache { .. }), "{e}");
        assert!(
            e.contains("e.bin") && e.contains("stale") && e.contains(how),
            "{change:?}: {e}"
        );
        for n in needles {
            assert!(e.contains(n), "{change:?}: {n:?} not in {e}");
        }
    }
    // Two differences are both named.
    let (_, e) = refusal(&with_cache(
        &config(&["embedding.text=prompt+response", "data.synthetic_train=40"]),
        &path,
    ));
    assert!(
        e.contains("text mode") && e.contains("texts fingerprint"),
        "{e}"
    );

    let (err, e) = refusal(&with_cache(&cfg, &dir.path().join("absent.bin")));
    assert!(
        matches!(err, TrainError::MissingEmbeddingCache { .. }),
        "{e}"
    );
    assert!(
        e.contains("absent.bin") && e.contains("does not exist") && e.contains(how),
        "{e}"
    );

    let bytes = std::fs::read(&path).unwrap();
    let cut = dir.path().join("cut.bin");
    std::fs::write(&cut, &bytes[..bytes.len() - 100]).unwrap();
    let (err, e) = refusal(&with_cache(&cfg, &cut));
    assert!(
        matches!(
            err,
            TrainError::EmbeddingCache {
                error: rpo_storage::framed::CacheError::Corrupt { .. }
            }
        ),
        "{e}"
    );
    assert!(
        e.contains("cut.bin") && e.contains("truncated") && e.contains(how),
        "{e}"
    );
}

#[test]
fn the_run_embeds_every_text_before_the_first_step_with_the_models_values() {
    let cfg = config(&["embedding.model=bag-of-words"]);
    let data = RunData::load(&cfg).unwrap();
    let world = rpo_comm::SingleProcess::new(Device::Cpu);
    let pre = prompt_embedding::build_for_run(&cfg.embedding, &data, Device::Cpu, &world).unwrap();
    let direct = embedder(&cfg, &data).unwrap();
    let texts = prompt_embedding::run_texts(&data, prompt_embedding::TextMode::Prompt).unwrap();
    let some: Vec<String> = texts.iter().rev().take(7).cloned().collect();
    let (a, b) = (pre.embed(&some).unwrap(), direct.embed(&some).unwrap());
    assert_eq!(a.size(), b.size());
    assert!(a.equal(&b), "pre-embedded rows differ from the model's");
}
