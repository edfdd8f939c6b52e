//! Passphrase stretching (Argon2id) and wrapping of the master key.

use argon2::{Algorithm, Argon2, Params, Version};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::master::{MASTER_LEN, master_from_slice};
use crate::{CryptoError, MasterKey, envelope};

/// Argon2id cost parameters, stored in each key file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct KdfParams {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl Default for KdfParams {
    /// 64 MiB, 3 passes, 1 lane: about a quarter of a second on a current core.
    fn default() -> Self {
        Self {
            memory_kib: 64 * 1024,
            iterations: 3,
            parallelism: 1,
        }
    }
}

impl KdfParams {
    /// Explicit parameters (checked when used).
    pub fn new(memory_kib: u32, iterations: u32, parallelism: u32) -> Self {
        Self {
            memory_kib,
            iterations,
            parallelism,
        }
    }

    /// The cheapest parameters Argon2 accepts; for tests only.
    pub fn insecure_for_tests() -> Self {
        Self {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        }
    }

    fn check(self) -> Result<Params, CryptoError> {
        // Refuse parameters that would allocate absurd memory from a tampered key file.
        if self.memory_kib > 4 * 1024 * 1024 || self.iterations > 64 || self.parallelism > 64 {
            return Err(CryptoError::InvalidKdf(format!(
                "{self:?} exceeds the limits"
            )));
        }
        Params::new(self.memory_kib, self.iterations, self.parallelism, Some(32))
            .map_err(|e| CryptoError::InvalidKdf(e.to_string()))
    }
}

/// A key-encryption key derived from a passphrase. Zeroed on drop.
pub struct Kek(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Kek(<redacted>)")
    }
}

const WRAP_AAD: &[u8] = b"cairn master key v1";

impl Kek {
    /// Derives the key from a passphrase and salt with Argon2id.
    ///
    /// # Errors
    /// `CryptoError::InvalidKdf` for out-of-range parameters.
    pub fn derive(passphrase: &[u8], salt: &[u8], params: KdfParams) -> Result<Self, CryptoError> {
        let p = params.check()?;
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, p);
        let mut out = Zeroizing::new([0u8; 32]);
        argon
            .hash_password_into(passphrase, salt, out.as_mut())
            .map_err(|e| CryptoError::InvalidKdf(e.to_string()))?;
        Ok(Self(out))
    }

    fn as_master(&self) -> MasterKey {
        // The envelope derives per-object keys from a MasterKey; reuse it with the KEK in both
        // halves so wrapping uses the same audited code path.
        let mut b = Zeroizing::new([0u8; MASTER_LEN]);
        b[..32].copy_from_slice(self.0.as_ref());
        b[32..].copy_from_slice(self.0.as_ref());
        MasterKey::from_bytes(&b)
    }

    /// Wraps (seals) a master key.
    ///
    /// # Errors
    /// `CryptoError::Random` if no salt could be drawn.
    pub fn wrap(&self, master: &MasterKey) -> Result<Vec<u8>, CryptoError> {
        let mut out = Vec::new();
        envelope::seal_into(
            &self.as_master(),
            WRAP_AAD,
            master.to_bytes().as_ref(),
            &mut out,
        )?;
        Ok(out)
    }

    /// Unwraps a master key.
    ///
    /// # Errors
    /// `CryptoError::WrongPassphrase` if this key did not wrap it (or it was altered).
    pub fn unwrap_key(&self, wrapped: &[u8]) -> Result<MasterKey, CryptoError> {
        let plain = Zeroizing::new(
            envelope::open(&self.as_master(), WRAP_AAD, wrapped)
                .map_err(|_| CryptoError::WrongPassphrase)?,
        );
        master_from_slice(&plain)
    }
}
