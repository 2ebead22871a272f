//! Readers for the supported preference formats, from any file kind the Hub serves
//! (JSON Lines, gzipped JSON Lines, JSON arrays, Parquet; see [`files`]).

mod columns;
pub mod files;
mod hh;
mod paired;
mod paths;
mod read_records;
mod record;
mod tldr;
mod unpaired;

use std::path::Path;

use anyhow::Result;
use serde::{Deserialize, Serialize};

pub use columns::ColumnMap;
pub use hh::{split_dialogues as split_hh_dialogues, ASSISTANT_TURN};
pub use paths::expand_paths;
pub use tldr::tldr_prompt;

use crate::chat_template::ChatTemplate;
use crate::dataset::{Dataset, Examples, MalformedLine, OnMalformed};
use crate::truncation::PromptKeep;
use read_records::read_records;
use record::{FieldResult, Parsed, Record};

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

/// How a file is read: what to do with malformed records, where fields live, and the
/// chat template that renders conversational records (without one they are kept as
/// messages and refused by name where text is needed).
#[derive(Clone, Copy)]
pub struct ReadOptions<'a> {
    pub on_malformed: OnMalformed,
    pub columns: &'a ColumnMap,
    pub chat: Option<&'a ChatTemplate>,
}

/// Reads a whole file of the given format, its fields under their own names.
pub fn read_dataset(
    path: impl AsRef<Path>,
    format: DataFormat,
    on_malformed: OnMalformed,
) -> Result<Dataset> {
    read_dataset_with(
        path,
        format,
        &ReadOptions {
            on_malformed,
            columns: &ColumnMap::default(),
            chat: None,
        },
    )
}

/// Reads a whole file of the given format with [`ReadOptions`].
pub fn read_dataset_with(
    path: impl AsRef<Path>,
    format: DataFormat,
    options: &ReadOptions,
) -> Result<Dataset> {
    let path = path.as_ref();
    let chat = options.chat;
    let (examples, skipped) = match format {
        DataFormat::Paired => read(path, options, |r| paired::parse(r, chat), Examples::Paired)?,
        DataFormat::Unpaired => read(
            path,
            options,
            |r| unpaired::parse(r, chat),
            Examples::Unpaired,
        )?,
        DataFormat::Hh => read(path, options, plain(hh::parse), Examples::Paired)?,
        DataFormat::Tldr => read(path, options, plain(tldr::parse), Examples::Paired)?,
    };
    Ok(Dataset {
        path: path.to_path_buf(),
        format,
        examples,
        skipped,
    })
}

/// A parser of a text-only format.
fn plain<T>(
    parse: impl Fn(&Record) -> FieldResult<T>,
) -> impl Fn(&Record) -> FieldResult<Parsed<T>> {
    move |record| parse(record).map(Parsed::Plain)
}

fn read<T>(
    path: &Path,
    options: &ReadOptions,
    parse: impl Fn(&Record) -> FieldResult<Parsed<T>>,
    wrap: fn(Vec<T>) -> Examples,
) -> Result<(Examples, Vec<MalformedLine>)> {
    let read = read_records(path, options.on_malformed, options.columns, parse)?;
    let examples = if read.conversational.is_empty() {
        wrap(read.plain)
    } else {
        Examples::Conversational(read.conversational)
    };
    Ok((examples, read.skipped))
}
