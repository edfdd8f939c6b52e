//! `cairn forget`, `prune`, `check`, `repair index`, `diff`, `unlock`.

use std::time::Duration;

use anyhow::{Context, bail};
use cairn_repo::{
    CheckOptions, KeepRules, PruneOptions, PruneReport, Repository, SnapshotDiff, SnapshotFilter,
};
use cairn_state::OperationKind;

use crate::args::GlobalArgs;
use crate::commands::maint_args::{
    CheckArgs, DiffArgs, ForgetArgs, KeepArgs, PruneArgs, PruneOpts, RepairCommand, UnlockArgs,
};
use crate::exit::ExitStatus;
use crate::printer::{JSON_SCHEMA, Printer, human_bytes};
use crate::{record, repo};

/// Test-only: shortens prune's safety margin (docs/format.md §14). Never set it in production.
const MARGIN_ENV: &str = "CAIRN_TEST_PRUNE_MARGIN_SECS";

fn keep_rules(k: &KeepArgs) -> anyhow::Result<KeepRules> {
    let mut r = KeepRules::default();
    r.last = k.keep_last;
    r.hourly = k.keep_hourly;
    r.daily = k.keep_daily;
    r.weekly = k.keep_weekly;
    r.monthly = k.keep_monthly;
    r.yearly = k.keep_yearly;
    r.within = k
        .keep_within
        .as_deref()
        .map(|s| {
            s.parse::<jiff::Span>().with_context(|| {
                format!("--keep-within {s:?}: expected a span like 7d, 36h, 1y 6mo")
            })
        })
        .transpose()?;
    r.tags.clone_from(&k.keep_tag);
    Ok(r)
}

fn prune_options(o: &PruneOpts, dry_run: bool) -> anyhow::Result<PruneOptions> {
    let mut p = PruneOptions::default();
    if !(0.0..=100.0).contains(&o.repack_unused) {
        bail!("--repack-unused must be a percentage from 0 to 100");
    }
    p.repack_unused = if o.repack_unused >= 100.0 {
        2.0
    } else {
        o.repack_unused / 100.0
    };
    p.dry_run = dry_run;
    if let Ok(v) = std::env::var(MARGIN_ENV) {
        let secs: f64 = v.parse().with_context(|| format!("{MARGIN_ENV}={v:?}"))?;
        p.margin = Duration::from_secs_f64(secs.max(0.0));
    }
    Ok(p)
}

pub(crate) async fn forget(
    g: &GlobalArgs,
    a: &ForgetArgs,
    printer: &Printer,
) -> anyhow::Result<ExitStatus> {
    let rules = keep_rules(&a.keep)?;
    let prune_opts = prune_options(&a.prune_opts, a.dry_run)?;
    let repo = repo::open(g, printer, false).await?;
    let tz = jiff::tz::TimeZone::system();
    let filter = SnapshotFilter::from(&a.filter);
    let entries = tracked(g, printer, OperationKind::Forget, &repo, || {
        cairn_repo::forget(&repo, &filter, &rules, &tz, a.dry_run)
    })
    .await?;
    let removed = entries.iter().filter(|e| !e.decision.keep).count();
    if printer.json {
        let v: Vec<_> = entries
            .iter()
            .map(|e| {
                serde_json::json!({
                    "id": e.id, "time": e.snapshot.time, "group": e.decision.group,
                    "keep": e.decision.keep, "reasons": e.decision.reasons,
                })
            })
            .collect();
        printer.json(&serde_json::json!({
            "schema": JSON_SCHEMA, "type": "forget", "dry_run": a.dry_run,
            "snapshots": v, "removed": removed,
        }))?;
    } else {
        let mut group = None;
        for e in &entries {
            if group != Some(&e.decision.group) {
                group = Some(&e.decision.group);
                printer.line(&format!("{}:", e.decision.group))?;
            }
            let time = e
                .snapshot
                .time
                .to_zoned(tz.clone())
                .strftime("%Y-%m-%d %H:%M:%S %Z")
                .to_string();
            let what = if e.decision.keep {
                format!("keep    ({})", e.decision.reasons.join(", "))
            } else if a.dry_run {
                "would forget".to_string()
            } else {
                "forgotten".to_string()
            };
            printer.line(&format!("  {}  {time}  {what}", e.id.short()))?;
        }
        if !printer.quiet {
            printer.line(&format!(
                "{} snapshots {}forgotten, {} kept",
                removed,
                if a.dry_run { "would be " } else { "" },
                entries.len() - removed
            ))?;
        }
    }
    if a.prune {
        let report = tracked(g, printer, OperationKind::Prune, &repo, || {
            cairn_repo::prune(&repo, &prune_opts)
        })
        .await?;
        print_prune(printer, &report)?;
    }
    Ok(ExitStatus::Success)
}

/// Runs `f` recorded in the local state (`cairn status`) as an operation on `repo`. Its
/// output is the command's own (no progress events: these commands print one document).
async fn tracked<T, Fut>(
    g: &GlobalArgs,
    printer: &Printer,
    kind: OperationKind,
    repo: &Repository,
    f: impl FnOnce() -> Fut,
) -> anyhow::Result<T>
where
    Fut: Future<Output = cairn_repo::Result<T>>,
{
    let quiet: cairn_repo::DynProgress = std::sync::Arc::new(cairn_repo::NoProgress);
    record::track(g, printer, kind, repo.location(), quiet, |_| f()).await
}

pub(crate) async fn prune(
    g: &GlobalArgs,
    a: &PruneArgs,
    printer: &Printer,
) -> anyhow::Result<ExitStatus> {
    let opts = prune_options(&a.opts, a.dry_run)?;
    let repo = repo::open(g, printer, false).await?;
    let report = tracked(g, printer, OperationKind::Prune, &repo, || {
        cairn_repo::prune(&repo, &opts)
    })
    .await?;
    print_prune(printer, &report)?;
    Ok(ExitStatus::Success)
}

fn print_prune(printer: &Printer, r: &PruneReport) -> anyhow::Result<()> {
    if printer.json {
        printer.json(&serde_json::json!({"schema": JSON_SCHEMA, "type": "prune", "report": r}))?;
        return Ok(());
    }
    let would = if r.dry_run { "would be " } else { "" };
    printer.line(&format!(
        "{} snapshots, {} packs ({})",
        r.snapshots,
        r.packs,
        human_bytes(r.pack_bytes)
    ))?;
    printer.line(&format!(
        "deleted: {} packs {would}deleted, {} {would}freed",
        r.deleted_packs,
        human_bytes(r.freed_bytes)
    ))?;
    printer.line(&format!(
        "marked: {} packs ({}) {would}marked as garbage, {} of them repacked ({} {would}written); deleted by a prune after the safety margin",
        r.marked_packs,
        human_bytes(r.marked_bytes),
        r.repacked_packs,
        human_bytes(r.repack_written_bytes)
    ))?;
    if r.unmarked_packs > 0 {
        printer.line(&format!(
            "kept: {} marked packs are referenced again",
            r.unmarked_packs
        ))?;
    }
    if r.retained_packs > 0 {
        printer.line(&format!(
            "locked: {} packs needed by {} snapshots under object lock are neither deleted nor repacked",
            r.retained_packs, r.retained_snapshots
        ))?;
    }
    for d in &r.deferred {
        printer.line(&format!("deferred: {d}"))?;
    }
    Ok(())
}

fn parse_percent(s: &str) -> anyhow::Result<f64> {
    let v: f64 =
        s.trim().trim_end_matches('%').parse().with_context(|| {
            format!("--read-data-subset {s:?}: expected a percentage such as 10%")
        })?;
    if !(0.0..=100.0).contains(&v) {
        bail!("--read-data-subset must be between 0% and 100%");
    }
    Ok(v / 100.0)
}

pub(crate) async fn check(
    g: &GlobalArgs,
    a: &CheckArgs,
    printer: &Printer,
) -> anyhow::Result<ExitStatus> {
    let mut opts = CheckOptions::default();
    opts.read_data = a.read_data || a.read_data_subset.is_some();
    opts.subset = a
        .read_data_subset
        .as_deref()
        .map(parse_percent)
        .transpose()?;
    let repo = repo::open(g, printer, false).await?;
    let r = tracked(g, printer, OperationKind::Check, &repo, || {
        cairn_repo::check(&repo, &opts)
    })
    .await?;
    if printer.json {
        printer.json(&serde_json::json!({
            "schema": JSON_SCHEMA, "type": "check", "damaged": r.is_damaged(),
            "problems": r.problems, "affected": r.affected, "warnings": r.warnings, "stats": r.stats,
        }))?;
    } else {
        for w in &r.warnings {
            printer.warn(w);
        }
        for p in &r.problems {
            printer.line(&format!("damaged: {}: {}", p.object, p.message))?;
        }
        for a in &r.affected {
            printer.line(&format!(
                "affected: snapshot {}: {}",
                a.snapshot.short(),
                a.what
            ))?;
        }
        if !printer.quiet {
            let s = &r.stats;
            printer.line(&format!(
                "checked {} snapshots, {} index files, {} packs, {} trees and volume nodes{}",
                s.snapshots,
                s.index_files,
                s.packs,
                s.metadata_blobs,
                if opts.read_data {
                    format!(
                        "; read {} packs ({})",
                        s.packs_read,
                        human_bytes(s.bytes_read)
                    )
                } else {
                    String::new()
                }
            ))?;
        }
    }
    if r.is_damaged() {
        printer.error(&format!(
            "the repository is damaged: {} problems",
            r.problems.len()
        ));
        Ok(ExitStatus::Problems)
    } else {
        if !printer.json && !printer.quiet {
            printer.line("no damage found")?;
        }
        Ok(ExitStatus::Success)
    }
}

pub(crate) async fn repair(
    g: &GlobalArgs,
    a: &RepairCommand,
    printer: &Printer,
) -> anyhow::Result<ExitStatus> {
    match a {
        RepairCommand::Index => {
            let repo = repo::open(g, printer, false).await?;
            let r = cairn_repo::repair_index(&repo).await?;
            if printer.json {
                printer.json(&serde_json::json!({"schema": JSON_SCHEMA, "type": "repair-index", "report": r}))?;
            } else {
                for (p, why) in &r.unreadable {
                    printer.warn(&format!("pack {} left unindexed: {why}", p.short()));
                }
                printer.line(&format!(
                    "indexed {} packs ({} blobs) in {} index files, replacing {}",
                    r.packs, r.blobs, r.index_files_written, r.index_files_replaced
                ))?;
            }
            Ok(if r.unreadable.is_empty() {
                ExitStatus::Success
            } else {
                ExitStatus::Problems
            })
        }
    }
}

#[allow(
    clippy::many_single_char_names,
    reason = "a and b are the two snapshots compared throughout"
)]
pub(crate) async fn diff(
    g: &GlobalArgs,
    a: &DiffArgs,
    printer: &Printer,
) -> anyhow::Result<ExitStatus> {
    let repo = repo::open(g, printer, false).await?;
    let f = SnapshotFilter::default();
    let (ia, sa) = repo.find_snapshot(&a.first, &f).await?;
    let (ib, sb) = repo.find_snapshot(&a.second, &f).await?;
    let d = cairn_repo::diff(&repo, &sa, &sb).await?;
    if printer.json {
        printer.json(&serde_json::json!({"schema": JSON_SCHEMA, "type": "diff", "first": ia, "second": ib, "diff": d}))?;
        return Ok(ExitStatus::Success);
    }
    match d {
        SnapshotDiff::Tree(changes) => {
            let (mut add, mut rem, mut chg) = (0, 0, 0);
            for c in &changes {
                let (mark, what) = match c.change {
                    cairn_repo::ChangeKind::Added => {
                        add += 1;
                        ("+", String::new())
                    }
                    cairn_repo::ChangeKind::Removed => {
                        rem += 1;
                        ("-", String::new())
                    }
                    _ => {
                        chg += 1;
                        ("M", format!("  ({})", c.what.join(", ")))
                    }
                };
                let slash = if c.dir { "/" } else { "" };
                printer.line(&format!("{mark} {}{slash}{what}", c.path))?;
            }
            if !printer.quiet {
                printer.line(&format!("{add} added, {rem} removed, {chg} changed"))?;
            }
        }
        SnapshotDiff::Volume(v) => {
            for (s, e) in &v.extents {
                printer.line(&format!("changed bytes {s}..{e} ({})", human_bytes(e - s)))?;
            }
            if v.capacity.0 != v.capacity.1 {
                printer.line(&format!("capacity {} → {}", v.capacity.0, v.capacity.1))?;
            }
            printer.line(&format!(
                "{} extents, {} changed",
                v.extents.len(),
                human_bytes(v.changed_bytes)
            ))?;
        }
        _ => {}
    }
    Ok(ExitStatus::Success)
}

pub(crate) async fn unlock(
    g: &GlobalArgs,
    a: &UnlockArgs,
    printer: &Printer,
) -> anyhow::Result<ExitStatus> {
    let repo = repo::open(g, printer, false).await?;
    let removed = repo.remove_locks(repo.lock_options(), a.remove_all).await?;
    if printer.json {
        let ids: Vec<_> = removed.iter().map(|l| l.id).collect();
        printer
            .json(&serde_json::json!({"schema": JSON_SCHEMA, "type": "unlock", "removed": ids}))?;
    } else {
        for l in &removed {
            let who = match &l.lock {
                Ok(l) => format!("{} by pid {} on {}", l.operation, l.pid, l.hostname),
                Err(e) => format!("unreadable ({e})"),
            };
            printer.line(&format!("removed lock {}: {who}", l.id.short()))?;
        }
        printer.line(&format!("{} locks removed", removed.len()))?;
    }
    Ok(ExitStatus::Success)
}
