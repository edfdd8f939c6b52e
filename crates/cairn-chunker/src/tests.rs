use proptest::prelude::*;
use rstest::rstest;

use super::*;

fn small() -> CdcParams {
    CdcParams::new(64, 256, 4096, 42).unwrap()
}

fn data(seed: u64, len: usize) -> Vec<u8> {
    // xorshift: deterministic pseudo-random bytes
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[rstest]
#[case(0, 0, 0)]
#[case(63, 256, 1024)]
#[case(64, 128, 1024)]
#[case(2048, 1024, 4096)]
#[case(64, 256, 1 << 25)]
fn invalid_params_are_errors(#[case] min: u32, #[case] avg: u32, #[case] max: u32) {
    assert!(CdcParams::new(min, avg, max, 0).is_err());
}

#[test]
fn empty_input_has_no_chunks() {
    assert!(chunk_ranges(&small(), &[]).is_empty());
    assert!(StreamChunker::new(&[][..], small()).next().is_none());
}

#[test]
fn seed_changes_cut_points() {
    let d = data(1, 100_000);
    let a = chunk_ranges(&CdcParams::new(64, 256, 1024, 1).unwrap(), &d);
    let b = chunk_ranges(&CdcParams::new(64, 256, 1024, 2).unwrap(), &d);
    assert_ne!(a, b);
}

/// A reader that returns at most 7 bytes per call, to exercise refills.
struct Trickle<'a>(&'a [u8]);
impl std::io::Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(7).min(self.0.len());
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

proptest! {
    #[test]
    fn chunks_concatenate_and_respect_bounds(seed in any::<u64>(), len in 0usize..20_000) {
        let d = data(seed, len);
        let p = small();
        let chunks: Vec<Vec<u8>> = StreamChunker::new(&d[..], p).map(Result::unwrap).collect();
        prop_assert_eq!(chunks.concat(), d.clone());
        for c in chunks.iter().take(chunks.len().saturating_sub(1)) {
            prop_assert!(c.len() >= p.min() as usize && c.len() <= p.max() as usize);
        }
        if let Some(last) = chunks.last() {
            prop_assert!(!last.is_empty() && last.len() <= p.max() as usize);
        }
        // The stream chunker agrees with the in-memory one, whatever the read sizes.
        let ranges: Vec<Vec<u8>> = chunk_ranges(&p, &d).into_iter().map(|r| d[r].to_vec()).collect();
        prop_assert_eq!(&ranges, &chunks);
        let trickled: Vec<Vec<u8>> = StreamChunker::new(Trickle(&d), p).map(Result::unwrap).collect();
        prop_assert_eq!(trickled, chunks);
    }

    #[test]
    fn chunks_before_an_insert_are_unchanged(seed in any::<u64>(), at in 0usize..30_000, byte in any::<u8>()) {
        let d = data(seed, 30_000);
        let mut e = d.clone();
        e.insert(at, byte);
        let p = small();
        let a: Vec<_> = chunk_ranges(&p, &d).into_iter().filter(|r| r.end < at).collect();
        let b: Vec<_> = chunk_ranges(&p, &e).into_iter().take(a.len()).collect();
        prop_assert_eq!(a, b);
    }
}

/// A 1-byte insert changes O(1) chunks: on average over many inserts, only a few.
#[test]
fn one_byte_insert_changes_few_chunks_on_average() {
    let p = small();
    let mut total = 0;
    let rounds = 200;
    for i in 0..rounds {
        let d = data(1000 + i, 60_000);
        let mut e = d.clone();
        e.insert((i as usize * 7919) % 50_000, i as u8);
        let a: std::collections::HashSet<&[u8]> =
            chunk_ranges(&p, &d).into_iter().map(|r| &d[r]).collect();
        total += chunk_ranges(&p, &e)
            .into_iter()
            .filter(|r| !a.contains(&e[r.clone()]))
            .count();
    }
    let mean = total as f64 / rounds as f64;
    assert!(mean <= 4.0, "mean {mean} new chunks per 1-byte insert");
}
