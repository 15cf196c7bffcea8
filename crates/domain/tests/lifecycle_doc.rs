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

/// The moves the code allows, as `(from, to)` names.
fn coded<S: std::fmt::Display + Copy + 'static>(
    all: &[S],
    next: impl Fn(S) -> &'static [S],
) -> BTreeSet<(String, String)> {
    all.iter()
        .flat_map(|from| {
            next(*from)
                .iter()
                .map(|to| (from.to_string(), to.to_string()))
        })
        .collect()
}

#[test]
fn the_environment_diagram_is_the_state_machine() {
    assert_eq!(
        drawn("## Environment"),
        coded(&EnvironmentStatus::ALL, EnvironmentStatus::allowed_next)
    );
}

#[test]
fn the_deployment_diagram_is_the_state_machine() {
    assert_eq!(
        drawn("## Deployment"),
        coded(&DeploymentStatus::ALL, DeploymentStatus::allowed_next)
    );
}
