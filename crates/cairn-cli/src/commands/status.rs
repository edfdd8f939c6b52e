//! `cairn status`: active and recent operations from the local state.

use std::fmt::Write as _;
use std::io::IsTerminal;
use std::time::Duration;

use cairn_state::{OpState, Operation};
use jiff::Timestamp;

use crate::args::StatusArgs;
use crate::exit::ExitStatus;
use crate::printer::{JSON_SCHEMA, Printer, human_bytes};
use crate::state;

pub(crate) async fn run(a: &StatusArgs, printer: &Printer) -> anyhow::Result<ExitStatus> {
    let db = state::open()?;
    let limit = (!a.all).then_some(a.limit);
    if !a.watch {
        show(printer, &db.operations(limit)?, false)?;
        return Ok(ExitStatus::Success);
    }
    let clear = !printer.json && std::io::stdout().is_terminal();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = tick.tick() => show(printer, &db.operations(limit)?, clear)?,
            _ = tokio::signal::ctrl_c() => return Ok(ExitStatus::Success),
        }
    }
}

fn show(printer: &Printer, ops: &[Operation], clear: bool) -> anyhow::Result<()> {
    let now = Timestamp::now();
    if printer.json {
        let ops: Vec<_> = ops.iter().map(|o| json(o, now)).collect();
        printer.json(&serde_json::json!({
            "schema": JSON_SCHEMA, "type": "status", "time": now, "operations": ops,
        }))?;
        return Ok(());
    }
    if clear {
        printer.line("\x1b[2J\x1b[H")?;
    }
    if ops.is_empty() {
        printer.line("no operations recorded")?;
        return Ok(());
    }
    let mut rows = vec![
        [
            "ID", "KIND", "STATE", "SOURCE", "BYTES", "RATE", "ELAPSED", "FINISHED", "ERROR",
        ]
        .map(String::from),
    ];
    for o in ops {
        let secs = elapsed(o, now);
        let bytes = match o.bytes_total {
            Some(t) => format!("{} / {}", human_bytes(o.bytes_done), human_bytes(t)),
            None => human_bytes(o.bytes_done),
        };
        let finished = o.finished.map_or_else(
            || "-".to_string(),
            |f| f.strftime("%Y-%m-%d %H:%M:%S").to_string(),
        );
        let mut source = o.source.clone();
        if let Some(s) = &o.schedule {
            source = format!("{source} [{s}]");
        }
        rows.push([
            o.id.to_string(),
            o.kind.to_string(),
            o.state.to_string(),
            source,
            bytes,
            format!("{}/s", human_bytes(rate(o, secs) as u64)),
            human_duration(secs),
            finished,
            o.error.clone().unwrap_or_default(),
        ]);
    }
    let widths: Vec<usize> = (0..9)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    for r in &rows {
        let mut line = String::new();
        for (c, cell) in r.iter().enumerate() {
            if c == 8 {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<w$}  ", w = widths[c]);
            }
        }
        printer.line(line.trim_end())?;
    }
    Ok(())
}

/// Seconds from start to end (or to now while active).
fn elapsed(o: &Operation, now: Timestamp) -> f64 {
    let end = match o.state {
        OpState::Active => now,
        _ => o.finished.unwrap_or(o.updated),
    };
    end.duration_since(o.started).as_secs_f64().max(0.0)
}

fn rate(o: &Operation, secs: f64) -> f64 {
    if secs > 0.0 {
        o.bytes_done as f64 / secs
    } else {
        0.0
    }
}

fn human_duration(secs: f64) -> String {
    let s = secs.round() as u64;
    match s {
        0..60 => format!("{secs:.1}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
    }
}

fn json(o: &Operation, now: Timestamp) -> serde_json::Value {
    let secs = elapsed(o, now);
    let mut v = serde_json::to_value(o).unwrap_or_default();
    if let Some(m) = v.as_object_mut() {
        m.insert("elapsed_seconds".into(), secs.into());
        m.insert("bytes_per_second".into(), rate(o, secs).into());
    }
    v
}
