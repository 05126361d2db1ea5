//! Words as search sees them, the same for what is indexed, what is asked
//! and what is highlighted.
//!
//! A word is a run of letters and digits. Before comparing, each character
//! is folded: lower case, and without its diacritics ("Café" is "cafe").
//! Scripts written without spaces between words (Chinese, Japanese, Thai,
//! Lao, Khmer, Myanmar) have no runs to speak of: each of their characters
//! is a word of its own, so that a query "東京" is the phrase "東 京" and
//! finds the characters wherever they stand together, as a substring.

use std::ops::Range;

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// One word of a text: its folded form and where it stands in the
/// original, in characters (not bytes: what clients count in).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    pub folded: String,
    pub chars: Range<usize>,
}

/// Whether `c` belongs to a script written without spaces between words.
pub fn is_spaceless(c: char) -> bool {
    matches!(c,
        '\u{0E00}'..='\u{0EFF}'   // Thai, Lao
        | '\u{1000}'..='\u{109F}' // Myanmar
        | '\u{1780}'..='\u{17FF}' // Khmer
        | '\u{2E80}'..='\u{2FDF}' // CJK radicals
        | '\u{3040}'..='\u{30FF}' // Hiragana, Katakana
        | '\u{3100}'..='\u{312F}' // Bopomofo
        | '\u{3190}'..='\u{31FF}' // Kanbun, Katakana extensions
        | '\u{3400}'..='\u{4DBF}' // CJK extension A
        | '\u{4E00}'..='\u{9FFF}' // CJK unified ideographs
        | '\u{F900}'..='\u{FAFF}' // CJK compatibility ideographs
        | '\u{FF66}'..='\u{FF9F}' // half-width Katakana
        | '\u{20000}'..='\u{3134F}') // CJK extensions B-H
}

/// `c` folded: lower case, decomposed, combining marks dropped. Empty for
/// a character that is only a mark.
fn fold(c: char, out: &mut String) {
    // Most text is ASCII, which has no marks to take off.
    if c.is_ascii() {
        out.push(c.to_ascii_lowercase());
        return;
    }
    for lower in c.to_lowercase() {
        out.extend(
            std::iter::once(lower)
                .nfd()
                .filter(|d| !is_combining_mark(*d)),
        );
    }
}

/// The words of `text`, in order.
pub fn words(text: &str) -> Vec<Word> {
    let mut words = Vec::new();
    let mut current: Option<Word> = None;
    for (at, c) in text.chars().enumerate() {
        let spaceless = is_spaceless(c);
        let part_of_word = c.is_alphanumeric() || (is_combining_mark(c) && current.is_some());
        if (!part_of_word || spaceless)
            && let Some(word) = current.take().filter(|w| !w.folded.is_empty())
        {
            words.push(word);
        }
        if spaceless {
            // A vowel sign of Thai, say, folds to nothing: not a word.
            let mut folded = String::new();
            fold(c, &mut folded);
            if !folded.is_empty() {
                words.push(Word {
                    folded,
                    chars: at..at + 1,
                });
            }
        } else if part_of_word {
            let word = current.get_or_insert_with(|| Word {
                folded: String::new(),
                chars: at..at,
            });
            fold(c, &mut word.folded);
            word.chars.end = at + 1;
        }
    }
    if let Some(word) = current.filter(|w| !w.folded.is_empty()) {
        words.push(word);
    }
    words
}

/// What the index holds for a message: its folded words, separated by
/// spaces. (The index's own tokenizer then only splits at the spaces.)
pub fn indexed(text: &str) -> String {
    let words = words(text);
    let mut out = String::with_capacity(text.len());
    for (i, word) in words.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(&word.folded);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folded(text: &str) -> Vec<String> {
        words(text).into_iter().map(|w| w.folded).collect()
    }

    #[test]
    fn words_are_folded_runs_of_letters_and_digits() {
        assert_eq!(folded("Café, CRÈME brûlée!"), ["cafe", "creme", "brulee"]);
        assert_eq!(folded("e-mail 2026"), ["e", "mail", "2026"]);
        assert_eq!(folded("Straße"), ["straße"]);
        assert_eq!(folded("ΟΔΥΣΣΕΎΣ"), ["οδυσσευσ"]);
        assert_eq!(folded("  "), Vec::<String>::new());
        // Decomposed input folds the same as composed.
        assert_eq!(folded("Cafe\u{301}"), ["cafe"]);
    }

    #[test]
    fn spaceless_scripts_are_one_word_per_character() {
        assert_eq!(folded("東京都に行く"), ["東", "京", "都", "に", "行", "く"]);
        assert_eq!(folded("ok東京"), ["ok", "東", "京"]);
        // Thai vowel signs are marks: folded away like diacritics.
        assert_eq!(folded("สวัสดี"), ["ส", "ว", "ส", "ด"]);
    }

    #[test]
    fn ranges_are_in_characters_of_the_original() {
        let text = "Ünïcode café";
        let found = words(text);
        assert_eq!(found[0].chars, 0..7);
        assert_eq!(found[1].chars, 8..12);
        assert_eq!(indexed(text), "unicode cafe");
    }
}
