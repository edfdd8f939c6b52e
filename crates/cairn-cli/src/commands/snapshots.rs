//! `cairn snapshots` (alias `list`).

use cairn_repo::SnapshotFilter;
use cairn_repo::format::{Root, Snapshot};

use crate::args::{GlobalArgs, SnapshotsArgs};
use crate::exit::ExitStatus;
use crate::printer::{JSON_SCHEMA, Printer, human_bytes};
use crate::repo;

fn kind(s: &Snapshot) -> &'static str {
    match s.root {
        Root::Volume(_) => "volume",
        Root::Node(_) if s.source.kind == cairn_repo::format::SourceKind::Stream => "stream",
        Root::Node(_) => "tree",
    }
}

pub(crate) async fn run(
    g: &GlobalArgs,
    a: &SnapshotsArgs,
    printer: &Printer,
) -> anyhow::Result<ExitStatus> {
    let repo = repo::open(g, printer, false).await?;
    let list = repo.snapshots(&SnapshotFilter::from(&a.filter)).await?;
    if printer.json {
        let v: Vec<_> = list
            .iter()
            .map(|(id, s)| {
                let mut v = serde_json::json!({
                    "id": id, "time": s.time, "host": s.hostname, "user": s.username, "tags": s.tags,
                    "kind": kind(s), "source": s.source, "parent": s.parent, "summary": s.summary,
                });
                if let Some(t) = s.retain_until {
                    v["retain_until"] = serde_json::json!(t);
                }
                v
            })
            .collect();
        printer.json(&serde_json::json!({"schema": JSON_SCHEMA, "snapshots": v}))?;
        return Ok(ExitStatus::Success);
    }
    printer.line(&format!(
        "{:<8}  {:<25}  {:<12}  {:<6}  {:>10}  {:<16}  {}",
        "ID", "TIME", "HOST", "KIND", "SIZE", "TAGS", "SOURCE"
    ))?;
    for (id, s) in &list {
        let time = s
            .time
            .to_zoned(jiff::tz::TimeZone::system())
            .strftime("%Y-%m-%d %H:%M:%S %Z")
            .to_string();
        printer.line(&format!(
            "{:<8}  {:<25}  {:<12}  {:<6}  {:>10}  {:<16}  {}",
            id.short(),
            time,
            s.hostname,
            kind(s),
            human_bytes(s.summary.total_bytes),
            s.tags.join(","),
            s.source.paths.join(" ")
                + &s.retain_until
                    .map(|t| format!("  (locked until {t})"))
                    .unwrap_or_default()
        ))?;
    }
    if !printer.quiet {
        printer.line(&format!("{} snapshots", list.len()))?;
    }
    Ok(ExitStatus::Success)
}
