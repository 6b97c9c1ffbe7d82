//! RS256 signing and the Google JWT-bearer assertion against the shared vectors: RFC 7515
//! A.2, RFC 7520 §4.1 (each from its PKCS#8 and its PKCS#1 PEM), the synthetic Google
//! service-account vector (assertion and form body byte for byte), and google-auth's
//! own test key checked with ring's verifier.

mod google_support;

use cc_relay::auth::google::jwt::{
    assertion_claims_json, assertion_header_json, jwt_bearer_assertion, jwt_bearer_form_body,
    refresh_token_form_body, sign_compact_rs256, signing_input,
};
use cc_relay::auth::google::{
    parse_rsa_private_key_pem, sign_rs256, GoogleCredentials, TokenRequest, CLOUD_PLATFORM_SCOPE,
};
use google_support::{base64_decode, jwt_vector, jwt_vector_json, pem_body_der, str_field};
use ring::signature::{UnparsedPublicKey, RSA_PKCS1_2048_8192_SHA256};

fn key(pem_file: &str) -> cc_relay::auth::google::RsaSigningKey {
    parse_rsa_private_key_pem(&jwt_vector(pem_file)).expect("vector key parses")
}

#[test]
fn rfc7515_a2_signing_input_and_signature_reproduce_from_both_pem_forms() {
    let vector = jwt_vector_json("rfc7515-A2-rs256.json");
    let header = str_field(&vector, "/protected_header_utf8");
    let payload = str_field(&vector, "/payload_utf8");
    let input = signing_input(header.as_bytes(), payload.as_bytes());
    assert_eq!(input, str_field(&vector, "/signing_input"));
    for pem in ["rfc7515-A2.pkcs8.pem", "rfc7515-A2.pkcs1.pem"] {
        let key = key(pem);
        assert_eq!(key.modulus_bits(), 2048, "{pem}");
        let signature = sign_rs256(&key, input.as_bytes()).expect("signs");
        assert_eq!(
            signature,
            base64_decode(str_field(&vector, "/signature_b64url")),
            "{pem}"
        );
        let compact =
            sign_compact_rs256(&key, header.as_bytes(), payload.as_bytes()).expect("signs");
        assert_eq!(compact, str_field(&vector, "/compact"), "{pem}");
    }
}

#[test]
fn rfc7520_4_1_signature_reproduces_from_both_pem_forms() {
    let vector = jwt_vector_json("rfc7520-cookbook/jws/4_1.rsa_v15_signature.json");
    let header = base64_decode(str_field(&vector, "/signing/protected_b64u"));
    let payload = str_field(&vector, "/input/payload");
    assert_eq!(
        signing_input(&header, payload.as_bytes()),
        str_field(&vector, "/signing/sig-input")
    );
    for pem in ["rfc7520-bilbo.pkcs8.pem", "rfc7520-bilbo.pkcs1.pem"] {
        let compact = sign_compact_rs256(&key(pem), &header, payload.as_bytes()).expect("signs");
        assert_eq!(compact, str_field(&vector, "/output/compact"), "{pem}");
    }
}

#[test]
fn pkcs8_and_pkcs1_pem_of_one_key_load_the_same_public_key() {
    for (pkcs8, pkcs1, spki) in [
        (
            "rfc7515-A2.pkcs8.pem",
            "rfc7515-A2.pkcs1.pem",
            "rfc7515-A2.spki.pub.pem",
        ),
        (
            "rfc7520-bilbo.pkcs8.pem",
            "rfc7520-bilbo.pkcs1.pem",
            "rfc7520-bilbo.spki.pub.pem",
        ),
    ] {
        let from_pkcs8 = key(pkcs8);
        let from_pkcs1 = key(pkcs1);
        assert_eq!(from_pkcs8.public_key_der(), from_pkcs1.public_key_der());
        // An SPKI wraps the PKCS#1 RSAPublicKey as the tail of its BIT STRING.
        let spki_der = pem_body_der(&String::from_utf8(jwt_vector(spki)).expect("ascii"));
        assert!(spki_der.ends_with(from_pkcs8.public_key_der()), "{spki}");
    }
}

#[test]
fn synthetic_google_vector_reproduces_header_claims_assertion_and_body() {
    let vector = jwt_vector_json("google-service-account-synthetic/jwt_bearer_vector.json");
    let file = jwt_vector_json("google-service-account-synthetic/service_account.json");
    let now = vector["now_unix"].as_u64().expect("now_unix");
    assert_eq!(now, 1_700_000_000);
    let kid = str_field(&file, "/private_key_id");
    let email = str_field(&file, "/client_email");

    assert_eq!(
        assertion_header_json(Some(kid)),
        str_field(&vector, "/header_json")
    );
    assert_eq!(
        assertion_claims_json(email, CLOUD_PLATFORM_SCOPE, now),
        str_field(&vector, "/claims_json")
    );

    let key = parse_rsa_private_key_pem(str_field(&file, "/private_key").as_bytes()).expect("key");
    let assertion =
        jwt_bearer_assertion(&key, Some(kid), email, CLOUD_PLATFORM_SCOPE, now).expect("signs");
    assert_eq!(assertion, str_field(&vector, "/assertion"));
    assert!(assertion.starts_with(str_field(&vector, "/signing_input")));
    assert!(assertion.ends_with(str_field(&vector, "/signature_b64url")));
    assert_eq!(
        jwt_bearer_form_body(&assertion),
        str_field(&vector, "/token_request/body")
    );
}

#[test]
fn credentials_from_the_synthetic_file_build_the_exact_token_request() {
    let vector = jwt_vector_json("google-service-account-synthetic/jwt_bearer_vector.json");
    let credentials = GoogleCredentials::from_json(&jwt_vector(
        "google-service-account-synthetic/service_account.json",
    ))
    .expect("parses");
    let request = credentials.token_request(1_700_000_000).expect("request");
    assert_eq!(
        request,
        TokenRequest::PostForm {
            url: str_field(&vector, "/token_request/url").to_string(),
            body: str_field(&vector, "/token_request/body").to_string(),
        }
    );
    assert_eq!(credentials.project_id(), Some("example-project"));
}

#[test]
fn assertion_expiry_is_one_hour_and_aud_ignores_the_files_token_uri() {
    // google-auth's test file points token_uri at accounts.google.com; aud must not follow.
    let credentials =
        GoogleCredentials::from_json(&jwt_vector("google-auth-testdata/service_account.json"))
            .expect("parses");
    let TokenRequest::PostForm { url, body } = credentials.token_request(1_000).expect("request")
    else {
        panic!("service account posts a form");
    };
    assert_eq!(url, "https://accounts.google.com/o/oauth2/token");
    let assertion = body
        .strip_prefix("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=")
        .expect("grant type first");
    let parts: Vec<&str> = assertion.split('.').collect();
    assert_eq!(parts.len(), 3);
    assert_eq!(
        base64_decode(parts[0]),
        br#"{"alg":"RS256","typ":"JWT","kid":"1"}"#
    );
    assert_eq!(
        String::from_utf8(base64_decode(parts[1])).expect("utf8"),
        r#"{"iss":"service-account@example.com","scope":"https://www.googleapis.com/auth/cloud-platform","aud":"https://oauth2.googleapis.com/token","iat":1000,"exp":4600}"#
    );
    // Signed with google-auth's key: its published public key verifies it.
    let public_pem =
        String::from_utf8(jwt_vector("google-auth-testdata/privatekey.pub")).expect("ascii");
    let public = UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, pem_body_der(&public_pem));
    let signed = format!("{}.{}", parts[0], parts[1]);
    public
        .verify(signed.as_bytes(), &base64_decode(parts[2]))
        .expect("signature verifies");
    assert!(public
        .verify(b"other bytes", &base64_decode(parts[2]))
        .is_err());
}

#[test]
fn refresh_token_body_matches_google_auth_field_order_and_escaping() {
    assert_eq!(
        refresh_token_form_body("764086051850-6qr.apps.googleusercontent.com", "s/e+c=r&t", "1//0g-x_y", Some(CLOUD_PLATFORM_SCOPE)),
        "grant_type=refresh_token&client_id=764086051850-6qr.apps.googleusercontent.com&client_secret=s%2Fe%2Bc%3Dr%26t&refresh_token=1%2F%2F0g-x_y&scope=https%3A%2F%2Fwww.googleapis.com%2Fauth%2Fcloud-platform"
    );
    assert_eq!(
        refresh_token_form_body("123", "secret", "alabalaportocala", None),
        "grant_type=refresh_token&client_id=123&client_secret=secret&refresh_token=alabalaportocala"
    );
}
