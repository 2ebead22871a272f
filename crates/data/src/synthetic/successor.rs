//! "What comes 2 after Monday?" → "Wednesday" (weekdays and months, cyclic, 1 to 5 steps);
//! the wrong answer is one step short or one step too far.
//!
//! Eval asks unseen (item, steps) combinations, so it needs the order and the counting.

use rand_chacha::rand_core::RngCore;

use super::task::Task;
use crate::stable_rng::below;

pub(crate) struct Successor;

const MAX_STEPS: usize = 5;

const CYCLES: &[&[&str]] = &[
    &[
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
    ],
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

/// (cycle, index of the item, steps) for "{steps} after {item}".
fn parse(subject: &str) -> Option<(&'static [&'static str], usize, usize)> {
    let (steps, item) = subject.split_once(" after ")?;
    let steps: usize = steps.parse().ok()?;
    if !(1..=MAX_STEPS).contains(&steps) {
        return None;
    }
    CYCLES.iter().find_map(|cycle| {
        let i = cycle.iter().position(|x| *x == item)?;
        Some((*cycle, i, steps))
    })
}

impl Task for Successor {
    fn templates(&self) -> &'static [&'static str] {
        &[
            "What comes {}?",
            "Which one comes {}?",
            "Name the one that comes {}.",
        ]
    }

    fn subjects(&self) -> Vec<String> {
        CYCLES
            .iter()
            .flat_map(|cycle| cycle.iter())
            .flat_map(|item| (1..=MAX_STEPS).map(move |steps| format!("{steps} after {item}")))
            .collect()
    }

    fn answer(&self, subject: &str) -> Option<String> {
        let (cycle, i, steps) = parse(subject)?;
        Some(cycle[(i + steps) % cycle.len()].to_string())
    }

    fn wrong_answer(&self, subject: &str, rng: &mut dyn RngCore) -> String {
        let (cycle, i, steps) = parse(subject).expect("a successor subject");
        let wrong_steps = if below(rng, 2) == 0 {
            steps - 1
        } else {
            steps + 1
        };
        cycle[(i + wrong_steps) % cycle.len()].to_string()
    }
}
