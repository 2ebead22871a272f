//! The two judges over hand-made generations files; the HTTP judge against a local
//! stand-in endpoint (rpo_peer::judge_server), never the internet.

use rpo_data::synthetic::chat_prompt;
use rpo_data::DataError;
use rpo_judge::{
    evaluate, read_generations, HttpJudge, HttpSettings, JudgeError, Summary, SyntheticJudge, Task,
};
use rpo_peer::judge_server::FakeJudgeServer;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

const MODEL: &str = "judge-test";
const KEY: &str = "sk-test";

fn write_generations(dir: &Path, lines: &[Value]) -> PathBuf {
    let path = dir.join("generations.jsonl");
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(&path, text).unwrap();
    path
}

fn comparisons(out: &Path) -> Vec<Value> {
    std::fs::read_to_string(out.join("comparisons.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn settings(server: &FakeJudgeServer, task: Task) -> HttpSettings {
    HttpSettings {
        base_url: server.url.clone(),
        model: MODEL.into(),
        api_key: Some(KEY.into()),
        task,
        timeout_s: 10.0,
        max_retries: 3,
        backoff_initial_s: 0.001,
        backoff_max_s: 0.01,
        concurrency: 3,
        max_tokens: None,
    }
}

fn run_http(
    server: &FakeJudgeServer,
    task: Task,
    gens: &Path,
    out: &Path,
) -> rpo_judge::Result<Summary> {
    let judge = HttpJudge::new(settings(server, task), 7, &out.join("judge_cache.jsonl"))?;
    evaluate(&judge, &read_generations(gens)?, gens, out)
}

use rpo_peer::error_chain as chain;

/// What stopped the comparison of line `want_line` of a generations file.
fn judging(e: &JudgeError, want_line: usize) -> &JudgeError {
    match e {
        JudgeError::Judging { path, line, source } => {
            assert!(path.ends_with("generations.jsonl"), "{path:?}");
            assert_eq!(*line, want_line, "{}", chain(e));
            source
        }
        other => panic!("expected JudgeError::Judging, got {other:?}"),
    }
}

fn line(prompt: &str, response: &str, reference: &str) -> Value {
    json!({ "prompt": prompt, "response": response, "reference": reference })
}

#[test]
fn synthetic_judge_win_rate_on_a_hand_made_file() {
    let dir = tempfile::tempdir().unwrap();
    let q = chat_prompt("What is 2 + 3?");
    let gens = write_generations(
        dir.path(),
        &[
            // correct vs correct: tie
            json!({ "prompt": q, "response": "5", "reference": " 5", "family": "addition" }),
            // wrong vs correct: loss
            json!({ "prompt": q, "response": " 6", "reference": " 5", "family": "addition" }),
            // correct vs wrong: win
            json!({ "prompt": q, "response": "5 ", "reference": " 7", "family": "addition" }),
            // wrong vs wrong: tie
            json!({ "prompt": q, "response": "four", "reference": " 7" }),
        ],
    );
    let out = dir.path().join("eval");
    let s = evaluate(
        &SyntheticJudge,
        &read_generations(&gens).unwrap(),
        &gens,
        &out,
    )
    .unwrap();
    let t = &s.total;
    assert_eq!(
        (t.comparisons, t.wins, t.losses, t.ties, t.unparsable),
        (4, 1, 1, 2, 0)
    );
    assert_eq!(t.win_rate, 0.25);
    assert_eq!(t.win_rate_ties_half, 0.5);
    assert_eq!(s.candidate_accuracy, Some(0.5));
    assert_eq!(s.reference_accuracy, Some(0.5));
    let add = &s.by_family["addition"];
    assert_eq!(
        (add.comparisons, add.wins, add.losses, add.ties),
        (3, 1, 1, 1)
    );
    let c = comparisons(&out);
    let outcomes: Vec<&str> = c.iter().map(|c| c["outcome"].as_str().unwrap()).collect();
    assert_eq!(outcomes, ["tie", "loss", "win", "tie"]);
    assert_eq!(c[1]["candidate_correct"], false);
    assert_eq!(c[1]["line"], 2);
    let written: Summary =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(written.total, s.total);
    assert!(written.definitions["win_rate"].contains("wins / comparisons"));

    // A prompt that is not from the suite names its file and line.
    let bad = write_generations(
        dir.path(),
        &[
            line(&q, " 5", " 5"),
            line("Human: hi\n\nAssistant:", "x", "y"),
        ],
    );
    let e = evaluate(
        &SyntheticJudge,
        &read_generations(&bad).unwrap(),
        &bad,
        &out,
    )
    .unwrap_err();
    assert!(
        matches!(
            judging(&e, 2),
            JudgeError::Data(DataError::NotSynthetic { .. })
        ),
        "{e:?}"
    );
    let e = chain(&e);
    assert!(
        e.contains("generations.jsonl:2") && e.contains("not a synthetic-suite prompt"),
        "{e}"
    );
}

#[test]
fn malformed_generations_name_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.jsonl");
    std::fs::write(
        &path,
        "{\"prompt\":\"p\",\"response\":\"r\",\"reference\":\"x\"}\n\n{\"prompt\":\"p\"}\n",
    )
    .unwrap();
    let e = read_generations(&path).unwrap_err();
    assert!(matches!(e, JudgeError::Generation { line: 3, .. }), "{e:?}");
    let e = chain(&e);
    assert!(e.contains("g.jsonl:3") && e.contains("reference"), "{e}");
    std::fs::write(&path, "\n").unwrap();
    let e = read_generations(&path).unwrap_err();
    assert!(matches!(e, JudgeError::NoGenerations { .. }), "{e:?}");
    assert!(e.to_string().contains("no generations"), "{e}");
}

/// The comparisons of the HTTP tests: what the stand-in answers is in its module docs.
fn http_lines() -> Vec<Value> {
    vec![
        line("Human: Say hi.\n\nAssistant:", "GOOD hello", "hey"), // win
        line("Human: Say bye.\n\nAssistant:", "bye", "GOOD goodbye"), // loss
        line("Human: Echo.\n\nAssistant:", " same text ", "same text"), // tie, no request
        line("Human: Pick.\n\nAssistant:", "SAME a", "SAME b"),    // tie from the judge
        line("Human: What?\n\nAssistant:", "GARBLE", "fine"),      // unparsable
        line("Human: Busy? [429]\n\nAssistant:", "GOOD yes", "no"), // win after a 429
        line("Human: Down? [500]\n\nAssistant:", "no", "GOOD yes"), // loss after a 500
    ]
}

#[test]
fn http_judge_counts_outcomes_retries_and_shows_the_appendix_prompt_in_a_recorded_order() {
    let server = FakeJudgeServer::start(MODEL, Some(KEY));
    let dir = tempfile::tempdir().unwrap();
    let gens = write_generations(dir.path(), &http_lines());
    let out = dir.path().join("eval");
    let s = run_http(&server, Task::Dialogue, &gens, &out).unwrap();
    let t = &s.total;
    assert_eq!(
        (t.comparisons, t.wins, t.losses, t.ties, t.unparsable),
        (7, 2, 2, 2, 1)
    );
    assert!((t.win_rate - 2.0 / 7.0).abs() < 1e-12);
    assert!((t.win_rate_ties_half - 3.0 / 7.0).abs() < 1e-12);
    // Six comparisons asked, two of them twice (429, then 500); the identical pair never.
    assert_eq!(server.requests(), 8);
    assert_eq!(s.requests, 8);
    assert_eq!(s.cache_hits, 0);
    assert!(s.prompt_tokens > 0 && s.completion_tokens == 5 * 6);
    assert_eq!(s.settings["model"], MODEL);
    assert!(s.settings.get("api_key").is_none());

    let c = comparisons(&out);
    assert_eq!(c[2]["outcome"], "tie");
    assert!(c[2].get("reply").is_none());
    assert_eq!(c[4]["outcome"], "unparsable");
    assert_eq!(c[4]["reply"], "I cannot decide.");
    assert_eq!(c[5]["requests"], 2);
    // Each message holds the prompt and both responses, the candidate where recorded.
    let messages = server.messages();
    let mut positions = Vec::new();
    for (g, c) in http_lines().iter().zip(&c) {
        if c["outcome"] == "tie" && c.get("reply").is_none() {
            continue;
        }
        let (cand, reference) = (
            g["response"].as_str().unwrap(),
            g["reference"].as_str().unwrap(),
        );
        let position = c["candidate_position"].as_u64().unwrap();
        let (first, second) = if position == 1 {
            (cand, reference)
        } else {
            (reference, cand)
        };
        let want = format!(
            "<|user|>\n\n{}\n\n<|assistant|>can now choose from different responses.\n\nResponse 1: {}\n\nEND OF RESPONSE 1\n\nResponse 2: {}\n\nEND OF RESPONSE 2\n\n",
            g["prompt"].as_str().unwrap().trim(),
            first.trim(),
            second.trim()
        );
        assert!(
            messages.iter().any(|m| m.contains(&want)),
            "no message with {want:?}"
        );
        positions.push(position);
    }
    assert!(
        positions.contains(&1) && positions.contains(&2),
        "orders {positions:?}"
    );
}

#[test]
fn a_second_run_with_the_same_cache_makes_no_requests() {
    let server = FakeJudgeServer::start(MODEL, Some(KEY));
    let dir = tempfile::tempdir().unwrap();
    let gens = write_generations(dir.path(), &http_lines());
    let out = dir.path().join("eval");
    let first = run_http(&server, Task::Dialogue, &gens, &out).unwrap();
    let asked = server.requests();
    // An interrupted write leaves a torn last line; it is skipped, not fatal.
    let cache = out.join("judge_cache.jsonl");
    let mut text = std::fs::read_to_string(&cache).unwrap();
    text.push_str("{\"key\":\"torn");
    std::fs::write(&cache, text).unwrap();

    let second = run_http(&server, Task::Dialogue, &gens, &out).unwrap();
    assert_eq!(
        server.requests(),
        asked,
        "the second run asked the endpoint again"
    );
    assert_eq!(second.requests, 0);
    assert_eq!(second.cache_hits, 6);
    assert_eq!(second.total, first.total);
    assert!(comparisons(&out).iter().all(|c| c["cached"] != false));

    // Another judge model is another cache key: asked again.
    let mut other = settings(&server, Task::Dialogue);
    other.model = "judge-other".into();
    let judge = HttpJudge::new(other, 7, &cache).unwrap();
    let e = evaluate(&judge, &read_generations(&gens).unwrap(), &gens, &out).unwrap_err();
    // Requests go out 3 at a time, so whichever line's answer came first names the error.
    let JudgeError::Judging { line, source, .. } = &e else {
        panic!("expected JudgeError::Judging, got {e:?}");
    };
    assert!((1..=http_lines().len()).contains(line), "{}", chain(&e));
    assert!(
        matches!(**source, JudgeError::Status { code: 400, .. }),
        "{e:?}"
    );
    assert!(chain(&e).contains("HTTP 400"), "{}", chain(&e));
    assert!(server.requests() > asked);
}

#[test]
fn summarization_uses_its_prompt_and_noun() {
    let server = FakeJudgeServer::start(MODEL, Some(KEY));
    let dir = tempfile::tempdir().unwrap();
    let gens = write_generations(
        dir.path(),
        &[
            line("A long post about cats.", "GOOD cats", "dogs"),
            line("A long post about dogs.", "cats", "GOOD dogs"),
        ],
    );
    let s = run_http(
        &server,
        Task::Summarization,
        &gens,
        &dir.path().join("eval"),
    )
    .unwrap();
    assert_eq!((s.total.wins, s.total.losses), (1, 1));
    assert!(server
        .messages()
        .iter()
        .all(|m| m.contains("\n\nSummary 1: ") && m.contains("END OF SUMMARY 2")));
}

#[test]
fn client_errors_stop_at_once_and_server_errors_give_up_after_the_retries() {
    let server = FakeJudgeServer::start(MODEL, Some("sk-other"));
    let dir = tempfile::tempdir().unwrap();
    let gens = write_generations(
        dir.path(),
        &[line("Human: hi\n\nAssistant:", "GOOD a", "b")],
    );
    let e = run_http(&server, Task::Dialogue, &gens, &dir.path().join("a")).unwrap_err();
    assert!(
        matches!(judging(&e, 1), JudgeError::Status { code: 401, .. }),
        "{e:?}"
    );
    let e = chain(&e);
    assert!(
        e.contains("HTTP 401") && e.contains("API_KEY") && e.contains("generations.jsonl:1"),
        "{e}"
    );
    assert_eq!(server.requests(), 1);

    let server = FakeJudgeServer::start(MODEL, Some(KEY));
    let gens = write_generations(
        dir.path(),
        &[line("Human: hi [503]\n\nAssistant:", "GOOD a", "b")],
    );
    let e = run_http(&server, Task::Dialogue, &gens, &dir.path().join("b")).unwrap_err();
    assert!(
        matches!(judging(&e, 1), JudgeError::GaveUp { attempts: 4, last, .. } if last.contains("HTTP 503")),
        "{e:?}"
    );
    let e = chain(&e);
    assert!(
        e.contains("gave up after 4 attempts") && e.contains("HTTP 503"),
        "{e}"
    );
    assert_eq!(server.requests(), 4);

    // Nothing listening: a transport error, retried, then reported.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut s = settings(&server, Task::Dialogue);
    s.base_url = format!("http://127.0.0.1:{port}/v1");
    let judge = HttpJudge::new(s, 0, &dir.path().join("c/cache.jsonl")).unwrap();
    let e = evaluate(
        &judge,
        &read_generations(&gens).unwrap(),
        &gens,
        &dir.path().join("c"),
    )
    .unwrap_err();
    assert!(
        matches!(judging(&e, 1), JudgeError::GaveUp { attempts: 4, .. }),
        "{e:?}"
    );
    assert!(
        chain(&e).contains("gave up after 4 attempts"),
        "{}",
        chain(&e)
    );
}
