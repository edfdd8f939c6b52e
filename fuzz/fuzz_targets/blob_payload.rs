#![no_main]
//! `decode_blob_payload_header` never panics and splits off exactly the codec byte.

use cairn_format::decode_blob_payload_header;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((codec, body)) = decode_blob_payload_header(data) {
        assert_eq!(data[0], codec.as_byte());
        assert_eq!(body, &data[1..]);
    }
});
