//! Rust names for lexicon names.

/// `keyPackageRef` → `key_package_ref`; `getKeyPackages` → `get_key_packages`.
pub fn snake(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    let chars: Vec<char> = name.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if c == '-' {
            out.push('_');
        } else if c.is_ascii_uppercase() {
            let prev_lower =
                i > 0 && (chars[i - 1].is_ascii_lowercase() || chars[i - 1].is_ascii_digit());
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            let prev_upper = i > 0 && chars[i - 1].is_ascii_uppercase();
            if i > 0 && (prev_lower || (prev_upper && next_lower)) {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// `mailboxRef` → `MailboxRef`; `chat.mls.defs` → `ChatMlsDefs`.
pub fn pascal(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = true;
    for c in name.chars() {
        if c == '.' || c == '-' || c == '_' {
            upper = true;
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// The camelCase name serde's `rename_all = "camelCase"` gives a snake_case field.
pub fn camel_of_snake(snake: &str) -> String {
    let mut out = String::with_capacity(snake.len());
    let mut upper = false;
    for c in snake.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// A field or module name, made a raw identifier if it is a Rust keyword.
pub fn ident(snake: &str) -> String {
    const KEYWORDS: &[&str] = &[
        "as", "async", "await", "box", "break", "const", "continue", "dyn", "else", "enum",
        "extern", "false", "fn", "for", "gen", "if", "impl", "in", "let", "loop", "match", "mod",
        "move", "mut", "pub", "ref", "return", "static", "struct", "trait", "true", "type",
        "unsafe", "use", "where", "while", "yield", "abstract", "become", "do", "final", "macro",
        "override", "priv", "try", "typeof", "unsized", "virtual",
    ];
    if KEYWORDS.contains(&snake) {
        format!("r#{snake}")
    } else {
        snake.to_string()
    }
}

/// `self`, `super`, `crate` and `Self` cannot be raw identifiers: refuse them.
pub fn is_reserved(snake: &str) -> bool {
    matches!(snake, "self" | "super" | "crate" | "Self")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_case_names() {
        assert_eq!(snake("keyPackageRef"), "key_package_ref");
        assert_eq!(snake("getKeyPackages"), "get_key_packages");
        assert_eq!(snake("maxSize"), "max_size");
        assert_eq!(snake("cid-link"), "cid_link");
        assert_eq!(snake("didPLC"), "did_plc");
        assert_eq!(snake("main"), "main");
    }

    #[test]
    fn pascal_case_names() {
        assert_eq!(pascal("mailboxRef"), "MailboxRef");
        assert_eq!(pascal("chat.mls.defs"), "ChatMlsDefs");
        assert_eq!(pascal("cid-link"), "CidLink");
    }

    #[test]
    fn camel_roundtrip_detects_irregular_names() {
        assert_eq!(camel_of_snake(&snake("keyPackageRef")), "keyPackageRef");
        assert_ne!(camel_of_snake(&snake("didPLC")), "didPLC");
    }

    #[test]
    fn keywords_become_raw_identifiers() {
        assert_eq!(ident("type"), "r#type");
        assert_eq!(ident("ref"), "r#ref");
        assert_eq!(ident("gen"), "r#gen");
        assert_eq!(ident("text"), "text");
        assert!(is_reserved("self"));
    }
}
