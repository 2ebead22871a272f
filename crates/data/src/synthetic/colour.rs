//! "Which is yellow: a banana or the sky?" → "a banana"; the wrong answer is the other object.
//!
//! Eval asks about unseen pairs, so it needs the colour of each object on its own.

use rand_chacha::rand_core::RngCore;

use super::task::Task;

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

fn colour_of(object: &str) -> Option<&'static str> {
    COLOURS
        .iter()
        .find(|(o, _)| *o == object)
        .map(|(_, colour)| *colour)
}

/// (right object, wrong object) for "colour: first or second", where exactly one has the colour.
fn choice(subject: &str) -> Option<(&str, &str)> {
    let (colour, objects) = subject.split_once(": ")?;
    let (first, second) = objects.split_once(" or ")?;
    match (colour_of(first)? == colour, colour_of(second)? == colour) {
        (true, false) => Some((first, second)),
        (false, true) => Some((second, first)),
        _ => None,
    }
}

impl Task for Colour {
    fn templates(&self) -> &'static [&'static str] {
        &[
            "Which is {}?",
            "Which one is {}?",
            "Pick the one that is {}.",
        ]
    }

    /// Every ordered pair of differently coloured objects, asking for either one's colour.
    fn subjects(&self) -> Vec<String> {
        let mut subjects = Vec::new();
        for (first, first_colour) in COLOURS {
            for (second, second_colour) in COLOURS.iter().filter(|(_, c)| c != first_colour) {
                for colour in [first_colour, second_colour] {
                    subjects.push(format!("{colour}: {first} or {second}"));
                }
            }
        }
        subjects
    }

    fn answer(&self, subject: &str) -> Option<String> {
        choice(subject).map(|(right, _)| right.to_string())
    }

    fn wrong_answer(&self, subject: &str, _rng: &mut dyn RngCore) -> String {
        choice(subject).expect("a colour question").1.to_string()
    }
}
