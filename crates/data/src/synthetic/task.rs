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

/// Every ordered selection of `k` distinct items.
pub(crate) fn arrangements<'a>(items: &[&'a str], k: usize) -> Vec<Vec<&'a str>> {
    let mut selections = vec![Vec::new()];
    for _ in 0..k {
        let mut longer = Vec::new();
        for prefix in &selections {
            for item in items.iter().filter(|item| !prefix.contains(*item)) {
                longer.push([prefix.as_slice(), &[*item]].concat());
            }
        }
        selections = longer;
    }
    selections
}

/// `k` distinct items of `items`, separated by `separator`, or None.
pub(crate) fn distinct_items<'s>(
    subject: &'s str,
    separator: &str,
    items: &[&str],
    k: usize,
) -> Option<Vec<&'s str>> {
    let parts: Vec<&str> = subject.split(separator).collect();
    let distinct = (1..parts.len()).all(|i| !parts[..i].contains(&parts[i]));
    (parts.len() == k && distinct && parts.iter().all(|p| items.contains(p))).then_some(parts)
}
