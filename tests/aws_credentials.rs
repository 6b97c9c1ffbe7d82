//! The AWS credentials chain (SPEC §2) with injected environment, files and HTTP: the
//! order of sources, the shared-file format, the ECS and IMDSv2 exchanges request by
//! request, and that misconfiguration is reported rather than skipped.

use std::collections::HashMap;

use cc_relay::auth::aws_credentials::{
    credentials_from_env, parse_container_credentials, parse_imds_credentials,
    parse_shared_credentials, resolve_credentials, AwsCredentials, ConfiguredAws, CredentialSource,
    CredentialSources, CredentialsError, FetchRequest, FetchResponse, ResolvedCredentials,
};

/// A fake system: environment, files, and canned HTTP answers keyed by "METHOD url".
#[derive(Default)]
struct FakeSystem {
    env: HashMap<&'static str, String>,
    files: HashMap<String, String>,
    answers: HashMap<String, Result<FetchResponse, String>>,
}

impl FakeSystem {
    fn env(mut self, name: &'static str, value: &str) -> Self {
        self.env.insert(name, value.to_owned());
        self
    }

    fn file(mut self, path: &str, text: &str) -> Self {
        self.files.insert(path.to_owned(), text.to_owned());
        self
    }

    fn answer(mut self, method_and_url: &str, status: u16, body: &str) -> Self {
        self.answers.insert(
            method_and_url.to_owned(),
            Ok(FetchResponse {
                status,
                body: body.as_bytes().to_vec(),
            }),
        );
        self
    }

    /// Runs the chain; returns its result and every request it made, in order.
    fn resolve(
        &self,
        config: &ConfiguredAws,
    ) -> (
        Result<ResolvedCredentials, CredentialsError>,
        Vec<FetchRequest>,
    ) {
        let env = |name: &str| self.env.get(name).cloned();
        let read_file = |path: &str| self.files.get(path).cloned();
        let mut requests = Vec::new();
        let mut fetch = |request: &FetchRequest| {
            requests.push(request.clone());
            self.answers
                .get(&format!("{} {}", request.method, request.url))
                .cloned()
                .unwrap_or_else(|| Err("connection refused".to_owned()))
        };
        let mut sources = CredentialSources {
            env: &env,
            read_file: &read_file,
            fetch: &mut fetch,
        };
        let result = resolve_credentials(config, &mut sources);
        (result, requests)
    }
}

const CREDENTIALS_FILE: &str = "\
# comment line
; another comment
[default]
aws_access_key_id = AKIDDEFAULT
aws_secret_access_key = secretdefault

[work]
AWS_ACCESS_KEY_ID=AKIDWORK
aws_secret_access_key   =   secret/with+chars=
aws_session_token = tokenwork
s3 =
    max_concurrent_requests = 20

[role-only]
role_arn = arn:aws:iam::123456789012:role/x
source_profile = default

[half]
aws_access_key_id = AKIDHALF
";

const IMDS_JSON: &str = r#"{
  "Code" : "Success",
  "LastUpdated" : "2015-08-30T12:00:00Z",
  "Type" : "AWS-HMAC",
  "AccessKeyId" : "ASIAIMDS",
  "SecretAccessKey" : "imdssecret",
  "Token" : "imdstoken",
  "Expiration" : "2015-08-30T18:36:00Z"
}"#;

const ECS_JSON: &str = r#"{"AccessKeyId":"ASIAECS","SecretAccessKey":"ecssecret","Token":"ecstoken","Expiration":"2015-08-30T13:36:00Z","RoleArn":"arn:aws:iam::1:role/task"}"#;

fn keys(credentials: &AwsCredentials) -> (&str, &str, Option<&str>, Option<u64>) {
    (
        credentials.access_key_id.as_str(),
        credentials.secret_access_key.as_str(),
        credentials.session_token.as_deref(),
        credentials.expires_at_unix,
    )
}

#[test]
fn shared_file_profiles() {
    let parse = |profile| parse_shared_credentials(CREDENTIALS_FILE, profile, "creds");
    let default = parse("default").unwrap().unwrap();
    assert_eq!(keys(&default), ("AKIDDEFAULT", "secretdefault", None, None));
    let work = parse("work").unwrap().unwrap();
    assert_eq!(
        keys(&work),
        ("AKIDWORK", "secret/with+chars=", Some("tokenwork"), None)
    );
    assert_eq!(parse("absent"), Ok(None));
    assert_eq!(
        parse("role-only"),
        Err(CredentialsError::ProfileWithoutKeys {
            profile: "role-only".into(),
            path: "creds".into()
        })
    );
    assert!(matches!(
        parse("half"),
        Err(CredentialsError::Incomplete { .. })
    ));
    // CRLF files and a later section of the same name.
    let crlf = "[a]\r\naws_access_key_id=K1\r\naws_secret_access_key=S1\r\n[a]\r\naws_access_key_id=K2\r\naws_secret_access_key=S2\r\n";
    let later = parse_shared_credentials(crlf, "a", "f").unwrap().unwrap();
    assert_eq!(keys(&later), ("K2", "S2", None, None));
}

#[test]
fn environment_variables() {
    let env = |pairs: &'static [(&'static str, &'static str)]| {
        move |name: &str| {
            pairs
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| value.to_string())
        }
    };
    let full = env(&[
        ("AWS_ACCESS_KEY_ID", "AKIDENV"),
        ("AWS_SECRET_ACCESS_KEY", "envsecret"),
        ("AWS_SESSION_TOKEN", "envtoken"),
    ]);
    let credentials = credentials_from_env(&full).unwrap().unwrap();
    assert_eq!(
        keys(&credentials),
        ("AKIDENV", "envsecret", Some("envtoken"), None)
    );
    assert_eq!(credentials_from_env(&env(&[])), Ok(None));
    assert_eq!(
        credentials_from_env(&env(&[
            ("AWS_ACCESS_KEY_ID", ""),
            ("AWS_SECRET_ACCESS_KEY", "")
        ])),
        Ok(None)
    );
    assert!(matches!(
        credentials_from_env(&env(&[("AWS_SECRET_ACCESS_KEY", "only")])),
        Err(CredentialsError::Incomplete { .. })
    ));
}

#[test]
fn endpoint_json_documents() {
    let imds = parse_imds_credentials(IMDS_JSON.as_bytes()).unwrap();
    assert_eq!(
        keys(&imds),
        (
            "ASIAIMDS",
            "imdssecret",
            Some("imdstoken"),
            Some(1_440_938_160 + 6 * 3600)
        )
    );
    let ecs = parse_container_credentials(ECS_JSON.as_bytes()).unwrap();
    assert_eq!(
        keys(&ecs),
        (
            "ASIAECS",
            "ecssecret",
            Some("ecstoken"),
            Some(1_440_938_160 + 3600)
        )
    );
    let failed = br#"{"Code":"AssumeRoleUnauthorizedAccess","Message":"denied"}"#;
    assert_eq!(
        parse_imds_credentials(failed),
        Err(CredentialsError::BadResponse {
            source: "EC2 instance metadata (IMDSv2)".into(),
            reason: "Code AssumeRoleUnauthorizedAccess denied".into()
        })
    );
    for bad in [
        &b"not json"[..],
        br#"{"AccessKeyId":"A"}"#,
        br#"{"SecretAccessKey":"S"}"#,
        br#"{"AccessKeyId":"A","SecretAccessKey":"S","Expiration":"tomorrow"}"#,
    ] {
        assert!(matches!(
            parse_container_credentials(bad),
            Err(CredentialsError::BadResponse { .. })
        ));
    }
    // No Expiration: treated as not expiring (long-term keys served by a local agent).
    let plain = parse_container_credentials(br#"{"AccessKeyId":"A","SecretAccessKey":"S"}"#);
    assert_eq!(plain.map(|c| c.expires_at_unix), Ok(None));
}

#[test]
fn config_keys_win_over_everything() {
    let system = FakeSystem::default()
        .env("AWS_ACCESS_KEY_ID", "AKIDENV")
        .env("AWS_SECRET_ACCESS_KEY", "envsecret");
    let config = ConfiguredAws {
        access_key_id: Some("AKIDCFG".into()),
        secret_access_key: Some("cfgsecret".into()),
        session_token: Some("cfgtoken".into()),
        profile: Some("work".into()),
    };
    let (result, requests) = system.resolve(&config);
    let resolved = result.unwrap();
    assert_eq!(resolved.source, CredentialSource::Config);
    assert_eq!(
        keys(&resolved.credentials),
        ("AKIDCFG", "cfgsecret", Some("cfgtoken"), None)
    );
    assert!(requests.is_empty());

    let half = ConfiguredAws {
        access_key_id: Some("AKIDCFG".into()),
        ..ConfiguredAws::default()
    };
    assert!(matches!(
        system.resolve(&half).0,
        Err(CredentialsError::Incomplete { .. })
    ));
}

#[test]
fn configured_profile_comes_before_environment_and_must_exist() {
    let system = FakeSystem::default()
        .env("HOME", "/home/u")
        .env("AWS_ACCESS_KEY_ID", "AKIDENV")
        .env("AWS_SECRET_ACCESS_KEY", "envsecret")
        .file("/home/u/.aws/credentials", CREDENTIALS_FILE);
    let config = ConfiguredAws {
        profile: Some("work".into()),
        ..ConfiguredAws::default()
    };
    let resolved = system.resolve(&config).0.unwrap();
    assert_eq!(resolved.credentials.access_key_id, "AKIDWORK");
    assert_eq!(
        resolved.source,
        CredentialSource::SharedFile {
            path: "/home/u/.aws/credentials".into(),
            profile: "work".into()
        }
    );
    let missing = ConfiguredAws {
        profile: Some("nope".into()),
        ..ConfiguredAws::default()
    };
    assert_eq!(
        system.resolve(&missing).0,
        Err(CredentialsError::ProfileNotFound {
            profile: "nope".into(),
            path: "/home/u/.aws/credentials".into()
        })
    );
}

#[test]
fn environment_then_shared_file() {
    let base = FakeSystem::default()
        .env("HOME", "/home/u")
        .file("/home/u/.aws/credentials", CREDENTIALS_FILE);
    let from_env = FakeSystem {
        env: base.env.clone(),
        files: base.files.clone(),
        answers: HashMap::new(),
    }
    .env("AWS_ACCESS_KEY_ID", "AKIDENV")
    .env("AWS_SECRET_ACCESS_KEY", "envsecret");
    let resolved = from_env.resolve(&ConfiguredAws::default()).0.unwrap();
    assert_eq!(resolved.source, CredentialSource::Environment);

    let resolved = base.resolve(&ConfiguredAws::default()).0.unwrap();
    assert_eq!(resolved.credentials.access_key_id, "AKIDDEFAULT");

    let with_profile = base.env("AWS_PROFILE", "work");
    let resolved = with_profile.resolve(&ConfiguredAws::default()).0.unwrap();
    assert_eq!(resolved.credentials.access_key_id, "AKIDWORK");

    let custom_path = FakeSystem::default()
        .env("AWS_SHARED_CREDENTIALS_FILE", "/etc/creds")
        .env("AWS_PROFILE", "missing")
        .file("/etc/creds", CREDENTIALS_FILE);
    assert_eq!(
        custom_path.resolve(&ConfiguredAws::default()).0,
        Err(CredentialsError::ProfileNotFound {
            profile: "missing".into(),
            path: "/etc/creds".into()
        })
    );
}

#[test]
fn ecs_relative_uri_with_token_file() {
    let system = FakeSystem::default()
        .env(
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
            "/v2/credentials/abc",
        )
        .env("AWS_CONTAINER_AUTHORIZATION_TOKEN", "ignored-when-file-set")
        .env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "/var/token")
        .file("/var/token", "file-token\n")
        .answer("GET http://169.254.170.2/v2/credentials/abc", 200, ECS_JSON);
    let (result, requests) = system.resolve(&ConfiguredAws::default());
    let resolved = result.unwrap();
    assert_eq!(resolved.source, CredentialSource::Container);
    assert_eq!(resolved.credentials.access_key_id, "ASIAECS");
    assert_eq!(
        requests,
        [FetchRequest {
            method: "GET",
            url: "http://169.254.170.2/v2/credentials/abc".into(),
            headers: vec![("authorization", "file-token".into())],
        }]
    );
}

#[test]
fn ecs_full_uri_rules() {
    let allowed = FakeSystem::default()
        .env(
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            "http://169.254.170.23/v1/credentials",
        )
        .env("AWS_CONTAINER_AUTHORIZATION_TOKEN", "eks-token")
        .answer("GET http://169.254.170.23/v1/credentials", 200, ECS_JSON);
    let (result, requests) = allowed.resolve(&ConfiguredAws::default());
    assert_eq!(result.unwrap().source, CredentialSource::Container);
    assert_eq!(
        requests[0].headers,
        vec![("authorization", "eks-token".to_owned())]
    );

    let forbidden = FakeSystem::default().env(
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "http://evil.example/creds",
    );
    let (result, requests) = forbidden.resolve(&ConfiguredAws::default());
    assert_eq!(
        result,
        Err(CredentialsError::ForbiddenContainerUri {
            uri: "http://evil.example/creds".into()
        })
    );
    assert!(requests.is_empty());

    // Configured but failing: an error, not a silent fall-through to IMDS.
    let failing = FakeSystem::default()
        .env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/x")
        .answer("GET http://169.254.170.2/v2/x", 500, "oops");
    let (result, requests) = failing.resolve(&ConfiguredAws::default());
    assert_eq!(
        result,
        Err(CredentialsError::BadResponse {
            source: "ECS container credentials".into(),
            reason: "HTTP 500".into()
        })
    );
    assert_eq!(requests.len(), 1);
}

#[test]
fn imdsv2_token_role_credentials() {
    let base = "http://169.254.169.254";
    let system = FakeSystem::default()
        .answer(
            &format!("PUT {base}/latest/api/token"),
            200,
            "imds-session-token",
        )
        .answer(
            &format!("GET {base}/latest/meta-data/iam/security-credentials/"),
            200,
            "my-role\n",
        )
        .answer(
            &format!("GET {base}/latest/meta-data/iam/security-credentials/my-role"),
            200,
            IMDS_JSON,
        );
    let (result, requests) = system.resolve(&ConfiguredAws::default());
    let resolved = result.unwrap();
    assert_eq!(resolved.source, CredentialSource::InstanceMetadata);
    assert_eq!(
        keys(&resolved.credentials),
        (
            "ASIAIMDS",
            "imdssecret",
            Some("imdstoken"),
            Some(1_440_938_160 + 6 * 3600)
        )
    );
    let token_header = vec![("x-aws-ec2-metadata-token", "imds-session-token".to_owned())];
    assert_eq!(
        requests,
        [
            FetchRequest {
                method: "PUT",
                url: format!("{base}/latest/api/token"),
                headers: vec![("x-aws-ec2-metadata-token-ttl-seconds", "21600".into())],
            },
            FetchRequest {
                method: "GET",
                url: format!("{base}/latest/meta-data/iam/security-credentials/"),
                headers: token_header.clone(),
            },
            FetchRequest {
                method: "GET",
                url: format!("{base}/latest/meta-data/iam/security-credentials/my-role"),
                headers: token_header,
            },
        ]
    );
    assert!(resolved
        .credentials
        .needs_refresh(1_440_938_160 + 6 * 3600 - 60));
    assert!(!resolved.credentials.needs_refresh(1_440_938_160));
}

#[test]
fn imds_endpoint_override_disable_and_absence() {
    let custom = FakeSystem::default()
        .env(
            "AWS_EC2_METADATA_SERVICE_ENDPOINT",
            "http://127.0.0.1:9999/",
        )
        .answer("PUT http://127.0.0.1:9999/latest/api/token", 200, "t")
        .answer(
            "GET http://127.0.0.1:9999/latest/meta-data/iam/security-credentials/",
            404,
            "",
        );
    let (result, requests) = custom.resolve(&ConfiguredAws::default());
    assert!(matches!(result, Err(CredentialsError::NotFound { .. })));
    assert_eq!(requests.len(), 2);

    let disabled = FakeSystem::default().env("AWS_EC2_METADATA_DISABLED", "true");
    let (result, requests) = disabled.resolve(&ConfiguredAws::default());
    assert!(requests.is_empty());
    let Err(CredentialsError::NotFound { tried }) = result else {
        panic!("expected NotFound");
    };
    assert_eq!(tried.last().map(String::as_str), Some("IMDSv2 (disabled)"));

    // Off EC2 the token request cannot connect: nothing found, one attempt only.
    let (result, requests) = FakeSystem::default().resolve(&ConfiguredAws::default());
    let error = result.unwrap_err();
    assert_eq!(requests.len(), 1);
    assert_eq!(
        error.to_string(),
        "no AWS credentials found (tried: config keys, environment, shared credentials file, ECS container endpoint (not configured), IMDSv2 (unreachable or no role))"
    );

    // A role name that would change the URL is refused.
    let hostile = FakeSystem::default()
        .answer("PUT http://169.254.169.254/latest/api/token", 200, "t")
        .answer(
            "GET http://169.254.169.254/latest/meta-data/iam/security-credentials/",
            200,
            "../../user-data",
        );
    let (result, requests) = hostile.resolve(&ConfiguredAws::default());
    assert!(matches!(result, Err(CredentialsError::BadResponse { .. })));
    assert_eq!(requests.len(), 2);
}

#[test]
fn errors_never_print_secrets() {
    let system = FakeSystem::default()
        .env("AWS_SECRET_ACCESS_KEY", "super-secret-value")
        .env("AWS_SESSION_TOKEN", "super-secret-token");
    let error = system.resolve(&ConfiguredAws::default()).0.unwrap_err();
    let shown = format!("{error} {error:?}");
    assert!(!shown.contains("super-secret"), "{shown}");
}
