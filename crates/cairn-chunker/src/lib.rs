//! Content-defined chunking for files and streams (FastCDC 2020, with a secret gear seed).
//!
//! The cut points depend only on the bytes since the previous cut, so an insert shifts O(1)
//! chunks. [`StreamChunker`] reads any `io::Read` through a bounded buffer (at most twice the
//! maximum chunk size) and yields owned chunks, so callers can hash and compress them in
//! parallel. Pure and synchronous.

use std::io::{self, Read};
use std::ops::Range;

use fastcdc::v2020::{FastCDC, Normalization};

/// Errors in chunker parameters.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChunkerError {
    /// The sizes are out of range or out of order.
    #[error(
        "invalid chunk sizes min={min} avg={avg} max={max}: need 64 ≤ min ≤ avg ≤ max ≤ 16 MiB, 256 ≤ avg ≤ 4 MiB, 1 KiB ≤ max"
    )]
    InvalidSizes {
        /// Minimum chunk size.
        min: u32,
        /// Average chunk size.
        avg: u32,
        /// Maximum chunk size.
        max: u32,
    },
}

/// Validated content-defined chunking parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CdcParams {
    min: u32,
    avg: u32,
    max: u32,
    seed: u64,
}

impl CdcParams {
    /// Checks the sizes against FastCDC's limits (which it would otherwise enforce by panicking).
    ///
    /// # Errors
    /// `ChunkerError::InvalidSizes` when out of range or out of order.
    pub fn new(min: u32, avg: u32, max: u32, seed: u64) -> Result<Self, ChunkerError> {
        use fastcdc::v2020::{
            AVERAGE_MAX, AVERAGE_MIN, MAXIMUM_MAX, MAXIMUM_MIN, MINIMUM_MAX, MINIMUM_MIN,
        };
        let ok = (MINIMUM_MIN..=MINIMUM_MAX).contains(&min)
            && (AVERAGE_MIN..=AVERAGE_MAX).contains(&avg)
            && (MAXIMUM_MIN..=MAXIMUM_MAX).contains(&max)
            && min <= avg
            && avg <= max;
        if ok {
            Ok(Self {
                min,
                avg,
                max,
                seed,
            })
        } else {
            Err(ChunkerError::InvalidSizes { min, avg, max })
        }
    }

    /// Cairn's default for files: 256 KiB / 1 MiB / 4 MiB.
    pub fn default_with_seed(seed: u64) -> Self {
        Self {
            min: 256 * 1024,
            avg: 1024 * 1024,
            max: 4 * 1024 * 1024,
            seed,
        }
    }

    /// Minimum chunk size.
    pub fn min(&self) -> u32 {
        self.min
    }
    /// Average chunk size.
    pub fn avg(&self) -> u32 {
        self.avg
    }
    /// Maximum chunk size.
    pub fn max(&self) -> u32 {
        self.max
    }

    fn cdc<'a>(&self, data: &'a [u8]) -> FastCDC<'a> {
        FastCDC::with_level_and_seed(
            data,
            self.min,
            self.avg,
            self.max,
            Normalization::Level1,
            self.seed,
        )
    }
}

/// The chunk ranges of an in-memory buffer (the whole buffer is the whole input).
pub fn chunk_ranges(params: &CdcParams, data: &[u8]) -> Vec<Range<usize>> {
    if data.is_empty() {
        return Vec::new();
    }
    params
        .cdc(data)
        .map(|c| c.offset..c.offset + c.length)
        .collect()
}

/// Chunks a reader into owned, content-defined chunks.
#[derive(Debug)]
pub struct StreamChunker<R> {
    reader: R,
    params: CdcParams,
    buf: Vec<u8>,
    pos: usize,
    eof: bool,
}

impl<R: Read> StreamChunker<R> {
    /// A chunker over `reader`.
    pub fn new(reader: R, params: CdcParams) -> Self {
        Self {
            reader,
            params,
            buf: Vec::new(),
            pos: 0,
            eof: false,
        }
    }

    fn fill(&mut self) -> io::Result<()> {
        // Keep at least `max` bytes after `pos` unless the reader is exhausted.
        let want = self.params.max as usize;
        if self.pos > 0 && self.buf.len() - self.pos < want {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        while !self.eof && self.buf.len() - self.pos < want {
            let start = self.buf.len();
            let target = (self.pos + 2 * want).max(start + 64 * 1024);
            self.buf.resize(target, 0);
            match self.reader.read(&mut self.buf[start..]) {
                Ok(0) => {
                    self.buf.truncate(start);
                    self.eof = true;
                }
                Ok(n) => self.buf.truncate(start + n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => self.buf.truncate(start),
                Err(e) => {
                    self.buf.truncate(start);
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// The next chunk, or `None` at the end of the input.
    ///
    /// # Errors
    /// Any read error of the underlying reader.
    pub fn next_chunk(&mut self) -> io::Result<Option<Vec<u8>>> {
        self.fill()?;
        let rest = &self.buf[self.pos..];
        if rest.is_empty() {
            return Ok(None);
        }
        let len = match self.params.cdc(rest).next() {
            Some(c) => c.length,
            None => rest.len(),
        };
        let chunk = rest[..len].to_vec();
        self.pos += len;
        Ok(Some(chunk))
    }
}

impl<R: Read> Iterator for StreamChunker<R> {
    type Item = io::Result<Vec<u8>>;
    fn next(&mut self) -> Option<Self::Item> {
        self.next_chunk().transpose()
    }
}

#[cfg(test)]
mod tests;
