//! Which numbering plans this process can read, and how much of
//! libphonenumber's metadata it builds for them.
//!
//! Building the library's metadata for all 244 regions is most of a
//! Lambda's init, yet a deployment sends codes only to its allow-listed
//! countries (`ALLOWED_COUNTRIES`, default US and CA). So the library's
//! tables are decoded once into a [`Catalogue`] (every region's calling code
//! and possible lengths: cheap), and the library itself is built only for
//! the calling codes a deployment can reach ([`prepare`]): every region that
//! shares such a code, since a `+1` number may be Jamaican as well as
//! American and only the full metadata tells them apart.
//!
//! A number with `+` and a calling code out of reach is answered from the
//! catalogue alone ([`Catalogue::out_of_reach`]) when its length fits the
//! code's plan: the country the code belongs to, which the allow-list then
//! refuses, as before. The rest (such a number of another length, which may
//! carry a national prefix after the code; the international reading of a
//! number written without `+` that is not valid nationally) is read with the
//! whole metadata, built the first time it is needed ([`everything`]): rare
//! input, whose first occurrence costs the instance one build, once.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use prost::Message;
use rlibphonenumber::{
    PhoneMetadata, PhoneMetadataCollection, PhoneNumberUtil, Region as LibRegion,
};

/// The tables rlibphonenumber embeds, read from the library's own file at
/// build time (see `build.rs`): the same metadata release it was built with.
pub(super) static EMBEDDED: &[u8] = include_bytes!(env!("TELEHOOK_PHONE_METADATA"));

/// The calling-code table, written by `build.rs` from the same file.
pub(super) mod tables {
    use super::{CallingCode, LibRegion};
    include!(concat!(env!("OUT_DIR"), "/phone_tables.rs"));
}

/// Every region's calling code: compiled in, so nothing is decoded for it
/// at start.
pub(super) static CATALOGUE: Catalogue = Catalogue;

static NUMBERING: OnceLock<Numbering> = OnceLock::new();
static EVERYTHING: OnceLock<PhoneNumberUtil> = OnceLock::new();

/// The regions a process sends to: every region, or a list (the allow-list
/// and the default region for numbers without `+`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reach {
    Everywhere,
    Regions(Vec<super::Region>),
}

/// What one calling code stands for.
#[derive(Debug, Clone)]
pub(super) struct CallingCode {
    /// The region the library names for the code when a number does not
    /// tell (US for `+1`, GB for `+44`); `None` for the non-geographic codes
    /// (`+800`, `+882`…).
    pub main: Option<LibRegion>,
    /// National significant number lengths possible in any of the code's
    /// regions, as bits (bit n: n digits).
    lengths: u32,
}

impl CallingCode {
    fn fits(&self, national_len: usize) -> bool {
        national_len < 32 && self.lengths & (1 << national_len) != 0
    }
}

/// The calling-code table of the whole metadata (`tables`, sorted by
/// region and by code).
pub(super) struct Catalogue;

impl Catalogue {
    /// The calling code of a region with a numbering plan.
    pub fn code_of(&self, region: LibRegion) -> Option<u16> {
        let i = tables::REGION_CODES
            .binary_search_by_key(&region, |(r, _)| *r)
            .ok()?;
        Some(tables::REGION_CODES[i].1)
    }

    fn code(&self, code: u16) -> Option<&'static CallingCode> {
        let i = tables::CODES
            .binary_search_by_key(&code, |(c, _)| *c)
            .ok()?;
        Some(&tables::CODES[i].1)
    }

    /// The calling code an international number starts with, and the rest.
    /// Calling codes are prefix-free, so at most one of 1 to 3 digits fits.
    pub fn split<'a>(&self, digits: &'a str) -> Option<(u16, &'a str)> {
        if digits.starts_with('0') {
            return None;
        }
        (1..=3.min(digits.len())).find_map(|n| {
            let code = digits[..n].parse().ok()?;
            self.code(code).map(|_| (code, &digits[n..]))
        })
    }

    /// A number with `+` whose calling code is out of reach: the code's
    /// plan when the number's length is possible in one of its regions.
    pub fn out_of_reach(&self, code: u16, national: &str) -> Option<&'static CallingCode> {
        self.code(code).filter(|c| c.fits(national.len()))
    }

    /// The library built for `codes`, or for everything: only the entries
    /// of those codes are decoded (with US and CA, the 25 regions of `+1`
    /// out of 245), then the library builds its own structures.
    fn build(&self, codes: Option<&BTreeSet<u16>>) -> PhoneNumberUtil {
        let tables = tables::ENTRIES
            .iter()
            .filter(|(code, ..)| codes.is_none_or(|codes| code.is_some_and(|c| codes.contains(&c))))
            .map(|&(_, start, end)| {
                PhoneMetadata::decode(&EMBEDDED[start..end])
                    .expect("the metadata the library embeds decodes")
            })
            .collect();
        PhoneNumberUtil::new_for_metadata(PhoneMetadataCollection { metadata: tables })
            .expect("the library's own metadata builds")
    }
}

/// The library built for some calling codes (the process's own comes from
/// [`prepare`]; [`Numbering::for_reach`] makes another, for tests and
/// comparisons).
pub struct Numbering {
    pub(super) util: PhoneNumberUtil,
    /// `None`: every code.
    codes: Option<BTreeSet<u16>>,
    /// The regions whose patterns [`warm_up`] compiles: the main region of
    /// each calling code in reach.
    warm: Vec<LibRegion>,
    /// How many reads needed the whole metadata: each one builds it on an
    /// instance that has not yet (what tests hold down to zero).
    fallbacks: AtomicU32,
}

impl fmt::Debug for Numbering {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Numbering")
            .field("codes", &self.codes)
            .finish_non_exhaustive()
    }
}

impl Numbering {
    /// The library built for `reach` (what [`prepare`] builds once per
    /// process).
    pub fn for_reach(reach: &Reach) -> Self {
        let catalogue = &CATALOGUE;
        let codes = match reach {
            Reach::Everywhere => None,
            Reach::Regions(regions) => Some(
                regions
                    .iter()
                    .filter_map(|r| catalogue.code_of(r.id))
                    .collect::<BTreeSet<u16>>(),
            ),
        };
        // The main region of each calling code (the US for +1): the
        // library tries a shared code's regions in order, main first, so
        // its numbers need the fewest patterns. Every region at once would
        // cost more than the rest of init; every country: `+1` only.
        let main_of = |code: &u16| catalogue.code(*code).and_then(|c| c.main);
        let warm = match &codes {
            Some(codes) => codes.iter().filter_map(main_of).collect(),
            None => main_of(&1).into_iter().collect(),
        };
        Numbering {
            util: catalogue.build(codes.as_ref()),
            codes,
            warm,
            fallbacks: AtomicU32::new(0),
        }
    }

    /// Whether numbers of this calling code are read with the full
    /// metadata (otherwise from the calling code alone, or by
    /// [`everything`]).
    pub fn covers(&self, code: u16) -> bool {
        self.codes.as_ref().is_none_or(|c| c.contains(&code))
    }

    /// The library for a number of `code`: this process's own when it
    /// covers the code, otherwise the whole metadata ([`everything`]).
    pub(super) fn for_code(&self, code: u16) -> &PhoneNumberUtil {
        if self.covers(code) {
            &self.util
        } else {
            self.fell_back()
        }
    }

    /// The whole metadata, counted.
    pub(super) fn fell_back(&self) -> &PhoneNumberUtil {
        self.fallbacks.fetch_add(1, Ordering::Relaxed);
        everything()
    }

    #[cfg(test)]
    pub(super) fn fallbacks(&self) -> u32 {
        self.fallbacks.load(Ordering::Relaxed)
    }
}

/// Builds the metadata for `reach`, once per process, and compiles the
/// listed regions' patterns ([`warm_up`]). A later call, or a number parsed
/// before any call (the CLI, tests), keeps what was built first. Lambda's
/// init is the place for it: otherwise the first hook of every cold
/// instance pays for it inside Okta's 3 seconds.
pub fn prepare(reach: &Reach) {
    NUMBERING.get_or_init(|| Numbering::for_reach(reach));
    warm_up();
}

/// Compiles the patterns of the main region of each calling code in reach
/// (or, when nothing was prepared, builds the whole metadata and compiles
/// the US's) by reading one example number of each, as a hook reads it:
/// the library compiles a pattern when it first needs it. Another region
/// of a shared code (Canada for +1) compiles its own on its first number,
/// a millisecond or two once per instance.
pub fn warm_up() {
    let numbering = numbering();
    for &region in &numbering.warm {
        if let Ok(example) = numbering.util.get_example_number(region) {
            let _ = numbering.util.get_number_type(&example);
        }
    }
}

/// The regions [`warm_up`] compiles (the main region of each calling code
/// in reach).
pub(super) fn warm_regions() -> &'static [LibRegion] {
    &numbering().warm
}

/// The numbering this process prepared; every region when nothing was.
pub(super) fn numbering() -> &'static Numbering {
    NUMBERING.get_or_init(|| Numbering::for_reach(&Reach::Everywhere))
}

/// The whole metadata, built on first use (or this process's own numbering
/// when that already is the whole metadata).
pub(super) fn everything() -> &'static PhoneNumberUtil {
    match NUMBERING.get() {
        Some(n) if n.codes.is_none() => &n.util,
        _ => EVERYTHING.get_or_init(|| CATALOGUE.build(None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalogue_knows_every_region_the_library_knows() {
        let full = PhoneNumberUtil::new().unwrap();
        let regions: Vec<LibRegion> = full.get_supported_regions().collect();
        assert_eq!(regions.len(), tables::REGION_CODES.len());
        for region in regions {
            assert_eq!(
                CATALOGUE.code_of(region).map(i32::from),
                full.get_country_code_for_region(region),
                "{region}"
            );
        }
        for code in full.get_supported_calling_codes() {
            let main = CATALOGUE.code(u16::try_from(code).unwrap()).unwrap().main;
            let lib = full.get_region_for_country_code(code);
            assert_eq!(main, lib.filter(|r| *r != LibRegion::World), "+{code}");
        }
    }

    #[test]
    fn the_tables_are_sorted_for_binary_search_and_cover_the_file() {
        assert!(tables::REGION_CODES.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(tables::CODES.windows(2).all(|w| w[0].0 < w[1].0));
        // Every entry once, end to end: a field key and a length before each.
        let mut at = 0;
        for &(_, start, end) in tables::ENTRIES {
            assert!(start > at && start - at <= 4 && end > start, "{at} {start}");
            at = end;
        }
        assert_eq!(at, EMBEDDED.len());
        let whole = PhoneMetadataCollection::decode(EMBEDDED).unwrap().metadata;
        assert_eq!(whole.len(), tables::ENTRIES.len());
        for (m, &(code, start, end)) in whole.iter().zip(tables::ENTRIES) {
            assert_eq!(PhoneMetadata::decode(&EMBEDDED[start..end]).unwrap(), *m);
            assert_eq!(code.map(i32::from), m.country_code);
        }
    }

    #[test]
    fn calling_codes_are_read_off_the_front() {
        assert_eq!(CATALOGUE.split("14155552671"), Some((1, "4155552671")));
        assert_eq!(CATALOGUE.split("442079460000"), Some((44, "2079460000")));
        assert_eq!(CATALOGUE.split("3546111234"), Some((354, "6111234")));
        assert_eq!(CATALOGUE.split("80012345678"), Some((800, "12345678")));
        // No calling code starts with 0; none is 28.
        assert_eq!(CATALOGUE.split("0123"), None);
        assert_eq!(CATALOGUE.split("28123"), None);
    }

    #[test]
    fn a_numbering_for_us_covers_the_whole_nanp_and_nothing_else() {
        let n = Numbering::for_reach(&Reach::Regions(vec!["US".parse().unwrap()]));
        assert!(n.covers(1));
        assert!(!n.covers(44));
        let jm = LibRegion::from_code("JM").unwrap();
        let built: Vec<LibRegion> = n.util.get_supported_regions().collect();
        assert!(built.contains(&jm), "Jamaica shares +1");
        assert!(!built.contains(&LibRegion::from_code("GB").unwrap()));
    }
}
