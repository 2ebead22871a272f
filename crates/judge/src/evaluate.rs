//! Running a judge over a generations file: `comparisons.jsonl` and `summary.json`.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::error::{JudgeError, Result};
use crate::generations::Generation;
use crate::outcome::{Judgement, Tally};
use crate::Judge;

/// What `summary.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Summary {
    pub judge: String,
    pub settings: Value,
    pub generations: String,
    /// comparisons, wins, losses, ties, unparsable, win_rate, win_rate_ties_half.
    #[serde(flatten)]
    pub total: Tally,
    /// The win rates' definitions, stated where they are read.
    pub definitions: BTreeMap<String, String>,
    /// Synthetic judge: share of candidates (and of references) that are correct.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candidate_accuracy: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_accuracy: Option<f64>,
    /// By the generations' `family` field, where lines have one.
    pub by_family: BTreeMap<String, Tally>,
    /// HTTP requests made (retries included), comparisons answered from the cache, and
    /// the tokens the endpoint reported for this run's requests.
    pub requests: u64,
    pub cache_hits: usize,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

/// One line of `comparisons.jsonl`.
#[derive(Serialize)]
struct Comparison<'a> {
    index: usize,
    line: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    family: Option<&'a str>,
    prompt: &'a str,
    response: &'a str,
    reference: &'a str,
    #[serde(flatten)]
    judgement: &'a Judgement,
}

/// Judges every generation (`judge.concurrency()` at a time), then writes
/// `<out_dir>/comparisons.jsonl` (one line per comparison, in file order) and
/// `<out_dir>/summary.json`. The first failing comparison stops the run with its file
/// and line; an HTTP judge's cache keeps what was answered before.
pub fn evaluate(
    judge: &dyn Judge,
    generations: &[Generation],
    source: &Path,
    out_dir: &Path,
) -> Result<Summary> {
    std::fs::create_dir_all(out_dir).map_err(|e| JudgeError::file("cannot create", out_dir, e))?;
    let n = generations.len();
    let results: Mutex<Vec<Option<Judgement>>> = Mutex::new(vec![None; n]);
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let first_error: Mutex<Option<JudgeError>> = Mutex::new(None);
    let workers = judge.concurrency().clamp(1, n.max(1));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n || failed.load(Ordering::Relaxed) {
                    break;
                }
                let g = &generations[i];
                match judge.compare(i, g).map_err(|e| JudgeError::Judging {
                    path: source.to_path_buf(),
                    line: g.line,
                    source: Box::new(e),
                }) {
                    Ok(j) => {
                        results.lock().unwrap()[i] = Some(j);
                        let d = done.fetch_add(1, Ordering::Relaxed) + 1;
                        if d % (n / 10).max(1) == 0 || d == n {
                            tracing::info!("judged {d} of {n}");
                        }
                    }
                    Err(e) => {
                        failed.store(true, Ordering::Relaxed);
                        first_error.lock().unwrap().get_or_insert(e);
                        break;
                    }
                }
            });
        }
    });
    if let Some(e) = first_error.into_inner().unwrap() {
        return Err(e);
    }
    let judgements: Vec<Judgement> = results
        .into_inner()
        .unwrap()
        .into_iter()
        .map(|j| j.expect("every comparison was judged"))
        .collect();

    let path = out_dir.join("comparisons.jsonl");
    let file = File::create(&path).map_err(|e| JudgeError::file("cannot create", &path, e))?;
    let mut w = BufWriter::new(file);
    for (i, (g, j)) in generations.iter().zip(&judgements).enumerate() {
        let record = Comparison {
            index: i,
            line: g.line,
            family: g.family.as_deref(),
            prompt: &g.prompt,
            response: &g.response,
            reference: &g.reference,
            judgement: j,
        };
        serde_json::to_writer(&mut w, &record)?;
        w.write_all(b"\n")?;
    }
    w.flush()
        .map_err(|e| JudgeError::file("writing", &path, e))?;

    let summary = summarise(judge, generations, &judgements, source);
    let path = out_dir.join("summary.json");
    std::fs::write(&path, serde_json::to_string_pretty(&summary)? + "\n")
        .map_err(|e| JudgeError::file("cannot write", &path, e))?;
    Ok(summary)
}

fn summarise(
    judge: &dyn Judge,
    generations: &[Generation],
    judgements: &[Judgement],
    source: &Path,
) -> Summary {
    let mut by_family: BTreeMap<String, Tally> = BTreeMap::new();
    for (g, j) in generations.iter().zip(judgements) {
        if let Some(f) = &g.family {
            by_family.entry(f.clone()).or_default().add(j.outcome);
        }
    }
    let share = |f: fn(&Judgement) -> Option<bool>| {
        let v: Vec<bool> = judgements.iter().filter_map(f).collect();
        (!v.is_empty()).then(|| v.iter().filter(|&&c| c).count() as f64 / v.len() as f64)
    };
    let definitions = [
        (
            "win_rate",
            "wins / comparisons; ties and unparsable answers are comparisons not won",
        ),
        (
            "win_rate_ties_half",
            "(wins + ties / 2) / comparisons; unparsable answers are not won",
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    Summary {
        judge: judge.name(),
        settings: judge.settings(),
        generations: source.display().to_string(),
        total: Tally::of(judgements.iter().map(|j| j.outcome)),
        definitions,
        candidate_accuracy: share(|j| j.candidate_correct),
        reference_accuracy: share(|j| j.reference_correct),
        by_family,
        requests: judgements.iter().map(|j| u64::from(j.requests)).sum(),
        cache_hits: judgements.iter().filter(|j| j.cached == Some(true)).count(),
        prompt_tokens: judgements.iter().map(|j| j.prompt_tokens).sum(),
        completion_tokens: judgements.iter().map(|j| j.completion_tokens).sum(),
    }
}
