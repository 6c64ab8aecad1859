//! Language tags (BCP 47 / RFC 5646), as the Lexicon `language` format uses them.

use thiserror::Error;

/// Irregular and regular grandfathered tags from RFC 5646 §2.1, matched case-insensitively.
const GRANDFATHERED: &[&str] = &[
    "en-GB-oed",
    "i-ami",
    "i-bnn",
    "i-default",
    "i-enochian",
    "i-hak",
    "i-klingon",
    "i-lux",
    "i-mingo",
    "i-navajo",
    "i-pwn",
    "i-tao",
    "i-tay",
    "i-tsu",
    "sgn-BE-FR",
    "sgn-BE-NL",
    "sgn-CH-DE",
    "art-lojban",
    "cel-gaulish",
    "no-bok",
    "no-nyn",
    "zh-guoyu",
    "zh-hakka",
    "zh-min",
    "zh-min-nan",
    "zh-xiang",
];

/// A well-formed language tag such as `pt-BR` or `hy-Latn-IT-arevela`.
///
/// Follows the RFC 5646 grammar (`langtag`, private use `x-…`, grandfathered tags) with one
/// narrowing that atproto's test vectors require: the primary language subtag is an ISO 639
/// code of two or three **lower-case** letters (so `JA` and `jaja` are refused).
///
/// A well-formed tag may still be invalid in the RFC's stricter sense (a repeated variant
/// or extension singleton); such tags are accepted here, as Lexicon validation asks, and
/// [`Language::check_valid`] reports them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Language {
    raw: String,
}

/// Why a string is not a [`Language`] tag (or, from [`Language::check_valid`], not a valid
/// one).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum LanguageError {
    /// The primary language subtag is not 2 or 3 lower-case letters.
    #[error("language subtag must be 2 or 3 lower-case letters")]
    BadLanguage,
    /// A subtag that fits nowhere in the grammar at its position.
    #[error("subtag {0:?} is not allowed here")]
    BadSubtag(String),
    /// An empty subtag (e.g. a trailing `-`).
    #[error("empty subtag")]
    EmptySubtag,
    /// Well-formed, but a variant appears twice (RFC 5646 §2.2.5).
    #[error("variant {0:?} is repeated")]
    RepeatedVariant(String),
    /// Well-formed, but an extension singleton appears twice (RFC 5646 §2.2.6).
    #[error("extension singleton {0:?} is repeated")]
    RepeatedExtension(char),
}

impl Language {
    /// Checks `s` and wraps it.
    pub fn new(s: impl Into<String>) -> Result<Self, LanguageError> {
        Self::parse_owned(s.into())
    }

    fn parse_owned(raw: String) -> Result<Self, LanguageError> {
        parse(&raw)?;
        Ok(Language { raw })
    }

    /// The primary language subtag (`pt` for `pt-BR`; `i` or `x` for grandfathered and
    /// private-use tags).
    pub fn primary(&self) -> &str {
        self.raw.split('-').next().unwrap_or_default()
    }

    /// Checks the RFC 5646 validity rules that go beyond well-formedness and that need no
    /// registry: no repeated variant and no repeated extension singleton.
    pub fn check_valid(&self) -> Result<(), LanguageError> {
        let parts = parse(&self.raw)?;
        for (i, v) in parts.variants.iter().enumerate() {
            if parts.variants[..i]
                .iter()
                .any(|w| w.eq_ignore_ascii_case(v))
            {
                return Err(LanguageError::RepeatedVariant((*v).to_owned()));
            }
        }
        for (i, s) in parts.singletons.iter().enumerate() {
            if parts.singletons[..i].contains(s) {
                return Err(LanguageError::RepeatedExtension(*s));
            }
        }
        Ok(())
    }
}

super::string_format!(Language, LanguageError);

/// What [`Language::check_valid`] needs from a parse.
#[derive(Default)]
struct Parts<'a> {
    variants: Vec<&'a str>,
    /// Extension singletons, lower-cased.
    singletons: Vec<char>,
}

fn alpha(s: &str, lens: std::ops::RangeInclusive<usize>) -> bool {
    lens.contains(&s.len()) && s.bytes().all(|c| c.is_ascii_alphabetic())
}

fn alnum(s: &str, lens: std::ops::RangeInclusive<usize>) -> bool {
    lens.contains(&s.len()) && s.bytes().all(|c| c.is_ascii_alphanumeric())
}

fn is_variant(s: &str) -> bool {
    alnum(s, 5..=8) || (s.len() == 4 && s.as_bytes()[0].is_ascii_digit() && alnum(s, 4..=4))
}

fn parse(s: &str) -> Result<Parts<'_>, LanguageError> {
    if GRANDFATHERED.iter().any(|g| g.eq_ignore_ascii_case(s)) {
        return Ok(Parts::default());
    }
    let subtags: Vec<&str> = s.split('-').collect();
    if subtags.iter().any(|t| t.is_empty()) {
        return Err(LanguageError::EmptySubtag);
    }
    let mut rest = &subtags[..];
    if rest[0].eq_ignore_ascii_case("x") {
        return private_use(&rest[1..]).map(|()| Parts::default());
    }
    let lang = rest[0];
    if !(alpha(lang, 2..=3) && lang.bytes().all(|c| c.is_ascii_lowercase())) {
        return Err(LanguageError::BadLanguage);
    }
    rest = &rest[1..];
    // extlang: up to three 3-letter subtags, only after a 2–3 letter language.
    let mut extlangs = 0;
    while extlangs < 3 && rest.first().is_some_and(|t| alpha(t, 3..=3)) {
        rest = &rest[1..];
        extlangs += 1;
    }
    if rest.first().is_some_and(|t| alpha(t, 4..=4)) {
        rest = &rest[1..]; // script
    }
    if rest
        .first()
        .is_some_and(|t| alpha(t, 2..=2) || (t.len() == 3 && t.bytes().all(|c| c.is_ascii_digit())))
    {
        rest = &rest[1..]; // region
    }
    let mut parts = Parts::default();
    while let Some(t) = rest.first().filter(|t| is_variant(t)) {
        parts.variants.push(t);
        rest = &rest[1..];
    }
    while let Some(t) = rest.first() {
        if t.len() != 1 {
            return Err(LanguageError::BadSubtag((*t).to_owned()));
        }
        let singleton = t.as_bytes()[0].to_ascii_lowercase();
        if singleton == b'x' {
            return private_use(&rest[1..]).map(|()| parts);
        }
        if !singleton.is_ascii_alphanumeric() {
            return Err(LanguageError::BadSubtag((*t).to_owned()));
        }
        rest = &rest[1..];
        let n = rest.iter().take_while(|t| alnum(t, 2..=8)).count();
        if n == 0 {
            return Err(LanguageError::BadSubtag((*t).to_owned()));
        }
        parts.singletons.push(char::from(singleton));
        rest = &rest[n..];
    }
    Ok(parts)
}

fn private_use(rest: &[&str]) -> Result<(), LanguageError> {
    if rest.is_empty() {
        return Err(LanguageError::BadSubtag("x".to_owned()));
    }
    match rest.iter().find(|t| !alnum(t, 1..=8)) {
        Some(bad) => Err(LanguageError::BadSubtag((*bad).to_owned())),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_formed_but_not_valid() {
        let tag: Language = "de-DE-1901-1901".parse().unwrap();
        assert_eq!(
            tag.check_valid(),
            Err(LanguageError::RepeatedVariant("1901".into()))
        );
        let tag: Language = "en-u-co-phonebk-U-ca-buddhist".parse().unwrap();
        assert_eq!(
            tag.check_valid(),
            Err(LanguageError::RepeatedExtension('u'))
        );
        assert_eq!(
            Language::new("sl-rozaj-biske").unwrap().check_valid(),
            Ok(())
        );
        assert_eq!(Language::new("pt-BR").unwrap().primary(), "pt");
    }
}
