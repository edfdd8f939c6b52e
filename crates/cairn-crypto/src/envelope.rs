//! The object envelope: `salt(16) ‖ ciphertext ‖ tag(16)`, AES-256-GCM under a per-object key.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};

use crate::{CryptoError, MasterKey, random_bytes};

const SALT_LEN: usize = 16;
const TAG_LEN: usize = 16;

/// Bytes a sealed object adds to its plaintext.
pub const OVERHEAD: usize = SALT_LEN + TAG_LEN;

fn aead_key(key: &MasterKey, salt: &[u8]) -> Result<LessSafeKey, CryptoError> {
    let k = key.object_key(salt);
    let unbound = UnboundKey::new(&AES_256_GCM, k.as_ref()).map_err(|_| CryptoError::Corrupt)?;
    Ok(LessSafeKey::new(unbound))
}

/// Seals `plaintext` with associated data `aad` and appends the envelope to `out`.
///
/// # Errors
/// `CryptoError::Random` if no salt could be drawn.
pub fn seal_into(
    key: &MasterKey,
    aad: &[u8],
    plaintext: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), CryptoError> {
    let mut salt = [0u8; SALT_LEN];
    random_bytes(&mut salt)?;
    let cipher = aead_key(key, &salt)?;
    out.reserve(plaintext.len() + OVERHEAD);
    out.extend_from_slice(&salt);
    let start = out.len();
    out.extend_from_slice(plaintext);
    let tag = cipher
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key([0u8; 12]),
            Aad::from(aad),
            &mut out[start..],
        )
        .map_err(|_| CryptoError::Corrupt)?;
    out.extend_from_slice(tag.as_ref());
    Ok(())
}

/// Opens an envelope sealed with the same key and associated data.
///
/// # Errors
/// `CryptoError::Corrupt` if the envelope is too short, altered, or from another key.
pub fn open(key: &MasterKey, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
    if sealed.len() < OVERHEAD {
        return Err(CryptoError::Corrupt);
    }
    let (salt, rest) = sealed.split_at(SALT_LEN);
    let cipher = aead_key(key, salt)?;
    let mut buf = rest.to_vec();
    let plain_len = cipher
        .open_in_place(
            Nonce::assume_unique_for_key([0u8; 12]),
            Aad::from(aad),
            &mut buf,
        )
        .map_err(|_| CryptoError::Corrupt)?
        .len();
    buf.truncate(plain_len);
    Ok(buf)
}
