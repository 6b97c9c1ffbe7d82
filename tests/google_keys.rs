//! PEM and credential-file parsing: what is accepted, the exact error for each kind of
//! bad input, and that neither errors nor `Debug` output ever carry secret material.

mod google_support;

use cc_relay::auth::google::key_file::{
    parse_credentials_file, CredentialsFile, DEFAULT_TOKEN_URI,
};
use cc_relay::auth::google::{
    parse_rsa_private_key_pem, GoogleAuthError, GoogleCredentials, PemError,
};
use google_support::{jwt_vector, jwt_vector_json, str_field};

fn pem_text(file: &str) -> String {
    String::from_utf8(jwt_vector(file)).expect("ascii")
}

/// A 40-character run from the middle of the key's base64, to look for in messages.
fn key_fragment(pem: &str) -> String {
    pem.lines()
        .nth(5)
        .expect("long pem")
        .chars()
        .take(40)
        .collect()
}

fn pem_error(input: &str) -> PemError {
    parse_rsa_private_key_pem(input.as_bytes()).expect_err("must be rejected")
}

#[test]
fn key_with_crlf_leading_certificate_and_escaped_newlines_still_parses() {
    let pkcs8 = pem_text("rfc7520-bilbo.pkcs8.pem");
    let reference = parse_rsa_private_key_pem(pkcs8.as_bytes()).expect("parses");

    let crlf = pkcs8.replace('\n', "\r\n");
    let with_cert = format!(
        "{}\n{crlf}",
        pem_text("google-auth-testdata/public_cert.pem")
    );
    // As pasted into an env var with its JSON escapes left in.
    let escaped = pkcs8.trim_end().replace('\n', "\\n");
    for variant in [crlf, with_cert, escaped] {
        let key = parse_rsa_private_key_pem(variant.as_bytes()).expect("variant parses");
        assert_eq!(key.public_key_der(), reference.public_key_der());
    }
}

#[test]
fn each_kind_of_bad_pem_gets_its_own_error() {
    assert_eq!(pem_error("not a key"), PemError::NoPemBlock);
    assert_eq!(pem_error(""), PemError::NoPemBlock);
    assert_eq!(
        pem_error(&pem_text("google-auth-testdata/public_cert.pem")),
        PemError::NoPrivateKey {
            labels_seen: vec!["CERTIFICATE".into()]
        }
    );
    assert_eq!(
        pem_error(
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n"
        ),
        PemError::Encrypted
    );
    assert_eq!(
        pem_error("-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\nMIIB\n-----END RSA PRIVATE KEY-----\n"),
        PemError::Encrypted
    );
    assert_eq!(
        pem_error("-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE\n-----END EC PRIVATE KEY-----\n"),
        PemError::UnsupportedKind {
            label: "EC PRIVATE KEY".into()
        }
    );
    assert_eq!(
        pem_error("-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n"),
        PemError::MissingEnd {
            label: "PRIVATE KEY".into()
        }
    );
    assert_eq!(
        pem_error("-----BEGIN PRIVATE KEY-----\nMIIE*vQ==\n-----END PRIVATE KEY-----\n"),
        PemError::BadBase64 {
            label: "PRIVATE KEY".into()
        }
    );
    assert_eq!(
        pem_error("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"),
        PemError::Rejected {
            label: "PRIVATE KEY".into(),
            reason: "InvalidEncoding".into()
        }
    );
}

#[test]
fn only_the_first_sixteen_blocks_are_examined() {
    let many =
        "-----BEGIN X-----\n-----END X-----\n".repeat(17) + &pem_text("rfc7520-bilbo.pkcs8.pem");
    assert_eq!(
        pem_error(&many),
        PemError::NoPrivateKey {
            labels_seen: vec!["X".to_string(); 16]
        }
    );
    let fifteen =
        "-----BEGIN X-----\n-----END X-----\n".repeat(15) + &pem_text("rfc7520-bilbo.pkcs8.pem");
    assert!(parse_rsa_private_key_pem(fifteen.as_bytes()).is_ok());
}

#[test]
fn pkcs1_body_under_a_pkcs8_label_is_rejected_without_quoting_it() {
    let pkcs1 = pem_text("rfc7515-A2.pkcs1.pem");
    let mislabelled = pkcs1.replace("RSA PRIVATE KEY", "PRIVATE KEY");
    let error = pem_error(&mislabelled);
    assert!(matches!(error, PemError::Rejected { .. }), "{error:?}");
    let message = error.to_string();
    assert!(
        message.starts_with("PEM block 'PRIVATE KEY' is not a usable RSA private key ("),
        "{message}"
    );
    assert!(!message.contains(&key_fragment(&pkcs1)));
}

#[test]
fn truncated_key_error_does_not_contain_key_material() {
    let pkcs8 = pem_text("rfc7520-bilbo.pkcs8.pem");
    let lines: Vec<&str> = pkcs8.lines().collect();
    let truncated = format!(
        "{}\n{}\n{}\n",
        lines[0],
        lines[1..10].join("\n"),
        lines[lines.len() - 1]
    );
    let error = pem_error(&truncated);
    assert!(
        matches!(
            error,
            PemError::Rejected { .. } | PemError::BadBase64 { .. }
        ),
        "{error:?}"
    );
    assert!(!format!("{error} {error:?}").contains(&key_fragment(&pkcs8)));
}

#[test]
fn synthetic_service_account_file_parses_every_field() {
    let file = parse_credentials_file(&jwt_vector(
        "google-service-account-synthetic/service_account.json",
    ))
    .expect("parses");
    let CredentialsFile::ServiceAccount(key) = file else {
        panic!("service account expected")
    };
    assert_eq!(
        key.client_email,
        "proxy-test@example-project.iam.gserviceaccount.com"
    );
    assert_eq!(
        key.private_key_id.as_deref(),
        Some("0123456789abcdef0123456789abcdef01234567")
    );
    assert_eq!(key.token_uri, "https://oauth2.googleapis.com/token");
    assert_eq!(key.project_id.as_deref(), Some("example-project"));
    assert_eq!(key.key.modulus_bits(), 2048);
}

#[test]
fn authorized_user_files_parse_with_default_token_uri() {
    for file in [
        "google-auth-testdata/authorized_user.json",
        "google-auth-testdata/authorized_user_cloud_sdk.json",
    ] {
        let expected = jwt_vector_json(file);
        let CredentialsFile::AuthorizedUser(user) =
            parse_credentials_file(&jwt_vector(file)).expect("parses")
        else {
            panic!("authorized user expected");
        };
        assert_eq!(user.client_id, str_field(&expected, "/client_id"));
        assert_eq!(user.client_secret.expose(), "secret");
        assert_eq!(user.refresh_token.expose(), "alabalaportocala");
        assert_eq!(user.token_uri, DEFAULT_TOKEN_URI);
        assert_eq!(user.quota_project_id, None);
    }
    let with_extras =
        br#"{"type":"authorized_user","client_id":"c","client_secret":"s","refresh_token":"r",
        "token_uri":"http://127.0.0.1:9/token","quota_project_id":"billing-project"}"#;
    let credentials = GoogleCredentials::from_json(with_extras).expect("parses");
    assert_eq!(credentials.quota_project_id(), Some("billing-project"));
    let GoogleCredentials::AuthorizedUser(user) = credentials else {
        panic!("authorized user expected")
    };
    assert_eq!(user.token_uri, "http://127.0.0.1:9/token");
}

#[test]
fn debug_output_of_parsed_credentials_holds_no_secret() {
    let service =
        GoogleCredentials::from_json(&jwt_vector("google-auth-testdata/service_account.json"))
            .expect("sa");
    let user =
        GoogleCredentials::from_json(&jwt_vector("google-auth-testdata/authorized_user.json"))
            .expect("user");
    let service_pem = str_field(
        &jwt_vector_json("google-auth-testdata/service_account.json"),
        "/private_key",
    )
    .to_string();
    let printed = format!(
        "{service:?} {user:?} {:?} {:?}",
        service.token_request(0),
        user.token_request(0)
    );
    assert!(printed.contains("service-account@example.com"), "{printed}");
    assert!(printed.contains("RsaSigningKey(2048-bit"), "{printed}");
    for secret in [
        "secret\"",
        "alabalaportocala",
        "assertion=",
        &key_fragment(&service_pem),
    ] {
        assert!(!printed.contains(secret), "{secret} leaked in {printed}");
    }
}

fn key_file_error(json: &str) -> String {
    parse_credentials_file(json.as_bytes())
        .expect_err("must be rejected")
        .to_string()
}

#[test]
fn bad_credential_files_name_the_problem_and_not_the_values() {
    let cases = [
        (r#"{"type":"service_account","token_uri":"t","private_key":"k"}"#, "missing field 'client_email'"),
        (r#"{"type":"service_account","client_email":"e","private_key":"k"}"#, "missing field 'token_uri'"),
        (r#"{"type":"service_account","client_email":"e","token_uri":"t"}"#, "missing field 'private_key'"),
        (r#"{"type":"service_account","client_email":"e","token_uri":"t","private_key":""}"#, "field 'private_key' is empty"),
        (r#"{"type":"service_account","client_email":"e","token_uri":"t","private_key":7}"#, "field 'private_key' must be a string"),
        (r#"{"type":"service_account","client_email":"e","token_uri":"t","private_key":"hunter2"}"#,
            "private key is not PEM: no '-----BEGIN ...-----' line found"),
        (r#"{"type":"authorized_user","client_id":"c","client_secret":"hunter2"}"#, "missing field 'refresh_token'"),
        (r#"{"client_id":"c"}"#, "missing field 'type'"),
        (r#"{"type":"external_account"}"#,
            "credential type 'external_account' is not supported (use service_account or authorized_user)"),
        (r#"["service_account"]"#, "credentials file is not a JSON object"),
        ("{\"type\":\"service_account\",\n\"private_key\":\"hunter2", "credentials file is not valid JSON: it ends early at line 2 column 22"),
        (r#"{"private_key": hunter2}"#, "credentials file is not valid JSON: it has a syntax error at line 1 column 17"),
    ];
    for (json, expected) in cases {
        let message = key_file_error(json);
        assert_eq!(message, expected, "for {json}");
        assert!(!message.contains("hunter2"));
    }
}

#[test]
fn in_file_error_names_the_path() {
    let error = GoogleAuthError::InFile {
        path: "/etc/sa.json".into(),
        source: Box::new(GoogleAuthError::KeyFile("missing field 'token_uri'".into())),
    };
    assert_eq!(
        error.to_string(),
        "Google credentials /etc/sa.json: missing field 'token_uri'"
    );
}
