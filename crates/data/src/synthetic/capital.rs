//! "What are the capitals of France and Japan?" → "Paris and Tokyo"; the wrong answer
//! swaps one of the two capitals for another capital of the table.
//!
//! Asking for two countries at once makes eval (unseen pairs) need each fact on its own,
//! not a memorised question.

use rand_chacha::rand_core::RngCore;

use super::task::{other_than, Task};
use crate::stable_rng::below;

pub(crate) struct Capital;

const CAPITALS: &[(&str, &str)] = &[
    ("France", "Paris"),
    ("Germany", "Berlin"),
    ("Italy", "Rome"),
    ("Spain", "Madrid"),
    ("Portugal", "Lisbon"),
    ("Austria", "Vienna"),
    ("Greece", "Athens"),
    ("Poland", "Warsaw"),
    ("Norway", "Oslo"),
    ("Sweden", "Stockholm"),
    ("Finland", "Helsinki"),
    ("Ireland", "Dublin"),
    ("Egypt", "Cairo"),
    ("Kenya", "Nairobi"),
    ("Japan", "Tokyo"),
    ("China", "Beijing"),
    ("Peru", "Lima"),
    ("Chile", "Santiago"),
    ("Cuba", "Havana"),
    ("Canada", "Ottawa"),
    ("Mexico", "Mexico City"),
    ("Brazil", "Brasilia"),
    ("Argentina", "Buenos Aires"),
    ("India", "New Delhi"),
    ("Thailand", "Bangkok"),
    ("Vietnam", "Hanoi"),
    ("Turkey", "Ankara"),
    ("Morocco", "Rabat"),
    ("Ghana", "Accra"),
    ("Australia", "Canberra"),
];

fn capital_of(country: &str) -> Option<&'static str> {
    CAPITALS
        .iter()
        .find(|(c, _)| *c == country)
        .map(|(_, capital)| *capital)
}

/// The capitals of two different countries of the table.
fn capitals(subject: &str) -> Option<[&'static str; 2]> {
    let (a, b) = subject.split_once(" and ")?;
    (a != b).then_some([capital_of(a)?, capital_of(b)?])
}

impl Task for Capital {
    fn templates(&self) -> &'static [&'static str] {
        &[
            "What are the capitals of {}?",
            "Name the capitals of {}.",
            "Which cities are the capitals of {}?",
        ]
    }

    fn subjects(&self) -> Vec<String> {
        let countries = || CAPITALS.iter().map(|(country, _)| *country);
        countries()
            .flat_map(|a| {
                countries()
                    .filter(move |b| *b != a)
                    .map(move |b| format!("{a} and {b}"))
            })
            .collect()
    }

    fn answer(&self, subject: &str) -> Option<String> {
        capitals(subject).map(|pair| pair.join(" and "))
    }

    fn wrong_answer(&self, subject: &str, rng: &mut dyn RngCore) -> String {
        let mut pair = capitals(subject).expect("two countries of the table");
        let all: Vec<&str> = CAPITALS.iter().map(|(_, capital)| *capital).collect();
        let i = below(rng, 2);
        let others: Vec<&str> = all.into_iter().filter(|c| *c != pair[1 - i]).collect();
        pair[i] = other_than(&others, pair[i], rng);
        pair.join(" and ")
    }
}
