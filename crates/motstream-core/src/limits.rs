//! The documented limits every event is validated against.

/// Bounds on event fields. Every limit is in bytes of UTF-8 unless it says otherwise; the
/// defaults are the documented limits (docs/formats.md, "Event format").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted payload (default 64 KiB); larger messages are rejected before parsing.
    pub max_payload_bytes: usize,
    /// `event_id`, `mot_id`, `experience_id`, `journey_id`, `producer_id` (default 128).
    pub max_id_bytes: usize,
    /// `failure_reason` (default 256).
    pub max_reason_bytes: usize,
    /// `channel` (default 64).
    pub max_channel_bytes: usize,
    /// Number of free attributes (default 16).
    pub max_attributes: usize,
    /// Attribute key (default 64).
    pub max_attribute_key_bytes: usize,
    /// Attribute value (default 256).
    pub max_attribute_value_bytes: usize,
    /// Longest plausible interaction, in milliseconds (default one day).
    pub max_duration_ms: i64,
    /// How far an event's time may be ahead of the receiver's clock, in milliseconds (default
    /// 5 minutes): more is a producer with a broken clock, and would open windows in the future.
    pub max_future_skew_ms: i64,
    /// Earliest plausible event time, in ms since the epoch (default 2000-01-01T00:00:00Z):
    /// anything earlier is almost always seconds mistaken for milliseconds.
    pub min_event_time_ms: i64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_payload_bytes: 64 * 1024,
            max_id_bytes: 128,
            max_reason_bytes: 256,
            max_channel_bytes: 64,
            max_attributes: 16,
            max_attribute_key_bytes: 64,
            max_attribute_value_bytes: 256,
            max_duration_ms: 86_400_000,
            max_future_skew_ms: 5 * 60 * 1000,
            min_event_time_ms: 946_684_800_000,
        }
    }
}
