//! The synthetic suite: determinism, held-out eval prompts, the judge, the JSONL files.

use std::collections::{BTreeMap, HashSet};

use rpo_data::synthetic::{
    generate, judge, question_count, reference_answer, write_jsonl, Family, Split,
};
use rpo_data::{read_dataset, DataFormat, OnMalformed};

/// Enough examples to visit every question of every family at least once.
const MANY: usize = 6 * 13_000;

#[test]
fn same_seed_same_examples_and_another_seed_differs() {
    assert_eq!(
        generate(Split::Train, 300, 4),
        generate(Split::Train, 300, 4)
    );
    assert_ne!(
        generate(Split::Train, 300, 4),
        generate(Split::Train, 300, 5)
    );
    assert_ne!(
        generate(Split::Train, 300, 4),
        generate(Split::Eval, 300, 4)
    );
}

#[test]
fn families_take_turns() {
    let examples = generate(Split::Train, 600, 0);
    let mut counts: BTreeMap<Family, usize> = BTreeMap::new();
    for example in &examples {
        *counts.entry(example.family).or_default() += 1;
    }
    assert_eq!(counts.len(), Family::ALL.len());
    assert!(counts.values().all(|&n| n == 100), "{counts:?}");
}

#[test]
fn eval_prompts_never_appear_in_training() {
    let train: HashSet<String> = generate(Split::Train, MANY, 1)
        .into_iter()
        .map(|e| e.prompt)
        .collect();
    let eval: HashSet<String> = generate(Split::Eval, MANY, 2)
        .into_iter()
        .map(|e| e.prompt)
        .collect();
    assert!(train.is_disjoint(&eval));
    let total = |split| {
        Family::ALL
            .iter()
            .map(|&f| question_count(f, split))
            .sum::<usize>()
    };
    assert_eq!(
        train.len(),
        total(Split::Train),
        "every train question drawn"
    );
    assert_eq!(eval.len(), total(Split::Eval), "every eval question drawn");
    for family in Family::ALL {
        let (n_train, n_eval) = (
            question_count(family, Split::Train),
            question_count(family, Split::Eval),
        );
        println!("{family}: {n_train} train prompts, {n_eval} eval prompts");
        assert!(
            n_eval > 0 && n_train >= 2 * n_eval,
            "{family}: {n_train} / {n_eval}"
        );
    }
}

#[test]
fn judge_accepts_chosen_and_rejects_rejected_for_every_example() {
    for split in [Split::Train, Split::Eval] {
        for example in generate(split, MANY, 3) {
            assert!(example.judge(&example.chosen), "{example:?}");
            assert!(!example.judge(&example.rejected), "{example:?}");
            let (family, answer) = reference_answer(&example.prompt).unwrap();
            assert_eq!(family, example.family);
            assert_eq!(format!(" {answer}"), example.chosen);
        }
    }
}

#[test]
fn judge_trims_and_needs_an_exact_answer() {
    let prompt = "Human: What is 12 + 7?\n\nAssistant:";
    assert!(judge(prompt, " 19 \n").unwrap());
    assert!(!judge(prompt, " 19.").unwrap());
    assert!(!judge(prompt, " 119").unwrap());
    let sort = "Human: Sort alphabetically: dog, cat, bee, ant\n\nAssistant:";
    assert!(judge(sort, "ant, bee, cat, dog").unwrap());
    assert!(!judge(sort, "ant, bee, dog, cat").unwrap());
    let three_words = "Human: Sort alphabetically: dog, cat, bee\n\nAssistant:";
    assert!(
        judge(three_words, "bee, cat, dog").is_err(),
        "not a suite question"
    );
    assert!(
        judge("Human: What is 99 + 1?\n\nAssistant:", "100").is_err(),
        "operands beyond the suite"
    );
    assert!(judge("Human: What is the capital of Atlantis?\n\nAssistant:", "x").is_err());
}

#[test]
fn rejected_answers_are_plausible() {
    for example in generate(Split::Train, 1200, 6) {
        let (chosen, rejected) = (example.chosen.trim(), example.rejected.trim());
        match example.family {
            Family::Addition => {
                let (c, r): (i64, i64) = (chosen.parse().unwrap(), rejected.parse().unwrap());
                assert_eq!((c - r).abs(), 1, "off by one");
            }
            Family::Sorting => {
                let mut words: Vec<&str> = rejected.split(", ").collect();
                words.sort_unstable();
                assert_eq!(words.join(", "), chosen, "same words, wrong order");
            }
            Family::Comparison | Family::Colour => {
                assert!(example.prompt.contains(rejected), "the other choice")
            }
            Family::Capital => {
                let (c, r): (Vec<&str>, Vec<&str>) = (
                    chosen.split(" and ").collect(),
                    rejected.split(" and ").collect(),
                );
                assert_eq!(r.len(), 2);
                assert_eq!(
                    (c[0] == r[0]) as usize + (c[1] == r[1]) as usize,
                    1,
                    "one capital swapped"
                );
                assert_ne!(r[0], r[1]);
            }
            Family::Reverse => {
                let mut c: Vec<&str> = chosen.split(' ').collect();
                let r: Vec<&str> = rejected.split(' ').collect();
                let i = (0..c.len()).find(|&i| c[i] != r[i]).unwrap();
                c.swap(i, i + 1);
                assert_eq!(c, r, "neighbours swapped");
            }
        }
    }
}

#[test]
fn written_files_read_back_as_paired_jsonl() {
    let dir = tempfile::tempdir().unwrap();
    write_jsonl(dir.path(), 60, 12, 9).unwrap();
    let train = read_dataset(
        dir.path().join("train.jsonl"),
        DataFormat::Paired,
        OnMalformed::Error,
    )
    .unwrap();
    let eval = read_dataset(
        dir.path().join("eval.jsonl"),
        DataFormat::Paired,
        OnMalformed::Error,
    )
    .unwrap();
    let expected: Vec<_> = generate(Split::Train, 60, 9)
        .iter()
        .map(|e| e.to_paired())
        .collect();
    assert_eq!(train.paired().unwrap(), expected);
    assert_eq!(eval.len(), 12);
    let first_line = std::fs::read_to_string(dir.path().join("train.jsonl")).unwrap();
    assert!(
        first_line.starts_with("{\"family\":\"addition\","),
        "{first_line}"
    );
}
