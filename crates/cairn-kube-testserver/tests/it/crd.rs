use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::discovery::{Discovery, Scope};
use serde_json::json;

use super::server;

fn crd() -> CustomResourceDefinition {
    serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": { "name": "databases.example.com" },
        "spec": {
            "group": "example.com",
            "names": { "plural": "databases", "singular": "database", "kind": "Database", "shortNames": ["db"] },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": "v1", "served": true, "storage": true,
                    "schema": { "openAPIV3Schema": { "type": "object", "x-kubernetes-preserve-unknown-fields": true } },
                    "subresources": {
                        "status": {},
                        "scale": { "specReplicasPath": ".spec.members", "statusReplicasPath": ".status.members" },
                    },
                },
                {
                    "name": "v1beta1", "served": true, "storage": false,
                    "schema": { "openAPIV3Schema": { "type": "object", "x-kubernetes-preserve-unknown-fields": true } },
                },
            ],
        },
    }))
    .unwrap()
}

#[tokio::test]
async fn crd_adds_resources_that_serve_custom_objects_and_go_away_on_delete() {
    let server = server().await;
    let client = server.client();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let created = crds.create(&PostParams::default(), &crd()).await.unwrap();
    let status = created.status.unwrap();
    let conditions: Vec<(String, String)> = status
        .conditions
        .unwrap()
        .into_iter()
        .map(|c| (c.type_, c.status))
        .collect();
    assert!(conditions.contains(&("Established".into(), "True".into())));
    assert!(conditions.contains(&("NamesAccepted".into(), "True".into())));
    assert_eq!(status.accepted_names.unwrap().kind, "Database");

    let discovery = Discovery::new(client.clone()).run().await.unwrap();
    let group = discovery
        .get("example.com")
        .expect("CRD group in discovery");
    assert_eq!(group.preferred_version_or_latest(), "v1");
    let (ar, caps) = group.recommended_kind("Database").unwrap();
    assert_eq!(caps.scope, Scope::Namespaced);
    assert_eq!(caps.subresources.len(), 2);

    let dbs: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &ar);
    let mut obj = DynamicObject::new("orders", &ar).within("default");
    obj.data = json!({ "spec": { "members": 3 }, "status": { "members": 3 } });
    let made = dbs.create(&PostParams::default(), &obj).await.unwrap();
    assert_eq!(made.metadata.generation, Some(1));
    assert!(
        made.data.get("status").is_none(),
        "status subresource: create drops status"
    );
    let listed = dbs.list(&ListParams::default()).await.unwrap();
    assert_eq!(listed.items.len(), 1);
    assert_eq!(listed.items[0].types.as_ref().unwrap().kind, "Database");

    // The scale subresource follows the CRD's paths.
    let scale = dbs.get_scale("orders").await.unwrap();
    assert_eq!(scale.spec.unwrap().replicas, Some(3));
    dbs.patch_scale(
        "orders",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 5}})),
    )
    .await
    .unwrap();
    assert_eq!(dbs.get("orders").await.unwrap().data["spec"]["members"], 5);

    // The other served version sees the same object.
    let beta = kube::api::ApiResource {
        version: "v1beta1".into(),
        api_version: "example.com/v1beta1".into(),
        ..ar.clone()
    };
    let beta_api: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &beta);
    let via_beta = beta_api.get("orders").await.unwrap();
    assert_eq!(via_beta.types.unwrap().api_version, "example.com/v1beta1");

    crds.delete("databases.example.com", &DeleteParams::default())
        .await
        .unwrap();
    let discovery = Discovery::new(client.clone()).run().await.unwrap();
    assert!(!discovery.has_group("example.com"));
    assert!(dbs.list(&ListParams::default()).await.is_err());
}

#[tokio::test]
async fn crd_with_a_wrong_name_is_invalid() {
    let server = server().await;
    let crds: Api<CustomResourceDefinition> = Api::all(server.client());
    let mut bad = crd();
    bad.metadata.name = Some("wrong.example.com".into());
    let err = crds.create(&PostParams::default(), &bad).await.unwrap_err();
    let kube::Error::Api(status) = err else {
        panic!("{err:?}")
    };
    assert_eq!((status.code, status.reason.as_str()), (422, "Invalid"));
}
