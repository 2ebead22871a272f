//! Readers for the supported preference file formats, all streaming JSONL.

mod hh;
mod lines;
mod paired;
mod record;
mod tldr;
mod unpaired;

use std::path::Path;

use anyhow::Result;
use serde::{Deserialize, Serialize};

pub use hh::{split_dialogues as split_hh_dialogues, ASSISTANT_TURN};
pub use tldr::tldr_prompt;

use crate::chat_template::ChatTemplate;
use crate::dataset::{Dataset, Examples, MalformedLine, OnMalformed};
use crate::truncation::PromptKeep;
use lines::read_records;
use record::{FieldResult, Record};

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
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| {
                anyhow::anyhow!("unknown data format {s:?} (expected paired, unpaired, hh or tldr)")
            })
    }
}

impl std::fmt::Display for DataFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Reads a whole JSONL file of the given format (plain text only).
pub fn read_dataset(
    path: impl AsRef<Path>,
    format: DataFormat,
    on_malformed: OnMalformed,
) -> Result<Dataset> {
    read_dataset_with(path, format, on_malformed, None)
}

/// As [`read_dataset`]; paired and unpaired records may also be conversational (lists
/// of messages), rendered with `chat`.
pub fn read_dataset_with(
    path: impl AsRef<Path>,
    format: DataFormat,
    on_malformed: OnMalformed,
    chat: Option<&ChatTemplate>,
) -> Result<Dataset> {
    let path = path.as_ref();
    let (examples, skipped) = match format {
        DataFormat::Paired => read(
            path,
            on_malformed,
            |r| paired::parse(r, chat),
            Examples::Paired,
        )?,
        DataFormat::Unpaired => read(
            path,
            on_malformed,
            |r| unpaired::parse(r, chat),
            Examples::Unpaired,
        )?,
        DataFormat::Hh => read(path, on_malformed, hh::parse, Examples::Paired)?,
        DataFormat::Tldr => read(path, on_malformed, tldr::parse, Examples::Paired)?,
    };
    Ok(Dataset {
        path: path.to_path_buf(),
        format,
        examples,
        skipped,
    })
}

fn read<T>(
    path: &Path,
    on_malformed: OnMalformed,
    parse: impl Fn(&Record) -> FieldResult<T>,
    wrap: fn(Vec<T>) -> Examples,
) -> Result<(Examples, Vec<MalformedLine>)> {
    let read = read_records(path, on_malformed, parse)?;
    Ok((wrap(read.examples), read.skipped))
}
