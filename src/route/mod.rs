//! Routing: which provider and key serve a request, in what order, and what happened to
//! them (key pool usage, circuit breakers). Pure state driven by explicit `Instant`s.
