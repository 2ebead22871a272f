//! What every family of the synthetic suite provides.

use rand_chacha::rand_core::RngCore;

/// How a family's prompts are split between train and eval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Holdout {
    /// A fifth of the subjects (operand combinations) appear only in eval, under every
    /// template: eval asks for the rule applied to unseen inputs.
    Subjects,
    /// Every subject (a fact) keeps one of its phrasings for eval only: eval asks a
    /// known fact in a phrasing never seen with it.
    OneTemplatePerSubject,
}

pub(crate) trait Task: Sync {
    /// Question templates with one `{}` slot for the subject.
    fn templates(&self) -> &'static [&'static str];

    /// Every subject the family can ask about.
    fn subjects(&self) -> Vec<String>;

    /// The one correct answer, or None when `subject` is not one of this family's subjects.
    fn answer(&self, subject: &str) -> Option<String>;

    /// A plausible but wrong answer (never equal to the correct one).
    fn wrong_answer(&self, subject: &str, rng: &mut dyn RngCore) -> String;

    fn holdout(&self) -> Holdout;
}

/// An element of `items` other than `avoid` (items must hold at least two distinct values).
pub(crate) fn other_than<'a>(items: &[&'a str], avoid: &str, rng: &mut dyn RngCore) -> &'a str {
    let candidates: Vec<&str> = items.iter().copied().filter(|item| *item != avoid).collect();
    candidates[crate::stable_rng::below(rng, candidates.len())]
}
