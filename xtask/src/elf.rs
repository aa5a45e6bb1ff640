//! Reads just enough of an ELF shared object to catch, at build time, the two
//! wrong-platform errors Lambda reports only at import: a binary for another
//! architecture (`invalid ELF header`) and one that needs a newer glibc than
//! the runtime's (`GLIBC_2.28' not found`).

use std::fs;
use std::path::Path;

use anyhow::{Context, Result};

use crate::facts::{Arch, Runtime};

const SHT_GNU_VERNEED: u32 = 0x6fff_fffe;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElfInfo {
    /// `e_machine`; 0 for a 32-bit or big-endian file, which Lambda cannot load.
    pub machine: u16,
    /// The newest `GLIBC_x.y` symbol version the file needs.
    pub max_glibc: Option<(u32, u32)>,
}

/// `None` when `bytes` is not an ELF file.
pub fn inspect(bytes: &[u8]) -> Option<ElfInfo> {
    if bytes.len() < 64 || &bytes[..4] != b"\x7fELF" {
        return None;
    }
    if bytes[4] != 2 || bytes[5] != 1 {
        return Some(ElfInfo {
            machine: 0,
            max_glibc: None,
        });
    }
    let machine = u16_at(bytes, 18)?;
    Some(ElfInfo {
        machine,
        max_glibc: glibc_needed(bytes),
    })
}

fn glibc_needed(bytes: &[u8]) -> Option<(u32, u32)> {
    let section_offset = u64_at(bytes, 0x28)? as usize;
    let entry_size = u16_at(bytes, 0x3a)? as usize;
    let count = u16_at(bytes, 0x3c)? as usize;
    let section = |index: usize| -> Option<(u32, usize, usize, u32, u32)> {
        let base = section_offset.checked_add(index.checked_mul(entry_size)?)?;
        Some((
            u32_at(bytes, base + 4)?,
            u64_at(bytes, base + 24)? as usize,
            u64_at(bytes, base + 32)? as usize,
            u32_at(bytes, base + 40)?,
            u32_at(bytes, base + 44)?,
        ))
    };
    let mut newest = None;
    for index in 0..count {
        let (kind, offset, _size, link, entries) = section(index)?;
        if kind != SHT_GNU_VERNEED {
            continue;
        }
        let (_, strings, _, _, _) = section(link as usize)?;
        let mut need = offset;
        for _ in 0..entries {
            let aux_count = u16_at(bytes, need + 2)?;
            let mut aux = need + u32_at(bytes, need + 8)? as usize;
            for _ in 0..aux_count {
                let name = c_str_at(bytes, strings + u32_at(bytes, aux + 8)? as usize)?;
                if let Some(version) = name.strip_prefix("GLIBC_").and_then(parse_version) {
                    newest = newest.max(Some(version));
                }
                aux += u32_at(bytes, aux + 12)? as usize;
            }
            let next = u32_at(bytes, need + 12)? as usize;
            if next == 0 {
                break;
            }
            need += next;
        }
    }
    newest
}

fn parse_version(text: &str) -> Option<(u32, u32)> {
    let (major, minor) = text.split_once('.')?;
    let minor = minor.split('.').next()?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

fn u16_at(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}
fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}
fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
}
fn c_str_at(bytes: &[u8], at: usize) -> Option<&str> {
    let tail = bytes.get(at..)?;
    let end = tail.iter().position(|&byte| byte == 0)?;
    std::str::from_utf8(&tail[..end]).ok()
}

/// Every ELF file under `dir` that the runtime could not load, one line each.
pub fn incompatible_binaries(dir: &Path, runtime: Runtime, arch: Arch) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        for item in fs::read_dir(&current).with_context(|| format!("listing {}", current.display()))? {
            let item = item?;
            let path = item.path();
            if item.file_type()?.is_dir() {
                stack.push(path);
                continue;
            }
            let name = item.file_name();
            let name = name.to_string_lossy();
            if !(name.ends_with(".so") || name.contains(".so.")) {
                continue;
            }
            let bytes = fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            let Some(info) = inspect(&bytes) else {
                continue;
            };
            let relative = path.strip_prefix(dir).unwrap_or(&path).display().to_string();
            if info.machine != arch.elf_machine() {
                problems.push(format!(
                    "{relative} is not a {} binary (ELF machine {})",
                    arch.machine(),
                    info.machine
                ));
            } else if let Some(glibc) = info.max_glibc.filter(|&glibc| glibc > runtime.glibc) {
                problems.push(format!(
                    "{relative} needs GLIBC_{}.{} but {} runs on glibc {}.{}",
                    glibc.0, glibc.1, runtime.name, runtime.glibc.0, runtime.glibc.1
                ));
            }
        }
    }
    problems.sort();
    Ok(problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_test_binary() {
        // The test executable itself is an ELF file linked against the host's glibc.
        let bytes = fs::read(std::env::current_exe().unwrap()).unwrap();
        let info = inspect(&bytes).expect("the test binary is ELF");
        assert_eq!(Some(info.machine), Arch::host().map(Arch::elf_machine));
        let glibc = info.max_glibc.expect("a Rust binary needs some glibc version");
        assert!(((2, 2)..(3, 0)).contains(&glibc), "{glibc:?}");
    }

    #[test]
    fn not_elf() {
        assert_eq!(inspect(b"#!/bin/sh\n"), None);
        assert_eq!(inspect(&[0u8; 100]), None);
    }
}
