//! Integration tests of cairn-kube: logic on real manifests (`manifests`), and end to end
//! against the in-process API server (`server`, once the test kit has it).

mod fixtures;
mod manifests;
