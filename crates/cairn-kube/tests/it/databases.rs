//! The recipes against real servers: quiesce, check what writes do inside the window, copy
//! the data directory with the engine inside the window, release, restore the copy, start a
//! second server on it and check it (`CHECK TABLE`, `pg_amcheck`, a Redis `GET`).

use std::path::Path;
use std::process::Command;

use cairn_kube::hooks::{Phase, Recipe, postgres_backup_label, quiesce};

use crate::support::{
    Server, backup, chown_to_db_user, db_command, free_port, recipe_hook, repository, restore, run,
    run_ok, scratch, server_env, start_mariadb, tempdir, unique,
};

fn mariadb(host: &str, port: &str, sql: &str) -> Command {
    let mut c = Command::new("mariadb");
    c.args([
        "--no-defaults",
        "--batch",
        "--skip-column-names",
        "-h",
        host,
        "-P",
        port,
        "-u",
        "root",
        "-e",
        sql,
    ]);
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_recipe_blocks_writes_and_its_copy_passes_check_table() {
    let Some(env) = server_env(
        "MariaDB",
        &[
            "CAIRN_TEST_MARIADB_HOST",
            "CAIRN_TEST_MARIADB_PORT",
            "CAIRN_TEST_MARIADB_DATA",
        ],
    ) else {
        return;
    };
    let (host, port, data) = (&env[0], &env[1], Path::new(&env[2]));
    let table = format!("cairn_hooks.t_{}", unique());
    run_ok(&mut mariadb(
        host,
        port,
        &format!(
            "CREATE DATABASE IF NOT EXISTS cairn_hooks; USE cairn_hooks; \
             CREATE TABLE {table} (id INT PRIMARY KEY, v VARCHAR(200), KEY (v)) ENGINE=InnoDB; \
             INSERT INTO {table} SELECT seq, REPEAT(CHAR(65 + seq % 26), 100) FROM seq_1_to_2000;"
        ),
    ));
    let tmp = tempdir();
    let repo = repository(&tmp.path().join("repo")).await;
    let (executor, hook) = recipe_hook(
        Recipe::Mariadb,
        &[("MYSQL_HOST", host), ("MYSQL_TCP_PORT", port)],
    );

    let q = quiesce(executor, &[hook]).await.unwrap();
    assert_eq!(q.failure(), None, "{:#?}", q.report());
    // Inside the window a write from another connection waits for the lock and gives up.
    let blocked = run(&mut mariadb(
        host,
        port,
        &format!(
            "SET SESSION lock_wait_timeout = 1; INSERT INTO {table} VALUES (999999, 'inside');"
        ),
    ));
    assert!(
        !blocked.status.success(),
        "a write went through the read lock"
    );
    let err = String::from_utf8_lossy(&blocked.stderr);
    assert!(err.contains("Lock wait timeout"), "{err}");
    // Reads go on.
    let count = run_ok(&mut mariadb(
        host,
        port,
        &format!("SELECT COUNT(*) FROM {table}"),
    ));
    assert_eq!(count.trim(), "2000");
    let snap = backup(&repo, data).await;
    let report = q.release().await;
    assert!(!report.failed, "{report:#?}");
    let release = report
        .records
        .iter()
        .find(|r| r.phase == Phase::SessionRelease)
        .unwrap();
    assert_eq!(release.exit_code, Some(0));
    // Released: the same write goes through.
    run_ok(&mut mariadb(
        host,
        port,
        &format!(
            "SET SESSION lock_wait_timeout = 1; INSERT INTO {table} VALUES (999999, 'after');"
        ),
    ));

    // The copy starts as a server of its own and its tables check out.
    let restored = tmp.path().join("restored");
    restore(&repo, &snap, &restored).await;
    chown_to_db_user(&restored);
    let (_server, port2) = start_mariadb(&restored, tmp.path());
    let check = run_ok(&mut mariadb(
        "127.0.0.1",
        &port2,
        &format!("CHECK TABLE {table} EXTENDED"),
    ));
    assert!(check.trim_end().ends_with("OK"), "{check}");
    let all = run_ok(
        Command::new("mariadb-check")
            .args([
                "--no-defaults",
                "-h",
                "127.0.0.1",
                "-P",
                &port2,
                "-u",
                "root",
            ])
            .args(["--extended", "--databases", "cairn_hooks", "mysql"]),
    );
    for line in all.lines().filter(|l| !l.trim().is_empty()) {
        assert!(
            line.trim_end().ends_with("OK"),
            "mariadb-check: {line}\n{all}"
        );
    }
    let count = run_ok(&mut mariadb(
        "127.0.0.1",
        &port2,
        &format!("SELECT COUNT(*), SUM(id = 999999) FROM {table}"),
    ));
    assert_eq!(count.split_whitespace().collect::<Vec<_>>(), ["2000", "0"]);
}

fn psql(port: &str, sql: &str) -> Command {
    let mut c = Command::new("psql");
    c.args([
        "-X",
        "-q",
        "-A",
        "-t",
        "-v",
        "ON_ERROR_STOP=1",
        "-h",
        "127.0.0.1",
        "-p",
        port,
        "-U",
        "postgres",
        "-d",
        "postgres",
        "-c",
        sql,
    ]);
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_recipe_gives_a_copy_that_recovers_and_passes_amcheck() {
    let Some(env) = server_env(
        "PostgreSQL",
        &[
            "CAIRN_TEST_PG_HOST",
            "CAIRN_TEST_PG_PORT",
            "CAIRN_TEST_PG_DATA",
            "CAIRN_TEST_PG_BIN",
        ],
    ) else {
        return;
    };
    let (host, port, data, bin) = (&env[0], &env[1], Path::new(&env[2]), Path::new(&env[3]));
    let table = format!("cairn_hooks_{}", unique());
    run_ok(&mut psql(
        port,
        &format!(
            "CREATE TABLE {table} (id int PRIMARY KEY, v text); CREATE INDEX ON {table} (v); \
             INSERT INTO {table} SELECT g, md5(g::text) FROM generate_series(1, 2000) g;"
        ),
    ));
    let tmp = tempdir();
    let repo = repository(&tmp.path().join("repo")).await;
    let (executor, hook) = recipe_hook(
        Recipe::Postgresql,
        &[("PGHOST", host), ("PGPORT", port), ("PGUSER", "postgres")],
    );

    let q = quiesce(executor, &[hook]).await.unwrap();
    assert_eq!(q.failure(), None, "{:#?}", q.report());
    // Backup mode does not block writes: WAL replay makes the copy consistent.
    run_ok(&mut psql(
        port,
        &format!("INSERT INTO {table} VALUES (999999, 'inside')"),
    ));
    let snap = backup(&repo, data).await;
    let report = q.release().await;
    assert!(!report.failed, "{report:#?}");
    let release = report
        .records
        .iter()
        .find(|r| r.phase == Phase::SessionRelease)
        .unwrap();
    let label = postgres_backup_label(&release.stdout)
        .unwrap_or_else(|| panic!("no backup_label in {release:#?}"));
    assert!(label.contains("START WAL LOCATION"), "{label}");
    // The WAL up to the end of the backup (pg_backup_stop switched segments): copied after
    // the stop, as an archive would hold it.
    let wal = backup(&repo, &data.join("pg_wal")).await;

    let restored = tmp.path().join("restored");
    restore(&repo, &snap, &restored).await;
    for stale in ["postmaster.pid", "postmaster.opts"] {
        let _ = std::fs::remove_file(restored.join(stale));
    }
    std::fs::remove_dir_all(restored.join("pg_wal")).unwrap();
    restore(&repo, &wal, &restored.join("pg_wal")).await;
    std::fs::write(restored.join("backup_label"), &label).unwrap();
    chown_to_db_user(&restored);
    std::fs::set_permissions(
        &restored,
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    let run_dir = scratch(tmp.path(), "run");
    let port2 = free_port().to_string();
    let mut cmd = db_command(&bin.join("postgres").to_string_lossy());
    cmd.arg("-D")
        .arg(&restored)
        .args(["-p", &port2, "-c", "listen_addresses=127.0.0.1"])
        .arg("-c")
        .arg(format!("unix_socket_directories={}", run_dir.display()));
    let mut server = Server::start(cmd, &tmp.path().join("postgres.log"));
    let ready = bin.join("pg_isready");
    server.wait_ready(|| {
        run(Command::new(&ready).args(["-q", "-h", "127.0.0.1", "-p", &port2]))
            .status
            .success()
    });
    let log = std::fs::read_to_string(&server.log).unwrap();
    assert!(
        log.contains("redo done") || log.contains("consistent recovery state"),
        "{log}"
    );
    let check = run(Command::new(bin.join("pg_amcheck")).args([
        "-h",
        "127.0.0.1",
        "-p",
        &port2,
        "-U",
        "postgres",
        "--install-missing",
        "--heapallindexed",
        "--database",
        "postgres",
    ]));
    assert!(
        check.status.success() && check.stdout.is_empty(),
        "pg_amcheck: {}\n{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    let count = run_ok(&mut psql(
        &port2,
        &format!("SELECT count(*), count(*) FILTER (WHERE id = 999999) FROM {table}"),
    ));
    assert_eq!(count.trim(), "2001|1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_recipe_waits_for_bgsave_and_the_dump_restores() {
    let Some(env) = server_env(
        "Redis",
        &[
            "CAIRN_TEST_REDIS_HOST",
            "CAIRN_TEST_REDIS_PORT",
            "CAIRN_TEST_REDIS_DIR",
        ],
    ) else {
        return;
    };
    let (host, port, dir) = (&env[0], &env[1], Path::new(&env[2]));
    let key = format!("cairn-hooks-{}", unique());
    let cli = |port: &str, args: &[&str]| {
        let mut c = Command::new("redis-cli");
        c.args(["-h", "127.0.0.1", "-p", port]).args(args);
        c
    };
    run_ok(&mut cli(port, &["SET", &key, "kept"]));
    let tmp = tempdir();
    let repo = repository(&tmp.path().join("repo")).await;
    let (executor, hook) =
        recipe_hook(Recipe::Redis, &[("REDIS_HOST", host), ("REDIS_PORT", port)]);
    let (report, outcome) = cairn_kube::hooks::run_around(executor, &[hook], || async {
        Ok::<_, String>(backup(&repo, dir).await)
    })
    .await
    .unwrap();
    assert!(!report.failed, "{report:#?}");
    assert!(report.records[0].stdout.contains("saved at"), "{report:#?}");
    let cairn_kube::hooks::StepOutcome::Ran(Ok(snap)) = outcome else {
        panic!("{outcome:?}");
    };
    // Written after the save: must not be in the copy.
    run_ok(&mut cli(port, &["SET", &key, "changed later"]));

    let restored = tmp.path().join("restored");
    restore(&repo, &snap, &restored).await;
    chown_to_db_user(&restored);
    let port2 = free_port().to_string();
    let mut cmd = db_command("redis-server");
    cmd.args([
        "--bind",
        "127.0.0.1",
        "--port",
        &port2,
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
    ])
    .arg(&restored);
    let mut server = Server::start(cmd, &tmp.path().join("redis.log"));
    server.wait_ready(|| run(&mut cli(&port2, &["PING"])).status.success());
    assert_eq!(run_ok(&mut cli(&port2, &["GET", &key])).trim(), "kept");
}
