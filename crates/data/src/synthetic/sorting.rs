//! "Sort alphabetically: dog, cat, bee, owl" → "bee, cat, dog, owl".

use super::rearrangement::Rearrangement;

pub(crate) const SORTING: Rearrangement = Rearrangement {
    items: &[
        "ant", "bee", "cat", "dog", "eel", "fox", "gnu", "hen", "owl", "yak",
    ],
    count: 4,
    separator: ", ",
    templates: &[
        "Sort alphabetically: {}",
        "Put in alphabetical order: {}",
        "Order these words from A to Z: {}",
    ],
    rearrange: |words| words.sort_unstable(),
};
