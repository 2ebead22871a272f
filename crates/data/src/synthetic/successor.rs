//! "What comes after Monday?" → "Tuesday" (weekdays and months, cyclic); the wrong
//! answer is the one before or the one two steps ahead.

use rand_chacha::rand_core::RngCore;

use super::task::{Holdout, Task};
use crate::stable_rng::below;

pub(crate) struct Successor;

const CYCLES: &[&[&str]] = &[
    &["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"],
    &[
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ],
];

/// The item `offset` steps after `subject` in its cycle.
fn step(subject: &str, offset: usize) -> Option<&'static str> {
    CYCLES.iter().find_map(|cycle| {
        let i = cycle.iter().position(|item| *item == subject)?;
        Some(cycle[(i + offset) % cycle.len()])
    })
}

impl Task for Successor {
    fn templates(&self) -> &'static [&'static str] {
        &["What comes after {}?", "Which one follows {}?", "What is the next one after {}?"]
    }

    fn subjects(&self) -> Vec<String> {
        CYCLES.iter().flat_map(|cycle| cycle.iter().map(|s| s.to_string())).collect()
    }

    fn answer(&self, subject: &str) -> Option<String> {
        step(subject, 1).map(str::to_string)
    }

    fn wrong_answer(&self, subject: &str, rng: &mut dyn RngCore) -> String {
        let cycle_len = CYCLES
            .iter()
            .find(|cycle| cycle.contains(&subject))
            .expect("a weekday or month")
            .len();
        // One step back is cycle_len - 1 steps ahead.
        let offset = if below(rng, 2) == 0 { cycle_len - 1 } else { 2 };
        step(subject, offset).expect("a weekday or month").to_string()
    }

    fn holdout(&self) -> Holdout {
        Holdout::OneTemplatePerSubject
    }
}
