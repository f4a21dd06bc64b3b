//! The phone-number rule against libphonenumber's own metadata: a table of
//! numbers from 20+ regions, each read with several regions as
//! `DEFAULT_REGION`, in national, international-without-plus and E.164 form.
//! `scripts/phone-table.py` builds the expectations with the `phonenumbers`
//! package (the same libphonenumber release as the Rust crate); a test below
//! checks the committed table is what that script writes.

use std::collections::BTreeSet;
use std::path::PathBuf;

use telehook::domain::{PhoneNumber, Reading, Region};

fn table_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/phone-readings.csv")
}

struct Row {
    region: String,
    input: String,
    expected: String,
    reading: String,
    form: String,
}

fn rows() -> Vec<Row> {
    let text = std::fs::read_to_string(table_path()).expect("phone table");
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with("default_region,"))
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            assert_eq!(f.len(), 5, "bad row {l}");
            Row {
                region: f[0].into(),
                input: f[1].into(),
                expected: f[2].into(),
                reading: f[3].into(),
                form: f[4].into(),
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

/// The committed table is what the generator writes today. Needs the
/// project's `.venv` (the test command installs `phonenumbers` there).
#[test]
fn table_matches_its_generator() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let python = root.join(".venv/bin/python");
    let out = std::process::Command::new(&python)
        .current_dir(&root)
        .args(["scripts/phone-table.py", "--check"])
        .arg(table_path())
        .output()
        .expect("run scripts/phone-table.py with the project's .venv");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
