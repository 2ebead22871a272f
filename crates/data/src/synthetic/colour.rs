//! "What colour is a banana?" → "yellow"; the wrong answer is another colour of the table.

use rand_chacha::rand_core::RngCore;

use super::task::{other_than, Holdout, Task};

pub(crate) struct Colour;

const COLOURS: &[(&str, &str)] = &[
    ("a banana", "yellow"),
    ("a lemon", "yellow"),
    ("the sun", "yellow"),
    ("grass", "green"),
    ("a frog", "green"),
    ("an emerald", "green"),
    ("the sky", "blue"),
    ("the sea", "blue"),
    ("a sapphire", "blue"),
    ("snow", "white"),
    ("milk", "white"),
    ("a cloud", "white"),
    ("coal", "black"),
    ("a crow", "black"),
    ("a tomato", "red"),
    ("a ruby", "red"),
    ("a strawberry", "red"),
    ("a carrot", "orange"),
    ("a pumpkin", "orange"),
    ("chocolate", "brown"),
];

const PALETTE: &[&str] = &["yellow", "green", "blue", "white", "black", "red", "orange", "brown"];

impl Task for Colour {
    fn templates(&self) -> &'static [&'static str] {
        &["What colour is {}?", "What is the colour of {}?", "Name the colour of {}."]
    }

    fn subjects(&self) -> Vec<String> {
        COLOURS.iter().map(|(object, _)| object.to_string()).collect()
    }

    fn answer(&self, subject: &str) -> Option<String> {
        COLOURS
            .iter()
            .find(|(object, _)| *object == subject)
            .map(|(_, colour)| colour.to_string())
    }

    fn wrong_answer(&self, subject: &str, rng: &mut dyn RngCore) -> String {
        let right = self.answer(subject).expect("an object of the table");
        other_than(PALETTE, &right, rng).to_string()
    }

    fn holdout(&self) -> Holdout {
        Holdout::OneTemplatePerSubject
    }
}
