//! Block lists: CSI JSON in its shapes, plain lines, and every rejection.

use proptest::prelude::*;
use rstest::rstest;

use crate::{BlockList, BlockListError, BlockRange};

fn r(offset: u64, len: u64) -> BlockRange {
    BlockRange { offset, len }
}

const CSI: &str = r#"{"block_metadata_type":"FIXED_LENGTH","volume_capacity_bytes":1048576,
  "block_metadata":[{"byte_offset":0,"size_bytes":4096},{"byte_offset":8192,"size_bytes":4096}]}"#;

#[test]
fn csi_one_response_array_and_lines_agree() {
    let one = BlockList::parse(CSI.as_bytes()).unwrap();
    assert_eq!(one.capacity, Some(1 << 20));
    assert_eq!(one.ranges, vec![r(0, 4096), r(8192, 4096)]);
    let second = r#"{"block_metadata_type":"FIXED_LENGTH","volume_capacity_bytes":1048576,
      "block_metadata":[{"byte_offset":65536,"size_bytes":4096}]}"#;
    let array = format!("[{CSI},{second}]");
    let lines = format!("{}\n{}\n", CSI.replace('\n', ""), second.replace('\n', ""));
    for text in [array, lines] {
        let l = BlockList::parse(text.as_bytes()).unwrap();
        assert_eq!(l.capacity, Some(1 << 20));
        assert_eq!(l.ranges, vec![r(0, 4096), r(8192, 4096), r(65536, 4096)]);
    }
}

#[test]
fn csi_protobuf_json_camel_case_and_string_numbers() {
    let text = r#"{"blockMetadataType":"VARIABLE_LENGTH","volumeCapacityBytes":"1073741824",
      "blockMetadata":[{"byteOffset":"4096","sizeBytes":"12288"}]}"#;
    let l = BlockList::parse(text.as_bytes()).unwrap();
    assert_eq!(l.capacity, Some(1 << 30));
    assert_eq!(l.ranges, vec![r(4096, 12288)]);
    let numeric = r#"{"block_metadata_type":2,"volume_capacity_bytes":10,"block_metadata":[]}"#;
    assert_eq!(BlockList::parse(numeric.as_bytes()).unwrap().ranges, vec![]);
}

#[test]
fn plain_lines_with_comments_and_blanks() {
    let l = BlockList::parse(b"# changed\n\n0,4096\n  8192 , 512 \n").unwrap();
    assert_eq!(l.capacity, None);
    assert_eq!(l.ranges, vec![r(0, 4096), r(8192, 512)]);
    assert_eq!(BlockList::parse(b"  \n").unwrap(), BlockList::default());
}

#[rstest]
#[case::not_a_pair("0 4096\n")]
#[case::negative("-1,4096\n")]
#[case::three_fields("0,1,2\n")]
#[case::json_garbage("{\"volume_capacity_bytes\": }")]
#[case::json_unknown_field(r#"{"volume_capacity_bytes":1,"block_metadata":[],"extra":1}"#)]
#[case::json_missing_capacity(r#"{"block_metadata":[]}"#)]
#[case::json_bad_type(r#"{"block_metadata_type":"SOMETIMES","volume_capacity_bytes":1}"#)]
#[case::json_negative(r#"{"volume_capacity_bytes":-4}"#)]
fn syntax_errors(#[case] text: &str) {
    let e = BlockList::parse(text.as_bytes()).unwrap_err();
    assert!(matches!(e, BlockListError::Syntax(_)), "{e:?}");
}

#[test]
fn inconsistent_responses() {
    let mixed = r#"{"block_metadata_type":"FIXED_LENGTH","volume_capacity_bytes":1048576,
      "block_metadata":[{"byte_offset":0,"size_bytes":4096},{"byte_offset":8192,"size_bytes":512}]}"#;
    let e = BlockList::parse(mixed.as_bytes()).unwrap_err();
    assert!(matches!(e, BlockListError::Inconsistent(_)), "{e:?}");
    let other = CSI.replace("1048576", "2097152");
    let e = BlockList::parse(format!("{CSI}\n{other}").as_bytes()).unwrap_err();
    assert!(matches!(e, BlockListError::Inconsistent(_)), "{e:?}");
}

#[test]
fn normalize_sorts_merges_and_rejects() {
    let l = BlockList {
        capacity: None,
        ranges: vec![r(8192, 4096), r(0, 4096), r(4096, 4096), r(100_000, 1)],
    };
    assert_eq!(
        l.normalize(1 << 20).unwrap(),
        vec![r(0, 12288), r(100_000, 1)]
    );
    let past = BlockList {
        capacity: None,
        ranges: vec![r((1 << 20) - 10, 11)],
    };
    assert!(matches!(
        past.normalize(1 << 20),
        Err(BlockListError::OutOfRange { .. })
    ));
    let overflow = BlockList {
        capacity: None,
        ranges: vec![r(u64::MAX, 2)],
    };
    assert!(matches!(
        overflow.normalize(u64::MAX),
        Err(BlockListError::OutOfRange { .. })
    ));
    let empty = BlockList {
        capacity: None,
        ranges: vec![r(5, 0)],
    };
    assert!(matches!(
        empty.normalize(10),
        Err(BlockListError::OutOfRange { .. })
    ));
    let overlap = BlockList {
        capacity: None,
        ranges: vec![r(0, 4096), r(4095, 2)],
    };
    assert!(matches!(
        overlap.normalize(1 << 20),
        Err(BlockListError::Overlap { .. })
    ));
    let csi = BlockList::parse(CSI.as_bytes()).unwrap();
    assert!(matches!(
        csi.normalize(2 << 20),
        Err(BlockListError::CapacityMismatch {
            list: 1_048_576,
            volume: 2_097_152
        })
    ));
}

proptest! {
    /// Normalized output is sorted, disjoint, non-touching, inside the volume, covers exactly
    /// the input bytes, and survives the plain-line encoding.
    #[test]
    fn normalize_is_exact(blocks in proptest::collection::btree_set(0u64..512, 0..64)) {
        let cap = 512 * 4096;
        let list = BlockList {
            capacity: Some(cap),
            ranges: blocks.iter().rev().map(|b| r(b * 4096, 4096)).collect(),
        };
        let norm = list.normalize(cap).unwrap();
        let covered: u64 = norm.iter().map(|x| x.len).sum();
        prop_assert_eq!(covered, blocks.len() as u64 * 4096);
        for w in norm.windows(2) {
            prop_assert!(w[0].end() < w[1].offset);
        }
        for b in &blocks {
            prop_assert!(norm.iter().any(|x| x.offset <= b * 4096 && (b + 1) * 4096 <= x.end()));
        }
        let again = BlockList::parse(list.to_lines().as_bytes()).unwrap();
        prop_assert_eq!(again.normalize(cap).unwrap(), norm);
    }
}
