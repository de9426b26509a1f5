//! The work pool types pushpool submits itself, with their default base job templates and
//! the entry each gets in `GET /collections/views/aggregate-worker-metadata` (the view the
//! `prefect` CLI reads to accept `--type ecs:push` and to fetch the default template; its shape
//! follows the OSS server's bundled view, `{collection: {worker_type: {...}}}`).

use serde_json::{Value, json};

/// A pool type pushpool knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolType {
    /// Type string (`ecs:push`).
    pub name: &'static str,
    /// Collection it is listed under (`prefect-aws`).
    pub collection: &'static str,
    /// Display name.
    pub display_name: &'static str,
    /// One-line description.
    pub description: &'static str,
    /// Documentation URL.
    pub documentation_url: &'static str,
    /// Logo URL.
    pub logo_url: &'static str,
    /// The default base job template, as JSON text.
    template: &'static str,
}

/// Every supported pool type.
pub const POOL_TYPES: &[PoolType] = &[
    PoolType {
        name: "ecs:push",
        collection: "prefect-aws",
        display_name: "AWS Elastic Container Service - Push",
        description: "Execute flow runs within containers on AWS ECS, submitted by pushpool without a worker.",
        documentation_url: "https://docs.prefect.io/integrations/prefect-aws/ecs_guide",
        logo_url: "https://cdn.sanity.io/images/3ugk85nk/production/d74b16fe84ce626345adf235a47008fea2869a60-225x225.png",
        template: include_str!("../templates/ecs-push.json"),
    },
    PoolType {
        name: "cloud-run-v2:push",
        collection: "prefect-gcp",
        display_name: "Google Cloud Run V2 - Push",
        description: "Execute flow runs within containers on Google Cloud Run (V2 API), submitted by pushpool without a worker.",
        documentation_url: "https://docs.prefect.io/integrations/prefect-gcp",
        logo_url: "https://cdn.sanity.io/images/3ugk85nk/production/10424e311932e31c477ac2b9ef3d53cefbaad708-250x250.png",
        template: include_str!("../templates/cloud-run-v2-push.json"),
    },
    PoolType {
        name: "azure-container-instance:push",
        collection: "prefect-azure",
        display_name: "Azure Container Instances - Push",
        description: "Execute flow runs within containers on Azure Container Instances, submitted by pushpool without a worker.",
        documentation_url: "https://docs.prefect.io/integrations/prefect-azure",
        logo_url: "https://cdn.sanity.io/images/3ugk85nk/production/54e3fa7e00197a4fbd1d82ed62494cb58d08c96a-250x250.png",
        template: include_str!("../templates/azure-container-instance-push.json"),
    },
    PoolType {
        name: "process",
        collection: "prefect",
        display_name: "Process",
        description: "Execute flow runs as subprocesses of the pushpool server itself.",
        documentation_url: "https://docs.prefect.io/latest/get-started/quickstart",
        logo_url: "https://cdn.sanity.io/images/3ugk85nk/production/356e6766a91baf20e1d08bbe16e8b5aaef4d8643-48x48.png",
        template: include_str!("../templates/process.json"),
    },
];

/// Looks a pool type up by name.
pub fn pool_type(name: &str) -> Option<&'static PoolType> {
    POOL_TYPES.iter().find(|t| t.name == name)
}

impl PoolType {
    /// The default base job template `{job_configuration, variables}`.
    pub fn default_base_job_template(&self) -> Value {
        // The templates are checked-in JSON, parsed by a unit test; an empty object is the
        // harmless fallback (an empty template renders an empty configuration).
        serde_json::from_str(self.template).unwrap_or_else(|_| json!({}))
    }
}

/// The body of `GET /collections/views/aggregate-worker-metadata`.
pub fn aggregate_worker_metadata() -> Value {
    let mut view = serde_json::Map::new();
    for t in POOL_TYPES {
        let entry = json!({
            "type": t.name,
            "display_name": t.display_name,
            "description": t.description,
            "documentation_url": t.documentation_url,
            "install_command": "",
            "is_beta": false,
            "logo_url": t.logo_url,
            "default_base_job_configuration": t.default_base_job_template(),
        });
        let collection = view
            .entry(t.collection.to_owned())
            .or_insert_with(|| json!({}));
        if let Some(c) = collection.as_object_mut() {
            c.insert(t.name.to_owned(), entry);
        }
    }
    Value::Object(view)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_parses_into_configuration_and_variables() {
        for t in POOL_TYPES {
            let v: Value = serde_json::from_str(t.template).expect(t.name);
            assert!(v["job_configuration"].is_object(), "{}", t.name);
            assert_eq!(v["variables"]["type"], "object", "{}", t.name);
        }
    }

    #[test]
    fn view_lists_push_types_under_their_collections() {
        let view = aggregate_worker_metadata();
        assert_eq!(view["prefect-aws"]["ecs:push"]["type"], "ecs:push");
        assert_eq!(
            view["prefect-gcp"]["cloud-run-v2:push"]["default_base_job_configuration"]["variables"]
                ["properties"]["region"]["default"],
            "us-central1"
        );
        assert!(view["prefect-azure"]["azure-container-instance:push"].is_object());
        assert_eq!(
            view["prefect"]["process"]["default_base_job_configuration"]["job_configuration"]["command"],
            "{{ command }}"
        );
    }
}
