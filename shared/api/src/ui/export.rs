//! The UI as static files, for hosting behind a CDN (`pushpool ui export`, used by
//! `infra/deploy.sh` to publish the UI to the stack's S3 bucket behind CloudFront).
//!
//! The files are exactly what [`Ui::respond`] serves, under the URL paths it serves them at,
//! so a static host answers as `pushpool serve` does:
//!
//! - the V1 bundle's files at their paths (`index.html`, `assets/...`), the V2 bundle's under
//!   `v2/` (`v2/index.html`, `v2/assets/...`), Prefect's placeholder replaced by the bundle's
//!   base path as [`Ui::load`] replaces it;
//! - `ui-settings`: the body of `GET /ui-settings` ([`Ui::settings`]);
//! - each file's `Content-Type` and `Cache-Control` as [`Ui::respond`] sends them
//!   ([`ExportedFile`]).
//!
//! What a static host cannot know is which path names a file and which is a page of the
//! app (answered with the bundle's `index.html`). The edge decides that from the path alone
//! ([`edge_serves_file`], the rule of `infra/cloudfront/ui-routing.js`); the export refuses a
//! bundle with a file that rule would not serve, so a Prefect release that moves its files
//! fails the deploy instead of breaking pages.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{Ui, UiVersion, cache_control};

/// Why the UI could not be exported.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// One of the two bundles is missing: the edge sends `/` to `/v2/` unless the browser
    /// chose V1, so both must be there (Prefect 3.9.1 ships both).
    #[error(
        "the prefect installation has no {0} bundle (prefect/server/{0}/index.html); publishing the UI needs both of Prefect's bundles, as prefect 3.9.1 ships them"
    )]
    MissingBundle(&'static str),
    /// A bundle file the edge's routing rule would answer with `index.html`, or whose path
    /// another file of the export takes.
    #[error(
        "{0}: the edge's routing rule (at most one directory deep, a dot in the file name) would not serve this file; this prefect version's UI layout is not supported by `ui export`"
    )]
    Unroutable(String),
    /// A file could not be written.
    #[error("writing {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// One exported file: its object key (the URL path without the leading `/`) and the headers
/// it is served with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExportedFile {
    /// `index.html`, `assets/index-abc.js`, `v2/index.html`, `ui-settings`...
    pub key: String,
    /// `Content-Type`, as [`Ui::respond`] sends it.
    pub content_type: String,
    /// `Cache-Control`, as [`Ui::respond`] sends it (`no-cache` for `ui-settings`).
    pub cache_control: String,
    /// Size in bytes.
    pub size: u64,
}

/// Whether the edge serves the path `relative` (below a bundle's base, without the leading
/// `/`) as a file rather than as the bundle's `index.html`: at most two segments, the last
/// with a dot (`robots.txt`, `assets/index-abc.js`, `ico/favicon.ico`).
///
/// Prefect 3.9.1's bundles keep every file at most one directory deep, and every page with a
/// name in its path (`/work-pools/work-pool/<name>`, `/flows/collections/<name>`) is at
/// least three segments deep, so a name with a dot still opens its page.
pub fn edge_serves_file(relative: &str) -> bool {
    let segments: Vec<&str> = relative.split('/').collect();
    segments.len() <= 2
        && segments.iter().all(|s| !s.is_empty())
        && segments.last().is_some_and(|s| s.contains('.'))
}

impl Ui {
    /// Writes the UI's static files under `out` (created if missing), each at its object key
    /// ([`ExportedFile::key`]), and returns them sorted by key.
    ///
    /// # Errors
    /// [`ExportError::MissingBundle`] unless both bundles were loaded;
    /// [`ExportError::Unroutable`] for a file the edge would not serve;
    /// [`ExportError::Write`] on an I/O error.
    pub fn export(&self, out: &Path) -> Result<Vec<ExportedFile>, ExportError> {
        for version in [UiVersion::V1, UiVersion::V2] {
            if self.bundle(version).is_none() {
                return Err(ExportError::MissingBundle(version.dir_name()));
            }
        }
        let mut files = Vec::new();
        for bundle in self.bundles.iter() {
            let prefix = match bundle.version {
                UiVersion::V1 => "",
                UiVersion::V2 => "v2/",
            };
            for (relative, file) in &bundle.files {
                let key = format!("{prefix}{relative}");
                let taken = bundle.version == UiVersion::V1
                    && (relative.starts_with("v2/")
                        || relative.starts_with("api/")
                        || relative == "ui-settings");
                if !edge_serves_file(relative) || taken {
                    return Err(ExportError::Unroutable(key));
                }
                write(out, &key, &file.bytes)?;
                files.push(ExportedFile {
                    key,
                    content_type: file.content_type.to_str().unwrap_or_default().to_owned(),
                    cache_control: cache_control(relative.starts_with("assets/")).to_owned(),
                    size: file.bytes.len() as u64,
                });
            }
        }
        // Serialising plain strings, booleans and enums cannot fail.
        let settings = serde_json::to_vec(&self.settings).unwrap_or_default();
        write(out, "ui-settings", &settings)?;
        files.push(ExportedFile {
            key: "ui-settings".to_owned(),
            content_type: "application/json".to_owned(),
            cache_control: cache_control(false).to_owned(),
            size: settings.len() as u64,
        });
        files.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(files)
    }
}

fn write(out: &Path, key: &str, bytes: &[u8]) -> Result<(), ExportError> {
    let path = out.join(key);
    let err = |source| ExportError::Write {
        path: path.clone(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    std::fs::write(&path, bytes).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The routing cases `infra/cloudfront/ui-routing.test.js` checks the edge function on.
    #[test]
    fn the_edge_serves_shallow_dotted_paths_as_files_and_everything_else_as_the_page() {
        for file in [
            "index.html",
            "robots.txt",
            "assets/index-Bny_92F-.js",
            "ico/favicon-32x32.png",
            "fonts/inter.woff2",
        ] {
            assert!(edge_serves_file(file), "{file}");
        }
        for page in [
            "",
            "runs",
            "dashboard",
            "flows/collections/my.collection",
            "work-pools/work-pool/my.pool",
            "work-pools/work-pool/a.b/queue/c.d",
            "runs/flow-run/0b6a3f2e-6f7c-4e0e-9a53-3f1f2f0c1d2e",
            "assets/",
            "a/b/c.js",
        ] {
            assert!(!edge_serves_file(page), "{page}");
        }
    }

    fn bundles(v1: &[(&str, &str)], v2: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (bundle, files) in [("ui", v1), ("ui-v2", v2)] {
            for (path, text) in files {
                let path = dir.path().join(bundle).join(path);
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(path, text).unwrap();
            }
        }
        dir
    }

    #[test]
    fn both_bundles_are_required() {
        let dir = bundles(&[("index.html", "1")], &[]);
        let ui = Ui::load(dir.path(), "https://d.example/api", true).unwrap();
        let out = tempfile::tempdir().unwrap();
        assert_eq!(
            ui.export(out.path()).unwrap_err().to_string(),
            "the prefect installation has no ui-v2 bundle (prefect/server/ui-v2/index.html); \
             publishing the UI needs both of Prefect's bundles, as prefect 3.9.1 ships them"
        );
    }

    #[test]
    fn a_file_the_edge_would_answer_with_the_page_is_refused() {
        for (v1, v2, key) in [
            (
                vec![("index.html", "1"), ("assets/deep/x.js", "x")],
                vec![("index.html", "2")],
                "assets/deep/x.js",
            ),
            (
                vec![("index.html", "1")],
                vec![("index.html", "2"), ("LICENSE", "l")],
                "v2/LICENSE",
            ),
            (
                vec![("index.html", "1"), ("v2/index.html", "x")],
                vec![("index.html", "2")],
                "v2/index.html",
            ),
        ] {
            let dir = bundles(&v1, &v2);
            let ui = Ui::load(dir.path(), "https://d.example/api", true).unwrap();
            let out = tempfile::tempdir().unwrap();
            match ui.export(out.path()) {
                Err(ExportError::Unroutable(k)) => assert_eq!(k, key),
                other => panic!("{key}: {other:?}"),
            }
        }
    }
}
