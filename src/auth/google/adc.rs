//! Application Default Credentials: which Google credential to use, in google-auth's
//! order — an explicit file (the provider's `gcp_credentials_file`), then
//! `GOOGLE_APPLICATION_CREDENTIALS`, then gcloud's ADC file, else the GCE metadata
//! server. The environment and file reads are passed in, so the lookup is testable
//! without touching the process; `find_credentials_in_process` wires in the real ones.
//! It decides only where credentials come from; fetching tokens is elsewhere.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use super::key_file::{parse_credentials_file, CredentialsFile};
use super::{GoogleAuthError, GoogleCredentials};

/// The metadata server's name inside Google Cloud.
pub const DEFAULT_METADATA_HOST: &str = "metadata.google.internal";
/// Relative to `$CLOUDSDK_CONFIG` or `~/.config/gcloud`.
const GCLOUD_ADC_FILE: &str = "application_default_credentials.json";

/// Where the chosen credentials came from (for the startup log line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialSource {
    ExplicitFile(PathBuf),
    EnvironmentVariable(PathBuf),
    GcloudAdcFile(PathBuf),
    MetadataServer { host: String },
}

impl fmt::Display for CredentialSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CredentialSource::ExplicitFile(path) => {
                write!(f, "credentials file {}", path.display())
            }
            CredentialSource::EnvironmentVariable(path) => {
                write!(f, "GOOGLE_APPLICATION_CREDENTIALS ({})", path.display())
            }
            CredentialSource::GcloudAdcFile(path) => {
                write!(f, "gcloud ADC file {}", path.display())
            }
            CredentialSource::MetadataServer { host } => write!(f, "GCE metadata server at {host}"),
        }
    }
}

/// Runs the ADC lookup. `env` reads an environment variable; `read_file` reads a whole
/// file. A named file that cannot be read or parsed is an error (never silently skipped);
/// a missing gcloud ADC file falls through to the metadata server.
pub fn find_credentials(
    explicit_file: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
    read_file: &dyn Fn(&Path) -> io::Result<Vec<u8>>,
) -> Result<(GoogleCredentials, CredentialSource), GoogleAuthError> {
    if let Some(path) = explicit_file {
        let credentials = load_file(path, read_file)?;
        return Ok((
            credentials,
            CredentialSource::ExplicitFile(path.to_path_buf()),
        ));
    }
    if let Some(path) = non_empty(env, "GOOGLE_APPLICATION_CREDENTIALS") {
        let path = PathBuf::from(path);
        let credentials = load_file(&path, read_file)?;
        return Ok((credentials, CredentialSource::EnvironmentVariable(path)));
    }
    if let Some(path) = gcloud_adc_path(env) {
        match read_file(&path) {
            Ok(bytes) => {
                let credentials = parse_file(&path, &bytes)?;
                return Ok((credentials, CredentialSource::GcloudAdcFile(path)));
            }
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => return Err(io_error(&path, &error)),
        }
    }
    let host = metadata_host(env);
    Ok((
        GoogleCredentials::MetadataServer { host: host.clone() },
        CredentialSource::MetadataServer { host },
    ))
}

/// `find_credentials` with this process's environment and file system.
pub fn find_credentials_in_process(
    explicit_file: Option<&Path>,
) -> Result<(GoogleCredentials, CredentialSource), GoogleAuthError> {
    find_credentials(explicit_file, &|name| std::env::var(name).ok(), &|path| {
        std::fs::read(path)
    })
}

/// gcloud's ADC file: `$CLOUDSDK_CONFIG/…`, else `%APPDATA%\gcloud\…` on Windows,
/// else `$HOME/.config/gcloud/…`. `None` when no base directory is known.
pub fn gcloud_adc_path(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    if let Some(config_dir) = non_empty(env, "CLOUDSDK_CONFIG") {
        return Some(PathBuf::from(config_dir).join(GCLOUD_ADC_FILE));
    }
    if cfg!(windows) {
        let app_data = non_empty(env, "APPDATA")?;
        return Some(PathBuf::from(app_data).join("gcloud").join(GCLOUD_ADC_FILE));
    }
    let home = non_empty(env, "HOME")?;
    Some(
        PathBuf::from(home)
            .join(".config")
            .join("gcloud")
            .join(GCLOUD_ADC_FILE),
    )
}

/// `GCE_METADATA_HOST`, else the legacy `GCE_METADATA_ROOT`, else
/// `metadata.google.internal` — google-auth's order.
pub fn metadata_host(env: &dyn Fn(&str) -> Option<String>) -> String {
    non_empty(env, "GCE_METADATA_HOST")
        .or_else(|| non_empty(env, "GCE_METADATA_ROOT"))
        .unwrap_or_else(|| DEFAULT_METADATA_HOST.to_string())
}

fn non_empty(env: &dyn Fn(&str) -> Option<String>, name: &str) -> Option<String> {
    env(name).filter(|value| !value.is_empty())
}

fn load_file(
    path: &Path,
    read_file: &dyn Fn(&Path) -> io::Result<Vec<u8>>,
) -> Result<GoogleCredentials, GoogleAuthError> {
    let bytes = read_file(path).map_err(|error| io_error(path, &error))?;
    parse_file(path, &bytes)
}

fn parse_file(path: &Path, bytes: &[u8]) -> Result<GoogleCredentials, GoogleAuthError> {
    let parsed = parse_credentials_file(bytes).map_err(|error| GoogleAuthError::InFile {
        path: path.to_path_buf(),
        source: Box::new(error),
    })?;
    Ok(match parsed {
        CredentialsFile::ServiceAccount(key) => GoogleCredentials::ServiceAccount(key),
        CredentialsFile::AuthorizedUser(user) => GoogleCredentials::AuthorizedUser(user),
    })
}

fn io_error(path: &Path, error: &io::Error) -> GoogleAuthError {
    GoogleAuthError::ReadFile {
        path: path.to_path_buf(),
        reason: error.to_string(),
    }
}
