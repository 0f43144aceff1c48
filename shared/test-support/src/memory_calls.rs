//! [`CallRecords`] in memory, for handler tests and benchmarks.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use async_trait::async_trait;

use domain::error::{Error, Result};
use domain::ports::CallRecords;
use domain::voice::CallRecord;

#[derive(Debug, Default)]
pub struct MemoryCallRecords {
    records: Mutex<HashMap<String, CallRecord>>,
    events: Mutex<HashSet<String>>,
}

fn poisoned<T>(_: T) -> Error {
    Error::dependency("memory", "lock", false, "poisoned")
}

#[async_trait]
impl CallRecords for MemoryCallRecords {
    async fn create(&self, record: &CallRecord) -> Result<bool> {
        let mut m = self.records.lock().map_err(poisoned)?;
        if m.contains_key(record.request_id()) {
            return Ok(false);
        }
        m.insert(record.request_id().to_string(), record.clone());
        Ok(true)
    }

    async fn get(&self, request_id: &str) -> Result<Option<CallRecord>> {
        Ok(self
            .records
            .lock()
            .map_err(poisoned)?
            .get(request_id)
            .cloned())
    }

    async fn update(&self, prev: &CallRecord, next: &CallRecord) -> Result<bool> {
        let mut m = self.records.lock().map_err(poisoned)?;
        match m.get_mut(prev.request_id()) {
            Some(stored) if stored.version == prev.version => {
                *stored = next.clone();
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn due(&self, now_ms: i64, limit: usize) -> Result<Vec<CallRecord>> {
        let m = self.records.lock().map_err(poisoned)?;
        let mut due: Vec<CallRecord> = m
            .values()
            .filter(|r| r.due_marker().is_some_and(|d| d <= now_ms))
            .cloned()
            .collect();
        due.sort_by_key(|r| r.due_marker());
        due.truncate(limit);
        Ok(due)
    }

    async fn mark_event(&self, key: &str, _at_ms: i64) -> Result<bool> {
        Ok(self
            .events
            .lock()
            .map_err(poisoned)?
            .insert(key.to_string()))
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn memory_call_records_pass_the_contract() {
        crate::calls_contract::run_all(&crate::memory_calls::MemoryCallRecords::default()).await;
    }
}
