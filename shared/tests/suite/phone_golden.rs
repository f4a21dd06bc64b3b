//! Phone parsing against Google's libphonenumber, number by number: the
//! golden file holds more than 10,000 numbers from every region the
//! metadata knows (every number type with an example, valid and invalid
//! neighbours, one digit short and long), each in E.164, without the `+`
//! and in national form. `scripts/phone-golden.py` writes it with the
//! `phonenumbers` package (the metadata release `rlibphonenumber` embeds).
//! Our parser must agree on acceptance, E.164 form, region, validity and
//! number type for at least 99.9 % of the rows; every disagreement is
//! listed. Twice: with the whole metadata (what `ALLOWED_COUNTRIES=*`
//! builds), and with the metadata a deployment allowing US and CA builds,
//! where the answer after the allow-list must be the same for every row.

use std::collections::BTreeSet;

use telehook::domain::phone::{Numbering, Reach};
use telehook::domain::{NumberType, PhoneError, PhoneNumber, Reading, Region};

/// One row: the input and region, then the expected columns joined.
struct Row {
    region: String,
    input: String,
    form: String,
    expected: String,
}

fn rows() -> Vec<Row> {
    crate::support::data_rows("phone-golden.csv", "default_region,", 8)
        .into_iter()
        .map(|f| Row {
            region: f[0].clone(),
            input: f[1].clone(),
            form: f[2].clone(),
            expected: f[3..].join(","),
        })
        .collect()
}

fn type_name(t: NumberType) -> &'static str {
    match t {
        NumberType::FixedLine => "FIXED_LINE",
        NumberType::Mobile => "MOBILE",
        NumberType::FixedLineOrMobile => "FIXED_LINE_OR_MOBILE",
        NumberType::TollFree => "TOLL_FREE",
        NumberType::PremiumRate => "PREMIUM_RATE",
        NumberType::SharedCost => "SHARED_COST",
        NumberType::Voip => "VOIP",
        NumberType::PersonalNumber => "PERSONAL_NUMBER",
        NumberType::Pager => "PAGER",
        NumberType::Uan => "UAN",
        NumberType::Voicemail => "VOICEMAIL",
        NumberType::Unknown => "UNKNOWN",
    }
}

/// Our reading in the golden file's columns.
fn ours(input: &str, region: Region) -> String {
    columns(PhoneNumber::read(input, region))
}

fn columns(read: Result<(PhoneNumber, Reading), PhoneError>) -> String {
    match read {
        Err(_) => "refused,,,,".to_owned(),
        Ok((n, _)) => format!(
            "accepted,{},{},{},{}",
            n.e164(),
            n.region().map_or("", |r| r.as_str()),
            if n.is_verified() { "valid" } else { "possible" },
            type_name(n.number_type())
        ),
    }
}

#[test]
fn the_golden_file_covers_every_region_form_and_type() {
    let rows = rows();
    let numbers: BTreeSet<&str> = rows
        .iter()
        .filter(|r| r.form == "e164")
        .map(|r| r.input.as_str())
        .collect();
    let regions: BTreeSet<&str> = rows.iter().map(|r| r.region.as_str()).collect();
    assert!(numbers.len() >= 10_000, "{} numbers", numbers.len());
    assert!(regions.len() >= 240, "{} regions", regions.len());
    for form in ["e164", "international-no-plus", "national"] {
        assert!(rows.iter().any(|r| r.form == form), "{form}");
    }
    for column in [
        "refused,",
        ",possible,",
        ",valid,MOBILE",
        ",valid,FIXED_LINE",
        ",valid,TOLL_FREE",
        ",valid,PREMIUM_RATE",
        ",valid,VOIP",
    ] {
        assert!(rows.iter().any(|r| r.expected.contains(column)), "{column}");
    }
}

#[test]
fn parsing_agrees_with_libphonenumber_on_the_golden_file() {
    let rows = rows();
    let mut disagreements = Vec::new();
    for r in &rows {
        let region: Region = r.region.parse().expect("region");
        let got = ours(&r.input, region);
        if got != r.expected {
            disagreements.push(format!(
                "{} {} ({}): ours {got}, libphonenumber {}",
                r.region, r.input, r.form, r.expected
            ));
        }
    }
    // Listed even when within the bound, so a run with --nocapture shows
    // exactly where the two differ.
    for d in &disagreements {
        println!("{d}");
    }
    let allowed = rows.len() / 1000;
    assert!(
        disagreements.len() <= allowed,
        "{} of {} rows differ (at most {allowed} may):\n{}",
        disagreements.len(),
        rows.len(),
        disagreements.join("\n")
    );
}

/// What a deployment allowing only `allowed` answers for a reading in the
/// golden file's columns: the columns for a number of an allowed country,
/// otherwise which refusal (the allow-list's, or an invalid number's).
fn answer(columns: &str, allowed: &[&str]) -> String {
    let fields: Vec<&str> = columns.split(',').collect();
    match fields[..] {
        ["accepted", _, region, ..] if allowed.contains(&region) => columns.to_owned(),
        ["accepted", ..] => "refused by the allow-list".to_owned(),
        _ => "refused as invalid".to_owned(),
    }
}

#[test]
fn a_deployment_that_reaches_us_and_ca_answers_every_row_as_before() {
    let allowed = ["US", "CA"];
    let reach = Reach::Regions(allowed.iter().map(|r| r.parse().unwrap()).collect());
    let numbering = Numbering::for_reach(&reach);
    assert!(numbering.covers(1) && !numbering.covers(44));
    let rows = rows();
    let mut disagreements = Vec::new();
    let mut exact = BTreeSet::new();
    for r in &rows {
        let region: Region = r.region.parse().expect("region");
        let got = columns(PhoneNumber::read_with(&numbering, &r.input, region));
        let expected = answer(&r.expected, &allowed);
        if expected == r.expected {
            exact.insert(r.expected.split(',').nth(2).unwrap_or_default().to_owned());
        }
        if answer(&got, &allowed) != expected {
            disagreements.push(format!(
                "{} {} ({}): ours {got}, libphonenumber {}",
                r.region, r.input, r.form, r.expected
            ));
        }
    }
    // Rows of the allowed countries themselves are compared column by column.
    assert_eq!(exact, BTreeSet::from(allowed.map(String::from)));
    assert!(
        disagreements.is_empty(),
        "{} of {} rows answered differently:\n{}",
        disagreements.len(),
        rows.len(),
        disagreements.join("\n")
    );
}

/// The committed file is what the generator writes today.
#[test]
fn golden_file_matches_its_generator() {
    crate::support::assert_generated("scripts/phone-golden.py", "phone-golden.csv");
}
