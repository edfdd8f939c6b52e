//! Shared checks of the fuzz targets: a parser never panics, and whatever it accepts
//! survives encode → parse unchanged and re-encodes to identical bytes.

use std::fmt::Debug;

use cairn_format::FormatError;

/// Parses `bytes`; if that succeeds, checks that the value re-encodes, parses back equal,
/// and encodes to the same bytes again (a stable round trip). Returns the parsed value.
///
/// # Panics
/// When the round trip is unstable: that is the bug the fuzzer reports.
pub fn stable<T: PartialEq + Debug>(
    bytes: &[u8],
    parse: impl Fn(&[u8]) -> Result<T, FormatError>,
    encode: impl Fn(&T) -> Result<Vec<u8>, FormatError>,
) -> Option<T> {
    let value = parse(bytes).ok()?;
    let encoded = encode(&value).expect("a parsed value encodes");
    let again = parse(&encoded).expect("an encoded value parses");
    assert_eq!(value, again, "parse(encode(x)) != x");
    assert_eq!(
        encode(&again).expect("a parsed value encodes"),
        encoded,
        "encoding is not stable"
    );
    Some(value)
}
