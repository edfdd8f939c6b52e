//! Key files: the master key wrapped by a passphrase-derived key (Argon2id).

use serde::{Deserialize, Serialize};

use crate::FormatError;
use crate::versioned::{decode_json, encode_json};

/// Argon2id parameters and salt of one key file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KdfSpec {
    /// Always `"argon2id"` in version 1.
    pub algorithm: String,
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
    /// Random salt, hex.
    pub salt: String,
}

/// `keys/<id>`: JSON, stored in the clear (its payload is the wrapped key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyFile {
    /// Key file version (1).
    pub version: u32,
    /// When the key was added.
    pub created: jiff::Timestamp,
    /// Host that added it.
    pub hostname: String,
    /// User that added it.
    pub username: String,
    /// How to derive the key-encryption key.
    pub kdf: KdfSpec,
    /// The master key sealed with the key-encryption key, hex.
    pub wrapped: String,
}

impl KeyFile {
    /// Newest key file version.
    pub const VERSION: u32 = 1;

    /// Encodes as JSON.
    ///
    /// # Errors
    /// Never in practice.
    pub fn to_bytes(&self) -> Result<Vec<u8>, FormatError> {
        encode_json("key", self)
    }

    /// Parses a key file.
    ///
    /// # Errors
    /// Malformed JSON, unsupported version, or an unknown KDF.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, FormatError> {
        let k: Self = decode_json("key", Self::VERSION, bytes, |k: &Self| k.version)?;
        if k.kdf.algorithm != "argon2id" {
            return Err(FormatError::invalid(
                "key",
                format!("unknown kdf {}", k.kdf.algorithm),
            ));
        }
        Ok(k)
    }
}
