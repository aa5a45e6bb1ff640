//! Reading ELF64 little-endian files: the layout's constants, the
//! bounds-checked readers every offset taken from a file goes through, and
//! a section header.

pub(super) const SHT_GNU_VERNEED: u32 = 0x6fff_fffe;
pub(super) const ET_EXEC: u16 = 2;
pub(super) const ET_DYN: u16 = 3;
pub(super) const PN_XNUM: u16 = 0xffff;
pub(super) const SHN_LORESERVE: u16 = 0xff00;
pub(super) const SHN_XINDEX: u16 = 0xffff;
pub(super) const SHT_RELA: u32 = 4;
pub(super) const SHT_NOTE: u32 = 7;
pub(super) const SHT_NOBITS: u32 = 8;
pub(super) const SHT_REL: u32 = 9;
pub(super) const SHT_DYNSYM: u32 = 11;
pub(super) const SHT_GROUP: u32 = 17;
pub(super) const SHT_SYMTAB_SHNDX: u32 = 18;
pub(super) const SHF_ALLOC: u64 = 0x2;
pub(super) const SHF_INFO_LINK: u64 = 0x40;
pub(super) const EHDR_SIZE: usize = 64;
pub(super) const PHDR_SIZE: usize = 56;
pub(super) const SHDR_SIZE: usize = 64;
pub(super) const SYM_SIZE: usize = 24;

// The readers take offsets read from the file: `None` past the end, never a panic.
pub(super) fn u16_at(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(
        bytes.get(at..at.checked_add(2)?)?.try_into().ok()?,
    ))
}
pub(super) fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        bytes.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}
pub(super) fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        bytes.get(at..at.checked_add(8)?)?.try_into().ok()?,
    ))
}
pub(super) fn c_str_at(bytes: &[u8], at: usize) -> Option<&str> {
    let tail = bytes.get(at..)?;
    let end = tail.iter().position(|&byte| byte == 0)?;
    std::str::from_utf8(&tail[..end]).ok()
}

/// One section header, as the file has it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Section {
    pub(super) name: u32,
    pub(super) kind: u32,
    pub(super) flags: u64,
    pub(super) offset: u64,
    pub(super) size: u64,
    pub(super) link: u32,
    pub(super) info: u32,
    pub(super) align: u64,
}

impl Section {
    pub(super) fn read(bytes: &[u8], at: usize) -> Option<Section> {
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

    pub(super) fn allocated(&self) -> bool {
        self.flags & SHF_ALLOC != 0
    }

    /// The bytes it occupies in a file of `len` bytes; empty for SHT_NOBITS,
    /// which takes memory but no file space. `None` when it runs past the end.
    pub(super) fn file_range(&self, len: usize) -> Option<(usize, usize)> {
        let start = usize::try_from(self.offset).ok()?;
        let size = if self.kind == SHT_NOBITS {
            0
        } else {
            usize::try_from(self.size).ok()?
        };
        let end = start.checked_add(size)?;
        (end <= len).then_some((start, end))
    }
}
