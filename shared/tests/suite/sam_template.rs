//! Promises the SAM template keeps, checked on its text (CloudFormation's
//! `!Ref`-style tags keep plain YAML parsers out; cfn-lint and
//! `sam validate --lint` check the structure in the test command).

// Test helpers may unwrap: a panic is a test failure with a location.
#![allow(clippy::unwrap_used)]

fn template() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml")).unwrap()
}

#[test]
fn nothing_is_cached() {
    let t = template();
    assert!(t.contains("CacheClusterEnabled: false"));
    assert!(t.contains("CachingEnabled: false"));
    for bad in [
        "CacheClusterEnabled: true",
        "CachingEnabled: true",
        "CacheTtlInSeconds",
        "CacheKeyParameters",
    ] {
        assert!(!t.contains(bad), "{bad}");
    }
}

#[test]
fn no_iam_statement_grants_every_resource() {
    let t = template();
    let lines: Vec<&str> = t.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let l = line.trim();
        if let Some(rest) = l.strip_prefix("Resource:") {
            let r = rest.trim().trim_matches(['"', '\'']);
            if r == "*" {
                // A key policy's statements name their key as "*" (KMS
                // takes nothing else); the principals are what they scope.
                let owner = lines[..i]
                    .iter()
                    .rposition(|l| l.starts_with("  ") && !l.starts_with("   ") && l.ends_with(':'))
                    .unwrap();
                if lines[owner + 1].trim() == "Type: AWS::KMS::Key" {
                    continue;
                }
                // Only actions that take no resource-level permissions:
                // X-Ray's writes, and reading AWS's own Notify templates.
                // The statement's action line is just above.
                let action = lines[..i]
                    .iter()
                    .rev()
                    .find_map(|a| a.trim().strip_prefix("Action:"))
                    .unwrap_or_default()
                    .trim();
                assert!(
                    [
                        "[xray:PutTraceSegments, xray:PutTelemetryRecords]",
                        "[sms-voice:DescribeNotifyTemplates]"
                    ]
                    .contains(&action),
                    "line {}: {line}",
                    i + 1
                );
            }
        }
    }
    // Managed policies with broad resources are allowed only where commented.
    let managed: Vec<&str> = t.lines().filter(|l| l.contains(":policy/")).collect();
    assert_eq!(managed.len(), 1, "{managed:?}");
    assert!(t.contains("AmazonAPIGatewayPushToCloudWatchLogs"));
    assert!(!t.contains("AWSLambdaBasicExecutionRole"));
}

#[test]
fn execution_logs_and_data_traces_stay_off() {
    let t = template();
    assert!(t.contains(r#"LoggingLevel: "OFF""#));
    assert!(t.contains("DataTraceEnabled: false"));
    let access = t
        .lines()
        .find(|l| l.contains("Format: '{\"requestId\""))
        .unwrap()
        .to_ascii_lowercase();
    assert!(!access.contains("authorization") && !access.contains("body"));
    assert!(
        t.contains("Name: authorization"),
        "WAF logs redact the Authorization header"
    );
}

#[test]
fn queue_timing_fits_the_flows() {
    let t = template();
    // The delay outlasts the largest fast-path budget (2800 ms).
    assert!(t.contains("DelaySeconds: 3"));
    assert!(t.contains("MaxValue: 2800"));
    // Visibility is at least six times the dispatcher's 30 s timeout.
    assert!(t.contains("VisibilityTimeout: 180"));
    assert!(t.contains("maxReceiveCount: 5"));
    assert!(t.contains("FunctionResponseTypes: [ReportBatchItemFailures]"));
}

#[test]
fn dashboard_and_alarms_use_the_emitted_metric_names() {
    let t = template();
    for name in telehook::telemetry::metrics::METRIC_NAMES {
        assert!(
            t.contains(&format!("\"{name}\"")) || t.contains(&format!("MetricName: {name}")),
            "{name}"
        );
    }
    assert!(t.contains("Namespace: telehook") && t.contains("[\"telehook\", \"HookAnswers\""));
    // Every telehook metric the template names is one the code writes.
    for line in t.lines().filter(|l| l.contains("MetricName:")) {
        let name = line.split("MetricName:").nth(1).unwrap().trim();
        // WAF's VisibilityConfig names (lowercase, or a !Sub) are not metrics we read.
        if !name.starts_with(|c: char| c.is_ascii_uppercase()) {
            continue;
        }
        let aws = [
            "ApproximateNumberOfMessagesVisible",
            "Errors",
            "Duration",
            "TextMessageMonthlySpend",
            "VoiceMessageMonthlySpend",
        ];
        assert!(
            telehook::telemetry::metrics::METRIC_NAMES.contains(&name) || aws.contains(&name),
            "{name}"
        );
    }
}

/// The top-level block of `name` (its line and the indented lines under it).
fn block<'t>(t: &'t str, name: &str) -> Vec<&'t str> {
    let head = format!("  {name}:");
    let mut lines = t.lines().skip_while(|l| !l.starts_with(&head));
    let first = lines
        .next()
        .unwrap_or_else(|| panic!("{name} is not in the template"));
    let mut out = vec![first];
    out.extend(lines.take_while(|l| l.is_empty() || l.starts_with("   ")));
    while out.last().is_some_and(|l| l.is_empty()) {
        out.pop();
    }
    out
}

/// The template repeats a few blocks per index (one alarm per country, one
/// condition and one country rule per protect slot), written out rather
/// than with `Fn::ForEach`: a template with `AWS::LanguageExtensions` is not
/// what the SAM translator alone reads, nor what `sam validate` and `sam
/// build` expand unless asked. The copies must stay one text with the
/// index substituted, so a fix to one cannot miss the others.
#[test]
fn repeated_blocks_differ_only_by_their_index() {
    let t = template();
    let same = |what: &str, text: &dyn Fn(usize) -> String, n: usize| {
        let first = text(0);
        for i in 1..n {
            let ith = text(i);
            let expect = first
                .replace("[0, !Split [\",\"", &format!("[{i}, !Split [\",\""))
                .replace("Country0", &format!("Country{i}"))
                .replace("Rule0", &format!("Rule{i}"));
            assert_eq!(ith, expect, "{what} {i} is not {what} 0 with its index");
        }
    };
    same(
        "the delivery-rate alarm",
        &|i| block(&t, &format!("SmsDeliveryRateAlarmCountry{i}")).join("\n"),
        5,
    );
    let lines: Vec<&str> = t.lines().collect();
    let line_of = |prefix: String| -> String {
        lines
            .iter()
            .find(|l| l.trim_start().starts_with(&prefix))
            .unwrap_or_else(|| panic!("no line starts with {prefix}"))
            .to_string()
    };
    same(
        "HasRateCountry",
        &|i| line_of(format!("HasRateCountry{i}:")),
        5,
    );
    same(
        "HasProtectRule",
        &|i| line_of(format!("HasProtectRule{i}:")),
        10,
    );
    let rules = block(&t, "ProtectConfiguration").join("\n");
    let rule = |i: usize| -> String {
        let start = rules
            .find(&format!("- HasProtectRule{i}\n"))
            .unwrap_or_else(|| panic!("no country rule {i}"));
        let text = &rules[start..];
        let end = text.find("- !Ref AWS::NoValue").unwrap();
        text[..end].to_owned()
    };
    same("the protect country rule", &|i| rule(i), 10);
}
