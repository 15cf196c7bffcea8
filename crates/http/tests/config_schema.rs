//! `schemas/ephemera-config.schema.json` and the parser of
//! `.github/ephemera.yml` agree: every example in
//! docs/repository-config.md is accepted by both, and a set of invalid
//! files is refused by both. The schema is what editors check a file
//! against; the parser is what the server does with it.

#![allow(clippy::unwrap_used)]

use ephemera_application::repo_config::parse;
use serde_json::Value;

const SCHEMA: &str = include_str!("../../../schemas/ephemera-config.schema.json");
const DOCS: &str = include_str!("../../../docs/repository-config.md");

fn validator() -> jsonschema::Validator {
    let schema: Value = serde_json::from_str(SCHEMA).unwrap();
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    jsonschema::draft202012::new(&schema).unwrap()
}

/// The file as an editor's validator sees it: YAML read into JSON.
fn as_json(yaml: &str) -> Value {
    serde_yaml_ng::from_str(yaml).unwrap()
}

/// Every ```yaml block of the docs.
fn documented_examples() -> Vec<String> {
    let mut examples = Vec::new();
    let mut current: Option<String> = None;
    for line in DOCS.lines() {
        match (&mut current, line.trim_start()) {
            (None, "```yaml") => current = Some(String::new()),
            (Some(block), "```") => {
                examples.push(std::mem::take(block));
                current = None;
            }
            (Some(block), _) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    assert!(current.is_none(), "an unclosed ```yaml block");
    examples
}

#[test]
fn every_documented_example_is_valid_for_the_schema_and_the_parser() {
    let validator = validator();
    let examples = documented_examples();
    assert!(examples.len() >= 4, "only {} examples", examples.len());
    for example in examples {
        let errors: Vec<String> = validator
            .iter_errors(&as_json(&example))
            .map(|e| format!("{e} at {}", e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "the schema refuses\n{example}\n{errors:?}"
        );
        if let Err(e) = parse(&example) {
            panic!("the parser refuses\n{example}\n{e}");
        }
    }
}

#[test]
fn files_both_accept() {
    let validator = validator();
    for yaml in [
        "version: 1\n",
        "version: 1\npreviews:\nenv:\n",
        "version: 1\npreviews:\n  mode: off\n  paths: {}\n",
        "version: 1\npreviews:\n  ttl: 1h 30m\n  max_active: 1\n",
        "version: 1\npreviews:\n  ttl: 2days\n",
        "version: 1\nenv:\n  _X: 1.5\n  Y: false\n  Z: ''\n",
    ] {
        assert!(validator.is_valid(&as_json(yaml)), "schema: {yaml}");
        assert!(parse(yaml).is_ok(), "parser: {yaml}: {:?}", parse(yaml));
    }
}

#[test]
fn files_both_refuse() {
    let validator = validator();
    let long_name = format!("version: 1\nenv:\n  {}: x\n", "N".repeat(129));
    let long_value = format!("version: 1\nenv:\n  N: {}\n", "x".repeat(4097));
    for yaml in [
        "previews: {}\n",
        "version: 2\n",
        "version: 1\nextra: true\n",
        "version: 1\npreviews:\n  mdoe: off\n",
        "version: 1\npreviews:\n  mode: sometimes\n",
        "version: 1\npreviews:\n  mode: Auto\n",
        "version: 1\npreviews:\n  branches: main\n",
        "version: 1\npreviews:\n  paths:\n    only: ['a']\n",
        "version: 1\npreviews:\n  skip_authors: [1, 2]\n",
        "version: 1\npreviews:\n  ttl: soon\n",
        "version: 1\npreviews:\n  ttl: 0h\n",
        "version: 1\npreviews:\n  ttl: 72\n",
        "version: 1\npreviews:\n  max_active: 0\n",
        "version: 1\npreviews:\n  max_active: -1\n",
        "version: 1\npreviews:\n  max_active: many\n",
        "version: 1\nenv:\n  1ST: x\n",
        "version: 1\nenv:\n  A-B: x\n",
        "version: 1\nenv:\n  A: [x]\n",
        "version: 1\nenv:\n  A: {b: c}\n",
        "version: 1\nenv:\n  A: ~\n",
        "version: 1\nenv: [A]\n",
        &long_name,
        &long_value,
    ] {
        assert!(
            !validator.is_valid(&as_json(yaml)),
            "schema accepts: {yaml}"
        );
        assert!(parse(yaml).is_err(), "parser accepts: {yaml}");
    }
}
