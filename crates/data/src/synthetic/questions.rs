//! Every question of the suite and its fixed train/eval split.
//!
//! The split depends only on a hash of the family and subject, never on the seed, so the
//! eval prompts are the same in every run and never appear in training.

use serde::{Deserialize, Serialize};

use super::family::Family;
use super::task::Holdout;
use crate::stable_rng::fnv1a;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    Train,
    Eval,
}

/// One in this many subjects of a [`Holdout::Subjects`] family is held out.
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

fn split_of(family: Family, subject: &str, template_index: usize) -> Split {
    let task = family.task();
    let hash = fnv1a(format!("{}/{subject}", family.name()).as_bytes());
    let held_out = match task.holdout() {
        Holdout::Subjects => hash % HELD_OUT_ONE_IN == 0,
        Holdout::OneTemplatePerSubject => hash % task.templates().len() as u64 == template_index as u64,
    };
    if held_out {
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
        .flat_map(|subject| {
            task.templates()
                .iter()
                .enumerate()
                .filter(|(i, _)| split_of(family, &subject, *i) == split)
                .map(|(_, template)| Question {
                    family,
                    subject: subject.clone(),
                    template,
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// How many distinct prompts a family has in a split.
pub fn question_count(family: Family, split: Split) -> usize {
    questions(family, split).len()
}
