//! Turns every record of a dataset file into an example.
//!
//! A record that is not valid UTF-8, not valid JSON, or not a valid example is an error
//! naming the file and its 1-based line (or row), or, with [`OnMalformed::Skip`], is
//! recorded as a [`MalformedLine`]. The first record decides whether the file is plain
//! text or conversational; a record of the other kind is malformed.

use std::path::Path;

use super::columns::ColumnMap;
use super::files::{for_each_record, RawRecord};
use super::record::{FieldResult, Parsed, Record};
use crate::conversational::ConversationalExample;
use crate::dataset::{MalformedLine, OnMalformed};
use crate::error::{DataError, FileKind, Result};

pub(crate) struct ReadRecords<T> {
    pub plain: Vec<T>,
    pub conversational: Vec<ConversationalExample>,
    pub skipped: Vec<MalformedLine>,
}

fn parse_record<T>(
    raw: RawRecord,
    columns: &ColumnMap,
    parse: &impl Fn(&Record) -> FieldResult<Parsed<T>>,
) -> FieldResult<Parsed<T>> {
    let value = raw.value?;
    let record = Record::root(&value, columns)?;
    parse(&record)
}

pub(crate) fn read_records<T>(
    path: &Path,
    on_malformed: OnMalformed,
    columns: &ColumnMap,
    parse: impl Fn(&Record) -> FieldResult<Parsed<T>>,
) -> Result<ReadRecords<T>> {
    let mut out = ReadRecords {
        plain: Vec::new(),
        conversational: Vec::new(),
        skipped: Vec::new(),
    };
    // Set by the first good record: are this file's records message lists?
    let mut conversational: Option<bool> = None;
    let kind = FileKind::of(path)?;
    for_each_record(path, |raw| {
        let position = raw.position;
        let parsed = parse_record(raw, columns, &parse).and_then(|parsed| {
            let is_conversational = matches!(parsed, Parsed::Conversational(_));
            match conversational {
                Some(expected) if expected != is_conversational => Err(if expected {
                    "plain text among conversational records (message lists)".to_string()
                } else {
                    "message lists (conversational format) among plain-text records".to_string()
                }),
                _ => {
                    conversational = Some(is_conversational);
                    Ok(parsed)
                }
            }
        });
        match parsed {
            Ok(Parsed::Plain(example)) => out.plain.push(example),
            Ok(Parsed::Conversational(example)) => out.conversational.push(example),
            Err(reason) => match on_malformed {
                OnMalformed::Error => {
                    return Err(DataError::Malformed {
                        path: path.to_path_buf(),
                        kind,
                        line: position,
                        reason,
                    })
                }
                OnMalformed::Skip => out.skipped.push(MalformedLine {
                    line: position,
                    reason,
                }),
            },
        }
        Ok(())
    })?;
    Ok(out)
}
