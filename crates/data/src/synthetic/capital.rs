//! "What is the capital of France?" → "Paris"; the wrong answer is another capital of the table.

use rand_chacha::rand_core::RngCore;

use super::task::{other_than, Holdout, Task};

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
];

impl Task for Capital {
    fn templates(&self) -> &'static [&'static str] {
        &[
            "What is the capital of {}?",
            "Name the capital city of {}.",
            "Which city is the capital of {}?",
            "The capital of {} is which city?",
        ]
    }

    fn subjects(&self) -> Vec<String> {
        CAPITALS.iter().map(|(country, _)| country.to_string()).collect()
    }

    fn answer(&self, subject: &str) -> Option<String> {
        CAPITALS
            .iter()
            .find(|(country, _)| *country == subject)
            .map(|(_, capital)| capital.to_string())
    }

    fn wrong_answer(&self, subject: &str, rng: &mut dyn RngCore) -> String {
        let right = self.answer(subject).expect("a country of the table");
        let capitals: Vec<&str> = CAPITALS.iter().map(|(_, capital)| *capital).collect();
        other_than(&capitals, &right, rng).to_string()
    }

    fn holdout(&self) -> Holdout {
        Holdout::OneTemplatePerSubject
    }
}
