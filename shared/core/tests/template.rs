//! Base job template rendering and job-variable validation against the real
//! Prefect templates recorded in `tests/fixtures/` (see its README).

use pushpool_core::template::{
    BaseJobTemplate, TemplateError, block_document_refs, merge_job_variables, render,
    resolve_block_document_refs,
};
use serde_json::{Map, Value, json};
use uuid::Uuid;

const DEFAULT_ECS: &str = include_str!("fixtures/default-ecs.json");
const DEFAULT_CLOUD_RUN_V2: &str = include_str!("fixtures/default-cloud-run-v2.json");
const DEFAULT_ACI: &str = include_str!("fixtures/default-azure-container-instance.json");
const STORED_ECS_POOL: &str =
    include_str!("fixtures/stored-push-pool-ecs-with-credentials-ref.json");

fn parse_json(text: &str) -> Value {
    serde_json::from_str(text).expect("fixture is valid JSON")
}

fn template(text: &str) -> BaseJobTemplate {
    BaseJobTemplate::parse(&parse_json(text)).expect("fixture template parses")
}

fn map(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("expected an object, got {other}"),
    }
}

fn keys(map: &Map<String, Value>) -> Vec<&str> {
    map.keys().map(String::as_str).collect()
}

fn invalid(field: &str, message: &str) -> Result<(), TemplateError> {
    Err(TemplateError::InvalidJobVariables {
        field: field.to_owned(),
        message: message.to_owned(),
    })
}

#[test]
fn ecs_defaults_render_exactly() {
    let ecs = template(DEFAULT_ECS);
    let values = merge_job_variables(&[&ecs.defaults()]);
    let rendered = render(ecs.job_configuration(), &values);

    assert_eq!(
        Value::Object(rendered.clone()),
        json!({
            "task_definition": {
                "containerDefinitions": [{}]
            },
            "task_run_request": {
                "launchType": "FARGATE",
                "overrides": {
                    "containerOverrides": [{}]
                }
            },
            "stream_output": false,
            "task_start_timeout_seconds": 0,
            "task_watch_poll_interval": 0,
            "auto_deregister_task_definition": false,
            "match_latest_revision_in_family": false
        })
    );
    // The template's key order is kept.
    assert_eq!(
        keys(&rendered),
        [
            "task_definition",
            "task_run_request",
            "stream_output",
            "task_start_timeout_seconds",
            "task_watch_poll_interval",
            "auto_deregister_task_definition",
            "match_latest_revision_in_family"
        ]
    );
}

#[test]
fn ecs_defaults_are_the_schema_defaults() {
    let ecs = template(DEFAULT_ECS);
    assert_eq!(
        Value::Object(ecs.defaults()),
        json!({
            "name": null,
            "command": null,
            "task_definition_arn": null,
            "cluster": null,
            "family": null,
            "launch_type": "FARGATE",
            "image": null,
            "cpu": null,
            "memory": null,
            "container_name": null,
            "prefect_api_key_secret_arn": null,
            "prefect_api_auth_string_secret_arn": null,
            "task_role_arn": null,
            "execution_role_arn": null,
            "vpc_id": null,
            "configure_cloudwatch_logs": null,
            "cloudwatch_logs_prefix": null,
            "auto_deregister_task_definition": false,
            "match_latest_revision_in_family": false
        })
    );
}

#[test]
fn ecs_deployment_and_flow_run_variables_render_exactly() {
    let ecs = template(DEFAULT_ECS);
    let deployment = map(json!({
        "image": "prefecthq/prefect:3-latest",
        "cpu": 1024,
        "memory": 2048,
        "env": {"A": "dep", "B": "dep"},
        "cluster": "my-cluster"
    }));
    let flow_run = map(json!({"env": {"B": "run", "C": "run"}, "memory": 4096}));

    assert_eq!(ecs.validate(&deployment), Ok(()));
    let explicit = merge_job_variables(&[&deployment, &flow_run]);
    assert_eq!(ecs.validate(&explicit), Ok(()));

    let values = merge_job_variables(&[&ecs.defaults(), &deployment, &flow_run]);
    let rendered = render(ecs.job_configuration(), &values);
    assert_eq!(
        Value::Object(rendered.clone()),
        json!({
            "env": {"A": "dep", "B": "run", "C": "run"},
            "task_definition": {
                "containerDefinitions": [
                    {"image": "prefecthq/prefect:3-latest"}
                ],
                "cpu": 1024,
                "memory": 4096
            },
            "task_run_request": {
                "cluster": "my-cluster",
                "launchType": "FARGATE",
                "overrides": {
                    "containerOverrides": [
                        {
                            "cpu": 1024,
                            "environment": {"A": "dep", "B": "run", "C": "run"},
                            "memory": 4096
                        }
                    ],
                    "cpu": 1024,
                    "memory": 4096
                }
            },
            "stream_output": false,
            "task_start_timeout_seconds": 0,
            "task_watch_poll_interval": 0,
            "auto_deregister_task_definition": false,
            "cluster": "my-cluster",
            "match_latest_revision_in_family": false
        })
    );
    assert_eq!(
        keys(&rendered),
        [
            "env",
            "task_definition",
            "task_run_request",
            "stream_output",
            "task_start_timeout_seconds",
            "task_watch_poll_interval",
            "auto_deregister_task_definition",
            "cluster",
            "match_latest_revision_in_family"
        ]
    );
    // The env object keeps merge order: deployment keys first, then new flow run keys.
    assert_eq!(
        serde_json::to_string(&rendered["env"]).expect("serializes"),
        r#"{"A":"dep","B":"run","C":"run"}"#
    );
}

#[test]
fn interpolation_type_preservation_and_array_removal() {
    let job_configuration = map(json!({
        "arn": "arn:aws:{{ region }}:x",
        "arn_missing": "arn:aws:{{ missing }}:x",
        "text": "cpu={{ cpu }} spot={{ spot }} tags={{ tags }} obj={{ obj }}",
        "object": "{{ obj }}",
        "number": "{{ cpu }}",
        "float": "{{ ratio }}",
        "bool": "{{ spot }}",
        "list": "{{ tags }}",
        "string": "{{ region }}",
        "gone": "{{ missing }}",
        "gone_null": "{{ nothing }}",
        "literal_null": null,
        "literal_number": 5,
        "array": ["{{ region }}", "{{ missing }}", "{{ nothing }}", {"k": "{{ missing }}"}, "{{ tags }}"],
        "nested": {"deeper": {"value": "{{ obj.a }}", "gone": "{{ obj.missing }}"}}
    }));
    let values = map(json!({
        "region": "us-east-1",
        "cpu": 1024,
        "ratio": 0.5,
        "spot": true,
        "tags": ["a", "b"],
        "obj": {"a": 1, "b": {"c": "d"}},
        "nothing": null
    }));
    assert_eq!(
        Value::Object(render(&job_configuration, &values)),
        json!({
            "arn": "arn:aws:us-east-1:x",
            "arn_missing": "arn:aws::x",
            "text": "cpu=1024 spot=true tags=[\"a\",\"b\"] obj={\"a\":1,\"b\":{\"c\":\"d\"}}",
            "object": {"a": 1, "b": {"c": "d"}},
            "number": 1024,
            "float": 0.5,
            "bool": true,
            "list": ["a", "b"],
            "string": "us-east-1",
            "literal_null": null,
            "literal_number": 5,
            "array": ["us-east-1", {}, ["a", "b"]],
            "nested": {"deeper": {"value": 1}}
        })
    );
}

#[test]
fn stored_ecs_pool_credentials_ref_is_resolved_then_rendered() {
    let pool = parse_json(STORED_ECS_POOL);
    let ecs = BaseJobTemplate::parse(&pool["base_job_template"]).expect("template parses");
    let block_id = Uuid::parse_str("9d37d1d6-208d-4a24-bf56-84fc39a37928").expect("uuid");

    let mut values = merge_job_variables(&[&ecs.defaults()]);
    assert_eq!(
        values["aws_credentials"],
        json!({"$ref": {"block_document_id": "9d37d1d6-208d-4a24-bf56-84fc39a37928"}})
    );
    assert_eq!(block_document_refs(&values), vec![block_id]);

    // The reference default is valid as a job variable too (it is resolved later).
    let explicit = map(json!({"aws_credentials": values["aws_credentials"].clone()}));
    assert_eq!(ecs.validate(&explicit), Ok(()));

    let mut requested = Vec::new();
    let resolved: Result<(), String> = resolve_block_document_refs(&mut values, |id| {
        requested.push(id);
        Ok(json!({"aws_access_key_id": "AKIA...", "region_name": "us-east-1"}))
    });
    assert_eq!(resolved, Ok(()));
    assert_eq!(requested, vec![block_id]);
    assert_eq!(block_document_refs(&values), Vec::<Uuid>::new());

    let rendered = render(ecs.job_configuration(), &values);
    assert_eq!(
        Value::Object(rendered.clone()),
        json!({
            "aws_credentials": {"aws_access_key_id": "AKIA...", "region_name": "us-east-1"},
            "task_definition": {
                "containerDefinitions": [{}]
            },
            "task_run_request": {
                "launchType": "FARGATE",
                "overrides": {
                    "containerOverrides": [{}]
                }
            },
            "stream_output": false,
            "task_start_timeout_seconds": 0,
            "task_watch_poll_interval": 0,
            "auto_deregister_task_definition": false,
            "match_latest_revision_in_family": false
        })
    );
    assert_eq!(keys(&rendered)[0], "aws_credentials");
}

#[test]
fn resolve_error_is_propagated() {
    let pool = parse_json(STORED_ECS_POOL);
    let ecs = BaseJobTemplate::parse(&pool["base_job_template"]).expect("template parses");
    let mut values = ecs.defaults();
    let result = resolve_block_document_refs(&mut values, |id| {
        Err::<Value, _>(format!("block document {id} not found"))
    });
    assert_eq!(
        result,
        Err("block document 9d37d1d6-208d-4a24-bf56-84fc39a37928 not found".to_owned())
    );
}

#[test]
fn ecs_job_variable_validation() {
    let ecs = template(DEFAULT_ECS);
    let check = |value: Value| ecs.validate(&map(value));

    assert_eq!(
        check(json!({"cpu": "abc"})),
        invalid(
            "job_variables.cpu",
            r#""abc" is not of type "integer" or "null""#
        )
    );
    assert_eq!(
        check(json!({"launch_type": "BOGUS"})),
        invalid(
            "job_variables.launch_type",
            r#""BOGUS" is not one of "FARGATE", "EC2" or 2 other candidates"#
        )
    );
    assert_eq!(
        check(json!({"env": {"FOO": 1}})),
        invalid(
            "job_variables.env.FOO",
            "1 is not valid under any of the schemas listed in the 'anyOf' keyword"
        )
    );
    assert_eq!(
        check(json!({"labels": {"team": 7}})),
        invalid("job_variables.labels.team", r#"7 is not of type "string""#)
    );
    // `#/definitions/...` references resolve, nested `required` is kept.
    assert_eq!(
        check(json!({"capacity_provider_strategy": [{"capacityProvider": "FARGATE_SPOT"}]})),
        invalid(
            "job_variables.capacity_provider_strategy.0",
            r#""weight" is a required property"#
        )
    );
    assert_eq!(
        check(json!({"aws_credentials": {"region_name": 1}})),
        invalid(
            "job_variables.aws_credentials.region_name",
            "1 is not valid under any of the schemas listed in the 'anyOf' keyword"
        )
    );

    // Valid variables.
    assert_eq!(check(json!({})), Ok(()));
    assert_eq!(
        check(json!({
            "image": "prefecthq/prefect:3-latest",
            "cpu": 1024,
            "memory": null,
            "launch_type": "FARGATE_SPOT",
            "env": {"A": "x", "B": null},
            "labels": {"team": "data"},
            "capacity_provider_strategy": [
                {"capacityProvider": "FARGATE_SPOT", "weight": 1, "base": 0}
            ],
            "network_configuration": {"subnets": ["subnet-1"], "assignPublicIp": "ENABLED"},
            "aws_credentials": {"region_name": "us-east-1"},
            "auto_deregister_task_definition": true,
            "not_in_the_schema": {"anything": 1}
        })),
        Ok(())
    );
    // Optional typed fields accept null (Prefect's `_fix_null_typing`).
    assert_eq!(
        check(json!({"env": null, "labels": null, "auto_deregister_task_definition": null})),
        Ok(())
    );
    // A null still has to satisfy other keywords (here `enum`).
    assert_eq!(
        check(json!({"launch_type": null})),
        invalid(
            "job_variables.launch_type",
            r#"null is not one of "FARGATE", "EC2" or 2 other candidates"#
        )
    );
    // A block document reference is not checked against the property schema.
    assert_eq!(
        check(json!({
            "aws_credentials": {"$ref": {"block_document_id": "9d37d1d6-208d-4a24-bf56-84fc39a37928"}},
            "cpu": {"$ref": {"block_document_id": "9d37d1d6-208d-4a24-bf56-84fc39a37928"}}
        })),
        Ok(())
    );
    // Anything that is not exactly a reference is validated normally.
    assert_eq!(
        check(json!({"cpu": {"$ref": "9d37d1d6-208d-4a24-bf56-84fc39a37928"}})),
        invalid(
            "job_variables.cpu",
            r#"{"$ref":"9d37d1d6-208d-4a24-bf56-84fc39a37928"} is not of type "integer" or "null""#
        )
    );
}

#[test]
fn validation_error_display() {
    let ecs = template(DEFAULT_ECS);
    let error = ecs
        .validate(&map(json!({"cpu": "abc"})))
        .expect_err("invalid cpu");
    assert_eq!(
        error.to_string(),
        r#"invalid job variables: job_variables.cpu: "abc" is not of type "integer" or "null""#
    );
}

#[test]
fn cloud_run_v2_defaults_render_exactly() {
    let cloud_run = template(DEFAULT_CLOUD_RUN_V2);
    let values = merge_job_variables(&[&cloud_run.defaults()]);
    let rendered = render(cloud_run.job_configuration(), &values);
    assert_eq!(
        Value::Object(rendered.clone()),
        json!({
            "job_body": {
                "client": "prefect",
                "launchStage": "BETA",
                "template": {
                    "template": {
                        "containers": [
                            {
                                "env": [],
                                "image": "prefecthq/prefect:3-latest",
                                "resources": {
                                    "limits": {"cpu": "1000m", "memory": "512Mi"}
                                }
                            }
                        ],
                        "maxRetries": 0,
                        "timeout": 600,
                        "vpcAccess": {}
                    }
                }
            },
            "keep_job": false,
            "region": "us-central1",
            "timeout": 600
        })
    );
    assert_eq!(rendered["job_body"]["launchStage"], json!("BETA"));
    assert_eq!(
        rendered["job_body"]["template"]["template"]["containers"][0]["image"],
        json!("prefecthq/prefect:3-latest")
    );
}

#[test]
fn cloud_run_v2_job_variable_validation() {
    let cloud_run = template(DEFAULT_CLOUD_RUN_V2);
    let check = |value: Value| cloud_run.validate(&map(value));
    assert_eq!(
        check(json!({"memory": "2Gi", "cpu": "2", "timeout": 3600, "args": ["--x"]})),
        Ok(())
    );
    assert_eq!(
        check(json!({"memory": "lots"})),
        invalid(
            "job_variables.memory",
            r#""lots" does not match "^\d+(?:G|Gi|M|Mi)$""#
        )
    );
    assert_eq!(
        check(json!({"timeout": 0})),
        invalid(
            "job_variables.timeout",
            "0 is less than or equal to the minimum of 0"
        )
    );
    assert_eq!(
        check(json!({"env_from_secrets": {"X": {"secret": "s"}}})),
        invalid(
            "job_variables.env_from_secrets.X",
            r#""version" is a required property"#
        )
    );
}

#[test]
fn azure_container_instance_defaults_render() {
    let aci = template(DEFAULT_ACI);
    let values = merge_job_variables(&[&aci.defaults()]);
    let rendered = render(aci.job_configuration(), &values);

    assert_eq!(
        keys(&rendered),
        [
            "entrypoint",
            "cpu",
            "memory",
            "stream_output",
            "task_start_timeout_seconds",
            "task_watch_poll_interval",
            "arm_template",
            "keep_container_group"
        ]
    );
    assert_eq!(rendered["entrypoint"], json!("/opt/prefect/entrypoint.sh"));
    assert_eq!(rendered["cpu"], json!(1.0));
    assert_eq!(rendered["memory"], json!(1.0));
    assert_eq!(rendered["stream_output"], json!(false));
    assert_eq!(rendered["task_start_timeout_seconds"], json!(240));
    assert_eq!(rendered["task_watch_poll_interval"], json!(5.0));
    assert_eq!(rendered["keep_container_group"], json!(false));
    // No placeholders in the ARM template's own expressions: kept verbatim.
    assert_eq!(
        rendered["arm_template"]["$schema"],
        json!("https://schema.management.azure.com/schemas/2019-08-01/deploymentTemplate.json#")
    );
    assert_eq!(
        rendered["arm_template"]["resources"][0]["name"],
        json!("[parameters('container_group_name')]")
    );
    assert_eq!(
        rendered["arm_template"]["resources"][0]["properties"]["containers"][0],
        json!({
            "name": "[parameters('container_name')]",
            "properties": {
                "resources": {"requests": {"cpu": 1.0, "memoryInGB": 1.0}},
                "environmentVariables": []
            }
        })
    );
}

#[test]
fn azure_container_instance_required_variables_are_not_enforced() {
    let aci = template(DEFAULT_ACI);
    assert_eq!(
        aci.variables_schema()["required"],
        json!(["resource_group_name", "subscription_id"])
    );
    let check = |value: Value| aci.validate(&map(value));
    assert_eq!(check(json!({})), Ok(()));
    assert_eq!(
        check(json!({"resource_group_name": "rg", "subscription_id": "sub", "cpu": 2})),
        Ok(())
    );
    assert_eq!(
        check(json!({"resource_group_name": 5})),
        invalid(
            "job_variables.resource_group_name",
            r#"5 is not of type "string""#
        )
    );
}

#[test]
fn merge_job_variables_layers() {
    let defaults = map(json!({
        "image": "default-image",
        "cpu": null,
        "env": {"FROM_DEFAULT": "1"},
        "labels": {"a": "default"}
    }));
    let deployment = map(json!({
        "image": "dep-image",
        "env": {"A": "dep", "B": "dep"},
        "labels": {"b": "dep"}
    }));
    let flow_run = map(json!({
        "env": {"B": "run", "C": "run"},
        "cpu": 512
    }));

    assert_eq!(
        Value::Object(merge_job_variables(&[&defaults, &deployment, &flow_run])),
        json!({
            "image": "dep-image",
            "cpu": 512,
            // env merges by key, the later layer winning...
            "env": {"FROM_DEFAULT": "1", "A": "dep", "B": "run", "C": "run"},
            // ...every other object is replaced as a whole.
            "labels": {"b": "dep"}
        })
    );

    // A non-object env on either side replaces instead of merging.
    let null_env = map(json!({"env": null}));
    assert_eq!(
        Value::Object(merge_job_variables(&[&deployment, &null_env])),
        json!({"image": "dep-image", "env": null, "labels": {"b": "dep"}})
    );
    assert_eq!(
        Value::Object(merge_job_variables(&[&null_env, &flow_run])),
        json!({"env": {"B": "run", "C": "run"}, "cpu": 512})
    );
    // A later null replaces an earlier value (and then renders as unset).
    let null_image = map(json!({"image": null}));
    let merged = merge_job_variables(&[&deployment, &null_image]);
    assert_eq!(merged["image"], Value::Null);
    assert_eq!(
        Value::Object(render(&map(json!({"image": "{{ image }}"})), &merged)),
        json!({})
    );
    // No layers, no variables.
    assert_eq!(merge_job_variables(&[]), Map::new());
    // Inputs are not modified.
    assert_eq!(deployment["env"], json!({"A": "dep", "B": "dep"}));
}

#[test]
fn template_without_job_configuration_or_variables() {
    let only_config =
        BaseJobTemplate::parse(&json!({"job_configuration": {"x": "{{ y }}"}})).expect("parses");
    assert_eq!(only_config.variables_schema(), &json!({}));
    assert_eq!(only_config.defaults(), Map::new());
    assert_eq!(only_config.validate(&map(json!({"y": 1}))), Ok(()));
    assert_eq!(
        Value::Object(render(
            only_config.job_configuration(),
            &map(json!({"y": 1}))
        )),
        json!({"x": 1})
    );
}

#[test]
fn a_variable_of_the_wrong_type_names_the_declared_type() {
    // Cloud Run's cpu is a string ("2"), ACI's a number: the natural mistake of each is told
    // in the schema's terms, not as an opaque `anyOf` failure.
    let cloud_run = template(DEFAULT_CLOUD_RUN_V2);
    assert_eq!(
        cloud_run.validate(&map(json!({"cpu": 2}))),
        invalid("job_variables.cpu", r#"2 is not of type "string""#)
    );
    let aci = template(DEFAULT_ACI);
    assert_eq!(
        aci.validate(&map(json!({"cpu": "2"}))),
        invalid("job_variables.cpu", r#""2" is not of type "number""#)
    );
}
