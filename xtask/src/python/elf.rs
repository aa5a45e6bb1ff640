//! Reads just enough of an ELF shared object to catch, at build time, the two
//! wrong-platform errors Lambda reports only at import: a binary for another
//! architecture (`invalid ELF header`) and one that needs a newer glibc than
//! the runtime's (`GLIBC_2.28' not found`).
//! It also strips debug symbols from extension modules without moving a byte
//! the dynamic loader reads, so a slimmed layer cannot break at load time.

use std::fs;
use std::path::Path;

use anyhow::{Context, Result};

use crate::facts::{Arch, Runtime};

const SHT_GNU_VERNEED: u32 = 0x6fff_fffe;
const ET_EXEC: u16 = 2;
const ET_DYN: u16 = 3;
const PN_XNUM: u16 = 0xffff;
const SHN_LORESERVE: u16 = 0xff00;
const SHN_XINDEX: u16 = 0xffff;
const SHT_RELA: u32 = 4;
const SHT_NOTE: u32 = 7;
const SHT_NOBITS: u32 = 8;
const SHT_REL: u32 = 9;
const SHT_DYNSYM: u32 = 11;
const SHT_GROUP: u32 = 17;
const SHT_SYMTAB_SHNDX: u32 = 18;
const SHF_ALLOC: u64 = 0x2;
const SHF_INFO_LINK: u64 = 0x40;
const EHDR_SIZE: usize = 64;
const PHDR_SIZE: usize = 56;
const SHDR_SIZE: usize = 64;
const SYM_SIZE: usize = 24;

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

// The readers take offsets read from the file: `None` past the end, never a panic.
fn u16_at(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(
        bytes.get(at..at.checked_add(2)?)?.try_into().ok()?,
    ))
}
fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        bytes.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}
fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        bytes.get(at..at.checked_add(8)?)?.try_into().ok()?,
    ))
}
fn c_str_at(bytes: &[u8], at: usize) -> Option<&str> {
    let tail = bytes.get(at..)?;
    let end = tail.iter().position(|&byte| byte == 0)?;
    std::str::from_utf8(&tail[..end]).ok()
}

/// What stripping a file removed, for the slim report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stripped {
    /// The whole stripped file.
    pub bytes: Vec<u8>,
    /// How many bytes smaller it is than the input; always more than zero.
    pub removed: u64,
}

/// One section header, as the file has it.
#[derive(Debug, Clone, Copy)]
struct Section {
    name: u32,
    kind: u32,
    flags: u64,
    offset: u64,
    size: u64,
    link: u32,
    info: u32,
    align: u64,
}

impl Section {
    fn read(bytes: &[u8], at: usize) -> Option<Section> {
        Some(Section {
            name: u32_at(bytes, at)?,
            kind: u32_at(bytes, at.checked_add(4)?)?,
            flags: u64_at(bytes, at.checked_add(8)?)?,
            offset: u64_at(bytes, at.checked_add(24)?)?,
            size: u64_at(bytes, at.checked_add(32)?)?,
            link: u32_at(bytes, at.checked_add(40)?)?,
            info: u32_at(bytes, at.checked_add(44)?)?,
            align: u64_at(bytes, at.checked_add(48)?)?,
        })
    }

    fn allocated(&self) -> bool {
        self.flags & SHF_ALLOC != 0
    }

    /// The bytes it occupies in a file of `len` bytes; empty for SHT_NOBITS,
    /// which takes memory but no file space. `None` when it runs past the end.
    fn file_range(&self, len: usize) -> Option<(usize, usize)> {
        let start = usize::try_from(self.offset).ok()?;
        let size = if self.kind == SHT_NOBITS {
            0
        } else {
            usize::try_from(self.size).ok()?
        };
        let end = start.checked_add(size)?;
        (end <= len).then_some((start, end))
    }

    /// Whether it is debug or link-time symbol information only: the loader
    /// never maps it (not SHF_ALLOC) and nothing at run time reads it.
    fn removable(&self, name: &str) -> bool {
        !self.allocated()
            && self.kind != SHT_NOTE
            && (name.starts_with(".debug")
                || name.starts_with(".zdebug")
                || name == ".symtab"
                || name == ".strtab")
    }
}

/// Drops debug sections and the link-time symbol table (`.symtab`/`.strtab`)
/// from an ELF64 little-endian shared object or executable.
///
/// `strip` rewrites the whole layout, and on wheels that auditwheel or patchelf
/// already rearranged it sometimes produces files the loader rejects ("ELF load
/// command address/offset not properly aligned"). So this never moves anything
/// the loader reads: every byte up to the end of the last mapped segment or
/// allocated section stays where it is, the program headers included. Only the
/// unmapped sections after that point are repacked, followed by a new section
/// header table. Removed sections inside the mapped prefix keep their bytes.
///
/// `None` when there is nothing to strip or the file is not one this can strip safely
/// (not ELF64 little-endian, not ET_DYN/ET_EXEC, malformed, or a kept section links to a removed one).
pub fn strip_symbols(bytes: &[u8]) -> Option<Stripped> {
    if bytes.len() < EHDR_SIZE || &bytes[..4] != b"\x7fELF" || bytes[4] != 2 || bytes[5] != 1 {
        return None;
    }
    let file_type = u16_at(bytes, 0x10)?;
    if file_type != ET_EXEC && file_type != ET_DYN {
        return None;
    }
    let phoff = usize::try_from(u64_at(bytes, 0x20)?).ok()?;
    let shoff = usize::try_from(u64_at(bytes, 0x28)?).ok()?;
    let phentsize = u16_at(bytes, 0x36)?;
    let phnum = u16_at(bytes, 0x38)?;
    let shentsize = u16_at(bytes, 0x3a)?;
    let shnum = u16_at(bytes, 0x3c)?;
    let shstrndx = u16_at(bytes, 0x3e)?;
    // Counts that spill into section 0 (PN_XNUM, e_shnum 0, SHN_XINDEX) are
    // rare enough that such files are simply left alone.
    if phnum == PN_XNUM || shnum == 0 || shnum >= SHN_LORESERVE || shstrndx >= shnum {
        return None;
    }
    if (phnum > 0 && usize::from(phentsize) != PHDR_SIZE) || usize::from(shentsize) != SHDR_SIZE {
        return None;
    }

    // The prefix the loader may read: the ELF header, the program header
    // table and every segment's file bytes.
    let phdrs_end = phoff.checked_add(usize::from(phnum).checked_mul(PHDR_SIZE)?)?;
    if phnum > 0 && phdrs_end > bytes.len() {
        return None;
    }
    let mut prefix = if phnum > 0 {
        EHDR_SIZE.max(phdrs_end)
    } else {
        EHDR_SIZE
    };
    for index in 0..usize::from(phnum) {
        let at = phoff.checked_add(index.checked_mul(PHDR_SIZE)?)?;
        let offset = usize::try_from(u64_at(bytes, at.checked_add(8)?)?).ok()?;
        let size = usize::try_from(u64_at(bytes, at.checked_add(32)?)?).ok()?;
        let end = offset.checked_add(size)?;
        if end > bytes.len() {
            return None;
        }
        prefix = prefix.max(end);
    }

    let table_end = shoff.checked_add(usize::from(shnum).checked_mul(SHDR_SIZE)?)?;
    if table_end > bytes.len() {
        return None;
    }
    let sections: Vec<Section> = (0..usize::from(shnum))
        .map(|index| Section::read(bytes, shoff.checked_add(index.checked_mul(SHDR_SIZE)?)?))
        .collect::<Option<_>>()?;
    let (names_start, names_end) = sections[usize::from(shstrndx)].file_range(bytes.len())?;
    let names = &bytes[names_start..names_end];
    let mut keep = Vec::with_capacity(sections.len());
    for (index, section) in sections.iter().enumerate() {
        let name = c_str_at(names, usize::try_from(section.name).ok()?)?;
        keep.push(index == 0 || index == usize::from(shstrndx) || !section.removable(name));
    }
    if keep.iter().all(|&kept| kept) {
        return None;
    }
    let mut new_index = Vec::with_capacity(sections.len());
    let mut next = 0u32;
    for &kept in &keep {
        new_index.push(kept.then_some(next));
        next += u32::from(kept);
    }
    // `None` for a link to a removed or nonexistent section; 0 stays 0 (no link).
    let remap = |old: u32| -> Option<u32> { *new_index.get(usize::try_from(old).ok()?)? };

    for (section, _) in sections.iter().zip(&keep).filter(|(_, &kept)| kept) {
        // Group members and extended symbol indexes are section numbers
        // inside the section's bytes, which this does not rewrite.
        if section.kind == SHT_GROUP || section.kind == SHT_SYMTAB_SHNDX {
            return None;
        }
        let (start, end) = section.file_range(bytes.len())?;
        if section.allocated() {
            prefix = prefix.max(end);
        }
        // The dynamic symbols name their sections by number and sit in the
        // mapped prefix, which must not change: every section they name
        // has to keep its number.
        if section.kind == SHT_DYNSYM {
            for symbol in bytes[start..end].chunks_exact(SYM_SIZE) {
                let shndx = u16_at(symbol, 6)?;
                if shndx == SHN_XINDEX
                    || (shndx != 0 && shndx < SHN_LORESERVE && remap(u32::from(shndx))? != u32::from(shndx))
                {
                    return None;
                }
            }
        }
    }

    // Kept sections past the prefix are repacked in file order; the ones
    // inside it stay put, and one straddling its end cannot be either.
    let mut out = bytes[..prefix].to_vec();
    let mut offsets: Vec<u64> = sections.iter().map(|section| section.offset).collect();
    let mut tail = Vec::new();
    for (index, section) in sections.iter().enumerate() {
        if !keep[index] || section.allocated() {
            continue;
        }
        let (start, end) = section.file_range(bytes.len())?;
        if end <= prefix {
            continue;
        }
        if start < prefix {
            return None;
        }
        tail.push((start, end, index));
    }
    tail.sort_unstable();
    for (start, end, index) in tail {
        let at = u64::try_from(out.len())
            .ok()?
            .checked_next_multiple_of(sections[index].align.max(1))?;
        // Never bigger than the input: this also bounds a malformed alignment.
        let at_usize = usize::try_from(at).ok().filter(|&at| at <= bytes.len())?;
        if at_usize.checked_add(end - start)? >= bytes.len() {
            return None;
        }
        out.resize(at_usize, 0);
        out.extend_from_slice(&bytes[start..end]);
        offsets[index] = at;
    }

    let new_shoff = out.len().checked_next_multiple_of(8)?;
    let new_shnum = keep.iter().filter(|&&kept| kept).count();
    if new_shoff.checked_add(new_shnum.checked_mul(SHDR_SIZE)?)? >= bytes.len() {
        return None;
    }
    out.resize(new_shoff, 0);
    for (index, section) in sections.iter().enumerate() {
        if !keep[index] {
            continue;
        }
        let at = shoff.checked_add(index.checked_mul(SHDR_SIZE)?)?;
        let mut header: [u8; SHDR_SIZE] = bytes.get(at..at.checked_add(SHDR_SIZE)?)?.try_into().ok()?;
        let info_is_link =
            section.kind == SHT_REL || section.kind == SHT_RELA || section.flags & SHF_INFO_LINK != 0;
        let info = if info_is_link {
            remap(section.info)?
        } else {
            section.info
        };
        header[24..32].copy_from_slice(&offsets[index].to_le_bytes());
        header[40..44].copy_from_slice(&remap(section.link)?.to_le_bytes());
        header[44..48].copy_from_slice(&info.to_le_bytes());
        out.extend_from_slice(&header);
    }
    let new_shstrndx = u16::try_from(remap(u32::from(shstrndx))?).ok()?;
    out[0x28..0x30].copy_from_slice(&u64::try_from(new_shoff).ok()?.to_le_bytes());
    out[0x3c..0x3e].copy_from_slice(&u16::try_from(new_shnum).ok()?.to_le_bytes());
    out[0x3e..0x40].copy_from_slice(&new_shstrndx.to_le_bytes());
    let removed = u64::try_from(bytes.len().checked_sub(out.len())?).ok()?;
    Some(Stripped { bytes: out, removed })
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
    use std::path::PathBuf;
    use std::process::Command;

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

    /// Runs a tool the strip tests compare against; a missing tool fails the
    /// test rather than skipping it, so a green run always means "checked".
    fn run(program: &str, args: &[&str]) -> String {
        let output = Command::new(program)
            .args(args)
            .output()
            .unwrap_or_else(|error| panic!("`{program}` is needed by this test and could not run: {error}"));
        assert!(
            output.status.success(),
            "{program} {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    /// A real shared library with debug information, built by gcc.
    fn debug_library() -> (tempfile::TempDir, PathBuf, Vec<u8>) {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("lib.c");
        fs::write(
            &source,
            "#include <stdlib.h>\n\
             static const char greeting[] = \"hello from a stripped library\";\n\
             static int counter = 7;\n\
             void *grab(size_t size) { return malloc(size); }\n\
             int answer(void) { return 42; }\n\
             int bump(void) { return ++counter; }\n\
             const char *hello(void) { return greeting; }\n",
        )
        .unwrap();
        let library = dir.path().join("lib.so");
        run(
            "gcc",
            &[
                "-g",
                "-O1",
                "-shared",
                "-fPIC",
                "-o",
                library.to_str().unwrap(),
                source.to_str().unwrap(),
            ],
        );
        let bytes = fs::read(&library).unwrap();
        (dir, library, bytes)
    }

    /// Every section header with its name.
    fn sections(bytes: &[u8]) -> Vec<(String, Section)> {
        let shoff = u64_at(bytes, 0x28).unwrap() as usize;
        let count = u16_at(bytes, 0x3c).unwrap() as usize;
        let all: Vec<Section> = (0..count)
            .map(|index| Section::read(bytes, shoff + index * SHDR_SIZE).unwrap())
            .collect();
        let names = all[u16_at(bytes, 0x3e).unwrap() as usize];
        let names = &bytes[names.offset as usize..(names.offset + names.size) as usize];
        all.into_iter()
            .map(|section| {
                (
                    c_str_at(names, section.name as usize).unwrap().to_string(),
                    section,
                )
            })
            .collect()
    }

    /// The end of everything the loader can read: segments and allocated sections.
    fn mapped_end(bytes: &[u8]) -> usize {
        let phoff = u64_at(bytes, 0x20).unwrap() as usize;
        let phnum = u16_at(bytes, 0x38).unwrap() as usize;
        let segments = (0..phnum).map(|index| {
            let at = phoff + index * PHDR_SIZE;
            u64_at(bytes, at + 8).unwrap() + u64_at(bytes, at + 32).unwrap()
        });
        let allocated = sections(bytes)
            .into_iter()
            .filter(|(_, section)| section.allocated() && section.kind != SHT_NOBITS)
            .map(|(_, section)| section.offset + section.size);
        segments.chain(allocated).max().unwrap() as usize
    }

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
        let path = dir.join(name);
        fs::write(&path, bytes).unwrap();
        path.to_str().unwrap().to_string()
    }

    #[test]
    fn strip_keeps_the_mapped_prefix_and_drops_debug_sections() {
        let (dir, _, original) = debug_library();
        let stripped = strip_symbols(&original).expect("a -g build has debug sections to strip");
        assert!(stripped.bytes.len() < original.len());
        assert_eq!(stripped.removed, (original.len() - stripped.bytes.len()) as u64);
        assert_eq!(inspect(&stripped.bytes), inspect(&original));

        let phoff = u64_at(&original, 0x20).unwrap() as usize;
        let phdrs = phoff..phoff + u16_at(&original, 0x38).unwrap() as usize * PHDR_SIZE;
        assert_eq!(&stripped.bytes[phdrs.clone()], &original[phdrs]);
        // Byte for byte up to the end of the mapped part, except the three
        // header fields that locate the section header table.
        let end = mapped_end(&original);
        assert!(end > EHDR_SIZE);
        assert_eq!(&stripped.bytes[..0x28], &original[..0x28]);
        assert_eq!(&stripped.bytes[0x30..0x3c], &original[0x30..0x3c]);
        assert_eq!(&stripped.bytes[EHDR_SIZE..end], &original[EHDR_SIZE..end]);

        let path = write(dir.path(), "stripped.so", &stripped.bytes);
        let listing = run("readelf", &["-S", "-W", &path]);
        for gone in [".debug_info", ".symtab", " .strtab"] {
            assert!(!listing.contains(gone), "{gone} survived:\n{listing}");
        }
        for kept in [".dynsym", ".dynstr", ".text", ".shstrtab"] {
            assert!(listing.contains(kept), "{kept} is missing:\n{listing}");
        }
        assert!(!listing.to_lowercase().contains("warning"), "{listing}");
    }

    #[test]
    fn stripped_library_loads_and_runs() {
        let (dir, library, original) = debug_library();
        let stripped = strip_symbols(&original).unwrap();
        let path = write(dir.path(), "stripped.so", &stripped.bytes);
        let output = run(
            "python3",
            &[
                "-c",
                "import ctypes,sys; print(ctypes.CDLL(sys.argv[1]).answer())",
                &path,
            ],
        );
        assert_eq!(output.trim(), "42");
        for view in ["-l", "-d"] {
            assert_eq!(
                run("readelf", &[view, "-W", &path]),
                run("readelf", &[view, "-W", library.to_str().unwrap()]),
                "readelf {view} differs"
            );
        }
    }

    #[test]
    fn strip_is_deterministic_and_idempotent() {
        let (_dir, _, original) = debug_library();
        let once = strip_symbols(&original).unwrap();
        assert_eq!(strip_symbols(&original), Some(once.clone()));
        assert_eq!(strip_symbols(&once.bytes), None, "nothing is left to strip");
    }

    #[test]
    fn strip_removes_as_much_as_binutils() {
        let (dir, _, original) = debug_library();
        let ours = strip_symbols(&original).unwrap();
        let removable: u64 = sections(&original)
            .iter()
            .filter(|(name, section)| section.removable(name))
            .map(|(_, section)| section.size)
            .sum();
        assert!(removable > 0);
        // Every byte of every removed section is gone (they all lie past the
        // mapped prefix in a gcc build), not just their headers.
        assert!(
            ours.removed >= removable,
            "removed {} of {removable}",
            ours.removed
        );
        let copy = write(dir.path(), "binutils.so", &original);
        run("strip", &["--strip-unneeded", &copy]);
        let theirs = fs::metadata(&copy).unwrap().len();
        // strip also rebuilds `.shstrtab`; that and alignment is all it may win by.
        assert!(
            ours.bytes.len() as u64 <= theirs + 512,
            "ours {} bytes, strip's {theirs}",
            ours.bytes.len()
        );
    }

    #[test]
    fn strip_refuses_a_kept_link_to_a_removed_section() {
        let (_dir, _, original) = debug_library();
        let all = sections(&original);
        let symtab = all.iter().position(|(name, _)| name == ".symtab").unwrap();
        let comment = all.iter().position(|(name, _)| name == ".comment").unwrap();
        let mut bytes = original.clone();
        let at = u64_at(&bytes, 0x28).unwrap() as usize + comment * SHDR_SIZE + 40;
        bytes[at..at + 4].copy_from_slice(&(symtab as u32).to_le_bytes());
        assert_eq!(strip_symbols(&bytes), None);
    }

    #[test]
    fn strip_leaves_malformed_files_alone() {
        let (_dir, _, original) = debug_library();
        // The section header table is at the end, so every truncation loses some of it.
        for len in 0..original.len() {
            assert_eq!(strip_symbols(&original[..len]), None, "truncated to {len}");
        }
        let patched = |at: usize, value: &[u8]| {
            let mut bytes = original.clone();
            bytes[at..at + value.len()].copy_from_slice(value);
            strip_symbols(&bytes)
        };
        assert_eq!(patched(4, &[1]), None, "32-bit");
        assert_eq!(patched(5, &[2]), None, "big-endian");
        assert_eq!(patched(0x10, &1u16.to_le_bytes()), None, "relocatable object");
        assert_eq!(patched(0x28, &(original.len() as u64 - 10).to_le_bytes()), None);
        assert_eq!(patched(0x28, &u64::MAX.to_le_bytes()), None);
        assert_eq!(patched(0x20, &u64::MAX.to_le_bytes()), None);
        assert_eq!(patched(0x38, &PN_XNUM.to_le_bytes()), None);
        assert_eq!(patched(0x3c, &0u16.to_le_bytes()), None);
        assert_eq!(patched(0x3e, &SHN_XINDEX.to_le_bytes()), None);

        // Extreme values in every field of every section and program header.
        let shoff = u64_at(&original, 0x28).unwrap() as usize;
        let phoff = u64_at(&original, 0x20).unwrap() as usize;
        let shnum = u16_at(&original, 0x3c).unwrap() as usize;
        let phnum = u16_at(&original, 0x38).unwrap() as usize;
        let fields = (0..shnum)
            .flat_map(|index| {
                (0..SHDR_SIZE)
                    .step_by(4)
                    .map(move |field| shoff + index * SHDR_SIZE + field)
            })
            .chain((0..phnum).flat_map(|index| {
                (0..PHDR_SIZE)
                    .step_by(4)
                    .map(move |field| phoff + index * PHDR_SIZE + field)
            }));
        let len = original.len() as u64;
        for at in fields {
            for value in [
                0,
                1,
                3,
                0xffff,
                0xffff_ffff,
                len - 1,
                len,
                len + 1,
                u64::MAX / 2,
                u64::MAX,
            ] {
                let mut bytes = original.clone();
                let width = if at + 8 <= bytes.len() { 8 } else { 4 };
                bytes[at..at + width].copy_from_slice(&value.to_le_bytes()[..width]);
                if let Some(stripped) = strip_symbols(&bytes) {
                    assert!(stripped.bytes.len() < bytes.len());
                    assert!(inspect(&stripped.bytes).is_some());
                }
            }
        }

        // Random bytes behind a valid ELF64 little-endian shared-object header.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut random = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..2000 {
            let len = 64 + (random() % 4096) as usize;
            let mut bytes: Vec<u8> = (0..len).map(|_| random() as u8).collect();
            bytes[..6].copy_from_slice(b"\x7fELF\x02\x01");
            bytes[0x10..0x12].copy_from_slice(&ET_DYN.to_le_bytes());
            if let Some(stripped) = strip_symbols(&bytes) {
                assert!(stripped.bytes.len() < bytes.len());
            }
        }
    }

    /// A 64-byte ELF64 little-endian shared-object header, the rest zero.
    fn bare_header() -> Vec<u8> {
        let mut bytes = vec![0u8; EHDR_SIZE];
        bytes[..6].copy_from_slice(b"\x7fELF\x02\x01");
        bytes[0x10..0x12].copy_from_slice(&ET_DYN.to_le_bytes());
        bytes[0x12..0x14].copy_from_slice(&62u16.to_le_bytes());
        bytes
    }

    #[test]
    fn offsets_near_the_end_of_the_address_space_are_no_panic() {
        for shoff in [u64::MAX, u64::MAX - 2, u64::MAX - 40, u64::MAX - 63, 1 << 63] {
            let mut bytes = bare_header();
            bytes[0x28..0x30].copy_from_slice(&shoff.to_le_bytes());
            bytes[0x3a..0x3c].copy_from_slice(&(SHDR_SIZE as u16).to_le_bytes());
            bytes[0x3c..0x3e].copy_from_slice(&1u16.to_le_bytes());
            let info = inspect(&bytes).expect("still an ELF header");
            assert_eq!(
                info,
                ElfInfo {
                    machine: 62,
                    max_glibc: None
                },
                "e_shoff {shoff:#x}"
            );
            assert_eq!(strip_symbols(&bytes), None, "e_shoff {shoff:#x}");
        }
        // A version-need chain whose offsets wrap around, and one that loops.
        let (_dir, _, original) = debug_library();
        let verneed = sections(&original)
            .into_iter()
            .find(|(_, section)| section.kind == SHT_GNU_VERNEED)
            .expect("gcc's library needs glibc versions")
            .1;
        let at = verneed.offset as usize;
        for (field, value) in [(8, u32::MAX), (12, u32::MAX), (8, u32::MAX - 7)] {
            let mut bytes = original.clone();
            bytes[at + field..at + field + 4].copy_from_slice(&value.to_le_bytes());
            let _ = inspect(&bytes);
        }
        let mut looping = original.clone();
        let header = u64_at(&original, 0x28).unwrap() as usize
            + sections(&original)
                .iter()
                .position(|(_, section)| section.kind == SHT_GNU_VERNEED)
                .unwrap()
                * SHDR_SIZE;
        // u32::MAX needs, each pointing at the next record 1 byte on.
        looping[header + 44..header + 48].copy_from_slice(&u32::MAX.to_le_bytes());
        looping[at + 12..at + 16].copy_from_slice(&1u32.to_le_bytes());
        let _ = inspect(&looping);
    }

    /// xorshift64: a fixed seed makes every run feed the same cases.
    struct Prng(u64);

    impl Prng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, bound: usize) -> usize {
            (self.next() % bound.max(1) as u64) as usize
        }
    }

    /// Random, truncated and mutated real libraries never make the reader or
    /// the rewriter panic, and what the rewriter returns is still an ELF file
    /// smaller than its input; the real library still round-trips.
    #[test]
    fn random_truncated_and_mutated_inputs_never_panic() {
        let (_dir, _, original) = debug_library();
        let stripped = strip_symbols(&original).unwrap();
        assert_eq!(inspect(&stripped.bytes), inspect(&original));
        assert_eq!(strip_symbols(&stripped.bytes), None);

        let all = sections(&original);
        let shoff = u64_at(&original, 0x28).unwrap() as usize;
        // Where the parsers look: the ELF header, the section headers and
        // the version-need records.
        let verneed = all
            .iter()
            .find(|(_, section)| section.kind == SHT_GNU_VERNEED)
            .unwrap()
            .1;
        let hot = [
            (0, EHDR_SIZE),
            (shoff, all.len() * SHDR_SIZE),
            (verneed.offset as usize, verneed.size as usize),
        ];
        let extremes = |len: u64| {
            [
                0,
                1,
                0xff,
                0xffff,
                0xffff_ffff,
                len - 1,
                len,
                len + 1,
                u64::MAX / 2,
                u64::MAX - 2,
                u64::MAX,
            ]
        };
        let mut random = Prng(0x2545_f491_4f6c_dd1d);
        let check = |bytes: &[u8]| {
            let _ = inspect(bytes);
            if let Some(stripped) = strip_symbols(bytes) {
                assert!(stripped.bytes.len() < bytes.len());
                assert_eq!(stripped.removed, (bytes.len() - stripped.bytes.len()) as u64);
                assert!(inspect(&stripped.bytes).is_some());
            }
        };
        for case in 0..3000 {
            let mut bytes = original.clone();
            match case % 4 {
                // Truncated, possibly after a mutation.
                0 => bytes.truncate(random.below(original.len())),
                // Random bytes in the places the parsers read.
                1 => {
                    let (start, len) = hot[random.below(hot.len())];
                    for _ in 0..1 + random.below(8) {
                        bytes[start + random.below(len)] = random.next() as u8;
                    }
                }
                // An extreme value in a field the parsers read.
                2 => {
                    let (start, len) = hot[random.below(hot.len())];
                    let at = (start + random.below(len)) & !3;
                    let value = extremes(original.len() as u64)[random.below(11)];
                    let width = if random.below(2) == 0 { 4 } else { 8 }.min(bytes.len() - at);
                    bytes[at..at + width].copy_from_slice(&value.to_le_bytes()[..width]);
                }
                // Random bytes anywhere.
                _ => {
                    for _ in 0..1 + random.below(32) {
                        let at = random.below(bytes.len());
                        bytes[at] = random.next() as u8;
                    }
                }
            }
            check(&bytes);
        }
        // Pure noise, short and long, behind an ELF magic or not.
        for _ in 0..500 {
            let len = random.below(2048);
            let mut bytes: Vec<u8> = (0..len).map(|_| random.next() as u8).collect();
            if len >= 6 && random.below(2) == 0 {
                bytes[..6].copy_from_slice(b"\x7fELF\x02\x01");
            }
            check(&bytes);
        }
    }
}
