use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, AttachParams, PostParams};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use cairn_kube_testserver::{ExecOutput, ExecRequest, LocalProcess};

use super::server;

fn pod() -> Pod {
    serde_json::from_value(json!({
        "metadata": { "name": "db" },
        "spec": { "containers": [{ "name": "main", "image": "mariadb" }, { "name": "side", "image": "busybox" }] },
    }))
    .unwrap()
}

async fn read_all(r: Option<impl tokio::io::AsyncRead + Unpin>) -> String {
    let mut s = String::new();
    r.unwrap().read_to_string(&mut s).await.unwrap();
    s
}

#[tokio::test]
async fn exec_runs_a_local_process_with_streams_and_exit_code() {
    let server = server().await;
    server.on_exec(LocalProcess);
    let pods: Api<Pod> = Api::namespaced(server.client(), "default");
    pods.create(&PostParams::default(), &pod()).await.unwrap();

    let mut proc = pods
        .exec(
            "db",
            ["sh", "-c", "echo out; echo err >&2; exit 3"],
            &AttachParams::default().stderr(true),
        )
        .await
        .unwrap();
    let (out, err) = tokio::join!(read_all(proc.stdout()), read_all(proc.stderr()));
    let status = proc.take_status().unwrap().await.unwrap();
    assert_eq!(out, "out\n");
    assert_eq!(err, "err\n");
    assert_eq!(status.reason.as_deref(), Some("NonZeroExitCode"));
    let cause = &status.details.unwrap().causes.unwrap()[0];
    assert_eq!(cause.message.as_deref(), Some("3"));
    proc.join().await.unwrap();
}

#[tokio::test]
async fn exec_streams_stdin_to_the_process() {
    let server = server().await;
    server.on_exec(LocalProcess);
    let pods: Api<Pod> = Api::namespaced(server.client(), "default");
    pods.create(&PostParams::default(), &pod()).await.unwrap();
    let mut proc = pods
        .exec(
            "db",
            ["tr", "a-z", "A-Z"],
            &AttachParams::default().stdin(true).stderr(false),
        )
        .await
        .unwrap();
    let mut stdin = proc.stdin().unwrap();
    stdin.write_all(b"hello").await.unwrap();
    // kube-rs's stdin is one half of a simplex pipe: EOF needs a shutdown, not a drop.
    stdin.shutdown().await.unwrap();
    let out = read_all(proc.stdout()).await;
    let status = proc.take_status().unwrap().await.unwrap();
    assert_eq!(out, "HELLO");
    assert_eq!(status.status.as_deref(), Some("Success"));
}

/// More stdin than the session's channel holds (16 frames) reaches the process: the handler
/// drains the channel while the session waits to fill it (it once deadlocked here).
#[tokio::test]
async fn exec_streams_more_stdin_than_the_session_buffers() {
    let server = server().await;
    server.on_exec(LocalProcess);
    let pods: Api<Pod> = Api::namespaced(server.client(), "default");
    pods.create(&PostParams::default(), &pod()).await.unwrap();
    let mut proc = pods
        .exec(
            "db",
            ["wc", "-c"],
            &AttachParams::default().stdin(true).stderr(false),
        )
        .await
        .unwrap();
    let mut stdin = proc.stdin().unwrap();
    let stdout = proc.stdout();
    let data = vec![b'x'; 4 << 20];
    let run = async {
        let (sent, out) = tokio::join!(
            async {
                stdin.write_all(&data).await?;
                stdin.shutdown().await
            },
            read_all(stdout)
        );
        sent.unwrap();
        out
    };
    let out = tokio::time::timeout(std::time::Duration::from_mins(1), run)
        .await
        .expect("4 MiB of stdin did not get through in 60 s");
    assert_eq!(out.trim(), (4 << 20).to_string());
}

#[tokio::test]
async fn exec_closure_sees_container_and_command_and_bad_container_fails() {
    let server = server().await;
    server.on_exec(|req: &ExecRequest, _stdin: &[u8]| {
        ExecOutput::new(
            0,
            format!("{} {}", req.container, req.command.join(" ")),
            "",
        )
    });
    let pods: Api<Pod> = Api::namespaced(server.client(), "default");
    pods.create(&PostParams::default(), &pod()).await.unwrap();
    let mut proc = pods
        .exec(
            "db",
            ["mysql", "-e", "FLUSH TABLES"],
            &AttachParams::default().container("side").stderr(false),
        )
        .await
        .unwrap();
    assert_eq!(read_all(proc.stdout()).await, "side mysql -e FLUSH TABLES");
    let default = pods
        .exec("db", ["true"], &AttachParams::default().stderr(false))
        .await
        .unwrap();
    let mut default = default;
    assert_eq!(read_all(default.stdout()).await, "main true");

    let err = pods
        .exec("db", ["true"], &AttachParams::default().container("nope"))
        .await
        .err()
        .expect("unknown container fails");
    assert!(
        format!("{err:?}").contains("400") || format!("{err}").contains("not valid"),
        "{err:?}"
    );
    let missing = pods
        .exec("ghost", ["true"], &AttachParams::default())
        .await
        .err()
        .expect("missing pod fails");
    assert!(format!("{missing:?}").contains("404"), "{missing:?}");
}
