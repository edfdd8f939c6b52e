//! `cairn copy`: snapshots to a second repository.

use anyhow::bail;
use cairn_repo::{Copied, SnapshotFilter, copy_snapshots};
use cairn_state::OperationKind;

use crate::args::{CopyArgs, GlobalArgs};
use crate::commands::cancel_on_ctrl_c;
use crate::exit::ExitStatus;
use crate::printer::{JSON_SCHEMA, Printer, human_bytes};
use crate::{progress, record, repo};

pub(crate) async fn run(
    g: &GlobalArgs,
    a: &CopyArgs,
    printer: &Printer,
) -> anyhow::Result<ExitStatus> {
    let src = repo::open(g, printer, false).await?;
    let mut tg = g.clone();
    tg.repo = Some(a.to.clone());
    tg.password_file.clone_from(&a.to_password_file);
    tg.credentials.clone_from(&a.to_credentials);
    let dst = repo::open_target(&tg).await?;
    if src.config().id == dst.config().id {
        bail!("the source and the target are the same repository");
    }
    let filter = SnapshotFilter::from(&a.filter);
    let ids = if a.snapshots.is_empty() {
        src.snapshots(&filter)
            .await?
            .into_iter()
            .map(|(id, _)| id)
            .collect()
    } else {
        let mut ids = Vec::new();
        for r in &a.snapshots {
            ids.push(src.find_snapshot(r, &filter).await?.0);
        }
        ids
    };
    let cancel = cancel_on_ctrl_c(printer);
    let progress = progress::for_run(printer, "copy");
    let target = dst.location().to_owned();
    let out = record::track(
        g,
        printer,
        OperationKind::Copy,
        &format!("{} -> {target}", src.location()),
        progress,
        |progress| async move { copy_snapshots(&src, &dst, &ids, progress, cancel).await },
    )
    .await?;
    if printer.json {
        let snaps: Vec<_> = out
            .snapshots
            .iter()
            .map(|(s, c)| match c {
                Copied::New(t) => serde_json::json!({"source": s, "target": t, "copied": true}),
                Copied::Present(t) => {
                    serde_json::json!({"source": s, "target": t, "copied": false})
                }
                _ => serde_json::json!({"source": s}),
            })
            .collect();
        printer.json(&serde_json::json!({
            "schema": JSON_SCHEMA, "type": "summary", "operation": "copy", "target": target,
            "snapshots": snaps, "blobs_added": out.blobs_added, "bytes_added": out.bytes_added,
            "bytes_stored": out.bytes_stored, "bytes_read": out.bytes_read,
        }))?;
    } else if !printer.quiet {
        for (s, c) in &out.snapshots {
            match c {
                Copied::New(t) => printer.line(&format!("{} -> {}", s.short(), t.short()))?,
                Copied::Present(t) => printer.line(&format!(
                    "{} already in the target as {}",
                    s.short(),
                    t.short()
                ))?,
                _ => {}
            }
        }
        let new = out
            .snapshots
            .iter()
            .filter(|(_, c)| matches!(c, Copied::New(_)))
            .count();
        printer.line(&format!(
            "copied {new} of {} snapshots to {target}: read {}, added {} ({} stored)",
            out.snapshots.len(),
            human_bytes(out.bytes_read),
            human_bytes(out.bytes_added),
            human_bytes(out.bytes_stored)
        ))?;
    }
    Ok(ExitStatus::Success)
}
