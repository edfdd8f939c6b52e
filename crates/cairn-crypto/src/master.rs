//! The repository master key: one half encrypts, the other keys blob ids and the chunker.

use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::{CryptoError, random_bytes};

/// The random master key of a repository. Never stored in the clear: key files hold it wrapped
/// by a passphrase-derived key. Zeroed on drop; its `Debug` prints nothing secret.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct MasterKey {
    enc: [u8; 32],
    id: [u8; 32],
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

/// Serialized length of a master key.
pub(crate) const MASTER_LEN: usize = 64;

impl MasterKey {
    /// A new random master key.
    ///
    /// # Errors
    /// `CryptoError::Random` if the system generator fails.
    pub fn generate() -> Result<Self, CryptoError> {
        let mut k = Self {
            enc: [0; 32],
            id: [0; 32],
        };
        random_bytes(&mut k.enc)?;
        random_bytes(&mut k.id)?;
        Ok(k)
    }

    /// Rebuilds a key from its 64-byte serialization.
    pub fn from_bytes(bytes: &[u8; MASTER_LEN]) -> Self {
        let mut k = Self {
            enc: [0; 32],
            id: [0; 32],
        };
        k.enc.copy_from_slice(&bytes[..32]);
        k.id.copy_from_slice(&bytes[32..]);
        k
    }

    /// The 64-byte serialization (zeroed when dropped).
    pub fn to_bytes(&self) -> Zeroizing<[u8; MASTER_LEN]> {
        let mut out = Zeroizing::new([0u8; MASTER_LEN]);
        out[..32].copy_from_slice(&self.enc);
        out[32..].copy_from_slice(&self.id);
        out
    }

    /// The keyed BLAKE3 id of a blob's plaintext.
    pub fn blob_id(&self, data: &[u8]) -> [u8; 32] {
        *blake3::keyed_hash(&self.id, data).as_bytes()
    }

    /// A secret 64-bit seed for the content-defined chunker, so that chunk boundaries do not
    /// fingerprint file contents for someone who sees only blob sizes.
    pub fn chunker_seed(&self) -> u64 {
        let h = blake3::keyed_hash(&self.id, b"cairn chunker seed v1");
        let mut seed = [0u8; 8];
        seed.copy_from_slice(&h.as_bytes()[..8]);
        u64::from_le_bytes(seed)
    }

    /// The per-object AES-256 key for `salt`.
    pub(crate) fn object_key(&self, salt: &[u8]) -> Zeroizing<[u8; 32]> {
        let mut hasher = blake3::Hasher::new_keyed(&self.enc);
        hasher.update(b"cairn object key v1");
        hasher.update(salt);
        Zeroizing::new(*hasher.finalize().as_bytes())
    }

    /// Checks that two keys are the same (constant time is not needed: both are secret to us).
    pub fn same_as(&self, other: &MasterKey) -> bool {
        self.enc == other.enc && self.id == other.id
    }
}

/// Parses a serialized master key of the right length.
pub(crate) fn master_from_slice(bytes: &[u8]) -> Result<MasterKey, CryptoError> {
    let arr: &[u8; MASTER_LEN] = bytes.try_into().map_err(|_| CryptoError::Corrupt)?;
    Ok(MasterKey::from_bytes(arr))
}
