//! The records of one dataset file, in the forms the Hugging Face Hub serves datasets:
//! JSON Lines (`.jsonl`, gzipped `.jsonl.gz`), JSON (`.json`: an array of records, or
//! JSON Lines under that name, as `datasets` accepts both) and Parquet (`.parquet`).
//!
//! Every record comes with its 1-based position — the line of a JSON Lines file, the
//! row of an array or a Parquet file — so a malformed one can be named. Blank lines are
//! not records. A file that cannot be read at all (a truncated gzip stream, a JSON array
//! that does not parse, a corrupt Parquet footer) is an error naming the file.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use flate2::read::MultiGzDecoder;
use parquet::file::reader::{FileReader, SerializedFileReader};
use serde_json::Value;

use crate::error::DataError;
pub use crate::error::FileKind;

/// One record as read: its JSON value, or why that line could not be parsed.
pub struct RawRecord {
    /// 1-based line (JSON Lines) or row (JSON array, Parquet).
    pub position: usize,
    pub value: std::result::Result<Value, String>,
}

/// Calls `each` with every record of the file, in file order. A file that cannot be
/// read is a [`DataError`]; `each`'s errors are passed on.
pub fn for_each_record<E: From<DataError>>(
    path: &Path,
    mut each: impl FnMut(RawRecord) -> Result<(), E>,
) -> Result<FileKind, E> {
    let kind = FileKind::of(path)?;
    let file = File::open(path).map_err(|source| DataError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    match kind {
        FileKind::JsonLines { gzip: false } => json_lines(path, BufReader::new(file), &mut each)?,
        FileKind::JsonLines { gzip: true } => json_lines(
            path,
            BufReader::new(MultiGzDecoder::new(BufReader::new(file))),
            &mut each,
        )?,
        FileKind::Json => json(path, BufReader::new(file), &mut each)?,
        FileKind::Parquet => parquet_rows(path, file, &mut each)?,
    }
    Ok(kind)
}

fn parse_json_line(bytes: &[u8]) -> Option<std::result::Result<Value, String>> {
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => return Some(Err(format!("not valid UTF-8 ({e})"))),
    };
    if text.trim().is_empty() {
        return None;
    }
    Some(serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}")))
}

fn json_lines<E: From<DataError>>(
    path: &Path,
    mut reader: impl BufRead,
    each: &mut impl FnMut(RawRecord) -> Result<(), E>,
) -> Result<(), E> {
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
            return Ok(());
        }
        line += 1;
        let content = buf.strip_suffix(b"\n").unwrap_or(&buf);
        let content = content.strip_suffix(b"\r").unwrap_or(content);
        if let Some(value) = parse_json_line(content) {
            each(RawRecord {
                position: line,
                value,
            })?;
        }
    }
}

/// A `.json` file: an array of records when it starts with `[`, else JSON Lines.
fn json<E: From<DataError>>(
    path: &Path,
    mut reader: impl BufRead,
    each: &mut impl FnMut(RawRecord) -> Result<(), E>,
) -> Result<(), E> {
    let starts_array = loop {
        let buf = reader.fill_buf().map_err(|source| DataError::ReadStart {
            path: path.to_path_buf(),
            source,
        })?;
        match buf.iter().position(|b| !b.is_ascii_whitespace()) {
            Some(i) => {
                let is_array = buf[i] == b'[';
                break is_array;
            }
            None if buf.is_empty() => return Ok(()),
            None => {
                let n = buf.len();
                reader.consume(n);
            }
        }
    };
    if !starts_array {
        return json_lines(path, reader, each);
    }
    let mut text = String::new();
    reader
        .read_to_string(&mut text)
        .map_err(|source| DataError::NotUtf8 {
            path: path.to_path_buf(),
            source,
        })?;
    let rows: Vec<Value> = serde_json::from_str(&text).map_err(|source| DataError::JsonArray {
        path: path.to_path_buf(),
        source,
    })?;
    for (i, value) in rows.into_iter().enumerate() {
        each(RawRecord {
            position: i + 1,
            value: Ok(value),
        })?;
    }
    Ok(())
}

/// Parquet rows through the crate's row API: strings, numbers, booleans, lists and
/// structs become the JSON values `datasets` would show (message lists included).
fn parquet_rows<E: From<DataError>>(
    path: &Path,
    file: File,
    each: &mut impl FnMut(RawRecord) -> Result<(), E>,
) -> Result<(), E> {
    let unreadable = |what: String| {
        move |source| DataError::Parquet {
            path: path.to_path_buf(),
            what,
            source,
        }
    };
    let reader = SerializedFileReader::new(file)
        .map_err(unreadable("not a readable Parquet file".into()))?;
    let rows = reader
        .get_row_iter(None)
        .map_err(unreadable("cannot read Parquet rows".into()))?;
    for (i, row) in rows.enumerate() {
        let row = row.map_err(unreadable(format!("row {}", i + 1)))?;
        each(RawRecord {
            position: i + 1,
            value: Ok(row.to_json_value()),
        })?;
    }
    Ok(())
}
