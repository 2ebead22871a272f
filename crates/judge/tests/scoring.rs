//! Scorers and preference data (issue 18), on hand-made samples whose right answers are
//! written out here.

use rpo_data::DataError;
use rpo_judge::scoring::{CommandScorer, MatchMode, MatchScorer, SyntheticScorer};
use rpo_judge::{
    build_preferences, JudgeError, PairingRule, PreferenceRow, Sample, ScoredSample, Scorer,
};
use serde_json::{json, Map, Value};
use std::time::Duration;

fn sample(prompt: &str, response: &str, fields: Value) -> Sample {
    let Value::Object(fields) = fields else {
        panic!()
    };
    Sample {
        prompt: prompt.into(),
        response: response.into(),
        fields,
    }
}

use rpo_peer::error_chain as chain;

fn labels(scores: &[rpo_judge::Score]) -> Vec<bool> {
    scores.iter().map(|s| s.label).collect()
}

#[test]
fn match_scorer_exact_normalised_and_regex() {
    let samples = vec![
        sample("q1", " 42 ", json!({"answer": "42"})),
        sample(
            "q2",
            "The Answer is 42.",
            json!({"answer": "the answer is 42"}),
        ),
        sample("q3", "so x = 17, done", json!({"answer": r"x\s*=\s*17\b"})),
        sample("q4", "x = 170", json!({"answer": r"x\s*=\s*17\b"})),
    ];
    let exact = MatchScorer {
        field: "answer".into(),
        mode: MatchMode::Exact,
    };
    assert_eq!(labels(&exact.score(&samples[..2]).unwrap()), [true, false]);
    let norm = MatchScorer {
        field: "answer".into(),
        mode: MatchMode::Normalized,
    };
    assert_eq!(labels(&norm.score(&samples[..2]).unwrap()), [true, true]);
    let re = MatchScorer {
        field: "answer".into(),
        mode: MatchMode::Regex,
    };
    let scores = re.score(&samples[2..]).unwrap();
    assert_eq!(labels(&scores), [true, false]);
    assert_eq!(scores[0].score, 1.0);
    assert_eq!(scores[1].score, 0.0);
}

#[test]
fn match_scorer_names_a_missing_field_and_a_bad_regex() {
    let s = vec![sample("q", "a", json!({"other": "x"}))];
    let e = MatchScorer {
        field: "answer".into(),
        mode: MatchMode::Exact,
    }
    .score(&s)
    .unwrap_err();
    match &e {
        JudgeError::Sample { context, source } => {
            assert!(context.starts_with("sample 0 (prompt \"q\")"), "{context}");
            assert!(matches!(**source, JudgeError::Field(_)), "{source:?}");
        }
        other => panic!("expected JudgeError::Sample, got {other:?}"),
    }
    assert!(chain(&e).contains("no field `answer`"), "{}", chain(&e));
    let s = vec![sample("q", "a", json!({"answer": "("}))];
    let e = MatchScorer {
        field: "answer".into(),
        mode: MatchMode::Regex,
    }
    .score(&s)
    .unwrap_err();
    assert!(matches!(e, JudgeError::Regex { index: 0, .. }), "{e:?}");
    assert!(e.to_string().contains("not a valid regex"), "{e}");
}

#[test]
fn synthetic_scorer_checks_the_suite_and_refuses_other_prompts() {
    let ex = &rpo_data::synthetic::generate(rpo_data::synthetic::Split::Eval, 2, 0)[0];
    let samples = vec![
        sample(&ex.prompt, &ex.chosen, json!({})),
        sample(&ex.prompt, &ex.rejected, json!({})),
    ];
    assert_eq!(
        labels(&SyntheticScorer.score(&samples).unwrap()),
        [true, false]
    );
    let e = SyntheticScorer
        .score(&[sample("what is love?", "baby", json!({}))])
        .unwrap_err();
    match &e {
        JudgeError::Sample { source, .. } => assert!(
            matches!(**source, JudgeError::Data(DataError::NotSynthetic { .. })),
            "{source:?}"
        ),
        other => panic!("expected JudgeError::Sample, got {other:?}"),
    }
    assert!(
        chain(&e).contains("--judge match|command|http"),
        "{}",
        chain(&e)
    );
}

fn command(cmd: &str) -> CommandScorer {
    CommandScorer {
        command: cmd.into(),
        threshold: 0.5,
        timeout: Duration::from_secs(20),
    }
}

/// A judge program in Python: score = 1 when the response contains the record's `answer`.
const PY_JUDGE: &str = r#"python3 -c '
import json, sys
for line in sys.stdin:
    s = json.loads(line)
    print(1.0 if s["answer"] in s["response"] else 0.0)
'"#;

#[test]
fn command_scorer_reads_one_score_per_line_and_sees_the_record_fields() {
    let samples = vec![
        sample("q1", "it is 7", json!({"answer": "7"})),
        sample("q2", "it is 8", json!({"answer": "7"})),
        sample("q3", "7!", json!({"answer": "7"})),
    ];
    let scores = command(PY_JUDGE).score(&samples).unwrap();
    assert_eq!(labels(&scores), [true, false, true]);
    // JSON objects with an explicit label are accepted too.
    let scores = command(r#"printf '{"score": 0.2, "label": true}\n0.9\n0.1\n'"#)
        .score(&samples)
        .unwrap();
    assert_eq!(labels(&scores), [true, true, false]);
    assert_eq!(scores[0].score, 0.2);
}

#[test]
fn command_scorer_failures_are_clear_errors() {
    let samples = vec![sample("q1", "a", json!({})), sample("q2", "b", json!({}))];
    let err = |cmd: &str, timeout: u64| {
        let mut c = command(cmd);
        c.timeout = Duration::from_secs(timeout);
        c.score(&samples).unwrap_err()
    };
    let e = err("cat >/dev/null; echo 'model not loaded' >&2; exit 3", 20);
    assert!(
        matches!(&e, JudgeError::CommandFailed { status, .. } if status.code() == Some(3)),
        "{e:?}"
    );
    let m = chain(&e);
    assert!(
        m.contains("failed") && m.contains("model not loaded"),
        "{m}"
    );
    let e = err("cat >/dev/null; echo 0.5; echo banana", 20);
    assert!(
        matches!(&e, JudgeError::CommandOutput { line: 2, text, .. } if text == "banana"),
        "{e:?}"
    );
    let m = chain(&e);
    assert!(m.contains("output line 2") && m.contains("banana"), "{m}");
    let e = err("cat >/dev/null; echo 0.5", 20);
    assert!(
        matches!(
            e,
            JudgeError::CommandLineCount {
                lines: 1,
                samples: 2,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(
        chain(&e).contains("wrote 1 score lines for 2 samples"),
        "{e}"
    );
    let e = err("sleep 30", 1);
    assert!(matches!(e, JudgeError::CommandTimeout { .. }), "{e:?}");
    assert!(chain(&e).contains("timeout"), "{e}");
    let e = err("cat >/dev/null; echo 0.5; echo NaN", 20);
    assert!(
        matches!(e, JudgeError::CommandOutput { line: 2, .. }),
        "{e:?}"
    );
    assert!(chain(&e).contains("output line 2"), "{e}");
}

fn scored(prompt: &str, response: &str, score: f64) -> ScoredSample {
    ScoredSample {
        prompt: prompt.into(),
        response: response.into(),
        score,
        label: score >= 0.5,
    }
}

/// Prompt a: 2 right (0.9, 0.7), 2 wrong (0.1, 0.3); b: all right; c: all wrong;
/// d: 1 right, 1 wrong.
fn hand_made() -> Vec<ScoredSample> {
    vec![
        scored("a", "a-wrong-0.3", 0.3),
        scored("b", "b-right", 1.0),
        scored("a", "a-right-0.7", 0.7),
        scored("c", "c-wrong", 0.0),
        scored("a", "a-right-0.9", 0.9),
        scored("d", "d-wrong", 0.0),
        scored("a", "a-wrong-0.1", 0.1),
        scored("b", "b-right-2", 0.8),
        scored("d", "d-right", 1.0),
    ]
}

fn paired(p: &str, c: &str, r: &str) -> PreferenceRow {
    PreferenceRow::Paired {
        prompt: p.into(),
        chosen: c.into(),
        rejected: r.into(),
    }
}

#[test]
fn best_against_worst_per_prompt_skipping_prompts_that_agree() {
    let (rows, stats) = build_preferences(&hand_made(), PairingRule::BestWorst, 99);
    assert_eq!(
        rows,
        [
            paired("a", "a-right-0.9", "a-wrong-0.1"),
            paired("d", "d-right", "d-wrong")
        ]
    );
    assert_eq!(stats.prompts, 4);
    assert_eq!(stats.prompts_mixed, 2);
    assert_eq!(stats.prompts_all_desirable, 1);
    assert_eq!(stats.prompts_all_undesirable, 1);
    assert_eq!(stats.samples, 9);
    assert!((stats.desirable_fraction - 5.0 / 9.0).abs() < 1e-12);
}

#[test]
fn all_pairs_capped_strongest_contrast_first() {
    let (rows, _) = build_preferences(&hand_made(), PairingRule::AllPairs, 3);
    assert_eq!(
        rows,
        [
            paired("a", "a-right-0.9", "a-wrong-0.1"),
            paired("a", "a-right-0.9", "a-wrong-0.3"),
            paired("a", "a-right-0.7", "a-wrong-0.1"),
            paired("d", "d-right", "d-wrong"),
        ]
    );
    let (rows, stats) = build_preferences(&hand_made(), PairingRule::AllPairs, 100);
    assert_eq!(rows.len(), 4 + 1);
    assert_eq!(stats.rows, 5);
}

#[test]
fn unpaired_rows_keep_every_sample_of_mixed_prompts_in_order() {
    let (rows, stats) = build_preferences(&hand_made(), PairingRule::Unpaired, 0);
    let got: Vec<Value> = rows
        .iter()
        .map(|r| serde_json::to_value(r).unwrap())
        .collect();
    assert_eq!(
        got,
        [
            json!({"prompt": "a", "completion": "a-wrong-0.3", "label": false}),
            json!({"prompt": "a", "completion": "a-right-0.7", "label": true}),
            json!({"prompt": "a", "completion": "a-right-0.9", "label": true}),
            json!({"prompt": "a", "completion": "a-wrong-0.1", "label": false}),
            json!({"prompt": "d", "completion": "d-wrong", "label": false}),
            json!({"prompt": "d", "completion": "d-right", "label": true}),
        ]
    );
    assert_eq!(stats.rows, 6);
    // The rows are what the project's readers take: paired lines and unpaired lines.
    let _: Map<String, Value> = serde_json::from_value(got[0].clone()).unwrap();
}
