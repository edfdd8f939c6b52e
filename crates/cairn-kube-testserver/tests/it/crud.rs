use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

use super::server;

fn cm(name: &str, labels: serde_json::Value) -> ConfigMap {
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": { "name": name, "labels": labels },
        "data": { "k": name },
    }))
    .unwrap()
}

fn err_code(e: &kube::Error) -> (u16, String) {
    match e {
        kube::Error::Api(s) => (s.code, s.reason.clone()),
        other => panic!("not an API error: {other:?}"),
    }
}

#[tokio::test]
async fn configmap_crud_with_metadata_and_errors() {
    let server = server().await;
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let created = api
        .create(&PostParams::default(), &cm("a", json!({})))
        .await
        .unwrap();
    let meta = &created.metadata;
    assert_eq!(meta.namespace.as_deref(), Some("default"));
    assert_eq!(meta.uid.as_ref().unwrap().len(), 36);
    assert!(meta.creation_timestamp.is_some());
    let rv1: u64 = meta.resource_version.as_ref().unwrap().parse().unwrap();

    let again = api
        .create(&PostParams::default(), &cm("a", json!({})))
        .await
        .unwrap_err();
    assert_eq!(err_code(&again), (409, "AlreadyExists".into()));

    let got = api.get("a").await.unwrap();
    assert_eq!(got.data.unwrap()["k"], "a");

    let missing = api.get("nope").await.unwrap_err();
    assert_eq!(err_code(&missing), (404, "NotFound".into()));
    let kube::Error::Api(status) = missing else {
        unreachable!()
    };
    assert_eq!(status.message, "configmaps \"nope\" not found");

    // Update with the current resourceVersion works and bumps it; the stale one conflicts.
    let mut changed = created.clone();
    changed.data = Some([("k".to_string(), "b".to_string())].into());
    let updated = api
        .replace("a", &PostParams::default(), &changed)
        .await
        .unwrap();
    let rv2: u64 = updated
        .metadata
        .resource_version
        .as_ref()
        .unwrap()
        .parse()
        .unwrap();
    assert!(rv2 > rv1);
    assert_eq!(updated.metadata.uid, created.metadata.uid);
    let stale = api
        .replace("a", &PostParams::default(), &changed)
        .await
        .unwrap_err();
    assert_eq!(err_code(&stale), (409, "Conflict".into()));

    // Merge patch and JSON patch.
    let patched = api
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"x": "1"}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.data.as_ref().unwrap()["x"], "1");
    assert_eq!(patched.data.as_ref().unwrap()["k"], "b");
    let ops: json_patch::Patch =
        serde_json::from_value(json!([{"op": "remove", "path": "/data/x"}])).unwrap();
    let patched = api
        .patch("a", &PatchParams::default(), &Patch::<()>::Json(ops))
        .await
        .unwrap();
    assert!(!patched.data.as_ref().unwrap().contains_key("x"));

    api.delete("a", &DeleteParams::default()).await.unwrap();
    assert_eq!(err_code(&api.get("a").await.unwrap_err()).0, 404);
    assert_eq!(
        err_code(&api.delete("a", &DeleteParams::default()).await.unwrap_err()).0,
        404
    );
}

#[tokio::test]
async fn create_in_missing_namespace_is_not_found_and_generate_name_works() {
    let server = server().await;
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "ghost");
    let err = api
        .create(&PostParams::default(), &cm("a", json!({})))
        .await
        .unwrap_err();
    let kube::Error::Api(status) = err else {
        panic!("{err:?}")
    };
    assert_eq!(
        (status.code, status.message.as_str()),
        (404, "namespaces \"ghost\" not found")
    );

    let ns: Api<Namespace> = Api::all(server.client());
    let made = ns
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "ghost"}})).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(made.status.unwrap().phase.as_deref(), Some("Active"));
    let mut generated = cm("", json!({}));
    generated.metadata.name = None;
    generated.metadata.generate_name = Some("gen-".into());
    let a = api
        .create(&PostParams::default(), &generated)
        .await
        .unwrap();
    let b = api
        .create(&PostParams::default(), &generated)
        .await
        .unwrap();
    let (a, b) = (a.metadata.name.unwrap(), b.metadata.name.unwrap());
    assert!(a.starts_with("gen-") && a.len() == 9, "{a}");
    assert_ne!(a, b);
}

#[tokio::test]
async fn label_and_field_selectors() {
    let server = server().await;
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    for (name, labels) in [
        ("web", json!({"app": "web", "tier": "front"})),
        ("db", json!({"app": "db", "tier": "back"})),
        ("cache", json!({"app": "cache"})),
    ] {
        api.create(&PostParams::default(), &cm(name, labels))
            .await
            .unwrap();
    }
    let names = |list: kube::core::ObjectList<ConfigMap>| {
        list.items
            .into_iter()
            .map(|c| c.metadata.name.unwrap())
            .collect::<Vec<_>>()
    };
    let cases = [
        ("app=web", vec!["web"]),
        ("app==db", vec!["db"]),
        ("app!=web", vec!["cache", "db"]),
        ("app in (web,db)", vec!["db", "web"]),
        ("app notin (web, db)", vec!["cache"]),
        ("tier", vec!["db", "web"]),
        ("!tier", vec!["cache"]),
        ("tier,app=db", vec!["db"]),
        ("app=nothing", vec![]),
    ];
    for (selector, want) in cases {
        let got = names(
            api.list(&ListParams::default().labels(selector))
                .await
                .unwrap(),
        );
        assert_eq!(got, want, "selector {selector}");
    }
    let got = names(
        api.list(&ListParams::default().fields("metadata.name=cache"))
            .await
            .unwrap(),
    );
    assert_eq!(got, vec!["cache"]);
    let got = names(
        api.list(&ListParams::default().fields("metadata.name!=cache"))
            .await
            .unwrap(),
    );
    assert_eq!(got, vec!["db", "web"]);
    let got = names(
        api.list(&ListParams::default().fields("metadata.namespace=kube-system"))
            .await
            .unwrap(),
    );
    assert!(got.is_empty());

    // deletecollection with a selector removes exactly the matches.
    api.delete_collection(
        &DeleteParams::default(),
        &ListParams::default().labels("tier"),
    )
    .await
    .unwrap();
    assert_eq!(
        names(api.list(&ListParams::default()).await.unwrap()),
        vec!["cache"]
    );
}

#[tokio::test]
async fn pagination_and_all_namespaces_lists() {
    let server = server().await;
    let client = server.client();
    for ns in ["default", "kube-system"] {
        let api: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
        for i in 0..5 {
            api.create(&PostParams::default(), &cm(&format!("cm-{i}"), json!({})))
                .await
                .unwrap();
        }
    }
    let all: Api<ConfigMap> = Api::all(client);
    let mut seen = Vec::new();
    let mut params = ListParams::default().limit(3);
    let mut pages = 0;
    loop {
        let page = all.list(&params).await.unwrap();
        pages += 1;
        assert!(page.items.len() <= 3);
        seen.extend(page.items.into_iter().map(|c| {
            format!(
                "{}/{}",
                c.metadata.namespace.unwrap(),
                c.metadata.name.unwrap()
            )
        }));
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => break,
        }
    }
    assert_eq!(pages, 4);
    assert_eq!(seen.len(), 10);
    assert_eq!(seen[0], "default/cm-0");
    assert_eq!(seen[9], "kube-system/cm-4");
}

#[tokio::test]
async fn generation_follows_spec_and_apply_creates() {
    let server = server().await;
    let api: Api<Deployment> = Api::namespaced(server.client(), "default");
    let deploy = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": { "name": "web" },
        "spec": {
            "replicas": 2,
            "selector": { "matchLabels": { "app": "web" } },
            "template": {
                "metadata": { "labels": { "app": "web" } },
                "spec": { "containers": [{ "name": "web", "image": "nginx:1" }] },
            },
        },
    });
    let params = PatchParams::apply("cairn-test");
    let created = api
        .patch("web", &params, &Patch::Apply(&deploy))
        .await
        .unwrap();
    assert_eq!(created.metadata.generation, Some(1));
    let relabel = api
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"x": "y"}}})),
        )
        .await
        .unwrap();
    assert_eq!(
        relabel.metadata.generation,
        Some(1),
        "metadata changes keep the generation"
    );
    let scaled = api
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 3}})),
        )
        .await
        .unwrap();
    assert_eq!(scaled.metadata.generation, Some(2));
    // A no-op patch keeps the resourceVersion.
    let same = api
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 3}})),
        )
        .await
        .unwrap();
    assert_eq!(
        same.metadata.resource_version,
        scaled.metadata.resource_version
    );
    // Strategic merge patches are accepted (as merge patches).
    let sm = api
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"paused": true}})),
        )
        .await
        .unwrap();
    assert_eq!(sm.spec.paused, Some(true));
}

#[tokio::test]
async fn finalizers_delay_deletion_and_owners_cascade() {
    let server = server().await;
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let mut held = cm("held", json!({}));
    held.metadata.finalizers = Some(vec!["cairn.dev/test".into()]);
    let owner = api.create(&PostParams::default(), &held).await.unwrap();
    api.delete("held", &DeleteParams::default()).await.unwrap();
    let marked = api.get("held").await.unwrap();
    assert!(marked.metadata.deletion_timestamp.is_some());

    let mut child = cm("child", json!({}));
    child.metadata.owner_references = Some(vec![serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ConfigMap", "name": "held", "uid": owner.metadata.uid.unwrap(),
    })).unwrap()]);
    api.create(&PostParams::default(), &child).await.unwrap();

    api.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    assert_eq!(err_code(&api.get("held").await.unwrap_err()).0, 404);
    assert_eq!(
        err_code(&api.get("child").await.unwrap_err()).0,
        404,
        "owned object is collected"
    );
}

#[tokio::test]
async fn deleting_a_namespace_deletes_its_objects() {
    let server = server().await;
    let ns: Api<Namespace> = Api::all(server.client());
    ns.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "app"}})).unwrap(),
    )
    .await
    .unwrap();
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "app");
    api.create(&PostParams::default(), &cm("a", json!({})))
        .await
        .unwrap();
    ns.delete("app", &DeleteParams::default()).await.unwrap();
    assert!(server.get("", "configmaps", Some("app"), "a").is_none());
    assert!(server.get("", "namespaces", None, "app").is_none());
}

#[tokio::test]
async fn dry_run_changes_nothing() {
    let server = server().await;
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let rv = server.resource_version();
    let made = api
        .create(
            &PostParams {
                dry_run: true,
                ..PostParams::default()
            },
            &cm("dry", json!({})),
        )
        .await
        .unwrap();
    assert_eq!(made.metadata.name.as_deref(), Some("dry"));
    assert!(
        server
            .get("", "configmaps", Some("default"), "dry")
            .is_none()
    );
    assert_eq!(server.resource_version(), rv);
}
