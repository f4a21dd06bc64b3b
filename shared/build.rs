//! Finds the phone-number metadata that rlibphonenumber embeds (its
//! `metadata.bin`, the compiled tables of Google's libphonenumber), hands
//! its path to the crate as `TELEHOOK_PHONE_METADATA`, and writes the
//! calling-code table the crate reads at run time (`phone_tables.rs` in
//! `OUT_DIR`): every region's calling code, every code's main region and
//! possible lengths, and where each region's entry lies in the file, so a
//! process decodes nothing at start but the entries it reaches.
//!
//! Why: the library builds every region's metadata from those tables, and
//! its public API takes a table set of our choosing
//! (`PhoneNumberUtil::new_for_metadata`) but does not export the embedded
//! bytes. Reading the very file the library was built with keeps both on
//! one metadata release, with no copy in this repository;
//! `domain::phone::numbering` decodes it and builds only the regions a
//! deployment can reach.

use std::collections::BTreeMap;
use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

use prost::Message;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    println!(
        "cargo:rerun-if-changed={}",
        manifest_dir.join("../Cargo.lock").display()
    );
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--offline",
            "--manifest-path",
        ])
        .arg(manifest_dir.join("Cargo.toml"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let metadata: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("cargo metadata prints JSON");
    let manifest = metadata["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == "rlibphonenumber")
        .and_then(|p| p["manifest_path"].as_str())
        .expect("rlibphonenumber is a dependency");
    let tables = PathBuf::from(manifest)
        .parent()
        .expect("a manifest has a folder")
        .join("src/generated/metadata/metadata.bin");
    assert!(
        tables.is_file(),
        "rlibphonenumber's embedded metadata moved (no {}): update build.rs",
        tables.display()
    );
    println!("cargo:rerun-if-changed={}", tables.display());
    println!(
        "cargo:rustc-env=TELEHOOK_PHONE_METADATA={}",
        tables.display()
    );
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo")).join("phone_tables.rs");
    std::fs::write(&out, calling_codes(&tables)).expect("OUT_DIR is writable");
}

/// The few fields of a region's entry the table needs (field numbers of
/// libphonenumber's `PhoneMetadata`); prost skips the rest.
#[derive(Clone, PartialEq, prost::Message)]
struct Plan {
    #[prost(message, optional, tag = "1")]
    general_desc: Option<Lengths>,
    #[prost(string, required, tag = "9")]
    id: String,
    #[prost(int32, optional, tag = "10")]
    country_code: Option<i32>,
    #[prost(bool, optional, tag = "22")]
    main_country_for_code: Option<bool>,
}

/// `PhoneNumberDesc.possible_length`.
#[derive(Clone, PartialEq, prost::Message)]
struct Lengths {
    #[prost(int32, repeated, packed = "false", tag = "9")]
    possible_length: Vec<i32>,
}

/// The Rust source of the tables (see the module docs). The file is a
/// `PhoneMetadataCollection`: field 1, repeated, one length-delimited
/// `PhoneMetadata` per region.
fn calling_codes(path: &Path) -> String {
    let bytes = std::fs::read(path).expect("the metadata file reads");
    let mut rest = &bytes[..];
    // (calling code, start, end) per entry; region → code; code → (main, lengths).
    let mut entries = Vec::new();
    let mut regions = BTreeMap::new();
    let mut codes: BTreeMap<u16, (Option<String>, u32)> = BTreeMap::new();
    while !rest.is_empty() {
        let (tag, wire) = prost::encoding::decode_key(&mut rest).expect("a field key");
        assert!(
            tag == 1 && wire == prost::encoding::WireType::LengthDelimited,
            "the metadata file is not a PhoneMetadataCollection"
        );
        let len = usize::try_from(prost::encoding::decode_varint(&mut rest).expect("a length"))
            .expect("an entry fits in memory");
        let start = bytes.len() - rest.len();
        let plan = Plan::decode(&rest[..len]).expect("a region's entry decodes");
        rest = &rest[len..];
        let code = plan.country_code.and_then(|c| u16::try_from(c).ok());
        entries.push((code, start, start + len));
        let Some(code) = code else { continue };
        // Two capital letters; `001`, the non-geographic entity, names no region.
        let region = (plan.id.len() == 2 && plan.id.bytes().all(|b| b.is_ascii_uppercase()))
            .then_some(plan.id);
        if let Some(region) = &region {
            regions.insert(region.clone(), code);
        }
        let lengths = plan
            .general_desc
            .iter()
            .flat_map(|d| &d.possible_length)
            .filter_map(|&n| u32::try_from(n).ok().filter(|n| *n < 32))
            .fold(0u32, |bits, n| bits | (1 << n));
        let entry = codes.entry(code).or_insert((None, 0));
        entry.1 |= lengths;
        // The library names the first region of a code, or the one marked main.
        if region.is_some() && (entry.0.is_none() || plan.main_country_for_code == Some(true)) {
            entry.0 = region;
        }
    }
    let mut src = String::from("// Written by build.rs from rlibphonenumber's metadata file.\n\n");
    src += "/// Every region with a numbering plan and its calling code, by region.\n";
    src += "pub(in crate::domain::phone) static REGION_CODES: &[(LibRegion, u16)] = &[\n";
    for (region, code) in &regions {
        src += &format!("    (LibRegion::{region}, {code}),\n");
    }
    src += "];\n\n/// Every calling code and what it stands for, by code.\n";
    src += "pub(super) static CODES: &[(u16, CallingCode)] = &[\n";
    for (code, (main, lengths)) in &codes {
        let main = main
            .as_ref()
            .map_or("None".to_owned(), |r| format!("Some(LibRegion::{r})"));
        src += &format!("    ({code}, CallingCode {{ main: {main}, lengths: {lengths:#x} }}),\n");
    }
    src += "];\n\n/// Each region's entry: its calling code and its bytes in the file, in the file's order.\n";
    src += "pub(in crate::domain::phone) static ENTRIES: &[(Option<u16>, usize, usize)] = &[\n";
    for (code, start, end) in &entries {
        let code = code.map_or("None".to_owned(), |c| format!("Some({c})"));
        src += &format!("    ({code}, {start}, {end}),\n");
    }
    src += "];\n";
    src
}
