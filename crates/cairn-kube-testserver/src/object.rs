//! Helpers on unstructured objects: metadata fields, uids, timestamps, dotted paths.

use serde_json::{Map, Value};

/// `metadata.<field>` as a string, or `""`.
pub(crate) fn meta_str<'a>(object: &'a Value, field: &str) -> &'a str {
    object
        .get("metadata")
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// Makes `value` an object (replacing anything else) and returns its map.
pub(crate) fn ensure_object(value: &mut Value) -> &mut Map<String, Value> {
    if !value.is_object() {
        *value = Value::Object(Map::new());
    }
    match value {
        Value::Object(map) => map,
        _ => unreachable!("invariant: made an object above"),
    }
}

/// The `metadata` map, created when missing (or replaced when not an object).
pub(crate) fn metadata_mut(object: &mut Value) -> &mut Map<String, Value> {
    ensure_object(
        ensure_object(object)
            .entry("metadata")
            .or_insert(Value::Null),
    )
}

/// Sets `metadata.<field>`; `Value::Null` removes it.
pub(crate) fn set_meta(object: &mut Value, field: &str, value: Value) {
    let meta = metadata_mut(object);
    if value.is_null() {
        meta.remove(field);
    } else {
        meta.insert(field.to_string(), value);
    }
}

/// The current time as RFC 3339 with second precision, like `metav1.Time`.
pub(crate) fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0_u8; N];
    // The OS RNG does not fail on the platforms we test on; a failure leaves zeros, which
    // only makes names less random, never wrong.
    let _ = getrandom::fill(&mut buf);
    buf
}

/// A random RFC 4122 version 4 UUID.
pub(crate) fn uid() -> String {
    let mut b = random_bytes::<16>();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex = hex_string(&b);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

fn hex_string(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// The five-character suffix `generateName` gets (the real server's alphabet).
pub(crate) fn name_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    random_bytes::<5>()
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect()
}

/// Reads a dotted path such as `.spec.replicas`.
pub(crate) fn get_path<'a>(object: &'a Value, path: &str) -> Option<&'a Value> {
    let pointer = format!("/{}", path.trim_start_matches('.').replace('.', "/"));
    object.pointer(&pointer)
}

/// Writes a dotted path such as `.spec.replicas`, creating objects on the way.
pub(crate) fn set_path(object: &mut Value, path: &str, value: Value) {
    let mut cur = object;
    let parts: Vec<&str> = path.trim_start_matches('.').split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        let map = ensure_object(cur);
        if i + 1 == parts.len() {
            map.insert((*part).to_string(), value);
            return;
        }
        cur = map
            .entry((*part).to_string())
            .or_insert_with(|| Value::Object(Map::new()));
    }
}

/// The object without `metadata` and `status`: what a `generation` bump looks at.
pub(crate) fn spec_part(object: &Value) -> Value {
    let mut copy = object.clone();
    if let Value::Object(map) = &mut copy {
        map.remove("metadata");
        map.remove("status");
        map.remove("apiVersion");
        map.remove("kind");
    }
    copy
}

/// Parses a `resourceVersion` string.
pub(crate) fn parse_rv(text: &str) -> Option<u64> {
    text.parse().ok()
}
