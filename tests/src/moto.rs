//! A moto server (the AWS emulator, from the project's virtualenv) on a free loopback port,
//! stopped when dropped, with the AWS SDK configuration and the few fixtures the ECS tests
//! need.
//!
//! moto 5.2.5's ECS has known bugs (`reference/specs/REPORT-emulators.md`): a RunTask needs
//! container-level `memory` in the task definition (bug 1), an awsvpc subnet in a VPC with
//! DNS hostnames, such as the default VPC's (bug 2, see [`MotoServer::default_network`]),
//! and `securityGroups` in the network configuration (bug 3); it ignores `clientToken`
//! (bug 4). Task lifecycles and exit codes are synthetic there: use
//! [`crate::fake_ecs::FakeEcs`] for those.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;

use crate::tools::{free_port, venv_bin};

/// How long moto may take to answer after it was started.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The region every test client uses.
pub const TEST_REGION: &str = "us-east-1";

/// A running `moto_server`.
pub struct MotoServer {
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    child: Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl std::fmt::Debug for MotoServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MotoServer")
            .field("endpoint", &self.endpoint)
            .field("pid", &self.child.id())
            .finish()
    }
}

/// The default VPC of moto's `us-east-1`: its subnets (sorted) and `default` security group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefaultNetwork {
    /// The VPC id.
    pub vpc_id: String,
    /// Its subnet ids, sorted.
    pub subnet_ids: Vec<String>,
    /// Its `default` security group id.
    pub security_group_id: String,
}

impl MotoServer {
    /// Starts `moto_server -H 127.0.0.1 -p <free port>` from the virtualenv and waits until
    /// it answers `GET /moto-api/`.
    ///
    /// # Panics
    /// When moto is not installed (with the command that installs it), or does not answer
    /// within 30 s (with the end of its log).
    pub fn start() -> MotoServer {
        let bin = venv_bin("moto_server");
        let dir = tempfile::tempdir().expect("temporary directory for the moto log");
        let log = dir.path().join("moto.log");
        let out = std::fs::File::create(&log).expect("moto log file");
        let err = out.try_clone().expect("moto log file");
        let port = free_port();
        let child = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let mut server = MotoServer {
            endpoint: format!("http://127.0.0.1:{port}"),
            child,
            log,
            _dir: dir,
        };
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!(
                    "moto_server exited ({status}) before answering; its log ends with:\n{}",
                    server.log_tail()
                );
            }
            if answers(addr) {
                return server;
            }
            if Instant::now() > deadline {
                panic!(
                    "moto_server did not answer on {} within {START_TIMEOUT:?}; its log ends with:\n{}",
                    server.endpoint,
                    server.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The last 40 lines of moto's output.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// An `SdkConfig` for moto: `us-east-1`, static test credentials, this endpoint.
    pub async fn sdk_config(&self) -> SdkConfig {
        test_sdk_config(&self.endpoint).await
    }

    /// An ECS client of moto.
    pub async fn ecs(&self) -> aws_sdk_ecs::Client {
        aws_sdk_ecs::Client::new(&self.sdk_config().await)
    }

    /// An EC2 client of moto.
    pub async fn ec2(&self) -> aws_sdk_ec2::Client {
        aws_sdk_ec2::Client::new(&self.sdk_config().await)
    }

    /// Creates the ECS cluster `name`; returns its ARN.
    pub async fn create_cluster(&self, name: &str) -> String {
        let out = self
            .ecs()
            .await
            .create_cluster()
            .cluster_name(name)
            .send()
            .await
            .unwrap_or_else(|e| panic!("moto CreateCluster {name}: {e:?}"));
        out.cluster()
            .and_then(|c| c.cluster_arn())
            .expect("CreateCluster answers with the cluster ARN")
            .to_owned()
    }

    /// moto's default VPC, its subnets and its `default` security group. Its subnets are
    /// the ones moto can run awsvpc tasks in (bug 2: the VPC has DNS hostnames).
    pub async fn default_network(&self) -> DefaultNetwork {
        let ec2 = self.ec2().await;
        let vpcs = ec2
            .describe_vpcs()
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name("isDefault")
                    .values("true")
                    .build(),
            )
            .send()
            .await
            .expect("moto DescribeVpcs");
        let vpc_id = vpcs
            .vpcs()
            .first()
            .and_then(|v| v.vpc_id())
            .expect("moto has a default VPC")
            .to_owned();
        let subnets = ec2
            .describe_subnets()
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name("vpc-id")
                    .values(&vpc_id)
                    .build(),
            )
            .send()
            .await
            .expect("moto DescribeSubnets");
        let mut subnet_ids: Vec<String> = subnets
            .subnets()
            .iter()
            .filter_map(|s| s.subnet_id().map(str::to_owned))
            .collect();
        subnet_ids.sort();
        let groups = ec2
            .describe_security_groups()
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name("vpc-id")
                    .values(&vpc_id)
                    .build(),
            )
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name("group-name")
                    .values("default")
                    .build(),
            )
            .send()
            .await
            .expect("moto DescribeSecurityGroups");
        let security_group_id = groups
            .security_groups()
            .first()
            .and_then(|g| g.group_id())
            .expect("the default VPC has a default security group")
            .to_owned();
        DefaultNetwork {
            vpc_id,
            subnet_ids,
            security_group_id,
        }
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An `SdkConfig` for a local emulator at `endpoint`: `us-east-1`, static test credentials.
pub async fn test_sdk_config(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(TEST_REGION))
        .credentials_provider(Credentials::new(
            "testing",
            "testing",
            None,
            None,
            "pushpool-tests",
        ))
        .endpoint_url(endpoint)
        .load()
        .await
}

/// Whether something on `addr` answers `GET /moto-api/` with HTTP 200.
fn answers(addr: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(500)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = format!("GET /moto-api/ HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 16];
    let mut read = 0;
    while read < head.len() {
        match stream.read(&mut head[read..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => read += n,
        }
    }
    let head = String::from_utf8_lossy(&head[..read]);
    head.starts_with("HTTP/1.") && head.get(8..).unwrap_or("").trim_start().starts_with("200")
}
