//! A readable line diff for failure messages: `-` lines only in the first
//! text, `+` lines only in the second, a few unchanged lines of context.

/// Above this many cells (lines × lines) the diff falls back to showing the
/// first difference only, so a huge output cannot exhaust memory.
const MAX_CELLS: usize = 4_000_000;

/// Unchanged lines shown around each change.
const CONTEXT: usize = 2;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Same,
    Del,
    Add,
}

/// A diff of `a` against `b`, one line per line of text, prefixed with
/// `-`, `+` or a space; `…` marks skipped unchanged lines.
pub fn line_diff(a: &str, b: &str) -> String {
    let a: Vec<&str> = a.lines().collect();
    let b: Vec<&str> = b.lines().collect();
    if a.len().saturating_mul(b.len()) > MAX_CELLS {
        return first_difference(&a, &b);
    }
    let ops = edit_script(&a, &b);
    render(&ops, &a, &b)
}

/// The longest-common-subsequence edit script from `a` to `b`.
fn edit_script(a: &[&str], b: &[&str]) -> Vec<Op> {
    let (n, m) = (a.len(), b.len());
    // lcs[i][j] = length of the LCS of a[i..] and b[j..].
    let mut lcs = vec![0u32; (n + 1) * (m + 1)];
    let at = |i: usize, j: usize| i * (m + 1) + j;
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[at(i, j)] = if a[i] == b[j] {
                lcs[at(i + 1, j + 1)] + 1
            } else {
                lcs[at(i + 1, j)].max(lcs[at(i, j + 1)])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut ops = Vec::with_capacity(n + m);
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            ops.push(Op::Same);
            i += 1;
            j += 1;
        } else if i < n && (j == m || lcs[at(i + 1, j)] >= lcs[at(i, j + 1)]) {
            ops.push(Op::Del);
            i += 1;
        } else {
            ops.push(Op::Add);
            j += 1;
        }
    }
    ops
}

/// Prints the edit script, keeping `CONTEXT` unchanged lines around changes.
fn render(ops: &[Op], a: &[&str], b: &[&str]) -> String {
    let near_change = |k: usize| {
        let lo = k.saturating_sub(CONTEXT);
        let hi = (k + CONTEXT + 1).min(ops.len());
        ops[lo..hi].iter().any(|&op| op != Op::Same)
    };
    let (mut i, mut j) = (0, 0);
    let mut out = String::new();
    let mut skipping = false;
    for (k, &op) in ops.iter().enumerate() {
        let line = match op {
            Op::Same => {
                i += 1;
                j += 1;
                if !near_change(k) {
                    if !skipping {
                        out.push_str("  …\n");
                    }
                    skipping = true;
                    continue;
                }
                format!("  {}", a[i - 1])
            }
            Op::Del => {
                i += 1;
                format!("- {}", a[i - 1])
            }
            Op::Add => {
                j += 1;
                format!("+ {}", b[j - 1])
            }
        };
        skipping = false;
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// For outputs too large to diff: the first line that differs, with its
/// line number.
fn first_difference(a: &[&str], b: &[&str]) -> String {
    let k = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    format!(
        "  (outputs too large to diff: {} and {} lines; first difference at line {})\n- {}\n+ {}\n",
        a.len(),
        b.len(),
        k + 1,
        a.get(k).unwrap_or(&"<end of output>"),
        b.get(k).unwrap_or(&"<end of output>")
    )
}
