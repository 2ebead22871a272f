//! The two shapes a preference example can take.

use serde::{Deserialize, Serialize};

/// One prompt with a preferred and a dispreferred response (response texts only, no prompt).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairedExample {
    pub prompt: String,
    pub chosen: String,
    pub rejected: String,
}

/// One prompt with one response and a binary label (KTO-style feedback).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnpairedExample {
    pub prompt: String,
    pub completion: String,
    pub desirable: bool,
}

impl PairedExample {
    /// A pair implies two labelled examples: (x, y_w, desirable) and (x, y_l, undesirable).
    pub fn into_unpaired(self) -> [UnpairedExample; 2] {
        [
            UnpairedExample {
                prompt: self.prompt.clone(),
                completion: self.chosen,
                desirable: true,
            },
            UnpairedExample {
                prompt: self.prompt,
                completion: self.rejected,
                desirable: false,
            },
        ]
    }
}

/// Every pair becomes its desirable example followed by its undesirable one.
pub fn pairs_to_unpaired(pairs: impl IntoIterator<Item = PairedExample>) -> Vec<UnpairedExample> {
    pairs
        .into_iter()
        .flat_map(PairedExample::into_unpaired)
        .collect()
}
