//! HTTP/1.1 chunked transfer coding: incremental strict decoder and encoder.
