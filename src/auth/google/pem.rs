//! PEM private keys -> a ring RSA signing key. Accepts `BEGIN PRIVATE KEY` (PKCS#8, what
//! Google issues) and `BEGIN RSA PRIVATE KEY` (PKCS#1, common in test files). The RSA
//! arithmetic and DER validation are ring's; this file only finds the block and decodes
//! its base64. Errors say what is wrong and never quote any byte of the key.

use std::fmt;
use std::sync::Arc;

use ring::signature::RsaKeyPair;

use super::b64;

/// An RSA private key ready to sign; cheap to clone (shared). Debug prints the modulus
/// size only.
#[derive(Clone)]
pub struct RsaSigningKey {
    pub(crate) pair: Arc<RsaKeyPair>,
}

impl RsaSigningKey {
    /// Modulus size in bits (2048 for Google-issued keys).
    pub fn modulus_bits(&self) -> usize {
        self.pair.public().modulus_len() * 8
    }

    /// The public half as PKCS#1 `RSAPublicKey` DER (what `BEGIN RSA PUBLIC KEY` holds
    /// and ring's verifier takes): lets a caller check which key was loaded.
    pub fn public_key_der(&self) -> &[u8] {
        self.pair.public().as_ref()
    }
}

impl fmt::Debug for RsaSigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "RsaSigningKey({}-bit, private part redacted)",
            self.modulus_bits()
        )
    }
}

/// Why a PEM text did not yield a key. Messages carry labels and ring's reason, never
/// key bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PemError {
    /// No `-----BEGIN …-----` line at all.
    NoPemBlock,
    /// Blocks were found but none holds an RSA private key; the labels seen (if they
    /// were short printable ASCII) are listed.
    NoPrivateKey { labels_seen: Vec<String> },
    /// `BEGIN ENCRYPTED PRIVATE KEY`, or a legacy `Proc-Type: 4,ENCRYPTED` header.
    Encrypted,
    /// `BEGIN EC PRIVATE KEY`, `BEGIN OPENSSH PRIVATE KEY` and friends.
    UnsupportedKind { label: String },
    /// The matching `-----END …-----` line is missing.
    MissingEnd { label: String },
    /// The body is not valid base64.
    BadBase64 { label: String },
    /// The DER was rejected by ring (e.g. "InvalidEncoding", "TooSmall",
    /// "WrongAlgorithm"): ring's reason is a fixed word, never key material.
    Rejected { label: String, reason: String },
}

impl fmt::Display for PemError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PemError::NoPemBlock => {
                f.write_str("private key is not PEM: no '-----BEGIN ...-----' line found")
            }
            PemError::NoPrivateKey { labels_seen } => write!(
                f,
                "PEM holds no RSA private key (found: {}); expected 'BEGIN PRIVATE KEY' or 'BEGIN RSA PRIVATE KEY'",
                labels_seen.join(", ")
            ),
            PemError::Encrypted => {
                f.write_str("encrypted private keys are not supported; export the key unencrypted")
            }
            PemError::UnsupportedKind { label } => write!(
                f,
                "PEM block '{label}' is not supported; RS256 needs an RSA key as 'BEGIN PRIVATE KEY' (PKCS#8) or 'BEGIN RSA PRIVATE KEY' (PKCS#1)"
            ),
            PemError::MissingEnd { label } => {
                write!(f, "PEM block '{label}' has no matching '-----END {label}-----' line")
            }
            PemError::BadBase64 { label } => {
                write!(f, "PEM block '{label}' body is not valid base64")
            }
            PemError::Rejected { label, reason } => {
                write!(f, "PEM block '{label}' is not a usable RSA private key ({reason})")
            }
        }
    }
}

impl std::error::Error for PemError {}

const BEGIN: &str = "-----BEGIN ";
const END: &str = "-----END ";
const DASHES: &str = "-----";
const PKCS8_LABEL: &str = "PRIVATE KEY";
const PKCS1_LABEL: &str = "RSA PRIVATE KEY";
/// Real files hold one to a few blocks; the cap keeps a hostile file from making the
/// block search quadratic or the "labels seen" list long.
const MAX_BLOCKS: usize = 16;

/// Parses the first RSA private key block of `pem` (other blocks, e.g. certificates,
/// are skipped).
pub fn parse_rsa_private_key_pem(pem: &[u8]) -> Result<RsaSigningKey, PemError> {
    // PEM is ASCII; a lossy view lets us search for markers without rejecting a file
    // that has stray bytes outside the block.
    let text = String::from_utf8_lossy(pem);
    let mut rest: &str = &text;
    let mut labels_seen = Vec::new();
    let mut first_error: Option<PemError> = None;
    let mut blocks = 0;
    while let Some(start) = rest.find(BEGIN) {
        blocks += 1;
        if blocks > MAX_BLOCKS {
            break;
        }
        let after_begin = &rest[start + BEGIN.len()..];
        let Some(label_end) = after_begin.find(DASHES) else {
            break;
        };
        let label = &after_begin[..label_end];
        let after_label = &after_begin[label_end + DASHES.len()..];
        let end_marker = format!("{END}{label}{DASHES}");
        let Some(body_len) = after_label.find(&end_marker) else {
            let error = PemError::MissingEnd {
                label: printable_label(label),
            };
            if is_private_key_label(label) {
                return Err(error);
            }
            rest = after_label;
            continue;
        };
        let body = &after_label[..body_len];
        rest = &after_label[body_len + end_marker.len()..];
        let outcome = match label {
            PKCS8_LABEL | PKCS1_LABEL => decode_key(label, body),
            "ENCRYPTED PRIVATE KEY" => Err(PemError::Encrypted),
            other if other.ends_with("PRIVATE KEY") => Err(PemError::UnsupportedKind {
                label: printable_label(other),
            }),
            other => {
                labels_seen.push(printable_label(other));
                continue;
            }
        };
        match outcome {
            Ok(key) => return Ok(key),
            Err(error) => {
                first_error.get_or_insert(error);
            }
        }
    }
    if let Some(error) = first_error {
        return Err(error);
    }
    if labels_seen.is_empty() {
        Err(PemError::NoPemBlock)
    } else {
        Err(PemError::NoPrivateKey { labels_seen })
    }
}

fn is_private_key_label(label: &str) -> bool {
    label.ends_with("PRIVATE KEY")
}

/// Labels come from the file, so only short printable ones are repeated in messages.
fn printable_label(label: &str) -> String {
    let printable = label.len() <= 40 && label.bytes().all(|b| b == b' ' || b.is_ascii_graphic());
    if printable {
        label.to_string()
    } else {
        "(unprintable label)".to_string()
    }
}

fn decode_key(label: &str, body: &str) -> Result<RsaSigningKey, PemError> {
    // RFC 1421 headers such as `Proc-Type: 4,ENCRYPTED` precede the base64; a colon
    // cannot occur in base64, so its presence means headers.
    if body.contains(':') {
        return Err(if body.contains("ENCRYPTED") {
            PemError::Encrypted
        } else {
            PemError::BadBase64 {
                label: label.to_string(),
            }
        });
    }
    let mut compact = strip_whitespace(body.as_bytes());
    let decoded = b64::decode_standard(&compact);
    compact.fill(0);
    let mut der = decoded.ok_or_else(|| PemError::BadBase64 {
        label: label.to_string(),
    })?;
    let parsed = if label == PKCS8_LABEL {
        RsaKeyPair::from_pkcs8(&der)
    } else {
        RsaKeyPair::from_der(&der)
    };
    // The DER is the private key; do not leave it lying in freed memory longer than needed.
    der.fill(0);
    std::hint::black_box(&der);
    parsed
        .map(|pair| RsaSigningKey {
            pair: Arc::new(pair),
        })
        .map_err(|rejected| PemError::Rejected {
            label: label.to_string(),
            reason: rejected.to_string(),
        })
}

/// Drops ASCII whitespace, and also the two-character sequences `\n` / `\r` that appear
/// when a key was pasted into an environment variable or config value with its JSON
/// escapes left in.
fn strip_whitespace(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while let Some(&byte) = body.get(i) {
        if byte == b'\\' && matches!(body.get(i + 1), Some(b'n' | b'r')) {
            i += 2;
            continue;
        }
        if !byte.is_ascii_whitespace() {
            out.push(byte);
        }
        i += 1;
    }
    out
}
