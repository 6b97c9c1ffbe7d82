//! Base64 (standard and URL-safe alphabets, with or without padding).
