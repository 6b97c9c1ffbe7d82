//! Google OAuth2 for the Vertex provider: from a credential source to an
//! `Authorization: Bearer` value.
//!
//! Order of calls:
//! 1. `adc::find_credentials` (or `GoogleCredentials::from_json`) picks the credential:
//!    a service-account key, a gcloud authorized user, or the GCE metadata server.
//! 2. `GoogleCredentials::token_request(now)` says what to send — the signed RS256
//!    JWT-bearer assertion form, the refresh-token form, or the metadata GET — without
//!    doing any I/O; `token::parse_token_response` reads the answer.
//!    `GoogleCredentials::access_token` runs both around a [`TokenTransport`].
//! 3. `GoogleTokenProvider` puts a `TokenCache` in front so connection threads share
//!    one token, refreshed 3 min 45 s early by one thread at a time.
//! 4. `vertex_error_to_anthropic` turns Vertex error answers into Anthropic error JSON.
//!
//! ```
//! use cc_relay::auth::google::{GoogleCredentials, GoogleTokenProvider, TokenTransport};
//!
//! /// Stands in for the project's HTTP client.
//! struct MetadataStub;
//! impl TokenTransport for MetadataStub {
//!     fn post_form(&self, _url: &str, _body: &str) -> Result<(u16, Vec<u8>), String> {
//!         Err("not used by the metadata server flow".into())
//!     }
//!     fn get(&self, url: &str, headers: &[(&str, &str)]) -> Result<(u16, Vec<u8>), String> {
//!         assert_eq!(url, "http://metadata.google.internal/computeMetadata/v1/instance/service-accounts/default/token");
//!         assert_eq!(headers, &[("Metadata-Flavor", "Google")]);
//!         Ok((200, br#"{"access_token":"ya29.example","expires_in":3599,"token_type":"Bearer"}"#.to_vec()))
//!     }
//! }
//!
//! let credentials = GoogleCredentials::MetadataServer { host: "metadata.google.internal".into() };
//! let provider = GoogleTokenProvider::new(credentials);
//! let now_unix = 1_700_000_000;
//! let token = provider.token(now_unix, &MetadataStub).unwrap();
//! assert_eq!(token.authorization_value(), "Bearer ya29.example");
//! assert_eq!(token.expires_at_unix, now_unix + 3599);
//! // Until 3 min 45 s before expiry the cached token is reused without a request.
//! let again = provider.token(now_unix + 3000, &MetadataStub).unwrap();
//! assert_eq!(again, token);
//! ```
//!
//! This module owns the key formats and the OAuth exchange; it must not open sockets
//! itself (HTTP goes through `TokenTransport`), read clocks (callers pass `now_unix`), or
//! put any secret — private key, client secret, refresh token, access token — into a
//! `Debug` or `Display` string.

mod b64;

pub mod adc;
pub mod jwt;
pub mod key_file;
pub mod pem;
pub mod token;
pub mod token_cache;
pub mod vertex_error;

use std::fmt;
use std::path::PathBuf;

pub use adc::{find_credentials, find_credentials_in_process, CredentialSource};
pub use jwt::{sign_rs256, CLOUD_PLATFORM_SCOPE};
pub use key_file::{AuthorizedUser, ServiceAccountKey};
pub use pem::{parse_rsa_private_key_pem, PemError, RsaSigningKey};
pub use token::{parse_token_response, Token};
pub use token_cache::TokenCache;
pub use vertex_error::vertex_error_to_anthropic;

/// A string that must never be logged. `Debug` prints `"[redacted]"`; read it with
/// [`Secret::expose`] only where it is sent.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"[redacted]\"")
    }
}

/// The blocking HTTP calls the token flow needs, supplied by the project's HTTP client
/// (tests use a loopback server or a fake). Each returns the status and whole body, or
/// a description of the transport failure.
pub trait TokenTransport {
    /// `POST url` with `Content-Type: application/x-www-form-urlencoded` and `body`.
    fn post_form(&self, url: &str, body: &str) -> Result<(u16, Vec<u8>), String>;
    /// `GET url` with the extra `headers`.
    fn get(&self, url: &str, headers: &[(&str, &str)]) -> Result<(u16, Vec<u8>), String>;
}

/// Everything that can go wrong between a credential source and a token. No variant
/// holds secret material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GoogleAuthError {
    /// The private key PEM was unusable.
    Pem(PemError),
    /// The credential JSON is malformed (missing field, wrong type, bad JSON).
    KeyFile(String),
    /// A credential file `type` this proxy does not implement.
    UnsupportedCredentialType(String),
    /// A named credential file could not be read.
    ReadFile { path: PathBuf, reason: String },
    /// A credential file was read but is unusable; `source` says why.
    InFile {
        path: PathBuf,
        source: Box<GoogleAuthError>,
    },
    /// ring failed to sign the assertion.
    Sign,
    /// The HTTP call to the token endpoint or metadata server failed.
    Transport { url: String, message: String },
    /// The token endpoint answered with an error status.
    TokenEndpoint {
        status: u16,
        error: Option<String>,
        description: Option<String>,
        /// google-auth would retry this answer (408/429/500/503/504, or a
        /// `server_error`-like code).
        retryable: bool,
    },
    /// A 2xx answer that holds no usable token.
    BadTokenResponse(&'static str),
}

impl GoogleAuthError {
    /// Whether trying again later may succeed (the caller owns any back-off).
    pub fn is_retryable(&self) -> bool {
        match self {
            GoogleAuthError::Transport { .. } => true,
            GoogleAuthError::TokenEndpoint { retryable, .. } => *retryable,
            _ => false,
        }
    }
}

impl fmt::Display for GoogleAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GoogleAuthError::Pem(error) => write!(f, "{error}"),
            GoogleAuthError::KeyFile(message) => f.write_str(message),
            GoogleAuthError::UnsupportedCredentialType(kind) => write!(
                f,
                "credential type '{kind}' is not supported (use service_account or authorized_user)"
            ),
            GoogleAuthError::ReadFile { path, reason } => {
                write!(
                    f,
                    "cannot read Google credentials {}: {reason}",
                    path.display()
                )
            }
            GoogleAuthError::InFile { path, source } => {
                write!(f, "Google credentials {}: {source}", path.display())
            }
            GoogleAuthError::Sign => f.write_str("signing the Google JWT assertion failed"),
            GoogleAuthError::Transport { url, message } => {
                write!(f, "Google token request to {url} failed: {message}")
            }
            GoogleAuthError::TokenEndpoint {
                status,
                error,
                description,
                ..
            } => {
                write!(f, "Google token endpoint answered HTTP {status}")?;
                if let Some(error) = error {
                    write!(f, ": {error}")?;
                }
                if let Some(description) = description {
                    write!(f, " ({description})")?;
                }
                Ok(())
            }
            GoogleAuthError::BadTokenResponse(what) => {
                write!(f, "Google token answer is unusable: {what}")
            }
        }
    }
}

impl std::error::Error for GoogleAuthError {}

/// A Google credential able to mint access tokens.
#[derive(Debug, Clone)]
pub enum GoogleCredentials {
    /// Signs a JWT-bearer assertion and trades it at the key file's `token_uri`.
    ServiceAccount(ServiceAccountKey),
    /// Trades a gcloud refresh token at its `token_uri`.
    AuthorizedUser(AuthorizedUser),
    /// Asks the GCE / Cloud Run / GKE metadata server at `host` (no scheme).
    MetadataServer { host: String },
}

/// One token request, ready for a transport. `Debug` hides the form body (it holds an
/// assertion or a refresh token).
#[derive(Clone, PartialEq, Eq)]
pub enum TokenRequest {
    PostForm {
        url: String,
        body: String,
    },
    Get {
        url: String,
        headers: Vec<(&'static str, &'static str)>,
    },
}

impl fmt::Debug for TokenRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenRequest::PostForm { url, .. } => f
                .debug_struct("PostForm")
                .field("url", url)
                .field("body", &"[redacted]")
                .finish(),
            TokenRequest::Get { url, headers } => f
                .debug_struct("Get")
                .field("url", url)
                .field("headers", headers)
                .finish(),
        }
    }
}

/// The metadata server's token path (default service account of the instance).
pub const METADATA_TOKEN_PATH: &str = "/computeMetadata/v1/instance/service-accounts/default/token";

impl GoogleCredentials {
    /// Parses a `service_account` or `authorized_user` JSON file's bytes.
    pub fn from_json(json: &[u8]) -> Result<Self, GoogleAuthError> {
        Ok(match key_file::parse_credentials_file(json)? {
            key_file::CredentialsFile::ServiceAccount(key) => {
                GoogleCredentials::ServiceAccount(key)
            }
            key_file::CredentialsFile::AuthorizedUser(user) => {
                GoogleCredentials::AuthorizedUser(user)
            }
        })
    }

    /// The project named by a service-account key file, if any.
    pub fn project_id(&self) -> Option<&str> {
        match self {
            GoogleCredentials::ServiceAccount(key) => key.project_id.as_deref(),
            _ => None,
        }
    }

    /// An authorized user's `quota_project_id` (for `x-goog-user-project`), if any.
    pub fn quota_project_id(&self) -> Option<&str> {
        match self {
            GoogleCredentials::AuthorizedUser(user) => user.quota_project_id.as_deref(),
            _ => None,
        }
    }

    /// What to send for a fresh token at `now_unix` (Unix seconds). Pure apart from
    /// ring's blinding randomness.
    pub fn token_request(&self, now_unix: u64) -> Result<TokenRequest, GoogleAuthError> {
        match self {
            GoogleCredentials::ServiceAccount(key) => {
                let assertion = jwt::jwt_bearer_assertion(
                    &key.key,
                    key.private_key_id.as_deref(),
                    &key.client_email,
                    CLOUD_PLATFORM_SCOPE,
                    now_unix,
                )
                .map_err(|_| GoogleAuthError::Sign)?;
                Ok(TokenRequest::PostForm {
                    url: key.token_uri.clone(),
                    body: jwt::jwt_bearer_form_body(&assertion),
                })
            }
            GoogleCredentials::AuthorizedUser(user) => Ok(TokenRequest::PostForm {
                url: user.token_uri.clone(),
                body: jwt::refresh_token_form_body(
                    &user.client_id,
                    user.client_secret.expose(),
                    user.refresh_token.expose(),
                    Some(CLOUD_PLATFORM_SCOPE),
                ),
            }),
            GoogleCredentials::MetadataServer { host } => Ok(TokenRequest::Get {
                url: format!("http://{host}{METADATA_TOKEN_PATH}"),
                headers: vec![("Metadata-Flavor", "Google")],
            }),
        }
    }

    /// Fetches a fresh token through `transport` (no caching; see `GoogleTokenProvider`).
    pub fn access_token(
        &self,
        now_unix: u64,
        transport: &dyn TokenTransport,
    ) -> Result<Token, GoogleAuthError> {
        let request = self.token_request(now_unix)?;
        let (url, answer) = match &request {
            TokenRequest::PostForm { url, body } => (url, transport.post_form(url, body)),
            TokenRequest::Get { url, headers } => (url, transport.get(url, headers)),
        };
        let (status, body) = answer.map_err(|message| GoogleAuthError::Transport {
            url: url.clone(),
            message,
        })?;
        parse_token_response(status, &body, now_unix)
    }
}

/// Credentials plus a shared token cache: what a Vertex provider holds. `Sync`, so one
/// instance serves every connection thread.
#[derive(Debug)]
pub struct GoogleTokenProvider {
    credentials: GoogleCredentials,
    cache: TokenCache<GoogleAuthError>,
}

impl GoogleTokenProvider {
    pub fn new(credentials: GoogleCredentials) -> Self {
        GoogleTokenProvider {
            credentials,
            cache: TokenCache::new(),
        }
    }

    /// A token valid at `now_unix`, from the cache or freshly fetched via `transport`.
    pub fn token(
        &self,
        now_unix: u64,
        transport: &dyn TokenTransport,
    ) -> Result<Token, GoogleAuthError> {
        self.cache.get(now_unix, || {
            self.credentials.access_token(now_unix, transport)
        })
    }

    /// Drops the cached token so the next call fetches a new one (after an upstream 401).
    pub fn invalidate(&self) {
        self.cache.invalidate();
    }

    pub fn credentials(&self) -> &GoogleCredentials {
        &self.credentials
    }
}

/// Fuzz entry for target `google_key`: arbitrary bytes as a PEM key, a credential
/// file, a token answer and a Vertex error body must never panic, and the error mapping
/// must always produce JSON.
pub fn fuzz_entry(data: &[u8]) {
    let _ = parse_rsa_private_key_pem(data);
    let _ = GoogleCredentials::from_json(data);
    let _ = parse_token_response(200, data, u64::MAX - 1);
    let _ = token::parse_oauth_error(400, data);
    let (status, json) = vertex_error_to_anthropic(429, data);
    assert_eq!(status, 429);
    assert!(
        serde_json::from_str::<serde_json::Value>(&json).is_ok(),
        "mapped error is not JSON"
    );
}
