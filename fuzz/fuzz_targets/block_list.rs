#![no_main]
//! `BlockList::parse` and `normalize` never panic; what they accept is sorted, disjoint and
//! inside the volume, and survives the plain-line encoding unchanged.

use cairn_format::BlockList;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // First 8 bytes: the volume capacity to check against; the rest: the list.
    let (cap, text) = if data.len() >= 8 {
        let (c, t) = data.split_at(8);
        (u64::from_le_bytes(c.try_into().expect("8 bytes")), t)
    } else {
        (1 << 30, data)
    };
    let Ok(list) = BlockList::parse(text) else {
        return;
    };
    let again = BlockList::parse(list.to_lines().as_bytes()).expect("encoded lines parse");
    assert_eq!(again.ranges, list.ranges, "line encoding is not stable");
    if let Ok(norm) = list.normalize(list.capacity.unwrap_or(cap)) {
        for w in norm.windows(2) {
            assert!(w[0].offset + w[0].len < w[1].offset, "not sorted and disjoint");
        }
        for r in &norm {
            assert!(r.len > 0 && r.offset + r.len <= list.capacity.unwrap_or(cap));
        }
        let total: u64 = norm.iter().map(|r| r.len).sum();
        let input: u64 = list.ranges.iter().map(|r| r.len).sum();
        assert_eq!(total, input, "normalize lost or added bytes");
    }
});
