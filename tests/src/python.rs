//! Running the real Prefect client (CLI and SDK) from the project's virtualenv against a
//! test server: each call gets its own empty `PREFECT_HOME` and `PREFECT_API_URL`.

use std::path::Path;
use std::process::Output;

use crate::tools::venv_bin;

/// The output of a finished command, for assertions and failure messages.
#[derive(Debug)]
pub struct Ran {
    /// Exit code (`-1` when killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Ran {
    fn from(out: Output) -> Self {
        Self {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// The flow run id `prefect deployment run` printed (`└── UUID: <id>`).
    ///
    /// # Panics
    /// When the output has no such line.
    pub fn flow_run_id(&self) -> uuid::Uuid {
        self.stdout
            .lines()
            .find_map(|l| l.split("UUID:").nth(1))
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or_else(|| panic!("no flow run id in:\n{}", self.stdout))
    }

    /// Panics with both streams unless the command exited 0.
    pub fn ok(self) -> Self {
        assert_eq!(
            self.code, 0,
            "command failed\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

async fn run(program: &Path, args: &[&str], api: &str, home: &Path, cwd: &Path) -> Ran {
    let out = tokio::process::Command::new(program)
        .args(args)
        .current_dir(cwd)
        .env("PREFECT_API_URL", api)
        .env("PREFECT_HOME", home)
        .env("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
        .env("PREFECT_CLI_PROMPT", "false")
        .env("PREFECT_CLI_COLORS", "false")
        .env("PREFECT_CLI_WRAP_LINES", "false")
        .env("COLUMNS", "200")
        .kill_on_drop(true)
        .output()
        .await
        .expect("the command starts");
    Ran::from(out)
}

/// `prefect <args>` against `api`, in `dir` (also used as `PREFECT_HOME`'s parent).
pub async fn prefect(api: &str, dir: &Path, args: &[&str]) -> Ran {
    let home = dir.join("prefect-home");
    run(&venv_bin("prefect"), args, api, &home, dir).await
}

/// Runs a Python script (its text) with the venv's interpreter against `api`, in `dir`.
pub async fn python(api: &str, dir: &Path, script: &str) -> Ran {
    let path = dir.join(format!("script-{}.py", uuid::Uuid::new_v4()));
    std::fs::write(&path, script).expect("script written");
    let home = dir.join("prefect-home");
    let path_str = path.to_string_lossy().into_owned();
    run(&venv_bin("python"), &[&path_str], api, &home, dir).await
}

/// Writes `code` to `dir/<file>`, creates the `process` pool `local` (its jobs run the
/// virtualenv's `prefect flow-run execute`) and deploys `<file>:<function>` from `dir` as
/// `deployment` with `.deploy()`'s extra keyword arguments `extra` (Python source, e.g.
/// `parameters={"x": 4},`; empty for none).
///
/// # Panics
/// When a command fails (with its output).
pub async fn deploy_on_process_pool(
    api: &str,
    dir: &Path,
    file: &str,
    code: &str,
    function: &str,
    deployment: &str,
    extra: &str,
) {
    std::fs::write(dir.join(file), code).expect("flow file written");
    prefect(
        api,
        dir,
        &["work-pool", "create", "local", "--type", "process"],
    )
    .await
    .ok();
    let command = format!("{} flow-run execute", venv_bin("prefect").display());
    let deploy = format!(
        r#"
from prefect import flow
flow.from_source(source={src:?}, entrypoint="{file}:{function}").deploy(
    name="{deployment}", work_pool_name="local", {extra}
    job_variables={{"command": {command:?}}},
)
"#,
        src = dir.to_string_lossy(),
    );
    python(api, dir, &deploy).await.ok();
}

/// [`deploy_on_process_pool`], then starts a run with `prefect deployment run
/// <flow>/<deployment>`; returns the run's id.
///
/// # Panics
/// When a command fails (with its output).
#[allow(clippy::too_many_arguments)]
pub async fn deploy_and_run_on_process_pool(
    api: &str,
    dir: &Path,
    file: &str,
    code: &str,
    function: &str,
    flow: &str,
    deployment: &str,
    extra: &str,
) -> uuid::Uuid {
    deploy_on_process_pool(api, dir, file, code, function, deployment, extra).await;
    prefect(
        api,
        dir,
        &["deployment", "run", &format!("{flow}/{deployment}")],
    )
    .await
    .ok()
    .flow_run_id()
}
