//! The write-ahead log: durable, group-committed, hash-chained storage of scrubbed events.
mod log;
pub use log::{FileLog, Log, LogError, Recovery};
