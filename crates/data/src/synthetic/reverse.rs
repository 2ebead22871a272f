//! "Reverse the letters: c a t s" → "s t a c".
//!
//! Letters are spaced so each one is its own token: the task is the copying rule, not
//! spelling hidden inside BPE tokens.

use super::rearrangement::Rearrangement;

pub(crate) const REVERSE: Rearrangement = Rearrangement {
    items: &["a", "b", "c", "d", "e", "f", "g", "h", "k", "m"],
    count: 4,
    separator: " ",
    templates: &[
        "Reverse the letters: {}",
        "Write backwards: {}",
        "Spell in reverse order: {}",
    ],
    rearrange: |letters| letters.reverse(),
};
