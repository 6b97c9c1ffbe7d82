//! Bedrock InvokeModelWithResponseStream body (AWS event-stream) -> Anthropic SSE bytes.
