//! `cairn schedule add|list|remove|pause|resume`: the schedules `cairn daemon` runs.

use anyhow::{Context, bail};
use cairn_state::{BackupJob, KeepRules, OpState, Schedule, Trigger, redact_location};

use crate::args::{GlobalArgs, ScheduleAddArgs, ScheduleCommand};
use crate::exit::ExitStatus;
use crate::printer::{JSON_SCHEMA, Printer};
use crate::state;

pub(crate) fn run(
    g: &GlobalArgs,
    cmd: ScheduleCommand,
    printer: &Printer,
) -> anyhow::Result<ExitStatus> {
    let db = state::open()?;
    match cmd {
        ScheduleCommand::Add(a) => {
            let s = build(g, &a)?;
            db.add_schedule(&s)?;
            if printer.json {
                printer.json(&serde_json::json!({
                    "schema": JSON_SCHEMA, "type": "schedule", "schedule": s,
                }))?;
            } else {
                printer.info(&format!(
                    "schedule {} added: {}; run by `cairn daemon`",
                    s.name,
                    s.trigger.describe()
                ));
            }
        }
        ScheduleCommand::List => list(&db, printer)?,
        ScheduleCommand::Remove { name } => {
            db.remove_schedule(&name)?;
            printer.info(&format!("schedule {name} removed"));
        }
        ScheduleCommand::Pause { name } => {
            db.set_paused(&name, true)?;
            printer.info(&format!("schedule {name} paused"));
        }
        ScheduleCommand::Resume { name } => {
            db.set_paused(&name, false)?;
            printer.info(&format!("schedule {name} resumed"));
        }
    }
    Ok(ExitStatus::Success)
}

fn build(g: &GlobalArgs, a: &ScheduleAddArgs) -> anyhow::Result<Schedule> {
    let trigger = match (&a.cron, &a.interval) {
        (Some(c), None) => Trigger::cron(c, a.timezone.as_deref())?,
        (None, Some(i)) => Trigger::interval(i)?,
        _ => bail!("give exactly one of --cron and --interval"),
    };
    if a.volume && a.sources.len() != 1 {
        bail!("--volume takes exactly one device or image");
    }
    // The daemon runs elsewhere (another working directory): store absolute paths.
    let absolute = |p: &str| -> anyhow::Result<String> {
        Ok(std::path::absolute(p)
            .with_context(|| format!("resolving {p}"))?
            .display()
            .to_string())
    };
    let repo = match g.repo.as_deref().filter(|r| !r.is_empty()) {
        None => None,
        Some(r) if r.contains("://") => {
            if redact_location(r) != r {
                bail!(
                    "the repository location holds credentials or a query string; schedules are \
                     stored unencrypted, so give credentials through the environment instead"
                );
            }
            Some(r.to_string())
        }
        Some(r) => Some(absolute(r)?),
    };
    let mut job = BackupJob::default();
    job.sources = a
        .sources
        .iter()
        .map(|s| absolute(s))
        .collect::<anyhow::Result<_>>()?;
    job.volume = a.volume;
    job.tags.clone_from(&a.tags);
    job.host.clone_from(&a.host);
    job.source_id.clone_from(&a.source_id);
    job.repo = repo;
    let mut keep = KeepRules::default();
    keep.last = a.keep_last;
    keep.hourly = a.keep_hourly;
    keep.daily = a.keep_daily;
    keep.weekly = a.keep_weekly;
    keep.monthly = a.keep_monthly;
    keep.yearly = a.keep_yearly;
    Ok(Schedule::new(&a.name, trigger, job, keep, a.full_every)?)
}

fn list(db: &cairn_state::StateDb, printer: &Printer) -> anyhow::Result<()> {
    let schedules = db.schedules()?;
    let mut out = Vec::new();
    for s in &schedules {
        let last = db.schedule_operations(&s.name, 1)?.into_iter().next();
        out.push((s, last));
    }
    if printer.json {
        let v: Vec<_> = out
            .iter()
            .map(|(s, last)| serde_json::json!({"schedule": s, "last_operation": last}))
            .collect();
        printer.json(&serde_json::json!({
            "schema": JSON_SCHEMA, "type": "schedules", "schedules": v,
        }))?;
        return Ok(());
    }
    if out.is_empty() {
        printer.line("no schedules")?;
        return Ok(());
    }
    for (s, last) in out {
        let state = if s.paused { "paused" } else { "active" };
        let next = s
            .next_due
            .map_or_else(|| "when the daemon runs".into(), |t| t.to_string());
        let last = last.map_or_else(
            || "never ran".to_string(),
            |o| match o.state {
                OpState::Active => format!("running since {}", o.started),
                st => format!(
                    "{st} {}{}",
                    o.finished.unwrap_or(o.updated),
                    o.error.map(|e| format!(": {e}")).unwrap_or_default()
                ),
            },
        );
        printer.line(&format!("{} ({state}): {}", s.name, s.trigger.describe()))?;
        printer.line(&format!("  sources: {}", s.job.sources.join(" ")))?;
        if let Some(r) = &s.job.repo {
            printer.line(&format!("  repository: {r}"))?;
        }
        let keep = s.keep.flags().join(" ");
        if !keep.is_empty() {
            printer.line(&format!("  keep: {keep}"))?;
        }
        if let Some(n) = s.full_every {
            printer.line(&format!("  full backup every {n} runs"))?;
        }
        printer.line(&format!("  runs: {}; next: {next}; last: {last}", s.runs))?;
    }
    Ok(())
}
