//! The template as CloudFormation reads it after the SAM transform, checked
//! offline: `scripts/sam-translate.py` runs the SAM translator from the
//! project's `.venv` (the test command installs it). Each check is a defect
//! a first deploy, or the first incident, would otherwise hit.

// Test helpers may unwrap: a panic is a test failure with a location.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::sync::OnceLock;

use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn python() -> PathBuf {
    root().join(".venv/bin/python")
}

/// The translated template, computed once per test binary.
fn translated() -> &'static Value {
    static OUT: OnceLock<Value> = OnceLock::new();
    OUT.get_or_init(|| {
        let out = std::process::Command::new(python())
            .current_dir(root())
            .args(["scripts/sam-translate.py", "template.yaml"])
            .output()
            .expect("run scripts/sam-translate.py with the project's .venv");
        assert!(
            out.status.success(),
            "SAM transform failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    })
}

fn resources_of(kind: &str) -> Vec<(&'static String, &'static Value)> {
    translated()["Resources"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, r)| r["Type"] == kind)
        .collect()
}

fn resource(name: &str) -> &'static Value {
    &translated()["Resources"][name]
}

#[test]
fn one_stage_and_the_waf_guards_it() {
    let stages = resources_of("AWS::ApiGateway::Stage");
    assert_eq!(stages.len(), 1, "exactly one stage");
    let (stage_name, _) = stages[0];
    // A deployment with a StageName makes a second, unprotected stage.
    for (name, d) in resources_of("AWS::ApiGateway::Deployment") {
        assert!(d["Properties"].get("StageName").is_none(), "{name}");
    }
    let association = resource("WebAclAssociation")["Properties"]["ResourceArn"]["Fn::Sub"]
        .as_str()
        .unwrap();
    assert!(
        association.ends_with(&format!("/stages/${{{stage_name}}}")),
        "{association}"
    );
}

#[test]
fn the_stage_comes_after_the_account_logging_role() {
    let (_, stage) = resources_of("AWS::ApiGateway::Stage")[0];
    let text = stage.to_string();
    assert!(
        text.contains(r#"{"Ref":"ApiGatewayAccount"}"#),
        "the stage must reference the account settings to be ordered after them: {text}"
    );
    assert_eq!(resource("ApiGatewayAccount")["Condition"], "SetLogRole");
}

/// The API's resource policy allows exactly the routes the functions serve,
/// on the one stage: a route added later stays closed until it is listed.
#[test]
fn the_resource_policy_opens_exactly_the_served_routes() {
    let (_, stage) = resources_of("AWS::ApiGateway::Stage")[0];
    let stage_name = stage["Properties"]["StageName"].as_str().unwrap();
    let body = &resource("HookApi")["Properties"]["Body"];
    let mut served: Vec<String> = body["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, methods)| {
            methods
                .as_object()
                .unwrap()
                .keys()
                .map(move |m| format!("execute-api:/{stage_name}/{}{path}", m.to_uppercase()))
        })
        .collect();
    served.sort();
    let policy = &body["x-amazon-apigateway-policy"]["Statement"];
    let statements = policy.as_array().unwrap();
    assert_eq!(statements.len(), 1, "{policy}");
    let s = &statements[0];
    assert_eq!(s["Effect"], "Allow");
    assert_eq!(s["Action"], "execute-api:Invoke");
    let mut allowed: Vec<String> = s["Resource"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_owned())
        .collect();
    allowed.sort();
    assert_eq!(allowed, served);
    assert_eq!(served.len(), 3, "{served:?}");
}

/// `sam deploy --guided` asks "<function> has no authentication. Is this
/// okay? [y/N]" for each API event it finds unprotected, and its default
/// stops the deploy. The SAM CLI's own check, run on the template, finds
/// every event covered.
#[test]
fn the_guided_deploy_finds_no_route_without_authentication() {
    let check = "import sys\n\
        from samcli.lib.providers.sam_stack_provider import SamLocalStackProvider\n\
        from samcli.commands.deploy.auth_utils import auth_per_resource\n\
        stacks, _ = SamLocalStackProvider.get_stacks('template.yaml')\n\
        found = auth_per_resource(stacks)\n\
        print(found)\n\
        assert len(found) == 3, found\n\
        assert all(ok for _, ok in found), found\n";
    let out = std::process::Command::new(python())
        .current_dir(root())
        .args(["-c", check])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn stateful_resources_are_retained() {
    let mut seen = 0;
    for kind in [
        "AWS::DynamoDB::Table",
        "AWS::SecretsManager::Secret",
        "AWS::Logs::LogGroup",
    ] {
        for (name, r) in resources_of(kind) {
            assert_eq!(r["DeletionPolicy"], "Retain", "{name}");
            assert_eq!(r["UpdateReplacePolicy"], "Retain", "{name}");
            seen += 1;
        }
    }
    assert!(seen >= 8, "{seen}");
    let dlq = resource("JobDeadLetterQueue");
    assert_eq!(
        (&dlq["DeletionPolicy"], &dlq["UpdateReplacePolicy"]),
        (&Value::from("Retain"), &Value::from("Retain"))
    );
}

#[test]
fn no_literal_partition_in_our_arns() {
    let text = std::fs::read_to_string(root().join("template.yaml")).unwrap();
    for (i, line) in text.lines().enumerate() {
        let code = line.split('#').next().unwrap_or_default();
        assert!(!code.contains("arn:aws:"), "line {}: {line}", i + 1);
    }
    let machine = resource("DlqReplay")["Properties"]["DefinitionSubstitutions"].to_string();
    assert!(machine.contains("${AWS::Partition}"), "{machine}");
}

#[test]
fn dispatcher_concurrency_is_bounded_and_timeouts_agree() {
    let mappings = resources_of("AWS::Lambda::EventSourceMapping");
    assert_eq!(mappings.len(), 2, "the job queue and the expiry queue");
    let of = |queue: &str| {
        &mappings
            .iter()
            .find(|(_, m)| m["Properties"]["EventSourceArn"]["Fn::GetAtt"][0] == queue)
            .unwrap_or_else(|| panic!("no event source for {queue}"))
            .1["Properties"]
    };
    // Expiry checks: undecided ones come back one by one; two pollers at
    // most, so a burst of expiries cannot crowd out the receipts.
    let expiry = of("ExpiryQueue");
    assert_eq!(
        expiry["FunctionResponseTypes"][0],
        "ReportBatchItemFailures"
    );
    assert_eq!(expiry["ScalingConfig"]["MaximumConcurrency"], 2);
    let receipts_timeout = resource("ReceiptsFunction")["Properties"]["Timeout"]
        .as_i64()
        .unwrap();
    let expiry_visibility = resource("ExpiryQueue")["Properties"]["VisibilityTimeout"]
        .as_i64()
        .unwrap();
    assert!(expiry_visibility >= 6 * receipts_timeout);
    let p = of("JobQueue");
    assert_eq!(
        p["ScalingConfig"]["MaximumConcurrency"]["Ref"],
        "DispatcherMaxConcurrency"
    );
    let timeout = resource("DispatcherFunction")["Properties"]["Timeout"]
        .as_i64()
        .unwrap();
    let visibility = resource("JobQueue")["Properties"]["VisibilityTimeout"]
        .as_i64()
        .unwrap();
    // AWS's guidance for SQS event sources: at least six times the timeout.
    assert!(visibility >= 6 * timeout, "{visibility} < 6 x {timeout}");
}

#[test]
fn no_queue_keeps_a_code_past_its_longest_life() {
    // Jobs hold the number and the code; a code lives an hour at most
    // from its arrival, so neither the queue nor its DLQ keeps one longer.
    let longest = telehook::okta::validate::MAX_CODE_LIFE.as_secs();
    for name in ["JobQueue", "JobDeadLetterQueue"] {
        let retention = resource(name)["Properties"]["MessageRetentionPeriod"]
            .as_u64()
            .unwrap_or(345_600);
        assert!(retention <= longest, "{name}: {retention} s");
    }
}

#[test]
fn fifo_queues_use_high_throughput_mode() {
    for name in ["JobQueue", "JobDeadLetterQueue"] {
        let p = &resource(name)["Properties"];
        assert_eq!(p["FifoQueue"], true, "{name}");
        assert_eq!(p["DeduplicationScope"], "messageGroup", "{name}");
        assert_eq!(p["FifoThroughputLimit"], "perMessageGroupId", "{name}");
    }
}

#[test]
fn the_kms_parameter_takes_key_arns_only() {
    let pattern = translated()["Parameters"]["KmsKeyArn"]["AllowedPattern"]
        .as_str()
        .unwrap();
    // CloudFormation matches the whole value; Python's fullmatch does too.
    let check = format!(
        "import re,sys\np=re.compile({pattern:?})\nfor v,ok in [('',1),('arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab',1),('arn:aws-us-gov:kms:us-gov-west-1:123456789012:key/abc',1),('alias/telehook',0),('arn:aws:kms:us-east-1:123456789012:alias/telehook',0),('1234abcd-12ab-34cd-56ef-1234567890ab',0)]:\n    assert bool(p.fullmatch(v))==bool(ok), v\n"
    );
    let out = std::process::Command::new(python())
        .args(["-c", &check])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn spend_alarms_show_missing_data() {
    for name in ["SmsSpendAlarm", "VoiceSpendAlarm"] {
        assert_eq!(
            resource(name)["Properties"]["TreatMissingData"],
            "missing",
            "{name}"
        );
    }
}

#[test]
fn no_secret_value_reaches_a_function_environment() {
    let params = translated()["Parameters"].as_object().unwrap();
    let no_echo: Vec<&String> = params
        .iter()
        .filter(|(_, p)| p["NoEcho"] == true)
        .map(|(n, _)| n)
        .collect();
    // No parameter carries a secret: `sam deploy --guided` asks for every
    // NoEcho parameter until something is typed, whatever the auth mode.
    // The stack generates its secrets instead.
    assert!(no_echo.is_empty(), "{no_echo:?}");
    for secret in ["HeaderSecretValue", "EventHookSecretValue", "HashKeySecret"] {
        let props = &resource(secret)["Properties"];
        assert!(props.get("SecretString").is_none(), "{secret}");
        assert!(
            props["GenerateSecretString"]["PasswordLength"]
                .as_i64()
                .unwrap()
                >= 32,
            "{secret}"
        );
    }
    for output in ["HeaderSecretArn", "EventHookSecretArn"] {
        assert!(translated()["Outputs"][output].is_object(), "{output}");
    }
    let functions = resources_of("AWS::Lambda::Function");
    assert_eq!(functions.len(), 4);
    for (name, f) in functions {
        let env = &f["Properties"]["Environment"]["Variables"];
        let text = env.to_string();
        assert!(!text.contains("{{resolve:"), "{name}: a resolved secret");
        for p in &no_echo {
            assert!(
                !text.contains(&format!(r#"{{"Ref":"{p}"}}"#)),
                "{name}: NoEcho parameter {p} in the environment"
            );
        }
        // Declared blank for `sam local invoke --env-vars`, never a value.
        assert!(
            env.get("HASH_KEY").is_none_or(|v| v == ""),
            "{name}: a hash key by value"
        );
        assert_eq!(env["HASH_KEY_SECRET_ARN"]["Ref"], "HashKeySecret", "{name}");
        assert!(env.get("AUTH_HEADER_SECRET").is_none(), "{name}");
    }
    let ingress = &resource("IngressFunction")["Properties"]["Environment"]["Variables"];
    assert!(
        ingress["AUTH_HEADER_SECRET_ARN"]
            .to_string()
            .contains(r#"{"Ref":"HeaderSecretValue"}"#)
    );
    // Each function may read exactly the secrets it uses.
    for role in ["IngressRole", "DispatcherRole", "DlqReplayerRole"] {
        let text = resource(role).to_string();
        assert!(text.contains("secretsmanager:GetSecretValue"), "{role}");
        assert!(text.contains(r#"{"Ref":"HashKeySecret"}"#), "{role}");
    }
}

/// `sam-local-env.json`, the variables for `sam local invoke
/// --env-vars`. SAM overrides only variables the template declares for a
/// function and silently drops the rest, so each one must be declared
/// there (the global `Parameters` by every function); and together they
/// must make a configuration the functions start with.
#[test]
fn the_local_invoke_env_file_only_sets_declared_variables_and_starts() {
    let file: Value =
        serde_json::from_str(&std::fs::read_to_string(root().join("sam-local-env.json")).unwrap())
            .unwrap();
    let functions = resources_of("AWS::Lambda::Function");
    let declared = |logical: &str| -> Vec<String> {
        let (_, f) = functions
            .iter()
            .find(|(n, _)| n.as_str() == logical)
            .unwrap_or_else(|| panic!("no function {logical}"));
        f["Properties"]["Environment"]["Variables"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect()
    };
    let vars = |key: &str| -> Vec<(String, String)> {
        file[key]
            .as_object()
            .map(|o| {
                o.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                    .collect()
            })
            .unwrap_or_default()
    };
    for (key, _) in file.as_object().unwrap() {
        let targets: Vec<&str> = if key == "Parameters" {
            functions.iter().map(|(n, _)| n.as_str()).collect()
        } else {
            vec![key.as_str()]
        };
        for function in targets {
            let declared = declared(function);
            for (var, _) in vars(key) {
                assert!(
                    declared.contains(&var),
                    "{key}.{var} is not declared for {function}; SAM would ignore it"
                );
            }
        }
    }
    let ingress: Vec<(String, String)> = vars("Parameters")
        .into_iter()
        .chain(vars("IngressFunction"))
        .collect();
    let get = |k: &str| ingress.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    telehook::auth::settings::IngressConfig::from_lookup(get).unwrap();
    // The tables and queues come from the template's own references.
    telehook::flows::PipelineConfig::from_lookup(|k| match k {
        "LEDGER_TABLE" | "QUEUE_URL" => Some("from-the-template".into()),
        _ => get(k),
    })
    .unwrap();
}

/// Delivery receipts as CloudFormation reads them: the configuration set
/// the sends name routes every final text and voice event to the topic,
/// only End User Messaging of this account may publish there, and the
/// receipts function is subscribed, with the ledger write and no more.
#[test]
fn delivery_events_reach_the_receipts_function() {
    let set = resource("DeliveryConfigurationSet");
    assert_eq!(set["Condition"], "CreateConfigurationSet");
    let destination = &set["Properties"]["EventDestinations"][0];
    assert_eq!(destination["Enabled"], true);
    assert_eq!(
        destination["SnsDestination"]["TopicArn"]["Ref"],
        "ReceiptsTopic"
    );
    let types: Vec<&str> = destination["MatchingEventTypes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    // Every text and voice event type the service defines (the SDK's own
    // list) is either final, with a verdict, and routed, or a step on the
    // way. A type AWS adds fails here until it is placed.
    let interim = [
        "TEXT_SENT",
        "TEXT_PENDING",
        "TEXT_QUEUED",
        "VOICE_INITIATED",
        "VOICE_RINGING",
    ];
    let mut checked = 0;
    for t in aws_sdk_pinpointsmsvoicev2::types::EventType::values() {
        if !(t.starts_with("TEXT_") || t.starts_with("VOICE_")) || t.ends_with("_ALL") {
            continue;
        }
        checked += 1;
        if interim.contains(t) {
            assert!(!types.contains(t), "{t} is interim, yet routed");
            assert!(
                telehook::domain::receipt::verdict_of(t, false).is_none(),
                "{t}"
            );
            continue;
        }
        assert!(types.contains(t), "{t} is not routed");
        assert!(
            telehook::domain::receipt::verdict_of(t, true).is_some(),
            "{t} has no verdict"
        );
    }
    assert!(checked >= 20, "{checked}");
    assert!(
        types
            .iter()
            .all(|t| telehook::domain::receipt::verdict_of(t, true).is_some())
    );
    // Sends name this set unless the operator gives their own.
    let functions = resources_of("AWS::Lambda::Function");
    for (name, f) in &functions {
        let set_name =
            f["Properties"]["Environment"]["Variables"]["CONFIGURATION_SET_NAME"].to_string();
        assert!(
            set_name.contains("DeliveryConfigurationSet")
                && set_name.contains("HasOwnConfigurationSet"),
            "{name}: {set_name}"
        );
    }
    // Only End User Messaging, for this account, publishes to the topic.
    let policy = &resource("ReceiptsTopicPolicy")["Properties"]["PolicyDocument"]["Statement"][0];
    assert_eq!(policy["Principal"]["Service"], "sms-voice.amazonaws.com");
    assert_eq!(policy["Action"], "sns:Publish");
    assert!(policy["Condition"]["StringEquals"]["aws:SourceAccount"].is_object());
    // The function is subscribed to the topic and may invoke only from it.
    let subscriptions = resources_of("AWS::SNS::Subscription");
    assert!(
        subscriptions
            .iter()
            .any(|(_, s)| s["Properties"]["Protocol"] == "lambda"
                && s["Properties"]["TopicArn"]["Ref"] == "ReceiptsTopic"),
        "{subscriptions:?}"
    );
    let permission = resources_of("AWS::Lambda::Permission")
        .into_iter()
        .find(|(_, p)| p["Properties"]["Principal"] == "sns.amazonaws.com")
        .expect("SNS may invoke the receipts function");
    assert_eq!(
        permission.1["Properties"]["SourceArn"]["Ref"],
        "ReceiptsTopic"
    );
    // The delivery-rate alarm divides delivered by all final receipts.
    let alarm = &resource("SmsDeliveryRateAlarm")["Properties"];
    assert_eq!(alarm["Threshold"]["Ref"], "SmsDeliveryRateAlarmPercent");
    assert_eq!(alarm["ComparisonOperator"], "LessThanThreshold");
    let expression = alarm["Metrics"][2]["Expression"].as_str().unwrap();
    assert!(expression.contains("delivered") && expression.contains("undelivered"));
    // Its role writes receipts and conversions on the ledger and reads
    // nothing else there; of the queues, only the expiry checks; of End
    // User Messaging, only the feedback.
    let statements =
        &resource("ReceiptsRole")["Properties"]["Policies"][0]["PolicyDocument"]["Statement"];
    let role = statements.to_string();
    assert!(role.contains("dynamodb:UpdateItem"), "{role}");
    for wider in ["dynamodb:Scan", "dynamodb:DeleteItem", "dynamodb:Query"] {
        assert!(!role.contains(wider), "{wider} in {role}");
    }
    // Calls (by the route they take), and reading the ledger and the
    // templates, only with the voice fallback on.
    for s in statements.as_array().unwrap() {
        let text = s.to_string();
        if text.contains("sms-voice:Send")
            || text.contains("GetItem")
            || text.contains("NotifyTemplates")
        {
            let (condition, action) = if text.contains("sms-voice:SendNotify") {
                (
                    "NotifyFallbackCalls",
                    r#"["sms-voice:SendNotifyVoiceMessage","sms-voice:DescribeNotifyConfigurations"]"#,
                )
            } else if text.contains("NotifyTemplates") {
                (
                    "NotifyFallbackCalls",
                    r#"["sms-voice:DescribeNotifyTemplates"]"#,
                )
            } else if text.contains("sms-voice:Send") {
                ("OwnFallbackCalls", r#"["sms-voice:SendVoiceMessage"]"#)
            } else {
                ("HasVoiceFallback", r#"["dynamodb:GetItem"]"#)
            };
            assert_eq!(s["Fn::If"][0], condition, "{s}");
            assert_eq!(s["Fn::If"][1]["Action"].to_string(), action);
        }
    }
    for s in statements.as_array().unwrap() {
        let actions = s["Action"].to_string();
        if actions.contains("sqs:") {
            // The timers queue, and sending to the receipts' dead-letter
            // queue (Lambda's on-failure destination).
            let queue = &s["Resource"]["Fn::GetAtt"][0];
            assert!(
                queue == "ExpiryQueue"
                    || (queue == "ReceiptsDeadLetterQueue" && actions == r#"["sqs:SendMessage"]"#),
                "{s}"
            );
        }
        if actions.contains("sms-voice:") {
            assert_eq!(
                s["Action"],
                serde_json::json!(["sms-voice:PutMessageFeedback"])
            );
        }
    }
}

/// Conversion follows the event hook: its secret (by ARN, from a retained
/// secret) and route, the expiry queue, the `byUser` index the code
/// queries, the permissions each step needs, and message feedback on the
/// configuration set.
#[test]
fn conversions_follow_the_event_hook() {
    let globals = |name: &str| {
        resources_of("AWS::Lambda::Function")
            .iter()
            .map(|(n, f)| {
                (
                    (*n).clone(),
                    f["Properties"]["Environment"]["Variables"][name].clone(),
                )
            })
            .collect::<Vec<_>>()
    };
    for (name, v) in globals("CONVERSIONS") {
        assert_eq!(v["Fn::If"][0], "HasEventHook", "{name}");
        assert_eq!(v["Fn::If"][2], "off", "{name}");
    }
    for (name, v) in globals("LEARNED_GUARD") {
        assert_eq!(v["Fn::If"][2], "off", "{name}: the guard needs conversions");
    }
    for (name, v) in globals("EXPIRY_QUEUE_URL") {
        assert_eq!(v["Ref"], "ExpiryQueue", "{name}");
    }
    let ingress = &resource("IngressFunction")["Properties"]["Environment"]["Variables"];
    assert!(
        ingress["EVENT_HOOK_SECRET_ARN"]
            .to_string()
            .contains(r#"{"Ref":"EventHookSecretValue"}"#)
    );
    let secret = resource("EventHookSecretValue");
    assert_eq!(secret["Condition"], "HasEventHook");
    assert_eq!(secret["DeletionPolicy"], "Retain");
    assert_eq!(translated()["Parameters"]["EventHook"]["Default"], "off");
    // The route: the verification GET and the batches' POST.
    let api = resources_of("AWS::ApiGateway::RestApi");
    let paths = &api[0].1["Properties"]["Body"]["paths"];
    for method in ["get", "post"] {
        assert!(
            paths[telehook::api::EVENTS_PATH][method].is_object(),
            "{method} {}",
            telehook::api::EVENTS_PATH
        );
    }
    // The index, as the ledger queries it.
    let table = &resource("LedgerTable")["Properties"];
    let index = table["GlobalSecondaryIndexes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["IndexName"] == telehook::ledger::dynamo::BY_USER_INDEX)
        .expect("the byUser index");
    assert_eq!(index["KeySchema"][0]["AttributeName"], "userChannel");
    assert_eq!(index["KeySchema"][1]["AttributeName"], "sentAt");
    assert_eq!(
        index["Projection"]["NonKeyAttributes"],
        serde_json::json!(["otpExpiresAt"])
    );
    // Who may do what, for conversion.
    let role = |r: &str| {
        resource(r)["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
            .as_array()
            .unwrap()
            .clone()
    };
    let grants = |r: &str, action: &str, target: &str| {
        role(r).iter().any(|s| {
            s["Action"].to_string().contains(action) && s["Resource"].to_string().contains(target)
        })
    };
    assert!(grants("IngressRole", "dynamodb:Query", "/index/byUser"));
    assert!(grants(
        "IngressRole",
        "sms-voice:PutMessageFeedback",
        "sms-voice"
    ));
    assert!(grants("IngressRole", "dynamodb:PutItem", "LedgerTable"));
    for r in ["IngressRole", "DispatcherRole", "ReceiptsRole"] {
        assert!(grants(r, "sqs:SendMessage", "ExpiryQueue"), "{r}");
    }
    assert!(grants("DispatcherRole", "dynamodb:PutItem", "LedgerTable"));
    assert!(
        resource("IngressRole")
            .to_string()
            .contains(r#"{"Ref":"EventHookSecretValue"}"#)
    );
    let set = &resource("DeliveryConfigurationSet")["Properties"];
    assert_eq!(set["MessageFeedbackEnabled"], true);
    let queue = &resource("ExpiryQueue")["Properties"];
    assert!(
        queue.get("FifoQueue").is_none(),
        "delays need a standard queue"
    );
    assert!(
        resource("GuardBlockAlarm")["Properties"]["MetricName"] == "GuardBlocks",
        "blocks page someone"
    );
}

/// Evaluates the few intrinsic functions the protect configuration's
/// rules use, as CloudFormation would for these parameter values.
fn evaluate(v: &Value, params: &[(&str, &str)], conditions: &Value) -> Option<Value> {
    let param = |name: &str| {
        params
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| (*v).to_owned())
            .unwrap_or_default()
    };
    let sub = |text: &str, vars: &serde_json::Map<String, Value>| {
        let mut out = text.to_owned();
        for (k, v) in vars {
            out = out.replace(&format!("${{{k}}}"), v.as_str().unwrap());
        }
        for (k, v) in params {
            out = out.replace(&format!("${{{k}}}"), v);
        }
        out
    };
    if let Some(items) = v.as_array() {
        // An item that is `AWS::NoValue` is left out, as CloudFormation does.
        return Some(Value::Array(
            items
                .iter()
                .filter_map(|i| evaluate(i, params, conditions))
                .collect(),
        ));
    }
    let Some(obj) = v.as_object() else {
        return Some(v.clone());
    };
    if let Some(args) = obj.get("Fn::Join") {
        let parts = evaluate(&args[1], params, conditions)?;
        let text = match parts {
            Value::Array(a) => a
                .iter()
                .map(|p| p.as_str().unwrap_or_default().to_owned())
                .collect::<Vec<_>>()
                .join(args[0].as_str().unwrap()),
            other => other.as_str().unwrap_or_default().to_owned(),
        };
        return Some(Value::String(text));
    }
    if let Some(name) = obj.get("Ref").and_then(Value::as_str) {
        return (name != "AWS::NoValue").then(|| Value::String(param(name)));
    }
    if let Some(args) = obj.get("Fn::Sub") {
        return Some(Value::String(match args {
            Value::String(t) => sub(t, &serde_json::Map::new()),
            _ => {
                let mut vars = serde_json::Map::new();
                for (k, v) in args[1].as_object().unwrap() {
                    vars.insert(k.clone(), evaluate(v, params, conditions)?);
                }
                sub(args[0].as_str().unwrap(), &vars)
            }
        }));
    }
    if let Some(args) = obj.get("Fn::Split") {
        let text = evaluate(&args[1], params, conditions)?;
        let parts: Vec<Value> = text
            .as_str()
            .unwrap()
            .split(args[0].as_str().unwrap())
            .map(|p| Value::String(p.to_owned()))
            .collect();
        return Some(Value::Array(parts));
    }
    if let Some(args) = obj.get("Fn::Select") {
        let list = evaluate(&args[1], params, conditions)?;
        let i = args[0].as_u64().unwrap() as usize;
        return Some(list[i].clone());
    }
    if let Some(args) = obj.get("Fn::If") {
        let holds = condition(&conditions[args[0].as_str().unwrap()], params, conditions);
        return evaluate(&args[if holds { 1 } else { 2 }], params, conditions);
    }
    let mut out = serde_json::Map::new();
    for (k, v) in obj {
        if let Some(v) = evaluate(v, params, conditions) {
            out.insert(k.clone(), v);
        }
    }
    Some(Value::Object(out))
}

fn condition(c: &Value, params: &[(&str, &str)], conditions: &Value) -> bool {
    if let Some(args) = c.get("Fn::Not") {
        return !condition(&args[0], params, conditions);
    }
    if let Some(args) = c.get("Fn::Equals") {
        return evaluate(&args[0], params, conditions) == evaluate(&args[1], params, conditions);
    }
    if let Some(args) = c.get("Fn::And") {
        return args
            .as_array()
            .unwrap()
            .iter()
            .all(|a| condition(a, params, conditions));
    }
    if let Some(name) = c.get("Condition").and_then(Value::as_str) {
        return condition(&conditions[name], params, conditions);
    }
    panic!("unexpected condition {c}")
}

/// What the web ACL does with one request, rule by rule in priority order,
/// as AWS WAF evaluates them. Of the managed rule groups only what a
/// well-formed Okta request can meet is modelled: the core rule set's
/// body-size rule (bodies over 8 KB; its documented label); the others
/// match nothing here.
fn waf_action(acl: &Value, path: &str, body_bytes: usize, from_okta: bool) -> &'static str {
    const SIZE_RULE: &str = "SizeRestrictions_BODY";
    const SIZE_LABEL: &str = "awswaf:managed:aws:core-rule-set:SizeRestrictions_Body";
    fn matches(st: &Value, path: &str, labels: &[String], from_okta: bool) -> bool {
        if let Some(and) = st.get("AndStatement") {
            return and["Statements"]
                .as_array()
                .unwrap()
                .iter()
                .all(|s| matches(s, path, labels, from_okta));
        }
        if let Some(not) = st.get("NotStatement") {
            return !matches(&not["Statement"], path, labels, from_okta);
        }
        if let Some(l) = st.get("LabelMatchStatement") {
            assert_eq!(l["Scope"], "LABEL");
            return labels.iter().any(|x| x == l["Key"].as_str().unwrap());
        }
        if let Some(b) = st.get("ByteMatchStatement") {
            assert!(b["FieldToMatch"].get("UriPath").is_some(), "{b}");
            let needle = b["SearchString"].as_str().unwrap();
            return match b["PositionalConstraint"].as_str().unwrap() {
                "ENDS_WITH" => path.ends_with(needle),
                "STARTS_WITH" => path.starts_with(needle),
                "EXACTLY" => path == needle,
                "CONTAINS" => path.contains(needle),
                other => panic!("{other}"),
            };
        }
        if st.get("IPSetReferenceStatement").is_some() {
            return from_okta;
        }
        if st.get("RateBasedStatement").is_some() {
            return false;
        }
        panic!("a statement this model does not know: {st}")
    }
    let mut rules: Vec<&Value> = acl["Rules"].as_array().unwrap().iter().collect();
    rules.sort_by_key(|r| r["Priority"].as_u64().unwrap());
    let mut labels: Vec<String> = Vec::new();
    for rule in rules {
        let st = &rule["Statement"];
        if let Some(group) = st.get("ManagedRuleGroupStatement") {
            if group["Name"] != "AWSManagedRulesCommonRuleSet" || body_bytes <= 8192 {
                continue;
            }
            let overridden = group["RuleActionOverrides"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|o| o["Name"] == SIZE_RULE)
                .map(|o| o["ActionToUse"].clone());
            labels.push(SIZE_LABEL.to_owned());
            match overridden {
                Some(a) if a.get("Count").is_some() => continue,
                _ => return "BLOCK",
            }
        }
        if matches(st, path, &labels, from_okta) {
            let action = &rule["Action"];
            if action.get("Block").is_some() {
                return "BLOCK";
            }
            if action.get("Allow").is_some() {
                return "ALLOW";
            }
        }
    }
    if acl["DefaultAction"].get("Block").is_some() {
        "BLOCK"
    } else {
        "ALLOW"
    }
}

/// Okta's event hook batches run past the core rule set's 8 KB body limit;
/// Okta never retries a refused batch, and its conversions keep real ranges
/// open. The WAF lets them through (with and without the Okta allow-list),
/// still refuses a large body anywhere else, and its logs leave out every
/// header that carries a secret, whatever it is called.
#[test]
fn event_hook_batches_over_8_kb_pass_the_waf_and_secret_headers_stay_out_of_its_logs() {
    let conditions = &translated()["Conditions"];
    for allow_list in ["", "198.51.100.0/24"] {
        let params = [
            ("OktaIpAllowList", allow_list),
            ("HeaderName", "authorization"),
            ("EventHookHeaderName", "authorization"),
            ("AWS::StackName", "telehook"),
        ];
        let acl = evaluate(&resource("WebAcl")["Properties"], &params, conditions).unwrap();
        let okta = !allow_list.is_empty();
        for (path, bytes, want) in [
            ("/prod/okta/events", 64 * 1024, "ALLOW"),
            ("/prod/okta/events", 9 * 1024, "ALLOW"),
            ("/prod/okta/events", 900, "ALLOW"),
            ("/prod/okta/telephony", 9 * 1024, "BLOCK"),
            ("/prod/okta/telephony", 1_500, "ALLOW"),
            ("/prod/okta/events/../telephony", 9 * 1024, "BLOCK"),
        ] {
            assert_eq!(
                waf_action(&acl, path, bytes, okta),
                want,
                "{path} {bytes} bytes, allow-list {allow_list:?}"
            );
        }
        if okta {
            assert_eq!(waf_action(&acl, "/prod/okta/events", 900, false), "BLOCK");
        }
    }
    let redacted = |header: &str, event_header: &str| -> Vec<String> {
        let params = [
            ("HeaderName", header),
            ("EventHookHeaderName", event_header),
        ];
        let logging = evaluate(&resource("WafLogging")["Properties"], &params, conditions).unwrap();
        logging["RedactedFields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["SingleHeader"]["Name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        redacted("authorization", "authorization"),
        ["authorization"]
    );
    assert_eq!(
        redacted("x-okta-secret", "x-event-secret"),
        ["authorization", "x-okta-secret", "x-event-secret"]
    );
    assert_eq!(
        redacted("x-shared", "x-shared"),
        ["authorization", "x-shared"],
        "each once"
    );
    assert_eq!(
        redacted("authorization", "x-event-secret"),
        ["authorization", "x-event-secret"]
    );
    // The event hook's header reaches the function that checks it.
    assert_eq!(
        resource("IngressFunction")["Properties"]["Environment"]["Variables"]["EVENT_HOOK_HEADER_NAME"],
        serde_json::json!({"Ref": "EventHookHeaderName"})
    );
}

/// `ProtectCountryRules` becomes one SMS country rule per pair, in order,
/// for one pair and for ten; the configuration set and every send use it.
#[test]
fn protect_country_rules_expand_to_country_rules() {
    let conditions = &translated()["Conditions"];
    let rules = &resource("ProtectConfiguration")["Properties"]["CountryRuleSet"]["SMS"];
    let expand = |value: &str| {
        rules
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|slot| evaluate(slot, &[("ProtectCountryRules", value)], conditions))
            .map(|r| {
                format!(
                    "{}:{}",
                    r["CountryCode"].as_str().unwrap(),
                    r["ProtectStatus"].as_str().unwrap()
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(expand("NG:BLOCK"), ["NG:BLOCK"]);
    let ten = "NG:BLOCK,ID:FILTER,US:ALLOW,GB:MONITOR,FR:ALLOW,DE:ALLOW,IN:FILTER,PK:BLOCK,BD:BLOCK,LK:MONITOR";
    assert_eq!(expand(ten).join(","), ten);
    // The parameter refuses what the slots cannot hold.
    let pattern = translated()["Parameters"]["ProtectCountryRules"]["AllowedPattern"]
        .as_str()
        .unwrap();
    let re = regex_lite::Regex::new(pattern).unwrap();
    assert!(re.is_match(ten) && re.is_match("") && re.is_match("NG:BLOCK"));
    for bad in [
        &format!("{ten},CN:BLOCK")[..],
        "NG:DENY",
        "ng:BLOCK",
        "NG:BLOCK,",
    ] {
        assert!(!re.is_match(bad), "{bad}");
    }
    assert_eq!(
        resource("ProtectConfiguration")["Condition"],
        "HasProtectRules"
    );
    let set = &resource("DeliveryConfigurationSet")["Properties"];
    assert!(
        set["ProtectConfigurationId"]
            .to_string()
            .contains("ProtectConfiguration")
    );
    for (name, f) in resources_of("AWS::Lambda::Function") {
        let id =
            f["Properties"]["Environment"]["Variables"]["PROTECT_CONFIGURATION_ID"].to_string();
        assert!(id.contains("HasProtectRules"), "{name}: {id}");
    }
}

/// Each country of `SmsDeliveryRateAlarmCountries` gets its own
/// delivery-rate alarm on the metric the code writes for it (channel,
/// country, delivery), and empty slots make none.
#[test]
fn listed_countries_get_their_own_delivery_rate_alarm() {
    let conditions = &translated()["Conditions"];
    let countries = |value: &str| {
        (0..5)
            .filter_map(|i| {
                let name = format!("SmsDeliveryRateAlarmCountry{i}");
                let alarm = resource(&name);
                let holds = condition(
                    &conditions[alarm["Condition"].as_str().unwrap()],
                    &[("SmsDeliveryRateAlarmCountries", value)],
                    conditions,
                );
                holds.then(|| {
                    let dims =
                        &alarm["Properties"]["Metrics"][0]["MetricStat"]["Metric"]["Dimensions"];
                    let names: Vec<&str> = dims
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|d| d["Name"].as_str().unwrap())
                        .collect();
                    assert_eq!(names, ["channel", "country", "delivery"], "{name}");
                    evaluate(
                        &dims[1]["Value"],
                        &[("SmsDeliveryRateAlarmCountries", value)],
                        conditions,
                    )
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .to_owned()
                })
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(countries("US,CA"), ["US", "CA"]);
    assert_eq!(countries("US,CA,GB,IN,BR"), ["US", "CA", "GB", "IN", "BR"]);
    assert!(countries("").is_empty());
    assert_eq!(
        translated()["Parameters"]["SmsDeliveryRateAlarmCountries"]["Default"],
        "US,CA"
    );
}

/// Every stack output the README or a guide tells an operator to read
/// exists.
#[test]
fn the_outputs_the_readme_names_exist() {
    let mut readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    for page in std::fs::read_dir(root().join("docs")).unwrap() {
        readme += &std::fs::read_to_string(page.unwrap().path()).unwrap();
    }
    let outputs = translated()["Outputs"].as_object().unwrap();
    // `<Name output>` in commands, and "the `Name` output" in prose.
    let in_commands = readme
        .split('<')
        .skip(1)
        .filter_map(|c| c.split_once('>'))
        .filter_map(|(inner, _)| inner.strip_suffix(" output"));
    let pieces: Vec<&str> = readme.split("` output").collect();
    let in_prose = pieces[..pieces.len() - 1]
        .iter()
        .filter_map(|p| p.rsplit('`').next());
    let named: Vec<&str> = in_commands
        .chain(in_prose)
        .filter(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric()))
        .collect();
    assert!(named.len() >= 4, "{named:?}");
    assert!(named.contains(&"DlqReplayerFunctionName"), "{named:?}");
    for name in named {
        assert!(outputs.contains_key(name), "the docs name output {name}");
    }
}

/// Nothing is dropped between the AWS services: a receipt the receipts
/// function fails on after Lambda's retries goes to its dead-letter queue
/// (the on-failure destination), and so does one SNS cannot deliver (the
/// subscription's redrive, which the queue's policy lets only this topic
/// send); a check that fails five times goes to the timers' dead-letter
/// queue. Each has an alarm and a replay command.
#[test]
fn receipts_and_checks_that_fail_are_kept_alarmed_and_replayable() {
    let invoke = resources_of("AWS::Lambda::EventInvokeConfig");
    assert_eq!(invoke.len(), 1, "{invoke:?}");
    let props = &invoke[0].1["Properties"];
    assert_eq!(props["FunctionName"]["Ref"], "ReceiptsFunction");
    assert_eq!(props["MaximumRetryAttempts"], 2);
    assert_eq!(
        props["DestinationConfig"]["OnFailure"]["Destination"]["Fn::GetAtt"][0],
        "ReceiptsDeadLetterQueue"
    );
    let subscriptions = resources_of("AWS::SNS::Subscription");
    let receipts: Vec<_> = subscriptions
        .iter()
        .filter(|(_, s)| s["Properties"]["TopicArn"]["Ref"] == "ReceiptsTopic")
        .collect();
    assert_eq!(receipts.len(), 1);
    assert_eq!(
        receipts[0].1["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0],
        "ReceiptsDeadLetterQueue"
    );
    let policy = &resource("ReceiptsDeadLetterQueuePolicy")["Properties"]["PolicyDocument"];
    let statement = &policy["Statement"][0];
    assert_eq!(statement["Principal"]["Service"], "sns.amazonaws.com");
    assert_eq!(
        statement["Condition"]["ArnEquals"]["aws:SourceArn"]["Ref"],
        "ReceiptsTopic"
    );
    // The function's role sends to it (Lambda's destination sends as the
    // function), and to nothing else on the queue.
    let statements =
        &resource("ReceiptsRole")["Properties"]["Policies"][0]["PolicyDocument"]["Statement"];
    let sends: Vec<&Value> = statements
        .as_array()
        .unwrap()
        .iter()
        .filter(|st| st["Resource"]["Fn::GetAtt"][0] == "ReceiptsDeadLetterQueue")
        .collect();
    assert_eq!(sends.len(), 1);
    assert_eq!(sends[0]["Action"], serde_json::json!(["sqs:SendMessage"]));
    let redrive = &resource("ExpiryQueue")["Properties"]["RedrivePolicy"];
    assert_eq!(
        redrive["deadLetterTargetArn"]["Fn::GetAtt"][0],
        "ExpiryDeadLetterQueue"
    );
    assert_eq!(redrive["maxReceiveCount"], 5);
    for (alarm, queue) in [
        ("ReceiptsDeadLetterAlarm", "ReceiptsDeadLetterQueue"),
        ("ExpiryDeadLetterAlarm", "ExpiryDeadLetterQueue"),
    ] {
        let a = &resource(alarm)["Properties"];
        assert_eq!(a["MetricName"], "ApproximateNumberOfMessagesVisible");
        assert_eq!(a["Dimensions"][0]["Value"]["Fn::GetAtt"][0], queue);
    }
    for output in [
        "ReceiptsDeadLetterQueueUrl",
        "ExpiryDeadLetterQueueUrl",
        "ReceiptsTopicArn",
    ] {
        assert!(translated()["Outputs"].get(output).is_some(), "{output}");
    }
}

/// Every SQS event source's queue sends what keeps failing to a dead-letter
/// queue (why the Serverless Rules' ES1001, which asks for an on-failure
/// destination Lambda takes from stream sources only, is waived).
#[test]
fn every_sqs_event_source_has_a_dead_letter_queue() {
    let mappings = resources_of("AWS::Lambda::EventSourceMapping");
    assert!(mappings.len() >= 2, "{mappings:?}");
    for (name, m) in mappings {
        let queue = m["Properties"]["EventSourceArn"]["Fn::GetAtt"][0]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: not a queue of this stack"));
        let redrive = &resource(queue)["Properties"]["RedrivePolicy"];
        let dlq = redrive["deadLetterTargetArn"]["Fn::GetAtt"][0]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: {queue} has no dead-letter queue"));
        assert_eq!(resource(dlq)["Type"], "AWS::SQS::Queue", "{name}");
        assert!(redrive["maxReceiveCount"].as_u64().is_some(), "{name}");
    }
}

/// The role names of every `Fn::GetAtt [Role, Arn]` inside `v`.
fn roles_named(v: &Value, out: &mut std::collections::BTreeSet<String>) {
    match v {
        Value::Object(o) => {
            if let Some(att) = o.get("Fn::GetAtt")
                && att[1] == "Arn"
                && att[0].as_str().is_some_and(|n| n.ends_with("Role"))
            {
                out.insert(att[0].as_str().unwrap().to_owned());
            }
            o.values().for_each(|x| roles_named(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| roles_named(x, out)),
        _ => {}
    }
}

/// Every IAM statement of every role (those behind an `Fn::If` too).
fn role_statements() -> Vec<(&'static String, &'static Value)> {
    fn walk<'a>(v: &'a Value, out: &mut Vec<&'a Value>) {
        match v {
            Value::Object(o) if o.contains_key("Effect") => out.push(v),
            Value::Object(o) => o.values().for_each(|x| walk(x, out)),
            Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    for (name, role) in resources_of("AWS::IAM::Role") {
        let mut found = Vec::new();
        walk(&role["Properties"]["Policies"], &mut found);
        all.extend(found.into_iter().map(|s| (name, s)));
    }
    all
}

fn actions(statement: &Value) -> Vec<&str> {
    match &statement["Action"] {
        Value::String(a) => vec![a.as_str()],
        Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    }
}

#[test]
fn only_the_producers_may_send_to_the_queues_and_the_topic() {
    for queue in ["JobQueue", "ExpiryQueue"] {
        // Who IAM lets send there: the roles the policy must name.
        let producers: std::collections::BTreeSet<String> = role_statements()
            .into_iter()
            .filter(|(_, s)| {
                actions(s).contains(&"sqs:SendMessage")
                    && s["Resource"]
                        .to_string()
                        .contains(&format!("[\"{queue}\",\"Arn\"]"))
            })
            .map(|(name, _)| name.clone())
            .collect();
        assert!(producers.len() >= 2, "{queue}: {producers:?}");
        let (_, policy) = resources_of("AWS::SQS::QueuePolicy")
            .into_iter()
            .find(|(_, p)| p["Properties"]["Queues"][0]["Ref"] == queue)
            .unwrap_or_else(|| panic!("{queue} has no queue policy"));
        let statements = policy["Properties"]["PolicyDocument"]["Statement"]
            .as_array()
            .unwrap();
        let deny = statements
            .iter()
            .find(|s| s["Effect"] == "Deny" && s["Action"] == "sqs:SendMessage")
            .unwrap_or_else(|| panic!("{queue}: no deny on SendMessage"));
        assert_eq!(deny["Principal"], "*", "{queue}");
        let allowed = &deny["Condition"]["ArnNotLike"]["aws:PrincipalArn"];
        let mut named = std::collections::BTreeSet::new();
        roles_named(allowed, &mut named);
        assert_eq!(named, producers, "{queue}");
        // Operators may put checks back (telehook replay checks), never jobs.
        let operators = allowed.to_string().contains("OperatorPrincipalArns");
        assert_eq!(operators, queue == "ExpiryQueue", "{queue}: {allowed}");
        assert!(
            statements.iter().any(|s| s["Effect"] == "Deny"
                && s["Condition"]["Bool"]["aws:SecureTransport"] == "false"),
            "{queue}"
        );
    }
    // The topic: End User Messaging publishes; everyone else is denied,
    // save the named operators.
    let (_, topic_policy) = resources_of("AWS::SNS::TopicPolicy")
        .into_iter()
        .find(|(_, p)| p["Properties"]["Topics"][0]["Ref"] == "ReceiptsTopic")
        .unwrap();
    let statements = topic_policy["Properties"]["PolicyDocument"]["Statement"]
        .as_array()
        .unwrap();
    let deny = statements
        .iter()
        .find(|s| s["Effect"] == "Deny" && s["Action"] == "sns:Publish")
        .expect("a deny on Publish");
    let conditions = &translated()["Conditions"];
    for (operators, want) in [("", false), ("arn:aws:iam::123456789012:role/ops-*", true)] {
        let c = evaluate(
            &deny["Condition"],
            &[("OperatorPrincipalArns", operators)],
            conditions,
        )
        .unwrap();
        assert_eq!(
            c["StringNotEquals"]["aws:PrincipalServiceName"],
            "sms-voice.amazonaws.com"
        );
        assert_eq!(c.get("ArnNotLike").is_some(), want, "{c}");
    }
}

#[test]
fn the_receipts_topic_is_encrypted_without_a_key_given() {
    let topic = &resource("ReceiptsTopic")["Properties"]["KmsMasterKeyId"]["Fn::If"];
    assert_eq!(topic[0], "HasKmsKey");
    assert_eq!(topic[2]["Ref"], "ReceiptsTopicKey");
    let key = resource("ReceiptsTopicKey");
    assert_eq!(key["Condition"], "NoKmsKey");
    assert_eq!(key["Properties"]["EnableKeyRotation"], true);
    // End User Messaging must be able to use it, for this account only.
    let policy = key["Properties"]["KeyPolicy"]["Statement"]
        .as_array()
        .unwrap();
    let service = policy
        .iter()
        .find(|s| s["Principal"]["Service"] == "sms-voice.amazonaws.com")
        .unwrap();
    assert!(actions(service).contains(&"kms:GenerateDataKey*"));
    assert!(actions(service).contains(&"kms:Decrypt"));
    assert_eq!(
        service["Condition"]["StringEquals"]["aws:SourceAccount"]["Ref"],
        "AWS::AccountId"
    );
}

#[test]
fn sends_and_keys_are_scoped() {
    let mut sends = 0;
    let mut notify_sends = 0;
    for (role, s) in role_statements() {
        let a = actions(s);
        if a.iter().any(|a| a.starts_with("kms:")) {
            assert_eq!(
                s["Condition"]["StringEquals"]["kms:ViaService"]["Fn::Sub"],
                "sqs.${AWS::Region}.amazonaws.com",
                "{role}: {s}"
            );
        }
        if a.iter().any(|a| a.starts_with("sms-voice:SendNotify")) {
            notify_sends += 1;
            // Our Notify configuration and our configuration set only.
            let resources = s["Resource"].as_array().unwrap();
            assert_eq!(
                resources[0]["Fn::GetAtt"],
                serde_json::json!(["NotifyConfiguration", "NotifyConfigurationArn"]),
                "{role}"
            );
            assert_eq!(resources[1]["Fn::If"][0], "HasOwnConfigurationSet");
            assert_eq!(resources.len(), 2, "{role}");
        } else if a.iter().any(|a| a.starts_with("sms-voice:Send")) {
            sends += 1;
            let resources = s["Resource"].as_array().unwrap();
            // Our configuration set, then identities by type: nothing that
            // stands for every sms-voice resource of the account.
            assert_eq!(
                resources[0]["Fn::If"][0], "HasOwnConfigurationSet",
                "{role}"
            );
            for r in &resources[1..] {
                let arn = r["Fn::Sub"].as_str().unwrap();
                let kind = arn.rsplit(':').next().unwrap();
                assert!(kind.ends_with("/*") && kind.len() > 2, "{role}: {arn}");
            }
        }
    }
    assert_eq!(sends, 3, "the ingress, the dispatcher and the fallback");
    assert_eq!(notify_sends, 3, "by Notify too");
    // The receipts function trusts its own topic and queue only.
    let env = &resource("ReceiptsFunction")["Properties"]["Environment"]["Variables"];
    assert_eq!(env["RECEIPTS_TOPIC_ARN"]["Ref"], "ReceiptsTopic");
    assert_eq!(env["EXPIRY_QUEUE_ARN"]["Fn::GetAtt"][0], "ExpiryQueue");
    assert!(env.get("LEDGER_TABLE").is_some(), "the globals still apply");
    // The org's ceiling is on by default.
    let total = &translated()["Parameters"]["RateLimitTotal"]["Default"];
    assert_eq!(total, "3000/3600");
    assert_eq!(
        resource("IngressFunction")["Properties"]["Environment"]["Variables"]["RATE_LIMIT_TOTAL"]["Ref"],
        "RateLimitTotal"
    );
}

#[test]
fn every_parameter_is_in_one_group_for_the_guided_deploy() {
    let groups = translated()["Metadata"]["AWS::CloudFormation::Interface"]["ParameterGroups"]
        .as_array()
        .unwrap();
    let mut grouped: Vec<&str> = groups
        .iter()
        .flat_map(|g| g["Parameters"].as_array().unwrap())
        .map(|p| p.as_str().unwrap())
        .collect();
    grouped.sort_unstable();
    let mut declared: Vec<&str> = translated()["Parameters"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    declared.sort_unstable();
    assert_eq!(grouped, declared, "each parameter in exactly one group");
}

/// With Routes naming notify, the stack creates the Notify configuration
/// (its display name, code use case, channels), hands its id to the
/// functions, and grants its sends on it alone; the own route's sends
/// only when Routes names own, which then needs identities.
#[test]
fn notify_is_created_and_granted_only_when_routes_name_it() {
    let t = translated();
    let config = resource("NotifyConfiguration");
    assert_eq!(config["Condition"], "UsesNotify");
    assert_eq!(config["Properties"]["UseCase"], "CODE_VERIFICATION");
    assert_eq!(
        config["Properties"]["DisplayName"]["Ref"],
        "NotifyDisplayName"
    );
    assert_eq!(
        config["Properties"]["EnabledChannels"]["Ref"],
        "NotifyChannels"
    );
    assert_eq!(
        t["Conditions"]["UsesNotify"],
        serde_json::json!({"Fn::Not": [{"Fn::Equals": [{"Ref": "Routes"}, "own"]}]})
    );
    let env = &resource("IngressFunction")["Properties"]["Environment"]["Variables"];
    assert_eq!(env["ROUTES"]["Ref"], "Routes");
    assert_eq!(env["NOTIFY_CONFIGURATION_ID"]["Fn::If"][0], "UsesNotify");
    assert_eq!(
        env["NOTIFY_CONFIGURATION_ID"]["Fn::If"][1]["Fn::GetAtt"],
        serde_json::json!(["NotifyConfiguration", "NotifyConfigurationId"])
    );
    assert_eq!(env["RESEND_WINDOW_SECONDS"]["Ref"], "ResendWindowSeconds");
    // Each route's statements are there only when the route is.
    for role in ["IngressRole", "DispatcherRole"] {
        let statements = resource(role)["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
            .as_array()
            .unwrap();
        let guarded = |sid: &str| {
            statements
                .iter()
                .find(|s| s["Fn::If"][1]["Sid"] == sid)
                .map(|s| s["Fn::If"][0].as_str().unwrap_or_default().to_owned())
        };
        assert_eq!(
            guarded("SendMessages").as_deref(),
            Some("UsesOwnRoute"),
            "{role}"
        );
        assert_eq!(
            guarded("SendByNotify").as_deref(),
            Some("UsesNotify"),
            "{role}"
        );
        assert_eq!(
            guarded("NotifyTemplates").as_deref(),
            Some("UsesNotify"),
            "{role}"
        );
    }
    let rule = &t["Rules"]["OwnRouteNeedsIdentities"];
    assert_eq!(
        rule["Assertions"][0]["Assert"]["Fn::Not"][0]["Fn::Equals"][0]["Ref"],
        "OriginationIdentities"
    );
    assert_eq!(t["Parameters"]["Routes"]["Default"], "own");
}
