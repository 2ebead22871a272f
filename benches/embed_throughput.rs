//! Sentence-encoder throughput: every distinct `"prompt"` of a JSONL file (first
//! occurrences, as `rpo-shard embed` takes them) embedded by rpo-embed's all-MiniLM-L6-v2,
//! batched, fp32 on CPU. Prints one JSON line. benches/embed_throughput.sh runs it next to
//! `rpo-shard embed` and sentence-transformers on the same prompts and thread count.
//!
//!   <bench binary> --jsonl prompts.jsonl [--batch 64] [--threads 2]

use anyhow::{Context, Result};
use rpo_embed::SentenceEncoder;
use std::time::Instant;
use tch::Device;

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    let i = args.iter().position(|a| a == name)?;
    args.get(i + 1).cloned()
}

fn main() -> Result<()> {
    let path = arg("--jsonl").context("--jsonl FILE")?;
    let batch: usize = arg("--batch").map_or(Ok(64), |b| b.parse())?;
    let threads: i32 = arg("--threads").map_or(Ok(2), |t| t.parse())?;
    tch::set_num_threads(threads);
    let mut seen = std::collections::HashSet::new();
    let prompts: Vec<String> = std::fs::read_to_string(&path)?
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l)?;
            Ok(v["prompt"]
                .as_str()
                .context("a line without \"prompt\"")?
                .to_string())
        })
        .collect::<Result<Vec<String>>>()?
        .into_iter()
        .filter(|p| seen.insert(p.clone()))
        .collect();
    let texts: Vec<&str> = prompts.iter().map(String::as_str).collect();
    let encoder = SentenceEncoder::load_default(Device::Cpu)?;
    let tokens: usize = encoder.tokenize(&texts)?.iter().map(Vec::len).sum();
    let started = Instant::now();
    let emb = tch::no_grad(|| encoder.encode(&texts, batch))?;
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({
            "impl": "rpo-embed", "sentences": texts.len(), "mean_tokens": tokens as f64 / texts.len() as f64,
            "batch": batch, "threads": threads, "seconds": seconds,
            "sentences_per_s": texts.len() as f64 / seconds, "dim": emb.size()[1],
        })
    );
    Ok(())
}
