//! End to end against the in-process API server of the test kit: back up from one server,
//! restore into another, compare; namespace mapping; existing-resource policies; rollback;
//! restore to production; the CSI snapshot + data mover flow with simulated controllers,
//! VolumeGroupSnapshots among them.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use cairn_kube::backup::{AppBackupOptions, backup};
use cairn_kube::document::{BackupStatus, VolumeMethod};
use cairn_kube::dump::restore_dumps;
use cairn_kube::group::{GROUP_LABEL, GroupPolicy};
use cairn_kube::hooks::{HookSpec, OnError, PodSelector};
use cairn_kube::object::ObjectKey;
use cairn_kube::restore::{ExistingPolicy, RestoreOptions, apply, plan};
use cairn_kube::select::Selection;
use cairn_kube::strip::{StripOptions, strip};
use cairn_kube::volumes::VolumeOptions;
use cairn_kube::wait::WaitPolicy;
use cairn_kube::{Cluster, store};
use cairn_kube_testserver::{
    Action, Change, EventKind, ExecOutput, ExecRequest, TestServer, TestServerBuilder, controllers,
};
use cairn_repo::{InitOptions, KdfParams, Repository};
use cairn_storage::MemoryStorage;
use serde_json::{Value, json};

use crate::fixtures::{in_ns, load, wordpress};

async fn repo() -> Arc<Repository> {
    let mut o = InitOptions::default();
    o.kdf = KdfParams::insecure_for_tests();
    Arc::new(
        Repository::init(Arc::new(MemoryStorage::new()), b"pw", &o)
            .await
            .unwrap(),
    )
}

fn quick() -> WaitPolicy {
    WaitPolicy {
        timeout: Duration::from_secs(5),
        interval: Duration::from_millis(10),
    }
}

fn ropts(restore_pvs: bool) -> RestoreOptions {
    let mut o = RestoreOptions::default();
    o.restore_pvs = restore_pvs;
    o.wait = quick();
    o
}

fn key(api_version: &str, kind: &str, ns: Option<&str>, name: &str) -> ObjectKey {
    ObjectKey {
        api_version: api_version.into(),
        kind: kind.into(),
        namespace: ns.map(Into::into),
        name: name.into(),
    }
}

/// A source cluster with WordPress, the shirts CRD and its CRs in `blog`, a PV bound to the
/// MySQL claim, its storage class, a service account bound by a ClusterRoleBinding, and
/// objects controllers own.
async fn source() -> (TestServer, Cluster) {
    let server = TestServer::builder()
        .namespace("blog")
        .namespace("other")
        .start()
        .await
        .unwrap();
    let mut c = Cluster::connect(server.client()).await.unwrap();
    let shirts = load("crd-shirts");
    c.create(&shirts[0]).await.unwrap();
    c.refresh().await.unwrap();
    for s in &shirts[1..] {
        c.create(&in_ns(s.clone(), "blog")).await.unwrap();
    }
    for o in wordpress("blog") {
        c.create(&o).await.unwrap();
    }
    for o in [
        json!({"apiVersion":"storage.k8s.io/v1","kind":"StorageClass","metadata":{"name":"standard"},"provisioner":"test.csi.cairn.dev"}),
        json!({"apiVersion":"v1","kind":"PersistentVolume","metadata":{"name":"pv-mysql"},"spec":{"storageClassName":"standard",
            "capacity":{"storage":"20Gi"},"accessModes":["ReadWriteOnce"],"csi":{"driver":"test.csi.cairn.dev","volumeHandle":"h1"},
            "claimRef":{"kind":"PersistentVolumeClaim","namespace":"blog","name":"mysql-pv-claim","uid":"old-uid"}}}),
        json!({"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":"wp","namespace":"blog","labels":{"app":"wordpress"}}}),
        json!({"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRole","metadata":{"name":"wp-reader"},"rules":[]}),
        json!({"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRoleBinding","metadata":{"name":"wp-reader"},
            "roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"wp-reader"},
            "subjects":[{"kind":"ServiceAccount","name":"wp","namespace":"blog"}]}),
        json!({"apiVersion":"apps/v1","kind":"ReplicaSet","metadata":{"name":"wordpress-abc","namespace":"blog",
            "ownerReferences":[{"apiVersion":"apps/v1","kind":"Deployment","name":"wordpress","uid":"d1","controller":true}]},
            "spec":{"selector":{"matchLabels":{"x":"y"}},"template":{"metadata":{"labels":{"x":"y"}},"spec":{"containers":[{"name":"c","image":"i"}]}}}}),
        json!({"apiVersion":"coordination.k8s.io/v1","kind":"Lease","metadata":{"name":"l","namespace":"blog"},"spec":{}}),
        json!({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"elsewhere","namespace":"other"},"data":{}}),
    ] {
        c.create(&o).await.unwrap();
    }
    c.merge_patch(
        &key(
            "v1",
            "PersistentVolumeClaim",
            Some("blog"),
            "mysql-pv-claim",
        ),
        &json!({"spec":{"volumeName":"pv-mysql"}}),
    )
    .await
    .unwrap();
    (server, c)
}

fn selection(namespaces: &[&str]) -> Selection {
    let mut s = Selection::default();
    s.namespaces = namespaces.iter().map(|n| (*n).to_owned()).collect();
    s
}

/// The object as a comparison sees it: stripped, namespace label dropped (the API server sets it).
fn comparable(mut o: Value, keep_volume_name: bool) -> Value {
    strip(&mut o, StripOptions { keep_volume_name });
    o
}

#[tokio::test]
async fn backup_from_one_server_restores_equal_objects_into_another() {
    let (_src_server, src) = source().await;
    let repo = repo().await;
    let (id, doc) = backup(
        &src,
        &repo,
        &AppBackupOptions::new("blog", selection(&["blog"])),
    )
    .await
    .unwrap();
    assert_eq!(doc.status, BackupStatus::Completed);
    // Skipped with reasons, dependencies added.
    let skipped: BTreeSet<_> = doc.skipped.iter().map(|s| s.object.name.clone()).collect();
    assert!(skipped.contains("wordpress-abc"), "{skipped:?}");
    assert!(
        doc.resources
            .iter()
            .all(|o| o["kind"] != "Lease" && o["metadata"]["name"] != "elsewhere")
    );
    let deps: BTreeSet<_> = doc
        .dependencies
        .iter()
        .map(|d| format!("{}/{}", d.object.kind, d.object.name))
        .collect();
    for d in [
        "CustomResourceDefinition/shirts.stable.example.com",
        "PersistentVolume/pv-mysql",
        "StorageClass/standard",
        "ClusterRoleBinding/wp-reader",
        "ClusterRole/wp-reader",
    ] {
        assert!(deps.contains(d), "{d} missing from {deps:?}");
    }
    assert!(!doc.cluster.version.is_empty());
    // Listed and read back by id and by name.
    let listed = store::list(&repo, Some("blog")).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].0, id);
    let (_, by_name) = store::load(&repo, "blog").await.unwrap();
    assert_eq!(by_name, doc);

    let dst_server = TestServer::start().await.unwrap();
    let mut dst = Cluster::connect(dst_server.client()).await.unwrap();
    let opts = ropts(true);
    let p = plan(&doc, &opts).unwrap();
    let report = apply(&mut dst, &doc, p, &opts).await.unwrap();
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(report.created[0].kind, "CustomResourceDefinition");
    assert_eq!(report.created.len(), doc.resources.len());
    for original in &doc.resources {
        let k = ObjectKey::of(original).unwrap();
        let restored = dst
            .get(&k)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{k} not restored"));
        assert_eq!(
            comparable(restored, true),
            comparable(original.clone(), true),
            "{k}"
        );
        assert_ne!(
            dst.get(&k).await.unwrap().unwrap()["metadata"]["uid"],
            original["metadata"]["uid"]
        );
    }
}

#[tokio::test]
async fn namespace_mapping_policies_and_rollback() {
    let (_s, src) = source().await;
    let repo = repo().await;
    let (_, doc) = backup(
        &src,
        &repo,
        &AppBackupOptions::new("blog", selection(&["blog"])),
    )
    .await
    .unwrap();
    let dst_server = TestServer::start().await.unwrap();
    let mut dst = Cluster::connect(dst_server.client()).await.unwrap();
    let mut opts = ropts(true);
    opts.transforms
        .namespace_map
        .insert("blog".into(), "blog-copy".into());
    let report = apply(&mut dst, &doc, plan(&doc, &opts).unwrap(), &opts)
        .await
        .unwrap();
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    let pv = dst
        .get(&key("v1", "PersistentVolume", None, "pv-mysql"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(pv["spec"]["claimRef"]["namespace"], "blog-copy");
    assert!(pv["spec"]["claimRef"].get("uid").is_none());
    let crb = dst
        .get(&key(
            "rbac.authorization.k8s.io/v1",
            "ClusterRoleBinding",
            None,
            "wp-reader",
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(crb["subjects"][0]["namespace"], "blog-copy");
    let secret = key("v1", "Secret", Some("blog-copy"), "mysql-pass");
    assert!(dst.get(&secret).await.unwrap().is_some());
    assert!(
        dst.get(&key(
            "stable.example.com/v1",
            "Shirt",
            Some("blog-copy"),
            "example1"
        ))
        .await
        .unwrap()
        .is_some()
    );

    // Skip (default): a changed object stays changed.
    dst.merge_patch(&secret, &json!({"data":{"password":"Y2hhbmdlZA=="}}))
        .await
        .unwrap();
    let again = apply(&mut dst, &doc, plan(&doc, &opts).unwrap(), &opts)
        .await
        .unwrap();
    assert_eq!(again.created.len(), 0);
    assert_eq!(again.skipped_existing.len(), doc.resources.len());
    assert_eq!(
        dst.get(&secret).await.unwrap().unwrap()["data"]["password"],
        "Y2hhbmdlZA=="
    );
    // Update: the backed-up value wins, the object keeps its uid.
    let uid = dst.get(&secret).await.unwrap().unwrap()["metadata"]["uid"].clone();
    opts.existing = ExistingPolicy::Update;
    apply(&mut dst, &doc, plan(&doc, &opts).unwrap(), &opts)
        .await
        .unwrap();
    let s = dst.get(&secret).await.unwrap().unwrap();
    assert_eq!(s["data"]["password"], "c2VjcmV0LXBhc3N3b3Jk");
    assert_eq!(s["metadata"]["uid"], uid);
    // Replace: a new object.
    opts.existing = ExistingPolicy::Replace;
    opts.only = Some(serde_json::from_value(json!({"kinds":["Secret"]})).unwrap());
    let r = apply(&mut dst, &doc, plan(&doc, &opts).unwrap(), &opts)
        .await
        .unwrap();
    assert_eq!(r.replaced.len(), 1);
    assert_ne!(
        dst.get(&secret).await.unwrap().unwrap()["metadata"]["uid"],
        uid
    );
    // Rollback: a selected object created after the backup goes; the rest stays.
    dst.create(&json!({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"new-since","namespace":"blog-copy"},"data":{}}))
        .await
        .unwrap();
    opts.existing = ExistingPolicy::Skip;
    opts.only = None;
    opts.rollback = true;
    let r = apply(&mut dst, &doc, plan(&doc, &opts).unwrap(), &opts)
        .await
        .unwrap();
    assert_eq!(
        r.deleted
            .iter()
            .map(|k| k.name.as_str())
            .collect::<Vec<_>>(),
        ["new-since"]
    );
    assert!(dst.get(&secret).await.unwrap().is_some());
}

#[tokio::test]
async fn partial_restore_checks_dependencies() {
    let (_s, src) = source().await;
    let repo = repo().await;
    let (_, doc) = backup(
        &src,
        &repo,
        &AppBackupOptions::new("blog", selection(&["blog"])),
    )
    .await
    .unwrap();
    let dst_server = TestServer::builder()
        .namespace("blog")
        .start()
        .await
        .unwrap();
    let mut dst = Cluster::connect(dst_server.client()).await.unwrap();
    let mut opts = ropts(false);
    opts.only = Some(
        serde_json::from_value(json!({"kinds":["Deployment"],"names":["wordpress-mysql"]}))
            .unwrap(),
    );
    let err = apply(&mut dst, &doc, plan(&doc, &opts).unwrap(), &opts)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("PersistentVolumeClaim blog/mysql-pv-claim")
            && err.contains("Secret blog/mysql-pass"),
        "{err}"
    );
    assert!(
        dst.get(&key(
            "apps/v1",
            "Deployment",
            Some("blog"),
            "wordpress-mysql"
        ))
        .await
        .unwrap()
        .is_none()
    );
    // With what it needs in the restore, it goes through.
    opts.only = Some(serde_json::from_value(json!({"labelSelector":"app=wordpress"})).unwrap());
    dst.create(&in_ns(crate::fixtures::mysql_pass(), "blog"))
        .await
        .unwrap();
    let r = apply(&mut dst, &doc, plan(&doc, &opts).unwrap(), &opts)
        .await
        .unwrap();
    assert!(r.failed.is_empty(), "{:?}", r.failed);
    assert!(
        dst.get(&key(
            "apps/v1",
            "Deployment",
            Some("blog"),
            "wordpress-mysql"
        ))
        .await
        .unwrap()
        .is_some()
    );
}

#[tokio::test]
async fn restore_to_production_scales_down_and_back_also_on_failure() {
    let server = TestServer::builder()
        .namespace("blog")
        .reactor(controllers::workloads_ready)
        .start()
        .await
        .unwrap();
    let c = Cluster::connect(server.client()).await.unwrap();
    for o in wordpress("blog") {
        c.create(&o).await.unwrap();
    }
    let mysql = key("apps/v1", "Deployment", Some("blog"), "wordpress-mysql");
    let wp = key("apps/v1", "Deployment", Some("blog"), "wordpress");
    c.merge_patch(&mysql, &json!({"spec":{"replicas":3}}))
        .await
        .unwrap();
    let pvcs = BTreeSet::from(["mysql-pv-claim".to_owned()]);
    let replicas = |o: Option<Value>| o.unwrap()["spec"]["replicas"].as_i64().unwrap_or(1);
    // Failure midway: scaled back anyway, the error surfaces.
    let err =
        cairn_kube::production::with_workloads_stopped(&c, "blog", &pvcs, quick(), || async {
            assert_eq!(replicas(c.get(&mysql).await.unwrap()), 0);
            assert_eq!(
                replicas(c.get(&wp).await.unwrap()),
                1,
                "only owners of the restored PVCs stop"
            );
            Err(cairn_kube::Error::Failed {
                what: "mover".into(),
                reason: "disk full".into(),
            })
        })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("disk full"));
    let after = c.get(&mysql).await.unwrap().unwrap();
    assert_eq!(after["spec"]["replicas"], 3);
    assert!(
        after["metadata"]["annotations"]
            .get(cairn_kube::restore::REPLICAS_ANNOTATION)
            .is_none()
    );
    // Success.
    let held =
        cairn_kube::production::with_workloads_stopped(&c, "blog", &pvcs, quick(), || async {
            assert_eq!(replicas(c.get(&mysql).await.unwrap()), 0);
            Ok(())
        })
        .await
        .unwrap();
    assert_eq!(held, vec![(mysql.clone(), 3)]);
    assert_eq!(replicas(c.get(&mysql).await.unwrap()), 3);
    // An interrupted restore leaves the annotation; resume scales back.
    c.merge_patch(
        &mysql,
        &json!({"metadata":{"annotations":{"cairn.io/replicas":"3"}},"spec":{"replicas":0}}),
    )
    .await
    .unwrap();
    cairn_kube::production::resume(&c, "blog").await.unwrap();
    assert_eq!(replicas(c.get(&mysql).await.unwrap()), 3);
}

/// Plays the data mover: for each new Job, runs its `cairn backup` in-process against the
/// repository (the volume's content is a fixed byte string) and completes the Job — or fails
/// it when `fail` is set.
fn mover_controller(server: &TestServer, client: kube::Client, repo: Arc<Repository>, fail: bool) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Value>();
    server.add_reactor(move |ch: &Change<'_>| {
        if ch.kind == EventKind::Added && ch.is("batch", "jobs") {
            let _ = tx.send(ch.object.clone());
        }
        Vec::<Action>::new()
    });
    tokio::spawn(async move {
        let c = Cluster::connect(client).await.unwrap();
        while let Some(job) = rx.recv().await {
            let cmd: Vec<String> = serde_json::from_value(
                job["spec"]["template"]["spec"]["containers"][0]["command"].clone(),
            )
            .unwrap();
            let arg = |flag: &str| {
                cmd.iter()
                    .position(|a| a == flag)
                    .map(|i| cmd[i + 1].clone())
            };
            let k = ObjectKey::of(&job).unwrap();
            let status = if fail {
                json!({"failed":1,"conditions":[{"type":"Failed","status":"True","message":"BackoffLimitExceeded: disk error"}]})
            } else {
                let mut o = cairn_repo::BackupOptions::default();
                o.identity = arg("--source-id");
                o.tags = vec![arg("--tag").unwrap()];
                cairn_repo::backup_stream(
                    &repo,
                    std::io::Cursor::new(b"volume bytes".to_vec()),
                    "volume",
                    &o,
                    Arc::new(cairn_repo::NoProgress),
                    cairn_repo::CancellationToken::new(),
                )
                .await
                .unwrap();
                json!({"succeeded":1,"conditions":[{"type":"Complete","status":"True"}]})
            };
            c.merge_patch_status(&k, &json!({"status": status}))
                .await
                .unwrap();
        }
    });
}

async fn volume_flow(fail: bool) -> (TestServer, Cluster, cairn_kube::AppBackup) {
    volume_flow_with(fail, Vec::new(), |_| {}).await
}

/// A Running MySQL pod in `ns` that mounts `mysql-pv-claim` in its `mysql` container.
async fn running_db_pod(c: &Cluster, ns: &str) {
    let pod = c
        .create(&json!({"apiVersion":"v1","kind":"Pod",
            "metadata":{"name":"mysql-0","namespace":ns,"labels":{"app":"wordpress","tier":"mysql"}},
            "spec":{
                "volumes":[{"name":"data","persistentVolumeClaim":{"claimName":"mysql-pv-claim"}}],
                "containers":[{"name":"exporter","image":"exporter:1"},
                    {"name":"mysql","image":"mysql:8",
                     "volumeMounts":[{"name":"data","mountPath":"/var/lib/mysql"}]}]}}))
        .await
        .unwrap();
    c.merge_patch_status(
        &ObjectKey::of(&pod).unwrap(),
        &json!({"status":{"phase":"Running"}}),
    )
    .await
    .unwrap();
}

/// Nothing a backup creates is left behind: no snapshots of either kind, no contents, no
/// Jobs, no temporary PVCs, no group label on the application's PVCs.
fn assert_clean(server: &TestServer) {
    for (g, r) in [
        ("snapshot.storage.k8s.io", "volumesnapshots"),
        ("snapshot.storage.k8s.io", "volumesnapshotcontents"),
        ("groupsnapshot.storage.k8s.io", "volumegroupsnapshots"),
        (
            "groupsnapshot.storage.k8s.io",
            "volumegroupsnapshotcontents",
        ),
        ("batch", "jobs"),
    ] {
        assert!(
            server.list(g, r).is_empty(),
            "{r} left: {:#?}",
            server.list(g, r)
        );
    }
    let pvcs = server.list("", "persistentvolumeclaims");
    let names: Vec<_> = pvcs
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["mysql-pv-claim", "wp-pv-claim"]);
    for p in &pvcs {
        assert!(
            p["metadata"]["labels"].get(GROUP_LABEL).is_none(),
            "{:#?}",
            p["metadata"]
        );
    }
}

/// Records the group snapshots and snapshots created, and the snapshot each temporary PVC is
/// provisioned from.
fn record_snapshots(server: &TestServer, log: &Log) {
    let l = log.clone();
    server.add_reactor(move |ch: &Change<'_>| {
        if ch.kind == EventKind::Added {
            let name = ch.name();
            if ch.is("groupsnapshot.storage.k8s.io", "volumegroupsnapshots") {
                let sel = &ch.object["spec"]["source"]["selector"];
                l.lock().push(format!("group {name} {sel}"));
            } else if ch.is("snapshot.storage.k8s.io", "volumesnapshots") {
                l.lock().push(format!("snapshot {name}"));
            } else if ch.is("", "persistentvolumeclaims")
                && let Some(src) = ch.object["spec"]["dataSource"]["name"].as_str()
            {
                l.lock().push(format!("pvc {name} from {src}"));
            }
        }
        Vec::<Action>::new()
    });
}

/// A driver without group snapshots: every VolumeGroupSnapshot fails.
fn groups_fail(ch: &Change<'_>) -> Vec<Action> {
    if ch.kind == EventKind::Added && ch.is("groupsnapshot.storage.k8s.io", "volumegroupsnapshots")
    {
        return vec![Action::patch_status(
            ch,
            json!({"readyToUse": false, "error": {"message": "driver lacks CREATE_DELETE_GET_VOLUME_GROUP_SNAPSHOT"}}),
        )];
    }
    Vec::new()
}

#[tokio::test]
async fn volumes_of_one_driver_are_cut_together_by_a_group_snapshot() {
    let log: Log = Arc::default();
    let (server, _c, doc) = volume_flow_with(false, vec![flush_hook(OnError::Fail)], |s| {
        record_events(s, &log, 0);
        record_snapshots(s, &log);
    })
    .await;
    assert_eq!(doc.status, BackupStatus::Completed, "{:?}", doc.problems);
    let group = "cairn-run1-group-0";
    for v in &doc.volumes {
        assert!(v.snapshot.is_some(), "{v:?}");
        assert_eq!(v.group_snapshot.as_deref(), Some(group), "{v:?}");
        assert_eq!(v.warning, None);
    }
    let log = log.lock().clone();
    let release = log.iter().position(|l| l.starts_with("post-step")).unwrap();
    let group_line = format!(
        "group {group} {}",
        json!({"matchLabels": {GROUP_LABEL: group}})
    );
    assert_eq!(
        log[..=release],
        [
            "pre-step mysql-0/mysql".to_owned(),
            group_line,
            "snapshot".into(),
            format!("snapshot {group}-mysql-pv-claim"),
            "snapshot".into(),
            format!("snapshot {group}-wp-pv-claim"),
            "post-step mysql-0/mysql".into(),
        ],
        "one group, cut inside the hooks' window"
    );
    // The copies run concurrently: compare them as a set.
    let mut copies = log[release + 1..].to_vec();
    copies.sort();
    assert_eq!(
        copies,
        [
            "job".to_owned(),
            "job".into(),
            format!("pvc cairn-run1-mysql-pv-claim from {group}-mysql-pv-claim"),
            format!("pvc cairn-run1-wp-pv-claim from {group}-wp-pv-claim"),
        ],
        "each copy is provisioned from its member snapshot"
    );
    assert_clean(&server);
}

#[tokio::test]
async fn without_the_group_api_each_volume_gets_its_own_snapshot() {
    let log: Log = Arc::default();
    let builder = TestServer::builder().without_group("groupsnapshot.storage.k8s.io");
    let (server, _c, doc) = volume_flow_on(
        builder,
        false,
        Vec::new(),
        |s| record_snapshots(s, &log),
        |_| {},
    )
    .await;
    assert_eq!(doc.status, BackupStatus::Completed, "{:?}", doc.problems);
    assert!(!doc.cluster.group_snapshots);
    assert!(
        doc.volumes
            .iter()
            .all(|v| v.snapshot.is_some() && v.group_snapshot.is_none() && v.warning.is_none()),
        "{:?}",
        doc.volumes
    );
    let snaps: Vec<_> = log
        .lock()
        .iter()
        .filter(|l| l.starts_with("snapshot") || l.starts_with("group"))
        .cloned()
        .collect();
    assert_eq!(
        snaps,
        [
            "snapshot cairn-run1-mysql-pv-claim",
            "snapshot cairn-run1-wp-pv-claim"
        ]
    );
    assert_clean(&server);
}

#[tokio::test]
async fn a_failed_group_falls_back_to_one_snapshot_each_and_says_so() {
    let log: Log = Arc::default();
    let builder = TestServer::builder().reactor(groups_fail);
    let (server, _c, doc) = volume_flow_on(
        builder,
        false,
        Vec::new(),
        |s| record_snapshots(s, &log),
        |_| {},
    )
    .await;
    assert_eq!(doc.status, BackupStatus::Completed, "{:?}", doc.problems);
    for v in &doc.volumes {
        assert!(v.snapshot.is_some() && v.group_snapshot.is_none(), "{v:?}");
        let w = v.warning.as_deref().unwrap_or_default();
        assert!(
            w.contains("snapshotted on its own") && w.contains("CREATE_DELETE_GET_VOLUME_GROUP"),
            "{w}"
        );
    }
    assert_eq!(
        log.lock()
            .iter()
            .filter(|l| l.starts_with("snapshot cairn-run1-"))
            .count(),
        2
    );
    assert_clean(&server);
}

#[tokio::test]
async fn required_groups_that_fail_back_up_no_volume() {
    let builder = TestServer::builder().reactor(groups_fail);
    let (server, _c, doc) = volume_flow_on(
        builder,
        false,
        Vec::new(),
        |_| {},
        |o| {
            o.volumes.as_mut().unwrap().group_snapshots = GroupPolicy::Require;
        },
    )
    .await;
    assert_eq!(doc.status, BackupStatus::PartiallyFailed);
    for v in &doc.volumes {
        assert!(v.snapshot.is_none(), "{v:?}");
        let e = v.error.as_deref().unwrap_or_default();
        assert!(e.contains("group snapshots are required"), "{e}");
    }
    assert_eq!(doc.problems.len(), 2, "{:?}", doc.problems);
    assert_clean(&server);
}

/// The wordpress application with its PVCs, a running MySQL pod for hooks, the snapshot,
/// group snapshot and provisioner controllers and a mover controller; backs it up with
/// `hooks`.
async fn volume_flow_with(
    fail: bool,
    hooks: Vec<HookSpec>,
    setup: impl FnOnce(&TestServer),
) -> (TestServer, Cluster, cairn_kube::AppBackup) {
    let builder = TestServer::builder().reactor(controllers::group_snapshotter);
    volume_flow_on(builder, fail, hooks, setup, |_| {}).await
}

/// [`volume_flow_with`] on a server from `builder` (which gets the snapshot and provisioner
/// controllers added), with `tune` applied to the volume options.
async fn volume_flow_on(
    builder: TestServerBuilder,
    fail: bool,
    hooks: Vec<HookSpec>,
    setup: impl FnOnce(&TestServer),
    tune: impl FnOnce(&mut AppBackupOptions),
) -> (TestServer, Cluster, cairn_kube::AppBackup) {
    let (server, c, doc, _) = volume_flow_repo(builder, fail, hooks, setup, tune).await;
    (server, c, doc)
}

/// [`volume_flow_on`], also returning the repository.
async fn volume_flow_repo(
    builder: TestServerBuilder,
    fail: bool,
    hooks: Vec<HookSpec>,
    setup: impl FnOnce(&TestServer),
    tune: impl FnOnce(&mut AppBackupOptions),
) -> (TestServer, Cluster, cairn_kube::AppBackup, Arc<Repository>) {
    let server = builder
        .namespace("blog")
        .reactor(controllers::snapshotter)
        .reactor(controllers::provisioner)
        .start()
        .await
        .unwrap();
    let c = Cluster::connect(server.client()).await.unwrap();
    for o in wordpress("blog") {
        c.create(&o).await.unwrap();
    }
    running_db_pod(&c, "blog").await;
    setup(&server);
    let repo = repo().await;
    mover_controller(&server, server.client(), repo.clone(), fail);
    let mut opts = AppBackupOptions::new("blog", selection(&["blog"]));
    opts.hooks = hooks;
    let mut v = VolumeOptions::new("cairn:test", "repo", "run1");
    v.wait = quick();
    opts.volumes = Some(v);
    tune(&mut opts);
    let (_, doc) = backup(&c, &repo, &opts).await.unwrap();
    (server, c, doc, repo)
}

#[tokio::test]
async fn volumes_go_through_csi_snapshots_and_movers_and_are_cleaned_up() {
    let (server, _c, doc) = volume_flow(false).await;
    assert_eq!(doc.status, BackupStatus::Completed, "{:?}", doc.problems);
    assert_eq!(doc.volumes.len(), 2);
    assert!(
        doc.volumes
            .iter()
            .all(|v| v.snapshot.is_some() && v.error.is_none()),
        "{:?}",
        doc.volumes
    );
    assert_clean(&server);
}

#[tokio::test]
async fn a_failed_mover_makes_the_backup_partially_failed_and_still_cleans_up() {
    let (server, _c, doc) = volume_flow(true).await;
    assert_eq!(doc.status, BackupStatus::PartiallyFailed);
    assert_eq!(doc.problems.len(), 2);
    assert!(
        doc.problems[0].reason.contains("disk error"),
        "{:?}",
        doc.problems
    );
    assert!(doc.volumes.iter().all(|v| v.snapshot.is_none()));
    assert_clean(&server);
}

/// What happened, in order: execs in the pod and objects the backup created.
type Log = Arc<parking_lot::Mutex<Vec<String>>>;

fn record_events(server: &TestServer, log: &Log, exit_code: i32) {
    let l = log.clone();
    server.add_reactor(move |ch: &Change<'_>| {
        if ch.kind == EventKind::Added {
            if ch.is("snapshot.storage.k8s.io", "volumesnapshots") {
                l.lock().push("snapshot".into());
            } else if ch.is("batch", "jobs") {
                l.lock().push("job".into());
            }
        }
        Vec::<Action>::new()
    });
    let l = log.clone();
    server.on_exec(move |r: &ExecRequest, _stdin: &[u8]| {
        let cmd = r.command.join(" ");
        let step = ["pre-step", "post-step"]
            .into_iter()
            .find(|s| cmd.contains(s))
            .unwrap_or("other");
        l.lock().push(format!("{step} {}/{}", r.pod, r.container));
        let code = if step == "pre-step" { exit_code } else { 0 };
        ExecOutput::new(code, format!("{step} done\n"), "")
    });
}

fn flush_hook(on_error: OnError) -> HookSpec {
    let mut h = HookSpec::empty(
        "flush",
        PodSelector::new("blog", "tier=mysql", Some("mysql")),
    );
    h.pre = Some(vec!["sh".into(), "-c".into(), "echo pre-step".into()]);
    h.post = Some(vec!["sh".into(), "-c".into(), "echo post-step".into()]);
    h.timeout = Duration::from_secs(10);
    h.on_error = on_error;
    h
}

#[tokio::test]
async fn hooks_quiesce_around_the_snapshots_and_not_the_copies() {
    let log: Log = Arc::default();
    let (_server, _c, doc) = volume_flow_with(false, vec![flush_hook(OnError::Fail)], |s| {
        record_events(s, &log, 0);
    })
    .await;
    assert_eq!(doc.status, BackupStatus::Completed, "{:?}", doc.problems);
    let log = log.lock().clone();
    assert_eq!(
        log,
        [
            "pre-step mysql-0/mysql",
            "snapshot",
            "snapshot",
            "post-step mysql-0/mysql",
            "job",
            "job"
        ],
        "the pod is released before the copies start"
    );
    // Every step is recorded with the backup, with its output.
    assert_eq!(doc.hooks.len(), 2, "{:#?}", doc.hooks);
    assert_eq!(doc.hooks[0]["phase"], "pre");
    assert_eq!(doc.hooks[0]["exitCode"], 0);
    assert!(
        doc.hooks[0]["stdout"]
            .as_str()
            .unwrap()
            .contains("pre-step done")
    );
    assert_eq!(doc.hooks[1]["phase"], "post");
}

#[tokio::test]
async fn a_failed_pre_hook_takes_no_snapshot_and_still_runs_post() {
    let log: Log = Arc::default();
    let (server, _c, doc) = volume_flow_with(false, vec![flush_hook(OnError::Fail)], |s| {
        record_events(s, &log, 3);
    })
    .await;
    assert_eq!(doc.status, BackupStatus::PartiallyFailed);
    assert_eq!(
        log.lock().clone(),
        ["pre-step mysql-0/mysql", "post-step mysql-0/mysql"]
    );
    assert!(
        doc.volumes.iter().all(|v| v.snapshot.is_none()
            && v.error
                .as_deref()
                .is_some_and(|e| e.contains("not backed up"))),
        "{:?}",
        doc.volumes
    );
    assert!(
        doc.problems
            .iter()
            .any(|p| p.item.starts_with("hook flush")),
        "{:?}",
        doc.problems
    );
    assert!(
        server
            .list("snapshot.storage.k8s.io", "volumesnapshots")
            .is_empty()
    );
}

#[tokio::test]
async fn a_failed_hook_that_may_continue_is_recorded_and_the_backup_goes_on() {
    let log: Log = Arc::default();
    let (_server, _c, doc) = volume_flow_with(false, vec![flush_hook(OnError::Continue)], |s| {
        record_events(s, &log, 3);
    })
    .await;
    assert_eq!(doc.status, BackupStatus::PartiallyFailed);
    assert!(
        doc.volumes.iter().all(|v| v.snapshot.is_some()),
        "{:?}",
        doc.volumes
    );
    assert_eq!(log.lock().iter().filter(|e| *e == "job").count(), 2);
    assert_eq!(doc.problems.len(), 1, "{:?}", doc.problems);
    assert_eq!(doc.hooks[0]["exitCode"], 3);
}

/// What the simulated `mariadb-dump` prints.
const DUMP: &str = "-- MariaDB dump\nCREATE TABLE t (x int);\nINSERT INTO t VALUES (1);\n";

/// Plays MariaDB in the pod: the dump script prints [`DUMP`] (or fails like a refused login
/// when `refuse` is set); the load script keeps its stdin in `loaded` (or fails on a syntax
/// error when `refuse` is set). Records the container each ran in.
fn mariadb_exec(server: &TestServer, refuse: bool, loaded: &Log) {
    let l = loaded.clone();
    server.on_exec(move |r: &ExecRequest, stdin: &[u8]| {
        let script = r.command.last().cloned().unwrap_or_default();
        l.lock().push(format!("exec in {}", r.container));
        if script.contains("mariadb-dump") {
            if refuse {
                return ExecOutput::new(
                    2,
                    "-- MariaDB dump\nCREATE TA",
                    "mysqldump: Got error: 1045: Access denied for user 'root'@'localhost'",
                );
            }
            return ExecOutput::new(0, DUMP, "");
        }
        if refuse {
            return ExecOutput::new(
                1,
                "",
                "ERROR 1064 (42000) at line 2: You have an error in your SQL syntax",
            );
        }
        l.lock().push(String::from_utf8_lossy(stdin).into_owned());
        ExecOutput::new(0, "", "")
    });
}

/// The volume flow with `mysql-pv-claim` saved as a MariaDB dump ([`mariadb_exec`]).
async fn dump_flow(
    refuse: bool,
    log: &Log,
) -> (cairn_kube::AppBackup, Arc<Repository>, TestServer) {
    let (server, _c, doc, repo) = volume_flow_repo(
        TestServer::builder(),
        false,
        Vec::new(),
        |s| mariadb_exec(s, refuse, log),
        |o| o.dumps = vec!["blog/mysql-pv-claim=mariadb".parse().unwrap()],
    )
    .await;
    (doc, repo, server)
}

#[tokio::test]
async fn a_dump_is_saved_from_the_pod_and_loaded_into_the_restored_one() {
    let log: Log = Arc::default();
    let (doc, repo, _server) = dump_flow(false, &log).await;
    assert_eq!(doc.status, BackupStatus::Completed, "{:?}", doc.problems);
    let db = doc
        .volumes
        .iter()
        .find(|v| v.pvc == "mysql-pv-claim")
        .unwrap();
    assert_eq!(db.method, VolumeMethod::Dump);
    assert_eq!(db.dump.as_ref().unwrap().recipe, "mariadb");
    assert!(db.snapshot.is_some(), "{db:?}");
    let wp = doc.volumes.iter().find(|v| v.pvc == "wp-pv-claim").unwrap();
    assert_eq!(
        wp.method,
        VolumeMethod::CsiSnapshot,
        "the other PVC still goes through a snapshot"
    );
    assert_eq!(
        log.lock().clone(),
        ["exec in mysql"],
        "dumped in the container that mounts the PVC"
    );

    // Restore into another cluster: the database pod runs there; the dump is loaded into it,
    // and no mover writes the dump's bytes over the volume.
    let target = TestServer::builder()
        .namespace("blog")
        .reactor(controllers::jobs_succeed)
        .start()
        .await
        .unwrap();
    let c2 = Cluster::connect(target.client()).await.unwrap();
    running_db_pod(&c2, "blog").await;
    let loaded: Log = Arc::default();
    mariadb_exec(&target, false, &loaded);
    let map = std::collections::BTreeMap::new();
    let mut v = VolumeOptions::new("cairn:test", "repo", "run2");
    v.wait = quick();
    let jobs: Log = Arc::default();
    let j = jobs.clone();
    target.add_reactor(move |ch: &Change<'_>| {
        if ch.kind == EventKind::Added && ch.is("batch", "jobs") {
            j.lock().push(ch.name().to_owned());
        }
        Vec::<Action>::new()
    });
    let failed = cairn_kube::volumes::restore_volumes(&c2, &doc.volumes, &map, &v).await;
    assert!(failed.is_empty(), "{failed:?}");
    assert_eq!(jobs.lock().clone(), ["cairn-restore-run2-wp-pv-claim"]);
    let failed = restore_dumps(&c2, &repo, &doc.volumes, &map, quick()).await;
    assert!(failed.is_empty(), "{failed:?}");
    assert_eq!(loaded.lock().clone(), ["exec in mysql", DUMP]);

    // A load the database refuses is an error that names the database's complaint.
    let refused: Log = Arc::default();
    mariadb_exec(&target, true, &refused);
    let failed = restore_dumps(&c2, &repo, &doc.volumes, &map, quick()).await;
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0].0, "blog/mysql-pv-claim");
    assert!(failed[0].1.contains("ERROR 1064"), "{failed:?}");
}

#[tokio::test]
async fn a_failed_dump_is_not_saved_and_the_backup_says_why() {
    let log: Log = Arc::default();
    let (doc, repo, _server) = dump_flow(true, &log).await;
    assert_eq!(doc.status, BackupStatus::PartiallyFailed);
    let db = doc
        .volumes
        .iter()
        .find(|v| v.pvc == "mysql-pv-claim")
        .unwrap();
    assert!(db.snapshot.is_none(), "{db:?}");
    let err = db.error.as_deref().unwrap_or_default();
    assert_eq!(err.matches("Access denied").count(), 1, "said once: {err}");
    assert!(err.contains("read the stream mariadb-dump.sql"), "{err}");
    // The partial output was never committed.
    let mut f = cairn_repo::SnapshotFilter::default();
    f.sources = vec![cairn_kube::volumes::volume_identity(
        "blog",
        "blog",
        "mysql-pv-claim",
    )];
    assert!(repo.snapshots(&f).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_dump_of_a_pvc_outside_the_selection_is_refused_before_anything_runs() {
    let server = TestServer::builder()
        .namespace("blog")
        .start()
        .await
        .unwrap();
    let c = Cluster::connect(server.client()).await.unwrap();
    for o in wordpress("blog") {
        c.create(&o).await.unwrap();
    }
    let repo = repo().await;
    let mut opts = AppBackupOptions::new("blog", selection(&["blog"]));
    opts.dumps = vec!["blog/nope=postgresql".parse().unwrap()];
    let err = backup(&c, &repo, &opts).await.unwrap_err().to_string();
    assert!(err.contains("blog/nope"), "{err}");
    assert!(store::list(&repo, None).await.unwrap().is_empty());
}
