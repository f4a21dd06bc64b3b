//! The test kit: machinery for tests, local mode and load runs, never for
//! a Lambda. It is compiled only with the `testkit` cargo feature (the CLI
//! and the test suites turn it on) and in this crate's own unit tests.
//!
//! - [`chaos`]: fault-injecting wrappers for every port;
//! - [`invariants`]: the after-run reconciliation of answers, ledger,
//!   queues and sends;
//! - [`doubles`]: the scripted messenger, a recording `Delivery`, a delayed
//!   messenger for load tests;
//! - [`clock`]: a clock moved by hand; [`sink`]: a metrics sink that keeps
//!   its documents;
//! - [`dev_issuer`]: a local OAuth signing key and token minting;
//! - [`redaction`]: codes that cannot turn up in logs by chance, and the
//!   matching that makes "no code reached the logs" an exact check.

#[doc(hidden)]
pub use async_trait::async_trait as __async_trait;

/// `impl Ledger for $ty` with the given methods, forwarding the ledger's
/// conversion and guard methods to `self.$inner`: for test wrappers that
/// only change the delivery methods.
#[macro_export]
macro_rules! ledger_wrapper {
    ($ty:ty, $inner:tt, { $($body:tt)* }) => {
        #[$crate::testkit::__async_trait]
        impl $crate::ledger::Ledger for $ty {
        $($body)*
        async fn note_send(
            &self,
            note: &$crate::ledger::SendNote<'_>,
        ) -> Result<(), $crate::ledger::LedgerError> {
            self.$inner.note_send(note).await
        }
        async fn convert(
            &self,
            sign_in: &$crate::ledger::SignIn<'_>,
        ) -> Result<$crate::ledger::SignInMatch, $crate::ledger::LedgerError> {
            self.$inner.convert(sign_in).await
        }
        async fn mark_unused(
            &self,
            event_id: &$crate::domain::EventId,
            now_ms: i64,
        ) -> Result<Option<$crate::ledger::Resolution>, $crate::ledger::LedgerError> {
            self.$inner.mark_unused(event_id, now_ms).await
        }
        async fn judge(
            &self,
            event_id: &$crate::domain::EventId,
            now_ms: i64,
        ) -> Result<Option<$crate::ledger::Resolution>, $crate::ledger::LedgerError> {
            self.$inner.judge(event_id, now_ms).await
        }
        async fn first_sight(
            &self,
            uuid: &str,
            expires_at: i64,
        ) -> Result<bool, $crate::ledger::LedgerError> {
            self.$inner.first_sight(uuid, expires_at).await
        }
        async fn bump(
            &self,
            bump: &$crate::ledger::StatBump<'_>,
        ) -> Result<$crate::ledger::StatCounts, $crate::ledger::LedgerError> {
            self.$inner.bump(bump).await
        }
        async fn blocks(
            &self,
            keys: &[(&str, &str)],
        ) -> Result<Vec<$crate::ledger::GuardBlock>, $crate::ledger::LedgerError> {
            self.$inner.blocks(keys).await
        }
        async fn learn_block(
            &self,
            block: &$crate::ledger::GuardBlock,
            now_ms: i64,
        ) -> Result<bool, $crate::ledger::LedgerError> {
            self.$inner.learn_block(block, now_ms).await
        }
        async fn set_block(
            &self,
            block: &$crate::ledger::GuardBlock,
        ) -> Result<(), $crate::ledger::LedgerError> {
            self.$inner.set_block(block).await
        }
        async fn list_blocks(
            &self,
        ) -> Result<Vec<$crate::ledger::GuardBlock>, $crate::ledger::LedgerError> {
            self.$inner.list_blocks().await
        }
        async fn claim_fallback(
            &self,
            event_id: &$crate::domain::EventId,
            now_ms: i64,
        ) -> Result<bool, $crate::ledger::LedgerError> {
            self.$inner.claim_fallback(event_id, now_ms).await
        }
        }
    };
}

pub mod chaos;
pub mod clock;
pub mod dev_issuer;
pub mod doubles;
pub mod invariants;
pub mod redaction;
pub mod sink;

pub use clock::ManualClock;
pub use doubles::{DelayedMessenger, RecordingDelivery, Scripted, ScriptedMessenger};
pub use sink::MemorySink;
