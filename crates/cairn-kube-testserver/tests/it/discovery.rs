use kube::discovery::{Discovery, Scope, verbs};

use super::server;

#[tokio::test]
async fn discovery_run_finds_builtin_groups_with_capabilities() {
    let server = server().await;
    let discovery = Discovery::new(server.client()).run().await.unwrap();
    let groups: Vec<String> = discovery.groups().map(|g| g.name().to_string()).collect();
    for want in [
        "",
        "apps",
        "batch",
        "rbac.authorization.k8s.io",
        "storage.k8s.io",
        "snapshot.storage.k8s.io",
        "apiextensions.k8s.io",
    ] {
        assert!(
            groups.iter().any(|g| g == want),
            "missing group {want:?} in {groups:?}"
        );
    }
    let apps = discovery.get("apps").unwrap();
    let (deploy, caps) = apps
        .recommended_resources()
        .into_iter()
        .find(|(r, _)| r.kind == "Deployment")
        .unwrap();
    assert_eq!(deploy.plural, "deployments");
    assert_eq!(caps.scope, Scope::Namespaced);
    assert!(caps.supports_operation(verbs::WATCH));
    let subs: Vec<&str> = caps
        .subresources
        .iter()
        .map(|(r, _)| r.plural.as_str())
        .collect();
    assert!(
        subs.contains(&"status") && subs.contains(&"scale"),
        "{subs:?}"
    );

    let core = discovery.get("").unwrap();
    let (_, ns_caps) = core
        .recommended_resources()
        .into_iter()
        .find(|(r, _)| r.kind == "Namespace")
        .unwrap();
    assert_eq!(ns_caps.scope, Scope::Cluster);
}

#[tokio::test]
async fn builder_removes_groups_and_apiserver_version_is_served() {
    let server = cairn_kube_testserver::TestServer::builder()
        .without_group("snapshot.storage.k8s.io")
        .start()
        .await
        .unwrap();
    let client = server.client();
    let discovery = Discovery::new(client.clone()).run().await.unwrap();
    assert!(!discovery.has_group("snapshot.storage.k8s.io"));
    assert!(discovery.has_group("apps"));
    let version = client.apiserver_version().await.unwrap();
    assert_eq!(version.major, "1");
}
