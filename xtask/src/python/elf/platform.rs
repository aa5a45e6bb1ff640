//! Whether a binary can load on the runtime's platform: its machine and
//! the newest glibc symbol version it needs, against the runtime's
//! architecture and glibc.

use std::fs;
use std::path::Path;

use anyhow::{Context, Result};

use super::read::{c_str_at, u16_at, u32_at, u64_at, SHT_GNU_VERNEED};
use crate::facts::{Arch, Runtime};

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

/// The newest `GLIBC_x.y` named by the version-need sections. Every offset
/// and count comes from the file, so all arithmetic is checked (`None` on
/// overflow or a read past the end), and the walk visits at most one record
/// per 16 bytes of the file, so a chain that loops ends too.
fn glibc_needed(bytes: &[u8]) -> Option<(u32, u32)> {
    let section_offset = usize::try_from(u64_at(bytes, 0x28)?).ok()?;
    let entry_size = usize::from(u16_at(bytes, 0x3a)?);
    let count = usize::from(u16_at(bytes, 0x3c)?);
    let section = |index: usize| -> Option<(u32, usize, u32, u32)> {
        let base = section_offset.checked_add(index.checked_mul(entry_size)?)?;
        Some((
            u32_at(bytes, base.checked_add(4)?)?,
            usize::try_from(u64_at(bytes, base.checked_add(24)?)?).ok()?,
            u32_at(bytes, base.checked_add(40)?)?,
            u32_at(bytes, base.checked_add(44)?)?,
        ))
    };
    // Verneed and Vernaux records are 16 bytes each: a well-formed file never
    // needs more steps than this.
    let mut budget = bytes.len() / 16;
    let mut step = || -> Option<()> {
        budget = budget.checked_sub(1)?;
        Some(())
    };
    let field = |at: usize, plus: usize| at.checked_add(plus);
    let mut newest = None;
    for index in 0..count {
        let (kind, offset, link, entries) = section(index)?;
        if kind != SHT_GNU_VERNEED {
            continue;
        }
        let (_, strings, _, _) = section(usize::try_from(link).ok()?)?;
        let mut need = offset;
        for _ in 0..entries {
            step()?;
            let aux_count = u16_at(bytes, field(need, 2)?)?;
            let mut aux = need.checked_add(usize::try_from(u32_at(bytes, field(need, 8)?)?).ok()?)?;
            for _ in 0..aux_count {
                step()?;
                let name_at = strings.checked_add(usize::try_from(u32_at(bytes, field(aux, 8)?)?).ok()?)?;
                let name = c_str_at(bytes, name_at)?;
                if let Some(version) = name.strip_prefix("GLIBC_").and_then(parse_version) {
                    newest = newest.max(Some(version));
                }
                aux = aux.checked_add(usize::try_from(u32_at(bytes, field(aux, 12)?)?).ok()?)?;
            }
            let next = usize::try_from(u32_at(bytes, field(need, 12)?)?).ok()?;
            if next == 0 {
                break;
            }
            need = need.checked_add(next)?;
        }
    }
    newest
}

fn parse_version(text: &str) -> Option<(u32, u32)> {
    let (major, minor) = text.split_once('.')?;
    let minor = minor.split('.').next()?;
    Some((major.parse().ok()?, minor.parse().ok()?))
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
