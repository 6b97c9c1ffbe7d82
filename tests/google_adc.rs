//! Application Default Credentials lookup order with a fake environment and file system:
//! explicit file, GOOGLE_APPLICATION_CREDENTIALS, gcloud's ADC file, metadata server.

mod google_support;

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

use cc_relay::auth::google::adc::{gcloud_adc_path, metadata_host};
use cc_relay::auth::google::{
    find_credentials, CredentialSource, GoogleAuthError, GoogleCredentials,
};
use google_support::jwt_vector;

struct World {
    env: HashMap<&'static str, &'static str>,
    files: HashMap<PathBuf, Vec<u8>>,
}

impl World {
    fn new(env: &[(&'static str, &'static str)]) -> Self {
        World {
            env: env.iter().copied().collect(),
            files: HashMap::new(),
        }
    }
    fn with_file(mut self, path: &str, bytes: Vec<u8>) -> Self {
        self.files.insert(PathBuf::from(path), bytes);
        self
    }
    fn lookup(
        &self,
        explicit: Option<&str>,
    ) -> Result<(GoogleCredentials, CredentialSource), GoogleAuthError> {
        let env = |name: &str| self.env.get(name).map(|value| value.to_string());
        let read = |path: &Path| {
            self.files
                .get(path)
                .cloned()
                .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "No such file or directory"))
        };
        find_credentials(explicit.map(Path::new), &env, &read)
    }
}

fn service_account() -> Vec<u8> {
    jwt_vector("google-service-account-synthetic/service_account.json")
}

fn authorized_user() -> Vec<u8> {
    jwt_vector("google-auth-testdata/authorized_user.json")
}

const GCLOUD_FILE: &str = "/home/u/.config/gcloud/application_default_credentials.json";

#[test]
fn explicit_file_wins_over_everything() {
    let world = World::new(&[
        ("GOOGLE_APPLICATION_CREDENTIALS", "/env/sa.json"),
        ("HOME", "/home/u"),
    ])
    .with_file("/cfg/sa.json", service_account())
    .with_file("/env/sa.json", authorized_user())
    .with_file(GCLOUD_FILE, authorized_user());
    let (credentials, source) = world.lookup(Some("/cfg/sa.json")).expect("found");
    assert!(matches!(credentials, GoogleCredentials::ServiceAccount(_)));
    assert_eq!(
        source,
        CredentialSource::ExplicitFile("/cfg/sa.json".into())
    );
    assert_eq!(source.to_string(), "credentials file /cfg/sa.json");
}

#[test]
fn environment_variable_comes_before_the_gcloud_file() {
    let world = World::new(&[
        ("GOOGLE_APPLICATION_CREDENTIALS", "/env/sa.json"),
        ("HOME", "/home/u"),
    ])
    .with_file("/env/sa.json", service_account())
    .with_file(GCLOUD_FILE, authorized_user());
    let (credentials, source) = world.lookup(None).expect("found");
    assert!(matches!(credentials, GoogleCredentials::ServiceAccount(_)));
    assert_eq!(
        source,
        CredentialSource::EnvironmentVariable("/env/sa.json".into())
    );
}

#[test]
fn gcloud_file_under_home_then_cloudsdk_config() {
    let world = World::new(&[("HOME", "/home/u")]).with_file(GCLOUD_FILE, authorized_user());
    let (credentials, source) = world.lookup(None).expect("found");
    assert!(matches!(credentials, GoogleCredentials::AuthorizedUser(_)));
    assert_eq!(source, CredentialSource::GcloudAdcFile(GCLOUD_FILE.into()));

    let world = World::new(&[("HOME", "/home/u"), ("CLOUDSDK_CONFIG", "/opt/gcloud")])
        .with_file(
            "/opt/gcloud/application_default_credentials.json",
            authorized_user(),
        )
        .with_file(GCLOUD_FILE, service_account());
    let (credentials, source) = world.lookup(None).expect("found");
    assert!(matches!(credentials, GoogleCredentials::AuthorizedUser(_)));
    assert_eq!(
        source,
        CredentialSource::GcloudAdcFile("/opt/gcloud/application_default_credentials.json".into())
    );
}

#[test]
fn nothing_found_falls_back_to_the_metadata_server_with_host_overrides() {
    let cases: [(&[(&'static str, &'static str)], &str); 4] = [
        (&[("HOME", "/home/u")], "metadata.google.internal"),
        (&[("GCE_METADATA_HOST", "127.0.0.1:8080")], "127.0.0.1:8080"),
        (
            &[("GCE_METADATA_ROOT", "legacy.internal")],
            "legacy.internal",
        ),
        (
            &[
                ("GCE_METADATA_HOST", "new:1"),
                ("GCE_METADATA_ROOT", "old:2"),
                ("GOOGLE_APPLICATION_CREDENTIALS", ""),
            ],
            "new:1",
        ),
    ];
    for (env, host) in cases {
        let (credentials, source) = World::new(env).lookup(None).expect("metadata");
        assert!(
            matches!(&credentials, GoogleCredentials::MetadataServer { host: h } if h == host),
            "{credentials:?}"
        );
        assert_eq!(
            source,
            CredentialSource::MetadataServer {
                host: host.to_string()
            }
        );
    }
}

#[test]
fn a_named_file_that_is_missing_or_bad_is_an_error_not_a_fallback() {
    let world = World::new(&[("GOOGLE_APPLICATION_CREDENTIALS", "/missing.json")]);
    let error = world.lookup(None).expect_err("missing file");
    assert_eq!(
        error.to_string(),
        "cannot read Google credentials /missing.json: No such file or directory"
    );

    let error = World::new(&[])
        .lookup(Some("/nope.json"))
        .expect_err("missing explicit file");
    assert!(matches!(error, GoogleAuthError::ReadFile { .. }));

    let world = World::new(&[("HOME", "/home/u")])
        .with_file(GCLOUD_FILE, b"{\"type\":\"external_account\"}".to_vec());
    let error = world.lookup(None).expect_err("unsupported gcloud file");
    assert_eq!(
        error.to_string(),
        format!("Google credentials {GCLOUD_FILE}: credential type 'external_account' is not supported (use service_account or authorized_user)")
    );
}

#[test]
fn unreadable_gcloud_file_is_reported_not_skipped() {
    let env = |name: &str| (name == "HOME").then(|| "/home/u".to_string());
    let read = |_: &Path| -> io::Result<Vec<u8>> {
        Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "Permission denied",
        ))
    };
    let error = find_credentials(None, &env, &read).expect_err("permission");
    assert_eq!(
        error.to_string(),
        format!("cannot read Google credentials {GCLOUD_FILE}: Permission denied")
    );
}

#[test]
fn path_helpers_follow_google_auth() {
    let no_env = |_: &str| None;
    assert_eq!(gcloud_adc_path(&no_env), None);
    assert_eq!(metadata_host(&no_env), "metadata.google.internal");
    let home = |name: &str| (name == "HOME").then(|| "/root".to_string());
    assert_eq!(
        gcloud_adc_path(&home),
        Some(PathBuf::from(
            "/root/.config/gcloud/application_default_credentials.json"
        ))
    );
}
