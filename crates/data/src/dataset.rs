//! A dataset read from one file: its examples and the lines that were skipped.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::example::{pairs_to_unpaired, PairedExample, UnpairedExample};
use crate::formats::DataFormat;

/// What to do with a line that cannot be read as an example.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnMalformed {
    /// Stop with an error naming the file, line and field.
    #[default]
    Error,
    /// Skip the line, but record it in [`Dataset::skipped`] so it can be reported.
    Skip,
}

/// A line that was skipped under [`OnMalformed::Skip`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MalformedLine {
    /// 1-based line number in the file.
    pub line: usize,
    pub reason: String,
}

/// The examples of a file; paired formats give pairs, the unpaired format labelled examples.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Examples {
    Paired(Vec<PairedExample>),
    Unpaired(Vec<UnpairedExample>),
}

#[derive(Debug, Clone)]
pub struct Dataset {
    pub path: PathBuf,
    pub format: DataFormat,
    pub examples: Examples,
    pub skipped: Vec<MalformedLine>,
}

impl Dataset {
    pub fn len(&self) -> usize {
        match &self.examples {
            Examples::Paired(pairs) => pairs.len(),
            Examples::Unpaired(examples) => examples.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn skipped_count(&self) -> usize {
        self.skipped.len()
    }

    pub fn paired(&self) -> Option<&[PairedExample]> {
        match &self.examples {
            Examples::Paired(pairs) => Some(pairs),
            Examples::Unpaired(_) => None,
        }
    }

    pub fn unpaired(&self) -> Option<&[UnpairedExample]> {
        match &self.examples {
            Examples::Unpaired(examples) => Some(examples),
            Examples::Paired(_) => None,
        }
    }

    /// Labelled examples for unpaired losses; pairs are split into a desirable and an undesirable example.
    pub fn into_unpaired(self) -> Vec<UnpairedExample> {
        match self.examples {
            Examples::Paired(pairs) => pairs_to_unpaired(pairs),
            Examples::Unpaired(examples) => examples,
        }
    }
}
