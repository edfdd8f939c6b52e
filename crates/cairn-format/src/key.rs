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
    /// Length of the wrapped master key in bytes: a sealed 64-byte key (16 salt, 64
    /// ciphertext, 16 tag).
    pub const WRAPPED_LEN: usize = 96;

    /// Encodes as JSON.
    ///
    /// # Errors
    /// Never in practice.
    pub fn to_bytes(&self) -> Result<Vec<u8>, FormatError> {
        encode_json("key", self)
    }

    /// Parses a key file and checks what can be checked without the passphrase.
    ///
    /// # Errors
    /// Malformed JSON, unsupported version, an unknown KDF, KDF parameters out of range (a
    /// tampered key file must not make the reader allocate absurd memory), a salt or wrapped
    /// key that is not hex of the right length.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, FormatError> {
        let k: Self = decode_json("key", Self::VERSION, bytes, |k: &Self| k.version)?;
        k.kdf.validate()?;
        let wrapped = hex::decode(&k.wrapped)
            .map_err(|e| FormatError::invalid("key", format!("wrapped key is not hex: {e}")))?;
        if wrapped.len() != Self::WRAPPED_LEN {
            return Err(FormatError::invalid(
                "key",
                format!(
                    "wrapped key is {} bytes, not {}",
                    wrapped.len(),
                    Self::WRAPPED_LEN
                ),
            ));
        }
        Ok(k)
    }
}

impl KdfSpec {
    /// Largest memory cost accepted, in KiB (4 GiB).
    pub const MAX_MEMORY_KIB: u32 = 4 * 1024 * 1024;
    /// Largest number of passes accepted.
    pub const MAX_ITERATIONS: u32 = 64;
    /// Largest number of lanes accepted.
    pub const MAX_PARALLELISM: u32 = 64;
    /// Shortest salt accepted, in bytes (Argon2's minimum).
    pub const MIN_SALT_LEN: usize = 8;

    /// Checks the algorithm, the parameter ranges (Argon2's own minimums and the limits
    /// above) and the salt.
    ///
    /// # Errors
    /// `FormatError::Invalid` naming the problem.
    pub fn validate(&self) -> Result<(), FormatError> {
        if self.algorithm != "argon2id" {
            return Err(FormatError::invalid(
                "key",
                format!("unknown kdf {:?}", self.algorithm),
            ));
        }
        let ok = (1..=Self::MAX_PARALLELISM).contains(&self.parallelism)
            && (1..=Self::MAX_ITERATIONS).contains(&self.iterations)
            && (8 * self.parallelism..=Self::MAX_MEMORY_KIB).contains(&self.memory_kib);
        if !ok {
            return Err(FormatError::invalid(
                "key",
                "kdf parameters out of range (1 to 64 lanes, 1 to 64 passes, \
                 8 KiB per lane to 4 GiB of memory)",
            ));
        }
        let salt = hex::decode(&self.salt)
            .map_err(|e| FormatError::invalid("key", format!("salt is not hex: {e}")))?;
        if salt.len() < Self::MIN_SALT_LEN {
            return Err(FormatError::invalid("key", "salt shorter than 8 bytes"));
        }
        Ok(())
    }
}
