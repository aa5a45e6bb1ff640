//! A function's check against its licence policy: every distribution its
//! layers ship (attached, bundled or in its image), judged by the licence
//! its `METADATA` declares. A denied licence, or one outside `allow`, is an
//! error naming the distribution, its licence, its layer and the function;
//! a licence that is not an SPDX expression is listed as unknown (an error
//! where `allow` is set: it cannot be shown to be allowed).

use crate::config::licenses::{LicensePolicy, Verdict};
use crate::config::manifest::Package;

/// What the policy finds in a function's distributions: (errors, warnings).
pub fn check(
    function: &str,
    policy: &LicensePolicy,
    layers: &[(&str, &[Package])],
) -> (Vec<String>, Vec<String>) {
    let mut errors = Vec::new();
    let mut unknown = Vec::new();
    for (layer, packages) in layers {
        let mut sorted: Vec<&Package> = packages.iter().collect();
        sorted.sort_by(|a, b| a.name.cmp(&b.name));
        for package in sorted {
            let license = package.license.as_deref();
            let shown = license.map_or("no licence".to_string(), |license| format!("`{license}`"));
            let what = format!("`{}` {} (layer `{layer}`)", package.name, package.version);
            match policy.judge(license) {
                Verdict::Allowed => {}
                Verdict::Denied(ids) => errors.push(format!(
                    "licence: {what} of function `{function}` is {shown}, which needs {} denied by `licenses.deny`",
                    ids.join(", ")
                )),
                Verdict::NotAllowed => errors.push(format!(
                    "licence: {what} of function `{function}` is {shown}, not in `licenses.allow`"
                )),
                Verdict::Unknown if policy.allow.is_some() => errors.push(format!(
                    "licence: {what} of function `{function}` declares {shown}, not an SPDX expression `licenses.allow` can judge"
                )),
                Verdict::Unknown => unknown.push(format!("{what}: {shown}")),
            }
        }
    }
    let warnings = if unknown.is_empty() || policy.is_empty() {
        Vec::new()
    } else {
        vec![format!(
            "licences the policy cannot judge (not SPDX expressions): {}",
            unknown.join("; ")
        )]
    };
    (errors, warnings)
}
