//! Rate-limit headers: parsing `anthropic-ratelimit-*` and `retry-after`, RFC 3339
//! timestamps, the 429 cooldown rule, and arbitrary bytes never panicking.

use std::time::Duration;

use cc_relay::route::ratelimit::{fuzz_entry, MIN_RESET_COOLDOWN};
use cc_relay::route::rng::SplitMix64;
use cc_relay::route::{parse_rfc3339_unix_ms, LimitHeaders, RateLimitHeaders};

/// Expected values cross-checked with Python's `datetime.fromisoformat(..).timestamp()`.
#[test]
fn rfc3339_to_unix_ms() {
    let cases: &[(&str, i64)] = &[
        ("1970-01-01T00:00:00Z", 0),
        ("2024-02-29T12:34:56.789Z", 1_709_210_096_789),
        ("2024-02-29t12:34:56.789z", 1_709_210_096_789),
        ("2024-02-29 12:34:56.789+00:00", 1_709_210_096_789),
        ("2025-01-31T14:00:30+02:00", 1_738_324_830_000),
        ("2000-02-29T00:00:00-05:30", 951_802_200_000),
        ("2024-02-29T12:34:56.7Z", 1_709_210_096_700),
        ("2024-02-29T12:34:56.123456789Z", 1_709_210_096_123),
        // Leap second: the next second.
        ("1999-12-31T23:59:60Z", 946_684_800_000),
        ("1969-12-31T23:59:59Z", -1_000),
    ];
    for &(text, ms) in cases {
        assert_eq!(parse_rfc3339_unix_ms(text.as_bytes()), Some(ms), "{text}");
    }
}

#[test]
fn rfc3339_rejects_what_is_not_a_date_time() {
    for text in [
        "",
        "2024-02-29",
        "2024-02-29T12:34:56",
        "2023-02-29T00:00:00Z",
        "2024-13-01T00:00:00Z",
        "2024-00-01T00:00:00Z",
        "2024-04-31T00:00:00Z",
        "2024-01-01T24:00:00Z",
        "2024-01-01T00:60:00Z",
        "2024-01-01T00:00:61Z",
        "2024-01-01T00:00:00.Z",
        "2024-01-01T00:00:00+0200",
        "2024-01-01T00:00:00+24:00",
        "2024-01-01T00:00:00Zjunk",
        "2024-01-01X00:00:00Z",
        "2024/01/01T00:00:00Z",
        "+024-01-01T00:00:00Z",
        "1704067200",
    ] {
        assert_eq!(parse_rfc3339_unix_ms(text.as_bytes()), None, "{text:?}");
    }
}

#[test]
fn parses_a_real_anthropic_response_head() {
    let head: Vec<(&str, &[u8])> = vec![
        ("content-type", b"application/json"),
        ("Anthropic-RateLimit-Requests-Limit", b"4000"),
        ("anthropic-ratelimit-requests-remaining", b"3999"),
        (
            "anthropic-ratelimit-requests-reset",
            b"2025-01-31T12:00:01Z",
        ),
        ("anthropic-ratelimit-tokens-limit", b" 480000 "),
        ("anthropic-ratelimit-tokens-remaining", b"480000"),
        ("anthropic-ratelimit-tokens-reset", b"2025-01-31T12:00:00Z"),
        ("anthropic-ratelimit-input-tokens-limit", b"400000"),
        ("anthropic-ratelimit-input-tokens-remaining", b"399000"),
        (
            "anthropic-ratelimit-input-tokens-reset",
            b"2025-01-31T12:00:00Z",
        ),
        ("anthropic-ratelimit-output-tokens-limit", b"80000"),
        ("anthropic-ratelimit-output-tokens-remaining", b"80000"),
        (
            "anthropic-ratelimit-output-tokens-reset",
            b"2025-01-31T12:00:00Z",
        ),
        ("request-id", b"req_123"),
    ];
    let parsed = RateLimitHeaders::parse(head);
    let reset = 1_738_324_800_000;
    assert_eq!(
        parsed,
        RateLimitHeaders {
            requests: LimitHeaders {
                limit: Some(4000),
                remaining: Some(3999),
                reset_unix_ms: Some(reset + 1000),
            },
            tokens: LimitHeaders {
                limit: Some(480_000),
                remaining: Some(480_000),
                reset_unix_ms: Some(reset),
            },
            input_tokens: LimitHeaders {
                limit: Some(400_000),
                remaining: Some(399_000),
                reset_unix_ms: Some(reset),
            },
            output_tokens: LimitHeaders {
                limit: Some(80_000),
                remaining: Some(80_000),
                reset_unix_ms: Some(reset),
            },
            retry_after_ms: None,
        }
    );
    assert!(!parsed.is_empty());
}

#[test]
fn garbage_values_are_ignored_and_names_must_match_exactly() {
    let parsed = RateLimitHeaders::parse([
        ("anthropic-ratelimit-requests-limit", "-5"),
        ("anthropic-ratelimit-requests-remaining", "1e3"),
        ("anthropic-ratelimit-requests-reset", "soon"),
        (
            "anthropic-ratelimit-tokens-limit",
            "99999999999999999999999",
        ),
        ("anthropic-ratelimit-tokens-limitx", "5"),
        ("anthropic-ratelimit-", "5"),
        ("anthropic-ratelimit-widgets-limit", "5"),
        ("x-anthropic-ratelimit-requests-limit", "5"),
        ("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT"),
        ("anthropic-ratelimit-output-tokens-limit", ""),
    ]);
    assert!(parsed.is_empty(), "{parsed:?}");
}

#[test]
fn later_valid_values_win() {
    let parsed = RateLimitHeaders::parse([
        ("retry-after", "5"),
        ("retry-after", "bogus"),
        ("Retry-After", "7"),
    ]);
    assert_eq!(parsed.retry_after_ms, Some(7_000));
}

#[test]
fn cooldown_prefers_retry_after() {
    let parsed = RateLimitHeaders::parse([
        ("retry-after", "12"),
        ("anthropic-ratelimit-requests-remaining", "0"),
        ("anthropic-ratelimit-requests-reset", "2025-01-31T12:01:00Z"),
    ]);
    assert_eq!(
        parsed.cooldown(1_738_324_800_000),
        Some(Duration::from_secs(12))
    );
    let zero = RateLimitHeaders::parse([("retry-after", "0")]);
    assert_eq!(zero.cooldown(0), Some(Duration::ZERO));
}

#[test]
fn cooldown_uses_the_reset_of_the_exhausted_limit() {
    let now = 1_738_324_800_000u64; // 2025-01-31T12:00:00Z
    let parsed = RateLimitHeaders::parse([
        ("anthropic-ratelimit-requests-remaining", "10"),
        ("anthropic-ratelimit-requests-reset", "2025-01-31T12:00:50Z"),
        ("anthropic-ratelimit-input-tokens-remaining", "0"),
        (
            "anthropic-ratelimit-input-tokens-reset",
            "2025-01-31T12:00:07.5Z",
        ),
    ]);
    assert_eq!(parsed.cooldown(now), Some(Duration::from_millis(7_500)));
}

#[test]
fn cooldown_without_an_exhausted_limit_takes_the_latest_reset() {
    let now = 1_738_324_800_000u64;
    let parsed = RateLimitHeaders::parse([
        ("anthropic-ratelimit-requests-reset", "2025-01-31T12:00:03Z"),
        ("anthropic-ratelimit-tokens-reset", "2025-01-31T12:00:20Z"),
    ]);
    assert_eq!(parsed.cooldown(now), Some(Duration::from_secs(20)));
}

#[test]
fn cooldown_from_a_past_reset_is_at_least_a_second() {
    let parsed =
        RateLimitHeaders::parse([("anthropic-ratelimit-tokens-reset", "2020-01-01T00:00:00Z")]);
    assert_eq!(parsed.cooldown(1_738_324_800_000), Some(MIN_RESET_COOLDOWN));
}

#[test]
fn no_headers_no_cooldown() {
    let parsed = RateLimitHeaders::parse(Vec::<(String, String)>::new());
    assert!(parsed.is_empty());
    assert_eq!(parsed.cooldown(0), None);
}

#[test]
fn arbitrary_bytes_never_panic() {
    let mut rng = SplitMix64::new(3);
    let alphabet: &[u8] = b"anthropic-ratelimit-requests-tokens-input-output-limit-remaining-reset\
        retry-after:0123456789.TZtz+- \t\n\xff\x00";
    for _ in 0..20_000 {
        let len = rng.below(120) as usize;
        let data: Vec<u8> = (0..len)
            .map(|_| alphabet[rng.below(alphabet.len() as u64) as usize])
            .collect();
        fuzz_entry(&data);
    }
    fuzz_entry(b"retry-after:99999999999999999999999.999\nanthropic-ratelimit-tokens-reset:9999-12-31T23:59:60.999-23:59");
}
