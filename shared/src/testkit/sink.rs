//! A metrics sink that keeps its documents, for tests and local reports.

use std::sync::Mutex;

use crate::telemetry::metrics::MetricsSink;

/// Keeps documents in memory (tests, and local reports).
#[derive(Debug, Default)]
pub struct MemorySink(Mutex<Vec<String>>);

impl MemorySink {
    pub fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl MetricsSink for MemorySink {
    fn write(&self, line: &str) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(line.to_owned());
    }
}
