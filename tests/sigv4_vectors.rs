//! SigV4 signing against every stored vector (PROTOCOLS §1, `vectors/sigv4/*`): the
//! classic aws4_testsuite (`.creq`, `.sts`, `.authz` exact), the aws-c-auth v4 header
//! cases (canonical request, string to sign, signature exact) and the Bedrock cases
//! generated with botocore.

use std::path::{Path, PathBuf};

use cc_relay::auth::aws_credentials::AwsCredentials;
use cc_relay::auth::sigv4::{
    amz_date, bedrock_model_path, sign, SignableRequest, SignedHeaders, SigningParams,
    SigningSettings, UtcDateTime,
};
use serde_json::Value;

const ACCESS_KEY_ID: &str = "AKIDEXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
/// 2015-08-30T12:36:00Z, the suites' signing time.
const SUITE_TIME: i64 = 1_440_938_160;

#[path = "common/vectors.rs"]
mod vectors;
use vectors::vectors_dir;

fn read_text(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A request parsed from a suite's `.req` / `request.txt`.
struct SuiteRequest {
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// Parses the suite's HTTP-like request files. The request line carries the path as the
/// suite wants it encoded (raw UTF-8 and spaces included), so it is split at the first
/// space and at the last ` HTTP/`. Indented lines continue the previous header (obsolete
/// line folding); the signer turns the line break into one space.
fn parse_request(text: &str) -> SuiteRequest {
    let (head, body) = text.split_once("\n\n").unwrap_or((text, ""));
    let mut lines = head.split('\n');
    let request_line = lines.next().unwrap();
    let (method, rest) = request_line.split_once(' ').unwrap();
    let (target, _version) = rest.rsplit_once(" HTTP/").unwrap();
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in lines {
        if line.is_empty() {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            let last = headers.last_mut().expect("continuation after a header");
            last.1.push('\n');
            last.1.push_str(line);
            continue;
        }
        let (name, value) = line.split_once(':').unwrap();
        headers.push((name.to_owned(), value.to_owned()));
    }
    SuiteRequest {
        method: method.to_owned(),
        path: path.to_owned(),
        query: query.to_owned(),
        headers,
        body: body.as_bytes().to_vec(),
    }
}

fn sign_suite_request(
    request: &SuiteRequest,
    credentials: &AwsCredentials,
    region: &str,
    service: &str,
    time: UtcDateTime,
    settings: SigningSettings,
) -> SignedHeaders {
    let headers: Vec<(&str, &str)> = request
        .headers
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    let signable = SignableRequest {
        method: &request.method,
        path: &request.path,
        query: &request.query,
        headers: &headers,
        body: &request.body,
    };
    let mut params = SigningParams::new(credentials, region, service, time);
    params.settings = settings;
    sign(&signable, &params)
}

/// Every directory under `root` holding a file with `marker` extension or name.
fn case_dirs(root: &Path, is_case: &dyn Fn(&Path) -> bool) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        if is_case(&dir) {
            found.push(dir.clone());
        }
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            }
        }
    }
    found.sort();
    found
}

#[test]
fn aws4_testsuite_every_case() {
    let root = vectors_dir().join("sigv4/aws4_testsuite");
    let dirs = case_dirs(&root, &|dir| {
        let name = dir.file_name().unwrap().to_str().unwrap();
        dir.join(format!("{name}.req")).is_file()
    });
    assert_eq!(dirs.len(), 34, "the suite has 34 cases");
    let time = UtcDateTime::from_unix_seconds(SUITE_TIME);
    for dir in &dirs {
        let name = dir.file_name().unwrap().to_str().unwrap();
        let file = |extension: &str| read_text(&dir.join(format!("{name}.{extension}")));
        let request = parse_request(&file("req"));
        let creq = file("creq");
        let sreq = file("sreq");
        // Session token: signed when the expected canonical request lists it, else
        // added after signing when the expected signed request carries it.
        let signed_token = creq
            .lines()
            .find_map(|line| line.strip_prefix("x-amz-security-token:"));
        let unsigned_token = sreq.lines().find_map(|line| {
            let (header, value) = line.split_once(':')?;
            header
                .eq_ignore_ascii_case("x-amz-security-token")
                .then_some(value)
        });
        let token = signed_token.or(unsigned_token).map(str::to_owned);
        let settings = SigningSettings {
            sign_session_token: signed_token.is_some(),
            ..SigningSettings::default()
        };
        let credentials = AwsCredentials::new(ACCESS_KEY_ID, SECRET, token.clone());
        let signed = sign_suite_request(
            &request,
            &credentials,
            "us-east-1",
            "service",
            time,
            settings,
        );
        assert_eq!(signed.canonical_request, creq, "{name}: canonical request");
        assert_eq!(signed.string_to_sign, file("sts"), "{name}: string to sign");
        assert_eq!(
            signed.get("authorization"),
            Some(file("authz").as_str()),
            "{name}"
        );
        assert_eq!(signed.get("x-amz-date"), Some("20150830T123600Z"));
        assert_eq!(
            signed.get("x-amz-security-token"),
            token.as_deref(),
            "{name}"
        );
        // The signed request's Authorization line is the same value — except in
        // get-vanilla-with-session-token, whose .sreq carries get-vanilla's signature
        // (5fa00fa3…) while its own .authz says 07ec1639…; the .authz is the one that
        // matches its .creq and .sts.
        let authorization_line = sreq
            .lines()
            .find_map(|line| line.strip_prefix("Authorization:"))
            .map(str::trim);
        if name != "get-vanilla-with-session-token" {
            assert_eq!(
                authorization_line,
                signed.get("authorization"),
                "{name}: .sreq"
            );
        }
    }
}

#[test]
fn aws_c_auth_v4_every_header_case() {
    let root = vectors_dir().join("sigv4/aws-c-auth-v4");
    let dirs = case_dirs(&root, &|dir| dir.join("context.json").is_file());
    assert_eq!(dirs.len(), 38, "the suite has 38 cases");
    for dir in &dirs {
        let name = dir.file_name().unwrap().to_str().unwrap();
        let context: Value = serde_json::from_str(&read_text(&dir.join("context.json"))).unwrap();
        let request = parse_request(&read_text(&dir.join("request.txt")));
        let token = context["credentials"]["token"].as_str().map(str::to_owned);
        let credentials = AwsCredentials::new(
            context["credentials"]["access_key_id"].as_str().unwrap(),
            context["credentials"]["secret_access_key"]
                .as_str()
                .unwrap(),
            token.clone(),
        );
        let millis =
            cc_relay::obs::time::parse_rfc3339_unix_millis(context["timestamp"].as_str().unwrap())
                .unwrap();
        let time = UtcDateTime::from_unix_millis(millis);
        assert_eq!(time.to_unix_millis(), SUITE_TIME * 1000);
        let settings = SigningSettings {
            normalize_path: context["normalize"].as_bool().unwrap(),
            encode_path: true,
            add_content_sha256: context["sign_body"].as_bool().unwrap(),
            sign_session_token: !context["omit_session_token"].as_bool().unwrap_or(false),
        };
        let signed = sign_suite_request(
            &request,
            &credentials,
            context["region"].as_str().unwrap(),
            context["service"].as_str().unwrap(),
            time,
            settings,
        );
        let expected = |file: &str| read_text(&dir.join(file));
        assert_eq!(
            signed.canonical_request,
            expected("header-canonical-request.txt"),
            "{name}: canonical request"
        );
        assert_eq!(
            signed.string_to_sign,
            expected("header-string-to-sign.txt"),
            "{name}: string to sign"
        );
        assert_eq!(signed.signature, expected("header-signature.txt"), "{name}");
        let signed_request = expected("header-signed-request.txt");
        let header_value = |wanted: &str| {
            signed_request.lines().find_map(|line| {
                let (header, value) = line.split_once(':')?;
                header.eq_ignore_ascii_case(wanted).then_some(value)
            })
        };
        assert_eq!(
            header_value("authorization"),
            signed.get("authorization"),
            "{name}"
        );
        assert_eq!(
            header_value("x-amz-date"),
            signed.get("x-amz-date"),
            "{name}"
        );
        assert_eq!(
            header_value("x-amz-content-sha256"),
            signed.get("x-amz-content-sha256"),
            "{name}"
        );
        assert_eq!(
            header_value("x-amz-security-token"),
            signed.get("x-amz-security-token"),
            "{name}"
        );
    }
}

#[test]
fn bedrock_botocore_every_case() {
    let cases: Value = serde_json::from_str(&read_text(
        &vectors_dir().join("sigv4/bedrock-botocore/cases.json"),
    ))
    .unwrap();
    assert_eq!(cases["service"], "bedrock");
    let cases = cases["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 4);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let url = case["url"].as_str().unwrap();
        let (host, path) = url
            .strip_prefix("https://")
            .unwrap()
            .split_once('/')
            .map(|(host, path)| (host, format!("/{path}")))
            .unwrap();
        let region = host.split('.').nth(1).unwrap();
        let mut headers: Vec<(String, String)> = case["request_headers_before_signing"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(name, value)| (name.clone(), value.as_str().unwrap().to_owned()))
            .collect();
        headers.push(("Host".into(), host.into()));
        let request = SuiteRequest {
            method: case["method"].as_str().unwrap().to_owned(),
            path,
            query: String::new(),
            headers,
            body: case["body_utf8"].as_str().unwrap().as_bytes().to_vec(),
        };
        let token = case["session_token"].as_str().map(str::to_owned);
        let credentials = AwsCredentials::new(ACCESS_KEY_ID, SECRET, token.clone());
        let time = UtcDateTime::from_unix_seconds(SUITE_TIME);
        assert_eq!(amz_date(&time), case["x_amz_date"]);
        let signed = sign_suite_request(
            &request,
            &credentials,
            region,
            "bedrock",
            time,
            SigningSettings::default(),
        );
        assert_eq!(
            signed.canonical_request, case["canonical_request"],
            "{name}"
        );
        assert_eq!(signed.string_to_sign, case["string_to_sign"], "{name}");
        assert_eq!(
            signed.get("authorization"),
            case["authorization"].as_str(),
            "{name}"
        );
        let sent = &case["signed_request_headers"];
        assert_eq!(
            signed.get("x-amz-date"),
            sent["X-Amz-Date"].as_str(),
            "{name}"
        );
        assert_eq!(
            signed.get("x-amz-security-token"),
            sent["X-Amz-Security-Token"].as_str(),
            "{name}"
        );
        assert_eq!(signed.get("x-amz-security-token"), token.as_deref());
        let payload_hash = signed.canonical_request.rsplit('\n').next().unwrap();
        assert_eq!(payload_hash, case["body_sha256"], "{name}");
    }
}

#[test]
fn bedrock_model_path_produces_the_wire_paths_of_the_botocore_cases() {
    let cases = [
        (
            "anthropic.claude-3-5-sonnet-20240620-v1:0",
            false,
            "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/invoke",
        ),
        (
            "us.anthropic.claude-sonnet-4-20250514-v1:0",
            true,
            "/model/us.anthropic.claude-sonnet-4-20250514-v1%3A0/invoke-with-response-stream",
        ),
        (
            "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abcdef123456",
            false,
            "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Aapplication-inference-profile%2Fabcdef123456/invoke",
        ),
    ];
    let stored: Value = serde_json::from_str(&read_text(
        &vectors_dir().join("sigv4/bedrock-botocore/cases.json"),
    ))
    .unwrap();
    let urls: Vec<&str> = stored["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|case| case["url"].as_str().unwrap())
        .collect();
    for (model, stream, path) in cases {
        assert_eq!(bedrock_model_path(model, stream), path);
        assert!(
            urls.iter().any(|url| url.ends_with(path)),
            "{path} is a stored case"
        );
    }
}

#[test]
fn signer_replaces_caller_supplied_managed_headers() {
    // A stale X-Amz-Date or Authorization from the caller must not leak into the
    // signature; the signer's own values are the ones signed and returned.
    let credentials = AwsCredentials::new(ACCESS_KEY_ID, SECRET, Some("token".into()));
    let time = UtcDateTime::from_unix_seconds(SUITE_TIME);
    let clean = SignableRequest {
        method: "GET",
        path: "/",
        query: "",
        headers: &[("Host", "example.amazonaws.com")],
        body: b"",
    };
    let noisy = SignableRequest {
        headers: &[
            ("Host", "example.amazonaws.com"),
            ("X-Amz-Date", "19990101T000000Z"),
            ("Authorization", "Bearer stale"),
            ("x-amz-security-token", "old-token"),
        ],
        ..clean
    };
    let params = SigningParams::new(&credentials, "us-east-1", "service", time);
    assert_eq!(sign(&noisy, &params), sign(&clean, &params));
    let signed = sign(&clean, &params);
    assert_eq!(
        signed
            .headers
            .iter()
            .map(|(name, _)| *name)
            .collect::<Vec<_>>(),
        ["x-amz-date", "x-amz-security-token", "authorization"]
    );
    assert_eq!(
        signed.signed_headers,
        "host;x-amz-date;x-amz-security-token"
    );
}
