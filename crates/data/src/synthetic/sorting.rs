//! "Sort alphabetically: dog, cat, bee, owl" → "bee, cat, dog, owl"; the wrong answer is
//! the sorted list with two neighbours swapped (wrong in one place).

use rand_chacha::rand_core::RngCore;

use super::task::{arrangements, distinct_items, Task};
use crate::stable_rng::below;

pub(crate) struct Sorting;

const WORDS: &[&str] = &[
    "ant", "bee", "cat", "dog", "eel", "fox", "gnu", "hen", "owl", "yak",
];
const COUNT: usize = 4;
const SEPARATOR: &str = ", ";

fn sorted(subject: &str) -> Option<Vec<&str>> {
    let mut words = distinct_items(subject, SEPARATOR, WORDS, COUNT)?;
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
        arrangements(WORDS, COUNT)
            .iter()
            .map(|words| words.join(SEPARATOR))
            .collect()
    }

    fn answer(&self, subject: &str) -> Option<String> {
        sorted(subject).map(|words| words.join(SEPARATOR))
    }

    fn wrong_answer(&self, subject: &str, rng: &mut dyn RngCore) -> String {
        let mut words = sorted(subject).expect("a sorting subject");
        let i = below(rng, COUNT - 1);
        words.swap(i, i + 1);
        words.join(SEPARATOR)
    }
}
