//! Stripping debug symbols from an extension module without moving a byte
//! the dynamic loader reads, so that a slimmed layer cannot break at load
//! time.

use super::read::{
    c_str_at, u16_at, u64_at, Section, EHDR_SIZE, ET_DYN, ET_EXEC, PHDR_SIZE, PN_XNUM, SHDR_SIZE,
    SHF_INFO_LINK, SHN_LORESERVE, SHN_XINDEX, SHT_DYNSYM, SHT_GROUP, SHT_NOTE, SHT_REL, SHT_RELA,
    SHT_SYMTAB_SHNDX, SYM_SIZE,
};

/// What stripping a file removed, for the slim report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stripped {
    /// The whole stripped file.
    pub bytes: Vec<u8>,
    /// How many bytes smaller it is than the input; always more than zero.
    pub removed: u64,
}

impl Section {
    /// Whether it is debug or link-time symbol information only: the loader
    /// never maps it (not SHF_ALLOC) and nothing at run time reads it.
    pub(super) fn removable(&self, name: &str) -> bool {
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
    let header = Header::read(bytes)?;
    let segments_end = segments_end(bytes, &header)?;
    let sections = Sections::read(bytes, &header)?;
    let prefix = sections.mapped_prefix(bytes, segments_end)?;
    let (mut out, offsets) = sections.repack(bytes, prefix)?;
    sections.write_table(&mut out, bytes, &header, &offsets)?;
    let removed = u64::try_from(bytes.len().checked_sub(out.len())?).ok()?;
    Some(Stripped { bytes: out, removed })
}

/// The fields of the ELF header that stripping reads and rewrites.
struct Header {
    phoff: usize,
    shoff: usize,
    phnum: u16,
    shnum: u16,
    shstrndx: u16,
}

impl Header {
    /// `None` unless an ELF64 little-endian ET_EXEC or ET_DYN whose tables
    /// have the entry sizes this reads.
    fn read(bytes: &[u8]) -> Option<Header> {
        if bytes.len() < EHDR_SIZE || &bytes[..4] != b"\x7fELF" || bytes[4] != 2 || bytes[5] != 1 {
            return None;
        }
        let file_type = u16_at(bytes, 0x10)?;
        if file_type != ET_EXEC && file_type != ET_DYN {
            return None;
        }
        let header = Header {
            phoff: usize::try_from(u64_at(bytes, 0x20)?).ok()?,
            shoff: usize::try_from(u64_at(bytes, 0x28)?).ok()?,
            phnum: u16_at(bytes, 0x38)?,
            shnum: u16_at(bytes, 0x3c)?,
            shstrndx: u16_at(bytes, 0x3e)?,
        };
        let phentsize = u16_at(bytes, 0x36)?;
        let shentsize = u16_at(bytes, 0x3a)?;
        // Counts that spill into section 0 (PN_XNUM, e_shnum 0, SHN_XINDEX) are
        // rare enough that such files are simply left alone.
        let (phnum, shnum) = (header.phnum, header.shnum);
        if phnum == PN_XNUM || shnum == 0 || shnum >= SHN_LORESERVE || header.shstrndx >= shnum {
            return None;
        }
        if (phnum > 0 && usize::from(phentsize) != PHDR_SIZE) || usize::from(shentsize) != SHDR_SIZE {
            return None;
        }
        Some(header)
    }
}

/// The end of the prefix the loader may read: the ELF header, the program
/// header table and every segment's file bytes.
fn segments_end(bytes: &[u8], header: &Header) -> Option<usize> {
    let phnum = usize::from(header.phnum);
    let phdrs_end = header.phoff.checked_add(phnum.checked_mul(PHDR_SIZE)?)?;
    if phnum > 0 && phdrs_end > bytes.len() {
        return None;
    }
    let mut prefix = if phnum > 0 {
        EHDR_SIZE.max(phdrs_end)
    } else {
        EHDR_SIZE
    };
    for index in 0..phnum {
        let at = header.phoff.checked_add(index.checked_mul(PHDR_SIZE)?)?;
        let offset = usize::try_from(u64_at(bytes, at.checked_add(8)?)?).ok()?;
        let size = usize::try_from(u64_at(bytes, at.checked_add(32)?)?).ok()?;
        let end = offset.checked_add(size)?;
        if end > bytes.len() {
            return None;
        }
        prefix = prefix.max(end);
    }
    Some(prefix)
}

/// The section header table, which sections stay, and their numbers after.
struct Sections {
    all: Vec<Section>,
    keep: Vec<bool>,
    /// The new number of each kept section.
    new_index: Vec<Option<u32>>,
}

impl Sections {
    /// `None` when the table is malformed or nothing is removable: section
    /// 0 and the section names always stay.
    fn read(bytes: &[u8], header: &Header) -> Option<Sections> {
        let shnum = usize::from(header.shnum);
        let table_end = header.shoff.checked_add(shnum.checked_mul(SHDR_SIZE)?)?;
        if table_end > bytes.len() {
            return None;
        }
        let all: Vec<Section> = (0..shnum)
            .map(|index| Section::read(bytes, header.shoff.checked_add(index.checked_mul(SHDR_SIZE)?)?))
            .collect::<Option<_>>()?;
        let names_index = usize::from(header.shstrndx);
        let (names_start, names_end) = all[names_index].file_range(bytes.len())?;
        let names = &bytes[names_start..names_end];
        let mut keep = Vec::with_capacity(all.len());
        for (index, section) in all.iter().enumerate() {
            let name = c_str_at(names, usize::try_from(section.name).ok()?)?;
            keep.push(index == 0 || index == names_index || !section.removable(name));
        }
        if keep.iter().all(|&kept| kept) {
            return None;
        }
        let mut new_index = Vec::with_capacity(all.len());
        let mut next = 0u32;
        for &kept in &keep {
            new_index.push(kept.then_some(next));
            next += u32::from(kept);
        }
        Some(Sections { all, keep, new_index })
    }

    /// `None` for a link to a removed or nonexistent section; 0 stays 0 (no link).
    fn remap(&self, old: u32) -> Option<u32> {
        *self.new_index.get(usize::try_from(old).ok()?)?
    }

    fn kept(&self) -> impl Iterator<Item = (usize, &Section)> {
        self.all.iter().enumerate().filter(|(index, _)| self.keep[*index])
    }

    /// What must not move: the segments and every kept allocated section.
    /// `None` when a kept section cannot survive the renumbering.
    fn mapped_prefix(&self, bytes: &[u8], segments_end: usize) -> Option<usize> {
        let mut prefix = segments_end;
        for (_, section) in self.kept() {
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
                        || (shndx != 0
                            && shndx < SHN_LORESERVE
                            && self.remap(u32::from(shndx))? != u32::from(shndx))
                    {
                        return None;
                    }
                }
            }
        }
        Some(prefix)
    }

    /// The prefix as it is, then the kept sections past it repacked in file
    /// order; the ones inside it stay put, and one straddling its end cannot
    /// be either. Every section's offset in the result.
    fn repack(&self, bytes: &[u8], prefix: usize) -> Option<(Vec<u8>, Vec<u64>)> {
        let mut out = bytes[..prefix].to_vec();
        let mut offsets: Vec<u64> = self.all.iter().map(|section| section.offset).collect();
        let mut tail = Vec::new();
        for (index, section) in self.kept() {
            if section.allocated() {
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
                .checked_next_multiple_of(self.all[index].align.max(1))?;
            // Never bigger than the input: this also bounds a malformed alignment.
            let at_usize = usize::try_from(at).ok().filter(|&at| at <= bytes.len())?;
            if at_usize.checked_add(end - start)? >= bytes.len() {
                return None;
            }
            out.resize(at_usize, 0);
            out.extend_from_slice(&bytes[start..end]);
            offsets[index] = at;
        }
        Some((out, offsets))
    }

    /// Appends the kept section headers, with their new offsets and links,
    /// and points the ELF header at them.
    fn write_table(&self, out: &mut Vec<u8>, bytes: &[u8], header: &Header, offsets: &[u64]) -> Option<()> {
        let new_shoff = out.len().checked_next_multiple_of(8)?;
        let new_shnum = self.keep.iter().filter(|&&kept| kept).count();
        if new_shoff.checked_add(new_shnum.checked_mul(SHDR_SIZE)?)? >= bytes.len() {
            return None;
        }
        out.resize(new_shoff, 0);
        for (index, section) in self.kept() {
            let at = header.shoff.checked_add(index.checked_mul(SHDR_SIZE)?)?;
            let mut entry: [u8; SHDR_SIZE] = bytes.get(at..at.checked_add(SHDR_SIZE)?)?.try_into().ok()?;
            let info_is_link =
                section.kind == SHT_REL || section.kind == SHT_RELA || section.flags & SHF_INFO_LINK != 0;
            let info = if info_is_link {
                self.remap(section.info)?
            } else {
                section.info
            };
            entry[24..32].copy_from_slice(&offsets[index].to_le_bytes());
            entry[40..44].copy_from_slice(&self.remap(section.link)?.to_le_bytes());
            entry[44..48].copy_from_slice(&info.to_le_bytes());
            out.extend_from_slice(&entry);
        }
        let new_shstrndx = u16::try_from(self.remap(u32::from(header.shstrndx))?).ok()?;
        out[0x28..0x30].copy_from_slice(&u64::try_from(new_shoff).ok()?.to_le_bytes());
        out[0x3c..0x3e].copy_from_slice(&u16::try_from(new_shnum).ok()?.to_le_bytes());
        out[0x3e..0x40].copy_from_slice(&new_shstrndx.to_le_bytes());
        Some(())
    }
}
