//! AWS access the way the AWS CLI does it, for both S3 clients of the program: aws-sdk-s3 for the
//! log source and object_store (what DataFusion reads through) for a lake on S3; and CloudTrail's
//! API, for `verify`'s public keys.
//!
//! - Credentials: the SDK's standard chain (environment, shared config and credentials files
//!   with SSO and assume-role profiles, web identity, container and instance metadata), with
//!   `--profile` choosing the profile.
//! - Region: `--aws-region`, else the chain (AWS_REGION, the profile); a bucket in another region
//!   is found through S3's `x-amz-bucket-region` answer.
//! - Endpoint: `--endpoint-url`, then AWS_ENDPOINT_URL_S3, then AWS_ENDPOINT_URL, then the
//!   profile's `endpoint_url` (AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true skips the last three).
//!   A custom endpoint is addressed path-style, as S3-compatible servers expect.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sdk_s3::config::retry::RetryConfig;
use object_store::aws::{AmazonS3Builder, AwsCredential};
use object_store::{CredentialProvider, ObjectStore};
use tokio::sync::Mutex;

/// The region used when neither the flag nor the environment nor a profile names one.
const FALLBACK_REGION: &str = "us-east-1";

/// Attempts per S3 request (throttling and transient errors back off exponentially in between).
const MAX_ATTEMPTS: u32 = 8;

/// What the command line says about AWS access.
#[derive(Debug, Clone, Default)]
pub struct AwsOptions {
    pub profile: Option<String>,
    pub region: Option<String>,
    pub endpoint_url: Option<String>,
}

/// `s3://bucket/prefix`, the prefix without a leading `/`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct S3Url {
    pub bucket: String,
    pub prefix: String,
}

impl S3Url {
    /// None when `text` is not an `s3://` URL; Err when it is one but malformed.
    pub fn parse(text: &str) -> Option<Result<S3Url, String>> {
        let rest = text.strip_prefix("s3://")?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let valid_bucket = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-._".contains(&b));
        Some(if valid_bucket {
            Ok(S3Url {
                bucket: bucket.to_owned(),
                prefix: prefix.trim_start_matches('/').to_owned(),
            })
        } else {
            Err(format!("{text:?} does not name a valid S3 bucket"))
        })
    }

    /// The prefix as a folder: empty, or ending in `/`.
    pub fn folder(&self) -> String {
        match self.prefix.as_str() {
            "" => String::new(),
            p if p.ends_with('/') => p.to_owned(),
            p => format!("{p}/"),
        }
    }

    pub fn object(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }
}

impl std::fmt::Display for S3Url {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.prefix)
    }
}

/// Loaded AWS configuration, shared by every S3 client of a run.
#[derive(Clone, Debug)]
pub struct Aws {
    sdk: SdkConfig,
    endpoint: Option<String>,
    credentials: Option<Arc<SdkCredentials>>,
}

impl Aws {
    pub async fn load(options: &AwsOptions) -> Aws {
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let Some(profile) = &options.profile {
            loader = loader.profile_name(profile);
        }
        if let Some(region) = &options.region {
            loader = loader.region(Region::new(region.clone()));
        }
        let sdk = loader.load().await;
        let endpoint = resolve_endpoint(options.endpoint_url.as_deref(), &sdk);
        let credentials = sdk.credentials_provider().map(|provider| {
            Arc::new(SdkCredentials {
                provider,
                cached: Mutex::default(),
            })
        });
        Aws {
            sdk,
            endpoint,
            credentials,
        }
    }

    /// The configured region (or us-east-1).
    pub fn region(&self) -> String {
        self.sdk
            .region()
            .map_or_else(|| FALLBACK_REGION.to_owned(), |r| r.to_string())
    }

    pub fn endpoint(&self) -> Option<&str> {
        self.endpoint.as_deref()
    }

    /// An S3 client in `region`, with retries and the resolved endpoint.
    pub fn s3_client(&self, region: &str) -> aws_sdk_s3::Client {
        let mut config = aws_sdk_s3::config::Builder::from(&self.sdk)
            .region(Region::new(region.to_owned()))
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(MAX_ATTEMPTS)
                    .with_initial_backoff(Duration::from_millis(100)),
            );
        if let Some(endpoint) = &self.endpoint {
            config = config.endpoint_url(endpoint).force_path_style(true);
        }
        aws_sdk_s3::Client::from_conf(config.build())
    }

    /// A CloudTrail client in `region`, with retries. Its endpoint is the SDK's own
    /// (AWS_ENDPOINT_URL_CLOUDTRAIL, AWS_ENDPOINT_URL, the profile): `--endpoint-url` names an
    /// S3 server, which does not answer CloudTrail's API.
    pub fn cloudtrail_client(&self, region: &str) -> aws_sdk_cloudtrail::Client {
        let config = aws_sdk_cloudtrail::config::Builder::from(&self.sdk)
            .region(Region::new(region.to_owned()))
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(MAX_ATTEMPTS)
                    .with_initial_backoff(Duration::from_millis(100)),
            );
        aws_sdk_cloudtrail::Client::from_conf(config.build())
    }

    /// The region `bucket` lives in. A custom endpoint has no regions to find; on AWS, a
    /// request to the wrong region is answered with the right one in `x-amz-bucket-region`.
    pub async fn bucket_region(&self, bucket: &str) -> String {
        let configured = self.region();
        if self.endpoint.is_some() {
            return configured;
        }
        let client = self.s3_client(&configured);
        match client.head_bucket().bucket(bucket).send().await {
            Ok(head) => head.bucket_region().map_or(configured, str::to_owned),
            Err(error) => error
                .raw_response()
                .and_then(|response| response.headers().get("x-amz-bucket-region"))
                .map_or(configured, str::to_owned),
        }
    }

    /// An S3 client for `bucket`, in the bucket's region.
    pub async fn client_for_bucket(&self, bucket: &str) -> aws_sdk_s3::Client {
        let region = self.bucket_region(bucket).await;
        self.s3_client(&region)
    }

    /// An object store over `bucket` with the same credentials, region and endpoint.
    pub async fn object_store(&self, bucket: &str) -> Result<Arc<dyn ObjectStore>, String> {
        let region = self.bucket_region(bucket).await;
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(bucket)
            .with_region(region)
            .with_retry(object_store::RetryConfig {
                max_retries: MAX_ATTEMPTS as usize,
                ..Default::default()
            });
        if let Some(credentials) = &self.credentials {
            builder = builder.with_credentials(credentials.clone());
        }
        if let Some(endpoint) = &self.endpoint {
            builder = builder
                .with_endpoint(endpoint)
                .with_allow_http(endpoint.starts_with("http://"))
                .with_virtual_hosted_style_request(false);
        }
        let store = builder.build().map_err(|e| e.to_string())?;
        Ok(Arc::new(store))
    }
}

/// The AWS CLI's order: the flag, the S3-specific variable, the global one, then the profile.
fn resolve_endpoint(flag: Option<&str>, sdk: &SdkConfig) -> Option<String> {
    if let Some(url) = flag {
        return Some(url.to_owned());
    }
    let ignore_configured = std::env::var("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")
        .is_ok_and(|v| v.eq_ignore_ascii_case("true"));
    if ignore_configured {
        return None;
    }
    let from_env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    from_env("AWS_ENDPOINT_URL_S3")
        .or_else(|| from_env("AWS_ENDPOINT_URL"))
        .or_else(|| sdk.endpoint_url().map(str::to_owned))
}

/// The SDK's credential chain as object_store's provider, cached until shortly before expiry
/// (the chain may call STS or a metadata service: once per credential lifetime, not per request).
#[derive(Debug)]
struct SdkCredentials {
    provider: SharedCredentialsProvider,
    cached: Mutex<Option<(Arc<AwsCredential>, Option<SystemTime>)>>,
}

#[async_trait::async_trait]
impl CredentialProvider for SdkCredentials {
    type Credential = AwsCredential;

    async fn get_credential(&self) -> object_store::Result<Arc<AwsCredential>> {
        let mut cached = self.cached.lock().await;
        let fresh_until = SystemTime::now() + Duration::from_secs(300);
        if let Some((credential, expiry)) = cached.as_ref()
            && expiry.is_none_or(|at| at > fresh_until)
        {
            return Ok(credential.clone());
        }
        let credentials = self.provider.provide_credentials().await.map_err(|error| {
            object_store::Error::Generic {
                store: "S3",
                source: Box::new(error),
            }
        })?;
        let credential = Arc::new(AwsCredential {
            key_id: credentials.access_key_id().to_owned(),
            secret_key: credentials.secret_access_key().to_owned(),
            token: credentials.session_token().map(str::to_owned),
        });
        *cached = Some((credential.clone(), credentials.expiry()));
        Ok(credential)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_urls() {
        let url = S3Url::parse("s3://my-trail-bucket/org/AWSLogs")
            .unwrap()
            .unwrap();
        assert_eq!(url.bucket, "my-trail-bucket");
        assert_eq!(url.folder(), "org/AWSLogs/");
        assert_eq!(S3Url::parse("s3://bucket").unwrap().unwrap().folder(), "");
        assert!(S3Url::parse("/local/path").is_none());
        assert!(S3Url::parse("s3://Bad_Bucket/x").unwrap().is_err());
        assert!(S3Url::parse("s3://").unwrap().is_err());
    }
}
