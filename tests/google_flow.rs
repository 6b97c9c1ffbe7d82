//! The token flow end to end against a `TokenTransport`: exact requests on a real
//! loopback socket for the service-account and metadata-server paths, token-answer and
//! OAuth-error parsing, the provider's caching, and Vertex error JSON -> Anthropic JSON.

mod google_support;

use std::cell::RefCell;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread::JoinHandle;

use cc_relay::auth::google::token::{parse_oauth_error, DEFAULT_TOKEN_LIFETIME_SECS};
use cc_relay::auth::google::{
    parse_token_response, vertex_error_to_anthropic, GoogleAuthError, GoogleCredentials,
    GoogleTokenProvider, Secret, Token, TokenTransport,
};
use google_support::{jwt_vector, jwt_vector_json, str_field};

const NOW: u64 = 1_700_000_000;

// ---- a one-shot HTTP/1.1 server and a matching blocking client ----

/// Serves one request with `response`, and hands back the raw request bytes.
fn serve_once(response: &'static str) -> (String, JoinHandle<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("addr").to_string();
    let handle = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("accept");
        let request = read_http_message(&mut stream);
        stream.write_all(response.as_bytes()).expect("write");
        request
    });
    (address, handle)
}

/// Reads a head and, if it declares one, a Content-Length body.
fn read_http_message(stream: &mut TcpStream) -> Vec<u8> {
    let mut data = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let n = stream.read(&mut buffer).expect("read");
        data.extend_from_slice(&buffer[..n]);
        if let Some(end) = find(&data, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&data[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|line| line.strip_prefix("content-length:"))
                .map_or(0, |value| value.trim().parse::<usize>().expect("length"));
            if data.len() >= end + 4 + length || n == 0 {
                return data;
            }
        } else if n == 0 {
            return data;
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// Plain-HTTP transport for `http://host:port/path` URLs.
struct LoopbackTransport;

impl LoopbackTransport {
    fn exchange(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Result<(u16, Vec<u8>), String> {
        let rest = url.strip_prefix("http://").ok_or("only http:// in tests")?;
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let mut stream = TcpStream::connect(authority).map_err(|e| e.to_string())?;
        let mut request =
            format!("{method} {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n");
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        if method == "POST" {
            request.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        request.push_str("\r\n");
        request.push_str(body);
        stream
            .write_all(request.as_bytes())
            .map_err(|e| e.to_string())?;
        let mut response = Vec::new();
        stream
            .read_to_end(&mut response)
            .map_err(|e| e.to_string())?;
        let head_end = find(&response, b"\r\n\r\n").ok_or("no head")?;
        let status = std::str::from_utf8(&response[9..12]).map_err(|e| e.to_string())?;
        Ok((
            status.parse().map_err(|_| "bad status")?,
            response[head_end + 4..].to_vec(),
        ))
    }
}

impl TokenTransport for LoopbackTransport {
    fn post_form(&self, url: &str, body: &str) -> Result<(u16, Vec<u8>), String> {
        self.exchange(
            "POST",
            url,
            &[("Content-Type", "application/x-www-form-urlencoded")],
            body,
        )
    }
    fn get(&self, url: &str, headers: &[(&str, &str)]) -> Result<(u16, Vec<u8>), String> {
        self.exchange("GET", url, headers, "")
    }
}

fn synthetic_credentials_with_token_uri(token_uri: &str) -> GoogleCredentials {
    let mut file = jwt_vector_json("google-service-account-synthetic/service_account.json");
    file["token_uri"] = serde_json::Value::String(token_uri.to_string());
    GoogleCredentials::from_json(file.to_string().as_bytes()).expect("parses")
}

#[test]
fn service_account_posts_the_exact_vector_body_over_a_socket() {
    let (address, server) = serve_once(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 73\r\n\r\n{\"access_token\":\"ya29.loopback\",\"expires_in\":3599,\"token_type\":\"Bearer\"}",
    );
    let credentials = synthetic_credentials_with_token_uri(&format!("http://{address}/token"));
    let token = credentials
        .access_token(NOW, &LoopbackTransport)
        .expect("token");
    assert_eq!(
        token,
        Token {
            access_token: Secret::new("ya29.loopback"),
            token_type: "Bearer".into(),
            expires_at_unix: NOW + 3599
        }
    );
    assert_eq!(token.authorization_value(), "Bearer ya29.loopback");

    let vector = jwt_vector_json("google-service-account-synthetic/jwt_bearer_vector.json");
    let body = str_field(&vector, "/token_request/body");
    let expected = format!(
        "POST /token HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    assert_eq!(
        String::from_utf8(server.join().expect("server")).expect("utf8"),
        expected
    );
}

#[test]
fn metadata_server_is_asked_with_metadata_flavor_header() {
    let (address, server) = serve_once(
        "HTTP/1.1 200 OK\r\nMetadata-Flavor: Google\r\nContent-Length: 74\r\n\r\n{\"access_token\":\"ya29.metadata\",\"expires_in\":\"1800\",\"token_type\":\"Bearer\"}",
    );
    let credentials = GoogleCredentials::MetadataServer {
        host: address.clone(),
    };
    let token = credentials
        .access_token(NOW, &LoopbackTransport)
        .expect("token");
    assert_eq!(token.access_token.expose(), "ya29.metadata");
    assert_eq!(token.expires_at_unix, NOW + 1800);
    let request = String::from_utf8(server.join().expect("server")).expect("utf8");
    assert_eq!(
        request,
        format!("GET /computeMetadata/v1/instance/service-accounts/default/token HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\nMetadata-Flavor: Google\r\n\r\n")
    );
}

#[test]
fn token_endpoint_error_status_becomes_a_typed_error() {
    let (address, server) = serve_once(
        "HTTP/1.1 400 Bad Request\r\nContent-Length: 69\r\n\r\n{\"error\":\"invalid_grant\",\"error_description\":\"Invalid JWT Signature.\"}",
    );
    let credentials = synthetic_credentials_with_token_uri(&format!("http://{address}/token"));
    let error = credentials
        .access_token(NOW, &LoopbackTransport)
        .expect_err("rejected");
    server.join().expect("server");
    assert_eq!(
        error,
        GoogleAuthError::TokenEndpoint {
            status: 400,
            error: Some("invalid_grant".into()),
            description: Some("Invalid JWT Signature.".into()),
            retryable: false,
        }
    );
    assert_eq!(
        error.to_string(),
        "Google token endpoint answered HTTP 400: invalid_grant (Invalid JWT Signature.)"
    );
    assert!(!error.is_retryable());
}

#[test]
fn unreachable_token_endpoint_is_a_retryable_transport_error() {
    // Bind then drop: the port is (almost certainly) closed for the connect.
    let address = TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr");
    let credentials = synthetic_credentials_with_token_uri(&format!("http://{address}/token"));
    let error = credentials
        .access_token(NOW, &LoopbackTransport)
        .expect_err("fails");
    let GoogleAuthError::Transport { url, .. } = &error else {
        panic!("{error:?}")
    };
    assert_eq!(url, &format!("http://{address}/token"));
    assert!(error.is_retryable());
}

// ---- a fake transport for everything that does not need a socket ----

/// Answers every call with `answer` and records (method, url, body or headers).
struct FakeTransport {
    answer: Result<(u16, Vec<u8>), String>,
    calls: RefCell<Vec<(String, String, String)>>,
}

impl FakeTransport {
    fn answering(status: u16, body: &str) -> Self {
        FakeTransport {
            answer: Ok((status, body.as_bytes().to_vec())),
            calls: RefCell::new(Vec::new()),
        }
    }
}

impl TokenTransport for FakeTransport {
    fn post_form(&self, url: &str, body: &str) -> Result<(u16, Vec<u8>), String> {
        self.calls
            .borrow_mut()
            .push(("POST".into(), url.into(), body.into()));
        self.answer.clone()
    }
    fn get(&self, url: &str, headers: &[(&str, &str)]) -> Result<(u16, Vec<u8>), String> {
        self.calls
            .borrow_mut()
            .push(("GET".into(), url.into(), format!("{headers:?}")));
        self.answer.clone()
    }
}

#[test]
fn authorized_user_refreshes_at_the_default_token_uri() {
    let credentials =
        GoogleCredentials::from_json(&jwt_vector("google-auth-testdata/authorized_user.json"))
            .expect("parses");
    let transport = FakeTransport::answering(
        200,
        r#"{"access_token":"ya29.user","expires_in":3599,"scope":"x","token_type":"Bearer","id_token":"e30"}"#,
    );
    let token = credentials.access_token(NOW, &transport).expect("token");
    assert_eq!(token.access_token.expose(), "ya29.user");
    assert_eq!(
        transport.calls.into_inner(),
        vec![(
            "POST".to_string(),
            "https://oauth2.googleapis.com/token".to_string(),
            "grant_type=refresh_token&client_id=123&client_secret=secret&refresh_token=alabalaportocala&scope=https%3A%2F%2Fwww.googleapis.com%2Fauth%2Fcloud-platform".to_string(),
        )]
    );
}

#[test]
fn provider_caches_until_the_refresh_margin_and_refetches_after_invalidate() {
    let credentials = GoogleCredentials::MetadataServer {
        host: "169.254.169.254".into(),
    };
    let provider = GoogleTokenProvider::new(credentials);
    let transport = FakeTransport::answering(
        200,
        r#"{"access_token":"ya29.a","expires_in":3600,"token_type":"Bearer"}"#,
    );
    let expiry = NOW + 3600;
    assert_eq!(
        provider
            .token(NOW, &transport)
            .expect("first")
            .expires_at_unix,
        expiry
    );
    assert_eq!(
        provider
            .token(expiry - 226, &transport)
            .expect("cached")
            .expires_at_unix,
        expiry
    );
    assert_eq!(transport.calls.borrow().len(), 1);
    // 3 min 45 s before expiry the token is due.
    assert_eq!(
        provider
            .token(expiry - 225, &transport)
            .expect("refreshed")
            .expires_at_unix,
        expiry - 225 + 3600
    );
    assert_eq!(transport.calls.borrow().len(), 2);
    provider.invalidate();
    provider
        .token(expiry - 224, &transport)
        .expect("after invalidate");
    let calls = transport.calls.into_inner();
    assert_eq!(calls.len(), 3);
    assert_eq!(
        calls[0].1,
        "http://169.254.169.254/computeMetadata/v1/instance/service-accounts/default/token"
    );
    assert_eq!(calls[0].2, r#"[("Metadata-Flavor", "Google")]"#);
}

// ---- token answers and OAuth errors ----

#[test]
fn token_answers_parse_numbers_strings_and_defaults() {
    let parse = |body: &str| parse_token_response(200, body.as_bytes(), NOW);
    assert_eq!(
        parse(r#"{"access_token":"t","expires_in":3599,"token_type":"Bearer"}"#)
            .expect("ok")
            .expires_at_unix,
        NOW + 3599
    );
    assert_eq!(
        parse(r#"{"access_token":"t","expires_in":" 60 "}"#)
            .expect("ok")
            .expires_at_unix,
        NOW + 60
    );
    let defaulted = parse(r#"{"access_token":"t"}"#).expect("ok");
    assert_eq!(
        (defaulted.token_type.as_str(), defaulted.expires_at_unix),
        ("Bearer", NOW + DEFAULT_TOKEN_LIFETIME_SECS)
    );
    assert_eq!(
        parse_token_response(200, br#"{"access_token":"t","expires_in":10}"#, u64::MAX)
            .expect("ok")
            .expires_at_unix,
        u64::MAX
    );
}

#[test]
fn unusable_token_answers_are_rejected_without_quoting_the_body() {
    let cases = [
        ("not json", "body is not a JSON object"),
        (r#"{"expires_in":10}"#, "no 'access_token' field"),
        (
            r#"{"access_token":""}"#,
            "'access_token' is not a non-empty string",
        ),
        (
            r#"{"access_token":"ya29.sekrit","expires_in":-5}"#,
            "'expires_in' is not a whole number of seconds",
        ),
        (
            r#"{"access_token":"ya29.sekrit","expires_in":"soon"}"#,
            "'expires_in' is not a whole number of seconds",
        ),
        (
            r#"{"access_token":"ya29.sekrit","expires_in":1.5}"#,
            "'expires_in' is not a whole number of seconds",
        ),
        (
            r#"{"access_token":"ya29.sekrit","expires_in":[1]}"#,
            "'expires_in' is not a number",
        ),
        (
            r#"{"access_token":"ya29.sekrit","token_type":"Bearer\r\nX: y"}"#,
            "'token_type' is not a valid token type",
        ),
        (
            r#"{"access_token":"ya29 sekrit\r\n"}"#,
            "'access_token' has characters not allowed in a header",
        ),
    ];
    for (body, what) in cases {
        let error = parse_token_response(200, body.as_bytes(), NOW).expect_err(body);
        assert_eq!(error, GoogleAuthError::BadTokenResponse(what), "{body}");
        assert!(!format!("{error} {error:?}").contains("sekrit"));
    }
}

#[test]
fn oauth_errors_are_classified_retryable_like_google_auth() {
    let retryable =
        |status: u16, body: &str| parse_oauth_error(status, body.as_bytes()).is_retryable();
    for status in [408, 429, 500, 503, 504] {
        assert!(retryable(status, ""), "{status}");
    }
    for status in [400, 401, 403, 404, 502] {
        assert!(
            !retryable(status, r#"{"error":"invalid_grant"}"#),
            "{status}"
        );
    }
    assert!(retryable(400, r#"{"error":"internal_failure"}"#));
    assert!(retryable(
        400,
        r#"{"error":"x","error_description":"temporarily_unavailable"}"#
    ));
    assert!(retryable(401, r#"{"error":"server_error"}"#));
    assert_eq!(
        parse_oauth_error(
            403,
            br#"{"error":{"code":403,"message":"Permission denied","status":"PERMISSION_DENIED"}}"#
        ),
        GoogleAuthError::TokenEndpoint {
            status: 403,
            error: Some("Permission denied".into()),
            description: None,
            retryable: false
        }
    );
    assert_eq!(
        parse_oauth_error(404, b"<html>Not Found</html>"),
        GoogleAuthError::TokenEndpoint {
            status: 404,
            error: None,
            description: None,
            retryable: false
        }
    );
}

// ---- Vertex error JSON -> Anthropic error JSON ----

#[test]
fn wrapped_google_quota_error_becomes_anthropic_rate_limit_error() {
    let body = br#"[{"error":{"code":429,"message":"Quota exceeded for aiplatform.googleapis.com/online_prediction_requests_per_base_model with base model: anthropic-claude.","status":"RESOURCE_EXHAUSTED"}}]"#;
    assert_eq!(
        vertex_error_to_anthropic(429, body),
        (429, r#"{"type":"error","error":{"type":"rate_limit_error","message":"Vertex AI RESOURCE_EXHAUSTED: Quota exceeded for aiplatform.googleapis.com/online_prediction_requests_per_base_model with base model: anthropic-claude."}}"#.to_string())
    );
}

#[test]
fn unwrapped_google_errors_map_by_status() {
    let cases: [(u16, &str, &str); 5] = [
        (400, "FAILED_PRECONDITION", "invalid_request_error"),
        (401, "UNAUTHENTICATED", "authentication_error"),
        (403, "PERMISSION_DENIED", "permission_error"),
        (404, "NOT_FOUND", "not_found_error"),
        (503, "UNAVAILABLE", "api_error"),
    ];
    for (status, name, kind) in cases {
        let body = format!(
            r#"{{"error":{{"code":{status},"message":"m \"q\"","status":"{name}","details":[]}}}}"#
        );
        assert_eq!(
            vertex_error_to_anthropic(status, body.as_bytes()),
            (
                status,
                format!(
                    r#"{{"type":"error","error":{{"type":"{kind}","message":"Vertex AI {name}: m \"q\""}}}}"#
                )
            )
        );
    }
}

#[test]
fn anthropic_shaped_errors_pass_through() {
    let body = br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
    assert_eq!(
        vertex_error_to_anthropic(529, body),
        (529, String::from_utf8(body.to_vec()).expect("utf8"))
    );
    let wrapped = br#"[{"type":"error","error":{"type":"invalid_request_error","message":"bad"}}]"#;
    assert_eq!(
        vertex_error_to_anthropic(400, wrapped),
        (
            400,
            r#"{"error":{"message":"bad","type":"invalid_request_error"},"type":"error"}"#
                .to_string()
        )
    );
}

#[test]
fn non_json_and_odd_status_errors_still_produce_anthropic_json() {
    assert_eq!(
        vertex_error_to_anthropic(502, b"<html>\r\nBad Gateway</html>\n"),
        (502, r#"{"type":"error","error":{"type":"api_error","message":"Vertex AI returned HTTP 502: <html>  Bad Gateway</html>"}}"#.to_string())
    );
    assert_eq!(
        vertex_error_to_anthropic(504, b""),
        (504, r#"{"type":"error","error":{"type":"timeout_error","message":"Vertex AI returned HTTP 504"}}"#.to_string())
    );
    // A 200 carrying an error: the body's code decides, else 500.
    assert_eq!(
        vertex_error_to_anthropic(200, br#"{"error":{"code":429,"message":"q"}}"#),
        (
            429,
            r#"{"type":"error","error":{"type":"rate_limit_error","message":"Vertex AI: q"}}"#
                .to_string()
        )
    );
    assert_eq!(vertex_error_to_anthropic(200, b"[]").0, 500);
    assert_eq!(
        vertex_error_to_anthropic(413, br#"{"error":"too_big","error_description":"payload"}"#),
        (413, r#"{"type":"error","error":{"type":"request_too_large","message":"Vertex AI: too_big: payload"}}"#.to_string())
    );
    let long = "x".repeat(5000);
    let (_, json) = vertex_error_to_anthropic(500, long.as_bytes());
    let value: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(
        value["error"]["message"]
            .as_str()
            .expect("message")
            .chars()
            .count(),
        2000
    );
}
