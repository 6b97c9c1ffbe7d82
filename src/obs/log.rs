//! Logging: one line per request (text or JSON), levels, secret redaction.
