//! Kubernetes label selectors (`app=web,tier!=db,env in (a,b),!legacy`), parsed and matched
//! locally so that an OR of several selectors needs one list call per resource type.

use std::collections::BTreeMap;

use crate::error::{Error, Result};

/// One requirement of a selector.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// A parsed label selector: all requirements must hold. The empty selector matches everything.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LabelSelector {
    text: String,
    reqs: Vec<Requirement>,
}

impl LabelSelector {
    /// Parses a selector in the syntax of `kubectl -l`.
    ///
    /// # Errors
    /// `Invalid` with the selector and the offending requirement.
    pub fn parse(text: &str) -> Result<Self> {
        let bad = |r: &str| {
            Error::invalid(
                format!("label selector {text:?}"),
                format!("cannot parse {r:?}"),
            )
        };
        let mut reqs = Vec::new();
        for part in split_top(text) {
            let p = part.trim();
            if p.is_empty() {
                continue;
            }
            let req = if let Some(k) = p.strip_prefix('!') {
                Requirement::NotExists(key(k).ok_or_else(|| bad(p))?)
            } else if let Some((k, v)) = p.split_once("!=") {
                Requirement::NotEquals(key(k).ok_or_else(|| bad(p))?, v.trim().to_owned())
            } else if let Some((k, v)) = p.split_once("==").or_else(|| p.split_once('=')) {
                Requirement::Equals(key(k).ok_or_else(|| bad(p))?, v.trim().to_owned())
            } else if let Some((k, set)) = set_op(p, " notin ") {
                Requirement::NotIn(key(k).ok_or_else(|| bad(p))?, set.ok_or_else(|| bad(p))?)
            } else if let Some((k, set)) = set_op(p, " in ") {
                Requirement::In(key(k).ok_or_else(|| bad(p))?, set.ok_or_else(|| bad(p))?)
            } else {
                Requirement::Exists(key(p).ok_or_else(|| bad(p))?)
            };
            reqs.push(req);
        }
        Ok(Self {
            text: text.to_owned(),
            reqs,
        })
    }

    /// True if the labels satisfy every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.reqs.iter().all(|r| match r {
            Requirement::Equals(k, v) => labels.get(k) == Some(v),
            Requirement::NotEquals(k, v) => labels.get(k) != Some(v),
            Requirement::In(k, vs) => labels.get(k).is_some_and(|l| vs.contains(l)),
            Requirement::NotIn(k, vs) => labels.get(k).is_none_or(|l| !vs.contains(l)),
            Requirement::Exists(k) => labels.contains_key(k),
            Requirement::NotExists(k) => !labels.contains_key(k),
        })
    }

    /// The selector as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// True if any of the selectors matches (an empty list matches everything).
pub fn any_matches(selectors: &[LabelSelector], labels: &BTreeMap<String, String>) -> bool {
    selectors.is_empty() || selectors.iter().any(|s| s.matches(labels))
}

fn key(k: &str) -> Option<String> {
    let k = k.trim();
    (!k.is_empty() && !k.contains(char::is_whitespace) && !k.contains(['(', ')', ',']))
        .then(|| k.to_owned())
}

fn set_op<'a>(p: &'a str, op: &str) -> Option<(&'a str, Option<Vec<String>>)> {
    let (k, rest) = p.split_once(op)?;
    let set = rest
        .trim()
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .map(|inner| inner.split(',').map(|v| v.trim().to_owned()).collect());
    Some((k, set))
}

/// Splits on commas outside parentheses.
fn split_top(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect()
    }

    #[test]
    fn selectors_match_like_kubectl() {
        let s = LabelSelector::parse("app=wordpress, tier in (mysql, frontend),!legacy,env!=prod")
            .unwrap();
        assert!(s.matches(&l(&[("app", "wordpress"), ("tier", "mysql")])));
        assert!(!s.matches(&l(&[("app", "wordpress"), ("tier", "cache")])));
        assert!(!s.matches(&l(&[
            ("app", "wordpress"),
            ("tier", "mysql"),
            ("legacy", "")
        ])));
        assert!(!s.matches(&l(&[
            ("app", "wordpress"),
            ("tier", "mysql"),
            ("env", "prod")
        ])));
        let n = LabelSelector::parse("tier notin (db),app").unwrap();
        assert!(n.matches(&l(&[("app", "x")])));
        assert!(!n.matches(&l(&[("app", "x"), ("tier", "db")])));
        assert!(!n.matches(&l(&[])));
        assert!(LabelSelector::parse("").unwrap().matches(&l(&[])));
        assert!(LabelSelector::parse("a in b").is_err());
        assert!(LabelSelector::parse("=x").is_err());
    }

    #[test]
    fn or_of_selectors() {
        let a = LabelSelector::parse("app=a").unwrap();
        let b = LabelSelector::parse("app=b").unwrap();
        let sels = [a, b];
        assert!(any_matches(&sels, &l(&[("app", "b")])));
        assert!(!any_matches(&sels, &l(&[("app", "c")])));
        assert!(any_matches(&[], &l(&[])));
    }
}
