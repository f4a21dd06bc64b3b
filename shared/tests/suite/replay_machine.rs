//! The `DlqReplay` state machine, run: its definition is taken from the
//! SAM-translated template and executed by a small interpreter of the
//! Amazon States Language subset it uses (Pass with parameters and
//! `States.MathAdd`, Task, Choice, Wait), with a scripted replayer in place
//! of the Lambda. It must end when the DLQ is empty, when the cap is
//! reached, and when a round makes no progress (a message that fails every
//! round), reporting what is stuck instead of looping.

// Test helpers may unwrap: a panic is a test failure with a location.
#![allow(clippy::unwrap_used)]

use serde_json::{Map, Value, json};

/// The definition, translated once per test binary.
fn definition() -> Value {
    static DEF: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    DEF.get_or_init(translate).clone()
}

fn translate() -> Value {
    let out = std::process::Command::new(
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python"),
    )
    .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
    .args(["scripts/sam-translate.py", "template.yaml"])
    .output()
    .unwrap();
    assert!(out.status.success());
    let t: Value = serde_json::from_slice(&out.stdout).unwrap();
    let join = &t["Resources"]["DlqReplay"]["Properties"]["DefinitionString"]["Fn::Join"];
    let lines: Vec<&str> = join[1]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    serde_json::from_str(&lines.join("\n")).unwrap()
}

/// `$`, `$.a.b`.
fn at(v: &Value, path: &str) -> Value {
    let mut cur = v;
    for key in path
        .trim_start_matches('$')
        .split('.')
        .filter(|k| !k.is_empty())
    {
        cur = &cur[key];
    }
    cur.clone()
}

/// A path, a number, or a (nested) `States.MathAdd(x, y)`.
fn eval(expr: &str, input: &Value) -> Value {
    let expr = expr.trim();
    if let Ok(n) = expr.parse::<i64>() {
        return json!(n);
    }
    let Some(args) = expr
        .strip_prefix("States.MathAdd(")
        .and_then(|r| r.strip_suffix(')'))
    else {
        return at(input, expr);
    };
    let mut depth = 0;
    let split = args
        .char_indices()
        .find(|(_, c)| {
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                _ => {}
            }
            *c == ',' && depth == 0
        })
        .unwrap()
        .0;
    let a = eval(&args[..split], input).as_i64().unwrap();
    let b = eval(&args[split + 1..], input).as_i64().unwrap();
    json!(a + b)
}

fn params(template: &Value, input: &Value) -> Value {
    match template {
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                match k.strip_suffix(".$") {
                    Some(name) => out.insert(name.to_owned(), eval(v.as_str().unwrap(), input)),
                    None => out.insert(k.clone(), params(v, input)),
                };
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

fn choose(state: &Value, input: &Value) -> String {
    for rule in state["Choices"].as_array().unwrap() {
        let v = at(input, rule["Variable"].as_str().unwrap());
        let hit = if let Some(n) = rule.get("NumericEquals") {
            v.as_f64() == n.as_f64()
        } else if let Some(b) = rule.get("BooleanEquals") {
            v == *b
        } else if let Some(p) = rule.get("NumericGreaterThanEqualsPath") {
            v.as_f64().unwrap() >= at(input, p.as_str().unwrap()).as_f64().unwrap()
        } else {
            panic!("choice rule not handled: {rule}")
        };
        if hit {
            return rule["Next"].as_str().unwrap().to_owned();
        }
    }
    state["Default"].as_str().unwrap().to_owned()
}

/// Runs the machine; returns its end state's name, its output, and how many
/// times the replayer was called.
fn run(input: Value, mut replayer: impl FnMut(&Value) -> Value) -> (String, Value, usize) {
    let def = definition();
    let mut name = def["StartAt"].as_str().unwrap().to_owned();
    let mut data = input;
    let mut calls = 0;
    for _ in 0..1000 {
        let state = &def["States"][&name];
        let next = match state["Type"].as_str().unwrap() {
            "Pass" => {
                if let Some(p) = state.get("Parameters") {
                    data = params(p, &data);
                }
                if let Some(p) = state.get("OutputPath") {
                    data = at(&data, p.as_str().unwrap());
                }
                state.get("Next").and_then(Value::as_str).map(str::to_owned)
            }
            "Task" => {
                let payload = params(&state["Parameters"]["Payload"], &data);
                calls += 1;
                let result = params(
                    &state["ResultSelector"],
                    &json!({"Payload": replayer(&payload)}),
                );
                let key = state["ResultPath"]
                    .as_str()
                    .unwrap()
                    .trim_start_matches("$.");
                data[key] = result;
                state.get("Next").and_then(Value::as_str).map(str::to_owned)
            }
            "Choice" => Some(choose(state, &data)),
            "Wait" => state.get("Next").and_then(Value::as_str).map(str::to_owned),
            other => panic!("state type not handled: {other}"),
        };
        match next {
            Some(n) => name = n,
            None => return (name, data, calls),
        }
    }
    panic!("the state machine did not end in 1000 steps")
}

fn report(moved: i64, failed: i64, remaining: i64) -> Value {
    json!({"moved": moved, "expired": 0, "alreadySent": 0, "failed": failed, "remaining": remaining, "dryRun": false})
}

fn input(max: i64) -> Value {
    json!({"max": max, "batchSize": max.min(100), "dryRun": false})
}

#[test]
fn a_message_that_fails_every_round_stops_the_machine_and_is_reported() {
    let (end, out, calls) = run(input(100), |_| report(0, 1, 1));
    assert_eq!((end.as_str(), calls), ("Stuck", 1));
    assert_eq!(out["stuck"], 1);
    assert_eq!(out["failed"], 1);
    // Progress first, then a round of only failures.
    let mut rounds = vec![report(0, 1, 1), report(5, 1, 1)];
    let (end, out, calls) = run(input(100), |_| rounds.pop().unwrap());
    assert_eq!((end.as_str(), calls), ("Stuck", 2));
    assert_eq!(
        (out["moved"].clone(), out["stuck"].clone()),
        (json!(5), json!(1))
    );
}

#[test]
fn the_machine_drains_the_queue_and_stops_at_the_cap() {
    let mut left = 25;
    let (end, out, calls) = run(input(100), |p| {
        let n = p["maxMessages"].as_i64().unwrap().min(10).min(left);
        left -= n;
        report(n, 0, left)
    });
    assert_eq!((end.as_str(), calls), ("Done", 3));
    assert_eq!(
        (out["moved"].clone(), out["remaining"].clone()),
        (json!(25), json!(0))
    );

    let (end, out, calls) = run(input(25), |_| report(10, 0, 1000));
    assert_eq!((end.as_str(), calls), ("Done", 3));
    assert_eq!(out["handled"], 30);
}
