//! Families whose subject is a list of distinct items and whose answer is the same items
//! in a rule-given order (sorting, reversal). The wrong answer is the right list with two
//! neighbours swapped: wrong in exactly one place.

use rand_chacha::rand_core::RngCore;

use super::task::{arrangements, distinct_items, Task};
use crate::stable_rng::below;

pub(crate) struct Rearrangement {
    pub items: &'static [&'static str],
    /// How many distinct items each subject lists.
    pub count: usize,
    pub separator: &'static str,
    pub templates: &'static [&'static str],
    /// Puts a subject's items in the answer's order.
    pub rearrange: fn(&mut Vec<&str>),
}

impl Rearrangement {
    fn ordered<'s>(&self, subject: &'s str) -> Option<Vec<&'s str>> {
        let mut items = distinct_items(subject, self.separator, self.items, self.count)?;
        (self.rearrange)(&mut items);
        Some(items)
    }
}

impl Task for Rearrangement {
    fn templates(&self) -> &'static [&'static str] {
        self.templates
    }

    fn subjects(&self) -> Vec<String> {
        arrangements(self.items, self.count)
            .iter()
            .map(|items| items.join(self.separator))
            .collect()
    }

    fn answer(&self, subject: &str) -> Option<String> {
        self.ordered(subject)
            .map(|items| items.join(self.separator))
    }

    fn wrong_answer(&self, subject: &str, rng: &mut dyn RngCore) -> String {
        let mut items = self.ordered(subject).expect("a subject of this family");
        let i = below(rng, self.count - 1);
        items.swap(i, i + 1);
        items.join(self.separator)
    }
}
