//! Cryptography for Cairn repositories: the master key, keyed blob ids, the object envelope
//! (AEAD) and passphrase-derived key-encryption keys. Pure and synchronous.
//!
//! - Blob ids are BLAKE3 keyed hashes of the plaintext, keyed with the master key's id half, so
//!   ids reveal nothing about content to someone without the key.
//! - Every sealed object is `salt(16) ‖ AES-256-GCM(ciphertext ‖ tag(16))` under a key derived
//!   per object from the master key and the random salt, with a zero nonce. A fresh key per
//!   object means no nonce can ever repeat under one key, however many objects a repository
//!   holds (DESIGN.md invariant 3). The caller's associated data binds the object to its name.
//! - Passphrases are stretched with Argon2id into a key-encryption key that wraps the master key.

mod envelope;
mod kdf;
mod master;

pub use envelope::{OVERHEAD, open, seal_into};
pub use kdf::{KdfParams, Kek};
pub use master::MasterKey;

/// Errors from this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// Authentication failed: the object was altered, truncated, or sealed with another key.
    #[error("authentication failed: the data is corrupt or was sealed with another key")]
    Corrupt,
    /// The passphrase does not unlock this key.
    #[error("wrong passphrase")]
    WrongPassphrase,
    /// The key-derivation parameters are out of range.
    #[error("invalid key-derivation parameters: {0}")]
    InvalidKdf(String),
    /// The operating system's random number generator failed.
    #[error("random number generator failed: {0}")]
    Random(String),
}

/// Fills `buf` with cryptographically secure random bytes.
///
/// # Errors
/// `CryptoError::Random` if the operating system's generator fails.
pub fn random_bytes(buf: &mut [u8]) -> Result<(), CryptoError> {
    getrandom::fill(buf).map_err(|e| CryptoError::Random(e.to_string()))
}

#[cfg(test)]
mod tests;
