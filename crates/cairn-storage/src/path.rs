//! Validation of object paths and list prefixes shared by every backend.
//!
//! An object path is relative and `/`-separated, with no empty, `.` or `..` segment, so no
//! backend can be tricked into touching anything outside its root. Names starting with
//! [`TMP_PREFIX`] are reserved for the local backend's in-flight writes.

use crate::{Error, ErrorKind, Result};

/// File-name prefix of in-flight temporary files (local backend); never a valid object name.
pub(crate) const TMP_PREFIX: &str = ".tmp-";

/// Checks an object path and returns it unchanged.
pub(crate) fn object(path: &str) -> Result<&str> {
    if path.is_empty() {
        return Err(invalid(path, "empty object path"));
    }
    check_segments(path)?;
    if path
        .rsplit('/')
        .next()
        .is_some_and(|name| name.starts_with(TMP_PREFIX))
    {
        return Err(invalid(
            path,
            "object names starting with `.tmp-` are reserved",
        ));
    }
    Ok(path)
}

/// Checks a list prefix (a directory, possibly empty for the root) and returns it without
/// leading or trailing slashes.
pub(crate) fn prefix(prefix: &str) -> Result<&str> {
    let trimmed = prefix.trim_matches('/');
    if !trimmed.is_empty() {
        check_segments(trimmed)?;
    }
    Ok(trimmed)
}

fn check_segments(path: &str) -> Result<()> {
    if path.contains('\\') || path.contains('\0') {
        return Err(invalid(path, "object path contains a backslash or NUL"));
    }
    for segment in path.split('/') {
        if segment.is_empty() || segment == "." || segment == ".." {
            return Err(invalid(
                path,
                "object path must be relative with no empty, `.` or `..` segment",
            ));
        }
    }
    Ok(())
}

fn invalid(path: &str, message: &str) -> Error {
    Error::new(ErrorKind::Unexpected, message).with_context("path", path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects() {
        for ok in ["config", "data/ab/abcd", "keys/x.y", "a/.b"] {
            assert_eq!(object(ok).unwrap(), ok);
        }
        for bad in [
            "",
            "/abs",
            "a//b",
            "a/",
            "../x",
            "a/./b",
            "a/..",
            "a\\b",
            "data/.tmp-1",
        ] {
            assert!(object(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn prefixes() {
        assert_eq!(prefix("").unwrap(), "");
        assert_eq!(prefix("/").unwrap(), "");
        assert_eq!(prefix("data/").unwrap(), "data");
        assert_eq!(prefix("/data/ab").unwrap(), "data/ab");
        assert!(prefix("data/../x").is_err());
        assert!(prefix("a//b").is_err());
    }
}
