//! Every stack parameter of `infra/template.yaml` does something and is explained: the template
//! refers to it, the console shows it in a parameter group, and the README's "Stack parameters"
//! table describes it. A parameter that drifts from any of the three is a setting a user cannot
//! find, or one that silently does nothing.

use std::collections::BTreeSet;

use crate::template_env::Template;

fn parameters(template: &Template) -> BTreeSet<String> {
    template.root["Parameters"]
        .as_mapping()
        .expect("the template has parameters")
        .keys()
        .map(|k| k.as_str().expect("parameter name").to_owned())
        .collect()
}

/// The parameters the console's groups list (`AWS::CloudFormation::Interface`).
fn grouped(template: &Template) -> BTreeSet<String> {
    template.root["Metadata"]["AWS::CloudFormation::Interface"]["ParameterGroups"]
        .as_sequence()
        .expect("the template has parameter groups")
        .iter()
        .flat_map(|group| {
            group["Parameters"]
                .as_sequence()
                .expect("a group lists parameters")
        })
        .map(|name| name.as_str().expect("parameter name").to_owned())
        .collect()
}

/// The names in the first column of the README's "Stack parameters" table (a row may name
/// several: `` `A` / `B` ``).
fn documented() -> BTreeSet<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md");
    let readme = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let section = readme
        .split("### Stack parameters")
        .nth(1)
        .expect("the README has a \"Stack parameters\" section");
    section
        .lines()
        .skip_while(|line| !line.starts_with('|'))
        .take_while(|line| line.starts_with('|'))
        .filter_map(|row| row.split('|').nth(1))
        .flat_map(|cell| cell.split('`').skip(1).step_by(2).map(str::to_owned))
        .collect()
}

#[test]
fn every_stack_parameter_is_used_grouped_and_documented() {
    let template = Template::load();
    let parameters = parameters(&template);
    assert!(parameters.len() > 20, "{parameters:?}");
    // Everything after the parameters' own declarations: conditions, resources, outputs.
    let body = template
        .text
        .split_once("\nMetadata:")
        .expect("the template has a Metadata section after its parameters")
        .1;
    let unused: Vec<_> = parameters
        .iter()
        .filter(|name| {
            ![
                format!("!Ref {name}"),
                format!("${{{name}}}"),
                format!("Ref: {name}"),
            ]
            .iter()
            .any(|use_| body.contains(use_.as_str()))
        })
        .collect();
    assert!(
        unused.is_empty(),
        "parameters the template never uses: {unused:?}"
    );

    same_names(
        &parameters,
        &grouped(&template),
        "the console's parameter groups",
    );
    same_names(
        &parameters,
        &documented(),
        "the README's \"Stack parameters\" table",
    );
}

/// Asserts that `place` lists exactly the template's parameters.
fn same_names(parameters: &BTreeSet<String>, listed: &BTreeSet<String>, place: &str) {
    let missing: Vec<_> = parameters.difference(listed).collect();
    let undeclared: Vec<_> = listed.difference(parameters).collect();
    assert!(
        missing.is_empty() && undeclared.is_empty(),
        "{place}: missing {missing:?}; names the template does not declare {undeclared:?}"
    );
}
