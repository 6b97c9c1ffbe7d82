//! CRC-32 (IEEE 802.3 / zlib / gzip: reflected polynomial `0xEDB88320`, initial value and
//! final XOR `0xFFFFFFFF`), as AWS event-stream frames use it for their prelude and
//! message checksums.
//!
//! This module owns only the checksum arithmetic. It must not know about framing: the
//! event-stream codec decides which bytes a checksum covers.
//!
//! ```
//! use cc_relay::codec::crc32::{crc32, Crc32};
//! assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
//! let mut hasher = Crc32::new();
//! hasher.update(b"1234");
//! hasher.update(b"56789");
//! assert_eq!(hasher.finish(), 0xCBF4_3926);
//! ```

/// The reflected form of the IEEE polynomial 0x04C11DB7.
const POLYNOMIAL: u32 = 0xEDB8_8320;

/// One entry per possible byte value, so each input byte costs one lookup instead of
/// eight shift-and-xor rounds. Built at compile time.
const TABLE: [u32; 256] = build_table();

const fn build_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut byte = 0;
    while byte < 256 {
        let mut remainder = byte as u32;
        let mut bit = 0;
        while bit < 8 {
            remainder = if remainder & 1 == 1 {
                (remainder >> 1) ^ POLYNOMIAL
            } else {
                remainder >> 1
            };
            bit += 1;
        }
        table[byte] = remainder;
        byte += 1;
    }
    table
}

/// Incremental CRC-32: feed the input in any number of pieces, then read the checksum.
/// `finish` does not consume the hasher, so a checksum over a prefix can be read and
/// the hasher extended afterwards (the event-stream message CRC continues past the
/// prelude CRC this way).
#[derive(Clone, Copy, Debug)]
pub struct Crc32 {
    /// Running register, kept in its inverted form between calls.
    register: u32,
}

impl Crc32 {
    /// A hasher that has seen no bytes.
    pub const fn new() -> Self {
        Crc32 {
            register: 0xFFFF_FFFF,
        }
    }

    /// Extends the checksum over `data`.
    pub fn update(&mut self, data: &[u8]) {
        let mut register = self.register;
        for &byte in data {
            // The index is masked to 0..=255, so it is always inside the table.
            let index = ((register ^ u32::from(byte)) & 0xFF) as usize;
            register = (register >> 8) ^ TABLE[index];
        }
        self.register = register;
    }

    /// The checksum of every byte fed so far.
    pub const fn finish(&self) -> u32 {
        self.register ^ 0xFFFF_FFFF
    }
}

impl Default for Crc32 {
    fn default() -> Self {
        Self::new()
    }
}

/// The CRC-32 of `data` in one call.
pub fn crc32(data: &[u8]) -> u32 {
    let mut hasher = Crc32::new();
    hasher.update(data);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_check_values() {
        // The standard "check" value of CRC-32/ISO-HDLC, and the empty input.
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
        assert_eq!(
            crc32(b"The quick brown fox jumps over the lazy dog"),
            0x414F_A339
        );
    }

    #[test]
    fn empty_event_stream_prelude() {
        // PROTOCOLS §3.1: the minimal message 00000010 00000000 has prelude CRC 05c248eb
        // and message CRC 7d98c8ff.
        let prelude = [0, 0, 0, 0x10, 0, 0, 0, 0];
        assert_eq!(crc32(&prelude), 0x05C2_48EB);
        let mut whole = prelude.to_vec();
        whole.extend_from_slice(&0x05C2_48EBu32.to_be_bytes());
        assert_eq!(crc32(&whole), 0x7D98_C8FF);
    }

    #[test]
    fn incremental_equals_one_shot_at_every_split() {
        let data: Vec<u8> = (0..=255u8).cycle().take(600).collect();
        let expected = crc32(&data);
        for split in 0..=data.len() {
            let (head, tail) = data.split_at(split);
            let mut hasher = Crc32::new();
            hasher.update(head);
            hasher.update(tail);
            assert_eq!(hasher.finish(), expected, "split at {split}");
        }
    }
}
