//! Regression tests: every input that once crashed a fuzz target or broke a round trip,
//! named after the target that found it.

#[allow(unused_imports, reason = "used once fuzzing finds something")]
use super::robustness::parse_everything;
