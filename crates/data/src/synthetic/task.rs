//! What every family of the synthetic suite provides.

use rand_chacha::rand_core::RngCore;

/// A family asks about *subjects* (an operand combination, a pair of countries, ...)
/// through a few question templates. Eval holds out whole subjects, so every family
/// needs a rule (or a combination of facts) that carries over to unseen subjects.
pub(crate) trait Task: Sync {
    /// Question templates with one `{}` slot for the subject.
    fn templates(&self) -> &'static [&'static str];

    /// Every subject the family can ask about.
    fn subjects(&self) -> Vec<String>;

    /// The one correct answer, or None when `subject` is not one of this family's subjects.
    fn answer(&self, subject: &str) -> Option<String>;

    /// A plausible but wrong answer (never equal to the correct one).
    fn wrong_answer(&self, subject: &str, rng: &mut dyn RngCore) -> String;
}

/// An element of `items` other than `avoid` (items must hold at least two distinct values).
pub(crate) fn other_than<'a>(items: &[&'a str], avoid: &str, rng: &mut dyn RngCore) -> &'a str {
    let candidates: Vec<&str> = items
        .iter()
        .copied()
        .filter(|item| *item != avoid)
        .collect();
    candidates[crate::stable_rng::below(rng, candidates.len())]
}
