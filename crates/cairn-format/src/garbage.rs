//! Garbage plans: the packs one prune run marked as unreferenced, deleted by a later run once
//! the safety margin has passed (docs/format.md §14).

use serde::{Deserialize, Serialize};

use crate::versioned::{decode_json, encode_json};
use crate::{FormatError, Id};

/// `garbage/<id>`, sealed JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GarbagePlan {
    /// Plan version (1).
    pub version: u32,
    /// When the packs were marked (before the plan was written).
    pub created: jiff::Timestamp,
    /// Host of the prune that marked them.
    pub hostname: String,
    /// The marked packs.
    pub packs: Vec<Id>,
}

impl GarbagePlan {
    /// Newest plan version.
    pub const VERSION: u32 = 1;

    /// Encodes as JSON.
    ///
    /// # Errors
    /// Never in practice.
    pub fn to_bytes(&self) -> Result<Vec<u8>, FormatError> {
        encode_json("garbage plan", self)
    }

    /// Parses a plan.
    ///
    /// # Errors
    /// Malformed JSON or unsupported version.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, FormatError> {
        decode_json("garbage plan", Self::VERSION, bytes, |p: &Self| p.version)
    }
}
