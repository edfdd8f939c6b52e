//! Cairn's application layer: protect a Kubernetes application (its resources and the data of
//! its PVCs) with the repository engine, and restore it.
//!
//! Talks to clusters only through kube-rs, so every path runs against a real API server
//! (`KUBECONFIG`) as well as the in-process one of the test kit. Knows nothing of packs: the
//! application backup is stored through `cairn-repo`'s public API ([`store`]).
//!
//! Backup ([`backup`]): [`collect`] (discovery → [`select`] → [`skip`]) → [`volumes`]
//! ([`mover`] Jobs) → [`store::save`], last. Restore: [`restore::plan`] ([`strip`] →
//! [`transform`] → [`order`]) → [`restore::apply`] → [`volumes::restore_volumes`] →
//! [`restore::release_workloads`]; [`production`] stops workloads around a data restore.

pub mod backup;
pub mod cluster;
pub mod collect;
pub mod document;
pub mod dump;
pub mod error;
pub mod group;
pub mod hooks;
pub mod mover;
pub mod object;
pub mod order;
pub mod production;
pub mod restore;
pub mod select;
pub mod selector;
pub mod skip;
pub mod store;
pub mod strip;
pub mod transform;
pub mod volumes;
pub mod wait;

pub use cluster::Cluster;
pub use document::AppBackup;
pub use error::{Error, Result};
