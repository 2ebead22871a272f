//! "Reverse the letters: c a t" → "t a c"; the wrong answer is the reversal with two
//! neighbouring letters swapped (wrong in one place).
//!
//! Letters are spaced so each one is its own token: the task is the copying rule, not
//! spelling hidden inside BPE tokens.

use rand_chacha::rand_core::RngCore;

use super::task::Task;
use crate::stable_rng::below;

pub(crate) struct Reverse;

const LETTERS: &[char] = &['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'k', 'm', 'p', 's'];
const LENGTH: usize = 3;

/// The letters of a subject: LENGTH distinct letters of the alphabet, space-separated.
fn letters(subject: &str) -> Option<Vec<char>> {
    let letters: Vec<char> = subject
        .split(' ')
        .map(|s| {
            let mut chars = s.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) if LETTERS.contains(&c) => Some(c),
                _ => None,
            }
        })
        .collect::<Option<_>>()?;
    let distinct = (1..letters.len()).all(|i| !letters[..i].contains(&letters[i]));
    (letters.len() == LENGTH && distinct).then_some(letters)
}

fn spaced(letters: &[char]) -> String {
    letters
        .iter()
        .map(char::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

fn reversed(subject: &str) -> Option<Vec<char>> {
    let mut letters = letters(subject)?;
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
        let mut subjects = Vec::new();
        for &a in LETTERS {
            for &b in LETTERS.iter().filter(|&&b| b != a) {
                for &c in LETTERS.iter().filter(|&&c| c != a && c != b) {
                    subjects.push(spaced(&[a, b, c]));
                }
            }
        }
        subjects
    }

    fn answer(&self, subject: &str) -> Option<String> {
        reversed(subject).map(|letters| spaced(&letters))
    }

    fn wrong_answer(&self, subject: &str, rng: &mut dyn RngCore) -> String {
        let mut letters = reversed(subject).expect("a reverse subject");
        let i = below(rng, LENGTH - 1);
        letters.swap(i, i + 1);
        spaced(&letters)
    }
}
