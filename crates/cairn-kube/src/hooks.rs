//! Application-consistency hooks: commands run in pods before and after volume snapshots.
