use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::read::*;
use super::*;
use crate::facts::Arch;

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
