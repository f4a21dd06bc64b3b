//! The layout ARCHITECTURE.md promises, checked: no import circle between
//! the library's top-level modules, the test kit kept out of the Lambdas,
//! and Lambda `main`s that stay thin.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Top-level module → the top-level modules its non-test code names.
fn module_graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = root().join("shared/src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let rel = file.strip_prefix(&src).expect("under src");
        let first = rel.components().next().expect("a component");
        let top = first
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_owned();
        if top == "lib" {
            continue;
        }
        let text = std::fs::read_to_string(&file).expect("read");
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        let deps = graph.entry(top.clone()).or_default();
        for (i, _) in code.match_indices("crate::") {
            let name: String = code[i + 7..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            if !name.is_empty() && name != top {
                deps.insert(name);
            }
        }
    }
    graph
}

fn find_cycle(
    graph: &BTreeMap<String, BTreeSet<String>>,
    node: &str,
    path: &mut Vec<String>,
    done: &mut BTreeSet<String>,
) -> Option<Vec<String>> {
    if let Some(at) = path.iter().position(|n| n == node) {
        let mut cycle = path[at..].to_vec();
        cycle.push(node.to_owned());
        return Some(cycle);
    }
    if done.contains(node) {
        return None;
    }
    path.push(node.to_owned());
    for dep in graph.get(node).into_iter().flatten() {
        if let Some(c) = find_cycle(graph, dep, path, done) {
            return Some(c);
        }
    }
    path.pop();
    done.insert(node.to_owned());
    None
}

#[test]
fn no_import_circle_between_top_level_modules() {
    let graph = module_graph();
    assert!(graph.contains_key("flows") && graph.contains_key("domain"));
    assert!(
        graph["domain"].is_empty(),
        "domain depends on {:?}",
        graph["domain"]
    );
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        if let Some(cycle) = find_cycle(&graph, node, &mut Vec::new(), &mut done) {
            panic!("import circle: {}", cycle.join(" -> "));
        }
    }
}

#[test]
fn lambdas_build_without_the_test_kit_and_stay_thin() {
    for lambda in ["ingress", "dispatcher", "dlq-replayer", "receipts"] {
        let manifest = std::fs::read_to_string(root().join(lambda).join("Cargo.toml")).unwrap();
        assert!(
            !manifest.contains("testkit"),
            "{lambda} turns on the test kit"
        );
        // Local mode's SQLite ledger would only add a C library to a
        // function that never opens a file.
        assert!(
            !manifest.contains("sqlite"),
            "{lambda} turns on the SQLite ledger"
        );
        let main = std::fs::read_to_string(root().join(lambda).join("src/main.rs")).unwrap();
        assert!(!main.contains("testkit"), "{lambda} uses the test kit");
        let lines = main.lines().count();
        assert!(lines <= 30, "{lambda}'s main is {lines} lines");
    }
    let library = std::fs::read_to_string(root().join("shared/Cargo.toml")).unwrap();
    assert!(
        library.contains("[features]") && !library.contains("default ="),
        "no feature of the library is on by default"
    );
}
