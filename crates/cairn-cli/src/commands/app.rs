//! `cairn app backup | restore | list | describe`: Kubernetes applications, through
//! `cairn-kube`. The cluster comes from `KUBECONFIG` (or the in-cluster config).

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, bail};
use cairn_kube::backup::AppBackupOptions;
use cairn_kube::document::{AppBackup, BackupStatus, VolumeMethod};
use cairn_kube::group::GroupPolicy;
use cairn_kube::restore::{ExistingPolicy, RestoreOptions};
use cairn_kube::select::Selection;
use cairn_kube::transform::{Match, Transforms};
use cairn_kube::volumes::VolumeOptions;
use cairn_kube::wait::WaitPolicy;
use cairn_kube::{Cluster, store};

use crate::args::{AppBackupArgs, AppCommand, AppRestoreArgs, GlobalArgs, MoverArgs};
use crate::exit::ExitStatus;
use crate::printer::{JSON_SCHEMA, Printer};
use crate::repo;

pub(crate) async fn run(
    g: &GlobalArgs,
    c: AppCommand,
    printer: &Printer,
) -> anyhow::Result<ExitStatus> {
    match c {
        AppCommand::Backup(a) => backup(g, &a, printer).await,
        AppCommand::Restore(a) => restore(g, &a, printer).await,
        AppCommand::List { name } => list(g, name.as_deref(), printer).await,
        AppCommand::Describe { backup } => describe(g, &backup, printer).await,
    }
}

async fn connect() -> anyhow::Result<Cluster> {
    let client = kube::Client::try_default()
        .await
        .context("connecting to the cluster (KUBECONFIG or in-cluster configuration)")?;
    Ok(Cluster::connect(client).await?)
}

fn run_id() -> String {
    let t = jiff::Timestamp::now();
    format!("{}{:03}", t.as_second(), t.subsec_millisecond())
}

fn volume_options(m: &MoverArgs, pod_copy: bool) -> anyhow::Result<VolumeOptions> {
    let secret = m
        .repo_secret
        .clone()
        .context("--repo-secret is needed to move volume data")?;
    let mut v = VolumeOptions::new(&m.mover_image, &secret, &run_id());
    v.snapshot_class.clone_from(&m.snapshot_class);
    v.group_snapshots = match m.group_snapshots.as_str() {
        "require" => GroupPolicy::Require,
        "off" => GroupPolicy::Off,
        _ => GroupPolicy::Auto,
    };
    v.group_snapshot_class.clone_from(&m.group_snapshot_class);
    v.parallel = m.parallel;
    v.wait = WaitPolicy {
        timeout: Duration::from_secs(m.timeout_secs),
        interval: Duration::from_secs(1),
    };
    if pod_copy {
        v.method = VolumeMethod::PodCopy;
    }
    Ok(v)
}

async fn backup(
    g: &GlobalArgs,
    a: &AppBackupArgs,
    printer: &Printer,
) -> anyhow::Result<ExitStatus> {
    let mut sel = Selection::default();
    sel.namespaces.clone_from(&a.namespaces);
    sel.selectors.clone_from(&a.selectors);
    sel.include_kinds.clone_from(&a.include_kinds);
    sel.exclude_kinds.clone_from(&a.exclude_kinds);
    sel.no_cluster_dependencies = a.no_cluster_dependencies;
    if sel.namespaces.is_empty() && sel.selectors.is_empty() {
        bail!("select the application with --namespace and/or --selector");
    }
    // A malformed hooks file fails before anything is read or written.
    let hooks = match &a.hooks {
        Some(p) => {
            let text = fs_err::read_to_string(p)?;
            cairn_kube::hooks::parse_hooks(&text)
                .with_context(|| format!("hooks file {}", p.display()))?
        }
        None => Vec::new(),
    };
    let repo = repo::open(g, printer, true).await?;
    let cluster = connect().await?;
    let mut opts = AppBackupOptions::new(&a.name, sel);
    opts.hooks = hooks;
    opts.dumps.clone_from(&a.dumps);
    opts.dump_wait = WaitPolicy {
        timeout: Duration::from_secs(a.mover.timeout_secs),
        interval: Duration::from_secs(1),
    };
    if a.with_data {
        opts.volumes = Some(volume_options(&a.mover, a.pod_copy)?);
    }
    let (id, doc) = cairn_kube::backup::backup(&cluster, &repo, &opts).await?;
    if printer.json {
        printer.json(
            &serde_json::json!({"schema": JSON_SCHEMA, "id": id, "status": doc.status,
            "resources": doc.resources.len(), "skipped": doc.skipped.len(), "volumes": doc.volumes,
            "hooks": doc.hooks, "problems": doc.problems}),
        )?;
    } else {
        printer.line(&format!(
            "application backup {} of {}: {:?}, {} resources, {} skipped, {} volumes",
            id.short(),
            doc.name,
            doc.status,
            doc.resources.len(),
            doc.skipped.len(),
            doc.volumes.len()
        ))?;
        for p in &doc.problems {
            printer.warn(&format!("{}: {}", p.item, p.reason));
        }
    }
    Ok(if doc.status == BackupStatus::Completed {
        ExitStatus::Success
    } else {
        ExitStatus::Problems
    })
}

fn pairs(v: &[String], what: &str) -> anyhow::Result<BTreeMap<String, String>> {
    v.iter()
        .map(|s| {
            s.split_once('=')
                .map(|(a, b)| (a.to_owned(), b.to_owned()))
                .with_context(|| format!("{what} {s:?}: expected OLD=NEW"))
        })
        .collect()
}

fn restore_options(a: &AppRestoreArgs) -> anyhow::Result<RestoreOptions> {
    let mut t: Transforms = match &a.transforms {
        Some(f) => serde_json::from_slice(&fs_err::read(f)?)
            .with_context(|| format!("reading transforms from {}", f.display()))?,
        None => Transforms::default(),
    };
    t.namespace_map
        .extend(pairs(&a.namespace_map, "--namespace-map")?);
    t.storage_class_map
        .extend(pairs(&a.storage_class_map, "--storage-class-map")?);
    t.image_map.extend(pairs(&a.image_map, "--image-map")?);
    t.add_labels.extend(pairs(&a.add_labels, "--add-label")?);
    if a.clone_suffix.is_some() {
        t.clone_suffix.clone_from(&a.clone_suffix);
    }
    let mut o = RestoreOptions::default();
    o.transforms = t;
    o.existing = match a.existing.as_str() {
        "skip" => ExistingPolicy::Skip,
        "update" => ExistingPolicy::Update,
        "replace" => ExistingPolicy::Replace,
        other => bail!("--existing {other:?}: expected skip, update or replace"),
    };
    o.rollback = a.rollback;
    o.restore_pvs = a.restore_pvs;
    o.check_dependencies = !a.no_dependency_check;
    if !a.order.is_empty() {
        o.order.clone_from(&a.order);
    }
    if !a.only_kinds.is_empty() || !a.only_names.is_empty() || a.only_selector.is_some() {
        let mut m = Match::default();
        m.kinds.clone_from(&a.only_kinds);
        m.names.clone_from(&a.only_names);
        m.label_selector.clone_from(&a.only_selector);
        o.only = Some(m);
    }
    o.hold_workloads = a.with_data && !a.to_production;
    o.wait = WaitPolicy {
        timeout: Duration::from_secs(a.mover.timeout_secs),
        interval: Duration::from_secs(1),
    };
    Ok(o)
}

async fn restore(
    g: &GlobalArgs,
    a: &AppRestoreArgs,
    printer: &Printer,
) -> anyhow::Result<ExitStatus> {
    let opts = restore_options(a)?;
    let repo = repo::open(g, printer, false).await?;
    let (id, doc) = store::load(&repo, &a.backup).await?;
    let plan = cairn_kube::restore::plan(&doc, &opts)?;
    if a.dry_run {
        if printer.json {
            printer.json(
                &serde_json::json!({"schema": JSON_SCHEMA, "backup": id, "objects": plan.objects}),
            )?;
        } else {
            for o in &plan.objects {
                if let Some(k) = cairn_kube::object::ObjectKey::of(o) {
                    printer.line(&format!("create {k}"))?;
                }
            }
        }
        return Ok(ExitStatus::Success);
    }
    // Movers (and their --repo-secret) only for volumes saved as blocks or files; checked
    // before anything is created.
    let movers = a.with_data
        && doc
            .volumes
            .iter()
            .any(|v| v.snapshot.is_some() && v.method != VolumeMethod::Dump);
    let vo = if movers {
        Some(volume_options(&a.mover, false)?)
    } else {
        None
    };
    let mut cluster = connect().await?;
    let report = cairn_kube::restore::apply(&mut cluster, &doc, plan, &opts).await?;
    let mut data_errors = Vec::new();
    if a.with_data {
        let ns_map = &opts.transforms.namespace_map;
        if a.to_production {
            if let Some(vo) = &vo {
                data_errors.extend(restore_production(&cluster, &doc, ns_map, vo).await);
            }
        } else {
            if let Some(vo) = &vo {
                data_errors.extend(
                    cairn_kube::volumes::restore_volumes(&cluster, &doc.volumes, ns_map, vo).await,
                );
            }
            // Workloads start once their data is in place, even if some volume failed: the
            // failure is reported and the application is not left silently stopped.
            cairn_kube::restore::release_workloads(&cluster, &report.held).await?;
        }
        // Dumps load into the running database, so they come once its workload runs.
        let wait = WaitPolicy {
            timeout: Duration::from_secs(a.mover.timeout_secs),
            interval: Duration::from_secs(1),
        };
        data_errors.extend(
            cairn_kube::dump::restore_dumps(&cluster, &repo, &doc.volumes, ns_map, wait).await,
        );
    }
    if printer.json {
        printer.json(&serde_json::json!({"schema": JSON_SCHEMA, "backup": id, "report": report, "dataErrors": data_errors}))?;
    } else {
        printer.line(&format!(
            "restored {} from {}: {} created, {} updated, {} replaced, {} existing left alone, {} deleted, {} failed",
            doc.name, id.short(), report.created.len(), report.updated.len(), report.replaced.len(),
            report.skipped_existing.len(), report.deleted.len(), report.failed.len()
        ))?;
        for (k, e) in &report.failed {
            printer.warn(&format!("{k}: {e}"));
        }
        for (v, e) in &data_errors {
            printer.warn(&format!("volume {v}: {e}"));
        }
    }
    Ok(if report.failed.is_empty() && data_errors.is_empty() {
        ExitStatus::Success
    } else {
        ExitStatus::Problems
    })
}

async fn restore_production(
    cluster: &Cluster,
    doc: &AppBackup,
    ns_map: &BTreeMap<String, String>,
    vo: &VolumeOptions,
) -> Vec<(String, String)> {
    let mut errors = Vec::new();
    let mut by_ns: BTreeMap<String, Vec<_>> = BTreeMap::new();
    // Dumps are loaded into the running database afterwards, not written under it.
    for v in doc
        .volumes
        .iter()
        .filter(|v| v.snapshot.is_some() && v.method != VolumeMethod::Dump)
    {
        let ns = ns_map
            .get(&v.namespace)
            .cloned()
            .unwrap_or_else(|| v.namespace.clone());
        by_ns.entry(ns).or_default().push(v.clone());
    }
    for (ns, vols) in by_ns {
        let pvcs = vols.iter().map(|v| v.pvc.clone()).collect();
        let mut failed = Vec::new();
        let r = cairn_kube::production::with_workloads_stopped(
            cluster,
            &ns,
            &pvcs,
            vo.wait,
            || async {
                failed = cairn_kube::volumes::restore_volumes(cluster, &vols, ns_map, vo).await;
                Ok(())
            },
        )
        .await;
        errors.extend(failed);
        if let Err(e) = r {
            errors.push((ns, e.to_string()));
        }
    }
    errors
}

async fn list(g: &GlobalArgs, name: Option<&str>, printer: &Printer) -> anyhow::Result<ExitStatus> {
    let repo = repo::open(g, printer, false).await?;
    let all = store::list(&repo, name).await?;
    if printer.json {
        let v: Vec<_> = all.iter().map(|(id, s)| serde_json::json!({"id": id, "time": s.time, "app": s.source.identity.trim_start_matches("app:"), "tags": s.tags})).collect();
        printer.json(&serde_json::json!({"schema": JSON_SCHEMA, "backups": v}))?;
        return Ok(ExitStatus::Success);
    }
    printer.line(&format!("{:<8}  {:<25}  {}", "ID", "TIME", "APPLICATION"))?;
    for (id, s) in &all {
        let time = s
            .time
            .to_zoned(jiff::tz::TimeZone::system())
            .strftime("%Y-%m-%d %H:%M:%S %Z")
            .to_string();
        printer.line(&format!(
            "{:<8}  {:<25}  {}",
            id.short(),
            time,
            s.source.identity.trim_start_matches("app:")
        ))?;
    }
    Ok(ExitStatus::Success)
}

async fn describe(
    g: &GlobalArgs,
    reference: &str,
    printer: &Printer,
) -> anyhow::Result<ExitStatus> {
    let repo = repo::open(g, printer, false).await?;
    let (id, doc) = store::load(&repo, reference).await?;
    if printer.json {
        printer.json(&serde_json::json!({"schema": JSON_SCHEMA, "id": id, "backup": doc}))?;
        return Ok(ExitStatus::Success);
    }
    printer.line(&format!(
        "application backup {} of {}",
        id.short(),
        doc.name
    ))?;
    printer.line(&format!("status:    {:?}", doc.status))?;
    printer.line(&format!("started:   {}", doc.started))?;
    printer.line(&format!("finished:  {}", doc.finished))?;
    printer.line(&format!(
        "cluster:   {} ({} resource types, group snapshots: {})",
        doc.cluster.version,
        doc.cluster.resource_types.len(),
        doc.cluster.group_snapshots
    ))?;
    printer.line(&format!(
        "selection: namespaces {:?}, selectors {:?}, include {:?}, exclude {:?}",
        doc.selection.namespaces,
        doc.selection.selectors,
        doc.selection.include_kinds,
        doc.selection.exclude_kinds
    ))?;
    printer.line(&format!("resources ({}):", doc.resources.len()))?;
    for o in &doc.resources {
        if let Some(k) = cairn_kube::object::ObjectKey::of(o) {
            printer.line(&format!("  {k}"))?;
        }
    }
    printer.line(&format!("dependencies ({}):", doc.dependencies.len()))?;
    for d in &doc.dependencies {
        printer.line(&format!("  {}: {}", d.object, d.reason))?;
    }
    printer.line(&format!("skipped ({}):", doc.skipped.len()))?;
    for s in &doc.skipped {
        printer.line(&format!("  {}: {}", s.object, s.reason))?;
    }
    printer.line(&format!("volumes ({}):", doc.volumes.len()))?;
    for v in &doc.volumes {
        let state = match (&v.snapshot, &v.error) {
            (Some(s), _) => format!("snapshot {}", &s[..s.len().min(8)]),
            (None, Some(e)) => format!("FAILED: {e}"),
            (None, None) => "no data".to_owned(),
        };
        let group = v
            .group_snapshot
            .as_ref()
            .map_or_else(String::new, |g| format!(", group {g}"));
        printer.line(&format!(
            "  {}/{} ({}, {:?}{group}): {state}",
            v.namespace, v.pvc, v.volume_mode, v.method
        ))?;
        if let Some(d) = &v.dump {
            printer.line(&format!("    dump made with {}", d.recipe))?;
        }
        if let Some(w) = &v.warning {
            printer.line(&format!("    warning: {w}"))?;
        }
    }
    printer.line(&format!("hooks ({} steps):", doc.hooks.len()))?;
    for h in &doc.hooks {
        let field = |k: &str| h.get(k).map_or_else(String::new, ToString::to_string);
        let t = &h["target"];
        let target = format!(
            "{}/{}{}",
            t["namespace"].as_str().unwrap_or("?"),
            t["pod"].as_str().unwrap_or("?"),
            t["container"]
                .as_str()
                .map_or_else(String::new, |c| format!(":{c}"))
        );
        printer.line(&format!(
            "  {} {} in {}: exit {} in {} ms{}",
            h.get("hook").and_then(|v| v.as_str()).unwrap_or("?"),
            field("phase"),
            target,
            field("exitCode"),
            field("durationMs"),
            h.get("error")
                .and_then(|v| v.as_str())
                .map_or_else(String::new, |e| format!(", FAILED: {e}"))
        ))?;
    }
    for p in &doc.problems {
        printer.line(&format!("problem: {}: {}", p.item, p.reason))?;
    }
    Ok(ExitStatus::Success)
}
