//! What the command says when something is wrong: one line that names
//! what to set or what could not be reached, the port and its flag, the
//! path it could not write; and the small conveniences a person expects
//! (`check -` reads standard input, `sms-stub` takes the state directory).

use std::io::Write;
use std::process::{Command, Output, Stdio};

use crate::local_mode::{events_dir, temp_state_dir};

const BIN: &str = env!("CARGO_BIN_EXE_telehook");

/// The command with no AWS settings at all: no region, no credentials,
/// no profile files, and no instance metadata to wait for.
fn bare(args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args);
    for var in [
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_PROFILE",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_ENDPOINT_URL",
        "TELEHOOK_BACKEND",
        "RUST_LOG",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("AWS_CONFIG_FILE", "/nonexistent/telehook-test-config")
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/telehook-test-credentials",
        )
        .env("AWS_EC2_METADATA_DISABLED", "true");
    cmd
}

fn failed(out: &Output) -> String {
    assert!(!out.status.success(), "it succeeded");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn aws_commands_without_a_region_or_credentials_say_what_to_set() {
    for args in [
        &["report", "--aws", "--table", "t"][..],
        &["guard", "list", "--aws=aws", "--table", "t"],
        &["templates", "list", "--table", "t"],
        &["replay", "status", "--queue-url", "q", "--dlq-url", "d"],
    ] {
        let err = failed(&bare(args).output().unwrap());
        assert!(
            err.contains("no AWS region: set AWS_REGION"),
            "{args:?}: {err}"
        );
        assert!(err.lines().count() <= 2, "{args:?}: {err}");
        for noise in ["IMDS", "HeaderValue", "DispatchFailure"] {
            assert!(!err.contains(noise), "{args:?}: {err}");
        }
    }
    let err = failed(
        &bare(&["templates", "list", "--table", "t"])
            .env("AWS_REGION", "eu-west-1")
            .output()
            .unwrap(),
    );
    assert!(
        err.contains("no AWS credentials: set AWS_ACCESS_KEY_ID"),
        "{err}"
    );
    assert!(err.len() < 600, "{err}");
}

/// An endpoint nobody answers on is named as such, with the cause.
#[test]
fn an_unreachable_endpoint_is_named() {
    let err = failed(
        &bare(&["templates", "list", "--table", "t"])
            .env("AWS_REGION", "eu-west-1")
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
            .output()
            .unwrap(),
    );
    assert!(err.contains("could not reach the service"), "{err}");
    assert!(err.to_lowercase().contains("connect"), "{err}");
}

/// `TELEHOOK_BACKEND=aws` counts for `report` and `guard` as for `serve`;
/// `--aws=local` overrides it, and the command names what it reads.
#[test]
fn report_and_guard_take_the_backend_the_way_serve_does() {
    let err = failed(
        &bare(&["report"])
            .env("TELEHOOK_BACKEND", "aws")
            .output()
            .unwrap(),
    );
    assert!(
        err.contains("reading AWS") && err.contains("AWS_REGION"),
        "{err}"
    );
    let dir = temp_state_dir("backend");
    let out = bare(&["guard", "pin", "ID", "--aws=local", "--state-dir"])
        .arg(&dir)
        .env("TELEHOOK_BACKEND", "aws")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("ledger.sqlite"), "{err}");
    let out = bare(&["report", "--state-dir"]).arg(&dir).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("ID         PINNED"), "{text}");
    // A state directory serve never used is named, not silently empty.
    let err = failed(
        &bare(&["report", "--state-dir", "/nonexistent/telehook"])
            .output()
            .unwrap(),
    );
    assert!(
        err.contains("no local ledger at /nonexistent/telehook"),
        "{err}"
    );
    // A page to a folder that does not exist names the path.
    let out = bare(&[
        "report",
        "--html",
        "/nonexistent/dir/report.html",
        "--state-dir",
    ])
    .arg(&dir)
    .output()
    .unwrap();
    assert!(failed(&out).contains("cannot write /nonexistent/dir/report.html"));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_port_in_use_names_the_port_and_the_flag() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let dir = temp_state_dir("port");
    for args in [
        &["serve", "--port", &port][..],
        &["sms-stub", "--port", &port],
    ] {
        let err = failed(&bare(args).arg("--state-dir").arg(&dir).output().unwrap());
        assert!(
            err.contains(&format!("port {port} is already in use")) && err.contains("--port"),
            "{args:?}: {err}"
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn check_reads_standard_input_given_a_dash() {
    let body = std::fs::read(events_dir().join("ingress-sms.json")).unwrap();
    let mut child = bare(&["check", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&body).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["channel"], "sms");
}

/// `sms-stub` writes its outbox under the state directory, as every other
/// command keeps its files there.
#[test]
fn the_stub_keeps_its_outbox_in_the_state_directory() {
    let dir = temp_state_dir("stub");
    let mut child = bare(&["sms-stub", "--port", "0"])
        .env("TELEHOOK_STATE_DIR", &dir)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut first,
    )
    .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(first.starts_with("sms-stub listening on"), "{first}");
    assert!(dir.join("sms-stub-outbox.jsonl").exists());
    let _ = std::fs::remove_dir_all(dir);
}
