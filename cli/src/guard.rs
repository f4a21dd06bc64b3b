//! `telehook guard`: the learning guard's block list, for an operator.
//!
//! - `list`: every entry (learned blocks, pins, allows, lifts);
//! - `lift TARGET`: unblocks now, and keeps learning from blocking it
//!   again for one cool-down (the counts that made the block are still in
//!   the window);
//! - `pin TARGET`: blocks until lifted;
//! - `allow TARGET`: never blocked by learning (a corporate range whose
//!   codes are used through another door, say), until lifted.
//!
//! A target is a prefix (`+` and 6 to 8 digits, as the guard counts them)
//! or an ISO country (`ID`). With `--aws` the ledger table is changed
//! (normal AWS SDK environment, `--stack` or `--table`); without, local
//! mode's ledger file, which a running `telehook serve` reads on every
//! hook: a pin holds from the next one.

use telehook::config::ConfigError;
use telehook::flows::guard::Learning;
use telehook::ledger::{BlockKind, GuardBlock, GuardBook};

use crate::local::Error;
use crate::report::{LedgerAt, block_text};

#[derive(clap::Subcommand, Debug)]
pub enum GuardCommand {
    /// Every block entry: learned blocks, pins, allows and lifts.
    List {
        #[command(flatten)]
        at: LedgerAt,
    },
    /// Unblock a prefix or country now, and hold off learning for one cool-down.
    Lift {
        /// `+6281234` (a prefix) or `ID` (a country).
        target: String,
        #[command(flatten)]
        at: LedgerAt,
    },
    /// Block a prefix or country until lifted.
    Pin {
        /// `+6281234` (a prefix of 6 to 8 digits) or `ID` (a country).
        target: String,
        /// Why, for whoever lists the blocks next.
        #[arg(long, default_value = "pinned by an operator")]
        reason: String,
        #[command(flatten)]
        at: LedgerAt,
    },
    /// Never block a prefix or country by learning, until lifted.
    Allow {
        /// `+6281234` (a prefix of 6 to 8 digits) or `ID` (a country).
        target: String,
        /// Why, for whoever lists the blocks next.
        #[arg(long, default_value = "allowed by an operator")]
        reason: String,
        #[command(flatten)]
        at: LedgerAt,
    },
}

/// `(scope, key)` of a target.
pub fn parse_target(target: &str) -> Result<(&'static str, String), String> {
    let t = target.trim();
    if let Some(digits) = t.strip_prefix('+') {
        if telehook::domain::conversion::PREFIX_DIGITS.contains(&digits.len())
            && digits.chars().all(|c| c.is_ascii_digit())
        {
            return Ok(("pfx", digits.to_owned()));
        }
        return Err(format!(
            "{t}: a prefix is + and 6 to 8 digits (LEARNED_GUARD_PREFIX_DIGITS)"
        ));
    }
    if t.len() == 2 && t.chars().all(|c| c.is_ascii_alphabetic()) {
        let country = t.to_ascii_uppercase();
        // Only a country a number can be in: a typo would pin nothing.
        if country.parse::<telehook::domain::Region>().is_err() {
            return Err(format!(
                "{t}: not a country with telephone numbers (an ISO 3166 code such as ID)"
            ));
        }
        return Ok(("cty", country));
    }
    Err(format!(
        "{t}: expected a prefix such as +6281234 or a country such as ID"
    ))
}

/// The entry an operator's command writes.
fn entry(target: &str, kind: BlockKind, reason: &str, now_ms: i64) -> Result<GuardBlock, Error> {
    let (scope, key) = parse_target(target)?;
    // A lift holds off learning for the cool-down the stack uses.
    let learning = telehook::flows::guard::guard_from_lookup(crate::local::local_env)
        .map(|g| g.learning)
        .unwrap_or_else(|_: ConfigError| Learning::default());
    let until_ms = (kind == BlockKind::Lifted)
        .then(|| now_ms + i64::try_from(learning.cool_down.as_millis()).unwrap_or(3_600_000));
    Ok(GuardBlock {
        scope: scope.to_owned(),
        key,
        kind,
        until_ms,
        reason: reason.to_owned(),
        judged: 0,
        conversions: 0,
        since_ms: now_ms,
    })
}

/// Writes an operator's entry where `at` says.
async fn set(at: &LedgerAt, block: GuardBlock) -> Result<(), Error> {
    eprintln!("changing {}", at.at.source());
    if at.aws() {
        at.table_ledger().await?.set_block(&block).await?;
    } else {
        crate::local::open_ledger(&at.at.state_dir)?
            .set_block(&block)
            .await?;
    }
    outln!("{}", block_text(&block));
    Ok(())
}

pub async fn guard(command: GuardCommand) -> Result<(), Error> {
    let now_ms = chrono::Utc::now().timestamp_millis();
    match command {
        GuardCommand::List { at } => {
            eprintln!("reading {}", at.at.source());
            let blocks = if at.aws() {
                at.table_ledger().await?.list_blocks().await?
            } else {
                at.local_ledger()?.list_blocks().await?
            };
            if blocks.is_empty() {
                outln!("(no blocks)");
            }
            for b in &blocks {
                let state = if b.blocks(now_ms) { "blocking" } else { "open" };
                outln!("{} [{state}]", block_text(b));
            }
            Ok(())
        }
        GuardCommand::Lift { target, at } => {
            let block = entry(&target, BlockKind::Lifted, "lifted by an operator", now_ms)?;
            set(&at, block).await
        }
        GuardCommand::Pin { target, reason, at } => {
            set(&at, entry(&target, BlockKind::Pinned, &reason, now_ms)?).await
        }
        GuardCommand::Allow { target, reason, at } => {
            set(&at, entry(&target, BlockKind::Allowed, &reason, now_ms)?).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_prefixes_or_countries() {
        assert_eq!(parse_target("+6281234"), Ok(("pfx", "6281234".to_owned())));
        assert_eq!(parse_target(" id "), Ok(("cty", "ID".to_owned())));
        for bad in [
            "+62812",
            "+628123456",
            "+62a1234",
            "IDN",
            "6281234",
            "",
            "XX",
            "QQ",
        ] {
            assert!(parse_target(bad).is_err(), "{bad}");
        }
    }
}
