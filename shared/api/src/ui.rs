//! Prefect's own web UI, served from the user's `prefect` installation at the paths
//! `prefect server start` uses (Prefect 3.9.1, `prefect/server/api/server.py`
//! `create_ui_app`):
//!
//! - the V1 bundle (`prefect/server/ui`) at `/`, the V2 bundle (`prefect/server/ui-v2`) at
//!   `/v2`; a path that names no file answers the bundle's `index.html` (the pages are routed
//!   in the browser);
//! - `GET /ui-settings`: the UI's runtime settings ([`UiSettings`]);
//! - a page navigation to `/` goes to the default UI (V2, as Prefect's
//!   `server.ui.v2_enabled` default) unless the browser's `prefect_ui_version` cookie names
//!   the other one (307, as Prefect's `redirect_to_preferred_ui`).
//!
//! The bundles are read once at start into memory (about 17 MiB for 3.9.1) with Prefect's
//! placeholder `/PREFECT_UI_SERVE_BASE_REPLACE_PLACEHOLDER` replaced by the bundle's base
//! path, in the files Prefect replaces it in (`.txt`, `.html`, `.css`, `.js`, `.json`).
//! Nothing of the UI is copied into this repository: [`find_prefect_server_dir`] finds the
//! installed package the way the process pool finds the engine (the `python` on `PATH`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

const PLACEHOLDER: &str = "/PREFECT_UI_SERVE_BASE_REPLACE_PLACEHOLDER";
/// The extensions Prefect replaces the placeholder in.
const TEXT_EXTENSIONS: &[&str] = &["txt", "html", "css", "js", "json"];
/// Prefect's cookie for the browser's UI choice.
const UI_VERSION_COOKIE: &str = "prefect_ui_version";

/// Why the UI could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum UiError {
    /// The directory holds neither `ui/index.html` nor `ui-v2/index.html`.
    #[error(
        "{0} has no Prefect UI bundle (expected ui/index.html or ui-v2/index.html in the `prefect/server` directory of a prefect installation)"
    )]
    NoBundle(PathBuf),
    /// A bundle file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// One of Prefect's two UI bundles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum UiVersion {
    /// The Vue UI, served at `/`.
    V1,
    /// The React UI, served at `/v2`.
    V2,
}

impl UiVersion {
    /// The bundle's base path: `/` or `/v2`.
    pub fn base_url(self) -> &'static str {
        match self {
            UiVersion::V1 => "/",
            UiVersion::V2 => "/v2",
        }
    }

    fn dir_name(self) -> &'static str {
        match self {
            UiVersion::V1 => "ui",
            UiVersion::V2 => "ui-v2",
        }
    }

    fn from_cookie(value: &str) -> Option<Self> {
        match value {
            "v1" => Some(UiVersion::V1),
            "v2" => Some(UiVersion::V2),
            _ => None,
        }
    }
}

#[derive(Debug)]
struct StaticFile {
    bytes: axum::body::Bytes,
    content_type: HeaderValue,
}

#[derive(Debug)]
struct Bundle {
    version: UiVersion,
    /// Paths relative to the bundle's root, `/`-separated, without a leading `/`.
    files: HashMap<String, StaticFile>,
}

/// `GET /ui-settings`: the runtime settings Prefect's UI reads at start (Prefect's
/// `UISettings`, `prefect/server/schemas/ui.py`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct UiSettings {
    /// The API's URL the UI calls (`PREFECT_UI_API_URL`'s role).
    pub api_url: String,
    /// Whether the UI must fetch a CSRF token first (pushpool has no CSRF tokens: `false`).
    pub csrf_enabled: bool,
    /// `"BASIC"` when API keys are required: the UI then asks for credentials and sends
    /// them as HTTP Basic; `None` in open mode.
    pub auth: Option<String>,
    /// Feature flags (none).
    pub flags: Vec<String>,
    /// The UI a neutral entry point (`/`) opens.
    pub default_ui: UiVersion,
    /// The bundles served.
    pub available_uis: Vec<UiVersion>,
    /// `/` when the V1 bundle is served.
    pub v1_base_url: Option<String>,
    /// `/v2` when the V2 bundle is served.
    pub v2_base_url: Option<String>,
}

/// The loaded bundles and the settings the UI is given.
#[derive(Debug, Clone)]
pub struct Ui {
    bundles: Arc<Vec<Bundle>>,
    settings: UiSettings,
}

impl Ui {
    /// Loads the bundles of the `prefect/server` directory `server_dir` (either may be
    /// missing, not both); the UI calls the API at `api_url`; `basic_auth` when keys are
    /// required.
    ///
    /// # Errors
    /// [`UiError::NoBundle`] when neither bundle is there; [`UiError::Read`] on an I/O error.
    pub fn load(server_dir: &Path, api_url: &str, basic_auth: bool) -> Result<Self, UiError> {
        let mut bundles = Vec::new();
        for version in [UiVersion::V1, UiVersion::V2] {
            let root = server_dir.join(version.dir_name());
            if root.join("index.html").is_file() {
                bundles.push(load_bundle(version, &root)?);
            }
        }
        if bundles.is_empty() {
            return Err(UiError::NoBundle(server_dir.to_path_buf()));
        }
        let has = |v: UiVersion| bundles.iter().any(|b| b.version == v);
        let default_ui = if has(UiVersion::V2) {
            UiVersion::V2
        } else {
            UiVersion::V1
        };
        let settings = UiSettings {
            api_url: api_url.to_owned(),
            csrf_enabled: false,
            auth: basic_auth.then(|| "BASIC".to_owned()),
            flags: Vec::new(),
            default_ui,
            available_uis: bundles.iter().map(|b| b.version).collect(),
            v1_base_url: has(UiVersion::V1).then(|| "/".to_owned()),
            v2_base_url: has(UiVersion::V2).then(|| "/v2".to_owned()),
        };
        Ok(Self {
            bundles: Arc::new(bundles),
            settings,
        })
    }

    /// What `GET /ui-settings` answers.
    pub fn settings(&self) -> &UiSettings {
        &self.settings
    }

    /// Number of files served, over both bundles.
    pub fn file_count(&self) -> usize {
        self.bundles.iter().map(|b| b.files.len()).sum()
    }

    fn bundle(&self, version: UiVersion) -> Option<&Bundle> {
        self.bundles.iter().find(|b| b.version == version)
    }

    /// Answers a request outside `/api`, or `None` when the UI does not serve it (another
    /// method than GET/HEAD).
    pub fn respond(&self, method: &Method, path: &str, headers: &HeaderMap) -> Option<Response> {
        if method != Method::GET && method != Method::HEAD {
            return None;
        }
        if path == "/ui-settings" {
            return Some(axum::Json(self.settings.clone()).into_response());
        }
        let (requested, relative) = match path.strip_prefix("/v2") {
            Some(rest)
                if (rest.is_empty() || rest.starts_with('/'))
                    && self.bundle(UiVersion::V2).is_some() =>
            {
                (UiVersion::V2, rest)
            }
            _ => (UiVersion::V1, path),
        };
        if requested == UiVersion::V2 && relative.is_empty() {
            // `/v2` is outside the bundle's mount: its root is `/v2/`.
            return Some(redirect("/v2/"));
        }
        // Only the neutral entry point follows the browser's choice; `/v2/...` is always V2.
        if requested == UiVersion::V1 && path == "/" && is_navigation(headers) {
            let preferred = cookie(headers, UI_VERSION_COOKIE)
                .and_then(UiVersion::from_cookie)
                .filter(|v| self.bundle(*v).is_some())
                .unwrap_or(self.settings.default_ui);
            if preferred == UiVersion::V2 {
                return Some(redirect("/v2/"));
            }
        }
        let bundle = self.bundle(requested).or_else(|| self.bundles.first())?;
        let key = relative.trim_start_matches('/');
        let (file, immutable) = match bundle.files.get(key) {
            Some(file) if !key.is_empty() => (file, key.starts_with("assets/")),
            // Pages are routed in the browser: any other path is the app's page.
            _ => (bundle.files.get("index.html")?, false),
        };
        let cache = cache_control(immutable);
        let body = if method == Method::HEAD {
            Body::empty()
        } else {
            Body::from(file.bytes.clone())
        };
        Some(
            (
                [
                    (header::CONTENT_TYPE, file.content_type.clone()),
                    (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
                ],
                body,
            )
                .into_response(),
        )
    }
}

/// The `Cache-Control` of a UI file: the hashed files under a bundle's `assets/` never change
/// under their name (cached for a year); every other file (`index.html`, icons) and the
/// settings are revalidated on each use.
fn cache_control(immutable: bool) -> &'static str {
    if immutable {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    }
}

fn redirect(to: &'static str) -> Response {
    (StatusCode::TEMPORARY_REDIRECT, [(header::LOCATION, to)]).into_response()
}

fn is_navigation(headers: &HeaderMap) -> bool {
    let get = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("");
    get("sec-fetch-mode") == "navigate"
        || matches!(get("sec-fetch-dest"), "document" | "iframe")
        || get("accept").to_ascii_lowercase().contains("text/html")
}

fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn load_bundle(version: UiVersion, root: &Path) -> Result<Bundle, UiError> {
    let replacement = match version {
        UiVersion::V1 => "",
        UiVersion::V2 => "/v2",
    };
    let mut files = HashMap::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|source| UiError::Read {
            path: dir.clone(),
            source,
        })?;
        for entry in entries {
            let path = entry
                .map_err(|source| UiError::Read {
                    path: dir.clone(),
                    source,
                })?
                .path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            let bytes = std::fs::read(&path).map_err(|source| UiError::Read {
                path: path.clone(),
                source,
            })?;
            let extension = path
                .extension()
                .and_then(|e| e.to_str())
                .unwrap_or_default();
            let bytes = if TEXT_EXTENSIONS.contains(&extension) {
                match String::from_utf8(bytes) {
                    Ok(text) => text.replace(PLACEHOLDER, replacement).into_bytes(),
                    Err(e) => e.into_bytes(),
                }
            } else {
                bytes
            };
            let mime = mime_guess::from_path(&path).first_or_octet_stream();
            let content_type = HeaderValue::from_str(mime.essence_str())
                .unwrap_or(HeaderValue::from_static("application/octet-stream"));
            let relative = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            files.insert(
                relative,
                StaticFile {
                    bytes: bytes.into(),
                    content_type,
                },
            );
        }
    }
    Ok(Bundle { version, files })
}

/// The `prefect/server` directory of the `prefect` package that the `python` on `PATH`
/// imports (the interpreter the process pool runs flows with), or `None` when there is no
/// such interpreter or package.
pub fn find_prefect_server_dir() -> Option<PathBuf> {
    let out = std::process::Command::new("python")
        .args([
            "-c",
            // Finds the package without importing it (importing prefect takes seconds).
            "import importlib.util, pathlib; spec = importlib.util.find_spec('prefect'); \
             print(pathlib.Path(spec.submodule_search_locations[0]) / 'server')",
        ])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    dir.is_dir().then_some(dir)
}

/// The `prefect/server` directory under `path`: `path` itself when it holds a bundle, else
/// `path/server` (a `prefect` package directory), else `path/prefect/server` (a
/// `site-packages` directory).
pub fn server_dir_under(path: &Path) -> PathBuf {
    let holds =
        |p: &Path| p.join("ui/index.html").is_file() || p.join("ui-v2/index.html").is_file();
    [
        path.to_path_buf(),
        path.join("server"),
        path.join("prefect/server"),
    ]
    .into_iter()
    .find(|p| holds(p))
    .unwrap_or_else(|| path.to_path_buf())
}

mod export;
pub use export::{ExportError, ExportedFile, edge_serves_file};

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let v1 = dir.path().join("ui");
        let v2 = dir.path().join("ui-v2");
        std::fs::create_dir_all(v1.join("assets")).unwrap();
        std::fs::create_dir_all(v2.join("assets")).unwrap();
        std::fs::write(
            v1.join("index.html"),
            r#"<script src="/PREFECT_UI_SERVE_BASE_REPLACE_PLACEHOLDER/assets/a.js"></script>"#,
        )
        .unwrap();
        std::fs::write(
            v1.join("assets/a.js"),
            "fetch('/PREFECT_UI_SERVE_BASE_REPLACE_PLACEHOLDER/x')",
        )
        .unwrap();
        std::fs::write(
            v2.join("index.html"),
            r#"<script src="/PREFECT_UI_SERVE_BASE_REPLACE_PLACEHOLDER/assets/b.js"></script>"#,
        )
        .unwrap();
        std::fs::write(v2.join("assets/b.js"), "b").unwrap();
        std::fs::write(
            v2.join("assets/logo.svg"),
            "/PREFECT_UI_SERVE_BASE_REPLACE_PLACEHOLDER",
        )
        .unwrap();
        dir
    }

    async fn body(response: Response) -> (StatusCode, String, String) {
        let status = response.status();
        let ct = response
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, ct, String::from_utf8_lossy(&bytes).into_owned())
    }

    fn html() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_static("text/html"));
        h
    }

    #[tokio::test]
    async fn bundles_are_served_at_prefects_paths_with_the_placeholder_replaced() {
        let dir = fixture();
        let ui = Ui::load(dir.path(), "http://127.0.0.1:4200/api", false).unwrap();
        let get = |p: &str, h: &HeaderMap| ui.respond(&Method::GET, p, h).unwrap();
        let none = HeaderMap::new();

        assert_eq!(
            body(get("/assets/a.js", &none)).await,
            (
                StatusCode::OK,
                "text/javascript".into(),
                "fetch('/x')".into()
            )
        );
        assert_eq!(
            body(get("/v2/flow-runs/flow-run/123", &none)).await,
            (
                StatusCode::OK,
                "text/html".into(),
                r#"<script src="/v2/assets/b.js"></script>"#.into()
            )
        );
        assert_eq!(
            body(get("/runs", &none)).await.2,
            r#"<script src="/assets/a.js"></script>"#
        );
        // Not a text extension Prefect rewrites: served as it is.
        assert_eq!(
            body(get("/v2/assets/logo.svg", &none)).await,
            (
                StatusCode::OK,
                "image/svg+xml".into(),
                "/PREFECT_UI_SERVE_BASE_REPLACE_PLACEHOLDER".into()
            )
        );
        assert!(ui.respond(&Method::POST, "/runs", &none).is_none());
    }

    #[tokio::test]
    async fn a_page_navigation_to_the_root_goes_to_the_preferred_ui() {
        let dir = fixture();
        let ui = Ui::load(dir.path(), "http://x/api", false).unwrap();
        let location = |r: Response| {
            (
                r.status(),
                r.headers()
                    .get(header::LOCATION)
                    .map(|v| v.to_str().unwrap().to_owned()),
            )
        };
        assert_eq!(
            location(ui.respond(&Method::GET, "/", &html()).unwrap()),
            (StatusCode::TEMPORARY_REDIRECT, Some("/v2/".into()))
        );
        let mut v1 = html();
        v1.insert(
            header::COOKIE,
            HeaderValue::from_static("a=b; prefect_ui_version=v1"),
        );
        assert_eq!(
            location(ui.respond(&Method::GET, "/", &v1).unwrap()),
            (StatusCode::OK, None)
        );
        // As Prefect: `/v2/...` stays V2 whatever the cookie says.
        assert_eq!(
            location(ui.respond(&Method::GET, "/v2/", &v1).unwrap()),
            (StatusCode::OK, None)
        );
        assert_eq!(
            location(ui.respond(&Method::GET, "/v2", &HeaderMap::new()).unwrap()),
            (StatusCode::TEMPORARY_REDIRECT, Some("/v2/".into()))
        );
        assert_eq!(
            location(ui.respond(&Method::GET, "/v2/", &html()).unwrap()),
            (StatusCode::OK, None)
        );
    }

    #[tokio::test]
    async fn ui_settings_say_what_is_served_and_how_to_authenticate() {
        let dir = fixture();
        std::fs::remove_dir_all(dir.path().join("ui")).unwrap();
        let ui = Ui::load(dir.path(), "https://pp.example.com/api", true).unwrap();
        let (status, ct, text) = body(
            ui.respond(&Method::GET, "/ui-settings", &HeaderMap::new())
                .unwrap(),
        )
        .await;
        assert_eq!((status, ct.as_str()), (StatusCode::OK, "application/json"));
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&text).unwrap(),
            serde_json::json!({
                "api_url": "https://pp.example.com/api",
                "csrf_enabled": false,
                "auth": "BASIC",
                "flags": [],
                "default_ui": "v2",
                "available_uis": ["v2"],
                "v1_base_url": null,
                "v2_base_url": "/v2"
            })
        );
    }

    #[test]
    fn a_directory_without_a_bundle_is_refused_with_what_was_expected() {
        let dir = tempfile::tempdir().unwrap();
        let err = Ui::load(dir.path(), "x", false).unwrap_err();
        assert!(
            err.to_string().contains("has no Prefect UI bundle"),
            "{err}"
        );
        assert_eq!(server_dir_under(dir.path()), dir.path());
    }
}
