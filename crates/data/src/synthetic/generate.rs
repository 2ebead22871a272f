//! Drawing examples from the suite, and writing them as paired JSONL.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use crate::error::{DataError, Result};
use serde::{Deserialize, Serialize};

use super::chat::{chat_prompt, chat_response};
use super::family::Family;
use super::judge::judge;
use super::questions::{questions, Question, Split};
use crate::example::PairedExample;
use crate::stable_rng::{domain, shuffle, stable_rng};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyntheticExample {
    pub family: Family,
    pub prompt: String,
    pub chosen: String,
    pub rejected: String,
}

impl SyntheticExample {
    pub fn to_paired(&self) -> PairedExample {
        PairedExample {
            prompt: self.prompt.clone(),
            chosen: self.chosen.clone(),
            rejected: self.rejected.clone(),
        }
    }

    /// Whether `response` answers this example's prompt correctly.
    pub fn judge(&self, response: &str) -> bool {
        judge(&self.prompt, response).expect("generated prompts belong to the suite")
    }
}

/// `n` examples of one split, families in turn (so each has n/6 of them, ±1). Within a
/// family the split's questions are drawn in a shuffled order without repetition until
/// all were used, then reshuffled. Same (split, n, seed), same examples.
pub fn generate(split: Split, n: usize, seed: u64) -> Vec<SyntheticExample> {
    let split_stream = match split {
        Split::Train => 0,
        Split::Eval => 1,
    };
    let mut rng = stable_rng(seed, domain::SYNTHETIC | split_stream);
    let pools: Vec<Vec<Question>> = Family::ALL.iter().map(|&f| questions(f, split)).collect();
    let mut orders: Vec<Vec<usize>> = vec![Vec::new(); pools.len()];
    (0..n)
        .map(|k| {
            let f = k % pools.len();
            if orders[f].is_empty() {
                orders[f] = (0..pools[f].len()).collect();
                shuffle(&mut orders[f], &mut rng);
            }
            let question = &pools[f][orders[f].pop().expect("non-empty pool")];
            let task = question.family.task();
            let answer = task
                .answer(&question.subject)
                .expect("subjects have answers");
            SyntheticExample {
                family: question.family,
                prompt: chat_prompt(&question.text()),
                chosen: chat_response(&answer),
                rejected: chat_response(&task.wrong_answer(&question.subject, &mut rng)),
            }
        })
        .collect()
}

fn write_split(path: &Path, examples: &[SyntheticExample]) -> Result<()> {
    let file = File::create(path).map_err(|e| DataError::file("cannot create", path, e))?;
    let mut out = BufWriter::new(file);
    for example in examples {
        serde_json::to_writer(&mut out, example)?;
        out.write_all(b"\n")?;
    }
    out.flush().map_err(|e| DataError::file("writing", path, e))
}

/// Writes `train.jsonl` and `eval.jsonl` (paired format plus a `family` field) into `dir`.
pub fn write_jsonl(dir: impl AsRef<Path>, n_train: usize, n_eval: usize, seed: u64) -> Result<()> {
    let dir = dir.as_ref();
    std::fs::create_dir_all(dir).map_err(|e| DataError::file("cannot create", dir, e))?;
    write_split(
        &dir.join("train.jsonl"),
        &generate(Split::Train, n_train, seed),
    )?;
    write_split(
        &dir.join("eval.jsonl"),
        &generate(Split::Eval, n_eval, seed),
    )
}
