//! Streams a JSONL file line by line and turns each record into an example.
//!
//! Blank lines are ignored. A line that is not valid UTF-8, not valid JSON, or not a
//! valid record is an error naming the file and its 1-based line number, or, with
//! [`OnMalformed::Skip`], is recorded as a [`MalformedLine`].

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use serde_json::Value;

use super::record::{FieldResult, Record};
use crate::dataset::{MalformedLine, OnMalformed};
use crate::error::DataError;

pub(crate) struct ReadRecords<T> {
    pub examples: Vec<T>,
    pub skipped: Vec<MalformedLine>,
}

fn parse_line<T>(
    bytes: &[u8],
    parse: &impl Fn(&Record) -> FieldResult<T>,
) -> Option<FieldResult<T>> {
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => return Some(Err(format!("not valid UTF-8 ({e})"))),
    };
    if text.trim().is_empty() {
        return None;
    }
    let value: Value = match serde_json::from_str(text) {
        Ok(value) => value,
        Err(e) => return Some(Err(format!("invalid JSON: {e}"))),
    };
    Some(Record::root(&value).and_then(|record| parse(&record)))
}

pub(crate) fn read_records<T>(
    path: &Path,
    on_malformed: OnMalformed,
    parse: impl Fn(&Record) -> FieldResult<T>,
) -> Result<ReadRecords<T>, DataError> {
    let file = File::open(path).map_err(|source| DataError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    let mut reader = BufReader::new(file);
    let mut out = ReadRecords {
        examples: Vec::new(),
        skipped: Vec::new(),
    };
    let mut buf = Vec::new();
    let mut line = 0usize;
    loop {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .map_err(|source| DataError::Read {
                path: path.to_path_buf(),
                line,
                source,
            })?;
        if n == 0 {
            break;
        }
        line += 1;
        let content = buf.strip_suffix(b"\n").unwrap_or(&buf);
        let content = content.strip_suffix(b"\r").unwrap_or(content);
        match parse_line(content, &parse) {
            None => {}
            Some(Ok(example)) => out.examples.push(example),
            Some(Err(reason)) => match on_malformed {
                OnMalformed::Error => {
                    return Err(DataError::Malformed {
                        path: path.to_path_buf(),
                        line,
                        reason,
                    })
                }
                OnMalformed::Skip => out.skipped.push(MalformedLine { line, reason }),
            },
        }
    }
    Ok(out)
}
