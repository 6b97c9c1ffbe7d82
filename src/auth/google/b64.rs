//! The two base64 operations the Google token flow needs: URL-safe encoding without
//! padding (JWS segments) and standard-alphabet decoding (PEM bodies). Kept private and
//! behind these two functions so the crate-wide codec can take over in one line each.
//! It must not grow a general base64 API; that belongs to `codec::base64`.

// replaced by codec::base64 at merge
const URL_SAFE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// base64url without `=` padding (RFC 7515 §2), as every JWS segment is written.
// replaced by codec::base64 at merge
pub(crate) fn encode_url_no_pad(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b0 = chunk.first().copied().unwrap_or(0);
        let b1 = chunk.get(1).copied().unwrap_or(0);
        let b2 = chunk.get(2).copied().unwrap_or(0);
        let triple = (u32::from(b0) << 16) | (u32::from(b1) << 8) | u32::from(b2);
        // A chunk of n bytes carries n + 1 significant sextets.
        for i in 0..=chunk.len() {
            let sextet = (triple >> (18 - 6 * i)) & 0x3f;
            out.push(char::from(URL_SAFE[sextet as usize]));
        }
    }
    out
}

/// Decodes the standard alphabet (`+`, `/`), with or without trailing `=` padding.
/// The caller strips whitespace first. `None` on any other byte, on padding in the
/// middle, or on a length no encoder produces; the input is never echoed back.
// replaced by codec::base64 at merge
pub(crate) fn decode_standard(text: &[u8]) -> Option<Vec<u8>> {
    let unpadded_len = text.iter().rposition(|&b| b != b'=').map_or(0, |i| i + 1);
    let (data, padding) = text.split_at(unpadded_len);
    if padding.len() > 2 || unpadded_len % 4 == 1 {
        return None;
    }
    if !padding.is_empty() && (unpadded_len + padding.len()) % 4 != 0 {
        return None;
    }
    let mut out = Vec::with_capacity(data.len() / 4 * 3 + 2);
    let mut accumulator: u32 = 0;
    let mut bits: u32 = 0;
    for &byte in data {
        let value = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        accumulator = (accumulator << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((accumulator >> bits) as u8);
            accumulator &= (1 << bits) - 1;
        }
    }
    // Leftover bits must be zero, or two different texts would decode to the same bytes.
    if accumulator != 0 {
        return None;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_safe_no_pad_matches_rfc4648_vectors() {
        let cases: [(&[u8], &str); 7] = [
            (b"", ""),
            (b"f", "Zg"),
            (b"fo", "Zm8"),
            (b"foo", "Zm9v"),
            (b"foob", "Zm9vYg"),
            (b"fooba", "Zm9vYmE"),
            (b"foobar", "Zm9vYmFy"),
        ];
        for (raw, encoded) in cases {
            assert_eq!(encode_url_no_pad(raw), encoded);
        }
        assert_eq!(encode_url_no_pad(&[0xfb, 0xff, 0xbf]), "-_-_");
    }

    #[test]
    fn standard_decode_accepts_padded_and_unpadded() {
        assert_eq!(decode_standard(b"Zm9vYmE=").as_deref(), Some(&b"fooba"[..]));
        assert_eq!(decode_standard(b"Zm9vYmE").as_deref(), Some(&b"fooba"[..]));
        assert_eq!(decode_standard(b"Zm9vYg==").as_deref(), Some(&b"foob"[..]));
        assert_eq!(
            decode_standard(b"+/+/").as_deref(),
            Some(&[0xfb, 0xff, 0xbf][..])
        );
        assert_eq!(decode_standard(b"").as_deref(), Some(&b""[..]));
    }

    #[test]
    fn standard_decode_rejects_malformed_text() {
        for bad in [
            &b"Zm9v-_"[..],
            b"Z",
            b"Zm9vY===",
            b"Zg=a",
            b"Zh==",
            b"Zm9vYg=",
        ] {
            assert_eq!(decode_standard(bad), None, "{:?}", bad);
        }
    }
}
