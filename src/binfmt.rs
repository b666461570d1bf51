//! What kind of executable a file is, from its first bytes: a dynamically
//! linked ELF (its program interpreter, the dynamic loader, will honour
//! `LD_PRELOAD`), a static ELF (nothing will), a `#!` script, or something
//! else; where a dynamically linked program's own library search path
//! (`DT_RUNPATH`, `DT_RPATH`) lies, and a shared object's own name
//! (`DT_SONAME`); and whether the Go toolchain built it (its build-id
//! note). Pure functions over bytes, no I/O: the
//! caller reads the file.
//!
//! Usage:
//!
//! ```
//! use ovl::binfmt::{classify, classify_with_phdrs, phdr_range, HEAD_LEN};
//! # let file = b"#!/bin/sh -e\necho hi\n".to_vec();
//! # let read_at = |off: u64, len: usize| file.get(off as usize..off as usize + len).unwrap_or(&[]).to_vec();
//! let head = read_at(0, HEAD_LEN); // up to HEAD_LEN bytes; fewer if the file is shorter
//! let kind = match phdr_range(&head) {
//!     None => classify(&head),
//!     Some((offset, len)) => classify_with_phdrs(&head, &read_at(offset, len)),
//! };
//! ```
//!
//! The rules are the kernel's (`fs/binfmt_script.c`, `fs/binfmt_elf.c`): what
//! `execve` would refuse with `ENOEXEC` is [`Executable::Unknown`].

/// Bytes to read from the start of a file to classify it. The program
/// headers and the interpreter's name are within them in every ordinary
/// executable; [`phdr_range`] tells when the headers are not.
pub const HEAD_LEN: usize = 4096;

/// The kernel reads this much of a file for its `#!` line (`BINPRM_BUF_SIZE`).
const SHEBANG_BUF: usize = 256;

/// Largest program header table the kernel accepts (`ELF_MIN_ALIGN`).
const MAX_PHDR_TABLE: usize = 4096;

/// Longest interpreter name the kernel accepts (`PATH_MAX`).
const MAX_INTERP: u64 = 4096;

/// Largest dynamic section read (an ordinary one is a few hundred bytes).
const MAX_DYNAMIC: u64 = 64 * 1024;

/// Longest library search path read (Nix writes some of a few KiB).
const MAX_SEARCH_PATH: u64 = 32 * 1024;

const ET_EXEC: u64 = 2;
const ET_DYN: u64 = 3;
const PT_LOAD: u64 = 1;
const PT_DYNAMIC: u64 = 2;
const PT_INTERP: u64 = 3;
const PT_NOTE: u64 = 4;
/// Largest note segment read (a Go program's build-id note, near the
/// start of the file, takes about a hundred bytes).
const MAX_NOTES: u64 = 4096;

/// The Go toolchain's build-id note (`.note.go.buildid`): its owner, and
/// its type (`ELF_NOTE_GOBUILDID_TAG`).
const GO_NOTE_OWNER: &[u8] = b"Go";
const GO_NOTE_BUILD_ID: u64 = 4;

const DT_NULL: u64 = 0;
const DT_STRTAB: u64 = 5;
const DT_STRSZ: u64 = 10;
const DT_SONAME: u64 = 14;
const DT_RPATH: u64 = 15;
const DT_RUNPATH: u64 = 29;

/// The kinds of executable the overlay treats differently.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Executable {
    /// An ELF with a program interpreter (`PT_INTERP`). `interp` is its path
    /// up to the first NUL; empty when it lies beyond the bytes given.
    DynamicElf { interp: Vec<u8> },
    /// An ELF without a program interpreter: static, static-pie, or a bare
    /// shared object such as the dynamic loader itself run as a program.
    StaticElf,
    /// A `#!` script: the interpreter path and at most one argument, split
    /// exactly as the kernel splits the line.
    Script {
        interp: Vec<u8>,
        arg: Option<Vec<u8>>,
    },
    /// Anything else, including ELF files `execve` refuses (`ENOEXEC`).
    Unknown,
}

/// Classifies a file from its first bytes (up to [`HEAD_LEN`]). An ELF whose
/// program headers lie beyond `head` is [`Executable::Unknown`] here: call
/// [`phdr_range`] first and [`classify_with_phdrs`] when it says so.
pub fn classify(head: &[u8]) -> Executable {
    classify_with_phdrs(head, &[])
}

/// Where the program header table of the ELF file starting with `head` lies,
/// as `(file offset, length)`, when it is not inside `head`; `None` when
/// nothing more is needed (the table is inside `head`, or `head` is not an
/// ELF the kernel would run). The length is at most 4096 bytes.
pub fn phdr_range(head: &[u8]) -> Option<(u64, usize)> {
    let elf = ElfHeader::parse(head)?;
    let end = elf.phoff.checked_add(elf.table_len() as u64)?;
    if end <= head.len() as u64 {
        return None;
    }
    Some((elf.phoff, elf.table_len()))
}

/// Classifies a file from its first bytes and its program header table,
/// read from the range [`phdr_range`] gave. With an empty `phdrs` the table
/// is taken from `head`, as [`classify`] does.
pub fn classify_with_phdrs(head: &[u8], phdrs: &[u8]) -> Executable {
    if head.starts_with(b"#!") {
        return shebang(head);
    }
    match header_and_table(head, phdrs) {
        Some((elf, table)) => elf.kind(head, table),
        None => Executable::Unknown,
    }
}

/// The program header table of the ELF file starting with `head`: in
/// `phdrs` when that is not empty (read from [`phdr_range`]), else in `head`.
fn header_and_table<'a>(head: &'a [u8], phdrs: &'a [u8]) -> Option<(ElfHeader, &'a [u8])> {
    let elf = ElfHeader::parse(head)?;
    let table = if phdrs.is_empty() {
        let start = usize::try_from(elf.phoff).ok()?;
        head.get(start..start.checked_add(elf.table_len())?)?
    } else {
        phdrs.get(..elf.table_len())?
    };
    Some((elf, table))
}

/// Where the dynamic section (`PT_DYNAMIC`) of the ELF file starting with
/// `head` lies, as `(file offset, length)`, given its program header table
/// as [`classify_with_phdrs`] takes it. `None` when there is none (or it is
/// implausibly large). Only dynamically linked programs need reading it.
pub fn dynamic_range(head: &[u8], phdrs: &[u8]) -> Option<(u64, usize)> {
    let (elf, table) = header_and_table(head, phdrs)?;
    let seg = elf.segments(table).find(|s| s.p_type == PT_DYNAMIC)?;
    (seg.filesz > 0 && seg.filesz <= MAX_DYNAMIC).then_some((seg.offset, seg.filesz as usize))
}

/// Where the program's own library search path lies, read from its dynamic
/// section `dynamic` (read from [`dynamic_range`]): the string of
/// `DT_RUNPATH`, or of `DT_RPATH` when there is no `DT_RUNPATH` (the loader
/// then ignores `DT_RPATH`), as `(file offset, most bytes it can take)`; it
/// ends at its first NUL. `None` when the program has neither, or the
/// entries do not add up.
pub fn search_path_range(head: &[u8], phdrs: &[u8], dynamic: &[u8]) -> Option<(u64, usize)> {
    let tags = dynamic_tags(head, dynamic, &[DT_RUNPATH, DT_RPATH])?;
    string_range(head, phdrs, &tags, tags.values[0].or(tags.values[1])?)
}

/// Where a shared object's own name (`DT_SONAME`) lies, read from its
/// dynamic section `dynamic`, as [`search_path_range`] gives its string.
/// glibc's dynamic loader bears its name whatever its file is called (an
/// older `ld-2.31.so`, a copy).
pub fn soname_range(head: &[u8], phdrs: &[u8], dynamic: &[u8]) -> Option<(u64, usize)> {
    let tags = dynamic_tags(head, dynamic, &[DT_SONAME])?;
    string_range(head, phdrs, &tags, tags.values[0]?)
}

/// Values of a dynamic section's string table entries and of some tags.
struct DynamicTags {
    strtab: Option<u64>,
    strsz: Option<u64>,
    /// The value of each tag asked for, in the order asked.
    values: Vec<Option<u64>>,
}

/// Reads the dynamic section `dynamic` of the ELF file starting with `head`
/// up to its `DT_NULL`: the string table's address and size, and `wanted`'s values.
fn dynamic_tags(head: &[u8], dynamic: &[u8], wanted: &[u64]) -> Option<DynamicTags> {
    let elf = ElfHeader::parse(head)?;
    let f = Fields {
        bytes: dynamic,
        little: elf.little,
    };
    let word = if elf.wide { 8 } else { 4 };
    let mut tags = DynamicTags {
        strtab: None,
        strsz: None,
        values: vec![None; wanted.len()],
    };
    for at in (0..dynamic.len() / (2 * word)).map(|i| i * 2 * word) {
        let (tag, val) = (f.uint(at, word)?, f.uint(at + word, word)?);
        match tag {
            DT_NULL => break,
            DT_STRTAB => tags.strtab = Some(val),
            DT_STRSZ => tags.strsz = Some(val),
            _ => {}
        }
        if let Some(i) = wanted.iter().position(|&w| w == tag) {
            tags.values[i] = Some(val);
        }
    }
    Some(tags)
}

/// Where the string at `index` of the string table `tags` names lies, as
/// `(file offset, most bytes it can take)`: the table's address is turned
/// into a file offset through the `PT_LOAD` segment that holds it.
fn string_range(head: &[u8], phdrs: &[u8], tags: &DynamicTags, index: u64) -> Option<(u64, usize)> {
    let (elf, table) = header_and_table(head, phdrs)?;
    let addr = tags.strtab?.checked_add(index)?;
    if tags.strsz.is_some_and(|size| index >= size) {
        return None;
    }
    let seg = elf
        .segments(table)
        .find(|s| s.p_type == PT_LOAD && s.vaddr <= addr && addr - s.vaddr < s.filesz)?;
    let offset = seg.offset.checked_add(addr - seg.vaddr)?;
    let mut len = (seg.filesz - (addr - seg.vaddr)).min(MAX_SEARCH_PATH);
    if let Some(size) = tags.strsz {
        len = len.min(size - index);
    }
    Some((offset, len as usize))
}

/// Where the note segments (`PT_NOTE`) of the ELF file starting with `head`
/// lie, as `(file offset, length, alignment)`, given its program header
/// table as [`classify_with_phdrs`] takes it; at most 4 KiB of each.
pub fn note_ranges(head: &[u8], phdrs: &[u8]) -> Vec<(u64, usize, u64)> {
    let Some((elf, table)) = header_and_table(head, phdrs) else {
        return Vec::new();
    };
    elf.segments(table)
        .filter(|s| s.p_type == PT_NOTE && s.filesz > 0)
        .map(|s| (s.offset, s.filesz.min(MAX_NOTES) as usize, s.align))
        .collect()
}

/// Does the note segment `notes` (read from a range [`note_ranges`] gave,
/// with its alignment) of the ELF file starting with `head` hold the Go
/// toolchain's build-id note? A program built by it makes its system calls
/// with the instruction itself, not through the C library, even when it is
/// dynamically linked (cgo).
pub fn holds_go_build_id(head: &[u8], notes: &[u8], align: u64) -> bool {
    let Some(elf) = ElfHeader::parse(head) else {
        return false;
    };
    let f = Fields {
        bytes: notes,
        little: elf.little,
    };
    // Names and descriptions are padded to the segment's alignment (4, or
    // 8 for the 8-aligned notes of 64-bit files, such as GNU properties).
    let unit = if align == 8 { 8 } else { 4 };
    let pad = |n: usize| n.div_ceil(unit) * unit;
    let mut at = 0usize;
    while let (Some(namesz), Some(descsz), Some(kind)) =
        (f.uint(at, 4), f.uint(at + 4, 4), f.uint(at + 8, 4))
    {
        let (namesz, descsz) = (namesz as usize, descsz as usize);
        if namesz > notes.len() || descsz > notes.len() {
            return false;
        }
        let desc_at = at + 12 + pad(namesz);
        if desc_at + descsz > notes.len() {
            return false; // cut short
        }
        let owner = notes[at + 12..at + 12 + namesz].split(|&b| b == 0).next();
        if kind == GO_NOTE_BUILD_ID && owner == Some(GO_NOTE_OWNER) {
            return true;
        }
        at = desc_at + pad(descsz);
    }
    false
}

/// One program header's fields that locate its bytes.
struct Segment {
    p_type: u64,
    offset: u64,
    vaddr: u64,
    filesz: u64,
    align: u64,
}

/// Reads unsigned fields of either endianness; `None` past the end.
#[derive(Clone, Copy)]
struct Fields<'a> {
    bytes: &'a [u8],
    little: bool,
}

impl Fields<'_> {
    fn uint(self, at: usize, size: usize) -> Option<u64> {
        let b = self.bytes.get(at..at.checked_add(size)?)?;
        let fold = |v: u64, &byte: &u8| (v << 8) | u64::from(byte);
        Some(if self.little {
            b.iter().rev().fold(0, fold)
        } else {
            b.iter().fold(0, fold)
        })
    }
}

/// The parts of an ELF header that tell where the program headers are.
struct ElfHeader {
    wide: bool,
    little: bool,
    phoff: u64,
    phnum: usize,
}

impl ElfHeader {
    /// The header of an ELF the kernel would try to run: magic, class, data
    /// encoding, type `ET_EXEC` or `ET_DYN`, and a sane program header table.
    fn parse(head: &[u8]) -> Option<ElfHeader> {
        if !head.starts_with(b"\x7fELF") {
            return None;
        }
        let wide = match head.get(4)? {
            1 => false,
            2 => true,
            _ => return None,
        };
        let little = match head.get(5)? {
            1 => true,
            2 => false,
            _ => return None,
        };
        let f = Fields {
            bytes: head,
            little,
        };
        let e_type = f.uint(16, 2)?;
        if e_type != ET_EXEC && e_type != ET_DYN {
            return None;
        }
        let (phoff, phentsize, phnum) = if wide {
            (f.uint(32, 8)?, f.uint(54, 2)?, f.uint(56, 2)?)
        } else {
            (f.uint(28, 4)?, f.uint(42, 2)?, f.uint(44, 2)?)
        };
        let elf = ElfHeader {
            wide,
            little,
            phoff,
            phnum: phnum as usize,
        };
        let sane = phentsize as usize == elf.entry_len()
            && elf.phnum > 0
            && elf.table_len() <= MAX_PHDR_TABLE;
        sane.then_some(elf)
    }

    fn entry_len(&self) -> usize {
        if self.wide {
            56
        } else {
            32
        }
    }

    fn table_len(&self) -> usize {
        self.entry_len() * self.phnum
    }

    /// The entries of the program header table `table`; entries cut short
    /// are left out.
    fn segments<'a>(&'a self, table: &'a [u8]) -> impl Iterator<Item = Segment> + 'a {
        let f = Fields {
            bytes: table,
            little: self.little,
        };
        (0..self.phnum).filter_map(move |i| {
            let at = i * self.entry_len();
            let p_type = f.uint(at, 4)?;
            Some(if self.wide {
                Segment {
                    p_type,
                    offset: f.uint(at + 8, 8)?,
                    vaddr: f.uint(at + 16, 8)?,
                    filesz: f.uint(at + 32, 8)?,
                    align: f.uint(at + 48, 8)?,
                }
            } else {
                Segment {
                    p_type,
                    offset: f.uint(at + 4, 4)?,
                    vaddr: f.uint(at + 8, 4)?,
                    filesz: f.uint(at + 16, 4)?,
                    align: f.uint(at + 28, 4)?,
                }
            })
        })
    }

    /// Dynamic when a `PT_INTERP` entry is in `table`, else static.
    fn kind(&self, head: &[u8], table: &[u8]) -> Executable {
        let f = Fields {
            bytes: table,
            little: self.little,
        };
        for at in (0..self.phnum).map(|i| i * self.entry_len()) {
            if f.uint(at, 4) != Some(PT_INTERP) {
                continue;
            }
            let (offset, size) = if self.wide {
                (f.uint(at + 8, 8), f.uint(at + 32, 8))
            } else {
                (f.uint(at + 4, 4), f.uint(at + 16, 4))
            };
            let interp = match (offset, size) {
                (Some(offset), Some(size)) => interp_name(head, offset, size),
                _ => Vec::new(),
            };
            return Executable::DynamicElf { interp };
        }
        Executable::StaticElf
    }
}

/// The interpreter's path, up to its NUL; empty when outside `head`.
fn interp_name(head: &[u8], offset: u64, size: u64) -> Vec<u8> {
    if size > MAX_INTERP {
        return Vec::new();
    }
    let bytes = usize::try_from(offset)
        .ok()
        .and_then(|start| head.get(start..start.checked_add(size as usize)?));
    match bytes {
        Some(b) => b.split(|&c| c == 0).next().unwrap_or(b).to_vec(),
        None => Vec::new(),
    }
}

fn is_blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// The first index in `from..to` that is not a blank.
fn next_non_blank(buf: &[u8], from: usize, to: usize) -> Option<usize> {
    (from..to).find(|&i| !is_blank(buf[i]))
}

/// The first index in `from..to` that is a blank or a NUL.
fn next_terminator(buf: &[u8], from: usize, to: usize) -> Option<usize> {
    (from..to).find(|&i| is_blank(buf[i]) || buf[i] == 0)
}

/// The bytes before the first NUL.
fn c_str(b: &[u8]) -> Vec<u8> {
    b.split(|&c| c == 0).next().unwrap_or(b).to_vec()
}

/// Splits a `#!` line as the kernel's `load_script` does, quirks included:
/// only the first 256 bytes count (NUL-padded when the file is shorter);
/// the interpreter ends at the first blank or NUL; the rest of the line,
/// blanks trimmed from both ends, is one argument; a carriage return is
/// part of the line. A line cut at 256 bytes keeps its trailing blanks, and
/// one whose interpreter name is cut is refused.
fn shebang(head: &[u8]) -> Executable {
    let mut buf = [0u8; SHEBANG_BUF];
    let n = head.len().min(SHEBANG_BUF);
    buf[..n].copy_from_slice(&head[..n]);
    let buf_end = SHEBANG_BUF - 1;
    let mut end = match buf.iter().position(|&b| b == b'\n') {
        Some(newline) => newline,
        None => {
            let Some(first) = next_non_blank(&buf, 2, buf_end) else {
                return Executable::Unknown;
            };
            if next_terminator(&buf, first, buf_end).is_none() {
                return Executable::Unknown;
            }
            buf_end
        }
    };
    while end > 2 && is_blank(buf[end - 1]) {
        end -= 1;
    }
    let Some(name) = next_non_blank(&buf, 2, end) else {
        return Executable::Unknown;
    };
    let sep = next_terminator(&buf, name, end);
    let arg = match sep {
        Some(s) if buf[s] != 0 => next_non_blank(&buf, s, end),
        _ => None,
    };
    Executable::Script {
        interp: c_str(&buf[name..sep.unwrap_or(end)]),
        arg: arg.map(|a| c_str(&buf[a..end])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script(interp: &str, arg: Option<&str>) -> Executable {
        Executable::Script {
            interp: interp.as_bytes().to_vec(),
            arg: arg.map(|a| a.as_bytes().to_vec()),
        }
    }

    #[test]
    fn shebang_interpreter_and_one_argument() {
        assert_eq!(classify(b"#!/bin/sh\necho\n"), script("/bin/sh", None));
        assert_eq!(
            classify(b"#! /usr/bin/env  python3 -u \t\nx"),
            script("/usr/bin/env", Some("python3 -u"))
        );
        assert_eq!(classify(b"#!/bin/sh\t-e\n"), script("/bin/sh", Some("-e")));
        assert_eq!(classify(b"#!/bin/sh"), script("/bin/sh", None));
        assert_eq!(classify(b"#!awk -f\n"), script("awk", Some("-f")));
    }

    #[test]
    fn shebang_quirks_of_the_kernel() {
        // A carriage return belongs to the name (scripts saved with CRLF fail).
        assert_eq!(classify(b"#!/bin/sh\r\n"), script("/bin/sh\r", None));
        // A NUL ends the interpreter; nothing after it is an argument.
        assert_eq!(classify(b"#!/bin/sh\0 -x\n"), script("/bin/sh", None));
        // A NUL right after the blank gives an empty argument.
        assert_eq!(classify(b"#!/bin/sh \0x\n"), script("/bin/sh", Some("")));
        // Without a newline in the first 256 bytes, trailing blanks stay.
        assert_eq!(classify(b"#!/bin/sh -e  "), script("/bin/sh", Some("-e  ")));
    }

    #[test]
    fn shebang_long_lines_are_cut_at_256_bytes() {
        let mut long = b"#!/bin/sh ".to_vec();
        long.extend([b'x'; 400]);
        let arg = "x".repeat(SHEBANG_BUF - 1 - 10);
        assert_eq!(classify(&long), script("/bin/sh", Some(&arg)));
        let mut cut_name = b"#!/".to_vec();
        cut_name.extend([b'a'; 400]);
        assert_eq!(classify(&cut_name), Executable::Unknown);
    }

    #[test]
    fn shebang_without_interpreter_is_unknown() {
        for head in [&b"#!\n"[..], b"#!   \t\n"] {
            assert_eq!(classify(head), Executable::Unknown, "{head:?}");
        }
        // Without a newline the NUL padding is the interpreter's name: the
        // kernel tries to run "" and fails.
        assert_eq!(classify(b"#!"), script("", None));
        assert_eq!(classify(b"#! "), script("", None));
        assert_eq!(classify(b"# !/bin/sh\n"), Executable::Unknown);
        assert_eq!(classify(b""), Executable::Unknown);
    }

    /// A program header: type, file offset, file size.
    type Phdr = (u32, u64, u64);

    /// A minimal ELF file: header, program headers at `phoff`, then `data`
    /// wherever the program headers point.
    struct Elf {
        wide: bool,
        little: bool,
        e_type: u16,
        phoff: u64,
        phdrs: Vec<Phdr>,
    }

    impl Elf {
        fn new(wide: bool, little: bool, e_type: u16, phdrs: Vec<Phdr>) -> Elf {
            let phoff = if wide { 64 } else { 52 };
            Elf {
                wide,
                little,
                e_type,
                phoff,
                phdrs,
            }
        }

        fn entry_len(&self) -> usize {
            if self.wide {
                56
            } else {
                32
            }
        }

        fn put(&self, out: &mut Vec<u8>, at: usize, size: usize, v: u64) {
            if out.len() < at + size {
                out.resize(at + size, 0);
            }
            for i in 0..size {
                let shift = if self.little { i } else { size - 1 - i };
                out[at + i] = (v >> (8 * shift)) as u8;
            }
        }

        fn bytes(&self) -> Vec<u8> {
            let mut out = b"\x7fELF".to_vec();
            out.extend([
                if self.wide { 2 } else { 1 },
                if self.little { 1 } else { 2 },
                1,
            ]);
            self.put(&mut out, 16, 2, u64::from(self.e_type));
            let (phoff_at, phentsize_at) = if self.wide { (32, 54) } else { (28, 42) };
            self.put(
                &mut out,
                phoff_at,
                if self.wide { 8 } else { 4 },
                self.phoff,
            );
            self.put(&mut out, phentsize_at, 2, self.entry_len() as u64);
            self.put(&mut out, phentsize_at + 2, 2, self.phdrs.len() as u64);
            let table_end = self.phoff as usize + self.phdrs.len() * self.entry_len();
            out.resize(out.len().max(table_end), 0);
            for (i, &(p_type, offset, size)) in self.phdrs.iter().enumerate() {
                let at = self.phoff as usize + i * self.entry_len();
                self.put(&mut out, at, 4, u64::from(p_type));
                if self.wide {
                    self.put(&mut out, at + 8, 8, offset);
                    self.put(&mut out, at + 32, 8, size);
                } else {
                    self.put(&mut out, at + 4, 4, offset);
                    self.put(&mut out, at + 16, 4, size);
                }
            }
            out
        }

        /// The file with `interp` (NUL-terminated) written at `offset`.
        fn with_interp(&self, offset: usize, interp: &[u8]) -> Vec<u8> {
            let mut out = self.bytes();
            if out.len() < offset + interp.len() + 1 {
                out.resize(offset + interp.len() + 1, 0);
            }
            out[offset..offset + interp.len()].copy_from_slice(interp);
            out
        }
    }

    const LD: &[u8] = b"/lib64/ld-linux-x86-64.so.2";
    const PT_LOAD: u32 = 1;
    const PT_DYNAMIC: u32 = 2;

    fn dynamic(wide: bool, little: bool) -> Vec<u8> {
        let at = 400;
        let phdrs = vec![(PT_LOAD, 0, 0), (3, at as u64, LD.len() as u64 + 1)];
        Elf::new(wide, little, 3, phdrs).with_interp(at, LD)
    }

    #[test]
    fn elf_with_interpreter_is_dynamic_in_every_class_and_byte_order() {
        for wide in [true, false] {
            for little in [true, false] {
                assert_eq!(
                    classify(&dynamic(wide, little)),
                    Executable::DynamicElf {
                        interp: LD.to_vec()
                    },
                    "wide={wide} little={little}"
                );
            }
        }
    }

    /// One note entry (4-byte padding), in the given byte order.
    fn note(owner: &[u8], kind: u32, desc: &[u8], little: bool) -> Vec<u8> {
        let word = |v: u32| {
            if little {
                v.to_le_bytes()
            } else {
                v.to_be_bytes()
            }
        };
        let mut out = Vec::new();
        out.extend(word(owner.len() as u32 + 1));
        out.extend(word(desc.len() as u32));
        out.extend(word(kind));
        for part in [[owner, b"\0"].concat(), desc.to_vec()] {
            out.extend(&part);
            out.resize(out.len().next_multiple_of(4), 0);
        }
        out
    }

    /// A dynamically linked program with a note segment of `notes` at 600.
    fn with_notes(wide: bool, little: bool, notes: &[u8]) -> Vec<u8> {
        let phdrs = vec![
            (PT_LOAD, 0, 0),
            (3, 400, LD.len() as u64 + 1),
            (4, 600, notes.len() as u64),
        ];
        let mut file = Elf::new(wide, little, 3, phdrs).with_interp(400, LD);
        file.resize(600, 0);
        file.extend(notes);
        file
    }

    fn go_built(file: &[u8]) -> bool {
        note_ranges(file, &[])
            .into_iter()
            .any(|(offset, len, align)| {
                holds_go_build_id(file, &file[offset as usize..offset as usize + len], align)
            })
    }

    #[test]
    fn the_go_toolchains_build_id_note_is_found_among_others() {
        for wide in [true, false] {
            for little in [true, false] {
                let gnu = note(b"GNU", 3, &[7; 20], little);
                let go = note(b"Go", 4, b"abc/def", little);
                assert!(go_built(&with_notes(
                    wide,
                    little,
                    &[gnu.clone(), go].concat()
                )));
                assert!(
                    !go_built(&with_notes(wide, little, &gnu)),
                    "a C program's notes"
                );
                let other_owner = note(b"Gopher", 4, b"x", little);
                let other_kind = note(b"Go", 1, b"x", little);
                assert!(!go_built(&with_notes(
                    wide,
                    little,
                    &[other_owner, other_kind].concat()
                )));
            }
        }
        assert!(!go_built(&dynamic(true, true)), "no note segment");
    }

    #[test]
    fn cut_or_garbled_notes_are_not_the_go_toolchains() {
        let go = note(b"Go", 4, b"abc/def", true);
        for cut in 0..go.len() - 8 {
            assert!(
                !go_built(&with_notes(true, true, &go[..cut])),
                "cut at {cut}"
            );
        }
        let mut huge = go.clone();
        huge[0..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(!go_built(&with_notes(true, true, &huge)));
    }

    #[test]
    fn elf_without_interpreter_is_static_also_as_static_pie() {
        for (e_type, phdrs) in [
            (2, vec![(PT_LOAD, 0, 0)]),
            (3, vec![(PT_LOAD, 0, 0), (PT_DYNAMIC, 0, 0)]),
        ] {
            for wide in [true, false] {
                for little in [true, false] {
                    let elf = Elf::new(wide, little, e_type, phdrs.clone()).bytes();
                    assert_eq!(classify(&elf), Executable::StaticElf);
                }
            }
        }
    }

    #[test]
    fn elf_files_execve_refuses_are_unknown() {
        let relocatable = Elf::new(true, true, 1, vec![(PT_LOAD, 0, 0)]).bytes();
        assert_eq!(classify(&relocatable), Executable::Unknown);
        let no_phdrs = Elf::new(true, true, 2, vec![]).bytes();
        assert_eq!(classify(&no_phdrs), Executable::Unknown);
        let mut bad_class = dynamic(true, true);
        bad_class[4] = 3;
        assert_eq!(classify(&bad_class), Executable::Unknown);
        let mut bad_entry_size = dynamic(true, true);
        bad_entry_size[54] = 55;
        assert_eq!(classify(&bad_entry_size), Executable::Unknown);
        assert_eq!(classify(&dynamic(true, true)[..40]), Executable::Unknown);
        assert_eq!(classify(b"\x7fELF"), Executable::Unknown);
    }

    #[test]
    fn program_headers_beyond_the_head_are_read_separately() {
        let mut elf = Elf::new(true, true, 3, vec![(PT_LOAD, 0, 0), (3, 64, 28)]);
        elf.phoff = 10_000;
        let file = elf.with_interp(64, LD);
        let head = &file[..HEAD_LEN];
        assert_eq!(classify(head), Executable::Unknown);
        let (offset, len) = phdr_range(head).expect("the table is beyond the head");
        assert_eq!((offset, len), (10_000, 2 * 56));
        let phdrs = &file[offset as usize..offset as usize + len];
        assert_eq!(
            classify_with_phdrs(head, phdrs),
            Executable::DynamicElf {
                interp: LD.to_vec()
            }
        );
        assert_eq!(
            classify_with_phdrs(head, &phdrs[..50]),
            Executable::Unknown,
            "a short read is not enough"
        );
        assert_eq!(phdr_range(&dynamic(true, true)), None);
        assert_eq!(phdr_range(b"#!/bin/sh\n"), None);
    }

    #[test]
    fn interpreter_name_beyond_the_head_is_empty() {
        let at = 9_000;
        let phdrs = vec![(3, at as u64, LD.len() as u64 + 1)];
        let file = Elf::new(true, true, 3, phdrs).with_interp(at, LD);
        assert_eq!(
            classify(&file[..HEAD_LEN]),
            Executable::DynamicElf { interp: vec![] }
        );
    }

    #[test]
    fn hostile_headers_never_panic() {
        let mut far_table = dynamic(true, true);
        far_table[32..40].copy_from_slice(&(u64::MAX - 10).to_le_bytes());
        assert_eq!(phdr_range(&far_table), None);
        assert_eq!(classify(&far_table), Executable::Unknown);
        let mut far_interp = dynamic(true, true);
        let interp_entry = 64 + 56;
        far_interp[interp_entry + 8..interp_entry + 16]
            .copy_from_slice(&(u64::MAX - 3).to_le_bytes());
        assert_eq!(
            classify(&far_interp),
            Executable::DynamicElf { interp: vec![] }
        );
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for base in [dynamic(true, true), dynamic(false, false)] {
            for _ in 0..20_000 {
                let mut b = base.clone();
                for _ in 0..4 {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    let at = (seed as usize >> 8) % b.len();
                    b[at] = seed as u8;
                }
                let _ = classify(&b);
                let _ = dynamic_range(&b, &[]);
                let _ = search_path_range(&b, &[], &b[b.len() / 3..]);
                if let Some((_, len)) = phdr_range(&b) {
                    assert!(len <= MAX_PHDR_TABLE);
                    let _ = classify_with_phdrs(&b, &b[b.len() / 2..]);
                }
            }
        }
    }

    /// Classifies a real file the way a caller would.
    fn classify_file(path: &std::path::Path) -> Option<Executable> {
        let file = std::fs::read(path).ok()?;
        let head = &file[..file.len().min(HEAD_LEN)];
        Some(match phdr_range(head) {
            None => classify(head),
            Some((off, len)) => classify_with_phdrs(head, file.get(off as usize..)?.get(..len)?),
        })
    }

    #[test]
    fn real_programs_of_this_system() {
        let Some(ls) = classify_file("/bin/ls".as_ref()) else {
            return;
        };
        let Executable::DynamicElf { interp } = ls else {
            panic!("/bin/ls is dynamically linked: {ls:?}");
        };
        assert!(
            interp.starts_with(b"/lib") && interp.windows(3).any(|w| w == b"ld-"),
            "{}",
            String::from_utf8_lossy(&interp)
        );
        if let Some(ldconfig) = classify_file("/sbin/ldconfig".as_ref()) {
            // Debian's ldconfig is static-pie; elsewhere it may be dynamic.
            assert_ne!(ldconfig, Executable::Unknown);
        }
    }

    /// Builds `main(){}` with `gcc` and the given flags; `None` when that
    /// is not possible here (no compiler, no static C library).
    fn build_c(tag: &str, flags: &[&str]) -> Option<std::path::PathBuf> {
        let dir = std::env::temp_dir().join(format!("ovl-binfmt-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).ok()?;
        let src = dir.join("main.c");
        std::fs::write(&src, "int main(void) { return 0; }\n").ok()?;
        let out = dir.join("prog");
        let ok = std::process::Command::new("gcc")
            .args(flags)
            .arg("-o")
            .arg(&out)
            .arg(&src)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(out)
    }

    /// The search path of a real file, read as `preloadable` reads it.
    fn search_path_of_file(path: &std::path::Path) -> Option<Vec<u8>> {
        let file = std::fs::read(path).ok()?;
        let head = &file[..file.len().min(HEAD_LEN)];
        let phdrs = match phdr_range(head) {
            None => &[][..],
            Some((off, len)) => file.get(off as usize..)?.get(..len)?,
        };
        let (off, len) = dynamic_range(head, phdrs)?;
        let dynamic = file.get(off as usize..)?.get(..len)?;
        let (off, len) = search_path_range(head, phdrs, dynamic)?;
        let s = file.get(off as usize..)?.get(..len)?;
        Some(s.split(|&b| b == 0).next()?.to_vec())
    }

    #[test]
    fn search_paths_of_programs_built_with_runpath_and_rpath() {
        let runpath = "-Wl,-rpath,/opt/x/lib:$ORIGIN/../lib";
        for (tag, flags, want) in [
            ("none", &[][..], None),
            (
                "runpath",
                &[runpath, "-Wl,--enable-new-dtags"][..],
                Some("/opt/x/lib:$ORIGIN/../lib"),
            ),
            (
                "rpath",
                &["-Wl,-rpath,/opt/y", "-Wl,--disable-new-dtags"][..],
                Some("/opt/y"),
            ),
            (
                "m32",
                &["-m32", runpath][..],
                Some("/opt/x/lib:$ORIGIN/../lib"),
            ),
        ] {
            let Some(prog) = build_c(tag, flags) else {
                eprintln!("skipped {tag}: gcc cannot build it here");
                continue;
            };
            let got = search_path_of_file(&prog);
            let _ = std::fs::remove_dir_all(prog.parent().unwrap());
            assert_eq!(
                got.as_deref(),
                want.map(str::as_bytes),
                "{tag}: {:?}",
                got.as_ref().map(|g| String::from_utf8_lossy(g))
            );
        }
    }

    #[test]
    fn programs_built_static_and_static_pie() {
        for (tag, flags) in [
            ("static", &["-static"][..]),
            ("static-pie", &["-static-pie", "-fPIE"][..]),
            ("dynamic", &[][..]),
        ] {
            let Some(prog) = build_c(tag, flags) else {
                eprintln!("skipped {tag}: gcc cannot build it here");
                continue;
            };
            let kind = classify_file(&prog);
            let _ = std::fs::remove_dir_all(prog.parent().unwrap());
            match tag {
                "dynamic" => assert!(
                    matches!(kind, Some(Executable::DynamicElf { .. })),
                    "{kind:?}"
                ),
                _ => assert_eq!(kind, Some(Executable::StaticElf), "{tag}"),
            }
        }
    }
}
