//! The event sockets with keys required, through Prefect 3.9.1's own clients
//! (`get_events_client` for `WS /events/in`, `get_events_subscriber` for `WS /events/out`)
//! against the embedded server with `--require-api-key` (`AuthMode::Required`).
//!
//! What those clients send (`prefect/events/clients.py`): the self-hosted events client and
//! subscriber authenticate with their first message, `{"type":"auth","token":…}`, whose
//! token is `PREFECT_API_AUTH_STRING`; the events client also sends it as
//! `Authorization: Basic` on the upgrade when it is set. `PREFECT_API_KEY` is not sent on
//! either socket. So with the key as the auth string (or `user:key`) both sockets work; with
//! `PREFECT_API_KEY` alone `/events/out` is refused with Prefect's reason (close 1008) and
//! `/events/in` with a 401 on the upgrade, which the events client tolerates (a refused auth
//! message would be fatal to `flow.serve()`'s runner: the golden `serve` scenario).

use chrono::Utc;
use pushpool_api::auth::{AuthMode, hash_key};
use pushpool_core::model::ApiKey;
use pushpool_tests::app::TestApp;
use pushpool_tests::python::python;

const KEY: &str = "pp_0123456789abcdefghijklmnopqrstuvwxyzABCD";

const SCRIPT: &str = r#"
import asyncio, uuid
from prefect.settings import PREFECT_API_KEY, PREFECT_API_AUTH_STRING, temporary_settings
from prefect.events import Event
from prefect.events.clients import get_events_client, get_events_subscriber
from prefect.events.filters import EventFilter, EventNameFilter

KEY = "__KEY__"

def reason(e):
    return str(e).split("Reason: ")[-1].splitlines()[0]

async def send(label):
    try:
        async with get_events_client(reconnection_attempts=0) as client:
            await client.emit(Event(event="test.sockets.hello",
                                    resource={"prefect.resource.id": "test.sockets"}, id=uuid.uuid4()))
        print(label, "in: sent")
    except Exception as e:
        print(label, "in: refused:", reason(e))

async def both(label):
    f = EventFilter(event=EventNameFilter(name=["test.sockets.hello"]))
    try:
        async with get_events_subscriber(filter=f, reconnection_attempts=0) as subscriber:
            print(label, "out: subscribed")
            await send(label)
            async def first():
                async for event in subscriber:
                    return event
            event = await asyncio.wait_for(first(), 20)
            print(label, "out: received", event.event, event.resource.id)
    except Exception as e:
        print(label, "out: refused:", reason(e))
        await send(label)

async def main():
    cases = [
        ("key-only", {PREFECT_API_KEY: KEY}),
        ("wrong-auth-string", {PREFECT_API_KEY: KEY, PREFECT_API_AUTH_STRING: "pp_wrong"}),
        ("auth-string", {PREFECT_API_KEY: KEY, PREFECT_API_AUTH_STRING: KEY}),
        ("user-key-auth-string", {PREFECT_API_AUTH_STRING: "admin:" + KEY}),
    ]
    for label, settings in cases:
        with temporary_settings(updates=settings):
            await both(label)

asyncio.run(main())
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefects_event_clients_authenticate_with_the_auth_message() {
    let app = TestApp::spawn_with(|c| {
        c.auth = AuthMode::Required;
        c.job_api_key = Some("pp_jobs_key_for_this_test_0123456789abcdefgh".into());
    })
    .await;
    app.service
        .store()
        .create_api_key(&ApiKey {
            id: uuid::Uuid::new_v4(),
            name: "ci".into(),
            hash: hash_key(KEY),
            created: Utc::now(),
            revoked: false,
        })
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = python(&app.api, dir.path(), &SCRIPT.replace("__KEY__", KEY))
        .await
        .ok();
    assert_eq!(
        out.stdout.lines().collect::<Vec<_>>(),
        [
            "key-only out: refused: Auth required but no token provided",
            "key-only in: refused: server rejected WebSocket connection: HTTP 401",
            "wrong-auth-string out: refused: Invalid token",
            "wrong-auth-string in: refused: server rejected WebSocket connection: HTTP 401",
            "auth-string out: subscribed",
            "auth-string in: sent",
            "auth-string out: received test.sockets.hello test.sockets",
            "user-key-auth-string out: subscribed",
            "user-key-auth-string in: sent",
            "user-key-auth-string out: received test.sockets.hello test.sockets",
        ],
        "{out:?}"
    );
}
