//! A dataset read from one file: its examples and the lines (or rows) that were skipped.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::conversational::ConversationalExample;
use crate::error::{DataError, Result};
use crate::example::{pairs_to_unpaired, PairedExample, UnpairedExample};
use crate::truncation::PromptKeep;

/// What a file holds (`[data] format`), read by [`crate::formats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DataFormat {
    /// `{prompt, chosen, rejected}`
    Paired,
    /// `{prompt, completion, label}`
    Unpaired,
    /// Raw Anthropic HH `{chosen, rejected}` dialogues.
    Hh,
    /// OpenAI summarize-from-feedback comparisons.
    Tldr,
}

impl DataFormat {
    pub const ALL: [DataFormat; 4] = [Self::Paired, Self::Unpaired, Self::Hh, Self::Tldr];

    pub fn name(self) -> &'static str {
        match self {
            Self::Paired => "paired",
            Self::Unpaired => "unpaired",
            Self::Hh => "hh",
            Self::Tldr => "tldr",
        }
    }

    /// Which end of an over-long prompt to keep: the latest turns of a dialogue (HALOs'
    /// default `keep_end`), but the start of a TL;DR post, where subreddit and title are.
    pub fn default_prompt_keep(self) -> PromptKeep {
        match self {
            Self::Tldr => PromptKeep::KeepStart,
            Self::Paired | Self::Unpaired | Self::Hh => PromptKeep::KeepEnd,
        }
    }
}

impl std::str::FromStr for DataFormat {
    type Err = DataError;

    fn from_str(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| {
                DataError::Invalid(format!(
                    "unknown data format {s:?} (expected paired, unpaired, hh or tldr)"
                ))
            })
    }
}

impl std::fmt::Display for DataFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

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
    pub fn append(&mut self, other: Examples) -> Result<()> {
        match (self, other) {
            (Examples::Paired(a), Examples::Paired(b)) => a.extend(b),
            (Examples::Unpaired(a), Examples::Unpaired(b)) => a.extend(b),
            (Examples::Conversational(a), Examples::Conversational(b)) => a.extend(b),
            (a, b) => {
                return Err(DataError::MixedRecords {
                    first: a.kind(),
                    second: b.kind(),
                })
            }
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
    pub fn into_unpaired(self) -> Result<Vec<UnpairedExample>> {
        match self.examples {
            Examples::Paired(pairs) => Ok(pairs_to_unpaired(pairs)),
            Examples::Unpaired(examples) => Ok(examples),
            Examples::Conversational(_) => Err(DataError::NeedsChatTemplate { path: self.path }),
        }
    }
}
