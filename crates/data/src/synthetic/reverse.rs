//! "Reverse the letters: c a t s" → "s t a c"; the wrong answer is the reversal with two
//! neighbouring letters swapped (wrong in one place).
//!
//! Letters are spaced so each one is its own token: the task is the copying rule, not
//! spelling hidden inside BPE tokens.

use rand_chacha::rand_core::RngCore;

use super::task::{arrangements, distinct_items, Task};
use crate::stable_rng::below;

pub(crate) struct Reverse;

const LETTERS: &[&str] = &["a", "b", "c", "d", "e", "f", "g", "h", "k", "m"];
const COUNT: usize = 4;
const SEPARATOR: &str = " ";

fn reversed(subject: &str) -> Option<Vec<&str>> {
    let mut letters = distinct_items(subject, SEPARATOR, LETTERS, COUNT)?;
    letters.reverse();
    Some(letters)
}

impl Task for Reverse {
    fn templates(&self) -> &'static [&'static str] {
        &[
            "Reverse the letters: {}",
            "Write backwards: {}",
            "Spell in reverse order: {}",
        ]
    }

    fn subjects(&self) -> Vec<String> {
        arrangements(LETTERS, COUNT)
            .iter()
            .map(|letters| letters.join(SEPARATOR))
            .collect()
    }

    fn answer(&self, subject: &str) -> Option<String> {
        reversed(subject).map(|letters| letters.join(SEPARATOR))
    }

    fn wrong_answer(&self, subject: &str, rng: &mut dyn RngCore) -> String {
        let mut letters = reversed(subject).expect("a reverse subject");
        let i = below(rng, COUNT - 1);
        letters.swap(i, i + 1);
        letters.join(SEPARATOR)
    }
}
