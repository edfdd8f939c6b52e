//! Logic on real manifests: strip, transforms, order, dependencies, skip list, plans.

use std::collections::BTreeMap;

use cairn_kube::document::{AppBackup, ResourceType};
use cairn_kube::object::ObjectKey;
use cairn_kube::order::{default_order, sort_for_restore};
use cairn_kube::restore::{RestoreOptions, plan};
use cairn_kube::select::{ClusterObjects, Selection, dependencies};
use cairn_kube::selector::{LabelSelector, any_matches};
use cairn_kube::strip::{StripOptions, strip};
use cairn_kube::transform::{self, Transforms};
use serde_json::{Value, json};

use crate::fixtures::{as_fetched, in_ns, load, wordpress};

fn kinds(objs: &[Value]) -> Vec<String> {
    objs.iter()
        .map(|o| {
            format!(
                "{}/{}",
                o["kind"].as_str().unwrap(),
                o["metadata"]["name"].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
fn strip_returns_the_manifest_the_user_applied() {
    // Fields a user writes survive; everything the server added goes, except the headless
    // Service's clusterIP: None, which is the user's.
    for (n, original) in wordpress("blog").into_iter().enumerate() {
        let mut fetched = as_fetched(original.clone(), n);
        strip(&mut fetched, StripOptions::default());
        let mut expected = original.clone();
        if expected["kind"] == "PersistentVolumeClaim" {
            expected["spec"]["storageClassName"] = json!("standard");
        }
        assert_eq!(fetched, expected, "{}", original["metadata"]["name"]);
    }
}

#[test]
fn or_of_label_selectors_selects_both_tiers_of_wordpress() {
    let objs = wordpress("blog");
    let sels = [
        LabelSelector::parse("app=wordpress").unwrap(),
        LabelSelector::parse("app.kubernetes.io/name=wordpress").unwrap(),
    ];
    let picked: Vec<_> = objs
        .iter()
        .filter(|o| any_matches(&sels, &cairn_kube::object::labels(o)))
        .collect();
    // Everything but the unlabelled Secret.
    assert_eq!(picked.len(), objs.len() - 1);
    let only_mysql: Vec<_> = objs
        .iter()
        .filter(|o| any_matches(&sels[..1], &cairn_kube::object::labels(o)))
        .collect();
    assert_eq!(only_mysql.len(), 3);
}

#[test]
fn default_order_puts_crds_first_and_custom_resources_last() {
    let mut objs = load("crd-shirts");
    objs.extend(wordpress("shop"));
    objs.push(json!({"apiVersion":"v1","kind":"Namespace","metadata":{"name":"shop"}}));
    objs.reverse();
    let custom = |k: &ObjectKey| k.group() == "stable.example.com";
    sort_for_restore(&mut objs, &default_order(), &custom);
    let order = kinds(&objs);
    assert_eq!(
        order[0],
        "CustomResourceDefinition/shirts.stable.example.com"
    );
    assert_eq!(order[1], "Namespace/shop");
    assert_eq!(order[2], "Secret/mysql-pass");
    let pos = |s: &str| order.iter().position(|o| o == s).unwrap();
    assert!(pos("PersistentVolumeClaim/mysql-pv-claim") < pos("Deployment/wordpress-mysql"));
    assert!(pos("Deployment/wordpress") < pos("Service/wordpress"));
    assert!(
        order[order.len() - 3..]
            .iter()
            .all(|o| o.starts_with("Shirt/")),
        "{order:?}"
    );
    // A configured order wins.
    let mut objs2 = objs.clone();
    sort_for_restore(&mut objs2, &["Service".into(), "*".into()], &custom);
    assert!(kinds(&objs2)[0].starts_with("Service/"));
}

#[test]
fn namespace_and_storage_class_mapping_fix_references() {
    let mut objs = load("mysql-statefulset")
        .into_iter()
        .map(|o| in_ns(o, "db"))
        .collect::<Vec<_>>();
    let sts = objs
        .iter_mut()
        .find(|o| o["kind"] == "StatefulSet")
        .unwrap();
    sts["spec"]["volumeClaimTemplates"][0]["spec"]["storageClassName"] = json!("fast");
    objs.push(json!({"apiVersion":"v1","kind":"PersistentVolume","metadata":{"name":"pv-1"},
        "spec":{"storageClassName":"fast","claimRef":{"kind":"PersistentVolumeClaim","namespace":"db","name":"data-mysql-0"}}}));
    objs.push(json!({"apiVersion":"rbac.authorization.k8s.io/v1","kind":"RoleBinding","metadata":{"name":"rb","namespace":"db"},
        "roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"Role","name":"r"},
        "subjects":[{"kind":"ServiceAccount","name":"mysql","namespace":"db"},{"kind":"User","name":"db"}]}));
    objs.push(json!({"apiVersion":"v1","kind":"Namespace","metadata":{"name":"db","labels":{"kubernetes.io/metadata.name":"db"}}}));
    let mut t = Transforms::default();
    t.namespace_map = BTreeMap::from([("db".into(), "db-copy".into())]);
    t.storage_class_map = BTreeMap::from([("fast".into(), "ssd".into())]);
    t.image_map = BTreeMap::from([("mysql:".into(), "registry.local/mysql:".into())]);
    transform::apply(&mut objs, &t, "db-backup").unwrap();
    for o in &objs {
        if let Some(ns) = o["metadata"].get("namespace") {
            assert_eq!(ns, "db-copy");
        }
    }
    let sts = objs.iter().find(|o| o["kind"] == "StatefulSet").unwrap();
    assert_eq!(
        sts["spec"]["volumeClaimTemplates"][0]["spec"]["storageClassName"],
        "ssd"
    );
    assert_eq!(
        sts["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.local/mysql:5.7"
    );
    let pv = objs
        .iter()
        .find(|o| o["kind"] == "PersistentVolume")
        .unwrap();
    assert_eq!(pv["spec"]["claimRef"]["namespace"], "db-copy");
    assert_eq!(pv["spec"]["storageClassName"], "ssd");
    let rb = objs.iter().find(|o| o["kind"] == "RoleBinding").unwrap();
    assert_eq!(
        rb["subjects"],
        json!([{"kind":"ServiceAccount","name":"mysql","namespace":"db-copy"},{"kind":"User","name":"db"}])
    );
    let ns = objs.iter().find(|o| o["kind"] == "Namespace").unwrap();
    assert_eq!(
        ns["metadata"],
        json!({"name":"db-copy","labels":{"kubernetes.io/metadata.name":"db-copy"}})
    );
}

#[test]
fn patches_labels_and_clone_renames() {
    let mut objs = wordpress("blog");
    objs.push(
        json!({"apiVersion":"v1","kind":"PersistentVolume","metadata":{"name":"pv-wp"},"spec":{}}),
    );
    objs.push(json!({"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRole","metadata":{"name":"reader"}}));
    objs.push(json!({"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRoleBinding","metadata":{"name":"reader-wp"},
        "roleRef":{"kind":"ClusterRole","name":"reader","apiGroup":"rbac.authorization.k8s.io"},"subjects":[]}));
    let pvc = objs
        .iter_mut()
        .find(|o| o["metadata"]["name"] == "wp-pv-claim")
        .unwrap();
    pvc["spec"]["volumeName"] = json!("pv-wp");
    let t: Transforms = serde_json::from_value(json!({
        "addLabels": {"restored": "yes"},
        "removeLabels": ["tier"],
        "cloneSuffix": "c1",
        "patches": [
            {"match": {"kinds": ["deployments.apps"], "labelSelector": "app=wordpress"},
             "jsonPatch": [{"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "mysql:8.4"}]},
            {"match": {"kinds": ["Service"], "names": ["wordpress"]}, "mergePatch": {"spec": {"type": "ClusterIP"}}}
        ]
    })).unwrap();
    transform::apply(&mut objs, &t, "blog backup").unwrap();
    let by = |kind: &str, name: &str| {
        objs.iter()
            .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(
        by("Deployment", "wordpress-mysql")["spec"]["template"]["spec"]["containers"][0]["image"],
        "mysql:8.4"
    );
    assert_eq!(
        by("Deployment", "wordpress")["spec"]["template"]["spec"]["containers"][0]["image"],
        "wordpress:6.2.1-apache"
    );
    assert_eq!(by("Service", "wordpress")["spec"]["type"], "ClusterIP");
    assert_eq!(
        by("Service", "wordpress-mysql")["metadata"]["labels"]["restored"],
        "yes"
    );
    assert_eq!(
        by("Service", "wordpress-mysql")["metadata"]["labels"]["cairn.io/cloned-from-namespace"],
        "blog"
    );
    assert_eq!(
        by("Service", "wordpress-mysql")["metadata"]["labels"]["cairn.io/cloned-from-backup"],
        "blog_backup"
    );
    // Cluster-scoped objects get unique names and references follow them.
    assert_eq!(
        by("PersistentVolumeClaim", "wp-pv-claim")["spec"]["volumeName"],
        "pv-wp-c1"
    );
    by("PersistentVolume", "pv-wp-c1");
    assert_eq!(
        by("ClusterRoleBinding", "reader-wp-c1")["roleRef"]["name"],
        "reader-c1"
    );
    // A patch that does not apply names its object.
    let bad: Transforms =
        serde_json::from_value(json!({"patches": [{"match": {"kinds": ["Secret"]},
        "jsonPatch": [{"op": "remove", "path": "/nope"}]}]}))
        .unwrap();
    let err = transform::apply(&mut wordpress("x"), &bad, "b")
        .unwrap_err()
        .to_string();
    assert!(err.contains("Secret x/mysql-pass"), "{err}");
}

#[test]
fn cluster_dependencies_of_wordpress_and_shirts() {
    let mut selected: Vec<Value> = wordpress("blog")
        .into_iter()
        .enumerate()
        .map(|(n, o)| as_fetched(o, n))
        .collect();
    selected.extend(
        load("crd-shirts")
            .into_iter()
            .skip(1)
            .map(|o| in_ns(o, "blog")),
    );
    selected.push(json!({"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":"wp","namespace":"blog"}}));
    let crd = load("crd-shirts").remove(0);
    let pv = |name: &str, sc: &str| json!({"apiVersion":"v1","kind":"PersistentVolume","metadata":{"name":name},"spec":{"storageClassName":sc}});
    let sc = |name: &str| json!({"apiVersion":"storage.k8s.io/v1","kind":"StorageClass","metadata":{"name":name},"provisioner":"x"});
    let cr = |name: &str| json!({"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRole","metadata":{"name":name}});
    let crb = |name: &str, ns: &str, sa: &str, role: &str| {
        json!({"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRoleBinding",
        "metadata":{"name":name},"roleRef":{"kind":"ClusterRole","name":role},"subjects":[{"kind":"ServiceAccount","namespace":ns,"name":sa}]})
    };
    let cluster = ClusterObjects {
        crds: vec![
            crd,
            json!({"apiVersion":"apiextensions.k8s.io/v1","kind":"CustomResourceDefinition","metadata":{"name":"other.x.io"},
            "spec":{"group":"x.io","names":{"kind":"Other"}}}),
        ],
        pvs: vec![
            pv("pvc-1", "standard"),
            pv("pvc-4", "standard"),
            pv("unrelated", "slow"),
        ],
        storage_classes: vec![sc("standard"), sc("slow")],
        cluster_roles: vec![cr("wp-reader"), cr("admin")],
        cluster_role_bindings: vec![
            crb("wp-read", "blog", "wp", "wp-reader"),
            crb("other", "kube-system", "wp", "admin"),
        ],
    };
    let deps = dependencies(&selected, &cluster);
    let mut names: Vec<String> = deps
        .iter()
        .map(|(_, d)| format!("{} {}", d.object.kind, d.object.name))
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "ClusterRole wp-reader",
            "ClusterRoleBinding wp-read",
            "CustomResourceDefinition shirts.stable.example.com",
            "PersistentVolume pvc-1",
            "PersistentVolume pvc-4",
            "StorageClass standard",
        ]
    );
    let why = &deps
        .iter()
        .find(|(_, d)| d.object.kind == "CustomResourceDefinition")
        .unwrap()
        .1
        .reason;
    assert!(
        why.contains("Shirt.stable.example.com blog/example"),
        "{why}"
    );
}

fn doc_of(objs: Vec<Value>) -> AppBackup {
    let mut doc = AppBackup::new("shop", Selection::default(), jiff::Timestamp::now());
    doc.cluster.resource_types.push(ResourceType {
        group: "stable.example.com".into(),
        version: "v1".into(),
        kind: "Shirt".into(),
        plural: "shirts".into(),
        namespaced: true,
        custom: true,
    });
    doc.resources = objs;
    doc
}

#[test]
fn plan_strips_leaves_out_pvs_and_filters_partially() {
    let mut objs: Vec<Value> = wordpress("blog")
        .into_iter()
        .enumerate()
        .map(|(n, o)| as_fetched(o, n))
        .collect();
    objs.push(json!({"apiVersion":"v1","kind":"PersistentVolume","metadata":{"name":"pvc-1","uid":"u"},"spec":{}}));
    objs.extend(load("crd-shirts").into_iter().map(|o| {
        if o["kind"] == "Shirt" {
            in_ns(o, "blog")
        } else {
            o
        }
    }));
    let doc = doc_of(objs);
    let p = plan(&doc, &RestoreOptions::default()).unwrap();
    assert_eq!(p.left_out.len(), 1);
    assert_eq!(p.left_out[0].0.kind, "PersistentVolume");
    assert!(
        p.objects
            .iter()
            .all(|o| o["metadata"].get("uid").is_none() && o.get("status").is_none())
    );
    assert_eq!(p.objects[0]["kind"], "CustomResourceDefinition");
    assert_eq!(p.objects.last().unwrap()["kind"], "Shirt");
    let pvc = p
        .objects
        .iter()
        .find(|o| o["kind"] == "PersistentVolumeClaim")
        .unwrap();
    assert!(pvc["spec"].get("volumeName").is_none());

    let mut opts = RestoreOptions::default();
    opts.only = Some(
        serde_json::from_value(
            json!({"kinds": ["Deployment", "secrets"], "labelSelector": "!app.kubernetes.io/name"}),
        )
        .unwrap(),
    );
    let p = plan(&doc, &opts).unwrap();
    assert_eq!(
        kinds(&p.objects),
        ["Secret/mysql-pass", "Deployment/wordpress-mysql"]
    );
}

#[test]
fn documents_round_trip_and_refuse_newer_versions() {
    let doc = doc_of(wordpress("blog"));
    let back = AppBackup::from_bytes(&doc.to_bytes().unwrap()).unwrap();
    assert_eq!(back, doc);
    let mut v: Value = serde_json::from_slice(&doc.to_bytes().unwrap()).unwrap();
    v["version"] = json!(99);
    let err = AppBackup::from_bytes(&serde_json::to_vec(&v).unwrap())
        .unwrap_err()
        .to_string();
    assert!(err.contains("version 99"), "{err}");
}

#[test]
fn mover_jobs_for_block_and_filesystem() {
    use cairn_kube::mover::{Direction, MoverSpec, VolumeMode, job_spec};
    let b = MoverSpec::new(
        "m1",
        "blog",
        "tmp-pvc",
        VolumeMode::Block,
        Direction::Backup {
            identity: "app:shop:pvc:blog/data".into(),
            tags: vec!["cairn-run=r1".into()],
        },
        "cairn:dev",
        "repo",
    );
    let job = job_spec(&b);
    let c = &job["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        c["command"],
        json!([
            "cairn",
            "backup",
            "--volume",
            "--source-id",
            "app:shop:pvc:blog/data",
            "--tag",
            "cairn-run=r1",
            "/dev/xvda"
        ])
    );
    assert_eq!(c["volumeDevices"][0]["devicePath"], "/dev/xvda");
    assert_eq!(
        job["spec"]["template"]["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"],
        "tmp-pvc"
    );
    let r = MoverSpec::new(
        "m2",
        "blog",
        "data",
        VolumeMode::Filesystem,
        Direction::Restore {
            snapshot: "abcd".into(),
        },
        "cairn:dev",
        "repo",
    );
    let job = job_spec(&r);
    let c = &job["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        c["command"],
        json!([
            "cairn",
            "restore",
            "abcd",
            "--target",
            "/data",
            "--overwrite"
        ])
    );
    assert_eq!(c["volumeMounts"][0]["mountPath"], "/data");
    assert_eq!(c["envFrom"][0]["secretRef"]["name"], "repo");
}
