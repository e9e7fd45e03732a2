//! A line diff (longest common subsequence; the texts are a few dozen lines) printed like `diff -u`: `-` lines
//! are rtpengine's (the reference), `+` lines rtprelay's, three lines of context around each change.

/// One line of a diff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    Same(String),
    /// Only in the reference (rtpengine).
    Removed(String),
    /// Only in the implementation under test (rtprelay).
    Added(String),
}

/// The diff from `a` to `b`.
pub fn diff(a: &str, b: &str) -> Vec<Line> {
    let a: Vec<&str> = a.lines().collect();
    let b: Vec<&str> = b.lines().collect();
    // lcs[i][j] = length of the LCS of a[i..] and b[j..].
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::new();
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            out.push(Line::Same(a[i].to_owned()));
            i += 1;
            j += 1;
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            out.push(Line::Removed(a[i].to_owned()));
            i += 1;
        } else {
            out.push(Line::Added(b[j].to_owned()));
            j += 1;
        }
    }
    out
}

/// The changed lines only, as `-text` / `+text`.
pub fn changes(d: &[Line]) -> Vec<String> {
    d.iter()
        .filter_map(|l| match l {
            Line::Same(_) => None,
            Line::Removed(s) => Some(format!("-{s}")),
            Line::Added(s) => Some(format!("+{s}")),
        })
        .collect()
}

/// `diff -u`-like text with `context` lines around changes and `...` for the lines left out.
pub fn unified(d: &[Line], context: usize) -> String {
    let changed: Vec<usize> = d
        .iter()
        .enumerate()
        .filter(|(_, l)| !matches!(l, Line::Same(_)))
        .map(|(i, _)| i)
        .collect();
    let near = |i: usize| changed.iter().any(|&c| c.abs_diff(i) <= context);
    let mut out = String::new();
    let mut skipped = false;
    for (i, l) in d.iter().enumerate() {
        if !near(i) {
            skipped = true;
            continue;
        }
        if skipped {
            out.push_str("   ...\n");
            skipped = false;
        }
        match l {
            Line::Same(s) => out.push_str(&format!("   {s}\n")),
            Line::Removed(s) => out.push_str(&format!(" - {s}\n")),
            Line::Added(s) => out.push_str(&format!(" + {s}\n")),
        }
    }
    if skipped {
        out.push_str("   ...\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_marks_removed_and_added_lines() {
        let d = diff("a\nb\nc\nd\n", "a\nc\nx\nd\n");
        assert_eq!(
            d,
            vec![
                Line::Same("a".into()),
                Line::Removed("b".into()),
                Line::Same("c".into()),
                Line::Added("x".into()),
                Line::Same("d".into()),
            ]
        );
        assert_eq!(changes(&d), vec!["-b", "+x"]);
        assert!(changes(&diff("a\nb\n", "a\nb\n")).is_empty());
        let long: String = (0..20).map(|i| format!("{i}\n")).collect();
        let u = unified(&diff(&long, &long.replace("10\n", "ten\n")), 1);
        assert_eq!(u, "   ...\n   9\n - 10\n + ten\n   11\n   ...\n");
    }
}
