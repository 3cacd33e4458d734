//! AWS configuration, loaded only when a command needs AWS (Bedrock, invoke,
//! cleanup): the standard chain for credentials and region, and the
//! per-service endpoint variables (`AWS_ENDPOINT_URL_BEDROCK_RUNTIME`,
//! `AWS_ENDPOINT_URL_BEDROCK_AGENTCORE`) that aws-config honours natively.

/// Loads the shared AWS configuration; `region` overrides the chain.
pub async fn load_config(region: Option<String>) -> Result<aws_config::SdkConfig, String> {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(region) = region {
        loader = loader.region(aws_config::Region::new(region));
    }
    let conf = loader.load().await;
    if conf.region().is_none() {
        return Err(
            "no AWS region: set AWS_REGION (or a region in the AWS profile), or pass --region"
                .into(),
        );
    }
    Ok(conf)
}
