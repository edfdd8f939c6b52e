//! The binary envelope of bulk metadata: one version byte, then postcard.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::FormatError;

/// Encodes `value` as `version ‖ postcard(value)`.
pub(crate) fn encode<T: Serialize>(
    what: &'static str,
    version: u8,
    value: &T,
) -> Result<Vec<u8>, FormatError> {
    postcard::to_extend(value, vec![version]).map_err(|e| FormatError::decode(what, e))
}

/// Encodes a JSON document.
pub(crate) fn encode_json<T: Serialize>(
    what: &'static str,
    value: &T,
) -> Result<Vec<u8>, FormatError> {
    serde_json::to_vec_pretty(value).map_err(|e| FormatError::decode(what, e))
}

/// Decodes `version ‖ postcard(value)`, refusing unknown versions and trailing bytes.
pub(crate) fn decode<T: DeserializeOwned>(
    what: &'static str,
    max_version: u8,
    bytes: &[u8],
) -> Result<T, FormatError> {
    let (&version, rest) = bytes.split_first().ok_or(FormatError::Truncated(what))?;
    if version == 0 || version > max_version {
        return Err(FormatError::UnsupportedVersion {
            what,
            version: u32::from(version),
            supported: u32::from(max_version),
        });
    }
    let (value, trailing) =
        postcard::take_from_bytes(rest).map_err(|e| FormatError::decode(what, e))?;
    if !trailing.is_empty() {
        return Err(FormatError::invalid(
            what,
            format!("{} trailing bytes", trailing.len()),
        ));
    }
    Ok(value)
}

/// Decodes a JSON document and checks its `version` against the newest one supported.
///
/// The version is read first, on its own, so a document from a newer writer is refused with
/// `UnsupportedVersion` rather than a confusing error about a field this build does not know.
pub(crate) fn decode_json<T: DeserializeOwned>(
    what: &'static str,
    supported: u32,
    bytes: &[u8],
    version_of: impl Fn(&T) -> u32,
) -> Result<T, FormatError> {
    #[derive(serde::Deserialize)]
    struct VersionOnly {
        version: u64,
    }
    let v: VersionOnly = serde_json::from_slice(bytes).map_err(|e| FormatError::decode(what, e))?;
    if v.version == 0 || v.version > u64::from(supported) {
        return Err(FormatError::UnsupportedVersion {
            what,
            version: u32::try_from(v.version).unwrap_or(u32::MAX),
            supported,
        });
    }
    let value: T = serde_json::from_slice(bytes).map_err(|e| FormatError::decode(what, e))?;
    if u64::from(version_of(&value)) != v.version {
        return Err(FormatError::invalid(what, "ambiguous version field"));
    }
    Ok(value)
}
