//! Prompts to sample: a JSONL file of `{"prompt": …, …}` records (every other field
//! travels along to the output and the judge), or a run config's data.

use anyhow::{bail, Context, Result};
use rpo_train::data_source::{RunData, TrainExamples};
use serde_json::{Map, Value};
use std::path::Path;

/// A prompt and the other fields of its record (reference answers, ids, families, …).
#[derive(Debug, Clone)]
pub struct PromptRecord {
    pub prompt: String,
    pub fields: Map<String, Value>,
}

/// Every non-blank line of `path`: a JSON object with a non-empty string `prompt`; a
/// malformed line is an error naming the file and line.
pub fn read_prompts(path: &Path) -> Result<Vec<PromptRecord>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read prompts {}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let at = || format!("{}:{}", path.display(), i + 1);
        let value: Value = serde_json::from_str(line).with_context(|| format!("{}: not JSON", at()))?;
        let Value::Object(mut fields) = value else {
            bail!("{}: expected a JSON object with a string field `prompt`", at());
        };
        let prompt = match fields.remove("prompt") {
            Some(Value::String(p)) if !p.trim().is_empty() => p,
            Some(Value::String(_)) => bail!("{}: field `prompt` is empty", at()),
            Some(other) => bail!("{}: field `prompt` is {other}, not a string", at()),
            None => bail!("{}: no field `prompt`", at()),
        };
        out.push(PromptRecord { prompt, fields });
    }
    if out.is_empty() {
        bail!("{}: no prompts in the file", path.display());
    }
    Ok(out)
}

/// The distinct prompts of a run's data, in order of first appearance, with the preferred
/// response as `reference` (and the synthetic suite's `family`): `train` for on-policy
/// sampling, else the held-out split.
pub fn run_prompts(data: &RunData, train: bool) -> Vec<PromptRecord> {
    let mut items: Vec<(String, String, Option<&'static str>)> = Vec::new();
    if train {
        match &data.train {
            TrainExamples::Paired(p) => {
                items.extend(p.iter().map(|e| (e.prompt.clone(), e.chosen.clone(), None)))
            }
            TrainExamples::Unpaired(u) => items.extend(
                u.iter()
                    .filter(|e| e.desirable)
                    .map(|e| (e.prompt.clone(), e.completion.clone(), None)),
            ),
        }
    } else if !data.judged.is_empty() {
        items.extend(
            data.judged
                .iter()
                .map(|q| (q.prompt.clone(), q.chosen.clone(), Some(q.family.name()))),
        );
    } else {
        items.extend(
            data.eval_pairs
                .iter()
                .map(|p| (p.prompt.clone(), p.chosen.clone(), None)),
        );
    }
    let mut seen = std::collections::HashSet::new();
    items
        .into_iter()
        .filter(|(p, _, _)| seen.insert(p.clone()))
        .map(|(prompt, reference, family)| {
            let mut fields = Map::new();
            fields.insert("reference".into(), Value::String(reference));
            if let Some(f) = family {
                fields.insert("family".into(), Value::String(f.into()));
            }
            PromptRecord { prompt, fields }
        })
        .collect()
}
