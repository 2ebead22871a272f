//! Every reader on small fixtures, including malformed lines.

use std::path::PathBuf;

use rpo_data::{read_dataset, DataFormat, Examples, OnMalformed, PairedExample, UnpairedExample};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn pair(prompt: &str, chosen: &str, rejected: &str) -> PairedExample {
    PairedExample {
        prompt: prompt.into(),
        chosen: chosen.into(),
        rejected: rejected.into(),
    }
}

/// The error of the first malformed line, rendered with its whole context chain.
fn first_error(name: &str, format: DataFormat) -> String {
    let err = read_dataset(fixture(name), format, OnMalformed::Error)
        .expect_err("fixture has malformed lines");
    format!("{err:#}")
}

/// (line, reason) of every skipped line.
fn skipped(name: &str, format: DataFormat) -> Vec<(usize, String)> {
    let dataset = read_dataset(fixture(name), format, OnMalformed::Skip).unwrap();
    dataset
        .skipped
        .into_iter()
        .map(|m| (m.line, m.reason))
        .collect()
}

#[test]
fn paired_reads_records_ignoring_blank_lines_and_extra_fields() {
    let dataset = read_dataset(
        fixture("paired.jsonl"),
        DataFormat::Paired,
        OnMalformed::Error,
    )
    .unwrap();
    assert_eq!(dataset.skipped_count(), 0);
    assert_eq!(
        dataset.paired().unwrap(),
        &[
            pair("Human: hi\n\nAssistant:", " hello", " go away"),
            pair("Human: 2+2?\n\nAssistant:", " 4", " 5"),
            pair("Human: empty answer ok?\n\nAssistant:", "", " no"),
        ]
    );
}

#[test]
fn paired_malformed_line_is_an_error_naming_file_line_and_field() {
    let message = first_error("paired_malformed.jsonl", DataFormat::Paired);
    assert!(
        message.contains("paired_malformed.jsonl:2: invalid JSON"),
        "{message}"
    );
}

#[test]
fn paired_skip_counts_and_explains_every_malformed_line() {
    let skipped = skipped("paired_malformed.jsonl", DataFormat::Paired);
    let lines: Vec<usize> = skipped.iter().map(|(line, _)| *line).collect();
    assert_eq!(lines, [2, 4, 5, 6, 7], "{skipped:?}");
    assert!(skipped[0].1.starts_with("invalid JSON"), "{skipped:?}");
    assert_eq!(skipped[1].1, "field `rejected`: missing");
    assert_eq!(
        skipped[2].1,
        "field `prompt`: expected a string, found a number"
    );
    assert_eq!(skipped[3].1, "field `prompt`: empty");
    assert_eq!(skipped[4].1, "expected a JSON object, found an array");

    let dataset = read_dataset(
        fixture("paired_malformed.jsonl"),
        DataFormat::Paired,
        OnMalformed::Skip,
    )
    .unwrap();
    assert_eq!(dataset.len(), 2);
    assert_eq!(dataset.skipped_count(), 5);
}

#[test]
fn unpaired_reads_labels() {
    let dataset = read_dataset(
        fixture("unpaired.jsonl"),
        DataFormat::Unpaired,
        OnMalformed::Error,
    )
    .unwrap();
    let labels: Vec<bool> = dataset
        .unpaired()
        .unwrap()
        .iter()
        .map(|e| e.desirable)
        .collect();
    assert_eq!(labels, [true, false, true]);
    assert_eq!(dataset.unpaired().unwrap()[1].completion, " go away");
    assert!(dataset.paired().is_none());
}

#[test]
fn unpaired_malformed_lines_name_the_field() {
    let message = first_error("unpaired_malformed.jsonl", DataFormat::Unpaired);
    assert!(
        message.contains(
            "unpaired_malformed.jsonl:2: field `label`: expected a boolean, found a string"
        ),
        "{message}"
    );
    let skipped = skipped("unpaired_malformed.jsonl", DataFormat::Unpaired);
    assert_eq!(skipped[1], (3, "field `completion`: missing".to_string()));
}

#[test]
fn hh_splits_at_the_last_assistant_turn() {
    let dataset = read_dataset(fixture("hh.jsonl"), DataFormat::Hh, OnMalformed::Error).unwrap();
    assert_eq!(
        dataset.paired().unwrap(),
        &[
            pair(
                "\n\nHuman: What is a cat?\n\nAssistant: An animal.\n\nHuman: Is it big?\n\nAssistant:",
                " No, it is small.",
                " Yes, huge."
            ),
            pair("\n\nHuman: Say hi\n\nAssistant:", " Hi!", ""),
        ]
    );
}

#[test]
fn hh_rejects_dialogues_that_do_not_share_the_prompt() {
    let message = first_error("hh_malformed.jsonl", DataFormat::Hh);
    assert!(
        message.contains("hh_malformed.jsonl:1: field `rejected`: does not start with the prompt"),
        "{message}"
    );
    let skipped = skipped("hh_malformed.jsonl", DataFormat::Hh);
    assert_eq!(skipped.len(), 3);
    assert_eq!(skipped[1].0, 2);
    assert!(
        skipped[1].1.starts_with("field `chosen`: no"),
        "{skipped:?}"
    );
    assert_eq!(
        skipped[2].1,
        "field `rejected`: expected a string, found null"
    );
}

#[test]
fn tldr_takes_the_chosen_summary_and_builds_the_query() {
    let dataset =
        read_dataset(fixture("tldr.jsonl"), DataFormat::Tldr, OnMalformed::Error).unwrap();
    assert_eq!(
        dataset.paired().unwrap(),
        &[
            pair(
                "SUBREDDIT: r/pets\n\nTITLE: Cat trouble\n\nPOST: My cat ate my homework.\n\nTL;DR:",
                " cat ate homework",
                " dog ate homework"
            ),
            // choice = 1, and no subreddit or title.
            pair(
                "POST: I moved to a new city and feel lonely.\n\nTL;DR:",
                " moved, happy",
                " moved, lonely"
            ),
        ]
    );
}

#[test]
fn tldr_malformed_lines_name_nested_fields() {
    let message = first_error("tldr_malformed.jsonl", DataFormat::Tldr);
    assert!(
        message.contains("tldr_malformed.jsonl:1: field `choice`: expected 0 or 1, found 2"),
        "{message}"
    );
    let reasons: Vec<String> = skipped("tldr_malformed.jsonl", DataFormat::Tldr)
        .into_iter()
        .map(|(_, reason)| reason)
        .collect();
    assert_eq!(
        reasons[1..],
        [
            "field `summaries`: expected 2 summaries, found 1",
            "field `summaries[1].text`: missing",
            "field `info.post`: missing",
        ]
    );
}

#[test]
fn missing_file_is_an_error_naming_it() {
    let err = read_dataset(
        fixture("no_such.jsonl"),
        DataFormat::Paired,
        OnMalformed::Error,
    )
    .unwrap_err();
    assert!(format!("{err:#}").contains("no_such.jsonl"), "{err:#}");
}

#[test]
fn invalid_utf8_and_crlf_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mixed.jsonl");
    let mut bytes = b"{\"prompt\": \"p\", \"chosen\": \"a\", \"rejected\": \"b\"}\r\n".to_vec();
    bytes.extend_from_slice(b"{\"prompt\": \"\xff\"}\n");
    std::fs::write(&path, bytes).unwrap();
    let dataset = read_dataset(&path, DataFormat::Paired, OnMalformed::Skip).unwrap();
    assert_eq!(dataset.paired().unwrap(), &[pair("p", "a", "b")]);
    assert_eq!(dataset.skipped[0].line, 2);
    assert!(dataset.skipped[0].reason.starts_with("not valid UTF-8"));
}

#[test]
fn paired_data_converts_to_unpaired() {
    let dataset = read_dataset(
        fixture("paired.jsonl"),
        DataFormat::Paired,
        OnMalformed::Error,
    )
    .unwrap();
    let unpaired = dataset.into_unpaired().unwrap();
    assert_eq!(unpaired.len(), 6);
    assert_eq!(
        unpaired[..2],
        [
            UnpairedExample {
                prompt: "Human: hi\n\nAssistant:".into(),
                completion: " hello".into(),
                desirable: true
            },
            UnpairedExample {
                prompt: "Human: hi\n\nAssistant:".into(),
                completion: " go away".into(),
                desirable: false
            },
        ]
    );
}

#[test]
fn formats_use_lowercase_names() {
    for format in DataFormat::ALL {
        let json = serde_json::to_string(&format).unwrap();
        assert_eq!(json, format!("\"{}\"", format.name()));
        assert_eq!(serde_json::from_str::<DataFormat>(&json).unwrap(), format);
        assert_eq!(format.name().parse::<DataFormat>().unwrap(), format);
    }
    assert!("jsonl".parse::<DataFormat>().is_err());
    assert_eq!(
        serde_json::from_str::<OnMalformed>("\"skip\"").unwrap(),
        OnMalformed::Skip
    );
    assert!(matches!(
        read_dataset(
            fixture("unpaired.jsonl"),
            DataFormat::Unpaired,
            OnMalformed::Error
        )
        .unwrap()
        .examples,
        Examples::Unpaired(_)
    ));
}

/// A caller can tell a malformed line (the data's fault, with its file and line) from a
/// file that cannot be read, without parsing the message.
#[test]
fn errors_are_typed_by_kind_with_file_and_line() {
    use rpo_data::error::DataError;
    let err = read_dataset(
        fixture("paired_malformed.jsonl"),
        DataFormat::Paired,
        OnMalformed::Error,
    )
    .unwrap_err();
    match &err {
        DataError::Malformed { path, line, .. } => {
            assert!(path.ends_with("paired_malformed.jsonl"), "{path:?}");
            // Line 2 of the fixture is not JSON (as the message test above reads it).
            assert_eq!(*line, 2);
        }
        other => panic!("expected DataError::Malformed, got {other:?} ({err:#})"),
    }
    let err = read_dataset(
        fixture("no-such-file.jsonl"),
        DataFormat::Paired,
        OnMalformed::Error,
    )
    .unwrap_err();
    assert!(matches!(err, DataError::Open { .. }), "{err:#}");
}
