//! `cairn app` end to end: the binary against in-process Kubernetes API servers, reached the
//! way a real cluster is, through `KUBECONFIG`.

use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};

use cairn_kube_testserver::{Action, Change, EventKind, ExecOutput, ExecRequest, TestServer};
use serde_json::{Value, json};

use crate::common::{TestContext, json, run, snapshot_ids, write};

fn shop(ns: &str) -> Vec<Value> {
    vec![
        json!({"apiVersion":"v1","kind":"ConfigMap",
            "metadata":{"name":"settings","namespace":ns,"labels":{"app":"shop"}},
            "data":{"currency":"EUR","items":"42"}}),
        json!({"apiVersion":"v1","kind":"Secret",
            "metadata":{"name":"db","namespace":ns,"labels":{"app":"shop"}},
            "type":"Opaque","data":{"password":"c2VjcmV0"}}),
        json!({"apiVersion":"apps/v1","kind":"Deployment",
            "metadata":{"name":"web","namespace":ns,"labels":{"app":"shop"}},
            "spec":{"replicas":2,"selector":{"matchLabels":{"app":"shop"}},
                "template":{"metadata":{"labels":{"app":"shop"}},
                    "spec":{"containers":[{"name":"web","image":"nginx:1.27",
                        "envFrom":[{"configMapRef":{"name":"settings"}}]}]}}}}),
        json!({"apiVersion":"v1","kind":"Service",
            "metadata":{"name":"web","namespace":ns,"labels":{"app":"shop"}},
            "spec":{"selector":{"app":"shop"},"ports":[{"port":80}]}}),
    ]
}

/// Writes a kubeconfig for `server` and returns its path.
fn kubeconfig(ctx: &TestContext, server: &TestServer, name: &str) -> PathBuf {
    let p = ctx.root.join(format!("{name}.kubeconfig"));
    write(&p, server.kubeconfig());
    p
}

/// `cairn ARGS` against the cluster of `kubeconfig`, run off the runtime that serves it.
async fn cairn(ctx: &TestContext, kubeconfig: &PathBuf, args: &[&str]) -> std::process::Output {
    let mut cmd: Command = ctx.cairn(args);
    cmd.env("KUBECONFIG", kubeconfig);
    tokio::task::spawn_blocking(move || run(&mut cmd))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_backup_list_describe_and_restore_into_another_cluster() {
    let src = TestServer::builder()
        .namespace("shop")
        .start()
        .await
        .unwrap();
    for o in shop("shop") {
        src.create_typed(o).unwrap();
    }
    let ctx = TestContext::new();
    ctx.init();
    let src_cfg = kubeconfig(&ctx, &src, "src");

    let out = cairn(
        &ctx,
        &src_cfg,
        &["app", "backup", "shop", "-n", "shop", "--json"],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let doc = json(&out);
    assert_eq!(doc["status"], "Completed", "{doc}");
    assert!(doc["resources"].as_u64().unwrap() >= 4, "{doc}");

    let out = cairn(&ctx, &src_cfg, &["app", "list", "--json"]).await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text.contains("\"shop\""), "{text}");

    let out = cairn(&ctx, &src_cfg, &["app", "describe", "shop"]).await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    for want in [
        "ConfigMap",
        "Secret",
        "Deployment",
        "Service",
        "status:    Completed",
    ] {
        assert!(text.contains(want), "{want} missing from:\n{text}");
    }

    // Another cluster, another namespace.
    let dst = TestServer::builder()
        .namespace("shop-copy")
        .start()
        .await
        .unwrap();
    let dst_cfg = kubeconfig(&ctx, &dst, "dst");
    let out = cairn(
        &ctx,
        &dst_cfg,
        &[
            "app",
            "restore",
            "shop",
            "--namespace-map",
            "shop=shop-copy",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let cm = dst
        .get("", "configmaps", Some("shop-copy"), "settings")
        .expect("the ConfigMap was restored into the mapped namespace");
    assert_eq!(cm["data"], json!({"currency":"EUR","items":"42"}));
    let d = dst
        .get("apps", "deployments", Some("shop-copy"), "web")
        .expect("the Deployment was restored");
    assert_eq!(d["spec"]["replicas"], 2);
    assert!(dst.get("", "secrets", Some("shop-copy"), "db").is_some());
    assert!(
        dst.get("", "configmaps", Some("shop"), "settings")
            .is_none()
    );
}

/// A malformed hooks file stops the backup before the cluster or the repository is touched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_hooks_file_fails_before_anything_runs() {
    let src = TestServer::builder()
        .namespace("shop")
        .start()
        .await
        .unwrap();
    let ctx = TestContext::new();
    ctx.init();
    let cfg = kubeconfig(&ctx, &src, "src");
    let version = src.resource_version();
    for (body, want) in [
        (
            "hooks:\n  - name: x\n    pods: {namespace: shop}\n",
            "at least one of pre",
        ),
        (
            "- name: a\n  pods: {namespace: shop}\n  pre: [\"true\"]\n  timeot: 5s\n",
            "timeot",
        ),
        (
            "- name: a\n  pods: {namespace: shop}\n  pre: [\"true\"]\n- name: a\n  pods: {namespace: shop}\n  post: [\"true\"]\n",
            "two hooks",
        ),
    ] {
        let file = ctx.root.join("hooks.yaml");
        write(&file, body);
        let out = cairn(
            &ctx,
            &cfg,
            &[
                "app",
                "backup",
                "shop",
                "-n",
                "shop",
                "--with-data",
                "--repo-secret",
                "repo",
                "--hooks",
                file.to_str().unwrap(),
            ],
        )
        .await;
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(2), "{body}: {err}");
        assert!(
            err.contains("hooks file") && err.contains(want),
            "{body}: {err}"
        );
    }
    assert_eq!(
        src.resource_version(),
        version,
        "nothing was created in the cluster"
    );
    assert!(snapshot_ids(&ctx).is_empty());
}

/// A cluster whose namespace `shop` has the PVC `data` and a Running pod `db-0` mounting it,
/// whose exec plays PostgreSQL's tools: `pg_dumpall` prints `dump`, and what `psql` reads is
/// kept in `loaded`.
async fn db_cluster(dump: &'static str, loaded: Arc<Mutex<Vec<u8>>>) -> TestServer {
    let server = TestServer::builder()
        .namespace("shop")
        .exec(move |r: &ExecRequest, stdin: &[u8]| -> ExecOutput {
            let script = r.command.last().cloned().unwrap_or_default();
            if script.contains("pg_dumpall") {
                return ExecOutput::new(0, dump, "");
            }
            loaded.lock().unwrap().extend_from_slice(stdin);
            ExecOutput::new(0, "", "ERROR:  role \"postgres\" already exists\n")
        })
        // The kubelet: a pod runs as soon as it exists.
        .reactor(|ch: &Change<'_>| {
            if ch.kind == EventKind::Added && ch.is("", "pods") {
                vec![Action::patch_status(ch, json!({"phase": "Running"}))]
            } else {
                Vec::new()
            }
        })
        .start()
        .await
        .unwrap();
    server
        .create_typed(json!({"apiVersion":"v1","kind":"PersistentVolumeClaim",
            "metadata":{"name":"data","namespace":"shop"},
            "spec":{"accessModes":["ReadWriteOnce"],"resources":{"requests":{"storage":"1Gi"}}}}))
        .unwrap();
    server
        .create_typed(json!({"apiVersion":"v1","kind":"Pod",
            "metadata":{"name":"db-0","namespace":"shop"},
            "spec":{"volumes":[{"name":"d","persistentVolumeClaim":{"claimName":"data"}}],
                "containers":[{"name":"postgres","image":"postgres:17",
                    "volumeMounts":[{"name":"d","mountPath":"/var/lib/postgresql/data"}]}]}}))
        .unwrap();
    server
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dumped_pvc_is_described_and_loaded_into_the_restored_database() {
    const DUMP: &str = "--\n-- PostgreSQL database cluster dump\n--\nCREATE TABLE t (x int);\n";
    let src = db_cluster(DUMP, Arc::default()).await;
    let ctx = TestContext::new();
    ctx.init();
    let src_cfg = kubeconfig(&ctx, &src, "src");
    let bad = cairn(
        &ctx,
        &src_cfg,
        &[
            "app",
            "backup",
            "shop",
            "-n",
            "shop",
            "--dump",
            "shop/data=oracle",
        ],
    )
    .await;
    let err = String::from_utf8_lossy(&bad.stderr).into_owned();
    assert_eq!(bad.status.code(), Some(2), "{err}");
    assert!(err.contains("unknown recipe \"oracle\""), "{err}");

    let out = cairn(
        &ctx,
        &src_cfg,
        &[
            "app",
            "backup",
            "shop",
            "-n",
            "shop",
            "--dump",
            "shop/data=postgresql",
            "--json",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let doc = json(&out);
    assert_eq!(doc["volumes"][0]["method"], "dump", "{doc}");
    assert_eq!(doc["volumes"][0]["dump"]["recipe"], "postgresql", "{doc}");
    let out = cairn(&ctx, &src_cfg, &["app", "describe", "shop"]).await;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        text.contains("shop/data (Filesystem, Dump): snapshot")
            && text.contains("dump made with postgresql"),
        "{text}"
    );

    let loaded = Arc::<Mutex<Vec<u8>>>::default();
    let dst = db_cluster("", loaded.clone()).await;
    let dst_cfg = kubeconfig(&ctx, &dst, "dst");
    let out = cairn(
        &ctx,
        &dst_cfg,
        &["app", "restore", "shop", "--with-data", "--timeout", "30"],
    )
    .await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "only dumps, so no --repo-secret is needed: {out:?}"
    );
    assert_eq!(String::from_utf8_lossy(&loaded.lock().unwrap()), DUMP);
    assert!(
        dst.list("batch", "jobs").is_empty(),
        "no mover writes over a dumped PVC"
    );
}
