use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::runtime::watcher;
use serde_json::json;

use super::server;

fn cm(name: &str) -> ConfigMap {
    serde_json::from_value(json!({ "metadata": { "name": name }, "data": { "v": "1" } })).unwrap()
}

async fn next<S: futures::Stream + Unpin>(stream: &mut S) -> S::Item {
    tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("a watch event within 10 s")
        .expect("the stream goes on")
}

#[tokio::test]
async fn runtime_watcher_sees_initial_list_then_changes() {
    let server = server().await;
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    api.create(&PostParams::default(), &cm("pre"))
        .await
        .unwrap();

    let mut stream = watcher(api.clone(), watcher::Config::default()).boxed();
    let mut initial = Vec::new();
    loop {
        match next(&mut stream).await.unwrap() {
            watcher::Event::Init => {}
            watcher::Event::InitApply(o) => initial.push(o.metadata.name.unwrap()),
            watcher::Event::InitDone => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(initial, vec!["pre"]);

    api.create(&PostParams::default(), &cm("a")).await.unwrap();
    let watcher::Event::Apply(added) = next(&mut stream).await.unwrap() else {
        panic!("expected apply")
    };
    assert_eq!(added.metadata.name.as_deref(), Some("a"));

    api.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"v": "2"}})),
    )
    .await
    .unwrap();
    let watcher::Event::Apply(modified) = next(&mut stream).await.unwrap() else {
        panic!("expected apply")
    };
    assert_eq!(modified.data.unwrap()["v"], "2");

    api.delete("a", &DeleteParams::default()).await.unwrap();
    let watcher::Event::Delete(deleted) = next(&mut stream).await.unwrap() else {
        panic!("expected delete")
    };
    assert_eq!(deleted.metadata.name.as_deref(), Some("a"));
}

#[tokio::test]
async fn raw_watch_resumes_from_a_resource_version_and_filters_by_label() {
    let server = server().await;
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let rv = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let mut labelled = cm("b");
    labelled.metadata.labels = Some([("pick".to_string(), "yes".to_string())].into());
    api.create(&PostParams::default(), &cm("a")).await.unwrap();
    api.create(&PostParams::default(), &labelled).await.unwrap();

    let mut all = api
        .watch(&WatchParams::default(), &rv)
        .await
        .unwrap()
        .boxed();
    let mut names = Vec::new();
    for _ in 0..2 {
        match next(&mut all).await.unwrap() {
            WatchEvent::Added(o) => names.push(o.metadata.name.unwrap()),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(names, vec!["a", "b"]);

    let mut picked = api
        .watch(&WatchParams::default().labels("pick=yes"), &rv)
        .await
        .unwrap()
        .boxed();
    let WatchEvent::Added(o) = next(&mut picked).await.unwrap() else {
        panic!()
    };
    assert_eq!(o.metadata.name.as_deref(), Some("b"));
}

#[tokio::test]
async fn watch_ends_at_its_timeout() {
    let server = server().await;
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let stream = api
        .watch(&WatchParams::default().timeout(1), "0")
        .await
        .unwrap();
    let events: Vec<_> =
        tokio::time::timeout(Duration::from_secs(10), stream.try_collect::<Vec<_>>())
            .await
            .expect("the watch ends by itself")
            .unwrap();
    // Nothing changed: at most the closing bookmark (kube-rs asks for bookmarks).
    assert!(
        events.iter().all(|e| matches!(e, WatchEvent::Bookmark(_))),
        "{events:?}"
    );
}
