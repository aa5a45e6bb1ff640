//! Reads just enough of an ELF shared object to catch, at build time, the two
//! wrong-platform errors Lambda reports only at import: a binary for another
//! architecture (`invalid ELF header`) and one that needs a newer glibc than
//! the runtime's (`GLIBC_2.28' not found`).
//! It also strips debug symbols from extension modules without moving a byte
//! the dynamic loader reads, so a slimmed layer cannot break at load time.
//!
//! - `read`: the ELF64 layout and its bounds-checked readers;
//! - `platform`: a binary's machine and glibc against the runtime's;
//! - `strip`: debug symbols out, the loaded bytes in place.

mod platform;
mod read;
mod strip;

pub use platform::{incompatible_binaries, inspect, ElfInfo};
pub use strip::{strip_symbols, Stripped};

#[cfg(test)]
mod tests;
