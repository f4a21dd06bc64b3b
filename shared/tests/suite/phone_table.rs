//! The phone-number rule against libphonenumber's own metadata: a table of
//! numbers from 20+ regions, each read with several regions as
//! `DEFAULT_REGION`, in national, international-without-plus and E.164 form.
//! `scripts/phone-table.py` builds the expectations with the `phonenumbers`
//! package (the same libphonenumber release as the Rust crate); a test below
//! checks the committed table is what that script writes.

use std::collections::BTreeSet;

use telehook::domain::{PhoneNumber, Reading, Region};

struct Row {
    region: String,
    input: String,
    expected: String,
    reading: String,
    form: String,
}

fn rows() -> Vec<Row> {
    crate::support::data_rows("phone-readings.csv", "default_region,", 5)
        .into_iter()
        .map(|f| {
            let [region, input, expected, reading, form] =
                <[String; 5]>::try_from(f).expect("five fields");
            Row {
                region,
                input,
                expected,
                reading,
                form,
            }
        })
        .collect()
}

#[test]
fn table_is_big_enough_to_mean_something() {
    let rows = rows();
    let numbers: BTreeSet<&str> = rows
        .iter()
        .filter(|r| r.form == "e164")
        .map(|r| r.input.as_str())
        .collect();
    let regions: BTreeSet<&str> = rows.iter().map(|r| r.region.as_str()).collect();
    assert!(numbers.len() >= 200, "{} numbers", numbers.len());
    assert!(regions.len() >= 20, "{} regions", regions.len());
    for form in ["national", "international-no-plus", "e164"] {
        assert!(rows.iter().any(|r| r.form == form), "{form}");
    }
    for reading in ["national", "international", "ambiguous"] {
        assert!(rows.iter().any(|r| r.reading == reading), "{reading}");
    }
}

#[test]
fn every_number_reads_as_libphonenumber_says() {
    let mut wrong = Vec::new();
    let rows = rows();
    for r in &rows {
        let region: Region = r.region.parse().expect("region");
        let got = match PhoneNumber::read(&r.input, region) {
            Ok((n, how)) => (n.e164().to_owned(), how.as_str().to_owned()),
            Err(e) => (format!("error: {e}"), String::new()),
        };
        let want = (r.expected.clone(), r.reading.clone());
        if got != want {
            wrong.push(format!(
                "{} {} ({}): got {got:?}, want {want:?}",
                r.region, r.input, r.form
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} rows differ:\n{}",
        wrong.len(),
        rows.len(),
        wrong.join("\n")
    );
}

#[test]
fn ambiguous_numbers_take_the_national_reading() {
    let us: Region = "US".parse().unwrap();
    for raw in ["6594821993", "4797465075", "3109090588"] {
        let (n, how) = PhoneNumber::read(raw, us).unwrap();
        assert_eq!(how, Reading::Ambiguous);
        assert_eq!(n.region().map(|r| r.as_str()), Some("US"), "{raw}");
    }
}

/// The committed table is what the generator writes today.
#[test]
fn table_matches_its_generator() {
    crate::support::assert_generated("scripts/phone-table.py", "phone-readings.csv");
}
