use proptest::prelude::*;

use super::*;

#[test]
fn seal_open_roundtrip_and_overhead() {
    let k = MasterKey::generate().unwrap();
    let mut out = Vec::new();
    seal_into(&k, b"data", b"hello", &mut out).unwrap();
    assert_eq!(out.len(), 5 + OVERHEAD);
    assert_eq!(open(&k, b"data", &out).unwrap(), b"hello");
}

#[test]
fn wrong_aad_or_key_is_corrupt() {
    let k = MasterKey::generate().unwrap();
    let other = MasterKey::generate().unwrap();
    let mut out = Vec::new();
    seal_into(&k, b"a", b"payload", &mut out).unwrap();
    assert!(matches!(open(&k, b"b", &out), Err(CryptoError::Corrupt)));
    assert!(matches!(
        open(&other, b"a", &out),
        Err(CryptoError::Corrupt)
    ));
    assert!(matches!(
        open(&k, b"a", &out[..10]),
        Err(CryptoError::Corrupt)
    ));
}

#[test]
fn sealing_twice_differs() {
    let k = MasterKey::generate().unwrap();
    let (mut a, mut b) = (Vec::new(), Vec::new());
    seal_into(&k, b"", b"same", &mut a).unwrap();
    seal_into(&k, b"", b"same", &mut b).unwrap();
    assert_ne!(a, b, "a fresh salt per object");
}

#[test]
fn kek_wraps_and_rejects_wrong_passphrase() {
    let m = MasterKey::generate().unwrap();
    let p = KdfParams::insecure_for_tests();
    let kek = Kek::derive(b"right", b"saltsaltsaltsalt", p).unwrap();
    let wrapped = kek.wrap(&m).unwrap();
    let back = Kek::derive(b"right", b"saltsaltsaltsalt", p)
        .unwrap()
        .unwrap_key(&wrapped)
        .unwrap();
    assert!(back.same_as(&m));
    let wrong = Kek::derive(b"wrong", b"saltsaltsaltsalt", p).unwrap();
    assert!(matches!(
        wrong.unwrap_key(&wrapped),
        Err(CryptoError::WrongPassphrase)
    ));
}

#[test]
fn absurd_kdf_params_are_refused() {
    let p = KdfParams::new(u32::MAX, 1, 1);
    assert!(matches!(
        Kek::derive(b"x", b"saltsaltsaltsalt", p),
        Err(CryptoError::InvalidKdf(_))
    ));
}

#[test]
fn blob_ids_are_keyed() {
    let a = MasterKey::generate().unwrap();
    let b = MasterKey::generate().unwrap();
    assert_eq!(a.blob_id(b"x"), a.blob_id(b"x"));
    assert_ne!(a.blob_id(b"x"), b.blob_id(b"x"));
    assert_ne!(a.blob_id(b"x"), *blake3::hash(b"x").as_bytes());
}

#[test]
fn debug_hides_secrets() {
    let k = MasterKey::generate().unwrap();
    assert_eq!(format!("{k:?}"), "MasterKey(<redacted>)");
}

proptest! {
    #[test]
    fn any_flipped_bit_is_corrupt(data in proptest::collection::vec(any::<u8>(), 0..512), bit in any::<usize>()) {
        let k = MasterKey::from_bytes(&[7u8; 64]);
        let mut out = Vec::new();
        seal_into(&k, b"aad", &data, &mut out).unwrap();
        let i = bit % (out.len() * 8);
        out[i / 8] ^= 1 << (i % 8);
        prop_assert!(matches!(open(&k, b"aad", &out), Err(CryptoError::Corrupt)));
    }

    #[test]
    fn seal_open_identity(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let k = MasterKey::from_bytes(&[9u8; 64]);
        let mut out = Vec::new();
        seal_into(&k, b"x", &data, &mut out).unwrap();
        prop_assert_eq!(open(&k, b"x", &out).unwrap(), data);
    }
}
