//! docs/lifecycle.md draws the state machines; these tests hold the
//! drawings to the code, both ways.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use ephemera_domain::{DeploymentStatus, EnvironmentStatus};

const DOC: &str = include_str!("../../../docs/lifecycle.md");

/// The `a --> b` moves of the diagram under `heading`, leaving out the
/// start arrow.
fn drawn(heading: &str) -> BTreeSet<(String, String)> {
    let section = DOC.split(heading).nth(1).unwrap();
    let diagram = section.split("```mermaid").nth(1).unwrap();
    let diagram = diagram.split("```").next().unwrap();
    diagram
        .lines()
        .filter_map(|line| {
            let (from, rest) = line.trim().split_once(" --> ")?;
            let to = rest.split(':').next()?.trim();
            (from != "[*]").then(|| (from.to_owned(), to.to_owned()))
        })
        .collect()
}

#[test]
fn the_environment_diagram_is_the_state_machine() {
    let coded: BTreeSet<(String, String)> = EnvironmentStatus::ALL
        .iter()
        .flat_map(|from| {
            from.allowed_next()
                .iter()
                .map(|to| (from.to_string(), to.to_string()))
        })
        .collect();
    assert_eq!(drawn("## Environment"), coded);
}

#[test]
fn the_deployment_diagram_is_the_state_machine() {
    let coded: BTreeSet<(String, String)> = DeploymentStatus::ALL
        .iter()
        .flat_map(|from| {
            from.allowed_next()
                .iter()
                .map(|to| (from.to_string(), to.to_string()))
        })
        .collect();
    assert_eq!(drawn("## Deployment"), coded);
}
