//! A fault-injecting HTTP/1.1 proxy in front of a real object-store server: answers `503 Slow
//! Down` to the next N requests, or plays dead (every connection dropped) once a given `PUT`
//! went through, until revived.
//!
//! It forwards each request unchanged (the `Host` header too, so signatures made for the
//! proxy's address still verify at the server), one upstream connection per request, and
//! answers with `Connection: close`. It runs on its own thread and runtime, so tests that drive
//! the `cairn` binary as a child process can use it from plain `#[test]` functions.
//!
//! Request bodies must carry `Content-Length` (S3, Azure and GCS clients send it for the
//! requests Cairn makes); chunked request bodies are refused with `411`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Counters and switches shared with the proxy thread.
#[derive(Debug, Default)]
struct State {
    /// Requests answered with 503.
    refused: AtomicU64,
    /// Connections dropped while dead.
    dropped: AtomicU64,
    /// 503s still to give.
    fail_next: AtomicU64,
    /// Play dead once a `PUT` whose request line contains this was forwarded.
    die_on: parking_lot::Mutex<Option<String>>,
    dead: AtomicBool,
}

/// A running proxy; stops when dropped.
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    state: Arc<State>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl FaultProxy {
    /// Starts a proxy on `127.0.0.1` (a free port) forwarding to `upstream`.
    ///
    /// # Errors
    /// When no port can be bound.
    pub fn start(upstream: SocketAddr) -> std::io::Result<Self> {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;
        let state = Arc::new(State::default());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let st = state.clone();
        std::thread::Builder::new()
            .name("fault-proxy".into())
            .spawn(move || {
                let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    return;
                };
                rt.block_on(async move {
                    let Ok(listener) = TcpListener::from_std(std_listener) else {
                        return;
                    };
                    let serve = async {
                        while let Ok((conn, _)) = listener.accept().await {
                            let st = st.clone();
                            tokio::spawn(async move {
                                let _ = handle(conn, upstream, &st).await;
                            });
                        }
                    };
                    tokio::select! {
                        () = serve => {}
                        _ = stopped => {}
                    }
                });
            })?;
        Ok(Self {
            addr,
            state,
            stop: Some(stop),
        })
    }

    /// The proxy's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Answers the next `n` requests with `503 Slow Down`.
    pub fn fail_next(&self, n: u64) {
        self.state.fail_next.store(n, Ordering::SeqCst);
    }

    /// Plays dead once a `PUT` whose path contains `pattern` was forwarded (its answer still
    /// reaches the client).
    pub fn die_after_put_containing(&self, pattern: &str) {
        *self.state.die_on.lock() = Some(pattern.to_owned());
    }

    /// Forwards again.
    pub fn revive(&self) {
        *self.state.die_on.lock() = None;
        self.state.dead.store(false, Ordering::SeqCst);
    }

    /// Requests answered with 503 so far.
    pub fn refused(&self) -> u64 {
        self.state.refused.load(Ordering::SeqCst)
    }

    /// Connections dropped while dead so far.
    pub fn dropped(&self) -> u64 {
        self.state.dropped.load(Ordering::SeqCst)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// Takes one unit from `counter` unless it is zero.
fn take(counter: &AtomicU64) -> bool {
    counter
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| v.checked_sub(1))
        .is_ok()
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The value of header `name` in a request or response head.
fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().skip(1).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// The head with any `Connection` header replaced by `Connection: close`.
fn closing(head: &str) -> String {
    let mut out = String::with_capacity(head.len() + 20);
    for l in head.split("\r\n").filter(|l| !l.is_empty()) {
        let is_conn = l
            .split_once(':')
            .is_some_and(|(k, _)| k.trim().eq_ignore_ascii_case("connection"));
        if !is_conn {
            out.push_str(l);
            out.push_str("\r\n");
        }
    }
    out.push_str("Connection: close\r\n\r\n");
    out
}

/// Reads one request (head and `Content-Length` body); `None` at a clean end of stream.
async fn read_request(conn: &mut TcpStream) -> std::io::Result<Option<(String, Vec<u8>)>> {
    let mut buf = Vec::new();
    let mut tmp = vec![0u8; 64 * 1024];
    let end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i + 4;
        }
        let n = conn.read(&mut tmp).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&tmp[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    if header(&head, "transfer-encoding").is_some() {
        return Err(std::io::Error::other(
            "chunked request bodies are not supported",
        ));
    }
    let len: usize = header(&head, "content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf.split_off(end);
    while body.len() < len {
        let n = conn.read(&mut tmp).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        body.extend_from_slice(&tmp[..n]);
    }
    body.truncate(len);
    Ok(Some((head, body)))
}

async fn handle(mut conn: TcpStream, upstream: SocketAddr, st: &State) -> std::io::Result<()> {
    if st.dead.load(Ordering::SeqCst) {
        st.dropped.fetch_add(1, Ordering::SeqCst);
        return Ok(());
    }
    let Some((head, body)) = read_request(&mut conn).await? else {
        return Ok(());
    };
    if take(&st.fail_next) {
        st.refused.fetch_add(1, Ordering::SeqCst);
        let msg = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>";
        let resp = format!(
            "HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nRetry-After: 0\r\nConnection: close\r\n\r\n{msg}",
            msg.len()
        );
        conn.write_all(resp.as_bytes()).await?;
        return conn.shutdown().await;
    }
    let mut up = TcpStream::connect(upstream).await?;
    up.write_all(closing(&head).as_bytes()).await?;
    up.write_all(&body).await?;
    let mut resp = Vec::new();
    up.read_to_end(&mut resp).await?;
    let line = head.lines().next().unwrap_or_default();
    if line.starts_with("PUT ")
        && st
            .die_on
            .lock()
            .as_deref()
            .is_some_and(|p| line.contains(p))
    {
        st.dead.store(true, Ordering::SeqCst);
    }
    match find(&resp, b"\r\n\r\n") {
        Some(i) => {
            let head = String::from_utf8_lossy(&resp[..i + 4]).into_owned();
            conn.write_all(closing(&head).as_bytes()).await?;
            conn.write_all(&resp[i + 4..]).await?;
        }
        None => conn.write_all(&resp).await?,
    }
    conn.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_count_down_and_stop_at_zero() {
        let c = AtomicU64::new(2);
        assert!(take(&c));
        assert!(take(&c));
        assert!(!take(&c));
        assert_eq!(c.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn heads_are_rewritten_to_close() {
        let h = "GET /b/k HTTP/1.1\r\nHost: 127.0.0.1:9\r\nConnection: keep-alive\r\nContent-Length: 3\r\n\r\n";
        let c = closing(h);
        assert!(c.starts_with("GET /b/k HTTP/1.1\r\nHost: 127.0.0.1:9\r\n"));
        assert!(!c.contains("keep-alive"));
        assert!(c.ends_with("Connection: close\r\n\r\n"));
        assert_eq!(header(&c, "content-length"), Some("3"));
    }
}
