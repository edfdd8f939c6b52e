//! Watch: a stream of newline-delimited `WatchEvent`s.
//!
//! Without a `resourceVersion` (or with `0`) the stream starts with an ADDED event per
//! existing object; with one, it replays the history after that version (410 Expired when
//! the history no longer reaches back). Events are filtered by namespace and by the
//! selectors matching the object *after* the change (a real server also turns "no longer
//! matches" into DELETED; this one simply stops sending). The stream ends after
//! `timeoutSeconds`, when the client lags too far behind, or when the server stops.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Response, StatusCode, header};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use serde_json::json;
use tokio::sync::{broadcast, mpsc};

use crate::error::ApiError;
use crate::ops::{ListOptions, stamped};
use crate::resources::ResourceType;
use crate::router::{Body, Query};
use crate::server::Shared;
use crate::store::{EventKind, WatchEvent};

/// The longest watch when the client names no timeout (a real server picks 30–60 min).
const DEFAULT_TIMEOUT: Duration = Duration::from_mins(30);

struct Filter {
    rt: ResourceType,
    namespace: Option<String>,
    opts: ListOptions,
}

impl Filter {
    fn line(&self, event: &WatchEvent) -> Option<Bytes> {
        if event.group != self.rt.group || event.plural != self.rt.plural {
            return None;
        }
        if self
            .namespace
            .as_ref()
            .is_some_and(|n| *n != event.namespace)
        {
            return None;
        }
        if !self.opts.labels.matches(&event.object) || !self.opts.fields.matches(&event.object) {
            return None;
        }
        let mut line = json!({
            "type": event.kind.as_str(),
            "object": stamped(&self.rt, event.object.clone()),
        })
        .to_string();
        line.push('\n');
        Some(Bytes::from(line))
    }
}

/// Starts a watch.
///
/// # Errors
/// 400 on bad selectors, 410 when the resourceVersion is too old.
pub(crate) fn watch(
    shared: &Arc<Shared>,
    rt: &ResourceType,
    namespace: Option<&str>,
    query: &Query,
) -> Result<Response<Body>, ApiError> {
    let filter = Filter {
        rt: rt.clone(),
        namespace: namespace.map(str::to_string),
        opts: query.list_options()?,
    };
    let timeout = query
        .get("timeoutSeconds")
        .and_then(|t| t.parse().ok())
        .map_or(DEFAULT_TIMEOUT, Duration::from_secs);
    let bookmarks = matches!(query.get("allowWatchBookmarks"), Some("true" | "1"));
    let (initial, mut receiver, start_rv) = {
        let state = shared.store.state.lock();
        if let Some(since) = crate::ops::since(query.get("resourceVersion")) {
            let (replay, rx) = state.subscribe(rt, since)?;
            (replay, rx, since)
        } else {
            let current = crate::ops::current_rv(&state);
            let existing: Vec<Arc<WatchEvent>> = state
                .bucket(rt)
                .into_iter()
                .flat_map(|b| b.iter())
                .map(|((ns, _), object)| {
                    Arc::new(WatchEvent {
                        group: rt.group.clone(),
                        plural: rt.plural.clone(),
                        namespace: ns.clone(),
                        kind: EventKind::Added,
                        object: object.clone(),
                        rv: current,
                    })
                })
                .collect();
            let (_, rx) = state.subscribe(rt, current)?;
            (existing, rx, current)
        }
    };
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    let shutdown = shared.shutdown.clone();
    let kind = rt.kind.clone();
    let api_version = rt.api_version();
    tokio::spawn(async move {
        let mut last_rv = start_rv;
        for event in initial {
            last_rv = last_rv.max(event.rv);
            if let Some(line) = filter.line(&event)
                && tx.send(line).await.is_err()
            {
                return;
            }
        }
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = &mut deadline => break,
                () = tx.closed() => return,
                next = receiver.recv() => match next {
                    Ok(event) => {
                        last_rv = last_rv.max(event.rv);
                        if let Some(line) = filter.line(&event)
                            && tx.send(line).await.is_err()
                        {
                            return;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_) | broadcast::error::RecvError::Closed) => return,
                },
            }
        }
        if bookmarks {
            let mut line = json!({
                "type": "BOOKMARK",
                "object": {
                    "kind": kind,
                    "apiVersion": api_version,
                    "metadata": { "resourceVersion": last_rv.to_string() },
                },
            })
            .to_string();
            line.push('\n');
            let _ = tx.send(Bytes::from(line)).await;
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|line| (Ok::<_, std::convert::Infallible>(Frame::data(line)), rx))
    });
    let mut res = Response::new(StreamBody::new(stream).boxed_unsync());
    *res.status_mut() = StatusCode::OK;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    Ok(res)
}
