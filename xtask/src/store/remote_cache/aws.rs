//! The standard AWS environment as the remote cache and the ECR registry
//! client read it: static credentials from `AWS_ACCESS_KEY_ID` and
//! `AWS_SECRET_ACCESS_KEY` (and `AWS_SESSION_TOKEN`), else the profile
//! `AWS_PROFILE` names (`default`) in the shared credentials and config
//! files; the region from `AWS_REGION`, `AWS_DEFAULT_REGION` or the
//! profile; an S3 endpoint override. The secret and the token are only
//! ever used to sign, never shown.

use std::collections::BTreeMap;
use std::path::PathBuf;

/// Static AWS credentials and where they came from (for messages: the
/// secret and the token never appear in one).
pub struct Credentials {
    pub key_id: String,
    pub secret: String,
    pub token: Option<String>,
    /// `AWS_ACCESS_KEY_ID from the environment`, `profile ci of …/credentials`.
    pub source: String,
}

impl Credentials {
    /// `AKIA…MPLE`: enough to tell keys apart, too little to use.
    pub fn short_key_id(&self) -> String {
        let chars: Vec<char> = self.key_id.chars().collect();
        if chars.len() >= 12 {
            let (head, tail): (String, String) = (
                chars[..4].iter().collect(),
                chars[chars.len() - 4..].iter().collect(),
            );
            format!("{head}…{tail}")
        } else {
            format!("{}…", chars.iter().take(2).collect::<String>())
        }
    }
}

/// The standard AWS environment: endpoint, region and static credentials.
pub struct AwsEnv {
    pub endpoint: Option<String>,
    pub region: String,
    pub credentials: Option<Credentials>,
}

impl AwsEnv {
    pub fn read() -> AwsEnv {
        let var = |name: &str| std::env::var(name).ok().filter(|value| !value.trim().is_empty());
        let home = var("HOME").map(PathBuf::from);
        let profile = var("AWS_PROFILE").unwrap_or_else(|| "default".to_string());
        let config_file = var("AWS_CONFIG_FILE")
            .map(PathBuf::from)
            .or_else(|| home.as_ref().map(|home| home.join(".aws/config")));
        let credentials_file = var("AWS_SHARED_CREDENTIALS_FILE")
            .map(PathBuf::from)
            .or_else(|| home.as_ref().map(|home| home.join(".aws/credentials")));
        let config_section = if profile == "default" {
            "default".to_string()
        } else {
            format!("profile {profile}")
        };
        let read_section = |file: &Option<PathBuf>, section: &str| {
            file.as_ref()
                .and_then(|path| std::fs::read_to_string(path).ok())
                .map(|text| ini_section(&text, section))
                .unwrap_or_default()
        };
        let config = read_section(&config_file, &config_section);
        let from_file = read_section(&credentials_file, &profile);
        let from_env = match (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")) {
            (Some(key_id), Some(secret)) => Some(Credentials {
                key_id,
                secret,
                token: var("AWS_SESSION_TOKEN"),
                source: "AWS_ACCESS_KEY_ID from the environment".to_string(),
            }),
            _ => None,
        };
        let credentials = from_env.or_else(|| {
            // The credentials file first, then static keys in the config file.
            [(&from_file, &credentials_file), (&config, &config_file)]
                .into_iter()
                .find_map(|(section, file)| {
                    Some(Credentials {
                        key_id: section.get("aws_access_key_id")?.clone(),
                        secret: section.get("aws_secret_access_key")?.clone(),
                        token: section.get("aws_session_token").cloned(),
                        source: format!(
                            "profile `{profile}` of {}",
                            file.as_ref()
                                .map_or("?".into(), |path| path.display().to_string())
                        ),
                    })
                })
        });
        let region = var("AWS_REGION")
            .or_else(|| var("AWS_DEFAULT_REGION"))
            .or_else(|| config.get("region").cloned())
            .unwrap_or_else(|| crate::facts::S3_DEFAULT_REGION.to_string());
        let endpoint = var("AWS_ENDPOINT_URL_S3")
            .or_else(|| var("AWS_ENDPOINT_URL"))
            .or_else(|| config.get("endpoint_url").cloned());
        AwsEnv {
            endpoint,
            region: region.trim().to_string(),
            credentials,
        }
    }
}

/// The `key = value` pairs of `[section]` in an INI file as AWS writes them.
fn ini_section(text: &str, section: &str) -> BTreeMap<String, String> {
    let mut values = BTreeMap::new();
    let mut inside = false;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|rest| rest.strip_suffix(']')) {
            inside = name.trim() == section;
            continue;
        }
        if inside {
            if let Some((key, value)) = line.split_once('=') {
                values.insert(key.trim().to_lowercase(), value.trim().to_string());
            }
        }
    }
    values
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_are_read() {
        let text = "[default]\nregion = eu-west-1\n\n[profile ci]\naws_access_key_id = AK\n";
        assert_eq!(ini_section(text, "default")["region"], "eu-west-1");
        assert_eq!(ini_section(text, "profile ci")["aws_access_key_id"], "AK");
        assert!(ini_section(text, "ci").is_empty());
    }
}
