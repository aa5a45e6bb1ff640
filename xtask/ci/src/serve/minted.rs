//! What a function makes up each time it runs, which serve's answers and
//! `invoke`'s may differ by: a new record's id (consistently), the time of
//! a write, a token signed at another moment. Both the comparison of values
//! (`diff.rs`) and of whole responses (`responses.rs`) allow it; this file
//! needs neither.

use std::collections::BTreeMap;

use serde_json::Value;

/// Values a function makes up each time it runs, in its JSON bodies, so
/// that under `invoke` they differ from serve's: a new user's id, which
/// must differ consistently (the same made-up id stands for the same user
/// in every later answer), and the time of a write (to the second, so two
/// writes may share one), which must only look alike.
pub(super) const MINTED_IDS: [&str; 1] = ["user_id"];
pub(super) const MINTED_TIMES: [&str; 3] = ["created_at", "updated_at", "last_login_at"];

/// The made-up ids seen so far: serve's, paired with `invoke`'s.
#[derive(Debug, Default)]
pub(super) struct Minted {
    /// Every event serve sent, as text: an id a client sent (a seeded
    /// user's, in a path or a token's context) was not made up.
    sent: String,
    pairs: BTreeMap<String, String>,
    taken: BTreeMap<String, String>,
}

impl Minted {
    pub(super) fn knowing(sent: String) -> Minted {
        Minted {
            sent,
            ..Minted::default()
        }
    }

    /// For two lists of records with a made-up id (a scan of the users
    /// table, ordered by id, so a made-up id puts its record elsewhere):
    /// for each of serve's, the index of invoke's record with the same id
    /// (or the one its made-up id stands for), then made-up ones for
    /// made-up ones, the others in order.
    /// Other lists keep their order.
    pub(super) fn matching(&self, ours: &[Value], theirs: &[Value]) -> Vec<usize> {
        fn id(record: &Value) -> Option<&str> {
            MINTED_IDS.iter().find_map(|key| record.get(key)?.as_str())
        }
        let in_order = (0..theirs.len()).collect();
        if !ours.iter().chain(theirs).all(|record| id(record).is_some()) {
            return in_order;
        }
        let mut free: Vec<usize> = in_order;
        let mut found: Vec<Option<usize>> = Vec::new();
        for record in ours {
            let ours = id(record).unwrap_or_default();
            let wanted = self.pairs.get(ours).map_or(ours, String::as_str);
            let at = free.iter().position(|&at| id(&theirs[at]) == Some(wanted));
            found.push(at.map(|at| free.remove(at)));
        }
        // A record no client named (made up) for one no client named.
        let made_up = |record: &Value| id(record).is_some_and(|id| !self.sent.contains(id));
        for (record, slot) in ours.iter().zip(found.iter_mut()) {
            if slot.is_none() && made_up(record) {
                let at = free.iter().position(|&at| made_up(&theirs[at]));
                *slot = at.map(|at| free.remove(at));
            }
        }
        let mut rest = free.into_iter();
        found
            .into_iter()
            .map(|at| at.or_else(|| rest.next()).unwrap_or_default())
            .collect()
    }

    /// Whether serve's `served` may stand for invoke's `invoked`: they look
    /// alike, no client sent either, and neither stands for another value
    /// already.
    pub(super) fn pair(&mut self, served: &str, invoked: &str) -> bool {
        if shape(served) != shape(invoked) || self.sent.contains(served) || self.sent.contains(invoked) {
            return false;
        }
        match (self.pairs.get(served), self.taken.get(invoked)) {
            (Some(known), _) => known == invoked,
            (None, Some(_)) => false,
            (None, None) => {
                self.pairs.insert(served.to_string(), invoked.to_string());
                self.taken.insert(invoked.to_string(), served.to_string());
                true
            }
        }
    }
}

/// A value's look: hex digits as `h`, the rest kept.
pub(super) fn shape(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_ascii_hexdigit() { 'h' } else { c })
        .collect()
}

/// Two texts equal but for the JSON Web Tokens in them, when each pair of
/// tokens says the same but for when it was signed: a token the fakes sign
/// at the moment (the `auth` callback's cookies) has its times (`iat`,
/// `exp`, `auth_time`) and so its signature of that moment; the rest of
/// its claims and its lifetime must be equal.
pub(super) fn same_text(one: &str, other: &str) -> bool {
    one == other || without_token_times(one) == without_token_times(other)
}

/// `text` with every JWT replaced by its header and claims, its times
/// replaced by its lifetime.
fn without_token_times(text: &str) -> String {
    let is_token_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("eyJ") {
        out.push_str(&rest[..start]);
        let candidate = &rest[start..];
        let end = candidate.find(|c| !is_token_char(c)).unwrap_or(candidate.len());
        let token = &candidate[..end];
        match token_without_times(token) {
            Some(readable) => out.push_str(&readable),
            None => out.push_str(token),
        }
        rest = &candidate[end..];
    }
    out.push_str(rest);
    out
}

fn token_without_times(token: &str) -> Option<String> {
    let parts: Vec<&str> = token.split('.').collect();
    let [header, claims, _signature] = parts.as_slice() else {
        return None;
    };
    let header: Value = serde_json::from_slice(&base64url_decode(header)?).ok()?;
    let mut claims: Value = serde_json::from_slice(&base64url_decode(claims)?).ok()?;
    let claims_object = claims.as_object_mut()?;
    let issued = claims_object.remove("iat").and_then(|value| value.as_i64());
    let expires = claims_object.remove("exp").and_then(|value| value.as_i64());
    claims_object.remove("auth_time");
    let lifetime = match (issued, expires) {
        (Some(issued), Some(expires)) => (expires - issued).to_string(),
        _ => "?".into(),
    };
    Some(format!("<token {header} {claims} lifetime {lifetime}>"))
}

fn base64url_decode(text: &str) -> Option<Vec<u8>> {
    let standard: String = text
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    xtask::ground::digest::base64_decode(&standard)
}
