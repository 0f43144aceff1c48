//! What the end-to-end tests share: the `local` binary started as a user
//! would (its own port, the WhatsApp settings of a test app), waited on
//! until healthy and killed when dropped; and a fake Graph API that accepts
//! every send.

// Each test file uses a part of this module.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// The test app's secret: webhooks are signed with it.
pub const SECRET: &str = "e2e-app-secret";
pub const ADMIN_KEY: &str = "e2e-admin-key";

pub struct Server {
    child: Child,
    pub base: String,
}

impl Server {
    /// SIGKILL: no shutdown hook runs.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The `local` binary on `data_dir`; the caller adds its own settings.
pub fn local(data_dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_local"));
    cmd.arg("--data-dir").arg(data_dir);
    cmd
}

/// Starts `cmd` on a free port, talking to the Graph API at `graph`, and
/// waits until `/healthz` answers.
pub async fn launch(cmd: Command, graph: &str) -> Server {
    launch_within(cmd, graph, Duration::from_secs(20)).await
}

/// [`launch`], waiting at most `wait` for health.
pub async fn launch_within(mut cmd: Command, graph: &str, wait: Duration) -> Server {
    let port = free_port();
    let child = cmd
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env("WHATSAPP_APP_SECRET", SECRET)
        .env("WHATSAPP_VERIFY_TOKEN", "e2e-verify")
        .env("WHATSAPP_ACCESS_TOKEN", "e2e-token")
        .env("WHATSAPP_API_BASE", graph)
        .env("CHARLA_ADMIN_KEY", ADMIN_KEY)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the local binary");
    let server = Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    let client = reqwest::Client::new();
    let deadline = Instant::now() + wait;
    while Instant::now() < deadline {
        if let Ok(r) = client.get(format!("{}/healthz", server.base)).send().await {
            if r.status().is_success() {
                return server;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the local server did not become healthy");
}

/// A Graph API that accepts every message (after `delay`).
pub async fn fake_graph(delay: Duration) -> MockServer {
    let graph = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path_regex(r"^/[0-9]+/messages$"))
        .respond_with(ResponseTemplate::new(200).set_delay(delay).set_body_json(
            serde_json::json!({
                "messaging_product": "whatsapp",
                "contacts": [{"input": "x", "wa_id": "x"}],
                "messages": [{"id": "wamid.FAKE"}],
            }),
        ))
        .mount(&graph)
        .await;
    graph
}
