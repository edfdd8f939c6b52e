//! HTTP routing: URL → (resource, namespace, name, subresource) → verb.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, combinators::UnsyncBoxBody};
use hyper::body::Incoming;
use serde_json::Value;

use crate::discovery;
use crate::error::ApiError;
use crate::ops::{self, ListOptions, PatchBody, Sub};
use crate::resources::ResourceType;
use crate::selector::{FieldSelector, LabelSelector};
use crate::server::Shared;

/// The response body type: a full buffer or a watch stream.
pub(crate) type Body = UnsyncBoxBody<Bytes, Infallible>;

pub(crate) fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed_unsync()
}

pub(crate) fn json_response(code: StatusCode, value: &Value) -> Response<Body> {
    let mut res = Response::new(full(value.to_string()));
    *res.status_mut() = code;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    res
}

fn error_response(err: &ApiError) -> Response<Body> {
    json_response(
        StatusCode::from_u16(err.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        &err.to_status(),
    )
}

/// Decoded query parameters.
#[derive(Debug, Default)]
pub(crate) struct Query(Vec<(String, String)>);

impl Query {
    fn parse(query: Option<&str>) -> Self {
        Self(
            query
                .unwrap_or_default()
                .split('&')
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once('=').unwrap_or((p, ""));
                    (decode(k), decode(v))
                })
                .collect(),
        )
    }

    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn all(&self, key: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true" | "1"))
    }

    fn dry_run(&self) -> bool {
        self.get("dryRun").is_some_and(|v| v == "All")
    }

    pub(crate) fn list_options(&self) -> Result<ListOptions, ApiError> {
        Ok(ListOptions {
            labels: LabelSelector::parse(self.get("labelSelector").unwrap_or_default())?,
            fields: FieldSelector::parse(self.get("fieldSelector").unwrap_or_default())?,
            limit: self.get("limit").and_then(|l| l.parse().ok()),
            continue_token: self
                .get("continue")
                .filter(|c| !c.is_empty())
                .map(str::to_string),
        })
    }
}

/// Percent-decoding of a query component (`+` is a space).
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 3 <= bytes.len() => {
                let hex = |c: u8| char::from(c).to_digit(16);
                match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                    (Some(hi), Some(lo)) => {
                        out.push((hi * 16 + lo) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A request for objects of one resource.
#[derive(Debug)]
pub(crate) struct Target {
    pub(crate) rt: ResourceType,
    pub(crate) namespace: Option<String>,
    pub(crate) name: Option<String>,
    pub(crate) sub: Option<String>,
}

/// Serves one request.
pub(crate) async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Response<Body> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query = Query::parse(req.uri().query());
    tracing::debug!(%method, %path, "test server request");
    match route(&shared, req, &path, &query).await {
        Ok(res) => res,
        Err(err) => {
            tracing::debug!(%method, %path, error = %err, "test server error");
            error_response(&err)
        }
    }
}

async fn route(
    shared: &Arc<Shared>,
    req: Request<Incoming>,
    path: &str,
    query: &Query,
) -> Result<Response<Body>, ApiError> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let doc = {
        let state = shared.store.state.lock();
        match segments.as_slice() {
            ["version"] => Some(discovery::version()),
            ["api"] => Some(discovery::core_versions()),
            ["apis"] => Some(discovery::group_list(&state.resources)),
            ["api", v] => Some(
                discovery::resource_list(&state.resources, "", v)
                    .ok_or_else(|| ApiError::no_route(path))?,
            ),
            ["apis", g] => Some(
                discovery::group(&state.resources, g).ok_or_else(|| ApiError::no_route(path))?,
            ),
            ["apis", g, v] => Some(
                discovery::resource_list(&state.resources, g, v)
                    .ok_or_else(|| ApiError::no_route(path))?,
            ),
            _ => None,
        }
    };
    if let Some(doc) = doc {
        if req.method() != Method::GET {
            return Err(ApiError::method_not_allowed(format!(
                "{} is not allowed on {path}",
                req.method()
            )));
        }
        return Ok(json_response(StatusCode::OK, &doc));
    }
    let target = match segments.as_slice() {
        ["api", v, rest @ ..] => resolve(shared, "", v, rest),
        ["apis", g, v, rest @ ..] => resolve(shared, g, v, rest),
        _ => None,
    }
    .ok_or_else(|| ApiError::no_route(path))?;
    dispatch(shared, req, target, query).await
}

/// Splits the rest of a resource URL into namespace, plural, name and subresource.
fn resolve(shared: &Shared, group: &str, version: &str, rest: &[&str]) -> Option<Target> {
    let state = shared.store.state.lock();
    let namespaced_path = rest.len() >= 3
        && rest[0] == "namespaces"
        && state
            .resource(group, version, rest[2])
            .is_some_and(|r| r.namespaced);
    let (namespace, rest) = if namespaced_path {
        (Some(rest[1].to_string()), &rest[2..])
    } else {
        (None, rest)
    };
    let rt = state.resource(group, version, rest.first()?)?.clone();
    if rest.len() > 3 || (rt.namespaced && namespace.is_none() && rest.len() > 1) {
        return None;
    }
    Some(Target {
        rt,
        namespace,
        name: rest.get(1).map(|s| (*s).to_string()),
        sub: rest.get(2).map(|s| (*s).to_string()),
    })
}

async fn read_json(req: Request<Incoming>) -> Result<(Option<String>, Value), ApiError> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or_default().trim().to_string());
    let bytes = req
        .into_body()
        .collect()
        .await
        .map_err(|e| ApiError::bad_request(format!("reading the request body: {e}")))?
        .to_bytes();
    if bytes.is_empty() {
        return Ok((content_type, Value::Null));
    }
    let value = serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::bad_request(format!(
            "the request body is not JSON (this test server does not read YAML or protobuf): {e}"
        ))
    })?;
    Ok((content_type, value))
}

fn patch_body(
    content_type: Option<&str>,
    value: Value,
    query: &Query,
) -> Result<PatchBody, ApiError> {
    match content_type.unwrap_or_default() {
        "application/merge-patch+json" | "application/strategic-merge-patch+json" => {
            Ok(PatchBody::Merge(value))
        }
        "application/json-patch+json" => Ok(PatchBody::Json(value)),
        "application/apply-patch+yaml" | "application/apply-patch+cbor" => {
            if query.get("fieldManager").is_none_or(str::is_empty) {
                return Err(ApiError::bad_request(
                    "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
                ));
            }
            Ok(PatchBody::Apply(value))
        }
        other => Err(ApiError::unsupported_media(other)),
    }
}

#[allow(clippy::too_many_lines, reason = "one match over the verb table")]
async fn dispatch(
    shared: &Arc<Shared>,
    req: Request<Incoming>,
    target: Target,
    query: &Query,
) -> Result<Response<Body>, ApiError> {
    let Target {
        rt,
        namespace,
        name,
        sub,
    } = target;
    let ns = namespace.as_deref().unwrap_or_default();
    let store = &shared.store;
    let dry_run = query.dry_run();
    let method = req.method().clone();
    let ok = |v: Value| Ok(json_response(StatusCode::OK, &v));
    let status_sub = |rt: &ResourceType| {
        if rt.status {
            Ok(Sub::Status)
        } else {
            Err(ApiError::no_route(&format!("{}/status", rt.qualified())))
        }
    };
    match (method, name, sub.as_deref()) {
        (Method::GET, None, None) if query.flag("watch") => {
            crate::watch::watch(shared, &rt, namespace.as_deref(), query)
        }
        (Method::GET, None, None) => {
            let opts = query.list_options()?;
            ok(ops::list(
                &store.state.lock(),
                &rt,
                namespace.as_deref(),
                &opts,
            )?)
        }
        (Method::GET, Some(name), None) => ok(ops::get(&store.state.lock(), &rt, ns, &name)?),
        (Method::GET, Some(name), Some("status")) => {
            status_sub(&rt)?;
            ok(ops::get(&store.state.lock(), &rt, ns, &name)?)
        }
        (Method::GET, Some(name), Some("scale")) => {
            ok(ops::get_scale(&store.state.lock(), &rt, ns, &name)?)
        }
        (Method::GET | Method::POST, Some(name), Some("exec" | "attach"))
            if rt.group.is_empty() && rt.plural == "pods" =>
        {
            crate::exec::exec(shared, req, ns, &name, query)
        }
        (Method::POST, None, None) => {
            let (_, body) = read_json(req).await?;
            let created =
                store.write(|s| ops::create(s, &rt, namespace.as_deref(), body, dry_run))?;
            Ok(json_response(StatusCode::CREATED, &created))
        }
        (Method::PUT, Some(name), None | Some("status")) => {
            let sub = if sub.is_some() {
                status_sub(&rt)?
            } else {
                Sub::Main
            };
            let (_, body) = read_json(req).await?;
            ok(store.write(|s| ops::replace(s, &rt, ns, &name, body, sub, dry_run))?)
        }
        (Method::PUT, Some(name), Some("scale")) => {
            let (_, body) = read_json(req).await?;
            ok(store.write(|s| ops::update_scale(s, &rt, ns, &name, Ok(body), dry_run))?)
        }
        (Method::PATCH, Some(name), None | Some("status")) => {
            let sub = if sub.is_some() {
                status_sub(&rt)?
            } else {
                Sub::Main
            };
            let (content_type, body) = read_json(req).await?;
            let patch = patch_body(content_type.as_deref(), body, query)?;
            ok(store.write(|s| ops::patch(s, &rt, ns, &name, &patch, sub, dry_run))?)
        }
        (Method::PATCH, Some(name), Some("scale")) => {
            let (content_type, body) = read_json(req).await?;
            let patch = patch_body(content_type.as_deref(), body, query)?;
            ok(store.write(|s| ops::update_scale(s, &rt, ns, &name, Err(&patch), dry_run))?)
        }
        (Method::DELETE, Some(name), None) => {
            let (_, mut options) = read_json(req).await?;
            if let Some(policy) = query.get("propagationPolicy") {
                options["propagationPolicy"] = Value::String(policy.to_string());
            }
            ok(store.write(|s| ops::delete(s, &rt, ns, &name, &options, dry_run))?)
        }
        (Method::DELETE, None, None) => {
            let opts = query.list_options()?;
            let (_, options) = read_json(req).await?;
            ok(store.write(|s| {
                ops::delete_collection(s, &rt, namespace.as_deref(), &opts, &options, dry_run)
            })?)
        }
        (method, name, sub) => Err(ApiError::method_not_allowed(format!(
            "{method} is not supported on {}{}{}",
            rt.qualified(),
            name.map(|n| format!("/{n}")).unwrap_or_default(),
            sub.map(|s| format!("/{s}")).unwrap_or_default(),
        ))),
    }
}
