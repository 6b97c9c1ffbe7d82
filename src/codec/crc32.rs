//! CRC-32 (IEEE 802.3 / zlib polynomial), as AWS event-stream frames use it.
