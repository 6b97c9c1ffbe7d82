//! Relaying a streamed (SSE) upstream response: every complete event is written and
//! flushed to the client the moment its last byte arrives; taps read usage and stream
//! completion without holding bytes back. A stream that breaks or stalls before
//! `message_stop` ends with an Anthropic `event: error`, never a clean-looking end.
//!
//! Call order: `first_event` (before anything is committed, so the caller can still fail
//! over) -> `relay_rest` (after the client got the head and the first event).

use std::time::{Duration, Instant};

use crate::codec::sse::SseParser;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::net::client::{ClientError, UpstreamResponse, CANCEL_CHECK_INTERVAL};
use crate::net::server::ResponseWriter;
use crate::provider::bedrock_stream::BedrockStreamTranscoder;
use crate::provider::ResponseShape;
use crate::relay::error::error_event;
use crate::relay::thinking::SignatureTap;
use crate::state::signatures::SignatureBackend;

/// How often a wait on a silent upstream stops to check whether the client is still there.
const CLIENT_CHECK_INTERVAL: Duration = Duration::from_millis(200);

/// What the taps saw in the events relayed so far.
#[derive(Default)]
pub struct StreamTaps {
    /// Thinking signatures seen so far (hashes only), for the origin store.
    pub signatures: SignatureTap,
    pub events: u64,
    pub saw_message_stop: bool,
    pub saw_error: bool,
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
}

#[derive(serde::Deserialize)]
struct UsageEvent {
    #[serde(default)]
    message: Option<UsageHolder>,
    #[serde(default)]
    usage: Option<Usage>,
}

#[derive(serde::Deserialize)]
struct UsageHolder {
    #[serde(default)]
    usage: Option<Usage>,
}

#[derive(serde::Deserialize, Default, Clone, Copy)]
pub struct Usage {
    #[serde(default)]
    pub input_tokens: Option<u64>,
    #[serde(default)]
    pub output_tokens: Option<u64>,
    #[serde(default)]
    pub cache_creation_input_tokens: Option<u64>,
    #[serde(default)]
    pub cache_read_input_tokens: Option<u64>,
}

impl Usage {
    /// Every input token the request consumed, cached or not.
    pub fn total_input(&self) -> Option<u64> {
        let parts = [
            self.input_tokens,
            self.cache_creation_input_tokens,
            self.cache_read_input_tokens,
        ];
        parts
            .iter()
            .any(Option::is_some)
            .then(|| parts.iter().flatten().sum())
    }
}

impl StreamTaps {
    fn observe(&mut self, event: &str, data: &str) {
        self.events += 1;
        self.signatures.observe(event, data);
        match event {
            "message_stop" => self.saw_message_stop = true,
            "error" => self.saw_error = true,
            "message_start" | "message_delta" => {
                if let Ok(ev) = serde_json::from_str::<UsageEvent>(data) {
                    let usage = ev.usage.or(ev.message.and_then(|m| m.usage));
                    if let Some(u) = usage {
                        if let Some(i) = u.total_input() {
                            self.input_tokens = Some(i);
                        }
                        if let Some(o) = u.output_tokens {
                            // message_delta usage is cumulative: the last value is the total.
                            self.output_tokens = Some(o);
                        }
                    }
                }
            }
            _ => {}
        }
    }
}

/// How upstream bytes become Anthropic SSE bytes.
enum Adapter {
    /// Already Anthropic SSE: forwarded byte for byte, event by event.
    Sse,
    /// AWS event-stream frames, transcoded to SSE as each frame completes.
    Bedrock(Box<BedrockStreamTranscoder>),
}

/// Where signatures seen in the stream are remembered (SPEC §4.4), and for which family.
pub struct SignatureSink {
    pub store: Arc<dyn SignatureBackend>,
    pub family: String,
}

pub struct StreamRelay {
    adapter: Adapter,
    /// Signatures are recorded before the event that completes them is flushed, so the
    /// client's next turn always finds its origin.
    signature_sink: Option<SignatureSink>,
    /// Set when the adapter reported the stream over (its error event is in `pending`).
    adapter_failed: bool,
    parser: SseParser,
    pub taps: StreamTaps,
    /// Bytes received but not yet sent: the start of an event still arriving.
    pending: Vec<u8>,
    /// How many leading bytes of `pending` are whole events, ready to send.
    complete: usize,
    read_buf: Vec<u8>,
    idle: Duration,
}

#[derive(Debug)]
pub enum StreamEnd {
    /// The upstream finished (cleanly or not; see the taps).
    Completed,
    /// We appended an error event because the upstream broke, stalled or ran out of time.
    UpstreamFailed(String),
    /// The client went away; the upstream connection was closed.
    ClientGone,
}

impl StreamRelay {
    pub fn new(idle: Duration, shape: ResponseShape) -> StreamRelay {
        let adapter = match shape {
            ResponseShape::PassThrough => Adapter::Sse,
            ResponseShape::Bedrock => Adapter::Bedrock(Box::default()),
        };
        StreamRelay {
            adapter,
            signature_sink: None,
            adapter_failed: false,
            parser: SseParser::new(),
            taps: StreamTaps::default(),
            pending: Vec::with_capacity(16 * 1024),
            complete: 0,
            read_buf: Vec::with_capacity(16 * 1024),
            idle,
        }
    }

    pub fn with_signature_sink(mut self, sink: SignatureSink) -> StreamRelay {
        self.signature_sink = Some(sink);
        self
    }

    /// Records the signatures completed so far; `finished` also takes unterminated ones.
    fn record_signatures(&mut self, finished: bool) {
        let Some(sink) = &self.signature_sink else {
            return;
        };
        let hashes = if finished {
            self.taps.signatures.finish()
        } else {
            self.taps.signatures.take()
        };
        let now = Instant::now();
        for hash in hashes {
            sink.store.record(&hash, &sink.family, now);
        }
    }

    /// Takes the bytes of one upstream read: taps every event they complete and marks
    /// where the last one ends.
    fn take_read(&mut self) {
        self.tap_read();
        self.record_signatures(false);
    }

    fn tap_read(&mut self) {
        let base = self.pending.len();
        let taps = &mut self.taps;
        let complete = &mut self.complete;
        match &mut self.adapter {
            Adapter::Sse => {
                self.pending.extend_from_slice(&self.read_buf);
                // An over-long event is dropped by the parser; the bytes still go to the
                // client, which has its own limits.
                let _ = self.parser.feed_with_offsets(&self.read_buf, |ev, end| {
                    taps.observe(ev.event, ev.data);
                    *complete = base + end;
                });
            }
            Adapter::Bedrock(transcoder) => {
                // The transcoder appends whole events only (an error event included
                // when the stream failed).
                self.adapter_failed |= transcoder.feed(&self.read_buf, &mut self.pending).is_err();
                let _ = self
                    .parser
                    .feed(&self.pending[base..], |ev| taps.observe(ev.event, ev.data));
                *complete = self.pending.len();
            }
        }
    }

    /// The upstream body ended: a transcoder that did not see a complete stream appends
    /// its error event now.
    fn take_end(&mut self) {
        self.record_signatures(true);
        if let Adapter::Bedrock(transcoder) = &mut self.adapter {
            let base = self.pending.len();
            self.adapter_failed |= transcoder.finish(&mut self.pending).is_err();
            let taps = &mut self.taps;
            let _ = self
                .parser
                .feed(&self.pending[base..], |ev| taps.observe(ev.event, ev.data));
            self.complete = self.pending.len();
        }
    }

    /// Reads until at least one whole event is buffered, by `deadline`. Nothing is
    /// written to the client, so on error the caller can still try another provider.
    pub fn first_event(
        &mut self,
        upstream: &mut UpstreamResponse,
        deadline: Instant,
        cancel: Option<&AtomicBool>,
    ) -> Result<(), ClientError> {
        while self.complete == 0 {
            self.read_buf.clear();
            let wait_until = match cancel {
                Some(_) => deadline.min(Instant::now() + CANCEL_CHECK_INTERVAL),
                None => deadline,
            };
            let read = match upstream.read_some(&mut self.read_buf, wait_until) {
                Err(ClientError::Timeout(_)) if Instant::now() < deadline => {
                    if cancel.is_some_and(|c| c.load(Ordering::SeqCst)) {
                        upstream.abort();
                        return Err(ClientError::Io(
                            "cancelled: another provider answered first".into(),
                        ));
                    }
                    continue;
                }
                other => other?,
            };
            if read == 0 {
                return Err(ClientError::Io(
                    "upstream stream ended before its first event".into(),
                ));
            }
            self.take_read();
        }
        Ok(())
    }

    /// Sends every whole event buffered so far.
    fn flush_events(&mut self, client: &mut ResponseWriter<'_>) -> std::io::Result<()> {
        if self.complete == 0 {
            return Ok(());
        }
        let result = client.stream_write(&self.pending[..self.complete]);
        self.pending.drain(..self.complete);
        self.complete = 0;
        result
    }

    /// Relays the rest of the stream. The response head must already be committed.
    pub fn relay_rest(
        &mut self,
        upstream: &mut UpstreamResponse,
        client: &mut ResponseWriter<'_>,
        request_deadline: Instant,
    ) -> StreamEnd {
        if self.flush_events(client).is_err() {
            upstream.abort();
            return StreamEnd::ClientGone;
        }
        if self.adapter_failed {
            upstream.abort();
            let _ = client.end_stream();
            return StreamEnd::UpstreamFailed("upstream stream reported an error".into());
        }
        let mut idle_deadline = Instant::now() + self.idle;
        loop {
            let now = Instant::now();
            let wait_until = idle_deadline
                .min(request_deadline)
                .min(now + CLIENT_CHECK_INTERVAL);
            self.read_buf.clear();
            match upstream.read_some(&mut self.read_buf, wait_until) {
                Ok(0) => {
                    // The upstream body is complete: pool its connection before the
                    // client learns the stream ended and sends its next request.
                    upstream.release();
                    self.take_end();
                    if self.flush_events(client).is_err() {
                        return StreamEnd::ClientGone;
                    }
                    break;
                }
                Ok(_) => {
                    self.take_read();
                    idle_deadline = Instant::now() + self.idle;
                    if self.flush_events(client).is_err() {
                        upstream.abort();
                        return StreamEnd::ClientGone;
                    }
                    if self.adapter_failed {
                        // The error event is out; nothing after it may follow.
                        upstream.abort();
                        let _ = client.end_stream();
                        return StreamEnd::UpstreamFailed(
                            "upstream stream reported an error".into(),
                        );
                    }
                }
                Err(ClientError::Timeout(_)) => {
                    let now = Instant::now();
                    if now >= request_deadline {
                        upstream.abort();
                        return self.fail(
                            client,
                            "timeout_error",
                            "request timed out before the upstream stream finished",
                        );
                    }
                    if now >= idle_deadline {
                        upstream.abort();
                        let msg = format!(
                            "upstream stream stalled: no data for {} ms",
                            self.idle.as_millis()
                        );
                        return self.fail(client, "api_error", &msg);
                    }
                    if client.client_gone() {
                        upstream.abort();
                        return StreamEnd::ClientGone;
                    }
                }
                Err(e) => {
                    upstream.abort();
                    let msg = format!("upstream stream broke: {e}");
                    return self.fail(client, "api_error", &msg);
                }
            }
        }
        if self.taps.saw_message_stop || self.taps.saw_error {
            // Bytes after the final event that never became an event are dropped.
            return match client.end_stream() {
                Ok(()) => StreamEnd::Completed,
                Err(_) => StreamEnd::ClientGone,
            };
        }
        self.fail(
            client,
            "api_error",
            "upstream stream ended before message_stop",
        )
    }

    fn fail(&mut self, client: &mut ResponseWriter<'_>, kind: &str, message: &str) -> StreamEnd {
        self.taps.saw_error = true;
        let event = error_event(kind, message);
        if client.stream_write(&event).is_err() || client.end_stream().is_err() {
            return StreamEnd::ClientGone;
        }
        StreamEnd::UpstreamFailed(message.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_taps() {
        let mut t = StreamTaps::default();
        t.observe("message_start", r#"{"type":"message_start","message":{"usage":{"input_tokens":10,"cache_read_input_tokens":5,"output_tokens":1}}}"#);
        t.observe(
            "message_delta",
            r#"{"type":"message_delta","usage":{"output_tokens":42}}"#,
        );
        t.observe("message_stop", r#"{"type":"message_stop"}"#);
        assert_eq!(
            (t.input_tokens, t.output_tokens, t.saw_message_stop),
            (Some(15), Some(42), true)
        );
    }
}
