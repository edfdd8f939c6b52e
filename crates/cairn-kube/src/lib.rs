//! Cairn's application layer: protect a Kubernetes application (its resources and the data of
//! its PVCs) with the repository engine, and restore it.
//!
//! Talks to clusters only through kube-rs, so every path runs against a real API server
//! (`KUBECONFIG`) as well as the in-process one of the test kit. Knows nothing of packs.

pub mod hooks;
