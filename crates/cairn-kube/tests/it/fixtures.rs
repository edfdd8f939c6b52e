//! Real application manifests (tests/fixtures), and what an API server adds to them.

use std::path::Path;

use serde_json::{Value, json};

/// Every document of a fixture directory, in file order.
pub(crate) fn load(dir: &str) -> Vec<Value> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(dir);
    let mut files: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .iter()
        .flat_map(|f| {
            let text = std::fs::read_to_string(f).unwrap();
            serde_saphyr::from_multiple::<Value>(&text).unwrap()
        })
        .filter(|v| !v.is_null())
        .collect()
}

/// The Secret the WordPress tutorial creates with kustomize.
pub(crate) fn mysql_pass() -> Value {
    json!({"apiVersion":"v1","kind":"Secret","metadata":{"name":"mysql-pass"},"type":"Opaque",
        "data":{"password":"c2VjcmV0LXBhc3N3b3Jk"}})
}

/// The WordPress application in `ns`: the tutorial's objects plus its Secret.
pub(crate) fn wordpress(ns: &str) -> Vec<Value> {
    let mut v = load("wordpress");
    v.push(mysql_pass());
    v.into_iter().map(|o| in_ns(o, ns)).collect()
}

/// The object with `metadata.namespace` set.
pub(crate) fn in_ns(mut o: Value, ns: &str) -> Value {
    o["metadata"]["namespace"] = json!(ns);
    o
}

/// The object as an API server returns it: server-assigned metadata and status, a cluster IP
/// for non-headless Services, a node port for LoadBalancer ports, a bound volume for PVCs.
pub(crate) fn as_fetched(mut o: Value, n: usize) -> Value {
    let m = o["metadata"].as_object_mut().unwrap();
    m.insert(
        "uid".into(),
        json!(format!("00000000-0000-0000-0000-{n:012}")),
    );
    m.insert("resourceVersion".into(), json!(format!("{}", 1000 + n)));
    m.insert("creationTimestamp".into(), json!("2026-11-01T10:00:00Z"));
    m.insert("generation".into(), json!(1));
    m.insert(
        "managedFields".into(),
        json!([{"manager":"kubectl","operation":"Update"}]),
    );
    let kind = o["kind"].as_str().unwrap().to_owned();
    match kind.as_str() {
        "Service" => {
            if o["spec"]["clusterIP"] != json!("None") {
                o["spec"]["clusterIP"] = json!("10.96.0.17");
                o["spec"]["clusterIPs"] = json!(["10.96.0.17"]);
            }
            if o["spec"]["type"] == json!("LoadBalancer") {
                for p in o["spec"]["ports"].as_array_mut().unwrap() {
                    p["nodePort"] = json!(31234);
                }
            }
            o["status"] = json!({"loadBalancer":{}});
        }
        "PersistentVolumeClaim" => {
            o["spec"]["volumeName"] = json!(format!("pvc-{n}"));
            o["spec"]["storageClassName"] = json!("standard");
            o["metadata"]["annotations"] = json!({"pv.kubernetes.io/bind-completed":"yes"});
            o["status"] = json!({"phase":"Bound"});
        }
        "Deployment" | "StatefulSet" => {
            o["status"] = json!({"replicas":1,"readyReplicas":1});
        }
        _ => {}
    }
    o
}
