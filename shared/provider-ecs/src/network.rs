//! The default awsvpc network configuration, found the way prefect-aws's
//! `_load_network_configuration` finds it: the subnets of `vpc_id` or of the region's default
//! VPC, with a public IP. pushpool also names the VPC's `default` security group.

use aws_sdk_ec2::types::Filter;
use aws_sdk_ecs::types::{AssignPublicIp, AwsVpcConfiguration, NetworkConfiguration};

use super::errors::classify;
use pushpool_providers::ProviderError;

/// How to set the network when the default VPC is missing.
const HELP: &str = "give `network_configuration` ({\"subnets\": [...], \"securityGroups\": [...], \"assignPublicIp\": \"ENABLED\"}) or `vpc_id`";

/// `{"awsvpcConfiguration": {subnets of the VPC (sorted), its default security group,
/// assignPublicIp ENABLED}}`.
pub(super) async fn default_network_configuration(
    ec2: &aws_sdk_ec2::Client,
    vpc_id: Option<&str>,
) -> Result<NetworkConfiguration, ProviderError> {
    let request = match vpc_id {
        Some(id) => ec2.describe_vpcs().vpc_ids(id),
        None => ec2
            .describe_vpcs()
            .filters(Filter::builder().name("isDefault").values("true").build()),
    };
    let vpcs = match request.send().await {
        Ok(out) => out.vpcs().to_vec(),
        Err(err) => {
            let is_not_found = err
                .as_service_error()
                .and_then(|e| aws_sdk_ec2::error::ProvideErrorMetadata::code(e))
                == Some("InvalidVpcID.NotFound");
            if is_not_found {
                Vec::new()
            } else {
                return Err(classify("EC2", "DescribeVpcs", err));
            }
        }
    };
    let Some(vpc) = vpcs.iter().find_map(|v| v.vpc_id()) else {
        return Err(match vpc_id {
            Some(id) => ProviderError::invalid(
                "vpc_id",
                format!("there is no VPC {id} in this region: check `vpc_id` and the region"),
            ),
            None => ProviderError::invalid(
                "network_configuration",
                format!("this region has no default VPC to take subnets from: {HELP}"),
            ),
        });
    };

    let mut subnets = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let out = ec2
            .describe_subnets()
            .filters(Filter::builder().name("vpc-id").values(vpc).build())
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| classify("EC2", "DescribeSubnets", e))?;
        subnets.extend(
            out.subnets()
                .iter()
                .filter_map(|s| s.subnet_id().map(str::to_owned)),
        );
        match out.next_token() {
            Some(next) if !next.is_empty() => token = Some(next.to_owned()),
            _ => break,
        }
    }
    // The same request on every retry of a submission (the clientToken demands it).
    subnets.sort();
    subnets.dedup();
    if subnets.is_empty() {
        let field = if vpc_id.is_some() {
            "vpc_id"
        } else {
            "network_configuration"
        };
        return Err(ProviderError::invalid(
            field,
            format!("VPC {vpc} has no subnets: {HELP}"),
        ));
    }

    let groups = ec2
        .describe_security_groups()
        .filters(Filter::builder().name("vpc-id").values(vpc).build())
        .filters(
            Filter::builder()
                .name("group-name")
                .values("default")
                .build(),
        )
        .send()
        .await
        .map_err(|e| classify("EC2", "DescribeSecurityGroups", e))?;
    let default_group = groups
        .security_groups()
        .iter()
        .find(|g| g.group_name() == Some("default"))
        .and_then(|g| g.group_id())
        .map(str::to_owned);

    let config = AwsVpcConfiguration::builder()
        .set_subnets(Some(subnets))
        .set_security_groups(default_group.map(|g| vec![g]))
        .assign_public_ip(AssignPublicIp::Enabled)
        .build()
        .map_err(|e| ProviderError::invalid("network_configuration", e.to_string()))?;
    Ok(NetworkConfiguration::builder()
        .awsvpc_configuration(config)
        .build())
}
