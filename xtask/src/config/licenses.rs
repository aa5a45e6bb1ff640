//! The licence policy (`licenses = { deny = […], allow = […] }`, global and
//! per function) and what it says of one declared licence: SPDX licence
//! expressions read just enough to judge them (ids joined by `AND`, `OR`
//! and `WITH`, with parentheses; `AND` binds tighter than `OR`).

use serde::{Deserialize, Serialize};

use super::table::Table;

/// The licences a function may ship.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LicensePolicy {
    /// SPDX ids that fail the check wherever they are required.
    pub deny: Vec<String>,
    /// When set, the only SPDX ids a distribution may ship under.
    pub allow: Option<Vec<String>>,
}

/// What the policy says of one distribution's declared licence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// Every choice it offers needs one of these denied ids.
    Denied(Vec<String>),
    /// `allow` is set, and no choice it offers is made of allowed ids only.
    NotAllowed,
    /// It declares none, or nothing that reads as an SPDX expression.
    Unknown,
}

impl LicensePolicy {
    pub fn is_empty(&self) -> bool {
        self.deny.is_empty() && self.allow.is_none()
    }

    /// A function's policy: the repository's `deny` and the function's
    /// together (a function can deny more, never less), and the function's
    /// own `allow` over the repository's.
    pub fn for_function(global: &LicensePolicy, own: Option<&LicensePolicy>) -> LicensePolicy {
        let Some(own) = own else {
            return global.clone();
        };
        let mut deny = global.deny.clone();
        deny.extend(own.deny.iter().cloned());
        deny.sort();
        deny.dedup();
        LicensePolicy {
            deny,
            allow: own.allow.clone().or_else(|| global.allow.clone()),
        }
    }

    /// The verdict on a declared licence.
    pub fn judge(&self, license: Option<&str>) -> Verdict {
        let Some(expression) = license.and_then(Expression::parse) else {
            return Verdict::Unknown;
        };
        if expression.acceptable(&|id| self.permits(id)) {
            return Verdict::Allowed;
        }
        if expression.acceptable(&|id| !self.denies(id)) {
            return Verdict::NotAllowed;
        }
        let mut denied: Vec<String> = expression
            .ids()
            .into_iter()
            .filter(|id| self.denies(id))
            .collect();
        denied.sort();
        denied.dedup();
        Verdict::Denied(denied)
    }

    fn denies(&self, id: &str) -> bool {
        self.deny.iter().any(|denied| denied.eq_ignore_ascii_case(id))
    }

    fn permits(&self, id: &str) -> bool {
        !self.denies(id)
            && self
                .allow
                .as_ref()
                .is_none_or(|allow| allow.iter().any(|allowed| allowed.eq_ignore_ascii_case(id)))
    }

    /// The `licenses` table at `table`'s `licenses`, if set.
    pub(super) fn read(table: &mut Table) -> Result<Option<LicensePolicy>, String> {
        let Some(value) = table.optional_table("licenses")? else {
            return Ok(None);
        };
        let mut licenses = Table::new(&table.path("licenses"), &value)?;
        let mut ids = |name: &str| -> Result<Option<Vec<String>>, String> {
            let Some(ids) = licenses.optional_str_list(name)? else {
                return Ok(None);
            };
            for id in &ids {
                if !is_license_id(id) {
                    return Err(format!(
                        "{}: `{id}` is not an SPDX licence id (use ids such as \"MIT\" or \"GPL-3.0-only\", as https://spdx.org/licenses/ lists them)",
                        licenses.path(name)
                    ));
                }
            }
            Ok(Some(ids))
        };
        let deny = ids("deny")?.unwrap_or_default();
        let allow = ids("allow")?;
        licenses.finish()?;
        Ok(Some(LicensePolicy { deny, allow }))
    }
}

/// An SPDX licence id, or a `LicenseRef-…`: letters, digits, `.`, `-`, `+`.
fn is_license_id(text: &str) -> bool {
    !text.is_empty()
        && text
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ".-+".contains(ch))
        && text.chars().next().is_some_and(|ch| ch.is_ascii_alphanumeric())
}

/// An SPDX licence expression, read enough to judge it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expression {
    /// A licence id; `WITH` an exception keeps the licence's id.
    Id(String),
    And(Box<Expression>, Box<Expression>),
    Or(Box<Expression>, Box<Expression>),
}

impl Expression {
    /// `None` when `text` does not read as an SPDX expression (`BSD
    /// License`, a licence's first line).
    pub fn parse(text: &str) -> Option<Expression> {
        let spaced = text.replace('(', " ( ").replace(')', " ) ");
        let tokens: Vec<&str> = spaced.split_whitespace().collect();
        let mut at = 0;
        let expression = or(&tokens, &mut at)?;
        (at == tokens.len()).then_some(expression)
    }

    /// Whether some choice it offers is made only of ids `ok` accepts.
    fn acceptable(&self, ok: &dyn Fn(&str) -> bool) -> bool {
        match self {
            Expression::Id(id) => ok(id),
            Expression::And(a, b) => a.acceptable(ok) && b.acceptable(ok),
            Expression::Or(a, b) => a.acceptable(ok) || b.acceptable(ok),
        }
    }

    pub fn ids(&self) -> Vec<String> {
        match self {
            Expression::Id(id) => vec![id.clone()],
            Expression::And(a, b) | Expression::Or(a, b) => {
                let mut ids = a.ids();
                ids.extend(b.ids());
                ids
            }
        }
    }
}

fn or(tokens: &[&str], at: &mut usize) -> Option<Expression> {
    let mut left = and(tokens, at)?;
    while tokens
        .get(*at)
        .is_some_and(|token| token.eq_ignore_ascii_case("OR"))
    {
        *at += 1;
        left = Expression::Or(Box::new(left), Box::new(and(tokens, at)?));
    }
    Some(left)
}

fn and(tokens: &[&str], at: &mut usize) -> Option<Expression> {
    let mut left = primary(tokens, at)?;
    while tokens
        .get(*at)
        .is_some_and(|token| token.eq_ignore_ascii_case("AND"))
    {
        *at += 1;
        left = Expression::And(Box::new(left), Box::new(primary(tokens, at)?));
    }
    Some(left)
}

fn primary(tokens: &[&str], at: &mut usize) -> Option<Expression> {
    let token = *tokens.get(*at)?;
    *at += 1;
    if token == "(" {
        let inner = or(tokens, at)?;
        (tokens.get(*at) == Some(&")")).then(|| *at += 1)?;
        return Some(inner);
    }
    if !is_license_id(token)
        || ["AND", "OR", "WITH"]
            .iter()
            .any(|op| token.eq_ignore_ascii_case(op))
    {
        return None;
    }
    if tokens
        .get(*at)
        .is_some_and(|next| next.eq_ignore_ascii_case("WITH"))
    {
        let exception = tokens.get(*at + 1)?;
        if !is_license_id(exception) {
            return None;
        }
        *at += 2;
    }
    Some(Expression::Id(token.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(deny: &[&str], allow: Option<&[&str]>) -> LicensePolicy {
        LicensePolicy {
            deny: deny.iter().map(|id| id.to_string()).collect(),
            allow: allow.map(|ids| ids.iter().map(|id| id.to_string()).collect()),
        }
    }

    #[test]
    fn a_choice_without_a_denied_licence_is_allowed() {
        let deny = policy(&["GPL-3.0-only"], None);
        assert_eq!(deny.judge(Some("MIT")), Verdict::Allowed);
        assert_eq!(deny.judge(Some("MIT OR GPL-3.0-only")), Verdict::Allowed);
        assert_eq!(
            deny.judge(Some("MIT AND GPL-3.0-only")),
            Verdict::Denied(vec!["GPL-3.0-only".to_string()])
        );
        assert_eq!(
            deny.judge(Some("(MIT OR Apache-2.0) AND gpl-3.0-only")),
            Verdict::Denied(vec!["gpl-3.0-only".to_string()])
        );
        assert_eq!(
            deny.judge(Some("GPL-3.0-only WITH GCC-exception-3.1")),
            Verdict::Denied(vec!["GPL-3.0-only".to_string()])
        );
        assert_eq!(deny.judge(Some("BSD License")), Verdict::Unknown);
        assert_eq!(deny.judge(None), Verdict::Unknown);
    }

    #[test]
    fn with_an_allow_list_only_its_licences_pass() {
        let allow = policy(&[], Some(&["MIT", "Apache-2.0"]));
        assert_eq!(allow.judge(Some("Apache-2.0 AND MIT")), Verdict::Allowed);
        assert_eq!(allow.judge(Some("MPL-2.0 OR MIT")), Verdict::Allowed);
        assert_eq!(allow.judge(Some("MPL-2.0")), Verdict::NotAllowed);
    }

    #[test]
    fn a_functions_policy_adds_denials_and_replaces_the_allow_list() {
        let global = policy(&["AGPL-3.0-only"], Some(&["MIT"]));
        let own = policy(&["GPL-3.0-only"], Some(&["MIT", "BSD-3-Clause"]));
        let merged = LicensePolicy::for_function(&global, Some(&own));
        assert_eq!(merged.deny, ["AGPL-3.0-only", "GPL-3.0-only"]);
        assert_eq!(merged.allow.unwrap(), ["MIT", "BSD-3-Clause"]);
        assert_eq!(LicensePolicy::for_function(&global, None), global);
    }

    #[test]
    fn expressions_parse_with_and_binding_tighter() {
        let parsed = Expression::parse("MIT OR Apache-2.0 AND BSD-3-Clause").unwrap();
        assert!(matches!(parsed, Expression::Or(_, _)));
        for text in ["", "MIT OR", "(MIT", "MIT)", "Apache Software License", "AND"] {
            assert_eq!(Expression::parse(text), None, "{text}");
        }
    }
}
