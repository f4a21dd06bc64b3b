//! `telehook`: the command-line front door. This file only parses the
//! command line and hands each subcommand to its module: local mode
//! (`serve`, `token`, `invoke`), `check`, the load test (`bench`), the
//! End User Messaging stand-in for emulator runs (`sms-stub`) and the
//! operations on a deployed stack (`replay`, `templates`).

/// `println!` for command output that may go into a pipe: a write error
/// returns from the calling function (`?`), and `main` treats a closed pipe
/// (`telehook templates list | head`) as the end of the output, not as a
/// failure and never as a panic.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)?
    }};
}

mod bench;
mod check;
mod guard;
mod invoke;
mod local;
mod ops;
mod report;
mod serve;
mod stub;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "telehook",
    version,
    about = "Okta OTPs by SMS and voice through your own AWS account"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the whole pipeline locally: ingress, dev OAuth issuer, queue, dispatcher and an outbox file for messages.
    Serve(serve::ServeArgs),
    /// Load-test `telehook serve`: N hooks at concurrency C, then reconcile answers, outbox and ledger.
    Bench(bench::BenchArgs),
    /// Print a bearer token from the local dev issuer (bad ones too, on purpose).
    Token(local::TokenArgs),
    /// Run one Lambda event through its handler with local adapters and print the JSON response.
    Invoke(invoke::InvokeArgs),
    /// Replay the dead-letter queue through the DlqReplay state machine, show queue depths, or move failed checks back.
    Replay {
        #[command(subcommand)]
        command: ops::ReplayCommand,
    },
    /// Load or show the templates table.
    Templates {
        #[command(subcommand)]
        command: ops::TemplatesCommand,
    },
    /// What became of the codes, by country, channel and prefix: sends, delivery and conversion rates, time to delivery, guard blocks (local mode's snapshots, or the ledger table with --aws; --html for a page).
    Report(report::ReportArgs),
    /// The learning guard's blocks: list them, lift one, pin one, or allow a range for good.
    Guard {
        #[command(subcommand)]
        command: guard::GuardCommand,
    },
    /// Stand in for AWS End User Messaging SMS and voice (which local AWS emulators lack): answers the SDK's sends and writes each message to an outbox file.
    SmsStub(stub::StubArgs),
    /// Validate an Okta hook (a hook body, or an API Gateway event from events/) and print the normalised request, with the code and number masked.
    Check(check::CheckArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    telehook::telemetry::init_text();
    match cli.command {
        Command::Check(args) => check::check(&args),
        Command::SmsStub(args) => report(block_on(stub::sms_stub(args))),
        Command::Report(args) => report(block_on(report::report(args))),
        Command::Guard { command } => report(block_on(guard::guard(command))),
        Command::Token(args) => report(local::token(&args)),
        Command::Serve(args) => report(block_on(serve::serve(args))),
        Command::Bench(args) => report(block_on(bench::bench(args))),
        Command::Invoke(args) => report(block_on(invoke::invoke(args))),
        Command::Replay { command } => report(block_on(ops::replay(command))),
        Command::Templates { command } => report(block_on(ops::templates(command))),
    }
}

/// Runs a subcommand's future on a fresh multi-threaded runtime.
fn block_on(work: impl Future<Output = Result<(), local::Error>>) -> Result<(), local::Error> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(work)
}

fn report(result: Result<(), local::Error>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if is_closed_pipe(e.as_ref()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The reader of our stdout went away (`| head`): the output simply ends.
fn is_closed_pipe(e: &(dyn std::error::Error + 'static)) -> bool {
    e.downcast_ref::<std::io::Error>()
        .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// `telehook <cmd> --help` describes every command and every argument.
    #[test]
    fn every_command_and_argument_is_described() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if id != "help" && id != "version" && arg.get_help().is_none() {
                    missing.push(format!("{path} {id}"));
                }
            }
            for sub in cmd.get_subcommands() {
                let name = format!("{path} {}", sub.get_name());
                if sub.get_about().is_none() {
                    missing.push(name.clone());
                }
                walk(sub, &name, missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "telehook", &mut missing);
        assert!(missing.is_empty(), "no description: {missing:#?}");
    }

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("telehook").chain(args.iter().copied()))
    }

    /// Splits a command line as a shell would for these simple cases:
    /// whitespace, and single or double quotes.
    fn words(line: &str) -> Vec<String> {
        let (mut out, mut cur, mut quote, mut any) = (Vec::new(), String::new(), None, false);
        for c in line.chars() {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), c) => cur.push(c),
                (None, '\'' | '"') => {
                    quote = Some(c);
                    any = true;
                }
                (None, c) if c.is_whitespace() => {
                    if any || !cur.is_empty() {
                        out.push(std::mem::take(&mut cur));
                    }
                    any = false;
                }
                (None, c) => cur.push(c),
            }
        }
        if any || !cur.is_empty() {
            out.push(cur);
        }
        out
    }

    /// The pages that show commands: the README and every guide in docs/.
    const PAGES: [(&str, &str); 9] = [
        ("README.md", include_str!("../../README.md")),
        ("local-mode.md", include_str!("../../docs/local-mode.md")),
        (
            "how-it-works.md",
            include_str!("../../docs/how-it-works.md"),
        ),
        (
            "configuration.md",
            include_str!("../../docs/configuration.md"),
        ),
        ("first-code.md", include_str!("../../docs/first-code.md")),
        ("okta-setup.md", include_str!("../../docs/okta-setup.md")),
        ("operations.md", include_str!("../../docs/operations.md")),
        (
            "cost-and-scale.md",
            include_str!("../../docs/cost-and-scale.md"),
        ),
        ("deploying.md", include_str!("../../docs/deploying.md")),
    ];

    #[test]
    fn every_guide_is_read_for_commands() {
        let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs");
        let mut on_disk: Vec<String> = std::fs::read_dir(docs)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".md"))
            .collect();
        on_disk.sort();
        let mut read: Vec<String> = PAGES[1..].iter().map(|(n, _)| (*n).to_owned()).collect();
        read.sort();
        assert_eq!(on_disk, read);
        // The README is a map; what a task needs is in its guide.
        let readme = PAGES[0].1.lines().count();
        assert!(readme <= 250, "README.md has {readme} lines");
    }

    /// Every shell line of the pages' `sh` blocks (whole command lines) and
    /// every inline code span of their prose and tables (mentions, which
    /// may leave required arguments out), with whether it is whole.
    fn documented_commands(pages: &str) -> Vec<(String, bool)> {
        let mut commands: Vec<(String, bool)> = Vec::new();
        let mut in_shell = false;
        let mut in_block = false;
        for line in pages.lines() {
            if line.starts_with("```") {
                in_block = !in_block;
                in_shell = in_block && line.starts_with("```sh");
                continue;
            }
            if in_shell {
                commands.push((line.to_owned(), true));
            } else if !in_block {
                commands.extend(
                    line.split('`')
                        .skip(1)
                        .step_by(2)
                        .map(|c| (c.to_owned(), false)),
                );
            }
        }
        commands
    }

    /// Placeholders such as `<stack-name>` filled with `demo`.
    fn fill_placeholders(command: &str) -> String {
        let mut filled = String::new();
        let mut in_placeholder = false;
        for c in command.chars() {
            match c {
                '<' => in_placeholder = true,
                '>' if in_placeholder => {
                    in_placeholder = false;
                    filled.push_str("demo");
                }
                _ if in_placeholder => {}
                c => filled.push(c),
            }
        }
        filled
    }

    /// Every `telehook` command the README and the guides show, in their
    /// shell blocks and as inline code (not the synopses with `[…]` or
    /// `|`), parses as written, with placeholders such as `<stack-name>`
    /// filled in.
    #[test]
    fn every_command_in_the_readme_parses() {
        let readme = PAGES.map(|(_, text)| text).join("\n");
        let commands = documented_commands(&readme);
        let mut checked = 0;
        for (raw, whole) in commands {
            // The command itself: no comment, pipe, chain or background.
            let line = [" # ", " | ", " && ", " ; ", " > "]
                .iter()
                .fold(raw.as_str(), |l, sep| {
                    l.split(sep).next().unwrap_or_default()
                })
                .trim()
                .trim_end_matches('&')
                .trim();
            let rest = if let Some(r) = line.split_once("-p telehook-cli -- ") {
                r.1
            } else if let Some(r) = line.strip_prefix("telehook ") {
                r
            } else {
                continue;
            };
            if rest.contains('[') || rest.contains('|') || rest.contains('…') {
                continue;
            }
            let filled = fill_placeholders(rest);
            let filled = filled.trim_end_matches(')').trim_end_matches('\\').trim();
            // The synopses' metavariables, as values that parse.
            let args: Vec<String> = words(filled)
                .into_iter()
                .map(|w| match w.as_str() {
                    "SPEC" => "provider.throttle=0.1".to_owned(),
                    "N" | "C" | "L" | "P" | "SECS" => "10".to_owned(),
                    "FILE" => "events/ingress-sms.json".to_owned(),
                    _ => w,
                })
                .collect();
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            match parse(&refs) {
                Ok(_) => {}
                Err(e) if !whole && e.kind() == clap::error::ErrorKind::MissingRequiredArgument => {
                }
                Err(e) => panic!("a documented command does not parse: telehook {filled}\n{e}"),
            }
            checked += 1;
        }
        assert!(checked >= 15, "{checked} commands found");
    }

    #[test]
    fn aws_is_a_bare_flag_that_swallows_nothing() {
        let Command::Serve(serve) = parse(&["serve", "--aws"]).unwrap().command else {
            panic!("serve")
        };
        assert!(serve.local.at.aws.0);
        let Command::Invoke(invoke) = parse(&["invoke", "--aws", "ingress", "events/x.json"])
            .unwrap()
            .command
        else {
            panic!("invoke")
        };
        assert!(invoke.local.at.aws.0);
        assert_eq!(invoke.event, std::path::PathBuf::from("events/x.json"));
        let Command::Serve(serve) = parse(&["serve", "--aws=local"]).unwrap().command else {
            panic!("serve")
        };
        assert!(!serve.local.at.aws.0);
        let Command::Serve(serve) = parse(&["serve"]).unwrap().command else {
            panic!("serve")
        };
        assert!(!serve.local.at.aws.0 || std::env::var_os("TELEHOOK_BACKEND").is_some());
    }

    #[test]
    fn every_subcommand_parses_its_defaults() {
        for args in [
            &["serve"][..],
            &["bench"],
            &["token"],
            &["invoke", "dispatcher", "e.json"],
            &["check", "e.json"],
            &["replay", "status"],
            &["templates", "list"],
            &["sms-stub"],
            &["report"],
        ] {
            parse(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
        }
    }
}
