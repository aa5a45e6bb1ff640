//! An image reference, `[registry/]repository[:tag][@sha256:…]`, read as
//! the distribution project's reference grammar reads it
//! (https://github.com/distribution/reference): the first component is a
//! registry when it holds a `.` or a `:` or is `localhost`, otherwise the
//! reference is Docker Hub's (`docker.io`, one-component names under
//! `library/`).

use std::fmt;

use crate::ground::digest::is_sha256_hex;

/// Docker Hub's registry, as references name it, and where its API is.
pub const DOCKER_HUB: &str = "docker.io";
const DOCKER_HUB_API: &str = "registry-1.docker.io";

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    /// `public.ecr.aws`, `127.0.0.1:5000`, `docker.io`.
    pub registry: String,
    /// `lambda/python`.
    pub repository: String,
    pub tag: Option<String>,
    /// `sha256:<64 hex>`.
    pub digest: Option<String>,
}

impl Reference {
    /// Reads `text`; the error says what is wrong, for a message that also
    /// names the key it came from.
    pub fn parse(text: &str) -> Result<Reference, String> {
        let shape =
            "an image reference is `registry/repository:tag` or `registry/repository@sha256:<64 hex digits>`";
        if text.is_empty() || text.trim() != text {
            return Err(format!("`{text}` is not an image reference: {shape}"));
        }
        let (name, digest) = match text.split_once('@') {
            Some((name, digest)) => {
                let hex = digest.strip_prefix("sha256:").unwrap_or("");
                if !is_sha256_hex(hex) {
                    return Err(format!(
                        "`{text}` has the digest `{digest}`, which is not `sha256:` and 64 lowercase hex digits"
                    ));
                }
                (name, Some(digest.to_string()))
            }
            None => (text, None),
        };
        // A tag follows the last `:` after the last `/` (a registry's port comes before it).
        let last_slash = name.rfind('/').map_or(0, |at| at + 1);
        let (name, tag) = match name[last_slash..].rfind(':') {
            Some(at) => {
                let at = last_slash + at;
                (&name[..at], Some(name[at + 1..].to_string()))
            }
            None => (name, None),
        };
        if let Some(tag) = &tag {
            let valid = !tag.is_empty()
                && tag.len() <= 128
                && !tag.starts_with(['.', '-'])
                && tag
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
            if !valid {
                return Err(format!(
                    "`{text}` has the tag `{tag}`: a tag is up to 128 letters, digits, `_`, `.` and `-`, not starting with `.` or `-`"
                ));
            }
        }
        let (registry, repository) = match name.split_once('/') {
            Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => {
                (first.to_string(), rest.to_string())
            }
            _ if name.contains('/') => (DOCKER_HUB.to_string(), name.to_string()),
            _ => (DOCKER_HUB.to_string(), format!("library/{name}")),
        };
        let host_ok = !registry.is_empty()
            && registry
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
        if !host_ok {
            return Err(format!(
                "`{text}` names the registry `{registry}`, which is not a host name"
            ));
        }
        let component_ok = |part: &str| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'))
                && part.starts_with(|c: char| c.is_ascii_alphanumeric())
                && part.ends_with(|c: char| c.is_ascii_alphanumeric())
        };
        if repository.len() > 255 || !repository.split('/').all(component_ok) {
            return Err(format!(
                "`{text}` names the repository `{repository}`: its parts are lowercase letters and digits, joined by `.`, `_` or `-`, separated by `/`"
            ));
        }
        Ok(Reference {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// The same image by `digest` alone: `registry/repository@sha256:…`.
    pub fn at_digest(&self, digest: &str) -> Reference {
        Reference {
            tag: None,
            digest: Some(digest.to_string()),
            ..self.clone()
        }
    }

    /// A repository under this one's: `<registry>/<path>/<name>`.
    pub fn child(&self, name: &str) -> Reference {
        Reference {
            repository: format!("{}/{name}", self.repository),
            tag: None,
            digest: None,
            ..self.clone()
        }
    }

    /// What the registry's API is asked for: the digest when there is
    /// one, else the tag, else `latest`.
    pub fn target(&self) -> &str {
        self.digest.as_deref().or(self.tag.as_deref()).unwrap_or("latest")
    }

    /// The host the API is at.
    pub fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB {
            DOCKER_HUB_API
        } else {
            &self.registry
        }
    }

    /// A registry on this machine is spoken to over plain HTTP, as Docker
    /// does; every other only over HTTPS.
    pub fn is_loopback(&self) -> bool {
        let host = match self.registry.strip_prefix('[') {
            Some(rest) => rest.split(']').next().unwrap_or(""),
            None => self.registry.split(':').next().unwrap_or(""),
        };
        matches!(host, "127.0.0.1" | "localhost" | "::1")
    }

    /// `https://host` or, on this machine, `http://host`.
    pub fn base_url(&self) -> String {
        let scheme = if self.is_loopback() { "http" } else { "https" };
        format!("{scheme}://{}", self.api_host())
    }

    /// Whether the registry is Amazon ECR's (`<account>.dkr.ecr.<region>.amazonaws.com`),
    /// and its region.
    pub fn ecr_region(&self) -> Option<&str> {
        let host = self
            .registry
            .strip_suffix(".amazonaws.com")
            .or_else(|| self.registry.strip_suffix(".amazonaws.com.cn"))?;
        let mut parts = host.split('.');
        let (account, dkr, ecr, region) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        let ecr = ecr == "ecr" || ecr == "ecr-fips";
        (account.len() == 12
            && account.bytes().all(|b| b.is_ascii_digit())
            && dkr == "dkr"
            && ecr
            && parts.next().is_none())
        .then_some(region)
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn references_are_read_as_the_distribution_grammar_reads_them() {
        let aws = Reference::parse("public.ecr.aws/lambda/python:3.11").unwrap();
        assert_eq!(
            (
                aws.registry.as_str(),
                aws.repository.as_str(),
                aws.tag.as_deref(),
                aws.digest.as_deref()
            ),
            ("public.ecr.aws", "lambda/python", Some("3.11"), None)
        );
        assert_eq!(aws.to_string(), "public.ecr.aws/lambda/python:3.11");
        assert_eq!(aws.base_url(), "https://public.ecr.aws");
        let local = Reference::parse(&format!("127.0.0.1:5000/base/python:3.11@{DIGEST}")).unwrap();
        assert_eq!(local.registry, "127.0.0.1:5000");
        assert_eq!(local.target(), DIGEST);
        assert!(local.is_loopback());
        assert_eq!(local.base_url(), "http://127.0.0.1:5000");
        assert_eq!(
            local.at_digest(DIGEST).to_string(),
            format!("127.0.0.1:5000/base/python@{DIGEST}")
        );
        let hub = Reference::parse("python").unwrap();
        assert_eq!(
            (hub.registry.as_str(), hub.repository.as_str()),
            ("docker.io", "library/python")
        );
        assert_eq!(hub.api_host(), "registry-1.docker.io");
        assert_eq!(hub.target(), "latest");
        assert!(Reference::parse("localhost/app").unwrap().is_loopback());
        assert!(!Reference::parse("127.0.0.1.example.com/app")
            .unwrap()
            .is_loopback());
        let ecr = Reference::parse("123456789012.dkr.ecr.eu-west-1.amazonaws.com/team").unwrap();
        assert_eq!(ecr.ecr_region(), Some("eu-west-1"));
        assert_eq!(
            ecr.child("sms").to_string(),
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/sms"
        );
        assert_eq!(aws.ecr_region(), None);
    }

    #[test]
    fn bad_references_say_what_is_wrong() {
        for (text, says) in [
            ("", "not an image reference"),
            ("repo@sha256:abc", "64 lowercase hex"),
            ("repo@md5:0123", "64 lowercase hex"),
            ("registry.io/Repo:1", "lowercase"),
            ("registry.io/repo:-x", "tag"),
            ("registry.io//repo", "lowercase"),
            ("reg istry.io/repo", "not a host name"),
        ] {
            let err = Reference::parse(text).unwrap_err();
            assert!(err.contains(says), "{text}: {err}");
        }
    }
}
