//! `pushpool ui export` and `infra/ui_upload.py`, the two steps with which `infra/deploy.sh`
//! (through `infra/publish-ui.sh`) publishes Prefect's UI to the stack's bucket: the exported
//! files are exactly what `pushpool serve` serves at the same paths (placeholder replaced,
//! `/ui-settings` with the CloudFront API URL and `auth: "BASIC"`), and the upload puts each
//! with the Content-Type and Cache-Control of the manifest (against moto's S3).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use pushpool_tests::moto::{MotoServer, TEST_REGION};
use pushpool_tests::tools::{venv_bin, workspace_root};
use serde_json::{Value, json};

const P: &str = "/PREFECT_UI_SERVE_BASE_REPLACE_PLACEHOLDER";
const API_URL: &str = "https://d111111abcdef8.cloudfront.net/api";
/// Not UTF-8, and with the placeholder's bytes: copied as it is.
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n/PREFECT_UI_SERVE_BASE_REPLACE_PLACEHOLDER\xff";

/// A `prefect/server` directory with both bundles, in Prefect 3.9.1's layout.
fn prefect_server() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<(&str, Vec<u8>)> = vec![
        (
            "ui/index.html",
            format!(r#"<script src="{P}/assets/index-A1.js"></script>"#).into_bytes(),
        ),
        (
            "ui/assets/index-A1.js",
            format!("fetch('{P}/x')").into_bytes(),
        ),
        ("ui/ico/favicon.png", PNG.to_vec()),
        ("ui/robots.txt", b"User-agent: *".to_vec()),
        (
            "ui-v2/index.html",
            format!(r#"<link href="{P}/ico/site.webmanifest">"#).into_bytes(),
        ),
        (
            "ui-v2/assets/index-B2.js",
            format!("base('{P}')").into_bytes(),
        ),
        ("ui-v2/fonts/inter.woff2", b"wOF2".to_vec()),
        ("ui-v2/ico/site.webmanifest", b"{}".to_vec()),
    ];
    for (path, bytes) in files {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
    dir
}

fn pushpool(args: &[&str], path_env: Option<&Path>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pushpool"));
    cmd.args(args).env_remove("PUSHPOOL_UI");
    if let Some(p) = path_env {
        cmd.env("PATH", p);
    }
    cmd.output().expect("pushpool runs")
}

fn tree(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                let key = path
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                files.insert(key, std::fs::read(&path).unwrap());
            }
        }
    }
    files
}

fn export(out: &Path) -> (tempfile::TempDir, PathBuf) {
    let server = prefect_server();
    let manifest = out.with_extension("json");
    let o = pushpool(
        &[
            "ui",
            "export",
            "--out",
            out.to_str().unwrap(),
            "--api-url",
            API_URL,
            "--ui",
            server.path().to_str().unwrap(),
            "--manifest",
            manifest.to_str().unwrap(),
        ],
        None,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    (server, manifest)
}

const IMMUTABLE: &str = "public, max-age=31536000, immutable";

fn expected_manifest() -> Value {
    let f = |key: &str, ct: &str, cc: &str, size: usize| json!({"key": key, "content_type": ct, "cache_control": cc, "size": size});
    json!([
        f(
            "assets/index-A1.js",
            "text/javascript",
            IMMUTABLE,
            "fetch('/x')".len()
        ),
        f("ico/favicon.png", "image/png", "no-cache", PNG.len()),
        f(
            "index.html",
            "text/html",
            "no-cache",
            r#"<script src="/assets/index-A1.js"></script>"#.len()
        ),
        f("robots.txt", "text/plain", "no-cache", 13),
        f(
            "ui-settings",
            "application/json",
            "no-cache",
            ui_settings().len()
        ),
        f(
            "v2/assets/index-B2.js",
            "text/javascript",
            IMMUTABLE,
            "base('/v2')".len()
        ),
        f("v2/fonts/inter.woff2", "font/woff2", "no-cache", 4),
        f(
            "v2/ico/site.webmanifest",
            "application/manifest+json",
            "no-cache",
            2
        ),
        f(
            "v2/index.html",
            "text/html",
            "no-cache",
            r#"<link href="/v2/ico/site.webmanifest">"#.len()
        ),
    ])
}

fn ui_settings() -> String {
    // As `GET /ui-settings` answers on a server with keys required (serde field order).
    format!(
        r#"{{"api_url":"{API_URL}","csrf_enabled":false,"auth":"BASIC","flags":[],"default_ui":"v2","available_uis":["v1","v2"],"v1_base_url":"/","v2_base_url":"/v2"}}"#
    )
}

#[test]
fn export_writes_what_serve_serves_at_its_paths() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("site");
    let (_server, manifest) = export(&out);

    let want: BTreeMap<String, Vec<u8>> = [
        ("assets/index-A1.js", b"fetch('/x')".to_vec()),
        ("ico/favicon.png", PNG.to_vec()),
        (
            "index.html",
            br#"<script src="/assets/index-A1.js"></script>"#.to_vec(),
        ),
        ("robots.txt", b"User-agent: *".to_vec()),
        ("ui-settings", ui_settings().into_bytes()),
        ("v2/assets/index-B2.js", b"base('/v2')".to_vec()),
        ("v2/fonts/inter.woff2", b"wOF2".to_vec()),
        ("v2/ico/site.webmanifest", b"{}".to_vec()),
        (
            "v2/index.html",
            br#"<link href="/v2/ico/site.webmanifest">"#.to_vec(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert_eq!(tree(&out), want);
    let written: Value = serde_json::from_slice(&std::fs::read(&manifest).unwrap()).unwrap();
    assert_eq!(written, expected_manifest());
}

#[test]
fn export_without_a_prefect_installation_says_so_with_status_3() {
    let dir = tempfile::tempdir().unwrap();
    // A PATH without `python`: `--ui auto` finds nothing.
    let o = pushpool(
        &[
            "ui",
            "export",
            "--out",
            dir.path().join("site").to_str().unwrap(),
            "--api-url",
            API_URL,
        ],
        Some(dir.path()),
    );
    assert_eq!(o.status.code(), Some(3));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr).trim(),
        "pushpool ui export: no prefect installation found (the `python` on PATH cannot import \
         prefect); install prefect (pip install prefect==3.9.1) or pass --ui <site-packages directory>"
    );
    assert!(!dir.path().join("site").exists());

    let o = pushpool(
        &[
            "ui",
            "export",
            "--out",
            "x",
            "--api-url",
            "d111.cloudfront.net/api",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr)
            .contains(r#"--api-url: "d111.cloudfront.net/api" is not an http(s) URL"#),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn python(moto: &MotoServer, args: &[&str]) -> String {
    let o = Command::new(venv_bin("python"))
        .args(args)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_DEFAULT_REGION", TEST_REGION)
        .env("AWS_REGION", TEST_REGION)
        .env_remove("AWS_PROFILE")
        .env("AWS_ENDPOINT_URL", &moto.endpoint)
        .output()
        .expect("python runs");
    assert!(
        o.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&o.stderr),
        moto.log_tail()
    );
    String::from_utf8_lossy(&o.stdout).trim().to_owned()
}

#[test]
fn upload_puts_every_file_with_its_content_type_and_cache_control() {
    let moto = MotoServer::start();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("site");
    let (_server, manifest) = export(&out);
    python(
        &moto,
        &[
            "-c",
            "import boto3; boto3.client('s3').create_bucket(Bucket='pp-ui')",
        ],
    );
    let script = workspace_root().join("infra/ui_upload.py");
    let upload = [
        script.to_str().unwrap(),
        "--bucket",
        "pp-ui",
        "--dir",
        out.to_str().unwrap(),
        "--manifest",
        manifest.to_str().unwrap(),
    ];
    let total: usize = expected_manifest()
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["size"].as_u64().unwrap() as usize)
        .sum();
    assert_eq!(
        python(&moto, &upload),
        format!(
            "ui upload: 9 files uploaded ({:.1} MiB), 0 unchanged, to s3://pp-ui",
            total as f64 / 1_048_576.0
        )
    );

    // Every object as the manifest says, read back with its headers.
    let objects = python(
        &moto,
        &[
            "-c",
            "import boto3, json; s3 = boto3.client('s3'); keys = [o['Key'] for o in \
             s3.list_objects_v2(Bucket='pp-ui')['Contents']]; \
             print(json.dumps([{'key': k, 'content_type': o['ContentType'], \
             'cache_control': o['CacheControl'], 'size': o['ContentLength'], \
             'body': o['Body'].read().decode('latin-1')} \
             for k in keys for o in [s3.get_object(Bucket='pp-ui', Key=k)]]))",
        ],
    );
    let mut objects: Vec<Value> = serde_json::from_str(&objects).unwrap();
    let local = tree(&out);
    for o in &mut objects {
        let body = o.as_object_mut().unwrap().remove("body").unwrap();
        let want: String = local[o["key"].as_str().unwrap()]
            .iter()
            .map(|b| char::from(*b))
            .collect();
        assert_eq!(body.as_str().unwrap(), want, "{}", o["key"]);
    }
    assert_eq!(Value::Array(objects), expected_manifest());

    // A second run sends the hashed assets only when their content changed.
    assert_eq!(
        python(&moto, &upload),
        format!(
            "ui upload: 7 files uploaded ({:.1} MiB), 2 unchanged, to s3://pp-ui",
            (total - "fetch('/x')".len() - "base('/v2')".len()) as f64 / 1_048_576.0
        )
    );
}

/// `infra/publish-ui.sh` (what `infra/deploy.sh` runs after a deploy) against a stack in
/// moto: it reads the stack's outputs, exports with the `ApiUrl` output as the UI's API URL
/// and uploads to `UiBucketName`; without a prefect installation it says so and succeeds.
#[test]
fn publish_ui_reads_the_stack_outputs_exports_and_uploads() {
    let moto = MotoServer::start();
    let template = json!({
        "Resources": {"UiBucket": {"Type": "AWS::S3::Bucket"}},
        "Outputs": {
            "ApiUrl": {"Value": API_URL},
            "UiUrl": {"Value": "https://d111111abcdef8.cloudfront.net/"},
            "UiBucketName": {"Value": {"Ref": "UiBucket"}},
        }
    });
    python(
        &moto,
        &[
            "-c",
            "import boto3, sys; boto3.client('cloudformation').create_stack(\
             StackName='pp', TemplateBody=sys.argv[1])",
            &template.to_string(),
        ],
    );
    let bucket = python(
        &moto,
        &[
            "-c",
            "import boto3; print([o['OutputValue'] for o in boto3.client('cloudformation')\
             .describe_stacks(StackName='pp')['Stacks'][0]['Outputs'] \
             if o['OutputKey'] == 'UiBucketName'][0])",
        ],
    );
    let server = prefect_server();
    let publish = |ui: &str, path: Option<&Path>| {
        let mut cmd = Command::new("bash");
        cmd.arg(workspace_root().join("infra/publish-ui.sh"))
            .args(["--stack-name", "pp", "--region", TEST_REGION, "--ui", ui])
            .env("PUSHPOOL_BIN", env!("CARGO_BIN_EXE_pushpool"))
            .env("PUSHPOOL_PYTHON", venv_bin("python"))
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env_remove("AWS_PROFILE")
            .env("AWS_ENDPOINT_URL", &moto.endpoint);
        if let Some(p) = path {
            // Only what the script itself needs: no `python` (so no prefect) on this PATH.
            cmd.env("PATH", p);
        }
        let o = cmd.output().expect("bash runs");
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };

    let (code, stdout, stderr) = publish(server.path().to_str().unwrap(), None);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}\n{}", moto.log_tail());
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines,
        [
            format!("ui upload: 9 files uploaded (0.0 MiB), 0 unchanged, to s3://{bucket}")
                .as_str(),
            "publish-ui: Prefect's UI is at https://d111111abcdef8.cloudfront.net/ (its login form asks for an API key)",
        ]
    );
    let settings = python(
        &moto,
        &[
            "-c",
            "import boto3, sys; o = boto3.client('s3').get_object(Bucket=sys.argv[1], \
             Key='ui-settings'); print(o['ContentType'], o['CacheControl'], o['Body'].read().decode())",
            &bucket,
        ],
    );
    assert_eq!(
        settings,
        format!("application/json no-cache {}", ui_settings())
    );

    // No prefect: a message, status 0 (the deploy succeeds without the UI).
    let bin = tempfile::tempdir().unwrap();
    for tool in ["bash", "dirname", "sed", "head", "awk", "mktemp", "rm"] {
        let found = which(tool);
        std::os::unix::fs::symlink(found, bin.path().join(tool)).unwrap();
    }
    let (code, stdout, stderr) = publish("auto", Some(bin.path()));
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert_eq!(
        stdout,
        "publish-ui: the UI was not published: no prefect installation was found (the python on\n  \
         PATH cannot import prefect). The API works without it. To publish it later:\n  \
         pip install prefect==3.9.1 && infra/publish-ui.sh --stack-name pp --region us-east-1\n"
    );
}

fn which(tool: &str) -> PathBuf {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{tool} not on PATH"))
}
