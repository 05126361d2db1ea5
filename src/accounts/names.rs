//! Display names, and telling a name that imitates another apart.
//!
//! Nicknames are ASCII letters, digits and `_ - .` (the login name).
//! Display names are free: any script, emoji, spaces. That freedom is what
//! an impostor uses: "аlice" with a Cyrillic "а" looks like "alice". Every
//! name is compared by its *skeleton* (Unicode TS #39, confusable
//! detection: "аlice", "alice" and "aIice" share one), case folded, and a
//! display name whose skeleton is another account's nickname (or display
//! name) is refused.

use unicode_security::confusable_detection::skeleton;

/// The longest display name, in characters.
pub const MAX_DISPLAY_NAME_CHARS: usize = 64;

/// What a name looks like, for comparing: its confusable skeleton, case
/// folded, without spaces (so that "a l i c e" is "alice" too). Two keys,
/// because folding case and folding look-alikes do not commute: "AIice"
/// looks like "Alice" only before lower-casing (I is like l), "ALICE" like
/// "alice" only after.
pub fn look_alike_keys(name: &str) -> [String; 2] {
    let key = |folded: &mut dyn Iterator<Item = char>| -> String {
        folded
            .flat_map(char::to_lowercase)
            .filter(|c| !c.is_whitespace())
            .collect()
    };
    let lowered = name.to_lowercase();
    [key(&mut skeleton(name)), key(&mut skeleton(&lowered))]
}

/// Whether two names look alike by either key.
pub fn look_alike(a: &str, b: &str) -> bool {
    let (a, b) = (look_alike_keys(a), look_alike_keys(b));
    a.iter().any(|key| b.contains(key))
}

/// Characters that change how text around them is shown (bidirectional
/// overrides and isolates, and invisible separators), which a name must
/// not hide behind. Zero-width joiners stay: emoji are built with them.
fn is_deceptive(c: char) -> bool {
    matches!(c,
        '\u{200B}' | '\u{200E}' | '\u{200F}' | '\u{2028}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
        || c.is_control()
}

/// The display name to store for `wanted`: trimmed, `None` when empty
/// (clears it); refused when too long or holding characters that deceive.
pub fn clean_display_name(wanted: &str) -> Result<Option<String>, &'static str> {
    let name = wanted.trim();
    if name.is_empty() {
        return Ok(None);
    }
    if name.chars().count() > MAX_DISPLAY_NAME_CHARS {
        return Err("display_name must be at most 64 characters");
    }
    if name.chars().any(is_deceptive) {
        return Err("display_name must not contain control or direction characters");
    }
    Ok(Some(name.to_owned()))
}

/// The first of `others` (nicknames and display names of other accounts)
/// that `name` looks like, if any.
pub fn imitated<'a>(name: &str, others: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    others.into_iter().find(|other| look_alike(name, other))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn look_alikes_share_a_key() {
        // Cyrillic а (U+0430), Greek ο (U+03BF), capital I for l.
        assert!(look_alike("\u{430}lice", "alice"));
        assert!(look_alike("b\u{3bf}b", "bob"));
        assert!(look_alike("aIice", "alice"));
        assert!(look_alike("AIice", "alice"));
        assert!(look_alike("ALICE", "alice"));
        assert!(look_alike("Al ice", "alice"));
        assert!(look_alike("rnallory", "mallory"));
        assert!(!look_alike("alicia", "alice"));
        assert!(!look_alike("bob", "rob"));
        assert_eq!(imitated("\u{430}lice", ["bob", "alice"]), Some("alice"));
        assert_eq!(imitated("Zoë 🌻", ["bob", "alice"]), None);
    }

    #[test]
    fn display_names_are_trimmed_bounded_and_honest() {
        assert_eq!(clean_display_name("  Zoë 🌻  "), Ok(Some("Zoë 🌻".into())));
        assert_eq!(clean_display_name("   "), Ok(None));
        assert_eq!(clean_display_name("李小龍"), Ok(Some("李小龍".into())));
        assert_eq!(clean_display_name("👩‍👩‍👧"), Ok(Some("👩‍👩‍👧".into())));
        assert!(clean_display_name(&"x".repeat(65)).is_err());
        assert!(clean_display_name(&"é".repeat(64)).is_ok());
        assert!(clean_display_name("evil\u{202E}gnp.exe").is_err());
        assert!(clean_display_name("tab\there").is_err());
    }
}
