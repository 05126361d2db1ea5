//! The name a file was sent under, made safe to keep and to show.
//!
//! A name is only ever a label: files are stored under their hash, so no
//! name reaches a path. It is still cleaned: the last component only (no
//! `../`), no control characters (which could forge lines in a terminal or
//! a header), at most [`MAX_NAME_CHARS`] characters.

/// Longest name kept, in characters.
pub const MAX_NAME_CHARS: usize = 255;

/// The name to keep for `raw`, or `None` when nothing is left of it.
pub fn safe_name(raw: &str) -> Option<String> {
    let last = raw.rsplit(['/', '\\']).next().unwrap_or(raw);
    let cleaned: String = last
        .chars()
        .map(|c| if c.is_control() { '_' } else { c })
        .take(MAX_NAME_CHARS)
        .collect();
    let cleaned = cleaned.trim();
    (!cleaned.is_empty() && cleaned != "." && cleaned != "..").then(|| cleaned.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_lose_their_folders_and_control_characters() {
        assert_eq!(safe_name("photo.jpg").as_deref(), Some("photo.jpg"));
        assert_eq!(safe_name("../../etc/passwd").as_deref(), Some("passwd"));
        assert_eq!(
            safe_name("C:\\Users\\me\\notes.txt").as_deref(),
            Some("notes.txt")
        );
        assert_eq!(safe_name("a\nb\rc\u{7}.txt").as_deref(), Some("a_b_c_.txt"));
        assert_eq!(
            safe_name("  résumé 2026.pdf ").as_deref(),
            Some("résumé 2026.pdf")
        );
        for nothing in ["", "   ", "dir/", "..", ".", "a/.."] {
            assert_eq!(safe_name(nothing), None, "{nothing:?}");
        }
        assert_eq!(
            safe_name(&"x".repeat(1000)).map(|n| n.len()),
            Some(MAX_NAME_CHARS)
        );
    }
}
