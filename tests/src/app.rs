//! `TestApp`: the embedded pushpool server started in-process on a free loopback port with a
//! fresh data directory (zero-to-production's `spawn_app`), plus small HTTP helpers.

use std::time::Duration;

use pushpool::{ServeConfig, Server};
use pushpool_core::model::FlowRun;
use pushpool_core::state::{State, StateType};
use pushpool_service::Service;
use serde_json::Value;
use tokio::sync::oneshot;

/// A running server; stopped when dropped.
pub struct TestApp {
    /// `http://127.0.0.1:<port>/api`.
    pub api: String,
    /// The server's service, for driving steps directly.
    pub service: Service,
    /// The data directory (removed on drop).
    pub data_dir: tempfile::TempDir,
    client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
}

impl TestApp {
    /// Starts a server with default settings and a 1-second reconciler.
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// Starts a server after `configure` adjusts its settings.
    pub async fn spawn_with(configure: impl FnOnce(&mut ServeConfig)) -> Self {
        Self::spawn_in(tempfile::tempdir().expect("temp dir"), configure).await
    }

    /// [`TestApp::spawn_with`] over an existing data directory (a restart: take the first
    /// server's with `std::mem::replace(&mut app.data_dir, ...)` and drop it).
    pub async fn spawn_in(
        data_dir: tempfile::TempDir,
        configure: impl FnOnce(&mut ServeConfig),
    ) -> Self {
        let mut config = ServeConfig::new(data_dir.path().join("data"));
        config.bind = "127.0.0.1:0".parse().expect("address");
        config.reconcile_interval = Duration::from_secs(1);
        configure(&mut config);
        let server = Server::bind(config).await.expect("server binds");
        let addr = server.local_addr().expect("local addr");
        let service = server.service().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = server
                .run(async {
                    let _ = stopped.await;
                })
                .await;
        });
        Self {
            api: format!("http://{addr}/api"),
            service,
            data_dir,
            client: reqwest::Client::new(),
            stop: Some(stop),
        }
    }

    /// Sends a request with an optional JSON body; returns the status and the JSON body
    /// (`Value::Null` when empty).
    pub async fn send(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self.client.request(method, format!("{}{path}", self.api));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request reaches the server");
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.expect("body");
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        (status, value)
    }

    /// Reads a flow run through the store.
    pub async fn flow_run(&self, id: uuid::Uuid) -> FlowRun {
        self.service
            .store()
            .read_flow_run(id)
            .await
            .expect("flow run exists")
    }

    /// Polls the run until its state type is `wanted` (or `timeout` passes: panics with the
    /// run's state history).
    pub async fn wait_for_state(
        &self,
        id: uuid::Uuid,
        wanted: StateType,
        timeout: Duration,
    ) -> FlowRun {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let run = self.flow_run(id).await;
            if run.state_type == Some(wanted) {
                return run;
            }
            if tokio::time::Instant::now() > deadline {
                let history = self.history(id).await;
                panic!(
                    "flow run {id} did not reach {wanted} in {timeout:?}; history: {history:#?}"
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The run's state history as `(type, name, message)`.
    pub async fn history(&self, id: uuid::Uuid) -> Vec<(StateType, String, Option<String>)> {
        self.service
            .store()
            .read_flow_run_states(id)
            .await
            .expect("history")
            .into_iter()
            .map(|s: State| (s.r#type, s.name, s.message))
            .collect()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
