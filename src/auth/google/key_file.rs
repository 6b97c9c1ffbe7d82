//! Google credential JSON files: `service_account` key files and `authorized_user`
//! (gcloud ADC) files, dispatched on `type`. Parsing only: no file reads, no network.
//! Error messages name fields and positions, never field values, so a malformed file
//! cannot leak its secrets into a log.

use std::fmt;

use serde_json::{Map, Value};

use super::pem::{parse_rsa_private_key_pem, RsaSigningKey};
use super::{GoogleAuthError, Secret};

/// Where authorized users refresh; google-auth uses it when the file names none.
pub const DEFAULT_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";

/// A parsed credential file.
#[derive(Debug, Clone)]
pub enum CredentialsFile {
    ServiceAccount(ServiceAccountKey),
    AuthorizedUser(AuthorizedUser),
}

/// A `type: service_account` key file with its private key already parsed.
#[derive(Clone)]
pub struct ServiceAccountKey {
    pub client_email: String,
    /// Sent as the JWT `kid`; Google key files always have it.
    pub private_key_id: Option<String>,
    /// Where the assertion is POSTed (normally `https://oauth2.googleapis.com/token`).
    pub token_uri: String,
    pub project_id: Option<String>,
    pub key: RsaSigningKey,
}

impl fmt::Debug for ServiceAccountKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceAccountKey")
            .field("client_email", &self.client_email)
            .field("private_key_id", &self.private_key_id)
            .field("token_uri", &self.token_uri)
            .field("project_id", &self.project_id)
            .field("key", &self.key)
            .finish()
    }
}

/// A `type: authorized_user` file (what `gcloud auth application-default login` writes).
#[derive(Debug, Clone)]
pub struct AuthorizedUser {
    pub client_id: String,
    pub client_secret: Secret,
    pub refresh_token: Secret,
    pub token_uri: String,
    /// Billed project, sent upstream as `x-goog-user-project` by the caller if wanted.
    pub quota_project_id: Option<String>,
}

/// Parses a credential file, dispatching on its `type` field.
pub fn parse_credentials_file(json: &[u8]) -> Result<CredentialsFile, GoogleAuthError> {
    let value: Value = serde_json::from_slice(json).map_err(json_error)?;
    let Value::Object(fields) = value else {
        return Err(GoogleAuthError::KeyFile(
            "credentials file is not a JSON object".into(),
        ));
    };
    let kind = required_string(&fields, "type")?;
    match kind {
        "service_account" => parse_service_account(&fields).map(CredentialsFile::ServiceAccount),
        "authorized_user" => parse_authorized_user(&fields).map(CredentialsFile::AuthorizedUser),
        other => Err(GoogleAuthError::UnsupportedCredentialType(short_printable(
            other,
        ))),
    }
}

fn parse_service_account(
    fields: &Map<String, Value>,
) -> Result<ServiceAccountKey, GoogleAuthError> {
    let client_email = required_string(fields, "client_email")?.to_string();
    let token_uri = required_string(fields, "token_uri")?.to_string();
    let pem = required_string(fields, "private_key")?;
    let key = parse_rsa_private_key_pem(pem.as_bytes()).map_err(GoogleAuthError::Pem)?;
    Ok(ServiceAccountKey {
        client_email,
        private_key_id: optional_string(fields, "private_key_id")?,
        token_uri,
        project_id: optional_string(fields, "project_id")?,
        key,
    })
}

fn parse_authorized_user(fields: &Map<String, Value>) -> Result<AuthorizedUser, GoogleAuthError> {
    Ok(AuthorizedUser {
        client_id: required_string(fields, "client_id")?.to_string(),
        client_secret: Secret::new(required_string(fields, "client_secret")?),
        refresh_token: Secret::new(required_string(fields, "refresh_token")?),
        token_uri: optional_string(fields, "token_uri")?
            .unwrap_or_else(|| DEFAULT_TOKEN_URI.to_string()),
        quota_project_id: optional_string(fields, "quota_project_id")?,
    })
}

fn required_string<'a>(
    fields: &'a Map<String, Value>,
    name: &str,
) -> Result<&'a str, GoogleAuthError> {
    match fields.get(name) {
        Some(Value::String(text)) if !text.is_empty() => Ok(text),
        Some(Value::String(_)) => Err(GoogleAuthError::KeyFile(format!("field '{name}' is empty"))),
        Some(_) => Err(wrong_type(name)),
        None => Err(GoogleAuthError::KeyFile(format!("missing field '{name}'"))),
    }
}

fn optional_string(
    fields: &Map<String, Value>,
    name: &str,
) -> Result<Option<String>, GoogleAuthError> {
    match fields.get(name) {
        Some(Value::String(text)) if !text.is_empty() => Ok(Some(text.clone())),
        Some(Value::String(_)) | Some(Value::Null) | None => Ok(None),
        Some(_) => Err(wrong_type(name)),
    }
}

fn wrong_type(name: &str) -> GoogleAuthError {
    GoogleAuthError::KeyFile(format!("field '{name}' must be a string"))
}

/// serde_json can quote input in some messages; keep only the category and position.
fn json_error(error: serde_json::Error) -> GoogleAuthError {
    let what = match error.classify() {
        serde_json::error::Category::Eof => "ends early",
        serde_json::error::Category::Syntax => "has a syntax error",
        serde_json::error::Category::Data => "has an unexpected value",
        serde_json::error::Category::Io => "could not be read",
    };
    GoogleAuthError::KeyFile(format!(
        "credentials file is not valid JSON: it {what} at line {} column {}",
        error.line(),
        error.column()
    ))
}

/// `type` values are not secret, but come from a file: repeat only short printable ones.
fn short_printable(text: &str) -> String {
    if text.len() <= 64 && text.bytes().all(|b| b.is_ascii_graphic()) {
        text.to_string()
    } else {
        "(unprintable)".to_string()
    }
}
