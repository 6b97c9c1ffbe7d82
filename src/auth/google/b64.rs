//! The two base64 operations the Google token flow needs, on top of `codec::base64`:
//! URL-safe encoding without padding (JWS segments) and standard-alphabet decoding that
//! tolerates missing padding (PEM bodies written by hand).

/// base64url without `=` padding (RFC 7515 §2), as every JWS segment is written.
pub(crate) fn encode_url_no_pad(bytes: &[u8]) -> String {
    crate::codec::base64::encode_url_nopad(bytes)
}

/// Decodes the standard alphabet (`+`, `/`), with or without trailing `=` padding.
/// The caller strips whitespace first. `None` on anything else; the input is never
/// echoed back.
pub(crate) fn decode_standard(text: &[u8]) -> Option<Vec<u8>> {
    let mut padded = text.to_vec();
    if !text.ends_with(b"=") {
        while padded.len() % 4 != 0 {
            padded.push(b'=');
        }
    }
    crate::codec::base64::decode(&padded).ok()
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
