//! Prompts to sample: a file of `{"prompt": …, …}` records (every other field
//! travels along to the output and the judge), or a run config's data.

use rpo_train::data_source::{RunData, TrainExamples};
use serde_json::{Map, Value};
use std::path::Path;

use crate::error::{OnlineError, Result};

pub use rpo_data::PromptRecord;

/// Every record of `path` (any data file kind: `.jsonl`, `.jsonl.gz`, `.json`,
/// `.parquet`): a JSON object with a non-empty string `prompt`; a malformed one is an
/// error naming the file and line (or row), and so is a file without prompts.
pub fn read_prompts(path: &Path) -> Result<Vec<PromptRecord>> {
    let out = rpo_data::read_prompts(path)?;
    if out.is_empty() {
        return Err(OnlineError::NoPrompts {
            path: path.to_path_buf(),
        });
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_without_prompts_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty.jsonl");
        std::fs::write(&path, "").unwrap();
        let err = read_prompts(&path).unwrap_err();
        assert!(matches!(err, OnlineError::NoPrompts { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            format!("{}: no prompts in the file", path.display())
        );
    }
}
