//! The task families of the synthetic suite.

use serde::{Deserialize, Serialize};

use super::addition::Addition;
use super::capital::Capital;
use super::colour::Colour;
use super::comparison::Comparison;
use super::reverse::REVERSE;
use super::sorting::SORTING;
use super::task::Task;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    Addition,
    Comparison,
    Capital,
    Sorting,
    Reverse,
    Colour,
}

impl Family {
    pub const ALL: [Family; 6] = [
        Self::Addition,
        Self::Comparison,
        Self::Capital,
        Self::Sorting,
        Self::Reverse,
        Self::Colour,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Addition => "addition",
            Self::Comparison => "comparison",
            Self::Capital => "capital",
            Self::Sorting => "sorting",
            Self::Reverse => "reverse",
            Self::Colour => "colour",
        }
    }

    pub(crate) fn task(self) -> &'static dyn Task {
        match self {
            Self::Addition => &Addition,
            Self::Comparison => &Comparison,
            Self::Capital => &Capital,
            Self::Sorting => &SORTING,
            Self::Reverse => &REVERSE,
            Self::Colour => &Colour,
        }
    }
}

impl std::fmt::Display for Family {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
