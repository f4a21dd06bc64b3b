//! The guard's book: the learning guard's counts (codes judged and used
//! per prefix or country and window) and its block list.

use async_trait::async_trait;

use super::LedgerError;

/// Codes judged (used, or judged unused) and codes used, of one prefix or
/// country in one window. Pending codes are in neither.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StatCounts {
    pub judged: u32,
    pub conversions: u32,
}

/// Adds to the counts of one prefix or country in one window.
#[derive(Debug, Clone)]
pub struct StatBump<'a> {
    /// `pfx` or `cty`.
    pub scope: &'a str,
    pub key: &'a str,
    pub window: i64,
    pub judged: u32,
    pub conversions: u32,
    /// TTL attribute, epoch seconds.
    pub expires_at: i64,
}

impl StatBump<'_> {
    pub fn record_key(&self) -> String {
        format!("stat#{}#{}#{}", self.scope, self.key, self.window)
    }
}

/// The key and window of a `stat#<scope>#<key>#<window>` record key of
/// this scope.
pub fn stat_key_parts(record_key: &str, scope: &str) -> Option<(String, i64)> {
    let rest = record_key.strip_prefix("stat#")?.strip_prefix(scope)?;
    let rest = rest.strip_prefix('#')?;
    let (key, window) = rest.rsplit_once('#')?;
    Some((key.to_owned(), window.parse().ok()?))
}

/// What a guard block entry says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum BlockKind {
    /// Learned from the counts; holds until `until_ms`.
    Learned,
    /// Set by an operator; holds until lifted.
    Pinned,
    /// Lifted by an operator: nothing is blocked, and the guard does not
    /// learn a new block before `until_ms` (the counts that made the old
    /// one are still in the window).
    Lifted,
    /// Set by an operator: never blocked by learning.
    Allowed,
}

impl BlockKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            BlockKind::Learned => "LEARNED",
            BlockKind::Pinned => "PINNED",
            BlockKind::Lifted => "LIFTED",
            BlockKind::Allowed => "ALLOWED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "LEARNED" => BlockKind::Learned,
            "PINNED" => BlockKind::Pinned,
            "LIFTED" => BlockKind::Lifted,
            "ALLOWED" => BlockKind::Allowed,
            _ => return None,
        })
    }
}

/// One entry of the guard's block list, for a prefix (`pfx`) or a country
/// (`cty`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GuardBlock {
    pub scope: String,
    pub key: String,
    pub kind: BlockKind,
    /// Until when it holds (epoch ms); `None` for pinned and allowed.
    pub until_ms: Option<i64>,
    /// Why, in words an operator reads (counts and rates, never a number).
    pub reason: String,
    /// The window's counts when it was written: codes judged, codes used.
    pub judged: u32,
    pub conversions: u32,
    pub since_ms: i64,
}

impl GuardBlock {
    pub fn record_key(&self) -> String {
        block_key(&self.scope, &self.key)
    }

    /// Whether it stops sends at `now_ms`.
    pub fn blocks(&self, now_ms: i64) -> bool {
        match self.kind {
            BlockKind::Pinned => true,
            BlockKind::Learned => self.until_ms.is_some_and(|u| u > now_ms),
            BlockKind::Lifted | BlockKind::Allowed => false,
        }
    }

    /// Whether learning may replace it at `now_ms`.
    pub fn learnable(&self, now_ms: i64) -> bool {
        match self.kind {
            BlockKind::Pinned | BlockKind::Allowed => false,
            BlockKind::Learned | BlockKind::Lifted => self.until_ms.is_none_or(|u| u <= now_ms),
        }
    }
}

pub fn block_key(scope: &str, key: &str) -> String {
    format!("blk#{scope}#{key}")
}

/// The learning guard's counts and blocks.
#[async_trait]
pub trait GuardBook: Send + Sync + std::fmt::Debug {
    /// Adds to a window's counts; returns the counts after.
    async fn bump(&self, bump: &StatBump<'_>) -> Result<StatCounts, LedgerError>;

    /// The block entries of these `(scope, key)` pairs that exist.
    async fn blocks(&self, keys: &[(&str, &str)]) -> Result<Vec<GuardBlock>, LedgerError>;

    /// Writes a learned block unless an entry that learning may not
    /// replace is there; `false` when it was not written.
    async fn learn_block(&self, block: &GuardBlock, now_ms: i64) -> Result<bool, LedgerError>;

    /// Writes an operator's entry (pin, allow, lift) over whatever is there.
    async fn set_block(&self, block: &GuardBlock) -> Result<(), LedgerError>;

    /// Every block entry.
    async fn list_blocks(&self) -> Result<Vec<GuardBlock>, LedgerError>;
}
