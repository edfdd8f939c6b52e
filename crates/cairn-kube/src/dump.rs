//! Logical dumps: a PVC's data saved as the output of the database's own dump tool, run (kube-rs
//! exec) in the Running pod that mounts the PVC and streamed into the repository as a stream
//! snapshot; restored by streaming it into the database's client in the restored pod, once the
//! workload runs.
//!
//! A dump is consistent by itself (`--single-transaction`, `pg_dumpall`'s snapshot), so it runs
//! after the hooks' window, not inside it. A dump whose command fails is never saved: its exit
//! status is checked before the snapshot is committed.

use std::io::Read;
use std::str::FromStr;
use std::sync::Arc;

use cairn_repo::{BackupOptions, CancellationToken, NoProgress, Repository, SnapshotFilter};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, AttachParams};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use crate::cluster::Cluster;
use crate::document::{DumpInfo, VolumeBackup, VolumeMethod};
use crate::error::{Error, Result};
use crate::hooks::{MARIADB_PASSWORD, PG_CREDENTIALS, exit_code};
use crate::object::{at, str_at};
use crate::volumes::{volume_identity, volume_record};
use crate::wait::{self, WaitPolicy};
use cairn_repo::error_message;

/// The database tool a dump uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DumpRecipe {
    /// `mariadb-dump`/`mysqldump --all-databases --single-transaction`, loaded with the
    /// `mariadb`/`mysql` client. User `CAIRN_MYSQL_USER` (default root); password from
    /// `MYSQL_PWD`, else the official images' `MARIADB_ROOT_PASSWORD`/`MYSQL_ROOT_PASSWORD`.
    MariaDb,
    /// `pg_dumpall`, loaded with `psql`. User `PGUSER`, else the official image's
    /// `POSTGRES_USER`, else `postgres`.
    PostgreSql,
}

/// Shell prelude: the MariaDB connection from the container's environment, as the hook
/// recipe reads it ([`MARIADB_PASSWORD`]), in `"$@"`: user `CAIRN_MYSQL_USER` (default root),
/// and `MYSQL_HOST` and `MYSQL_TCP_PORT` if set, passed as options because the dump tool does
/// not read them.
fn mysql_env() -> String {
    format!(
        "set -e\n{MARIADB_PASSWORD}set -- --user=\"${{CAIRN_MYSQL_USER:-root}}\"\n\
         if [ -n \"${{MYSQL_HOST:-}}\" ]; then set -- \"$@\" --host=\"$MYSQL_HOST\"; fi\n\
         if [ -n \"${{MYSQL_TCP_PORT:-}}\" ]; then set -- \"$@\" --port=\"$MYSQL_TCP_PORT\"; fi\n"
    )
}

impl DumpRecipe {
    /// The name recorded with the backup (`mariadb`, `postgresql`).
    pub fn name(self) -> &'static str {
        match self {
            Self::MariaDb => "mariadb",
            Self::PostgreSql => "postgresql",
        }
    }

    /// A recipe by name or alias (`mysql`, `postgres`).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "mariadb" | "mysql" => Some(Self::MariaDb),
            "postgresql" | "postgres" => Some(Self::PostgreSql),
            _ => None,
        }
    }

    /// The `sh -c` script that writes the dump to stdout.
    pub fn dump_script(self) -> String {
        match self {
            Self::MariaDb => format!(
                "{}c=$(command -v mariadb-dump || command -v mysqldump) || \
                 {{ echo 'no mariadb-dump or mysqldump in this container' >&2; exit 127; }}\n\
                 exec \"$c\" \"$@\" --all-databases --single-transaction --routines --events \
                 --triggers --hex-blob",
                mysql_env()
            ),
            Self::PostgreSql => format!("set -e\n{PG_CREDENTIALS}exec pg_dumpall"),
        }
    }

    /// The `sh -c` script that loads a dump from stdin.
    pub fn load_script(self) -> String {
        match self {
            Self::MariaDb => format!(
                "{}c=$(command -v mariadb || command -v mysql) || \
                 {{ echo 'no mariadb or mysql client in this container' >&2; exit 127; }}\n\
                 exec \"$c\" \"$@\"",
                mysql_env()
            ),
            // Without ON_ERROR_STOP, as pg_dumpall's output expects (its CREATE ROLE of the
            // bootstrap user always fails on a new server); `judge_load` reads the errors.
            Self::PostgreSql => format!("set -e\n{PG_CREDENTIALS}exec psql -X -q -d postgres"),
        }
    }

    /// The file name inside the stream snapshot.
    pub fn file_name(self) -> &'static str {
        match self {
            Self::MariaDb => "mariadb-dump.sql",
            Self::PostgreSql => "pg_dumpall.sql",
        }
    }

    /// Whether a load that exited 0 really worked. `psql` goes on after an error: every
    /// `ERROR:` line counts except an existing role (the bootstrap user a new server has).
    ///
    /// # Errors
    /// The first error line that counts.
    pub fn judge_load(self, stderr: &str) -> std::result::Result<(), String> {
        if self != Self::PostgreSql {
            return Ok(());
        }
        let bad = stderr.lines().find(|l| {
            l.contains("ERROR:") && !(l.contains("role \"") && l.contains("already exists"))
        });
        match bad {
            Some(l) => Err(l.trim().to_owned()),
            None => Ok(()),
        }
    }
}

/// `--dump NS/PVC=RECIPE[@CONTAINER]`: save this PVC as a logical dump.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DumpSpec {
    /// Namespace of the PVC.
    pub namespace: String,
    /// The PVC.
    pub pvc: String,
    /// The tool.
    pub recipe: DumpRecipe,
    /// The container to run it in (default: the first that mounts the PVC).
    pub container: Option<String>,
}

impl FromStr for DumpSpec {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let bad = |why: &str| {
            format!("--dump {s:?}: {why} (expected NS/PVC=mariadb|postgresql[@CONTAINER])")
        };
        let (target, how) = s.split_once('=').ok_or_else(|| bad("no '='"))?;
        let (namespace, pvc) = target.split_once('/').ok_or_else(|| bad("no namespace"))?;
        let (recipe, container) = match how.split_once('@') {
            Some((r, c)) if !c.is_empty() => (r, Some(c.to_owned())),
            Some(_) => return Err(bad("empty container")),
            None => (how, None),
        };
        let recipe = DumpRecipe::from_name(recipe)
            .ok_or_else(|| bad(&format!("unknown recipe {recipe:?}")))?;
        if namespace.is_empty() || pvc.is_empty() {
            return Err(bad("empty namespace or PVC"));
        }
        Ok(Self {
            namespace: namespace.to_owned(),
            pvc: pvc.to_owned(),
            recipe,
            container,
        })
    }
}

/// A Running pod of `namespace` that mounts `pvc`, and the container to exec in (`container`,
/// else the first that mounts the claim's volume, else the first). Pure over `pods`.
pub fn pod_for(
    pods: &[Value],
    pvc: &str,
    container: Option<&str>,
) -> Option<(String, Option<String>)> {
    let mut candidates: Vec<&Value> = pods
        .iter()
        .filter(|p| str_at(p, &["status", "phase"]) == Some("Running"))
        .filter(|p| str_at(p, &["metadata", "deletionTimestamp"]).is_none())
        .filter(|p| volume_of(p, pvc).is_some())
        .collect();
    candidates.sort_by_key(|p| str_at(p, &["metadata", "name"]));
    let pod = candidates.first()?;
    let name = str_at(pod, &["metadata", "name"])?.to_owned();
    if let Some(c) = container {
        return Some((name, Some(c.to_owned())));
    }
    let volume = volume_of(pod, pvc)?;
    let mounting = at(pod, &["spec", "containers"])
        .and_then(Value::as_array)
        .and_then(|cs| {
            cs.iter().find(|c| {
                at(c, &["volumeMounts"])
                    .and_then(Value::as_array)
                    .is_some_and(|ms| ms.iter().any(|m| str_at(m, &["name"]) == Some(volume)))
            })
        })
        .and_then(|c| str_at(c, &["name"]))
        .map(str::to_owned);
    Some((name, mounting))
}

/// The name of the pod volume that is `pvc`.
fn volume_of<'a>(pod: &'a Value, pvc: &str) -> Option<&'a str> {
    at(pod, &["spec", "volumes"])?
        .as_array()?
        .iter()
        .find(|v| str_at(v, &["persistentVolumeClaim", "claimName"]) == Some(pvc))
        .and_then(|v| str_at(v, &["name"]))
}

/// Waits for a Running pod that mounts the PVC.
async fn find_pod(
    cluster: &Cluster,
    namespace: &str,
    pvc: &str,
    container: Option<&str>,
    policy: WaitPolicy,
) -> Result<(String, Option<String>)> {
    wait::until(
        &format!("a running pod mounting PVC {namespace}/{pvc}"),
        policy,
        || async {
            let pods = cluster.list_kind("v1", "Pod", Some(namespace)).await?;
            Ok(pod_for(&pods, pvc, container))
        },
    )
    .await
}

fn attach(container: Option<&String>, stdin: bool) -> AttachParams {
    let p = AttachParams::default()
        .stdin(stdin)
        .stdout(true)
        .stderr(true);
    match container {
        Some(c) => p.container(c.clone()),
        None => p,
    }
}

/// The last 4 KiB of a stream, read to its end.
async fn tail_of(mut r: impl AsyncRead + Unpin) -> String {
    let mut all = Vec::new();
    let mut buf = vec![0u8; 8192];
    while let Ok(n) = r.read(&mut buf).await {
        if n == 0 {
            break;
        }
        all.extend_from_slice(&buf[..n]);
        if all.len() > 8192 {
            all.drain(..all.len() - 4096);
        }
    }
    String::from_utf8_lossy(&all).into_owned()
}

/// How an exec'd command ended: `Ok` for exit 0, else why (with the tail of stderr).
fn judge_exit(
    status: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::Status>,
    stderr: &str,
) -> std::result::Result<(), String> {
    if status.and_then(exit_code) == Some(0) {
        return Ok(());
    }
    let why = status
        .and_then(|s| s.message.clone())
        .unwrap_or_else(|| "the command ended without a status".into());
    let err = stderr.trim();
    Err(if err.is_empty() {
        why
    } else {
        format!("{why}; stderr: {err}")
    })
}

/// What the dump's reader receives: data, then how the command ended.
enum Piece {
    Data(Vec<u8>),
    End(std::result::Result<(), String>),
}

/// The dump's stdout as a blocking reader for the engine. At the end of the stream it waits
/// for the command's exit status and fails the read if the command failed, so a broken dump
/// is never committed as a snapshot.
struct DumpReader {
    rx: tokio::sync::mpsc::Receiver<Piece>,
    buf: Vec<u8>,
    pos: usize,
    done: bool,
}

impl Read for DumpReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        loop {
            if self.pos < self.buf.len() {
                let n = out.len().min(self.buf.len() - self.pos);
                out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
                self.pos += n;
                return Ok(n);
            }
            if self.done {
                return Ok(0);
            }
            match self.rx.blocking_recv() {
                Some(Piece::Data(b)) => (self.buf, self.pos) = (b, 0),
                Some(Piece::End(Ok(()))) => self.done = true,
                Some(Piece::End(Err(why))) => {
                    return Err(std::io::Error::other(format!("the dump failed: {why}")));
                }
                None => return Err(std::io::Error::other("the dump stream broke off")),
            }
        }
    }
}

/// Runs the dump of `spec` in its pod and saves it as the data of `pvc` (identity
/// [`volume_identity`], tags `tags`). Failures are recorded in the returned record.
pub async fn backup_dump(
    cluster: &Cluster,
    repo: &Arc<Repository>,
    app: &str,
    pvc: &Value,
    spec: &DumpSpec,
    tags: &[String],
    policy: WaitPolicy,
) -> VolumeBackup {
    let mut out = volume_record(pvc, VolumeMethod::Dump);
    out.dump = Some(DumpInfo {
        recipe: spec.recipe.name().to_owned(),
        container: spec.container.clone(),
    });
    match dump_into(cluster, repo, app, spec, tags, policy).await {
        Ok(id) => out.snapshot = Some(id),
        Err(e) => out.error = Some(error_message(&e)),
    }
    out
}

async fn dump_into(
    cluster: &Cluster,
    repo: &Arc<Repository>,
    app: &str,
    spec: &DumpSpec,
    tags: &[String],
    policy: WaitPolicy,
) -> Result<String> {
    let (ns, pvc) = (&spec.namespace, &spec.pvc);
    let (pod, container) = find_pod(cluster, ns, pvc, spec.container.as_deref(), policy).await?;
    let what = format!("dump of {ns}/{pvc} in pod {pod}");
    let api: Api<Pod> = Api::namespaced(cluster.client().clone(), ns);
    let argv = vec!["sh".to_owned(), "-c".into(), spec.recipe.dump_script()];
    let mut proc = api
        .exec(&pod, argv, &attach(container.as_ref(), false))
        .await
        .map_err(|e| Error::kube(what.clone(), e))?;
    let (Some(mut stdout), Some(stderr), Some(status)) =
        (proc.stdout(), proc.stderr(), proc.take_status())
    else {
        return Err(Error::Failed {
            what,
            reason: "exec streams missing".into(),
        });
    };
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    let pump = tokio::spawn(async move {
        let err_tail = tokio::spawn(tail_of(stderr));
        let mut buf = vec![0u8; 256 * 1024];
        let read = loop {
            match stdout.read(&mut buf).await {
                Ok(0) => break Ok(()),
                Ok(n) => {
                    if tx.send(Piece::Data(buf[..n].to_vec())).await.is_err() {
                        break Err("the repository stopped reading".to_owned());
                    }
                }
                Err(e) => break Err(format!("reading the dump: {e}")),
            }
        };
        let st = status.await;
        let err = err_tail.await.unwrap_or_default();
        let end = read.and_then(|()| judge_exit(st.as_ref(), &err));
        let _ = tx.send(Piece::End(end)).await;
        drop(proc);
    });
    let mut o = BackupOptions::default();
    o.identity = Some(volume_identity(app, ns, pvc));
    o.tags = tags.to_vec();
    let reader = DumpReader {
        rx,
        buf: Vec::new(),
        pos: 0,
        done: false,
    };
    let saved = cairn_repo::backup_stream(
        repo,
        reader,
        spec.recipe.file_name(),
        &o,
        Arc::new(NoProgress),
        CancellationToken::new(),
    )
    .await;
    pump.abort();
    let saved = saved.map_err(|e| Error::repo(what, e))?;
    Ok(saved.id.to_hex())
}

/// Loads the dump saved for `volume` into the database of the restored pod that mounts its
/// PVC in `namespace` (waiting for that pod to run).
///
/// # Errors
/// `NotFound` (no such snapshot), `Timeout` (no running pod), `Failed` (the load failed),
/// `Repo`, `Kube`, `Io`.
pub async fn restore_dump(
    cluster: &Cluster,
    repo: &Arc<Repository>,
    volume: &VolumeBackup,
    namespace: &str,
    recipe: DumpRecipe,
    container: Option<&str>,
    policy: WaitPolicy,
) -> Result<()> {
    let snapshot = volume.snapshot.as_deref().ok_or_else(|| {
        Error::NotFound(format!(
            "{}/{}: no dump saved",
            volume.namespace, volume.pvc
        ))
    })?;
    let dir = tempfile::tempdir().map_err(|e| Error::Io {
        what: "creating a temporary directory for the dump".into(),
        source: e,
    })?;
    let file = dir.path().join("dump.sql");
    read_snapshot(repo, snapshot, &file).await?;
    let (pod, c) = find_pod(cluster, namespace, &volume.pvc, container, policy).await?;
    let what = format!(
        "loading the dump of {}/{} into pod {namespace}/{pod}",
        volume.namespace, volume.pvc
    );
    let api: Api<Pod> = Api::namespaced(cluster.client().clone(), namespace);
    let argv = vec!["sh".to_owned(), "-c".into(), recipe.load_script()];
    let mut proc = api
        .exec(&pod, argv, &attach(c.as_ref(), true))
        .await
        .map_err(|e| Error::kube(what.clone(), e))?;
    let (Some(mut stdin), Some(stdout), Some(stderr), Some(status)) = (
        proc.stdin(),
        proc.stdout(),
        proc.stderr(),
        proc.take_status(),
    ) else {
        return Err(Error::Failed {
            what,
            reason: "exec streams missing".into(),
        });
    };
    let out_tail = tokio::spawn(tail_of(stdout));
    let err_tail = tokio::spawn(tail_of(stderr));
    let mut src = tokio::fs::File::open(&file).await.map_err(|e| Error::Io {
        what: "opening the restored dump".into(),
        source: e,
    })?;
    let sent = async {
        tokio::io::copy(&mut src, &mut stdin).await?;
        stdin.shutdown().await
    }
    .await;
    drop(stdin);
    let st = status.await;
    let _ = out_tail.await;
    let err = err_tail.await.unwrap_or_default();
    let ended = judge_exit(st.as_ref(), &err).and_then(|()| recipe.judge_load(&err));
    match (ended, sent) {
        (Ok(()), Ok(())) => Ok(()),
        (Err(reason), _) => Err(Error::Failed { what, reason }),
        (Ok(()), Err(e)) => Err(Error::Failed {
            what,
            reason: format!("the client stopped reading the dump: {e}"),
        }),
    }
}

/// Loads every saved dump among `volumes` into its restored pod (namespaces mapped by
/// `namespace_map`), one at a time. Returns `(namespace/pvc, error)` for each failure.
pub async fn restore_dumps(
    cluster: &Cluster,
    repo: &Arc<Repository>,
    volumes: &[VolumeBackup],
    namespace_map: &std::collections::BTreeMap<String, String>,
    policy: WaitPolicy,
) -> Vec<(String, String)> {
    let mut failed = Vec::new();
    for v in volumes
        .iter()
        .filter(|v| v.method == VolumeMethod::Dump && v.snapshot.is_some())
    {
        let ns = namespace_map.get(&v.namespace).unwrap_or(&v.namespace);
        let info = v.dump.as_ref();
        let r = match info.and_then(|d| DumpRecipe::from_name(&d.recipe)) {
            Some(recipe) => {
                let container = info.and_then(|d| d.container.as_deref());
                restore_dump(cluster, repo, v, ns, recipe, container, policy).await
            }
            None => Err(Error::invalid(
                format!("dump of {}/{}", v.namespace, v.pvc),
                "the backup does not say which tool made it",
            )),
        };
        if let Err(e) = r {
            failed.push((format!("{ns}/{}", v.pvc), error_message(&e)));
        }
    }
    failed
}

/// Restores the dump snapshot `id` to `file`.
async fn read_snapshot(repo: &Arc<Repository>, id: &str, file: &std::path::Path) -> Result<()> {
    let all = repo
        .snapshots(&SnapshotFilter::default())
        .await
        .map_err(|e| Error::repo("listing snapshots", e))?;
    let (sid, snap) = all
        .into_iter()
        .find(|(sid, _)| sid.to_hex() == id)
        .ok_or_else(|| Error::NotFound(format!("dump snapshot {id}")))?;
    crate::store::restore_stream_file(repo, &sid, &snap, file).await
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn specs_parse_and_bad_ones_say_why() {
        let s: DumpSpec = "shop/db-data=mariadb@mysql".parse().unwrap();
        assert_eq!(
            s,
            DumpSpec {
                namespace: "shop".into(),
                pvc: "db-data".into(),
                recipe: DumpRecipe::MariaDb,
                container: Some("mysql".into()),
            }
        );
        let p: DumpSpec = "a/b=postgres".parse().unwrap();
        assert_eq!((p.recipe, p.container), (DumpRecipe::PostgreSql, None));
        for bad in [
            "a/b",
            "b=mariadb",
            "a/b=oracle",
            "a/b=mariadb@",
            "/b=mariadb",
        ] {
            let e = bad.parse::<DumpSpec>().unwrap_err();
            assert!(e.contains(bad), "{e}");
        }
    }

    #[test]
    fn the_pod_is_a_running_one_that_mounts_the_claim() {
        let pod = |name: &str, phase: &str, claim: &str| {
            json!({"metadata": {"name": name}, "status": {"phase": phase},
                "spec": {"volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": claim}}],
                    "containers": [{"name": "sidecar"},
                        {"name": "db", "volumeMounts": [{"name": "data", "mountPath": "/var/lib/mysql"}]}]}})
        };
        let pods = [
            pod("db-1", "Running", "other"),
            pod("db-0", "Pending", "data-db-0"),
            pod("db-2", "Running", "data-db-0"),
        ];
        assert_eq!(
            pod_for(&pods, "data-db-0", None),
            Some(("db-2".into(), Some("db".into())))
        );
        assert_eq!(
            pod_for(&pods, "data-db-0", Some("sidecar")),
            Some(("db-2".into(), Some("sidecar".into())))
        );
        assert_eq!(pod_for(&pods, "nothing", None), None);
    }

    #[test]
    fn psql_errors_count_except_existing_roles() {
        let r = DumpRecipe::PostgreSql;
        assert!(
            r.judge_load("ERROR:  role \"postgres\" already exists\n")
                .is_ok()
        );
        let e = r
            .judge_load(
                "ERROR:  role \"postgres\" already exists\nERROR:  relation \"t\" does not exist\n",
            )
            .unwrap_err();
        assert!(e.contains("relation"), "{e}");
        assert!(DumpRecipe::MariaDb.judge_load("ERROR: anything").is_ok());
    }
}
