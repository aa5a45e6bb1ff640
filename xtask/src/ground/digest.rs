//! SHA-256 in the two spellings the manifest carries: hex for people and
//! caches, base64 for Terraform's `filebase64sha256`; and base64 read back,
//! for the bodies a function hands API Gateway encoded.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

/// An incremental hash of a sequence of labelled parts, so that `("a", "bc")`
/// and `("ab", "c")` never collide.
#[derive(Default)]
pub struct KeyHasher(Sha256);

impl KeyHasher {
    pub fn part(&mut self, label: &str, value: impl AsRef<[u8]>) -> &mut Self {
        let value = value.as_ref();
        for field in [label.as_bytes(), value] {
            self.0.update((field.len() as u64).to_le_bytes());
            self.0.update(field);
        }
        self
    }

    pub fn hex(&self) -> String {
        hex(&self.0.clone().finalize())
    }
}

pub struct FileDigest {
    pub hex: String,
    pub base64: String,
}

pub fn file_sha256(path: &Path) -> Result<FileDigest> {
    let mut file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0; 1 << 16];
    loop {
        let read = match file.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => read,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err).with_context(|| format!("reading {}", path.display())),
        };
        hasher.update(&buffer[..read]);
    }
    let digest = hasher.finalize();
    Ok(FileDigest {
        hex: hex(&digest),
        base64: base64(&digest),
    })
}

pub fn bytes_sha256(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(DIGITS[(byte >> 4) as usize] as char);
        out.push(DIGITS[(byte & 0xf) as usize] as char);
    }
    out
}

/// Standard base64 with padding, as Terraform's `filebase64sha256` prints it.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let triple = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &byte)| acc | (byte as u32) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(triple >> (18 - 6 * i) & 0x3f) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Standard base64 read back: what a function's `isBase64Encoded` body
/// holds. Trailing padding may be left out, as some encoders do; `None`
/// for a character outside the alphabet or a length no encoder writes.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let digits = text.trim_end_matches('=').as_bytes();
    if digits.len() % 4 == 1 || text.len() - digits.len() > 2 {
        return None;
    }
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    for chunk in digits.chunks(4) {
        let mut quad = 0u32;
        for (i, &digit) in chunk.iter().enumerate() {
            quad |= base64_value(digit)? << (18 - 6 * i);
        }
        out.extend_from_slice(&quad.to_be_bytes()[1..chunk.len()]);
    }
    Some(out)
}

fn base64_value(digit: u8) -> Option<u32> {
    let value = match digit {
        b'A'..=b'Z' => digit - b'A',
        b'a'..=b'z' => digit - b'a' + 26,
        b'0'..=b'9' => digit - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return None,
    };
    Some(u32::from(value))
}

/// Whether `text` is a SHA-256 in lowercase hex, as digests are written.
pub fn is_sha256_hex(text: &str) -> bool {
    text.len() == 64
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (input, expected) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), expected);
        }
    }

    #[test]
    fn base64_reads_back_what_it_writes() {
        for input in [
            "",
            "f",
            "fo",
            "foo",
            "foob",
            "fooba",
            "foobar",
            "\u{0}\u{ff}\u{7f}é",
        ] {
            let encoded = base64(input.as_bytes());
            assert_eq!(base64_decode(&encoded).as_deref(), Some(input.as_bytes()));
            let unpadded = encoded.trim_end_matches('=');
            assert_eq!(base64_decode(unpadded).as_deref(), Some(input.as_bytes()));
        }
        assert_eq!(base64_decode("+/+/").unwrap(), [0xfb, 0xff, 0xbf]);
    }

    #[test]
    fn base64_refuses_what_no_encoder_writes() {
        for bad in ["Zm9v!", "Z", "Zm9vY", "Zg===", "Zm 9v"] {
            assert_eq!(base64_decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn sha256_of_abc() {
        assert_eq!(
            bytes_sha256(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn key_parts_are_delimited() {
        let mut one = KeyHasher::default();
        one.part("a", "bc");
        let mut two = KeyHasher::default();
        two.part("ab", "c");
        assert_ne!(one.hex(), two.hex());
    }
}
