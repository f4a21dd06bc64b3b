//! The ledger in memory, for flow tests and load runs: the shared table
//! rules ([`super::tables`]) over two maps behind one lock, so each
//! operation is one transaction as on the other adapters.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use super::tables::{Item, Store, TableLedger, Tables};
use super::{LedgerError, LedgerRecord};

/// The ledger in memory, with the same conditional semantics as DynamoDB.
pub type InMemoryLedger = TableLedger<MemoryTables>;

impl InMemoryLedger {
    pub fn new() -> Self {
        Self::default()
    }
}

/// Records and items in memory. Items expire only with the process.
#[derive(Debug, Default)]
pub struct MemoryTables {
    inner: Mutex<Maps>,
}

#[derive(Debug, Default)]
struct Maps {
    // Boxed: a record is a few hundred bytes, and growing the map then
    // moves pointers rather than every record.
    records: HashMap<String, Box<LedgerRecord>, foldhash::fast::RandomState>,
    // Ordered, so listing a prefix is a range.
    items: BTreeMap<String, Item>,
}

impl Store for MemoryTables {
    fn read<T>(
        &self,
        f: impl FnOnce(&mut dyn Tables) -> Result<T, LedgerError>,
    ) -> Result<T, LedgerError> {
        self.write(f)
    }

    fn write<T>(
        &self,
        f: impl FnOnce(&mut dyn Tables) -> Result<T, LedgerError>,
    ) -> Result<T, LedgerError> {
        let mut maps = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut *maps)
    }
}

impl Tables for Maps {
    fn record(&mut self, event_id: &str) -> Result<Option<LedgerRecord>, LedgerError> {
        Ok(self.records.get(event_id).map(|r| LedgerRecord::clone(r)))
    }

    fn put_record(&mut self, record: LedgerRecord) -> Result<(), LedgerError> {
        match self.records.get_mut(&record.event_id) {
            // The same event again (every write after the claim): in place.
            Some(stored) => **stored = record,
            None => {
                self.records
                    .insert(record.event_id.clone(), Box::new(record));
            }
        }
        Ok(())
    }

    fn latest_send(
        &mut self,
        keys: &[String],
        at_ms: i64,
    ) -> Result<Option<LedgerRecord>, LedgerError> {
        Ok(self
            .records
            .values()
            .filter(|r| {
                r.sent.as_ref().is_some_and(|s| {
                    s.sent_ms <= at_ms && s.user_channel.as_ref().is_some_and(|k| keys.contains(k))
                })
            })
            .max_by_key(|r| r.sent.as_ref().map_or(0, |s| s.sent_ms))
            .map(|r| LedgerRecord::clone(r)))
    }

    fn records(&mut self) -> Result<Vec<LedgerRecord>, LedgerError> {
        let mut v: Vec<LedgerRecord> = self
            .records
            .values()
            .map(|r| LedgerRecord::clone(r))
            .collect();
        v.sort_by(|a, b| a.event_id.cmp(&b.event_id));
        Ok(v)
    }

    fn item(&mut self, key: &str) -> Result<Option<Item>, LedgerError> {
        Ok(self.items.get(key).cloned())
    }

    fn put_item(&mut self, key: &str, item: Item, _expires_at: i64) -> Result<(), LedgerError> {
        self.items.insert(key.to_owned(), item);
        Ok(())
    }

    fn items_under(&mut self, prefix: &str) -> Result<Vec<(String, Item)>, LedgerError> {
        Ok(self
            .items
            .range(prefix.to_owned()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }
}
