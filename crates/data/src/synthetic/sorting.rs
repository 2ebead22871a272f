//! "Sort alphabetically: dog, cat, bee" → "bee, cat, dog"; the wrong answer is the
//! sorted list with one adjacent pair swapped.

use rand_chacha::rand_core::RngCore;

use super::task::Task;
use crate::stable_rng::below;

pub(crate) struct Sorting;

const WORDS: &[&str] = &[
    "ant", "bee", "cat", "dog", "eel", "fox", "gnu", "hen", "owl", "pig", "rat", "yak",
];

/// Three distinct words of the list.
fn words(subject: &str) -> Option<Vec<&str>> {
    let words: Vec<&str> = subject.split(", ").collect();
    let distinct =
        words.len() == 3 && words[0] != words[1] && words[1] != words[2] && words[0] != words[2];
    (distinct && words.iter().all(|w| WORDS.contains(w))).then_some(words)
}

fn sorted(subject: &str) -> Option<Vec<&str>> {
    let mut words = words(subject)?;
    words.sort_unstable();
    Some(words)
}

impl Task for Sorting {
    fn templates(&self) -> &'static [&'static str] {
        &[
            "Sort alphabetically: {}",
            "Put in alphabetical order: {}",
            "Order these words from A to Z: {}",
        ]
    }

    fn subjects(&self) -> Vec<String> {
        let mut subjects = Vec::new();
        for a in WORDS {
            for b in WORDS.iter().filter(|b| *b != a) {
                for c in WORDS.iter().filter(|c| *c != a && *c != b) {
                    subjects.push(format!("{a}, {b}, {c}"));
                }
            }
        }
        subjects
    }

    fn answer(&self, subject: &str) -> Option<String> {
        sorted(subject).map(|words| words.join(", "))
    }

    fn wrong_answer(&self, subject: &str, rng: &mut dyn RngCore) -> String {
        let mut words = sorted(subject).expect("a sorting subject");
        let i = below(rng, 2);
        words.swap(i, i + 1);
        words.join(", ")
    }
}
