//! The type and region of a number written with `+`, matched with compiled
//! automata.
//!
//! The library matches each type pattern with `regex-lite`'s Pike VM, a few
//! hundred nanoseconds a pattern, and answering a `+1` number's type and
//! region takes it three passes over the US patterns: most of reading a
//! hook's number. `regex` matches the same patterns in tens of nanoseconds,
//! but building the library on it compiles the library's own Unicode-wide
//! patterns at start, milliseconds of every cold start. So the library keeps
//! `regex-lite`, and this module applies the library's rules
//! (`get_number_type`, `get_region_for_number`) to the same metadata with
//! `regex`: each region's patterns compiled on its first number (the main
//! regions in reach at start, see [`super::warm_up`]), with `\d` as
//! `[0-9]`. The patterns only ever see the ASCII digits of a national
//! number (in the Java reference `\d` is ASCII too), and ASCII classes keep
//! a region's compile under a millisecond. The golden-file tests hold this
//! and the library to the same answers.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use prost::Message;
use regex::Regex;
use rlibphonenumber::{
    PhoneMetadata, PhoneNumber, PhoneNumberDesc, PhoneNumberType, PhoneNumberUtil,
    Region as LibRegion,
};

use super::numbering::{EMBEDDED, tables};

/// What the library's wrapped pattern (`^(?:…)$`, shorter than this: the
/// empty pattern) matches.
const MIN_WRAPPED: usize = 6;

/// One number type's description: its lengths, then its pattern.
struct Desc {
    lengths: Vec<i32>,
    pattern: Pattern,
}

enum Pattern {
    /// No pattern: no number is of this type.
    Never,
    /// The empty pattern, which matches every number.
    Always,
    Compiled(Regex),
}

impl Pattern {
    /// The whole pattern (`anchor_full`), or its start only (`anchor_start`,
    /// the stored pattern without its final `$`).
    fn new(base: Option<&str>, whole: bool) -> Result<Self, regex::Error> {
        Ok(match base {
            None => Pattern::Never,
            Some(b) if b.len() < MIN_WRAPPED => Pattern::Always,
            Some(b) => {
                // Without its final character, as the library cuts it.
                let b = if whole {
                    b
                } else {
                    b.char_indices().last().map_or(b, |(i, _)| &b[..i])
                };
                Pattern::Compiled(Regex::new(&b.replace("\\d", "[0-9]"))?)
            }
        })
    }

    fn is_match(&self, digits: &str) -> bool {
        match self {
            Pattern::Never => false,
            Pattern::Always => true,
            Pattern::Compiled(r) => r.is_match(digits),
        }
    }
}

// The pattern fields are deprecated for the library's own metadata, whose
// wrapper moves them out; a freshly decoded entry, as here, holds them.
#[allow(deprecated)]
impl Desc {
    fn new(desc: Option<&PhoneNumberDesc>) -> Result<Self, regex::Error> {
        Ok(Desc {
            lengths: desc.map(|d| d.possible_length.clone()).unwrap_or_default(),
            pattern: Pattern::new(
                desc.and_then(|d| d.national_number_pattern.as_deref()),
                true,
            )?,
        })
    }

    /// The library's `is_number_matching_desc`: a length the description
    /// lists (when it lists any), then the pattern.
    fn matches(&self, national: &str) -> bool {
        let len = i32::try_from(national.len()).unwrap_or(i32::MAX);
        if !self.lengths.is_empty() && !self.lengths.contains(&len) {
            return false;
        }
        self.pattern.is_match(national)
    }
}

/// One region's patterns.
struct RegionTypes {
    leading_digits: Pattern,
    general: Desc,
    /// In the library's order of precedence, before the fixed-line and
    /// mobile patterns.
    special: [(Desc, PhoneNumberType); 8],
    fixed_line: Desc,
    mobile: Desc,
    same_mobile_and_fixed_line: bool,
}

#[allow(deprecated)] // As for `Desc`.
impl RegionTypes {
    fn new(m: &PhoneMetadata) -> Result<Self, regex::Error> {
        let d = |desc: &Option<PhoneNumberDesc>| Desc::new(desc.as_ref());
        Ok(RegionTypes {
            leading_digits: Pattern::new(m.leading_digits.as_deref(), false)?,
            general: d(&m.general_desc)?,
            special: [
                (d(&m.premium_rate)?, PhoneNumberType::PremiumRate),
                (d(&m.toll_free)?, PhoneNumberType::TollFree),
                (d(&m.shared_cost)?, PhoneNumberType::SharedCost),
                (d(&m.voip)?, PhoneNumberType::VoIP),
                (d(&m.personal_number)?, PhoneNumberType::PersonalNumber),
                (d(&m.pager)?, PhoneNumberType::Pager),
                (d(&m.uan)?, PhoneNumberType::UAN),
                (d(&m.voicemail)?, PhoneNumberType::VoiceMail),
            ],
            fixed_line: d(&m.fixed_line)?,
            mobile: d(&m.mobile)?,
            same_mobile_and_fixed_line: m.same_mobile_and_fixed_line_pattern.unwrap_or(false),
        })
    }

    /// The library's `get_number_type_helper`.
    fn number_type(&self, national: &str) -> PhoneNumberType {
        if !self.general.matches(national) {
            return PhoneNumberType::Unknown;
        }
        if let Some((_, kind)) = self.special.iter().find(|(d, _)| d.matches(national)) {
            return *kind;
        }
        if self.fixed_line.matches(national) {
            if self.same_mobile_and_fixed_line || self.mobile.matches(national) {
                return PhoneNumberType::FixedLineOrMobile;
            }
            return PhoneNumberType::FixedLine;
        }
        if !self.same_mobile_and_fixed_line && self.mobile.matches(national) {
            return PhoneNumberType::Mobile;
        }
        PhoneNumberType::Unknown
    }
}

/// Every region's patterns, each compiled on first use; `None` when a
/// pattern does not compile (the library answers for that region then).
fn region_types(region: LibRegion) -> Option<&'static RegionTypes> {
    static ALL: OnceLock<Vec<OnceLock<Option<RegionTypes>>>> = OnceLock::new();
    let all = ALL.get_or_init(|| {
        tables::REGION_CODES
            .iter()
            .map(|_| OnceLock::new())
            .collect()
    });
    let i = tables::REGION_CODES
        .binary_search_by_key(&region, |(r, _)| *r)
        .ok()?;
    let code = tables::REGION_CODES[i].1;
    all[i]
        .get_or_init(|| {
            let metadata = tables::ENTRIES
                .iter()
                .filter(|(c, ..)| *c == Some(code))
                .filter_map(|&(_, start, end)| PhoneMetadata::decode(&EMBEDDED[start..end]).ok())
                .find(|m| LibRegion::from_code(&m.id).is_ok_and(|r| r == region))?;
            RegionTypes::new(&metadata).ok()
        })
        .as_ref()
}

/// Compiles `regions`' patterns, once per process, on a thread start-up
/// does not wait for: Lambda's runtime asks for the first event meanwhile,
/// and a hook that comes sooner waits for the compile (under a millisecond)
/// instead of doing it.
pub(super) fn compile_soon(regions: &'static [LibRegion]) {
    static STARTED: AtomicBool = AtomicBool::new(false);
    if !STARTED.swap(true, Ordering::Relaxed) {
        std::thread::spawn(move || {
            for &region in regions {
                let _ = region_types(region);
            }
        });
    }
}

/// `number`'s type and region, as the library's `get_number_type` and
/// `get_region_for_number` answer them with `util`; `None` where this
/// module does not answer (a code without regions, a region whose patterns
/// did not compile), for the library to.
pub(super) fn type_and_region(
    util: &PhoneNumberUtil,
    number: &PhoneNumber,
) -> Option<(PhoneNumberType, Option<LibRegion>)> {
    let national = rlibphonenumber::get_national_significant_number_owned(number);
    let mut regions = util.get_regions_for_country_calling_code(number.country_code)?;
    if regions.len() == 1 {
        let region = regions.next()?;
        return Some((region_types(region)?.number_type(&national), Some(region)));
    }
    // A shared code: the first region whose leading digits fit, or whose
    // patterns give the number a type; the number's type is then that
    // region's (the library's region is found the same way).
    for region in regions {
        let types = region_types(region)?;
        let kind = types.number_type(&national);
        if kind != PhoneNumberType::Unknown || types.leading_digits.is_match(&national) {
            return Some((kind, Some(region)));
        }
    }
    Some((PhoneNumberType::Unknown, None))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The golden-file tests compare every row; these name the cases the
    /// rules turn on: a main region, another region of a shared code
    /// (found by its patterns, and by its leading digits), a national
    /// number with a leading zero, an invalid number, a non-geographic code
    /// (left to the library).
    #[test]
    fn answers_as_the_library_does() {
        let util = PhoneNumberUtil::new().unwrap();
        for text in [
            "+12015550123",
            "+18765550123",
            "+16135550123",
            "+12425550123",
            "+390612345678",
            "+447400123456",
            "+441534456789",
            "+15555555555",
            "+80012345678",
        ] {
            let number = util.parse(text, None).unwrap();
            let library = (
                util.get_number_type(&number),
                util.get_region_for_number(&number),
            );
            match type_and_region(&util, &number) {
                Some((kind, region)) => {
                    assert_eq!(kind, library.0, "{text}");
                    if kind != PhoneNumberType::Unknown {
                        assert_eq!(region, library.1, "{text}");
                    }
                }
                None => assert!(text.starts_with("+800"), "{text} left to the library"),
            }
        }
    }
}
