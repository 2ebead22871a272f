//! A dataset read from one file: its examples and the lines (or rows) that were skipped.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::conversational::ConversationalExample;
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
    /// 1-based line number in the file (row number for JSON arrays and Parquet).
    pub line: usize,
    pub reason: String,
}

/// The examples of a file; paired formats give pairs, the unpaired format labelled
/// examples, and files of message lists conversational records (for a chat template).
#[derive(Debug, Clone, PartialEq)]
pub enum Examples {
    Paired(Vec<PairedExample>),
    Unpaired(Vec<UnpairedExample>),
    Conversational(Vec<ConversationalExample>),
}

impl Examples {
    pub fn len(&self) -> usize {
        match self {
            Examples::Paired(pairs) => pairs.len(),
            Examples::Unpaired(examples) => examples.len(),
            Examples::Conversational(records) => records.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn kind(&self) -> &'static str {
        match self {
            Examples::Paired(_) => "paired text",
            Examples::Unpaired(_) => "unpaired text",
            Examples::Conversational(_) => "conversational",
        }
    }

    /// Appends the examples of another file, which must be of the same kind.
    pub fn append(&mut self, other: Examples) -> anyhow::Result<()> {
        match (self, other) {
            (Examples::Paired(a), Examples::Paired(b)) => a.extend(b),
            (Examples::Unpaired(a), Examples::Unpaired(b)) => a.extend(b),
            (Examples::Conversational(a), Examples::Conversational(b)) => a.extend(b),
            (a, b) => anyhow::bail!("cannot mix {} and {} records", a.kind(), b.kind()),
        }
        Ok(())
    }
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
        self.examples.len()
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
            Examples::Unpaired(_) | Examples::Conversational(_) => None,
        }
    }

    pub fn unpaired(&self) -> Option<&[UnpairedExample]> {
        match &self.examples {
            Examples::Unpaired(examples) => Some(examples),
            Examples::Paired(_) | Examples::Conversational(_) => None,
        }
    }

    /// Labelled examples for unpaired losses; pairs are split into a desirable and an
    /// undesirable example. Conversational records need rendering first.
    pub fn into_unpaired(self) -> anyhow::Result<Vec<UnpairedExample>> {
        match self.examples {
            Examples::Paired(pairs) => Ok(pairs_to_unpaired(pairs)),
            Examples::Unpaired(examples) => Ok(examples),
            Examples::Conversational(_) => anyhow::bail!(
                "{}: conversational records must be rendered with a chat template first",
                self.path.display()
            ),
        }
    }
}
