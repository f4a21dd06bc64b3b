//! Destination phone numbers: parsing and normalisation to E.164, the calling
//! country, and masking for anything that is printed or logged.
//!
//! Okta sends E.164 in real flows, sometimes without the `+`, and the admin
//! Preview tab sends a bare national number (`9876543210`). Validation uses
//! libphonenumber's metadata (the `rlibphonenumber` crate, a port that is
//! differentially tested against Google's C++ library) rather than
//! hand-written length rules, so new numbering plans arrive with a crate
//! update. The library's types stay inside this module; how much of its
//! metadata a process builds is [`numbering`]'s business.

mod numbering;
mod types;

pub use numbering::{Numbering, Reach};

/// Builds the numbering for `reach` once per process and compiles its
/// main regions' patterns ([`warm_up`]). Lambda's init is the place for
/// it: otherwise the first hook of every cold instance pays for it inside
/// Okta's 3 seconds.
pub fn prepare(reach: &Reach) {
    numbering::prepare(reach);
    types::compile_soon(numbering::warm_regions());
}

/// Compiles the main regions' patterns, the library's now and the hook's
/// own reading's (`types`) on a thread of their own.
pub fn warm_up() {
    numbering::warm_up();
    types::compile_soon(numbering::warm_regions());
}

use std::fmt;
use std::str::FromStr;

use rlibphonenumber::{
    NumberLengthType, PhoneNumberFormat, PhoneNumberType, PhoneNumberUtil, Region as LibRegion,
    RegionStr,
};

use numbering::CATALOGUE;
use thiserror::Error;

/// Longest input we look at: E.164 has at most 15 digits, so anything much
/// longer after formatting characters are stripped is not a phone number.
const MAX_RAW_LEN: usize = 32;

/// Why a phone number was refused. Never carries the number itself.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PhoneError {
    #[error("phone number is missing")]
    Missing,
    #[error("phone number contains characters other than digits and a leading '+'")]
    BadCharacters,
    #[error("phone number is too long")]
    TooLong,
    #[error("phone number is not a valid number")]
    Invalid,
}

/// Which reading of the raw number was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reading {
    /// Written with `+`: international by definition.
    E164,
    /// No `+`; a valid (or, failing that, possible) national number of the
    /// default region.
    National,
    /// No `+`; not valid nationally, valid with a leading country code.
    International,
    /// No `+`; valid both ways with different results. The national reading
    /// was taken.
    Ambiguous,
}

impl Reading {
    pub fn as_str(&self) -> &'static str {
        match self {
            Reading::E164 => "e164",
            Reading::National => "national",
            Reading::International => "international",
            Reading::Ambiguous => "ambiguous",
        }
    }
}

/// An ISO 3166-1 alpha-2 region known to the phone-number metadata (`US`, `DE`).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Region {
    id: LibRegion,
    text: RegionStr,
}

impl Region {
    pub fn as_str(&self) -> &str {
        self.text.as_str()
    }

    fn from_lib(id: LibRegion) -> Option<Self> {
        // The library's enum has a variant for every two letters; only
        // regions with a numbering plan in the metadata are regions here.
        CATALOGUE.code_of(id)?;
        Some(Region {
            id,
            text: id.as_region_str(),
        })
    }
}

impl FromStr for Region {
    type Err = PhoneError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        LibRegion::from_code(s.trim())
            .ok()
            .and_then(Region::from_lib)
            .ok_or(PhoneError::Invalid)
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Region({})", self.as_str())
    }
}

/// What kind of line a number is, where the metadata can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NumberType {
    FixedLine,
    Mobile,
    /// Regions (the NANP) where the number cannot tell the two apart.
    FixedLineOrMobile,
    TollFree,
    PremiumRate,
    SharedCost,
    Voip,
    PersonalNumber,
    Pager,
    Uan,
    Voicemail,
    /// Not in any range the metadata lists (an unverified number).
    Unknown,
}

impl NumberType {
    fn from_lib(t: PhoneNumberType) -> Self {
        match t {
            PhoneNumberType::FixedLine => NumberType::FixedLine,
            PhoneNumberType::Mobile => NumberType::Mobile,
            PhoneNumberType::FixedLineOrMobile => NumberType::FixedLineOrMobile,
            PhoneNumberType::TollFree => NumberType::TollFree,
            PhoneNumberType::PremiumRate => NumberType::PremiumRate,
            PhoneNumberType::SharedCost => NumberType::SharedCost,
            PhoneNumberType::VoIP => NumberType::Voip,
            PhoneNumberType::PersonalNumber => NumberType::PersonalNumber,
            PhoneNumberType::Pager => NumberType::Pager,
            PhoneNumberType::UAN => NumberType::Uan,
            PhoneNumberType::VoiceMail => NumberType::Voicemail,
            _ => NumberType::Unknown,
        }
    }
}

/// A validated destination number in E.164 form.
///
/// `Display` and `Debug` print it masked (`+1******1212`): the full number is
/// only reachable through [`PhoneNumber::e164`], which is meant for the
/// provider request and for keyed hashing, never for logs.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PhoneNumber {
    e164: String,
    calling_code: u16,
    region: Option<Region>,
    kind: NumberType,
    verified: bool,
}

impl PhoneNumber {
    /// Parses what Okta sent; see [`PhoneNumber::read`] for the rule.
    pub fn parse(raw: &str, default_region: Region) -> Result<Self, PhoneError> {
        Self::read(raw, default_region).map(|(number, _)| number)
    }

    /// Parses what Okta sent and says which reading was taken. Spaces,
    /// dashes, dots and parentheses are formatting and are dropped.
    ///
    /// With `+`, the number must be international (E.164). Without `+`, it
    /// is read as a national number of `default_region` first, and as
    /// international (a leading country code, E.164 minus the `+`) only when
    /// the national reading is not a valid number and the international one
    /// is. Reading international first sends a US login's code abroad:
    /// `6594821993` is a valid US number and, read with `65`, a Singapore
    /// mobile. When both readings are valid the national one wins and the
    /// reading is [`Reading::Ambiguous`], for the caller to count and log.
    pub fn read(raw: &str, default_region: Region) -> Result<(Self, Reading), PhoneError> {
        Self::read_with(numbering::numbering(), raw, default_region)
    }

    /// [`PhoneNumber::read`] with the given metadata rather than the
    /// process's own.
    pub fn read_with(
        numbering: &Numbering,
        raw: &str,
        default_region: Region,
    ) -> Result<(Self, Reading), PhoneError> {
        let cleaned: String = raw
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')' | '\t' | '\u{a0}'))
            .collect();
        if cleaned.is_empty() {
            return Err(PhoneError::Missing);
        }
        if cleaned.len() > MAX_RAW_LEN {
            return Err(PhoneError::TooLong);
        }
        let (plus, digits) = match cleaned.strip_prefix('+') {
            Some(rest) => (true, rest),
            None => (false, cleaned.as_str()),
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(PhoneError::BadCharacters);
        }
        if digits.len() > 15 {
            return Err(PhoneError::TooLong);
        }

        let intl = format!("+{digits}");
        // The international reading's calling code, when one fits.
        let code = CATALOGUE.split(digits);
        // Only a number without `+` is read in the default region; looking
        // its numbering up for a `+` number could build the whole metadata
        // for nothing (the dispatcher reads every job with `US`).
        let home = || numbering.for_code(CATALOGUE.code_of(default_region.id).unwrap_or(0));
        let region = Some(default_region.id);
        let strict = if plus {
            match code {
                // Out of this deployment's reach: named from the calling
                // code alone, for the allow-list to refuse, when its length
                // fits the code's numbering plan.
                Some((code, national)) if !numbering.covers(code) => {
                    if let Some(number) = out_of_reach(code, &intl, national) {
                        return Ok((number, Reading::E164));
                    }
                    // Otherwise the whole metadata decides, as before: a
                    // national prefix written after the code (`+7 8…`,
                    // `+241 0…`) or a short form the plan expands.
                    parse_checked(numbering.fell_back(), None, &intl, Check::Valid)
                }
                _ => parse_checked(&numbering.util, None, &intl, Check::Valid),
            }
            .map(|n| (n, Reading::E164))
        } else {
            let national = parse_checked(home(), region, digits, Check::Valid);
            let international = match code {
                // A valid national reading wins whatever the other one is,
                // and a code out of reach could never be sent to: the
                // whole metadata is built only when the national reading
                // fails and the international one decides. (So a number
                // valid both ways is `Ambiguous` only when both countries
                // are in reach.)
                Some((code, _)) if !numbering.covers(code) && national.is_some() => None,
                Some((code, _)) => {
                    parse_checked(numbering.for_code(code), None, &intl, Check::Valid)
                }
                None => None,
            };
            match (national, international) {
                (Some(n), Some(i)) if n.e164 != i.e164 => Some((n, Reading::Ambiguous)),
                (Some(n), _) => Some((n, Reading::National)),
                (None, Some(i)) => Some((i, Reading::International)),
                (None, None) => None,
            }
        };
        if let Some(found) = strict {
            return Ok(found);
        }
        // libphonenumber's ranges lag behind real allocations, and Okta's own
        // examples (`+15555551212`, the Preview tab's `9876543210`) are not in
        // them. A number of a possible length for its country is accepted and
        // marked unverified; the provider is the final judge of whether it
        // exists, and its refusal is a permanent failure Okta falls back on.
        // Without `+` only the national reading is tried here: a guess at a
        // foreign country code for an unverifiable number is the one mistake
        // that sends a code abroad.
        let possible = if plus {
            let util = code.map_or(&numbering.util, |(code, _)| numbering.for_code(code));
            parse_checked(util, None, &intl, Check::Possible).map(|n| (n, Reading::E164))
        } else {
            parse_checked(home(), region, digits, Check::Possible).map(|n| (n, Reading::National))
        };
        possible.ok_or(PhoneError::Invalid)
    }

    /// Whether the number is in a range the metadata knows to be assigned.
    /// False for numbers accepted only because their length is possible.
    pub fn is_verified(&self) -> bool {
        self.verified
    }

    /// The full number, `+` and digits. Only for the provider request and for
    /// keyed hashing.
    pub fn e164(&self) -> &str {
        &self.e164
    }

    /// The country calling code (`1` for NANP, `44` for the UK).
    pub fn calling_code(&self) -> u16 {
        self.calling_code
    }

    /// The ISO region the number belongs to, when the metadata can tell.
    pub fn region(&self) -> Option<&Region> {
        self.region.as_ref()
    }

    /// The number type from the metadata (mobile, fixed line, premium rate…).
    pub fn number_type(&self) -> NumberType {
        self.kind
    }

    /// The masked form: country code and last four digits, the rest starred.
    pub fn masked(&self) -> String {
        let cc = self.calling_code.to_string();
        let national = &self.e164[1 + cc.len()..];
        let keep = national.len().min(4);
        // Very short national numbers keep fewer digits so most stays hidden.
        let keep = if national.len() <= 6 {
            keep.min(2)
        } else {
            keep
        };
        let hidden = national.len() - keep;
        format!("+{cc}{}{}", "*".repeat(hidden), &national[hidden..])
    }
}

/// A number with `+` whose calling code this deployment does not reach,
/// read from the code alone when its length fits the code's plan:
/// unverified, of the code's country (`None` for a non-geographic code),
/// which no allow-list that left it out accepts. With the whole metadata the
/// answer was the same refusal; only the region named in the log differs
/// where the code is shared (the UK rather than Jersey).
fn out_of_reach(code: u16, intl: &str, national: &str) -> Option<PhoneNumber> {
    let plan = CATALOGUE.out_of_reach(code, national)?;
    Some(PhoneNumber {
        e164: intl.to_owned(),
        calling_code: code,
        region: plan.main.and_then(Region::from_lib),
        kind: NumberType::Unknown,
        verified: false,
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Check {
    /// In a range the metadata lists for some number type.
    Valid,
    /// Only the length fits the country's numbering plan.
    Possible,
}

fn parse_checked(
    util: &PhoneNumberUtil,
    region: Option<LibRegion>,
    text: &str,
    check: Check,
) -> Option<PhoneNumber> {
    if region.is_none()
        && check == Check::Valid
        && let Some(number) = valid_as_written(util, text)
    {
        return Some(number);
    }
    let number = util.parse(text, region).ok()?;
    // One type lookup says both what the number is and whether it is valid
    // (the library's validity is "its region's patterns give it a type"),
    // where asking for validity and then the type would find the region and
    // match the patterns twice.
    let kind = util.get_number_type(&number);
    let verified = kind != PhoneNumberType::Unknown;
    let region = match check {
        Check::Valid if verified => util.get_region_for_number(&number),
        Check::Valid => return None,
        Check::Possible => {
            // A full-length number only: a local-only length (a number
            // without its area code) cannot be dialled from abroad.
            if !matches!(
                util.is_possible_number_with_reason(&number),
                Ok(NumberLengthType::IsPossible)
            ) {
                return None;
            }
            util.get_region_for_number(&number)
                .or_else(|| util.get_region_for_country_code(number.country_code))
        }
    };
    let e164 = util.format(&number, PhoneNumberFormat::E164).into_owned();
    Some(PhoneNumber {
        calling_code: u16::try_from(number.country_code).ok()?,
        region: region.and_then(Region::from_lib),
        kind: NumberType::from_lib(kind),
        verified,
        e164,
    })
}

/// A `+` and digits (what [`PhoneNumber::read`] hands on) taken as the
/// calling code and the national number they spell, when that number is
/// valid as written. The library's `parse` is made for any text a person
/// types (letters, extensions, full-width digits, a national prefix after
/// the code), and its general patterns for that are most of the time a
/// number takes; this skips them for the common case and leaves everything
/// else, a national prefix written after the code included, to `parse`.
/// The golden file holds the two to the same answers.
fn valid_as_written(util: &PhoneNumberUtil, text: &str) -> Option<PhoneNumber> {
    let digits = text.strip_prefix('+')?;
    let (code, national) = CATALOGUE.split(digits)?;
    // The library's bounds on a national significant number.
    if !(2..=17).contains(&national.len()) {
        return None;
    }
    let mut number = rlibphonenumber::PhoneNumber {
        country_code: i32::from(code),
        national_number: national.parse().ok()?,
        ..Default::default()
    };
    // As the library records leading zeros (Italy's `06…`): all but the
    // last digit of an all-zero number.
    let zeros = national.bytes().take_while(|b| *b == b'0').count();
    let zeros = if zeros == national.len() {
        zeros - 1
    } else {
        zeros
    };
    if national.starts_with('0') {
        number.italian_leading_zero = Some(true);
        if zeros > 1 {
            number.number_of_leading_zeros = i32::try_from(zeros).ok();
        }
    }
    // The library's answers, from patterns compiled for speed (`types`),
    // or from the library where those do not answer.
    let (kind, region) = types::type_and_region(util, &number).unwrap_or_else(|| {
        let kind = util.get_number_type(&number);
        (kind, util.get_region_for_number(&number))
    });
    if kind == PhoneNumberType::Unknown {
        return None;
    }
    Some(PhoneNumber {
        e164: text.to_owned(),
        calling_code: code,
        region: region.and_then(Region::from_lib),
        kind: NumberType::from_lib(kind),
        verified: true,
    })
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl fmt::Debug for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PhoneNumber({})", self.masked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us() -> Region {
        "US".parse().unwrap()
    }

    #[test]
    fn e164_with_and_without_plus() {
        let a = PhoneNumber::parse("+1 (415) 555-2671", us()).unwrap();
        let b = PhoneNumber::parse("14155552671", us()).unwrap();
        assert_eq!(a.e164(), "+14155552671");
        assert_eq!(a, b);
        assert_eq!(a.calling_code(), 1);
        assert_eq!(a.region().map(|r| r.as_str()), Some("US"));
    }

    fn reaching(regions: &[&str]) -> Numbering {
        Numbering::for_reach(&Reach::Regions(
            regions.iter().map(|r| r.parse().unwrap()).collect(),
        ))
    }

    fn summary(read: Result<(PhoneNumber, Reading), PhoneError>) -> String {
        match read {
            Ok((n, how)) => format!(
                "{} {} {} {:?} {}",
                n.e164(),
                n.region().map_or("-", |r| r.as_str()),
                if n.is_verified() {
                    "valid"
                } else {
                    "unverified"
                },
                n.number_type(),
                how.as_str()
            ),
            Err(e) => format!("{e:?}"),
        }
    }

    #[test]
    fn a_number_out_of_reach_is_named_from_its_calling_code() {
        let us_only = reaching(&["US"]);
        let read = |raw| summary(PhoneNumber::read_with(&us_only, raw, us()));
        // Valid German and British mobiles: their country, unverified.
        assert_eq!(
            read("+4915112345678"),
            "+4915112345678 DE unverified Unknown e164"
        );
        assert_eq!(
            read("+447400123456"),
            "+447400123456 GB unverified Unknown e164"
        );
        // Non-geographic (+800): no country, which no list allows.
        assert_eq!(
            read("+80012345678"),
            "+80012345678 - unverified Unknown e164"
        );
        // Too short for any plan of +49: decided by the whole metadata,
        // which refuses it as before.
        assert_eq!(read("+4912"), "Invalid");
        // A national prefix after the code (Kazakhstan's 8) is not a length
        // +7 has: the whole metadata reads it, as before.
        assert_eq!(
            read("+780012345677"),
            summary(PhoneNumber::read_with(
                &reaching(&["RU"]),
                "+780012345677",
                us()
            ))
        );
        // +1 is in reach, so all of it is: Jamaica is read as Jamaica.
        assert_eq!(
            read("+18762345678"),
            summary(PhoneNumber::read("+18762345678", us()))
        );
        assert!(read("+18762345678").contains(" JM valid "));
    }

    #[test]
    fn numbers_with_plus_never_need_the_default_regions_metadata() {
        // The dispatcher reads every job with `US`; a deployment for Britain
        // and Ireland must not build the whole metadata for that.
        let gb_ie = reaching(&["GB", "IE"]);
        for raw in ["+447400123456", "+353851234567", "+353 1 234 5678"] {
            let (n, how) = PhoneNumber::read_with(&gb_ie, raw, us()).unwrap();
            assert_eq!(how, Reading::E164, "{raw}");
            assert!(n.is_verified(), "{raw}");
        }
        assert_eq!(gb_ie.fallbacks(), 0);
        // A number without `+` in an unreached home region does need it.
        PhoneNumber::read_with(&gb_ie, "4155552671", us()).unwrap();
        assert!(gb_ie.fallbacks() > 0);
    }

    #[test]
    fn numbers_without_plus_read_the_same_with_less_metadata() {
        let us_only = reaching(&["US"]);
        for raw in [
            "4155552671",
            "442071838750",
            "9876543210",
            "5555551212",
            "15555551212",
        ] {
            let whole = PhoneNumber::read(raw, us());
            let less = PhoneNumber::read_with(&us_only, raw, us());
            assert_eq!(summary(less), summary(whole), "{raw}");
        }
        // Valid in the US and in Singapore: with Singapore out of reach the
        // US reading is taken without looking abroad (it would win anyway).
        let (n, how) = PhoneNumber::read_with(&us_only, "6594821993", us()).unwrap();
        assert_eq!((n.e164(), how), ("+16594821993", Reading::National));
        // A home region out of reach is read with the whole metadata.
        let gb: Region = "GB".parse().unwrap();
        assert_eq!(
            summary(PhoneNumber::read_with(&us_only, "07400123456", gb)),
            summary(PhoneNumber::read("07400123456", gb))
        );
    }

    #[test]
    fn international_without_plus_only_when_national_is_invalid() {
        let (n, how) = PhoneNumber::read("442071838750", us()).unwrap();
        assert_eq!(n.e164(), "+442071838750");
        assert_eq!(n.region().map(|r| r.as_str()), Some("GB"));
        assert!(n.is_verified());
        assert_eq!(how, Reading::International);
        // Valid in the US and, read with a country code, in Singapore,
        // Norway and the Netherlands: the US reading wins, and says so.
        for (raw, want) in [
            ("6594821993", "+16594821993"),
            ("4797465075", "+14797465075"),
            ("3109090588", "+13109090588"),
        ] {
            let (n, how) = PhoneNumber::read(raw, us()).unwrap();
            assert_eq!((n.e164(), how), (want, Reading::Ambiguous), "{raw}");
        }
        // E.164 minus `+` of the default region is the same number both ways.
        let (n, how) = PhoneNumber::read("14155552671", us()).unwrap();
        assert_eq!((n.e164(), how), ("+14155552671", Reading::National));
    }

    #[test]
    fn national_number_uses_default_region() {
        let n = PhoneNumber::parse("415-555-2671", us()).unwrap();
        assert_eq!(n.e164(), "+14155552671");
        let de: Region = "de".parse().unwrap();
        let n = PhoneNumber::parse("030 901820", de).unwrap();
        assert_eq!(n.e164(), "+4930901820");
    }

    #[test]
    fn okta_preview_and_example_numbers_are_accepted_unverified() {
        let n = PhoneNumber::parse("9876543210", us()).unwrap();
        assert_eq!(n.e164(), "+19876543210");
        assert_eq!(n.region().map(|r| r.as_str()), Some("US"));
        assert!(!n.is_verified());
        let n = PhoneNumber::parse("+15555551212", us()).unwrap();
        assert_eq!(n.region().map(|r| r.as_str()), Some("US"));
        assert_eq!(n.number_type(), NumberType::Unknown);
    }

    #[test]
    fn masks_all_but_country_code_and_last_four() {
        let n = PhoneNumber::parse("+15555551212", us()).unwrap();
        assert_eq!(n.to_string(), "+1******1212");
        assert_eq!(format!("{n:?}"), "PhoneNumber(+1******1212)");
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(PhoneNumber::parse("", us()), Err(PhoneError::Missing));
        assert_eq!(PhoneNumber::parse("  - ", us()), Err(PhoneError::Missing));
        assert_eq!(
            PhoneNumber::parse("+1-800-CALL-NOW", us()),
            Err(PhoneError::BadCharacters)
        );
        assert_eq!(
            PhoneNumber::parse("++15555551212", us()),
            Err(PhoneError::BadCharacters)
        );
        assert_eq!(PhoneNumber::parse("+1234", us()), Err(PhoneError::Invalid));
        assert_eq!(
            PhoneNumber::parse("+1415555267", us()),
            Err(PhoneError::Invalid)
        );
        assert_eq!(PhoneNumber::parse("98765", us()), Err(PhoneError::Invalid));
        assert_eq!(
            PhoneNumber::parse("1".repeat(16).as_str(), us()),
            Err(PhoneError::TooLong)
        );
        assert_eq!(
            PhoneNumber::parse(&"1".repeat(40), us()),
            Err(PhoneError::TooLong)
        );
        assert_eq!(
            PhoneNumber::parse("+１５５５", us()),
            Err(PhoneError::BadCharacters)
        );
    }
}
