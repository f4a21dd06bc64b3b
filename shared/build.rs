//! Finds the phone-number metadata that rlibphonenumber embeds (its
//! `metadata.bin`, the compiled tables of Google's libphonenumber) and hands
//! its path to the crate as `TELEHOOK_PHONE_METADATA`.
//!
//! Why: the library builds every region's metadata from those tables, and
//! its public API takes a table set of our choosing
//! (`PhoneNumberUtil::new_for_metadata`) but does not export the embedded
//! bytes. Reading the very file the library was built with keeps both on
//! one metadata release, with no copy in this repository;
//! `domain::phone::numbering` decodes it and builds only the regions a
//! deployment can reach.

use std::env;
use std::path::PathBuf;
use std::process::Command;

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
}
