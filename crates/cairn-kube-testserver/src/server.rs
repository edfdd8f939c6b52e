//! The HTTP/1.1 listener: one task accepting on 127.0.0.1, one task per connection, all
//! stopped by one cancellation token.

use std::convert::Infallible;
use std::sync::Arc;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::exec::ExecHandler;
use crate::store::Store;

/// What every request handler shares.
pub(crate) struct Shared {
    pub(crate) store: Store,
    pub(crate) exec: parking_lot::RwLock<Option<Arc<dyn ExecHandler>>>,
    pub(crate) shutdown: CancellationToken,
}

/// Accepts connections until the shutdown token fires.
pub(crate) async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let accepted = tokio::select! {
            () = shared.shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "test server accept failed");
                continue;
            }
        };
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            let shutdown = shared.shutdown.clone();
            let service = service_fn(move |req| {
                let shared = Arc::clone(&shared);
                async move { Ok::<_, Infallible>(crate::router::handle(shared, req).await) }
            });
            let conn = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            tokio::select! {
                result = conn => {
                    if let Err(e) = result {
                        tracing::debug!(error = %e, "test server connection ended");
                    }
                }
                () = shutdown.cancelled() => {}
            }
        });
    }
}
