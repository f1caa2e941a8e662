//! The crate's error types. Messages name the field or argument at fault.

/// A topology or configuration that cannot be used; lists every problem found, each naming
/// its field (e.g. `counter_tiers[1].resolution_ms: ...`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid window configuration: {}", problems.join("; "))]
pub struct ConfigError {
    /// One line per problem, each starting with the field's path.
    pub problems: Vec<String>,
}

/// A status query that cannot be answered as asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// The MOT index is not in the topology.
    #[error("mot: {0} is not a MOT index (there are {1})")]
    UnknownMot(u32, usize),
    /// The experience index is not in the topology.
    #[error("experience: {0} is not an experience index (there are {1})")]
    UnknownExperience(u32, usize),
    /// The window is zero or longer than the longest retention.
    #[error("window_ms: {0} is not in 1..={1} (the longest retention)")]
    BadWindow(u64, u64),
}
