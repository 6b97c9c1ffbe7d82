//! Base64 (RFC 4648): the standard alphabet with `=` padding (AWS event-stream payloads,
//! restJson1 blobs, PEM bodies once their line breaks are removed) and the URL-safe
//! alphabet without padding (JWT segments).
//!
//! Decoding is strict, so that every accepted input has exactly one encoding:
//! * standard [`decode`] **requires** padding (length a multiple of 4, one or two `=`
//!   only at the end, exactly as many as the last group needs);
//! * URL-safe [`decode_url_nopad`] **rejects** any `=`;
//! * characters outside the alphabet (including whitespace and line breaks) are errors;
//! * non-zero unused bits in the last character are errors.
//!
//! Consequently `encode(decode(s)?) == s` for every accepted `s`; the fuzz target checks
//! that. This module must not guess: it never skips characters or repairs input.

use std::fmt;

const STANDARD_ALPHABET: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const URL_SAFE_ALPHABET: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Marks a byte that is not part of an alphabet in the reverse tables.
const INVALID: u8 = 0xFF;

const STANDARD_REVERSE: [u8; 256] = reverse_table(STANDARD_ALPHABET);
const URL_SAFE_REVERSE: [u8; 256] = reverse_table(URL_SAFE_ALPHABET);

const fn reverse_table(alphabet: &[u8; 64]) -> [u8; 256] {
    let mut table = [INVALID; 256];
    let mut value = 0;
    while value < 64 {
        table[alphabet[value] as usize] = value as u8;
        value += 1;
    }
    table
}

/// Why an input is not acceptable Base64.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Base64Error {
    /// A byte outside the alphabet (or a `=` where none may be) at this offset.
    InvalidByte { offset: usize, byte: u8 },
    /// The length cannot be the encoding of whole bytes (one character left over, or a
    /// padded input whose length is not a multiple of 4).
    InvalidLength { length: usize },
    /// Missing, extra or misplaced `=` in a padded input.
    InvalidPadding,
    /// The last character carries bits that no input byte produced; a canonical
    /// encoder always leaves them zero.
    NonZeroTrailingBits,
}

impl fmt::Display for Base64Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Base64Error::InvalidByte { offset, byte } => {
                write!(f, "invalid base64 byte 0x{byte:02x} at offset {offset}")
            }
            Base64Error::InvalidLength { length } => {
                write!(f, "invalid base64 length {length}")
            }
            Base64Error::InvalidPadding => f.write_str("invalid base64 padding"),
            Base64Error::NonZeroTrailingBits => f.write_str("non-zero trailing bits in base64"),
        }
    }
}

impl std::error::Error for Base64Error {}

/// Standard alphabet, padded with `=`.
pub fn encode(input: &[u8]) -> String {
    encode_with(input, STANDARD_ALPHABET, true)
}

/// URL-safe alphabet (`-` and `_`), no padding: the form JWT segments use.
pub fn encode_url_nopad(input: &[u8]) -> String {
    encode_with(input, URL_SAFE_ALPHABET, false)
}

/// Decodes the standard alphabet; padding is required (see the module doc).
pub fn decode(input: impl AsRef<[u8]>) -> Result<Vec<u8>, Base64Error> {
    let input = input.as_ref();
    if input.len() % 4 != 0 {
        return Err(Base64Error::InvalidLength {
            length: input.len(),
        });
    }
    let padding = input.iter().rev().take_while(|&&b| b == b'=').count();
    if padding > 2 {
        return Err(Base64Error::InvalidPadding);
    }
    // With the total a multiple of 4, one `=` leaves 3 data characters in the last group
    // and two leave 2, so the count is always exactly what that group needs.
    let data = &input[..input.len() - padding];
    decode_unpadded(data, &STANDARD_REVERSE)
}

/// Decodes the URL-safe alphabet without padding; any `=` is rejected.
pub fn decode_url_nopad(input: impl AsRef<[u8]>) -> Result<Vec<u8>, Base64Error> {
    decode_unpadded(input.as_ref(), &URL_SAFE_REVERSE)
}

fn encode_with(input: &[u8], alphabet: &[u8; 64], pad: bool) -> String {
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    let symbol = |index: u32| char::from(alphabet[(index & 0x3F) as usize]);
    let mut groups = input.chunks_exact(3);
    for group in groups.by_ref() {
        let bits = u32::from(group[0]) << 16 | u32::from(group[1]) << 8 | u32::from(group[2]);
        out.push(symbol(bits >> 18));
        out.push(symbol(bits >> 12));
        out.push(symbol(bits >> 6));
        out.push(symbol(bits));
    }
    match *groups.remainder() {
        [a] => {
            let bits = u32::from(a) << 16;
            out.push(symbol(bits >> 18));
            out.push(symbol(bits >> 12));
            if pad {
                out.push_str("==");
            }
        }
        [a, b] => {
            let bits = u32::from(a) << 16 | u32::from(b) << 8;
            out.push(symbol(bits >> 18));
            out.push(symbol(bits >> 12));
            out.push(symbol(bits >> 6));
            if pad {
                out.push('=');
            }
        }
        _ => {}
    }
    out
}

/// Decodes characters of one alphabet with no padding present.
fn decode_unpadded(data: &[u8], reverse: &[u8; 256]) -> Result<Vec<u8>, Base64Error> {
    if data.len() % 4 == 1 {
        return Err(Base64Error::InvalidLength { length: data.len() });
    }
    let mut out = Vec::with_capacity(data.len() / 4 * 3 + 2);
    let mut offset = 0;
    for group in data.chunks(4) {
        let mut bits: u32 = 0;
        for &byte in group {
            let value = reverse[usize::from(byte)];
            if value == INVALID {
                return Err(Base64Error::InvalidByte { offset, byte });
            }
            bits = bits << 6 | u32::from(value);
            offset += 1;
        }
        match group.len() {
            4 => {
                out.push((bits >> 16) as u8);
                out.push((bits >> 8) as u8);
                out.push(bits as u8);
            }
            3 => {
                // 18 bits carry 2 bytes; the low 2 bits must be zero.
                if bits & 0x3 != 0 {
                    return Err(Base64Error::NonZeroTrailingBits);
                }
                out.push((bits >> 10) as u8);
                out.push((bits >> 2) as u8);
            }
            2 => {
                // 12 bits carry 1 byte; the low 4 bits must be zero.
                if bits & 0xF != 0 {
                    return Err(Base64Error::NonZeroTrailingBits);
                }
                out.push((bits >> 4) as u8);
            }
            // A group of 1 was rejected by the length check above.
            _ => return Err(Base64Error::InvalidLength { length: data.len() }),
        }
    }
    Ok(out)
}

/// Fuzz entry (`fuzz/fuzz_targets/base64.rs`): decoding arbitrary bytes never panics,
/// every accepted input re-encodes to itself, and every byte string round-trips.
pub fn fuzz_entry(data: &[u8]) {
    if let Ok(decoded) = decode(data) {
        assert_eq!(encode(&decoded).as_bytes(), data);
    }
    if let Ok(decoded) = decode_url_nopad(data) {
        assert_eq!(encode_url_nopad(&decoded).as_bytes(), data);
    }
    assert_eq!(decode(encode(data)).as_deref(), Ok(data));
    assert_eq!(
        decode_url_nopad(encode_url_nopad(data)).as_deref(),
        Ok(data)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4648 §10 test vectors.
    const RFC4648: &[(&str, &str)] = &[
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="),
        ("fooba", "Zm9vYmE="),
        ("foobar", "Zm9vYmFy"),
    ];

    #[test]
    fn rfc4648_vectors_both_ways() {
        for (plain, encoded) in RFC4648 {
            assert_eq!(encode(plain.as_bytes()), *encoded);
            assert_eq!(decode(encoded).unwrap(), plain.as_bytes());
            let unpadded = encoded.trim_end_matches('=');
            assert_eq!(encode_url_nopad(plain.as_bytes()), unpadded);
            assert_eq!(decode_url_nopad(unpadded).unwrap(), plain.as_bytes());
        }
    }

    #[test]
    fn alphabets_differ_in_the_last_two_symbols() {
        let bytes = [0xFB, 0xFF, 0xBF];
        assert_eq!(encode(&bytes), "+/+/");
        assert_eq!(encode_url_nopad(&bytes), "-_-_");
        assert_eq!(
            decode("-_-_"),
            Err(Base64Error::InvalidByte {
                offset: 0,
                byte: b'-'
            })
        );
        assert_eq!(
            decode_url_nopad("+/+/"),
            Err(Base64Error::InvalidByte {
                offset: 0,
                byte: b'+'
            })
        );
    }

    #[test]
    fn padding_is_required_and_exact_in_standard_decode() {
        assert_eq!(decode("Zg"), Err(Base64Error::InvalidLength { length: 2 }));
        assert_eq!(decode("Zg="), Err(Base64Error::InvalidLength { length: 3 }));
        assert_eq!(
            decode("Zm8=="),
            Err(Base64Error::InvalidLength { length: 5 })
        );
        assert_eq!(decode("Zm9v===="), Err(Base64Error::InvalidPadding));
        assert_eq!(decode("Z==="), Err(Base64Error::InvalidPadding));
        // '=' in the middle is not padding.
        assert_eq!(
            decode("Zg==Zm8="),
            Err(Base64Error::InvalidByte {
                offset: 2,
                byte: b'='
            })
        );
        assert_eq!(
            decode_url_nopad("Zg=="),
            Err(Base64Error::InvalidByte {
                offset: 2,
                byte: b'='
            })
        );
    }

    #[test]
    fn rejects_whitespace_and_stray_bytes() {
        assert_eq!(
            decode("Zm9v\nYmFy"),
            Err(Base64Error::InvalidLength { length: 9 })
        );
        assert_eq!(
            decode("Zm9 "),
            Err(Base64Error::InvalidByte {
                offset: 3,
                byte: b' '
            })
        );
        assert_eq!(
            decode([0x5A, 0x6D, 0x39, 0xC3]),
            Err(Base64Error::InvalidByte {
                offset: 3,
                byte: 0xC3
            })
        );
        assert_eq!(
            decode_url_nopad("Z"),
            Err(Base64Error::InvalidLength { length: 1 })
        );
    }

    #[test]
    fn rejects_non_zero_trailing_bits() {
        assert_eq!(decode("Zh=="), Err(Base64Error::NonZeroTrailingBits));
        assert_eq!(decode("Zm9="), Err(Base64Error::NonZeroTrailingBits));
        assert_eq!(
            decode_url_nopad("Zh"),
            Err(Base64Error::NonZeroTrailingBits)
        );
    }

    #[test]
    fn every_length_round_trips() {
        let data: Vec<u8> = (0..=255u8).collect();
        for len in 0..data.len() {
            let slice = &data[..len];
            assert_eq!(decode(encode(slice)).unwrap(), slice);
            assert_eq!(decode_url_nopad(encode_url_nopad(slice)).unwrap(), slice);
        }
    }

    #[test]
    fn fuzz_entry_accepts_samples() {
        fuzz_entry(b"");
        fuzz_entry(b"Zm9vYg==");
        fuzz_entry(b"Zh==");
        fuzz_entry(&[0xFF, 0x00, b'=']);
    }
}
