#![no_main]
//! `PackTrailer::from_bytes` and `parse_pack_footer` never panic; accepted trailers
//! round-trip stably and satisfy the layout they promise.
//!
//! Input: 8 bytes of pack length (u64 LE), then the bytes under test.

use cairn_format::{PACK_FOOTER_LEN, PACK_HEADER, PackTrailer, pack_footer, parse_pack_footer};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((len, body)) = data.split_first_chunk::<8>() else {
        return;
    };
    let pack_len = u64::from_le_bytes(*len);

    // The footer parser on the last 8 bytes, as a reader uses it, and on anything.
    let _ = parse_pack_footer(body, pack_len);
    if let Some(footer) = body.last_chunk::<PACK_FOOTER_LEN>()
        && let Ok((offset, tlen)) = parse_pack_footer(footer, pack_len)
    {
        assert_eq!(pack_footer(tlen), *footer);
        assert!(offset >= PACK_HEADER.len() as u64);
        assert_eq!(offset + u64::from(tlen) + PACK_FOOTER_LEN as u64, pack_len);
    }

    // The trailer, with `pack_len` standing for the end of the blob data.
    let data_end = pack_len;
    if let Some(t) = cairn_fuzz::stable(
        body,
        |b| PackTrailer::from_bytes(b, data_end),
        PackTrailer::to_bytes,
    ) {
        let mut end = PACK_HEADER.len() as u64;
        for b in &t.blobs {
            assert!(
                u64::from(b.offset) >= end,
                "blobs in order, not overlapping"
            );
            end = u64::from(b.offset) + u64::from(b.length);
        }
        assert!(end <= data_end.max(PACK_HEADER.len() as u64));
    }
});
