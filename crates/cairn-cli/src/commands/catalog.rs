//! `cairn catalog`: the files inside a snapshot, `ls -l` style.

use cairn_repo::format::{Node, NodeKind};
use cairn_repo::{SnapshotFilter, catalog};

use crate::args::{CatalogArgs, GlobalArgs};
use crate::commands::split_ref;
use crate::exit::ExitStatus;
use crate::printer::{JSON_SCHEMA, Printer};
use crate::repo;

fn mode_string(n: &Node) -> String {
    let t = match n.kind {
        NodeKind::Dir => 'd',
        NodeKind::Symlink => 'l',
        NodeKind::CharDevice => 'c',
        NodeKind::BlockDevice => 'b',
        NodeKind::Fifo => 'p',
        NodeKind::Socket => 's',
        _ => '-',
    };
    let mut s = String::from(t);
    for (i, c) in "rwxrwxrwx".chars().enumerate() {
        s.push(if n.mode & (1 << (8 - i)) != 0 { c } else { '-' });
    }
    s
}

fn kind_name(k: NodeKind) -> &'static str {
    match k {
        NodeKind::Dir => "dir",
        NodeKind::Symlink => "symlink",
        NodeKind::CharDevice => "char-device",
        NodeKind::BlockDevice => "block-device",
        NodeKind::Fifo => "fifo",
        NodeKind::Socket => "socket",
        _ => "file",
    }
}

pub(crate) async fn run(
    g: &GlobalArgs,
    a: &CatalogArgs,
    printer: &Printer,
) -> anyhow::Result<ExitStatus> {
    let repo = repo::open(g, printer, false).await?;
    let (reference, sub) = split_ref(&a.snapshot);
    let path = if a.path.is_empty() {
        sub
    } else {
        a.path.as_str()
    };
    let (id, snap) = repo
        .find_snapshot(reference, &SnapshotFilter::from(&a.filter))
        .await?;
    let entries = catalog(&repo, &snap, &id.short(), path, a.recursive).await?;
    if printer.json {
        let v: Vec<_> = entries
            .iter()
            .map(|e| {
                let n = &e.node;
                let mtime = jiff::Timestamp::from_nanosecond(i128::from(n.mtime_ns)).ok();
                serde_json::json!({
                    "path": e.path, "type": kind_name(n.kind), "mode": format!("{:o}", n.mode), "uid": n.uid, "gid": n.gid,
                    "size": n.size, "mtime": mtime, "link_target": (n.kind == NodeKind::Symlink).then(|| String::from_utf8_lossy(&n.link_target).into_owned()),
                })
            })
            .collect();
        printer.json(&serde_json::json!({"schema": JSON_SCHEMA, "snapshot": id, "entries": v}))?;
        return Ok(ExitStatus::Success);
    }
    for e in &entries {
        let n = &e.node;
        let mtime = jiff::Timestamp::from_nanosecond(i128::from(n.mtime_ns))
            .map(|t| t.strftime("%Y-%m-%d %H:%M").to_string())
            .unwrap_or_default();
        let link = if n.kind == NodeKind::Symlink {
            format!(" -> {}", String::from_utf8_lossy(&n.link_target))
        } else {
            String::new()
        };
        printer.line(&format!(
            "{} {:>6} {:>6} {:>12} {} {}{link}",
            mode_string(n),
            n.uid,
            n.gid,
            n.size,
            mtime,
            e.path
        ))?;
    }
    Ok(ExitStatus::Success)
}
