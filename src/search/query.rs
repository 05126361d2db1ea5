//! What a person types into a search box, as terms the index can match.
//!
//! The rules people expect, and nothing else: several words mean all of
//! them; each word also finds longer words it starts ("hol" finds
//! "holiday"); "quoted words" are a phrase, found only together and whole.
//! Everything else is text: `*`, `-`, `NEAR`, `AND`, `(` and SQL quotes are
//! punctuation or plain words, never operators. The index's own query
//! language is written here, from words that hold only letters and digits,
//! each in quotes: nothing a person types reaches it as syntax.

use super::text::{Word, words};

/// The longest query, in characters: a search box, not a document.
pub const MAX_QUERY_CHARS: usize = 200;
/// The most terms a query may have (each is a lookup in the index).
pub const MAX_TERMS: usize = 12;

/// A parsed query: at least one term, every one of which must match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub terms: Vec<Term>,
}

/// Words that must appear together, in this order; with `prefix`, the last
/// may be the start of a longer word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Term {
    pub words: Vec<String>,
    pub prefix: bool,
}

/// Why a query was refused: the text a client shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("q is required: the text to search for")]
    Missing,
    #[error("q must be at most 200 characters")]
    TooLong,
    #[error("q has no letters or digits to search for")]
    NoWords,
    #[error("q has too many words (at most 12 terms)")]
    TooManyTerms,
}

impl Query {
    /// Parses `text`. Quotes pair up left to right; an unpaired one is
    /// closed by the end of the text.
    pub fn parse(text: &str) -> Result<Query, QueryError> {
        if text.trim().is_empty() {
            return Err(QueryError::Missing);
        }
        if text.chars().count() > MAX_QUERY_CHARS {
            return Err(QueryError::TooLong);
        }
        let mut terms = Vec::new();
        for (i, part) in text.split('"').enumerate() {
            let quoted = i % 2 == 1;
            let found: Vec<Word> = words(part);
            if quoted {
                if !found.is_empty() {
                    terms.push(Term {
                        words: found.into_iter().map(|w| w.folded).collect(),
                        prefix: false,
                    });
                }
                continue;
            }
            // Unquoted: each run without spaces is a word as typed, which
            // may hold punctuation ("e-mail": the phrase "e mail").
            for typed in part.split_whitespace() {
                let found = words(typed);
                if found.is_empty() {
                    continue;
                }
                // Characters of spaceless scripts stand for a substring:
                // all of them together, exactly.
                let spaceless = typed.chars().any(super::text::is_spaceless);
                terms.push(Term {
                    words: found.into_iter().map(|w| w.folded).collect(),
                    prefix: !spaceless,
                });
            }
        }
        if terms.is_empty() {
            return Err(QueryError::NoWords);
        }
        if terms.len() > MAX_TERMS {
            return Err(QueryError::TooManyTerms);
        }
        Ok(Query { terms })
    }

    /// The query in the index's language, every term in the `body` column:
    /// `body : "e mail"* AND body : "cafe"*`. Words hold only folded
    /// letters and digits, so quoting them is all the escaping there is.
    pub fn to_index_query(&self) -> String {
        self.terms
            .iter()
            .map(|term| {
                let star = if term.prefix { "*" } else { "" };
                format!("body : \"{}\"{star}", term.words.join(" "))
            })
            .collect::<Vec<_>>()
            .join(" AND ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn term(words: &[&str], prefix: bool) -> Term {
        Term {
            words: words.iter().map(|w| w.to_string()).collect(),
            prefix,
        }
    }

    #[test]
    fn words_are_prefixes_and_quotes_make_phrases() {
        let query = Query::parse(r#"Café "hot Chocolate" hol"#).expect("valid");
        assert_eq!(
            query.terms,
            [
                term(&["cafe"], true),
                term(&["hot", "chocolate"], false),
                term(&["hol"], true)
            ]
        );
        assert_eq!(
            query.to_index_query(),
            r#"body : "cafe"* AND body : "hot chocolate" AND body : "hol"*"#
        );
    }

    #[test]
    fn syntax_is_text() {
        let parsed = |q: &str| Query::parse(q).map(|q| q.to_index_query());
        // What is typed without a space is one term, like "e-mail".
        assert_eq!(
            parsed("NEAR(a b)"),
            Ok(r#"body : "near a"* AND body : "b"*"#.into())
        );
        assert_eq!(
            parsed("-x OR y*"),
            Ok(r#"body : "x"* AND body : "or"* AND body : "y"*"#.into())
        );
        assert_eq!(parsed("e-mail"), Ok(r#"body : "e mail"*"#.into()));
        assert_eq!(
            parsed("'; DROP TABLE users; --"),
            Ok(r#"body : "drop"* AND body : "table"* AND body : "users"*"#.into())
        );
        assert_eq!(
            parsed(r#"unbalanced "quote"#),
            Ok(r#"body : "unbalanced"* AND body : "quote""#.into())
        );
        assert_eq!(parsed("*"), Err(QueryError::NoWords));
        assert_eq!(parsed("\0"), Err(QueryError::NoWords));
        assert_eq!(parsed("   "), Err(QueryError::Missing));
        assert_eq!(parsed(&"a".repeat(201)), Err(QueryError::TooLong));
        assert_eq!(parsed(&"a ".repeat(13)), Err(QueryError::TooManyTerms));
    }

    #[test]
    fn spaceless_scripts_search_by_substring() {
        let query = Query::parse("東京").expect("valid");
        assert_eq!(query.terms, [term(&["東", "京"], false)]);
    }
}
