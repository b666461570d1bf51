//! What kind of executable a file is, from its first bytes: dynamic or
//! static ELF, `#!` script, or something else. Pure functions, no I/O.

/// Bytes to read from the start of a file to classify it.
pub const HEAD_LEN: usize = 4096;

/// The kinds of executable the overlay treats differently.
#[derive(Debug, PartialEq, Eq)]
pub enum Executable {
    DynamicElf {
        interp: Vec<u8>,
    },
    StaticElf,
    Script {
        interp: Vec<u8>,
        arg: Option<Vec<u8>>,
    },
    Unknown,
}

/// Classifies a file from its first bytes.
pub fn classify(head: &[u8]) -> Executable {
    if head.starts_with(b"#!") {
        return shebang(head);
    }
    if head.starts_with(b"\x7fELF") {
        return elf(head);
    }
    Executable::Unknown
}

fn shebang(head: &[u8]) -> Executable {
    let line = &head[2..];
    let end = line
        .iter()
        .position(|&b| b == b'\n')
        .unwrap_or(line.len().min(256));
    let line = &line[..end];
    let trim = |s: &[u8]| -> Vec<u8> {
        let s = s
            .iter()
            .position(|b| !b" \t".contains(b))
            .map_or(&s[s.len()..], |i| &s[i..]);
        let e = s
            .iter()
            .rposition(|b| !b" \t\r".contains(b))
            .map_or(0, |i| i + 1);
        s[..e].to_vec()
    };
    let line = trim(line);
    if line.is_empty() {
        return Executable::Unknown;
    }
    let split = line.iter().position(|b| b" \t".contains(b));
    match split {
        None => Executable::Script {
            interp: line,
            arg: None,
        },
        Some(i) => {
            let arg = trim(&line[i..]);
            Executable::Script {
                interp: line[..i].to_vec(),
                arg: (!arg.is_empty()).then_some(arg),
            }
        }
    }
}

fn elf(h: &[u8]) -> Executable {
    let is64 = h.get(4) == Some(&2);
    let le = h.get(5) != Some(&2);
    let rd = |off: usize, n: usize| -> Option<u64> {
        let b = h.get(off..off + n)?;
        let mut v = 0u64;
        for i in 0..n {
            let byte = if le { b[n - 1 - i] } else { b[i] };
            v = (v << 8) | byte as u64;
        }
        Some(v)
    };
    let (phoff, phentsize, phnum) = if is64 {
        (rd(32, 8), rd(54, 2), rd(56, 2))
    } else {
        (rd(28, 4), rd(42, 2), rd(44, 2))
    };
    let (Some(phoff), Some(phentsize), Some(phnum)) = (phoff, phentsize, phnum) else {
        return Executable::Unknown;
    };
    for i in 0..phnum {
        let at = (phoff + i * phentsize) as usize;
        let Some(ptype) = rd(at, 4) else {
            return Executable::Unknown;
        };
        if ptype == 3 {
            let (off, size) = if is64 {
                (rd(at + 8, 8), rd(at + 32, 8))
            } else {
                (rd(at + 4, 4), rd(at + 16, 4))
            };
            let interp = match (off, size) {
                (Some(o), Some(s)) => h
                    .get(o as usize..(o + s) as usize)
                    .map(|b| b.split(|&c| c == 0).next().unwrap_or(b).to_vec()),
                _ => None,
            };
            return Executable::DynamicElf {
                interp: interp.unwrap_or_default(),
            };
        }
    }
    Executable::StaticElf
}
