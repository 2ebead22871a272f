//! Readers for the supported preference formats, from any file kind the Hub serves
//! (JSON Lines, gzipped JSON Lines, JSON arrays, Parquet; see [`files`]).

mod columns;
pub mod error;
pub mod files;
mod hh;
mod paired;
mod paths;
mod read_records;
mod record;
mod tldr;
mod unpaired;

use std::path::Path;

use crate::error::Result;

pub use columns::ColumnMap;
pub use hh::{split_dialogues as split_hh_dialogues, ASSISTANT_TURN};
pub use paths::expand_paths;
pub use tldr::tldr_prompt;

use crate::chat_template::ChatTemplate;
pub use crate::dataset::DataFormat;
use crate::dataset::{Dataset, Examples, MalformedLine, OnMalformed};
use read_records::read_records;
use record::{FieldResult, Parsed, Record};

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
