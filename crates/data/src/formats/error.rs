//! The readers' errors: [`DataError`] is the crate's one error type (`crate::error`),
//! re-exported here where the readers first defined it, so `formats::error::DataError`
//! keeps working.

pub use crate::error::DataError;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::expand_paths;
    use crate::formats::files::for_each_record;

    #[test]
    fn unreadable_files_and_patterns_are_typed_and_named() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("data.csv");
        std::fs::write(&csv, "a,b\n").unwrap();
        let err = for_each_record(&csv, |_| Ok::<(), DataError>(())).unwrap_err();
        assert!(matches!(err, DataError::UnknownKind { .. }), "{err}");
        assert!(
            err.to_string().contains("unknown dataset file type"),
            "{err}"
        );

        let array = dir.path().join("rows.json");
        std::fs::write(&array, "[{\"prompt\": 1},").unwrap();
        let err = for_each_record(&array, |_| Ok::<(), DataError>(())).unwrap_err();
        assert!(matches!(err, DataError::JsonArray { .. }), "{err}");
        assert_eq!(
            err.to_string(),
            format!("{}: invalid JSON array", array.display())
        );

        let pattern = format!("{}/*.parquet", dir.path().display());
        let err = expand_paths(std::slice::from_ref(&pattern)).unwrap_err();
        assert!(matches!(err, DataError::NoMatch { .. }), "{err}");
        assert_eq!(err.to_string(), format!("{pattern:?} matches no file"));
    }
}
