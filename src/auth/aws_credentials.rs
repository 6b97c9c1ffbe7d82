//! AWS credentials for the Bedrock provider (SPEC §2): the credential value itself, the
//! parsers for every place credentials come from (shared credentials file, environment,
//! ECS container endpoint JSON, EC2 IMDSv2 JSON), and the lookup chain over them.
//!
//! This module is sans-IO: the chain reads environment variables, files and HTTP
//! endpoints only through the [`CredentialSources`] callbacks the caller passes in, so
//! the same code runs against the real system and against test doubles. It must never
//! print or log a secret: [`AwsCredentials`]'s `Debug` redacts them.
//!
//! Chain order ([`resolve_credentials`]):
//! 1. keys in the provider config (`aws_access_key_id` + `aws_secret_access_key`
//!    [+ `aws_session_token`]);
//! 2. an `aws_profile` named in the provider config — an explicit choice, so it is
//!    looked up before the environment and a missing profile is an error;
//! 3. `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` [/ `AWS_SESSION_TOKEN`];
//! 4. the shared credentials file (`AWS_SHARED_CREDENTIALS_FILE`, else
//!    `$HOME/.aws/credentials`), profile `AWS_PROFILE` or `default`;
//! 5. the ECS container endpoint (`AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` or
//!    `AWS_CONTAINER_CREDENTIALS_FULL_URI`);
//! 6. EC2 IMDSv2 (unless `AWS_EC2_METADATA_DISABLED=true`).
//!
//! Credentials from 5 and 6 expire; re-run the chain when
//! [`AwsCredentials::needs_refresh`] says so.
//!
//! ```
//! use cc_relay::auth::aws_credentials::{resolve_credentials, ConfiguredAws, CredentialSources, FetchResponse};
//!
//! let env = |name: &str| match name {
//!     "AWS_ACCESS_KEY_ID" => Some("AKIDEXAMPLE".to_string()),
//!     "AWS_SECRET_ACCESS_KEY" => Some("secret".to_string()),
//!     _ => None,
//! };
//! let read_file = |_: &str| None;
//! let mut fetch = |_: &_| Err::<FetchResponse, String>("no network in this example".into());
//! let mut sources = CredentialSources { env: &env, read_file: &read_file, fetch: &mut fetch };
//! let resolved = resolve_credentials(&ConfiguredAws::default(), &mut sources).unwrap();
//! assert_eq!(resolved.credentials.access_key_id, "AKIDEXAMPLE");
//! // With the real system: env = |n| std::env::var(n).ok(),
//! // read_file = |p| std::fs::read_to_string(p).ok(), fetch = the HTTP client.
//! ```

use std::fmt;

use serde::Deserialize;

use crate::obs::time::parse_rfc3339_unix_millis;

/// Refresh expiring credentials this long before they expire, so a request signed just
/// before the deadline still reaches AWS in time.
pub const REFRESH_MARGIN_SECS: u64 = 5 * 60;

/// The ECS task-role endpoint that `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` is relative to.
pub const ECS_CREDENTIALS_HOST: &str = "http://169.254.170.2";
/// The default EC2 instance metadata endpoint.
pub const IMDS_DEFAULT_ENDPOINT: &str = "http://169.254.169.254";
/// Lifetime asked for the IMDSv2 session token (the AWS SDK default, 6 hours).
pub const IMDS_TOKEN_TTL_SECS: &str = "21600";

/// One set of AWS credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct AwsCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Present for temporary credentials (STS, SSO, container and instance roles).
    pub session_token: Option<String>,
    /// Unix seconds after which AWS rejects these credentials; `None` for long-term keys.
    pub expires_at_unix: Option<u64>,
}

impl AwsCredentials {
    /// Long-term or session credentials without a known expiry.
    pub fn new(
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<String>,
        session_token: Option<String>,
    ) -> Self {
        AwsCredentials {
            access_key_id: access_key_id.into(),
            secret_access_key: secret_access_key.into(),
            session_token: session_token.filter(|token| !token.is_empty()),
            expires_at_unix: None,
        }
    }

    /// Whether these credentials expire within [`REFRESH_MARGIN_SECS`] of `now_unix`
    /// (or already have). Never true for credentials without an expiry.
    pub fn needs_refresh(&self, now_unix: u64) -> bool {
        self.expires_at_unix
            .is_some_and(|expiry| expiry <= now_unix.saturating_add(REFRESH_MARGIN_SECS))
    }
}

/// Shows only the ends of the access key id and never the secret or the token, so a
/// stray `{:?}` in a log line leaks nothing usable.
impl fmt::Debug for AwsCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsCredentials")
            .field("access_key_id", &mask_key_id(&self.access_key_id))
            .field("secret_access_key", &"<redacted>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .field("expires_at_unix", &self.expires_at_unix)
            .finish()
    }
}

fn mask_key_id(key_id: &str) -> String {
    let chars: Vec<char> = key_id.chars().collect();
    if chars.len() < 12 {
        return "<redacted>".to_owned();
    }
    let head: String = chars.iter().take(4).collect();
    let tail: String = chars.iter().skip(chars.len() - 4).collect();
    format!("{head}…{tail}")
}

/// Why credentials could not be obtained. Messages never contain secret values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CredentialsError {
    /// Only one of key id / secret was given (`source` says where).
    Incomplete { source: String },
    /// A named profile is not in the shared credentials file.
    ProfileNotFound { profile: String, path: String },
    /// A profile exists but has no static keys (role, SSO and process profiles are not
    /// supported).
    ProfileWithoutKeys { profile: String, path: String },
    /// A credentials endpoint answered with something we cannot use.
    BadResponse { source: String, reason: String },
    /// A configured endpoint could not be reached.
    Fetch { source: String, reason: String },
    /// `AWS_CONTAINER_CREDENTIALS_FULL_URI` points at a host the SDKs refuse over HTTP.
    ForbiddenContainerUri { uri: String },
    /// No source in the chain had credentials; `tried` lists them.
    NotFound { tried: Vec<String> },
}

impl fmt::Display for CredentialsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CredentialsError::Incomplete { source } => write!(
                f,
                "{source}: an access key id needs a secret access key and vice versa"
            ),
            CredentialsError::ProfileNotFound { profile, path } => {
                write!(f, "profile [{profile}] not found in {path}")
            }
            CredentialsError::ProfileWithoutKeys { profile, path } => write!(
                f,
                "profile [{profile}] in {path} has no aws_access_key_id/aws_secret_access_key (role, SSO and process profiles are not supported)"
            ),
            CredentialsError::BadResponse { source, reason } => {
                write!(f, "{source}: unusable credentials response: {reason}")
            }
            CredentialsError::Fetch { source, reason } => write!(f, "{source}: {reason}"),
            CredentialsError::ForbiddenContainerUri { uri } => write!(
                f,
                "AWS_CONTAINER_CREDENTIALS_FULL_URI {uri} must be https or a loopback/ECS/EKS address"
            ),
            CredentialsError::NotFound { tried } => write!(
                f,
                "no AWS credentials found (tried: {})",
                tried.join(", ")
            ),
        }
    }
}

impl std::error::Error for CredentialsError {}

/// Credentials in the shared credentials file format for `profile`. `Ok(None)` when the
/// file has no such section. The format is INI: `[profile-name]` sections, `key = value`
/// lines (keys case-insensitive), `#` and `;` comment lines. Values are taken verbatim
/// after trimming (no inline comments, as botocore). Indented lines continue a nested
/// setting and are ignored. The last occurrence of a section or key wins.
pub fn parse_shared_credentials(
    text: &str,
    profile: &str,
    path_for_errors: &str,
) -> Result<Option<AwsCredentials>, CredentialsError> {
    let mut in_profile = false;
    let mut found = false;
    let mut access_key_id = None;
    let mut secret_access_key = None;
    let mut session_token = None;
    for raw_line in text.lines() {
        let line = raw_line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(section) = line.strip_prefix('[') {
            let name = section.strip_suffix(']').unwrap_or(section).trim();
            in_profile = name == profile;
            if in_profile {
                // A repeated section replaces the earlier one, as a later definition.
                found = true;
                access_key_id = None;
                secret_access_key = None;
                session_token = None;
            }
            continue;
        }
        if !in_profile || raw_line.starts_with([' ', '\t']) {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = value.trim().to_owned();
        match key.trim().to_ascii_lowercase().as_str() {
            "aws_access_key_id" => access_key_id = Some(value),
            "aws_secret_access_key" => secret_access_key = Some(value),
            "aws_session_token" | "aws_security_token" => session_token = Some(value),
            _ => {}
        }
    }
    if !found {
        return Ok(None);
    }
    let source = format!("profile [{profile}] in {path_for_errors}");
    match static_keys(access_key_id, secret_access_key, session_token, &source)? {
        Some(credentials) => Ok(Some(credentials)),
        None => Err(CredentialsError::ProfileWithoutKeys {
            profile: profile.to_owned(),
            path: path_for_errors.to_owned(),
        }),
    }
}

/// `Ok(None)` when neither key is set (empty counts as unset), an error when only one
/// is, else the credentials.
fn static_keys(
    access_key_id: Option<String>,
    secret_access_key: Option<String>,
    session_token: Option<String>,
    source: &str,
) -> Result<Option<AwsCredentials>, CredentialsError> {
    let access_key_id = access_key_id.filter(|value| !value.is_empty());
    let secret_access_key = secret_access_key.filter(|value| !value.is_empty());
    match (access_key_id, secret_access_key) {
        (None, None) => Ok(None),
        (Some(access_key_id), Some(secret_access_key)) => Ok(Some(AwsCredentials::new(
            access_key_id,
            secret_access_key,
            session_token,
        ))),
        _ => Err(CredentialsError::Incomplete {
            source: source.to_owned(),
        }),
    }
}

/// Credentials from `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and optionally
/// `AWS_SESSION_TOKEN` (or the older `AWS_SECURITY_TOKEN`), read through `env`.
pub fn credentials_from_env(
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<AwsCredentials>, CredentialsError> {
    static_keys(
        env("AWS_ACCESS_KEY_ID"),
        env("AWS_SECRET_ACCESS_KEY"),
        env("AWS_SESSION_TOKEN")
            .filter(|token| !token.is_empty())
            .or_else(|| env("AWS_SECURITY_TOKEN")),
        "environment (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)",
    )
}

/// The JSON both the ECS container endpoint and IMDS return.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CredentialsDocument {
    code: Option<String>,
    access_key_id: Option<String>,
    secret_access_key: Option<String>,
    token: Option<String>,
    expiration: Option<String>,
    message: Option<String>,
}

fn parse_credentials_document(
    body: &[u8],
    source: &str,
) -> Result<AwsCredentials, CredentialsError> {
    let bad = |reason: String| CredentialsError::BadResponse {
        source: source.to_owned(),
        reason,
    };
    let document: CredentialsDocument =
        serde_json::from_slice(body).map_err(|error| bad(format!("not JSON: {error}")))?;
    if let Some(code) = document.code.as_deref().filter(|code| *code != "Success") {
        let detail = document.message.as_deref().unwrap_or_default();
        return Err(bad(format!("Code {code} {detail}").trim_end().to_owned()));
    }
    let access_key_id = document
        .access_key_id
        .filter(|value| !value.is_empty())
        .ok_or_else(|| bad("AccessKeyId missing".into()))?;
    let secret_access_key = document
        .secret_access_key
        .filter(|value| !value.is_empty())
        .ok_or_else(|| bad("SecretAccessKey missing".into()))?;
    let expires_at_unix = match document.expiration {
        None => None,
        Some(text) => {
            let millis = parse_rfc3339_unix_millis(text.trim())
                .ok_or_else(|| bad(format!("Expiration {text:?} is not RFC 3339")))?;
            Some(u64::try_from(millis.div_euclid(1000)).unwrap_or(0))
        }
    };
    let mut credentials = AwsCredentials::new(access_key_id, secret_access_key, document.token);
    credentials.expires_at_unix = expires_at_unix;
    Ok(credentials)
}

/// Parses the ECS container credentials endpoint's JSON
/// (`{"AccessKeyId","SecretAccessKey","Token","Expiration","RoleArn"}`).
pub fn parse_container_credentials(body: &[u8]) -> Result<AwsCredentials, CredentialsError> {
    parse_credentials_document(body, "ECS container credentials")
}

/// Parses IMDS `…/iam/security-credentials/<role>` JSON
/// (`{"Code":"Success","AccessKeyId",…,"Token","Expiration"}`); a `Code` other than
/// `Success` is an error.
pub fn parse_imds_credentials(body: &[u8]) -> Result<AwsCredentials, CredentialsError> {
    parse_credentials_document(body, "EC2 instance metadata (IMDSv2)")
}

/// An HTTP request the chain needs made (ECS / IMDS); plain HTTP, small bodies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchRequest {
    /// `GET` or `PUT`.
    pub method: &'static str,
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
}

/// The answer to a [`FetchRequest`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchResponse {
    pub status: u16,
    pub body: Vec<u8>,
}

/// Everything the chain may read, injected. `fetch` returns `Err` when the endpoint
/// cannot be reached at all (connection refused, timeout); callers should give IMDS a
/// short timeout (about 1 s), since off EC2 it never answers.
pub struct CredentialSources<'a> {
    pub env: &'a dyn Fn(&str) -> Option<String>,
    /// The file's text, `None` when it does not exist or cannot be read.
    pub read_file: &'a dyn Fn(&str) -> Option<String>,
    pub fetch: &'a mut dyn FnMut(&FetchRequest) -> Result<FetchResponse, String>,
}

/// What the provider config says about credentials (`aws_*` keys of a bedrock provider).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfiguredAws {
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
    pub profile: Option<String>,
}

/// Where resolved credentials came from (for logs and for deciding about refresh).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CredentialSource {
    Config,
    Environment,
    SharedFile { path: String, profile: String },
    Container,
    InstanceMetadata,
}

/// Credentials plus their origin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedCredentials {
    pub credentials: AwsCredentials,
    pub source: CredentialSource,
}

/// Runs the chain in the module doc's order and returns the first credentials found.
/// A source that is configured but broken (half a key pair, a named profile that does
/// not exist, an ECS endpoint that answers badly) is an error rather than a reason to
/// fall through, so a misconfiguration is reported instead of silently using other
/// credentials.
pub fn resolve_credentials(
    config: &ConfiguredAws,
    sources: &mut CredentialSources<'_>,
) -> Result<ResolvedCredentials, CredentialsError> {
    let env = sources.env;
    let var = |name: &str| env(name).filter(|value| !value.is_empty());
    let mut tried = Vec::new();

    tried.push("config keys".to_owned());
    if let Some(credentials) = static_keys(
        config.access_key_id.clone(),
        config.secret_access_key.clone(),
        config.session_token.clone(),
        "provider config (aws_access_key_id/aws_secret_access_key)",
    )? {
        return Ok(ResolvedCredentials {
            credentials,
            source: CredentialSource::Config,
        });
    }

    let credentials_path = var("AWS_SHARED_CREDENTIALS_FILE")
        .or_else(|| var("HOME").map(|home| format!("{home}/.aws/credentials")));

    if let Some(profile) = config.profile.as_deref().filter(|p| !p.is_empty()) {
        return from_shared_file(credentials_path.as_deref(), profile, sources.read_file)?
            .ok_or_else(|| CredentialsError::ProfileNotFound {
                profile: profile.to_owned(),
                path: credentials_path.unwrap_or_else(|| "~/.aws/credentials".into()),
            });
    }

    tried.push("environment".to_owned());
    if let Some(credentials) = credentials_from_env(&var)? {
        return Ok(ResolvedCredentials {
            credentials,
            source: CredentialSource::Environment,
        });
    }

    tried.push("shared credentials file".to_owned());
    let env_profile = var("AWS_PROFILE");
    let profile = env_profile.as_deref().unwrap_or("default");
    match from_shared_file(credentials_path.as_deref(), profile, sources.read_file)? {
        Some(resolved) => return Ok(resolved),
        None if env_profile.is_some() => {
            return Err(CredentialsError::ProfileNotFound {
                profile: profile.to_owned(),
                path: credentials_path.unwrap_or_else(|| "~/.aws/credentials".into()),
            })
        }
        None => {}
    }

    if let Some(request) = container_request(&var, sources.read_file)? {
        return fetch_container(&request, sources.fetch);
    }
    tried.push("ECS container endpoint (not configured)".to_owned());

    if var("AWS_EC2_METADATA_DISABLED").is_some_and(|value| value.eq_ignore_ascii_case("true")) {
        tried.push("IMDSv2 (disabled)".to_owned());
    } else {
        let endpoint = var("AWS_EC2_METADATA_SERVICE_ENDPOINT")
            .unwrap_or_else(|| IMDS_DEFAULT_ENDPOINT.into());
        match fetch_imds(endpoint.trim_end_matches('/'), sources.fetch)? {
            Some(credentials) => {
                return Ok(ResolvedCredentials {
                    credentials,
                    source: CredentialSource::InstanceMetadata,
                })
            }
            None => tried.push("IMDSv2 (unreachable or no role)".to_owned()),
        }
    }
    Err(CredentialsError::NotFound { tried })
}

fn from_shared_file(
    path: Option<&str>,
    profile: &str,
    read_file: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<ResolvedCredentials>, CredentialsError> {
    let Some(path) = path else {
        return Ok(None);
    };
    let Some(text) = read_file(path) else {
        return Ok(None);
    };
    Ok(
        parse_shared_credentials(&text, profile, path)?.map(|credentials| ResolvedCredentials {
            credentials,
            source: CredentialSource::SharedFile {
                path: path.to_owned(),
                profile: profile.to_owned(),
            },
        }),
    )
}

/// Hosts `AWS_CONTAINER_CREDENTIALS_FULL_URI` may name over plain HTTP (the AWS SDKs'
/// rule): loopback, and the ECS and EKS Pod Identity link-local addresses.
fn is_allowed_container_http_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || host == "::1"
        || host == "169.254.170.2"
        || host == "169.254.170.23"
        || host.eq_ignore_ascii_case("fd00:ec2::23")
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The host of an `http://` URL: what lies between the scheme and the path, minus any
/// port and user info.
fn http_url_host(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("http://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit('@').next()?;
    if let Some(bracketed) = authority.strip_prefix('[') {
        return bracketed.split(']').next();
    }
    Some(authority.split(':').next().unwrap_or(authority))
}

fn container_request(
    var: &dyn Fn(&str) -> Option<String>,
    read_file: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<FetchRequest>, CredentialsError> {
    let url = if let Some(relative) = var("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") {
        format!("{ECS_CREDENTIALS_HOST}{relative}")
    } else if let Some(full) = var("AWS_CONTAINER_CREDENTIALS_FULL_URI") {
        let allowed = full.starts_with("https://")
            || http_url_host(&full).is_some_and(is_allowed_container_http_host);
        if !allowed {
            return Err(CredentialsError::ForbiddenContainerUri { uri: full });
        }
        full
    } else {
        return Ok(None);
    };
    let mut headers = Vec::new();
    let token = match var("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE") {
        Some(path) => Some(read_file(&path).ok_or_else(|| CredentialsError::Fetch {
            source: "ECS container credentials".into(),
            reason: format!("cannot read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE {path}"),
        })?),
        None => var("AWS_CONTAINER_AUTHORIZATION_TOKEN"),
    };
    if let Some(token) = token.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()) {
        if token.contains(['\r', '\n']) {
            return Err(CredentialsError::BadResponse {
                source: "ECS container credentials".into(),
                reason: "authorization token contains a line break".into(),
            });
        }
        headers.push(("authorization", token));
    }
    Ok(Some(FetchRequest {
        method: "GET",
        url,
        headers,
    }))
}

fn fetch_container(
    request: &FetchRequest,
    fetch: &mut dyn FnMut(&FetchRequest) -> Result<FetchResponse, String>,
) -> Result<ResolvedCredentials, CredentialsError> {
    const SOURCE: &str = "ECS container credentials";
    let response = fetch(request).map_err(|reason| CredentialsError::Fetch {
        source: SOURCE.into(),
        reason,
    })?;
    if response.status != 200 {
        return Err(CredentialsError::BadResponse {
            source: SOURCE.into(),
            reason: format!("HTTP {}", response.status),
        });
    }
    Ok(ResolvedCredentials {
        credentials: parse_container_credentials(&response.body)?,
        source: CredentialSource::Container,
    })
}

/// IMDSv2: PUT a session token, GET the role name, GET the role's credentials.
/// `Ok(None)` when IMDS is unreachable (not on EC2) or the instance has no role.
fn fetch_imds(
    endpoint: &str,
    fetch: &mut dyn FnMut(&FetchRequest) -> Result<FetchResponse, String>,
) -> Result<Option<AwsCredentials>, CredentialsError> {
    const SOURCE: &str = "EC2 instance metadata (IMDSv2)";
    let bad = |reason: String| CredentialsError::BadResponse {
        source: SOURCE.into(),
        reason,
    };
    let Ok(token_response) = fetch(&FetchRequest {
        method: "PUT",
        url: format!("{endpoint}/latest/api/token"),
        headers: vec![(
            "x-aws-ec2-metadata-token-ttl-seconds",
            IMDS_TOKEN_TTL_SECS.to_owned(),
        )],
    }) else {
        return Ok(None);
    };
    if token_response.status != 200 {
        return Err(bad(format!(
            "token request answered HTTP {}",
            token_response.status
        )));
    }
    let token = String::from_utf8(token_response.body)
        .map_err(|_| bad("token is not UTF-8".into()))?
        .trim()
        .to_owned();
    if token.is_empty() || token.contains(['\r', '\n']) {
        return Err(bad("token is empty or has a line break".into()));
    }
    let roles_url = format!("{endpoint}/latest/meta-data/iam/security-credentials/");
    let authorized = |url: String| FetchRequest {
        method: "GET",
        url,
        headers: vec![("x-aws-ec2-metadata-token", token.clone())],
    };
    let roles =
        fetch(&authorized(roles_url.clone())).map_err(|reason| CredentialsError::Fetch {
            source: SOURCE.into(),
            reason,
        })?;
    match roles.status {
        200 => {}
        404 => return Ok(None),
        status => return Err(bad(format!("role list answered HTTP {status}"))),
    }
    let roles = String::from_utf8_lossy(&roles.body).into_owned();
    let Some(role) = roles.lines().map(str::trim).find(|line| !line.is_empty()) else {
        return Ok(None);
    };
    if !role
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b))
    {
        return Err(bad(format!("role name {role:?} is not an IAM role name")));
    }
    let response = fetch(&authorized(format!("{roles_url}{role}"))).map_err(|reason| {
        CredentialsError::Fetch {
            source: SOURCE.into(),
            reason,
        }
    })?;
    if response.status != 200 {
        return Err(bad(format!(
            "credentials answered HTTP {}",
            response.status
        )));
    }
    parse_imds_credentials(&response.body).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_secrets() {
        let mut credentials = AwsCredentials::new(
            "AKIAIOSFODNN7EXAMPLE",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            Some("SESSIONTOKENVALUE".into()),
        );
        credentials.expires_at_unix = Some(42);
        let shown = format!("{credentials:?}");
        assert_eq!(
            shown,
            r#"AwsCredentials { access_key_id: "AKIA…MPLE", secret_access_key: "<redacted>", session_token: Some("<redacted>"), expires_at_unix: Some(42) }"#
        );
        let short = AwsCredentials::new("AKID", "s", None);
        assert!(format!("{short:?}").contains(r#"access_key_id: "<redacted>""#));
        assert!(format!("{short:?}").contains("session_token: None"));
    }

    #[test]
    fn refresh_margin() {
        let mut credentials = AwsCredentials::new("a", "b", None);
        assert!(!credentials.needs_refresh(u64::MAX));
        credentials.expires_at_unix = Some(10_000);
        assert!(!credentials.needs_refresh(10_000 - REFRESH_MARGIN_SECS - 1));
        assert!(credentials.needs_refresh(10_000 - REFRESH_MARGIN_SECS));
        assert!(credentials.needs_refresh(20_000));
        assert!(credentials.needs_refresh(u64::MAX));
    }

    #[test]
    fn container_http_hosts() {
        for allowed in [
            "http://127.0.0.1/creds",
            "http://127.0.0.2:8080/x",
            "http://localhost/x",
            "http://[::1]:80/x",
            "http://169.254.170.23/v1/credentials",
            "http://[fd00:ec2::23]/v1/credentials",
        ] {
            assert!(
                http_url_host(allowed).is_some_and(is_allowed_container_http_host),
                "{allowed}"
            );
        }
        for refused in [
            "http://example.com/x",
            "http://10.0.0.1/x",
            "http://127.0.0.1.evil.com/x",
            "http://user@evil.com/x",
        ] {
            assert!(
                !http_url_host(refused).is_some_and(is_allowed_container_http_host),
                "{refused}"
            );
        }
    }
}
