//! Providers: one file per upstream type. Each turns an Anthropic request into an
//! upstream request and upstream bytes back into Anthropic bytes.

pub mod bedrock_stream;
