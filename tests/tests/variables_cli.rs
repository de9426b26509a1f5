//! Variables with the real Prefect 3.9.1 CLI and SDK against pushpool: `prefect variable
//! set|get|ls|inspect|unset` and `Variable.set/get()`, asserting what they print and return.

use pushpool_tests::app::TestApp;
use pushpool_tests::python::{prefect, python};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_and_the_sdk_set_read_list_and_unset_variables() {
    let app = TestApp::spawn().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let api = app.api.as_str();

    let set = prefect(
        api,
        d,
        &["variable", "set", "region", "eu-west-1", "--tag", "aws"],
    )
    .await
    .ok();
    assert_eq!(set.stdout.trim(), "Set variable 'region'.");
    let got = prefect(api, d, &["variable", "get", "region"]).await.ok();
    assert_eq!(got.stdout.trim(), "\"eu-west-1\"");

    // A JSON value, then overwritten.
    prefect(
        api,
        d,
        &[
            "variable",
            "set",
            "limits",
            r#"{"cpu": 1024, "memory": 2048}"#,
        ],
    )
    .await
    .ok();
    let refused = prefect(api, d, &["variable", "set", "limits", "3"]).await;
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(
        refused
            .stdout
            .contains("Variable 'limits' already exists. Use `--overwrite` to update it."),
        "{refused:?}"
    );
    prefect(api, d, &["variable", "set", "limits", "3", "--overwrite"])
        .await
        .ok();
    let got = prefect(api, d, &["variable", "get", "limits"]).await.ok();
    assert_eq!(got.stdout.trim(), "3");

    let listed = prefect(api, d, &["variable", "ls"]).await.ok();
    let rows: Vec<&str> = listed
        .stdout
        .lines()
        .filter(|l| l.contains("limits") || l.contains("region"))
        .collect();
    assert_eq!(rows.len(), 2, "{}", listed.stdout);
    assert!(
        rows[0].contains("limits") && rows[1].contains("region"),
        "{}",
        listed.stdout
    );
    assert!(rows[1].contains("eu-west-1"), "{}", listed.stdout);

    let inspected = prefect(api, d, &["variable", "inspect", "region"])
        .await
        .ok();
    assert!(
        inspected.stdout.contains("name='region'"),
        "{}",
        inspected.stdout
    );
    assert!(
        inspected.stdout.contains("value='eu-west-1'"),
        "{}",
        inspected.stdout
    );
    assert!(
        inspected.stdout.contains("tags=['aws']"),
        "{}",
        inspected.stdout
    );

    let sdk = python(
        api,
        d,
        r#"
from prefect.variables import Variable
Variable.set("nested", {"a": [1, 2.5, None], "b": True})
print(repr(Variable.get("nested")))
print(repr(Variable.get("region")))
print(repr(Variable.get("missing", default="fallback")))
Variable.set("nested", "replaced", overwrite=True)
print(repr(Variable.get("nested")))
Variable.unset("nested")
print(repr(Variable.get("nested")))
"#,
    )
    .await
    .ok();
    assert_eq!(
        sdk.stdout.lines().collect::<Vec<_>>(),
        [
            "{'a': [1, 2.5, None], 'b': True}",
            "'eu-west-1'",
            "'fallback'",
            "'replaced'",
            "None"
        ]
    );

    let unset = prefect(api, d, &["variable", "unset", "region"]).await.ok();
    assert_eq!(unset.stdout.trim(), "Unset variable 'region'.");
    let gone = prefect(api, d, &["variable", "get", "region"]).await;
    assert_eq!(gone.code, 1, "{gone:?}");
    assert!(
        gone.stdout.contains("Variable 'region' not found."),
        "{gone:?}"
    );
}
