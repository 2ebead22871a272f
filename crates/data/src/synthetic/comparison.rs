//! "Which is larger: 37 or 52?" → "52"; the wrong answer is the smaller number.

use rand_chacha::rand_core::RngCore;

use super::task::Task;

pub(crate) struct Comparison;

const MAX_NUMBER: u32 = 60;

fn numbers(subject: &str) -> Option<(u32, u32)> {
    let (a, b) = subject.split_once(" or ")?;
    let (a, b): (u32, u32) = (a.parse().ok()?, b.parse().ok()?);
    (a != b && (1..=MAX_NUMBER).contains(&a) && (1..=MAX_NUMBER).contains(&b)).then_some((a, b))
}

impl Task for Comparison {
    fn templates(&self) -> &'static [&'static str] {
        &[
            "Which is larger: {}?",
            "Which number is bigger, {}?",
            "Pick the larger number: {}.",
        ]
    }

    fn subjects(&self) -> Vec<String> {
        (1..=MAX_NUMBER)
            .flat_map(|a| {
                (1..=MAX_NUMBER)
                    .filter(move |&b| b != a)
                    .map(move |b| format!("{a} or {b}"))
            })
            .collect()
    }

    fn answer(&self, subject: &str) -> Option<String> {
        numbers(subject).map(|(a, b)| a.max(b).to_string())
    }

    fn wrong_answer(&self, subject: &str, _rng: &mut dyn RngCore) -> String {
        let (a, b) = numbers(subject).expect("a comparison subject");
        a.min(b).to_string()
    }
}
