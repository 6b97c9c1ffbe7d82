//! Shared by the `google_*` test files: where the vectors are, reading them, and a
//! test-only base64 decoder for public keys and signatures.

#![allow(dead_code)]

#[path = "../common/vectors.rs"]
mod vectors;
pub use vectors::vectors_dir;

pub fn jwt_vector(relative: &str) -> Vec<u8> {
    let path = vectors_dir().join("jwt").join(relative);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn jwt_vector_json(relative: &str) -> serde_json::Value {
    serde_json::from_slice(&jwt_vector(relative)).expect("vector is JSON")
}

pub fn str_field<'a>(value: &'a serde_json::Value, pointer: &str) -> &'a str {
    value
        .pointer(pointer)
        .and_then(|v| v.as_str())
        .unwrap_or_else(|| panic!("no string at {pointer}"))
}

/// Decodes base64 in either alphabet, padding optional. Test-only and independent of
/// the module under test, so a shared bug cannot make both sides agree.
pub fn base64_decode(text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut acc = 0u32;
    let mut bits = 0;
    for c in text.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            b'=' | b'\n' | b'\r' => continue,
            _ => panic!("not base64: {c}"),
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

/// The DER inside a PEM text's single block.
pub fn pem_body_der(pem: &str) -> Vec<u8> {
    let body: String = pem
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .collect();
    base64_decode(&body)
}
