//! "What is 12 + 7?" → "19"; the wrong answer is off by one.

use rand_chacha::rand_core::RngCore;

use super::task::Task;
use crate::stable_rng::below;

pub(crate) struct Addition;

const MAX_OPERAND: u32 = 20;

fn operands(subject: &str) -> Option<(u32, u32)> {
    let (a, b) = subject.split_once(" + ")?;
    let (a, b) = (a.parse().ok()?, b.parse().ok()?);
    (a <= MAX_OPERAND && b <= MAX_OPERAND).then_some((a, b))
}

impl Task for Addition {
    fn templates(&self) -> &'static [&'static str] {
        &["What is {}?", "Calculate {}.", "What does {} equal?"]
    }

    fn subjects(&self) -> Vec<String> {
        (0..=MAX_OPERAND)
            .flat_map(|a| (0..=MAX_OPERAND).map(move |b| format!("{a} + {b}")))
            .collect()
    }

    fn answer(&self, subject: &str) -> Option<String> {
        operands(subject).map(|(a, b)| (a + b).to_string())
    }

    fn wrong_answer(&self, subject: &str, rng: &mut dyn RngCore) -> String {
        let (a, b) = operands(subject).expect("an addition subject");
        let sum = a + b;
        let wrong = if sum == 0 || below(rng, 2) == 0 {
            sum + 1
        } else {
            sum - 1
        };
        wrong.to_string()
    }
}
