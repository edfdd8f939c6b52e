//! `cairn restore`.

use cairn_repo::{RestoreOptions, SnapshotFilter, restore, verify_volume};
use cairn_state::OperationKind;

use crate::args::{GlobalArgs, RestoreArgs};
use crate::commands::{cancel_on_ctrl_c, split_ref};
use crate::exit::ExitStatus;
use crate::printer::{JSON_SCHEMA, Printer, human_bytes};
use crate::{progress, record, repo};

pub(crate) async fn run(
    g: &GlobalArgs,
    a: &RestoreArgs,
    printer: &Printer,
) -> anyhow::Result<ExitStatus> {
    let repo = repo::open(g, printer, false).await?;
    let (reference, sub) = split_ref(&a.snapshot);
    let filter = SnapshotFilter::from(&a.filter);
    let (id, snap) = repo.find_snapshot(reference, &filter).await?;
    if a.verify_only {
        let cancel = cancel_on_ctrl_c(printer);
        let progress = progress::for_run(printer, "verify");
        let problems = verify_volume(&repo, &snap, &a.target, progress, cancel).await?;
        for e in &problems {
            printer.warn(e);
        }
        if printer.json {
            printer.json(&serde_json::json!({
                "schema": JSON_SCHEMA, "type": "summary", "operation": "verify", "snapshot": id,
                "target": a.target, "errors": problems,
            }))?;
        } else if !printer.quiet && problems.is_empty() {
            printer.line(&format!(
                "{} matches snapshot {}",
                a.target.display(),
                id.short()
            ))?;
        }
        if problems.is_empty() {
            return Ok(ExitStatus::Success);
        }
        printer.error(&format!(
            "{} differs from snapshot {} ({} problems listed above)",
            a.target.display(),
            id.short(),
            problems.len()
        ));
        return Ok(ExitStatus::Problems);
    }
    let mut opts = RestoreOptions::default();
    opts.overwrite = a.overwrite;
    opts.verify = a.verify;
    let cancel = cancel_on_ctrl_c(printer);
    let progress = progress::for_run(printer, "restore");
    let source = format!(
        "{}{}{sub}",
        id.to_hex(),
        if sub.is_empty() { "" } else { ":" }
    );
    let short = id.short();
    let o = record::track(
        g,
        printer,
        OperationKind::Restore,
        &source,
        progress,
        |progress| {
            restore(
                &repo, &snap, &short, sub, &a.target, &opts, progress, cancel,
            )
        },
    )
    .await?;
    for e in &o.errors {
        printer.warn(e);
    }
    if printer.json {
        printer.json(&serde_json::json!({
            "schema": JSON_SCHEMA, "type": "summary", "operation": "restore", "snapshot": id,
            "target": a.target, "files": o.files, "dirs": o.dirs, "bytes": o.bytes, "errors": o.errors,
        }))?;
    } else if !printer.quiet {
        printer.line(&format!(
            "restored snapshot {} to {}: {} files, {} dirs, {}",
            id.short(),
            a.target.display(),
            o.files,
            o.dirs,
            human_bytes(o.bytes)
        ))?;
    }
    if o.errors.is_empty() {
        Ok(ExitStatus::Success)
    } else {
        printer.error(&format!(
            "{} problems during restore (listed above)",
            o.errors.len()
        ));
        Ok(ExitStatus::Problems)
    }
}
