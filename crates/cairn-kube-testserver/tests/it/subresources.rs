use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

use super::server;

fn deployment(name: &str) -> Deployment {
    serde_json::from_value(json!({
        "metadata": { "name": name },
        "spec": {
            "replicas": 2,
            "selector": { "matchLabels": { "app": name } },
            "template": {
                "metadata": { "labels": { "app": name } },
                "spec": { "containers": [{ "name": "c", "image": "busybox" }] },
            },
        },
        "status": { "replicas": 99 },
    }))
    .unwrap()
}

#[tokio::test]
async fn status_subresource_isolates_status_from_spec() {
    let server = server().await;
    let api: Api<Deployment> = Api::namespaced(server.client(), "default");
    let created = api
        .create(&PostParams::default(), &deployment("web"))
        .await
        .unwrap();
    assert!(created.status.is_none(), "create drops status");

    // The main endpoint ignores status …
    let ignored = api
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"replicas": 7}})),
        )
        .await
        .unwrap();
    assert!(ignored.status.is_none());
    // … the status endpoint changes only status.
    let st = api
        .patch_status(
            "web",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"spec": {"replicas": 9}, "status": {"replicas": 2, "readyReplicas": 2}}),
            ),
        )
        .await
        .unwrap();
    assert_eq!(st.status.as_ref().unwrap().ready_replicas, Some(2));
    assert_eq!(st.spec.replicas, Some(2));
    assert_eq!(st.metadata.generation, Some(1));
    let got = api.get_status("web").await.unwrap();
    assert_eq!(got.status.unwrap().replicas, Some(2));
}

#[tokio::test]
async fn scale_subresource_maps_to_spec_replicas() {
    let server = server().await;
    let api: Api<Deployment> = Api::namespaced(server.client(), "default");
    api.create(&PostParams::default(), &deployment("web"))
        .await
        .unwrap();
    let scale = api.get_scale("web").await.unwrap();
    assert_eq!(scale.spec.as_ref().unwrap().replicas, Some(2));
    assert_eq!(
        scale.status.as_ref().unwrap().selector.as_deref(),
        Some("app=web")
    );

    api.patch_scale(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 0}})),
    )
    .await
    .unwrap();
    let d = api.get("web").await.unwrap();
    assert_eq!(d.spec.replicas, Some(0));
    assert_eq!(d.metadata.generation, Some(2));

    // replace_scale with a stale resourceVersion conflicts.
    let mut stale = scale.clone();
    stale.spec.as_mut().unwrap().replicas = Some(4);
    let err = api
        .replace_scale("web", &PostParams::default(), &stale)
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 409),
        "{err:?}"
    );

    let sts: Api<StatefulSet> = Api::namespaced(server.client(), "default");
    let err = sts.get_scale("none").await.unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 404),
        "{err:?}"
    );
}
