//! The rendered ACI job configuration, read once into the container group that `submit`
//! creates ("parse, don't validate"): after [`AciJobConfig::parse`] only ARM can refuse.
//!
//! The container group is the first resource of the configuration's `arm_template`, turned
//! into a `ContainerGroups_CreateOrUpdate` body the way prefect-azure 0.4.13's
//! `AzureContainerJobConfiguration.prepare_for_flow_run` prepares it for its ARM deployment
//! (its first container is the flow's; `image`, `command` with `entrypoint` in front, the
//! environment, `image_registry`, `identities`, `subnet_ids` and `dns_servers` are put in),
//! minus what only an ARM *deployment* understands: the template's `type`, `apiVersion` and
//! `name` are dropped (the name is pushpool's own, see [`container_group_name`]), and the few
//! template expressions of Prefect's default template are evaluated ([`Resolved`]). Any other
//! template expression left in the body is refused by name: pushpool calls the Container
//! Instances API directly and evaluates no ARM template functions.

use serde_json::{Map, Value, json};

use super::limits::{self, CPU, MEMORY_GB, number};
use super::redact::Redactor;
use pushpool_providers::{Job, ProviderError};

/// The resource type of a container group in an ARM template.
const CONTAINER_GROUP_TYPE: &str = "Microsoft.ContainerInstance/containerGroups";

/// The container group resource's keys pushpool passes on (the rest of a `ContainerGroup`'s
/// top-level fields are read-only: `id`, `name`, `type`).
const BODY_KEYS: &[&str] = &["location", "identity", "properties", "tags", "zones"];

/// Keys of an ARM template resource that only a deployment uses: dropped.
const TEMPLATE_ONLY_KEYS: &[&str] = &["type", "apiVersion", "name", "comments", "dependsOn"];

/// Environment variables prefect-azure sends as `secureValue` (its `ENV_SECRETS`).
pub const PREFECT_ENV_SECRETS: &[&str] = &["PREFECT_API_KEY", "PREFECT_API_AUTH_STRING"];

/// Parts of a variable name that make pushpool send its value as `secureValue` too (ACI does
/// not show secure values in the container group's properties); matched case-insensitively.
pub const SECRET_NAME_PARTS: &[&str] = &[
    "SECRET",
    "PASSWORD",
    "PASSWD",
    "TOKEN",
    "API_KEY",
    "APIKEY",
    "ACCESS_KEY",
    "PRIVATE_KEY",
    "CREDENTIAL",
    "AUTH_STRING",
];

/// prefect-azure's default CPU and memory (`ACI_DEFAULT_CPU`, `ACI_DEFAULT_MEMORY`).
const DEFAULT_CPU: f64 = 1.0;
const DEFAULT_MEMORY_GB: f64 = 1.0;

/// The longest prefix of a container group name before `-<hash>`.
const NAME_PREFIX_MAX: usize = 54;

/// What a container group belongs to: subscription, resource group, name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Target {
    pub subscription_id: String,
    pub resource_group: String,
    pub name: String,
}

impl Target {
    /// `/subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.ContainerInstance/containerGroups/{name}`:
    /// the infrastructure pid.
    pub fn resource_id(&self) -> String {
        format!(
            "/subscriptions/{}/resourceGroups/{}/providers/{CONTAINER_GROUP_TYPE}/{}",
            self.subscription_id, self.resource_group, self.name
        )
    }

    /// `/subscriptions/{s}/resourcegroups/{rg}`: the resource group's own id.
    pub fn resource_group_id(&self) -> String {
        format!(
            "/subscriptions/{}/resourcegroups/{}",
            self.subscription_id, self.resource_group
        )
    }

    /// The target of an infrastructure pid ([`Target::resource_id`]; ARM's own casing of
    /// the segments is accepted too).
    ///
    /// # Errors
    /// Permanent when it is not a container group's resource id.
    pub fn from_resource_id(pid: &str) -> Result<Self, ProviderError> {
        let parts: Vec<&str> = pid.split('/').collect();
        let ok = parts.len() == 9
            && parts[0].is_empty()
            && parts[1].eq_ignore_ascii_case("subscriptions")
            && parts[3].eq_ignore_ascii_case("resourceGroups")
            && parts[5].eq_ignore_ascii_case("providers")
            && parts[6].eq_ignore_ascii_case("Microsoft.ContainerInstance")
            && parts[7].eq_ignore_ascii_case("containerGroups")
            && [2, 4, 8].iter().all(|&i| !parts[i].is_empty());
        if !ok {
            return Err(ProviderError::permanent(format!(
                "{pid:?} is not the resource id of an ACI container group \
                 (/subscriptions/{{s}}/resourceGroups/{{rg}}/providers/{CONTAINER_GROUP_TYPE}/{{name}})"
            )));
        }
        Ok(Self {
            subscription_id: parts[2].to_owned(),
            resource_group: parts[4].to_owned(),
            name: parts[8].to_owned(),
        })
    }
}

/// Where the container group's `location` comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Location {
    /// A literal location in the template.
    Given(String),
    /// `[resourceGroup().location]` (Prefect's default): the resource group's location.
    OfResourceGroup,
}

/// Everything `submit` needs, checked.
pub(super) struct AciJobConfig {
    pub target: Target,
    pub location: Location,
    /// The `ContainerGroups_CreateOrUpdate` body without `location`.
    pub body: Map<String, Value>,
    /// The flow's container's name.
    pub container_name: String,
    /// `keep_container_group`.
    pub keep_container_group: bool,
    /// The secrets of the body (secure values, registry passwords).
    pub redactor: Redactor,
}

/// A template string, evaluated as far as pushpool does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Resolved {
    /// A plain value (an ARM `[[` escape already undone).
    Literal(String),
    /// `[resourceGroup().location]`.
    ResourceGroupLocation,
    /// Any other template expression.
    Expression(String),
}

/// Evaluates `text`: a literal, `[resourceGroup().location]`, or `[parameters('p')]` whose
/// `defaultValue` in `parameters` is one of those.
pub(super) fn resolve(text: &str, parameters: Option<&Map<String, Value>>) -> Resolved {
    resolve_depth(text, parameters, 0)
}

fn resolve_depth(text: &str, parameters: Option<&Map<String, Value>>, depth: u8) -> Resolved {
    let trimmed = text.trim();
    if let Some(rest) = trimmed.strip_prefix("[[") {
        return Resolved::Literal(format!("[{rest}"));
    }
    if !(trimmed.starts_with('[') && trimmed.ends_with(']')) {
        return Resolved::Literal(text.to_owned());
    }
    let inner = trimmed[1..trimmed.len() - 1].trim();
    if inner.eq_ignore_ascii_case("resourceGroup().location") {
        return Resolved::ResourceGroupLocation;
    }
    let param = inner
        .strip_prefix("parameters('")
        .and_then(|r| r.strip_suffix("')"));
    if let (Some(name), Some(params), true) = (param, parameters, depth < 4) {
        if let Some(Value::String(default)) = params.get(name).and_then(|p| p.get("defaultValue")) {
            return resolve_depth(default, parameters, depth + 1);
        }
    }
    Resolved::Expression(text.to_owned())
}

/// The container group name of a job: its `name` (the flow run's name by default) as
/// lowercase letters, digits and single hyphens, at most 54 characters, then `-` and the
/// first 8 hex digits of SHA-256(idempotency key). Deterministic per submission, so a retried
/// submit addresses the same group; always within [`limits::CONTAINER_GROUP_NAME`].
pub fn container_group_name(name: &str, idempotency_key: &str) -> String {
    use sha2::Digest;
    let mut slug = String::new();
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            slug.push(c);
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    slug.truncate(NAME_PREFIX_MAX);
    let slug = slug.trim_matches('-');
    let slug = if slug.is_empty() { "prefect" } else { slug };
    let digest = sha2::Sha256::digest(idempotency_key.as_bytes());
    let hash: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
    format!("{slug}-{hash}")
}

/// Whether an environment variable's value goes out as `secureValue`.
pub fn is_secret_env(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    PREFECT_ENV_SECRETS.contains(&upper.as_str())
        || SECRET_NAME_PARTS.iter().any(|p| upper.contains(p))
}

/// A required non-empty string of the configuration.
fn required_str(cfg: &Map<String, Value>, key: &str) -> Result<String, ProviderError> {
    match cfg.get(key) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.trim().to_owned()),
        None | Some(Value::Null) => Err(ProviderError::invalid(key, "is required")),
        Some(Value::String(_)) => Err(ProviderError::invalid(key, "must not be empty")),
        Some(_) => Err(ProviderError::invalid(key, "must be a string")),
    }
}

/// An optional list of non-empty strings.
fn str_list(cfg: &Map<String, Value>, key: &str) -> Result<Vec<String>, ProviderError> {
    match cfg.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| match v {
                Value::String(s) if !s.trim().is_empty() => Ok(s.trim().to_owned()),
                _ => Err(ProviderError::invalid(
                    format!("{key}[{i}]"),
                    "must be a non-empty string",
                )),
            })
            .collect(),
        Some(_) => Err(ProviderError::invalid(key, "must be a list of strings")),
    }
}

impl AciJobConfig {
    /// Reads and checks the job configuration.
    ///
    /// # Errors
    /// [`ProviderError::InvalidConfiguration`] naming the field (a dotted path of the job
    /// configuration, `arm_template.resources[0]...` inside the template).
    pub fn parse(job: &Job) -> Result<Self, ProviderError> {
        let cfg = &job.configuration;
        let subscription_id = required_str(cfg, "subscription_id")?;
        limits::check_subscription_id("subscription_id", &subscription_id)?;
        let resource_group = required_str(cfg, "resource_group_name")?;
        limits::check_resource_group_name("resource_group_name", &resource_group)?;
        let image = required_str(cfg, "image")?;
        let name = job
            .str_field("name")
            .map_or_else(|| job.flow_run_name.clone(), str::to_owned);
        let target = Target {
            subscription_id,
            resource_group,
            name: container_group_name(&name, &job.idempotency_key),
        };

        let keep_container_group = match cfg.get("keep_container_group") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                return Err(ProviderError::invalid(
                    "keep_container_group",
                    "must be true or false",
                ));
            }
        };

        let template = match cfg.get("arm_template") {
            Some(Value::Object(t)) => t,
            None | Some(Value::Null) => {
                return Err(ProviderError::invalid("arm_template", "is required"));
            }
            Some(_) => {
                return Err(ProviderError::invalid(
                    "arm_template",
                    "must be an ARM template (an object)",
                ));
            }
        };
        let parameters = template.get("parameters").and_then(Value::as_object);
        let resources = match template.get("resources") {
            Some(Value::Array(r)) if !r.is_empty() => r,
            _ => {
                return Err(ProviderError::invalid(
                    "arm_template.resources",
                    "must list the container group resource",
                ));
            }
        };
        if resources.len() > 1 {
            return Err(ProviderError::invalid(
                "arm_template.resources",
                "pushpool creates the container group only: an ARM template with other resources needs an ARM deployment",
            ));
        }
        const R: &str = "arm_template.resources[0]";
        let Some(resource) = resources[0].as_object() else {
            return Err(ProviderError::invalid(R, "must be an object"));
        };
        if let Some(t) = resource.get("type") {
            if !t
                .as_str()
                .is_some_and(|t| t.eq_ignore_ascii_case(CONTAINER_GROUP_TYPE))
            {
                return Err(ProviderError::invalid(
                    format!("{R}.type"),
                    format!("must be {CONTAINER_GROUP_TYPE}"),
                ));
            }
        }
        let mut body = Map::new();
        let mut location = Location::OfResourceGroup;
        for (key, value) in resource {
            if TEMPLATE_ONLY_KEYS.contains(&key.as_str()) {
                continue;
            }
            if !BODY_KEYS.contains(&key.as_str()) {
                return Err(ProviderError::invalid(
                    format!("{R}.{key}"),
                    "is not a field of a container group that pushpool passes on",
                ));
            }
            if key == "location" {
                let Some(text) = value.as_str() else {
                    return Err(ProviderError::invalid(
                        format!("{R}.location"),
                        "must be a string",
                    ));
                };
                location = match resolve(text, parameters) {
                    Resolved::Literal(l) if !l.trim().is_empty() => Location::Given(l),
                    Resolved::Literal(_) | Resolved::ResourceGroupLocation => {
                        Location::OfResourceGroup
                    }
                    Resolved::Expression(e) => {
                        return Err(ProviderError::invalid(
                            format!("{R}.location"),
                            format!(
                                "the template expression {e:?} is not evaluated by pushpool: use a location or \
                                 [resourceGroup().location]"
                            ),
                        ));
                    }
                };
                continue;
            }
            body.insert(key.clone(), value.clone());
        }

        let Some(Value::Object(properties)) = body.get_mut("properties") else {
            return Err(ProviderError::invalid(
                format!("{R}.properties"),
                "must be an object",
            ));
        };
        let p_path = format!("{R}.properties");
        let containers = match properties.get_mut("containers") {
            Some(Value::Array(c)) if !c.is_empty() => c,
            _ => {
                return Err(ProviderError::invalid(
                    format!("{p_path}.containers"),
                    "must list the flow's container",
                ));
            }
        };
        let c_path = format!("{p_path}.containers[0]");
        let Some(container) = containers[0].as_object_mut() else {
            return Err(ProviderError::invalid(c_path, "must be an object"));
        };
        let container_name = match container.get("name") {
            None | Some(Value::Null) => target.name.clone(),
            Some(Value::String(n)) => match resolve(n, parameters) {
                Resolved::Literal(n) if !n.trim().is_empty() => n,
                // prefect-azure's default `[uniqueString(resourceGroup().id)]`: the group's name.
                _ => target.name.clone(),
            },
            Some(_) => {
                return Err(ProviderError::invalid(
                    format!("{c_path}.name"),
                    "must be a string",
                ));
            }
        };
        container.insert("name".into(), json!(container_name));
        let props = container.entry("properties").or_insert_with(|| json!({}));
        let Some(props) = props.as_object_mut() else {
            return Err(ProviderError::invalid(
                format!("{c_path}.properties"),
                "must be an object",
            ));
        };
        props.insert("image".into(), json!(image));

        let mut command = job.command_args()?;
        match cfg.get("entrypoint") {
            None | Some(Value::Null) => {}
            Some(Value::String(e)) if e.trim().is_empty() => {}
            Some(Value::String(e)) => command.insert(0, e.trim().to_owned()),
            Some(_) => return Err(ProviderError::invalid("entrypoint", "must be a string")),
        }
        props.insert("command".into(), json!(command));

        let mut redactor = Redactor::default();
        let env: Vec<Value> = job
            .env()
            .into_iter()
            .map(|(k, v)| {
                if is_secret_env(&k) {
                    redactor.add(&v);
                    json!({"name": k, "secureValue": v})
                } else {
                    json!({"name": k, "value": v})
                }
            })
            .collect();
        props.insert("environmentVariables".into(), Value::Array(env));

        let resources = props.entry("resources").or_insert_with(|| json!({}));
        let Some(resources) = resources.as_object_mut() else {
            return Err(ProviderError::invalid(
                format!("{c_path}.properties.resources"),
                "must be an object",
            ));
        };
        let requests = resources.entry("requests").or_insert_with(|| json!({}));
        let Some(requests) = requests.as_object_mut() else {
            return Err(ProviderError::invalid(
                format!("{c_path}.properties.resources.requests"),
                "must be an object",
            ));
        };
        for (wire, variable, default, limit) in [
            ("cpu", "cpu", DEFAULT_CPU, &CPU),
            ("memoryInGB", "memory", DEFAULT_MEMORY_GB, &MEMORY_GB),
        ] {
            let (field, value) = match requests.get(wire).filter(|v| !v.is_null()) {
                Some(v) => {
                    let field = format!("{c_path}.properties.resources.requests.{wire}");
                    let n = number(&field, v)?;
                    (field, n)
                }
                None => match cfg.get(variable).filter(|v| !v.is_null()) {
                    Some(v) => (variable.to_owned(), number(variable, v)?),
                    None => (variable.to_owned(), default),
                },
            };
            limits::check_number(&field, value, limit)?;
            requests.insert(wire.into(), json!(value));
        }
        // `gpu_count`/`gpu_sku` → `resources.requests.gpu` (GpuResource: count and sku, both
        // required); a template that writes `gpu` itself keeps it.
        if let Some((count, sku)) = limits::check_gpu(cfg.get("gpu_count"), cfg.get("gpu_sku"))? {
            requests.insert("gpu".into(), json!({"count": count, "sku": sku}));
        }

        properties.entry("osType").or_insert_with(|| json!("Linux"));
        properties
            .entry("restartPolicy")
            .or_insert_with(|| json!("Never"));
        if let Some(credentials) = image_registry(cfg, &mut redactor)? {
            properties.insert("imageRegistryCredentials".into(), json!([credentials]));
        }
        let subnets = str_list(cfg, "subnet_ids")?;
        if !subnets.is_empty() {
            let ids: Vec<Value> = subnets.iter().map(|id| json!({"id": id})).collect();
            properties.insert("subnetIds".into(), Value::Array(ids));
        }
        let dns = str_list(cfg, "dns_servers")?;
        if !dns.is_empty() {
            properties.insert("dnsConfig".into(), json!({"nameServers": dns}));
        }
        let identities = str_list(cfg, "identities")?;
        if !identities.is_empty() {
            let map: Map<String, Value> =
                identities.into_iter().map(|id| (id, json!({}))).collect();
            body.insert(
                "identity".into(),
                json!({"type": "UserAssigned", "userAssignedIdentities": map}),
            );
        }

        let mut problems = Vec::new();
        unescape_and_find_expressions(&mut body, R, &mut problems);
        if let Some((path, expr)) = problems.into_iter().next() {
            return Err(ProviderError::invalid(
                path,
                format!(
                    "the template expression {expr:?} is not evaluated by pushpool (it calls the Container \
                     Instances API directly, not an ARM deployment): put the value itself in the template"
                ),
            ));
        }

        Ok(Self {
            target,
            location,
            body,
            container_name,
            keep_container_group,
            redactor,
        })
    }
}

/// `image_registry` → one `ImageRegistryCredential`: prefect-azure's `ACRManagedIdentity`
/// (`registry_url`, `identity`) → `{server, identity}`, its `DockerRegistryCredentials`
/// (`registry_url`, `username`, `password`) → `{server, username, password}`.
fn image_registry(
    cfg: &Map<String, Value>,
    redactor: &mut Redactor,
) -> Result<Option<Value>, ProviderError> {
    let registry = match cfg.get("image_registry") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(r)) => r,
        Some(_) => {
            return Err(ProviderError::invalid(
                "image_registry",
                "must be an ACRManagedIdentity or a DockerRegistryCredentials block",
            ));
        }
    };
    let get = |key: &str| -> Result<Option<String>, ProviderError> {
        match registry.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Value::String(s)) if s == "********" => Err(ProviderError::invalid(
                format!("image_registry.{key}"),
                "is Prefect's obfuscation mask, not the value: the block was read without its secrets",
            )),
            Some(Value::String(s)) => Ok(Some(s.trim().to_owned())),
            Some(_) => Err(ProviderError::invalid(
                format!("image_registry.{key}"),
                "must be a string",
            )),
        }
    };
    let server = get("registry_url")?
        .ok_or_else(|| ProviderError::invalid("image_registry.registry_url", "is required"))?;
    if let Some(identity) = get("identity")? {
        return Ok(Some(json!({"server": server, "identity": identity})));
    }
    let username = get("username")?
        .ok_or_else(|| ProviderError::invalid("image_registry.username", "is required"))?;
    let password = get("password")?
        .ok_or_else(|| ProviderError::invalid("image_registry.password", "is required"))?;
    redactor.add(&password);
    Ok(Some(
        json!({"server": server, "username": username, "password": password}),
    ))
}

/// Undoes ARM's `[[` escapes in every string of `value` and collects the template
/// expressions left (`(path, expression)`).
fn unescape_and_find_expressions(
    value: &mut Map<String, Value>,
    path: &str,
    found: &mut Vec<(String, String)>,
) {
    for (key, v) in value.iter_mut() {
        walk(v, &format!("{path}.{key}"), found);
    }
}

fn walk(value: &mut Value, path: &str, found: &mut Vec<(String, String)>) {
    match value {
        Value::String(s) => match resolve(s, None) {
            Resolved::Literal(l) => *s = l,
            Resolved::ResourceGroupLocation | Resolved::Expression(_) => {
                found.push((path.to_owned(), s.clone()));
            }
        },
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                walk(item, &format!("{path}[{i}]"), found);
            }
        }
        Value::Object(map) => unescape_and_find_expressions(map, path, found),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::{check_variables, ignored_variables};

    #[test]
    fn names_are_deterministic_and_within_the_rule() {
        let a = container_group_name("elegant-caribou", "pushpool-x-1");
        assert_eq!(a, container_group_name("elegant-caribou", "pushpool-x-1"));
        assert_ne!(a, container_group_name("elegant-caribou", "pushpool-x-2"));
        assert!(a.starts_with("elegant-caribou-") && a.len() == "elegant-caribou-".len() + 8);
        for name in [
            "Elegant Caribou!!",
            "---",
            "",
            "Ünïcode__name--x",
            &"x-".repeat(100),
            &"a".repeat(200),
        ] {
            let n = container_group_name(name, "k");
            limits::check_container_group_name("name", &n).unwrap();
        }
        assert!(container_group_name("---", "k").starts_with("prefect-"));
        assert!(container_group_name("Elegant Caribou!!", "k").starts_with("elegant-caribou-"));
    }

    #[test]
    fn secret_looking_variables() {
        for s in [
            "PREFECT_API_KEY",
            "PREFECT_API_AUTH_STRING",
            "db_password",
            "MY_TOKEN",
            "AWS_SECRET_ACCESS_KEY",
        ] {
            assert!(is_secret_env(s), "{s}");
        }
        for s in [
            "PREFECT_API_URL",
            "PREFECT__FLOW_RUN_ID",
            "KEYBOARD",
            "PATH",
        ] {
            assert!(!is_secret_env(s), "{s}");
        }
    }

    #[test]
    fn template_expressions() {
        let params = json!({
            "location": {"defaultValue": "[resourceGroup().location]"},
            "fixed": {"defaultValue": "westeurope"},
            "cg": {"defaultValue": "[uniqueString(resourceGroup().id)]"},
        });
        let params = params.as_object();
        assert_eq!(
            resolve("[parameters('location')]", params),
            Resolved::ResourceGroupLocation
        );
        assert_eq!(
            resolve("[parameters('fixed')]", params),
            Resolved::Literal("westeurope".into())
        );
        assert_eq!(
            resolve("[parameters('cg')]", params),
            Resolved::Expression("[uniqueString(resourceGroup().id)]".into())
        );
        assert_eq!(
            resolve("[[literal]", params),
            Resolved::Literal("[literal]".into())
        );
        assert_eq!(
            resolve("eastus", params),
            Resolved::Literal("eastus".into())
        );
    }

    #[test]
    fn resource_ids_round_trip() {
        let t = Target {
            subscription_id: "00000000-0000-0000-0000-000000000000".into(),
            resource_group: "rg".into(),
            name: "cg-1".into(),
        };
        let id = t.resource_id();
        assert_eq!(
            id,
            "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.ContainerInstance/containerGroups/cg-1"
        );
        assert_eq!(Target::from_resource_id(&id).unwrap(), t);
        assert_eq!(
            Target::from_resource_id(&id.replace("resourceGroups", "resourcegroups")).unwrap(),
            t
        );
        assert!(Target::from_resource_id("arn:aws:ecs:x").is_err());
    }

    #[test]
    fn variables_are_checked_by_name() {
        let check = |v: Value| check_variables(v.as_object().unwrap());
        check(json!({"cpu": 1.0, "memory": 1.5, "subscription_id": null})).unwrap();
        check(json!({})).unwrap();
        for (vars, field) in [
            (json!({"cpu": 8}), "cpu"),
            (json!({"cpu": "lots"}), "cpu"),
            (json!({"memory": 0}), "memory"),
            (json!({"memory": 32.0}), "memory"),
            (json!({"subscription_id": "sub"}), "subscription_id"),
            (json!({"resource_group_name": "rg."}), "resource_group_name"),
        ] {
            match check(vars) {
                Err(ProviderError::InvalidConfiguration { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn worker_only_variables_are_reported_when_changed() {
        let ignored = |v: Value| -> Vec<String> {
            ignored_variables(v.as_object().unwrap())
                .iter()
                .map(ToString::to_string)
                .collect()
        };
        assert_eq!(
            ignored(
                json!({"stream_output": false, "task_start_timeout_seconds": 240,
                "task_watch_poll_interval": 5.0})
            ),
            Vec::<String>::new()
        );
        assert_eq!(
            ignored(
                json!({"stream_output": true, "task_start_timeout_seconds": 600,
                "task_watch_poll_interval": 1})
            ),
            vec![
                "Job variable stream_output is ignored: pushpool runs no worker to stream the \
                 container's output: read it in ACI (az container logs) or in the flow run's \
                 Prefect logs.",
                "Job variables task_start_timeout_seconds and task_watch_poll_interval are \
                 ignored: pushpool waits for the container group's creation for a fixed bound \
                 and then follows it with its reconciler, not with a worker's polling."
            ]
        );
    }

    #[test]
    fn gpu_variables_are_checked_together() {
        let check = |v: Value| check_variables(v.as_object().unwrap());
        check(json!({"gpu_count": 1, "gpu_sku": "V100"})).unwrap();
        check(json!({"gpu_count": 4, "gpu_sku": "K80"})).unwrap();
        check(json!({"gpu_count": null, "gpu_sku": null})).unwrap();
        check(json!({"gpu_count": 0})).unwrap();
        let cases = [
            (
                json!({"gpu_count": 1}),
                "invalid job configuration: gpu_sku: gpu_count asks for GPUs but gpu_sku names none: \
                 set gpu_sku to one of K80, P100, V100",
            ),
            (
                json!({"gpu_sku": "V100"}),
                "invalid job configuration: gpu_count: gpu_sku is set but gpu_count is not: set \
                 gpu_count to 1, 2 or 4, or remove gpu_sku",
            ),
            (
                json!({"gpu_count": 3, "gpu_sku": "V100"}),
                "invalid job configuration: gpu_count: 3 is not a GPU count ACI accepts: 1, 2 or 4 \
                 (Azure docs, Deploy container instances that use GPU resources \
                 (articles/container-instances/container-instances-gpu.md), Preview limitations: \
                 \"Count - The number of GPUs: 1, 2, or 4\")",
            ),
            (
                json!({"gpu_count": 1, "gpu_sku": "A100"}),
                "invalid job configuration: gpu_sku: \"A100\" is not a GPU SKU of the Container \
                 Instances API 2023-05-01: one of K80, P100, V100",
            ),
        ];
        for (vars, expected) in cases {
            assert_eq!(check(vars).unwrap_err().to_string(), expected);
        }
    }
}
