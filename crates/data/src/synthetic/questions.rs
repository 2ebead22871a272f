//! Every question of the suite and its fixed train/eval split.
//!
//! The split depends only on a hash of the family and subject, never on the seed, so the
//! eval prompts are the same in every run and never appear in training.

use serde::{Deserialize, Serialize};

use super::family::Family;
use crate::stable_rng::fnv1a;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    Train,
    Eval,
}

/// One in this many subjects is held out for eval.
const HELD_OUT_ONE_IN: u64 = 5;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Question {
    pub family: Family,
    pub subject: String,
    pub template: &'static str,
}

impl Question {
    pub fn text(&self) -> String {
        self.template.replacen("{}", &self.subject, 1)
    }
}

/// A subject is held out under all of its templates, so eval needs the family's rule
/// applied to inputs never seen in training, not a rephrasing of a seen question.
fn split_of(family: Family, subject: &str) -> Split {
    if fnv1a(format!("{}/{subject}", family.name()).as_bytes()) % HELD_OUT_ONE_IN == 0 {
        Split::Eval
    } else {
        Split::Train
    }
}

/// The questions of one family in one split, in a fixed order.
pub(crate) fn questions(family: Family, split: Split) -> Vec<Question> {
    let task = family.task();
    task.subjects()
        .into_iter()
        .filter(|subject| split_of(family, subject) == split)
        .flat_map(|subject| {
            task.templates().iter().map(move |template| Question {
                family,
                subject: subject.clone(),
                template,
            })
        })
        .collect()
}

/// How many distinct prompts a family has in a split.
pub fn question_count(family: Family, split: Split) -> usize {
    questions(family, split).len()
}
