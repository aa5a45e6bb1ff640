//! AWS Signature Version 4 for the remote cache's S3 requests, on `sha2`
//! alone: an HMAC-SHA256, the canonical request and the `Authorization`
//! header. The body's own SHA-256 is signed (never `UNSIGNED-PAYLOAD`), and
//! a signed header is good for AWS's 15 minutes of clock skew only.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use crate::ground::digest::hex;
use crate::ground::utc::Utc;

/// The SHA-256 of no bytes: the signed body hash of a GET.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// RFC 2104's HMAC over SHA-256 (block size 64 bytes).
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| -> Vec<u8> { block.iter().map(|b| b ^ byte).collect() };
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

/// SigV4's URI encoding: every byte but `A-Z a-z 0-9 - _ . ~` as `%XX`, and
/// `/` too unless `keep_slash` (an S3 object key's path keeps its slashes).
pub fn uri_encode(text: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) || (keep_slash && byte == b'/') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// `20150830T123600Z`: the request time as `x-amz-date` spells it.
pub fn amz_date(at: SystemTime) -> String {
    let seconds = at.duration_since(UNIX_EPOCH).map_or(0, |since| since.as_secs());
    let t = Utc::from_unix(seconds);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year, t.month, t.day, t.hour, t.minute, t.second
    )
}

/// What signs a request: the credential scope's parts and the keys.
pub struct Signer<'a> {
    pub key_id: &'a str,
    pub secret: &'a str,
    pub region: &'a str,
    pub service: &'a str,
}

/// One request to sign. `path` and `query` are canonical already (encoded
/// with [`uri_encode`], the query's pairs sorted); `headers` are every
/// header to sign, by lowercase name, `host` and `x-amz-date` among them.
pub struct Request<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    pub headers: &'a BTreeMap<String, String>,
    pub payload_sha256: &'a str,
}

impl Signer<'_> {
    /// The `Authorization` header's value for `request`.
    pub fn authorization(&self, request: &Request) -> String {
        let amz_date = request.headers.get("x-amz-date").map_or("", String::as_str);
        let date = amz_date.get(..8).unwrap_or(amz_date);
        let scope = format!("{date}/{}/{}/aws4_request", self.region, self.service);
        let signed_headers: Vec<&str> = request.headers.keys().map(String::as_str).collect();
        let signed_headers = signed_headers.join(";");
        let canonical_headers: String = request
            .headers
            .iter()
            .map(|(name, value)| {
                format!(
                    "{name}:{}\n",
                    value.split_whitespace().collect::<Vec<_>>().join(" ")
                )
            })
            .collect();
        let canonical_request = format!(
            "{}\n{}\n{}\n{canonical_headers}\n{signed_headers}\n{}",
            request.method, request.path, request.query, request.payload_sha256
        );
        let string_to_sign = format!(
            "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
            hex(&Sha256::digest(canonical_request.as_bytes()))
        );
        let mut key = hmac_sha256(format!("AWS4{}", self.secret).as_bytes(), date.as_bytes());
        for part in [self.region, self.service, "aws4_request"] {
            key = hmac_sha256(&key, part.as_bytes());
        }
        let signature = hex(&hmac_sha256(&key, string_to_sign.as_bytes()));
        format!(
            "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={signature}",
            self.key_id
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect()
    }

    fn signature(authorization: &str) -> &str {
        authorization.rsplit("Signature=").next().unwrap()
    }

    #[test]
    fn hmac_matches_rfc_4231() {
        // RFC 4231, test cases 2 and 6 (a key longer than the block).
        assert_eq!(
            hex(&hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            hex(&hmac_sha256(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            )),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    /// `get-vanilla` of AWS's Signature Version 4 test suite.
    #[test]
    fn signs_the_test_suites_get_vanilla() {
        let signer = Signer {
            key_id: "AKIDEXAMPLE",
            secret: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            region: "us-east-1",
            service: "service",
        };
        let headers = headers(&[
            ("host", "example.amazonaws.com"),
            ("x-amz-date", "20150830T123600Z"),
        ]);
        let authorization = signer.authorization(&Request {
            method: "GET",
            path: "/",
            query: "",
            headers: &headers,
            payload_sha256: EMPTY_SHA256,
        });
        assert_eq!(
            authorization,
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders=host;x-amz-date, \
             Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        );
    }

    /// The GET and PUT Object examples of AWS's "Signature Calculations for
    /// the Authorization Header" (S3 API reference).
    #[test]
    fn signs_the_s3_documentations_examples() {
        let signer = Signer {
            key_id: "AKIAIOSFODNN7EXAMPLE",
            secret: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            region: "us-east-1",
            service: "s3",
        };
        let get = headers(&[
            ("host", "examplebucket.s3.amazonaws.com"),
            ("range", "bytes=0-9"),
            ("x-amz-content-sha256", EMPTY_SHA256),
            ("x-amz-date", "20130524T000000Z"),
        ]);
        let authorization = signer.authorization(&Request {
            method: "GET",
            path: "/test.txt",
            query: "",
            headers: &get,
            payload_sha256: EMPTY_SHA256,
        });
        assert_eq!(
            signature(&authorization),
            "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );

        let body_sha256 = hex(&Sha256::digest(b"Welcome to Amazon S3."));
        assert_eq!(
            body_sha256,
            "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072"
        );
        let put = headers(&[
            ("date", "Fri, 24 May 2013 00:00:00 GMT"),
            ("host", "examplebucket.s3.amazonaws.com"),
            ("x-amz-content-sha256", &body_sha256),
            ("x-amz-date", "20130524T000000Z"),
            ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
        ]);
        let authorization = signer.authorization(&Request {
            method: "PUT",
            path: &format!("/{}", uri_encode("test$file.text", true)),
            query: "",
            headers: &put,
            payload_sha256: &body_sha256,
        });
        assert!(authorization
            .contains("SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class,"));
        assert_eq!(
            signature(&authorization),
            "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"
        );
    }

    #[test]
    fn keys_and_dates_are_spelled_as_aws_wants() {
        assert_eq!(uri_encode("ci/profile/ab 12$", true), "ci/profile/ab%2012%24");
        assert_eq!(uri_encode("a/b~", false), "a%2Fb~");
        assert_eq!(uri_encode("ключ", true), "%D0%BA%D0%BB%D1%8E%D1%87");
        let at = |seconds: u64| amz_date(UNIX_EPOCH + std::time::Duration::from_secs(seconds));
        assert_eq!(at(0), "19700101T000000Z");
        assert_eq!(at(1_440_938_160), "20150830T123600Z");
        assert_eq!(at(951_782_400), "20000229T000000Z");
        assert_eq!(at(4_102_444_799), "20991231T235959Z");
    }
}
