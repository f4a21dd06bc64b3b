//! The `aws`, `curl` and `sam` commands of the README and docs/, run as written:
//! `scripts/readme-commands.py` runs the `aws` ones against the local AWS
//! emulator with stand-ins for a deployed stack (and checks that the
//! clean-up leaves nothing the template retains), the quickstart and the
//! stand-in's `curl` lines against this test's `telehook`, the operations
//! on a stack (`telehook … --stack`) against a stack on the emulator, and
//! has the SAM CLI parse every `sam` line. Every `telehook` line is also
//! parsed by a unit test of the CLI.

use std::path::PathBuf;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_telehook");

#[test]
fn the_readme_commands_run_as_written() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = Command::new(root.join(".venv/bin/python"))
        .arg(root.join("scripts/readme-commands.py"))
        .args(["--telehook", BIN])
        .current_dir(&root)
        .output()
        .expect("run scripts/readme-commands.py with the project's .venv");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
