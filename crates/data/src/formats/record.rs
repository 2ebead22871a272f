//! Typed access to the fields of one JSON record, with errors that name the field.
//!
//! Nested fields are named by their path (`info.post`, `summaries[1].text`) so a
//! malformed line's error says exactly which value is wrong.

use serde_json::{Map, Value};

use super::columns::ColumnMap;

/// Top-level records read fields through the column map; nested ones by their own names.
static NO_COLUMNS: ColumnMap = ColumnMap {
    prompt: None,
    chosen: None,
    rejected: None,
    completion: None,
    label: None,
};

/// Why a field could not be read; becomes part of the "file:line: ..." error.
pub(crate) type FieldResult<T> = Result<T, String>;

/// A record as text, or as message lists for a chat template.
pub(crate) enum Parsed<T> {
    Plain(T),
    Conversational(crate::conversational::ConversationalExample),
}

pub(crate) struct Record<'a> {
    fields: &'a Map<String, Value>,
    path: String,
    columns: &'a ColumnMap,
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl<'a> Record<'a> {
    /// The top-level value of a line, which must be an object; its fields are read from
    /// the columns `columns` maps them to.
    pub fn root(value: &'a Value, columns: &'a ColumnMap) -> FieldResult<Self> {
        let mut record = Self::at(value, String::new())?;
        record.columns = columns;
        Ok(record)
    }

    fn at(value: &'a Value, path: String) -> FieldResult<Self> {
        match value {
            Value::Object(fields) => Ok(Self {
                fields,
                path,
                columns: &NO_COLUMNS,
            }),
            other if path.is_empty() => Err(format!(
                "expected a JSON object, found {}",
                type_name(other)
            )),
            other => Err(format!(
                "field `{path}`: expected an object, found {}",
                type_name(other)
            )),
        }
    }

    /// The field's column as the file names it (so errors name the user's column).
    fn name(&self, key: &str) -> String {
        let column = self.columns.column(key);
        if self.path.is_empty() {
            column.to_string()
        } else {
            format!("{}.{column}", self.path)
        }
    }

    /// The value of a field, or None when its column is missing.
    pub fn value(&self, key: &str) -> Option<&'a Value> {
        self.fields.get(self.columns.column(key))
    }

    fn get(&self, key: &str) -> FieldResult<&'a Value> {
        self.value(key)
            .ok_or_else(|| format!("field `{}`: missing", self.name(key)))
    }

    /// Is the field a list (a conversational record's messages)?
    pub fn is_list(&self, key: &str) -> bool {
        matches!(self.value(key), Some(Value::Array(_)))
    }

    /// A list of chat messages: objects with a string `role` (TRL's conversational format).
    pub fn messages(&self, key: &str) -> FieldResult<&'a Value> {
        let value = self.get(key)?;
        let Value::Array(items) = value else {
            return Err(self.wrong_type(key, "a list of messages", value));
        };
        for (i, item) in items.iter().enumerate() {
            let message = Self::at(item, format!("{}[{i}]", self.name(key)))?;
            message.str("role")?;
        }
        Ok(value)
    }

    fn wrong_type(&self, key: &str, expected: &str, found: &Value) -> String {
        format!(
            "field `{}`: expected {expected}, found {}",
            self.name(key),
            type_name(found)
        )
    }

    /// The raw value of a field that must be there (for fields that may take several shapes).
    pub fn required(&self, key: &str) -> FieldResult<&'a Value> {
        self.get(key)
    }

    /// The field's full name, for error messages.
    pub fn field_name(&self, key: &str) -> String {
        self.name(key)
    }

    pub fn str(&self, key: &str) -> FieldResult<&'a str> {
        match self.get(key)? {
            Value::String(s) => Ok(s),
            other => Err(self.wrong_type(key, "a string", other)),
        }
    }

    /// Messages that may be missing (TRL's implicit prompt).
    pub fn optional_messages(&self, key: &str) -> FieldResult<Option<Value>> {
        match self.value(key) {
            None | Some(Value::Null) => Ok(None),
            Some(_) => self.messages(key).map(|m| Some(m.clone())),
        }
    }

    /// A string that must contain something besides whitespace (prompts).
    pub fn non_empty_str(&self, key: &str) -> FieldResult<&'a str> {
        let s = self.str(key)?;
        if s.trim().is_empty() {
            return Err(format!("field `{}`: empty", self.name(key)));
        }
        Ok(s)
    }

    /// A string that may be missing or null.
    pub fn optional_str(&self, key: &str) -> FieldResult<Option<&'a str>> {
        match self.value(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(self.wrong_type(key, "a string or null", other)),
        }
    }

    pub fn bool(&self, key: &str) -> FieldResult<bool> {
        match self.get(key)? {
            Value::Bool(b) => Ok(*b),
            other => Err(self.wrong_type(key, "a boolean", other)),
        }
    }

    pub fn u64(&self, key: &str) -> FieldResult<u64> {
        let value = self.get(key)?;
        value
            .as_u64()
            .ok_or_else(|| self.wrong_type(key, "a non-negative integer", value))
    }

    pub fn object(&self, key: &str) -> FieldResult<Record<'a>> {
        Self::at(self.get(key)?, self.name(key))
    }

    /// An array whose items are all objects.
    pub fn objects(&self, key: &str) -> FieldResult<Vec<Record<'a>>> {
        match self.get(key)? {
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, item)| Self::at(item, format!("{}[{i}]", self.name(key))))
                .collect(),
            other => Err(self.wrong_type(key, "an array", other)),
        }
    }
}
