//! `[data.columns]`: which column of a file holds each field a format reads, for
//! datasets whose columns have other names (e.g. `chosen = "response_j"`).

use serde::{Deserialize, Serialize};

/// Source column per field; an unset field is read from the column of its own name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnMap {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chosen: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

impl ColumnMap {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// The column that holds `field`.
    pub fn column<'a>(&'a self, field: &'a str) -> &'a str {
        let mapped = match field {
            "prompt" => &self.prompt,
            "chosen" => &self.chosen,
            "rejected" => &self.rejected,
            "completion" => &self.completion,
            "label" => &self.label,
            _ => &None,
        };
        mapped.as_deref().unwrap_or(field)
    }
}
