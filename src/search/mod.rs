//! Finding old messages: what is indexed, what a query means, and which
//! parts of a message it matched.
//!
//! The index itself is SQLite's FTS5 (a table beside the messages, kept in
//! step by the writes that store, edit and delete them: `repo/sqlite`); the
//! rules of matching are ours, in plain Rust, so that they are the same
//! for the index, the query and the highlights:
//!
//! - [`text`]: words, folded (case and diacritics ignored), and scripts
//!   without spaces as one word per character.
//! - [`query`]: a search box's text as terms; never index syntax.
//! - [`highlights`]: where a message matched, as character ranges.

pub mod query;
pub mod text;

pub use query::{Query, QueryError};

/// Where `query` matched `content`: `[start, end)` ranges in characters
/// (Unicode code points) of the content, in order, overlaps merged. Never
/// markup: a client draws them itself, so no text can turn into HTML.
pub fn highlights(content: &str, query: &Query) -> Vec<[usize; 2]> {
    let words = text::words(content);
    let mut ranges: Vec<[usize; 2]> = Vec::new();
    for term in &query.terms {
        let n = term.words.len();
        if n == 0 || n > words.len() {
            continue;
        }
        for start in 0..=words.len() - n {
            let window = &words[start..start + n];
            let matches = window
                .iter()
                .zip(&term.words)
                .enumerate()
                .all(|(i, (word, wanted))| {
                    if term.prefix && i == n - 1 {
                        word.folded.starts_with(wanted.as_str())
                    } else {
                        word.folded == *wanted
                    }
                });
            if matches {
                ranges.push([window[0].chars.start, window[n - 1].chars.end]);
            }
        }
    }
    ranges.sort_unstable();
    let mut merged: Vec<[usize; 2]> = Vec::with_capacity(ranges.len());
    for range in ranges {
        match merged.last_mut() {
            Some(last) if range[0] <= last[1] => last[1] = last[1].max(range[1]),
            _ => merged.push(range),
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    fn marked(content: &str, q: &str) -> Vec<String> {
        let query = Query::parse(q).expect("valid");
        let chars: Vec<char> = content.chars().collect();
        highlights(content, &query)
            .into_iter()
            .map(|[a, b]| chars[a..b].iter().collect())
            .collect()
    }

    #[test]
    fn highlights_are_the_matched_words_in_the_original() {
        assert_eq!(marked("Un Café crème au Café", "cafe"), ["Café", "Café"]);
        assert_eq!(
            marked("our holidays in Crète", "hol crete"),
            ["holidays", "Crète"]
        );
        assert_eq!(
            marked("hot chocolate, not hot tea", "\"hot chocolate\""),
            ["hot chocolate"]
        );
        assert_eq!(marked("私は東京都に住んでいます", "東京"), ["東京"]);
        assert_eq!(marked("no match here", "zebra"), Vec::<String>::new());
        // Overlapping terms make one range.
        assert_eq!(marked("new york city", "\"new york\" york"), ["new york"]);
    }
}
