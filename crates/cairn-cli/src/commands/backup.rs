//! `cairn backup`.

use anyhow::{Context, bail};
use cairn_repo::format::BlockList;
use cairn_repo::{
    BackupOptions, BackupOutcome, BlockSelection, ParentChoice, VolumeBackupOptions, backup_paths,
    backup_stream, backup_volume,
};
use cairn_state::OperationKind;

use crate::args::{BackupArgs, GlobalArgs};
use crate::commands::cancel_on_ctrl_c;
use crate::exit::ExitStatus;
use crate::printer::{JSON_SCHEMA, Printer, human_bytes};
use crate::{progress, record, repo};

pub(crate) async fn run(
    g: &GlobalArgs,
    a: &BackupArgs,
    printer: &Printer,
) -> anyhow::Result<ExitStatus> {
    if a.stdin && !a.paths.is_empty() {
        bail!("--stdin takes no paths");
    }
    if !a.stdin && a.paths.is_empty() {
        bail!("nothing to back up: give paths, --volume DEVICE, or --stdin --name NAME");
    }
    if a.volume && a.paths.len() != 1 {
        bail!("--volume takes exactly one device or image");
    }
    let selection = selection(a)?;
    let repo = repo::open(g, printer, true).await?;
    let mut opts = BackupOptions::default();
    opts.tags.clone_from(&a.tags);
    opts.hostname.clone_from(&a.host);
    opts.identity.clone_from(&a.source_id);
    opts.full = a.full;
    opts.upload_concurrency = a.upload_concurrency.max(1);
    opts.retain_until = retain_until(g, a)?;
    opts.parent = match &a.parent {
        Some(p) => ParentChoice::Explicit(p.clone()),
        None => ParentChoice::Auto,
    };
    let cancel = cancel_on_ctrl_c(printer);
    let progress = progress::for_run(printer, "backup");
    let source = if a.stdin {
        format!("stdin:{}", a.name.as_deref().unwrap_or_default())
    } else {
        a.paths
            .iter()
            .map(|p| {
                std::path::absolute(p)
                    .unwrap_or_else(|_| p.clone())
                    .display()
                    .to_string()
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    let outcome = record::track(
        g,
        printer,
        OperationKind::Backup,
        &source,
        progress,
        |progress| async move {
            if a.stdin {
                let name = a.name.clone().unwrap_or_default();
                backup_stream(&repo, std::io::stdin(), &name, &opts, progress, cancel).await
            } else if a.volume {
                let mut vopts = VolumeBackupOptions::new(opts);
                vopts.selection = selection;
                vopts.full_on_mismatch = a.full_on_mismatch;
                vopts.patches = !a.no_patches;
                backup_volume(&repo, &a.paths[0], &vopts, progress, cancel).await
            } else {
                backup_paths(&repo, &a.paths, &opts, progress, cancel).await
            }
        },
    )
    .await?;
    report(printer, &outcome)?;
    Ok(if outcome.snapshot.summary.errors > 0 {
        ExitStatus::Problems
    } else {
        ExitStatus::Success
    })
}

/// Reads and parses the block list a volume backup was given, before the repository is
/// opened: a malformed list fails the backup before anything is written.
fn selection(a: &BackupArgs) -> anyhow::Result<Option<BlockSelection>> {
    let read = |p: &std::path::Path| -> anyhow::Result<BlockList> {
        let bytes = fs_err::read(p)?;
        BlockList::parse(&bytes).with_context(|| format!("block list {}", p.display()))
    };
    Ok(if let Some(p) = &a.changed_blocks {
        Some(BlockSelection::Changed(read(p)?))
    } else if let Some(p) = &a.allocated_blocks {
        Some(BlockSelection::Allocated(read(p)?))
    } else {
        a.since_image.clone().map(BlockSelection::SinceImage)
    })
}

fn report(printer: &Printer, o: &BackupOutcome) -> anyhow::Result<()> {
    let s = &o.snapshot.summary;
    if printer.json {
        let mut v = serde_json::json!({
            "schema": JSON_SCHEMA, "type": "summary", "operation": "backup",
            "snapshot": o.id, "parent": o.snapshot.parent, "source": o.snapshot.source,
            "summary": s,
        });
        if let Some(t) = o.snapshot.retain_until {
            v["retain_until"] = serde_json::json!(t);
        }
        printer.json(&v)?;
        return Ok(());
    }
    if printer.quiet {
        printer.line(&o.id.to_hex())?;
        return Ok(());
    }
    let parent = o
        .snapshot
        .parent
        .map_or_else(|| "none".to_string(), |p| p.short());
    printer.line(&format!(
        "snapshot {} saved (parent {parent})",
        o.id.short()
    ))?;
    if let Some(t) = o.snapshot.retain_until {
        printer.line(&format!(
            "  locked on the store until {t}: the snapshot and all it needs"
        ))?;
    }
    printer.line(&format!(
        "  {} files, {} dirs, {} read; {} in total",
        s.files,
        s.dirs,
        human_bytes(s.bytes_read),
        human_bytes(s.total_bytes)
    ))?;
    printer.line(&format!(
        "  added {} ({} blobs), stored {} after compression and encryption, in {:.2}s",
        human_bytes(s.bytes_added),
        s.blobs_added,
        human_bytes(s.bytes_stored),
        s.duration_ms as f64 / 1000.0
    ))?;
    if s.errors > 0 {
        printer.warn(&format!(
            "{} entries could not be read (see warnings above)",
            s.errors
        ));
    }
    Ok(())
}

/// The lock time: --retain-until, else now + --retain-for, else now + the location's
/// `--retain-days`, else none.
fn retain_until(g: &GlobalArgs, a: &BackupArgs) -> anyhow::Result<Option<jiff::Timestamp>> {
    if let Some(t) = a.retain_until {
        return Ok(Some(whole_seconds(t)));
    }
    let span = match a.retain_for {
        Some(span) => span,
        None => match repo::location_retain_days(g)? {
            Some(days) => jiff::Span::new().days(i64::from(days)),
            None => return Ok(None),
        },
    };
    let now = jiff::Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC);
    let until = now
        .checked_add(span)
        .with_context(|| format!("retention {span} from now is out of range"))?;
    Ok(Some(whole_seconds(until.timestamp())))
}

/// Rounds up to a whole second, the precision S3 keeps, so the snapshot and the store agree.
fn whole_seconds(t: jiff::Timestamp) -> jiff::Timestamp {
    let up = i64::from(t.subsec_nanosecond() > 0);
    jiff::Timestamp::from_second(t.as_second().saturating_add(up)).unwrap_or(t)
}
