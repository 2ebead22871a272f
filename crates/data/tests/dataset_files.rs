//! Dataset files as the Hub serves them: Parquet written by pyarrow, gzipped JSON Lines
//! and JSON arrays read to the same examples as their JSON Lines twin; globs and lists
//! of files; column maps; malformed rows named by file and row; held-out splits.

use std::path::Path;

use rpo_data::{
    expand_paths, read_dataset, read_dataset_with, split_held_out, ColumnMap,
    ConversationalExample, DataError, DataFormat, Examples, OnMalformed, ReadOptions,
};
use serde_json::{json, Value};

use rpo_peer::error_chain as chain;

fn write_jsonl(path: &Path, records: &[Value]) {
    let text: String = records.iter().map(|r| format!("{r}\n")).collect();
    std::fs::write(path, text).unwrap();
}

/// The peer writes `src`'s records as data.parquet, data.jsonl.gz and data.json (and
/// `shards` Parquet shards) under `dir`.
fn twins(src: &Path, dir: &Path, shards: usize) {
    rpo_peer::run(
        "dataset_files_peer.py",
        &[
            src.to_str().unwrap(),
            dir.to_str().unwrap(),
            &shards.to_string(),
        ],
    );
}

fn read(path: &Path, format: DataFormat) -> Examples {
    read_dataset(path, format, OnMalformed::Error)
        .unwrap_or_else(|e| panic!("{}: {e:#}", path.display()))
        .examples
}

fn paired_records() -> Vec<Value> {
    vec![
        json!({"prompt": "Human: What is 2+3?\n\nAssistant:", "chosen": " 5", "rejected": " 6", "id": 1}),
        json!({"prompt": "Übersetze: «café» ☕", "chosen": " coffee\nshop", "rejected": "", "id": 2}),
        json!({"prompt": "Tabs\tand \"quotes\"", "chosen": " ok", "rejected": " no", "id": 3}),
        json!({"prompt": "emoji 🦀 and CJK 中文", "chosen": " 🦀", "rejected": " ?", "id": 4}),
        json!({"prompt": "last", "chosen": " a", "rejected": " b", "id": 5}),
    ]
}

#[test]
fn parquet_gzip_and_json_array_read_as_their_jsonl_twin() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.jsonl");
    write_jsonl(&src, &paired_records());
    twins(&src, dir.path(), 2);
    let expected = read(&src, DataFormat::Paired);
    assert_eq!(expected.len(), 5);
    for name in ["data.parquet", "data.jsonl.gz", "data.json"] {
        assert_eq!(
            read(&dir.path().join(name), DataFormat::Paired),
            expected,
            "{name}"
        );
    }
    // A Parquet codec this build leaves out is an error naming the file and the codec.
    let err = read_dataset(
        dir.path().join("zstd.parquet"),
        DataFormat::Paired,
        OnMalformed::Error,
    )
    .map(|_| ())
    .unwrap_err();
    assert!(matches!(err, DataError::Parquet { .. }), "{err:?}");
    let err = chain(&err);
    assert!(
        err.contains("zstd.parquet") && err.contains("compile time: zstd"),
        "{err}"
    );
    // The shards, found by a glob in name order, together read as the whole file.
    let pattern = dir.path().join("train-*.parquet").display().to_string();
    let shards = expand_paths(&[pattern]).unwrap();
    assert_eq!(shards.len(), 2);
    assert!(shards[0] < shards[1]);
    let mut all = read(&shards[0], DataFormat::Paired);
    all.append(read(&shards[1], DataFormat::Paired)).unwrap();
    assert_eq!(all, expected);
}

#[test]
fn unpaired_parquet_reads_as_its_jsonl_twin() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.jsonl");
    write_jsonl(
        &src,
        &[
            json!({"prompt": "p1", "completion": " good", "label": true}),
            json!({"prompt": "p2", "completion": " bad", "label": false}),
            json!({"prompt": "p3", "completion": "", "label": true}),
        ],
    );
    twins(&src, dir.path(), 1);
    let expected = read(&src, DataFormat::Unpaired);
    assert!(matches!(&expected, Examples::Unpaired(u) if u.len() == 3 && !u[1].desirable));
    for name in ["data.parquet", "data.jsonl.gz", "data.json"] {
        assert_eq!(
            read(&dir.path().join(name), DataFormat::Unpaired),
            expected,
            "{name}"
        );
    }
}

#[test]
fn conversational_records_are_carried_as_message_lists() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.jsonl");
    let prompt = json!([
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "2+3?"}
    ]);
    let chosen = json!([{"role": "assistant", "content": "5"}]);
    let rejected = json!([{"role": "assistant", "content": "6"}]);
    write_jsonl(
        &src,
        &[
            json!({"prompt": prompt, "chosen": chosen, "rejected": rejected}),
            json!({"prompt": [{"role": "user", "content": "Hi"}],
                   "chosen": [{"role": "assistant", "content": "Hello!"}],
                   "rejected": [{"role": "assistant", "content": "Go away."}]}),
        ],
    );
    twins(&src, dir.path(), 1);
    let expected = read(&src, DataFormat::Paired);
    let Examples::Conversational(records) = &expected else {
        panic!("not conversational: {expected:?}");
    };
    assert_eq!(
        records[0],
        ConversationalExample::Paired {
            prompt: Some(prompt),
            chosen,
            rejected
        }
    );
    for name in ["data.parquet", "data.jsonl.gz", "data.json"] {
        assert_eq!(
            read(&dir.path().join(name), DataFormat::Paired),
            expected,
            "{name}"
        );
    }
}

#[test]
fn plain_and_conversational_records_do_not_mix_in_one_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mixed.jsonl");
    write_jsonl(
        &path,
        &[
            json!({"prompt": "p", "chosen": "a", "rejected": "b"}),
            json!({"prompt": [{"role": "user", "content": "p"}],
                   "chosen": [{"role": "assistant", "content": "a"}],
                   "rejected": [{"role": "assistant", "content": "b"}]}),
        ],
    );
    let err = format!(
        "{:#}",
        read_dataset(&path, DataFormat::Paired, OnMalformed::Error).unwrap_err()
    );
    assert!(
        err.contains("mixed.jsonl:2:") && err.contains("conversational"),
        "{err}"
    );
}

fn first_error(path: &Path) -> String {
    let err = read_dataset(path, DataFormat::Paired, OnMalformed::Error)
        .expect_err("the file has a malformed record");
    format!("{err:#}")
}

#[test]
fn a_malformed_row_is_named_by_file_and_row_in_every_file_kind() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.jsonl");
    let mut records = paired_records();
    records[2]["chosen"] = Value::Null; // row/line 3
    write_jsonl(&src, &records);
    twins(&src, dir.path(), 1);
    for (name, at) in [
        ("src.jsonl", "src.jsonl:3:"),
        ("data.jsonl.gz", "data.jsonl.gz:3:"),
        ("data.json", "data.json: row 3:"),
        ("data.parquet", "data.parquet: row 3:"),
    ] {
        let err = first_error(&dir.path().join(name));
        assert!(
            err.contains(at) && err.contains("field `chosen`: expected a string, found null"),
            "{name}: {err}"
        );
    }
    // Skipped instead, the others survive, and the skipped row is recorded.
    let skipped = read_dataset(
        dir.path().join("data.parquet"),
        DataFormat::Paired,
        OnMalformed::Skip,
    )
    .unwrap();
    assert_eq!(skipped.len(), 4);
    assert_eq!(skipped.skipped.len(), 1);
    assert_eq!(skipped.skipped[0].line, 3);

    // A JSON array whose element is not an object; invalid JSON in a gzipped file.
    let array = dir.path().join("bad.json");
    std::fs::write(
        &array,
        r#"[{"prompt": "p", "chosen": "a", "rejected": "b"}, 7]"#,
    )
    .unwrap();
    let err = first_error(&array);
    assert!(
        err.contains("bad.json: row 2: expected a JSON object, found a number"),
        "{err}"
    );
    let gz = dir.path().join("bad.jsonl.gz");
    {
        use std::io::Write;
        let file = std::fs::File::create(&gz).unwrap();
        let mut enc = flate2::write::GzEncoder::new(file, flate2::Compression::default());
        enc.write_all(b"{\"prompt\": \"p\", \"chosen\": \"a\", \"rejected\": \"b\"}\n{oops\n")
            .unwrap();
        enc.finish().unwrap();
    }
    let err = first_error(&gz);
    assert!(err.contains("bad.jsonl.gz:2: invalid JSON"), "{err}");
}

#[test]
fn columns_with_other_names_are_mapped_and_named_in_errors() {
    let dir = tempfile::tempdir().unwrap();
    let renamed = dir.path().join("se.jsonl");
    write_jsonl(
        &renamed,
        &[
            json!({"question": "q1", "response_j": "good", "response_k": "bad"}),
            json!({"question": "q2", "response_j": "fine", "response_k": "worse"}),
        ],
    );
    let plain = dir.path().join("plain.jsonl");
    write_jsonl(
        &plain,
        &[
            json!({"prompt": "q1", "chosen": "good", "rejected": "bad"}),
            json!({"prompt": "q2", "chosen": "fine", "rejected": "worse"}),
        ],
    );
    let columns = ColumnMap {
        prompt: Some("question".into()),
        chosen: Some("response_j".into()),
        rejected: Some("response_k".into()),
        ..ColumnMap::default()
    };
    let options = ReadOptions {
        on_malformed: OnMalformed::Error,
        columns: &columns,
        chat: None,
    };
    let mapped = read_dataset_with(&renamed, DataFormat::Paired, &options).unwrap();
    assert_eq!(mapped.examples, read(&plain, DataFormat::Paired));
    // A file without the mapped column: the error names the column the user gave.
    let err = format!(
        "{:#}",
        read_dataset_with(&plain, DataFormat::Paired, &options).unwrap_err()
    );
    assert!(
        err.contains("plain.jsonl:1: field `question`: missing"),
        "{err}"
    );
}

#[test]
fn globs_expand_in_name_order_and_must_match() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["b-1.jsonl", "a-2.jsonl", "a-1.jsonl", "c.txt"] {
        std::fs::write(dir.path().join(name), "").unwrap();
    }
    let d = dir.path().display();
    let got = expand_paths(&[format!("{d}/a-*.jsonl"), format!("{d}/b-1.jsonl")]).unwrap();
    let names: Vec<_> = got
        .iter()
        .map(|p| p.file_name().unwrap().to_str().unwrap())
        .collect();
    assert_eq!(names, ["a-1.jsonl", "a-2.jsonl", "b-1.jsonl"]);
    let err = expand_paths(&[format!("{d}/z-*.parquet")])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("z-*.parquet") && err.contains("matches no file"),
        "{err}"
    );
    let err = read_dataset(
        dir.path().join("c.txt"),
        DataFormat::Paired,
        OnMalformed::Error,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("c.txt: unknown dataset file type"), "{err}");
}

#[test]
fn held_out_split_is_a_seeded_partition_in_file_order() {
    let items: Vec<u32> = (0..200).collect();
    let (train, eval) = split_held_out(items.clone(), 0.1, 7).unwrap();
    assert_eq!(eval.len(), 20);
    assert_eq!(train.len(), 180);
    // A partition, each part in file order.
    let mut union: Vec<u32> = train.iter().chain(&eval).copied().collect();
    union.sort();
    assert_eq!(union, items);
    assert!(train.windows(2).all(|w| w[0] < w[1]) && eval.windows(2).all(|w| w[0] < w[1]));
    // The same seed holds out the same examples; another seed others.
    assert_eq!(split_held_out(items.clone(), 0.1, 7).unwrap().1, eval);
    assert_ne!(split_held_out(items.clone(), 0.1, 8).unwrap().1, eval);
    // Not all from one end of the file.
    assert!(eval.iter().any(|&i| i < 100) && eval.iter().any(|&i| i >= 100));
    // Training keeps at least one example; 0 holds out nothing; 1 is refused.
    assert_eq!(split_held_out(vec![1, 2], 0.9, 0).unwrap().0.len(), 1);
    assert!(split_held_out(items.clone(), 0.0, 0).unwrap().1.is_empty());
    assert!(split_held_out(items, 1.0, 0).is_err());
}
