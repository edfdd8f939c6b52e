//! Logical dumps for real: the recipes' scripts run (through kube-rs exec into the in-process
//! API server, whose pods are this machine) against the MariaDB and PostgreSQL that
//! `scripts/ci.d/30-databases.sh` starts; the dump goes into a repository, and the restore
//! loads it into a fresh server of our own, where the data is checked.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use cairn_kube::Cluster;
use cairn_kube::backup::{AppBackupOptions, backup};
use cairn_kube::document::{BackupStatus, VolumeMethod};
use cairn_kube::dump::restore_dumps;
use cairn_kube::object::ObjectKey;
use cairn_kube::select::Selection;
use cairn_kube::wait::WaitPolicy;
use cairn_kube_testserver::{
    ExecHandler, ExecIo, ExecRequest, ExecResult, LocalProcess, TestServer,
};
use serde_json::json;

use crate::support::{
    Server, chown_to_db_user, db_command, free_port, repository, run, run_ok, scratch, server_env,
    start_mariadb, tempdir, unique,
};

/// Runs exec'd commands on this machine with `env` added: the "pod" of one cluster, whose
/// database client settings point at one server.
struct PodEnv(Vec<(String, String)>);

#[async_trait::async_trait]
impl ExecHandler for PodEnv {
    async fn exec(&self, request: ExecRequest, io: ExecIo) -> ExecResult {
        let mut r = request.clone();
        r.command = std::iter::once("env".to_owned())
            .chain(self.0.iter().map(|(k, v)| format!("{k}={v}")))
            .chain(request.command)
            .collect();
        LocalProcess.exec(r, io).await
    }
}

fn patient() -> WaitPolicy {
    WaitPolicy {
        timeout: Duration::from_mins(1),
        interval: Duration::from_millis(20),
    }
}

/// A cluster whose namespace `shop` has the PVC `data` and a Running pod `db-0` mounting it,
/// with exec running on this machine under `env`.
async fn cluster(env: &[(&str, &str)]) -> (TestServer, Cluster) {
    let env = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned()));
    let server = TestServer::builder()
        .namespace("shop")
        .exec(PodEnv(env.collect()))
        .start()
        .await
        .unwrap();
    let c = Cluster::connect(server.client()).await.unwrap();
    c.create(&json!({"apiVersion":"v1","kind":"PersistentVolumeClaim",
        "metadata":{"name":"data","namespace":"shop"},
        "spec":{"accessModes":["ReadWriteOnce"],"resources":{"requests":{"storage":"1Gi"}}}}))
        .await
        .unwrap();
    let pod = c
        .create(&json!({"apiVersion":"v1","kind":"Pod",
            "metadata":{"name":"db-0","namespace":"shop"},
            "spec":{"volumes":[{"name":"d","persistentVolumeClaim":{"claimName":"data"}}],
                "containers":[{"name":"db","image":"db:1","volumeMounts":[{"name":"d","mountPath":"/data"}]}]}}))
        .await
        .unwrap();
    c.merge_patch_status(
        &ObjectKey::of(&pod).unwrap(),
        &json!({"status":{"phase":"Running"}}),
    )
    .await
    .unwrap();
    (server, c)
}

/// Backs up namespace `shop` with `data` as a dump made by `recipe`; returns the repository
/// and the volumes of the document.
async fn dump_shop(
    c: &Cluster,
    dir: &Path,
    recipe: &str,
) -> (
    Arc<cairn_repo::Repository>,
    Vec<cairn_kube::document::VolumeBackup>,
) {
    let repo = repository(&dir.join("repo")).await;
    let mut sel = Selection::default();
    sel.namespaces = vec!["shop".into()];
    let mut opts = AppBackupOptions::new("shop", sel);
    opts.dumps = vec![format!("shop/data={recipe}").parse().unwrap()];
    let (_, doc) = backup(c, &repo, &opts).await.unwrap();
    assert_eq!(doc.status, BackupStatus::Completed, "{:#?}", doc.problems);
    assert_eq!(doc.volumes.len(), 1);
    assert_eq!(doc.volumes[0].method, VolumeMethod::Dump);
    (repo, doc.volumes)
}

fn mariadb(port: &str, sql: &str) -> Command {
    let mut c = Command::new("mariadb");
    c.args(["--no-defaults", "--batch", "--skip-column-names"])
        .args(["-h", "127.0.0.1", "-P", port, "-u", "root", "-e", sql]);
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mariadb_dump_loads_into_a_new_server_with_the_same_rows() {
    let Some(env) = server_env(
        "MariaDB",
        &["CAIRN_TEST_MARIADB_HOST", "CAIRN_TEST_MARIADB_PORT"],
    ) else {
        return;
    };
    let (host, port) = (&env[0], &env[1]);
    let db = format!("cairn_dump_{}", unique());
    run_ok(&mut mariadb(
        port,
        &format!(
            "CREATE DATABASE {db}; USE {db}; \
             CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(100), b BLOB) ENGINE=InnoDB; \
             INSERT INTO t SELECT seq, REPEAT('x', seq % 100), UNHEX(HEX(seq)) FROM seq_1_to_3000;"
        ),
    ));
    let tmp = tempdir();
    let (_src, c) = cluster(&[("MYSQL_HOST", host), ("MYSQL_TCP_PORT", port)]).await;
    let (repo, volumes) = dump_shop(&c, tmp.path(), "mariadb").await;

    // A new, empty server: the restored cluster's database.
    let data = scratch(tmp.path(), "mariadb2");
    let install = run(db_command("mariadb-install-db")
        .arg("--no-defaults")
        .arg(format!("--datadir={}", data.display()))
        .args(["--auth-root-authentication-method=normal", "--skip-test-db"]));
    assert!(install.status.success(), "{install:?}");
    chown_to_db_user(&data);
    let (_server, port2) = start_mariadb(&data, tmp.path());

    let (_dst, c2) = cluster(&[("MYSQL_HOST", "127.0.0.1"), ("MYSQL_TCP_PORT", &port2)]).await;
    let failed = restore_dumps(&c2, &repo, &volumes, &BTreeMap::new(), patient()).await;
    assert!(failed.is_empty(), "{failed:?}");
    let sums = format!(
        "SELECT COUNT(*), SUM(id), SUM(LENGTH(v)), SUM(CAST(UNHEX(HEX(b)) AS UNSIGNED)) FROM {db}.t"
    );
    let want = run_ok(&mut mariadb(port, &sums));
    let got = run_ok(&mut mariadb(&port2, &sums));
    assert_eq!(got, want);
    assert!(got.starts_with("3000\t"), "{got}");
    let check = run_ok(&mut mariadb(
        &port2,
        &format!("CHECK TABLE {db}.t EXTENDED"),
    ));
    assert!(check.trim_end().ends_with("OK"), "{check}");
    run_ok(&mut mariadb(port, &format!("DROP DATABASE {db}")));
}

fn psql(port: &str, db: &str, sql: &str) -> Command {
    let mut c = Command::new("psql");
    c.args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            port,
            "-U",
            "postgres",
            "-d",
            db,
            "-c",
            sql,
        ]);
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgresql_dump_loads_into_a_new_cluster_with_the_same_rows() {
    let Some(env) = server_env("PostgreSQL", &["CAIRN_TEST_PG_PORT", "CAIRN_TEST_PG_BIN"]) else {
        return;
    };
    let (port, bin) = (&env[0], Path::new(&env[1]));
    let db = format!("cairn_dump_{}", unique());
    run_ok(&mut psql(
        port,
        "postgres",
        &format!("CREATE DATABASE {db}"),
    ));
    run_ok(&mut psql(
        port,
        &db,
        "CREATE TABLE t (id int PRIMARY KEY, v text, j jsonb); \
         INSERT INTO t SELECT g, repeat('y', g % 50), jsonb_build_object('g', g) \
         FROM generate_series(1, 3000) g;",
    ));
    let tmp = tempdir();
    let pg_env = |p: &str| {
        [
            ("PGHOST", "127.0.0.1".to_owned()),
            ("PGPORT", p.to_owned()),
            ("PGUSER", "postgres".to_owned()),
        ]
    };
    let src_env = pg_env(port);
    let src_env: Vec<(&str, &str)> = src_env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (_src, c) = cluster(&src_env).await;
    let (repo, volumes) = dump_shop(&c, tmp.path(), "postgresql").await;

    // A new, empty cluster.
    let data = scratch(tmp.path(), "pg2");
    let init = run(db_command(&bin.join("initdb").to_string_lossy()).args([
        "-D",
        &data.to_string_lossy(),
        "-U",
        "postgres",
        "--auth=trust",
        "--no-sync",
    ]));
    assert!(init.status.success(), "{init:?}");
    let sock = scratch(tmp.path(), "pgsock");
    let port2 = free_port().to_string();
    let mut cmd = db_command(&bin.join("postgres").to_string_lossy());
    cmd.args(["-D", &data.to_string_lossy(), "-p", &port2])
        .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"])
        .arg("-c")
        .arg(format!("unix_socket_directories={}", sock.display()));
    let mut server = Server::start(cmd, &tmp.path().join("pg2.log"));
    server.wait_ready(|| {
        run(&mut psql(&port2, "postgres", "SELECT 1"))
            .status
            .success()
    });

    let dst_env = pg_env(&port2);
    let dst_env: Vec<(&str, &str)> = dst_env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (_dst, c2) = cluster(&dst_env).await;
    let failed = restore_dumps(&c2, &repo, &volumes, &BTreeMap::new(), patient()).await;
    assert!(failed.is_empty(), "{failed:?}");
    let sums = "SELECT count(*), sum(id), sum(length(v)), sum((j->>'g')::int) FROM t";
    let want = run_ok(&mut psql(port, &db, sums));
    let got = run_ok(&mut psql(&port2, &db, sums));
    assert_eq!(got, want);
    assert!(got.starts_with("3000|"), "{got}");
    run_ok(&mut psql(port, "postgres", &format!("DROP DATABASE {db}")));
}
