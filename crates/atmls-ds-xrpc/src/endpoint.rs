//! PDS endpoints as `--only-pds-accounts` compares them: an account's `#atproto_pds` URL
//! and the operator's `--pds-url` name the same PDS when their normal forms are equal.
//!
//! The normal form: scheme and host lowercased, the scheme's default port dropped
//! (`:80` for http, `:443` for https), trailing slashes dropped, and the loopback names
//! `localhost`, `127.0.0.1` and `[::1]` written as `localhost` (one host on loopback, as
//! a development PDS is reached under either name). Path letters keep their case.

/// A PDS endpoint URL in its normal form (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct PdsEndpoint(String);

impl PdsEndpoint {
    /// The normal form of `url`; `None` unless it is an `http://` or `https://` URL
    /// with a host (no user info).
    pub(crate) fn parse(url: &str) -> Option<Self> {
        let (scheme, rest) = url.trim().split_once("://")?;
        let scheme = scheme.to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "http" => "80",
            "https" => "443",
            _ => return None,
        };
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(end);
        if authority.is_empty() || authority.contains('@') {
            return None;
        }
        let (host, port) = match authority.strip_prefix('[') {
            Some(v6) => {
                let (host, after) = v6.split_once(']')?;
                let port = match after {
                    "" => None,
                    p => Some(p.strip_prefix(':')?),
                };
                (format!("[{}]", host.to_ascii_lowercase()), port)
            }
            None => match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_ascii_lowercase(), Some(p)),
                None => (authority.to_ascii_lowercase(), None),
            },
        };
        if host.is_empty() || host == "[]" {
            return None;
        }
        let port = match port {
            Some(p) if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) => return None,
            Some(p) => p.trim_start_matches('0'),
            None => default_port,
        };
        let host = match host.as_str() {
            "127.0.0.1" | "[::1]" | "localhost" => "localhost",
            other => other,
        };
        let port = if port == default_port {
            String::new()
        } else {
            format!(":{port}")
        };
        let path = path.trim_end_matches('/');
        Some(Self(format!("{scheme}://{host}{port}{path}")))
    }

    /// The normal form as text.
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::PdsEndpoint;

    fn norm(url: &str) -> Option<String> {
        PdsEndpoint::parse(url).map(|e| e.as_str().to_owned())
    }

    #[test]
    fn the_same_pds_under_its_usual_spellings() {
        let same = [
            "http://localhost:2583",
            "http://127.0.0.1:2583",
            "http://[::1]:2583",
            "HTTP://LocalHost:2583/",
            "http://127.0.0.1:2583//",
        ];
        for url in same {
            assert_eq!(norm(url).as_deref(), Some("http://localhost:2583"), "{url}");
        }
        let same = [
            "https://pds.example.com",
            "https://PDS.example.com:443",
            "https://pds.example.com/",
        ];
        for url in same {
            assert_eq!(
                norm(url).as_deref(),
                Some("https://pds.example.com"),
                "{url}"
            );
        }
        assert_eq!(
            norm("http://pds.example.com:80/").as_deref(),
            Some("http://pds.example.com")
        );
    }

    #[test]
    fn different_pdses_stay_different() {
        let pairs = [
            ("http://localhost:2583", "http://localhost:2584"),
            ("http://localhost:2583", "https://localhost:2583"),
            ("https://pds.example.com", "https://pds.example.com:8443"),
            ("https://pds.example.com", "https://pds.example.org"),
            ("http://127.0.0.2:2583", "http://localhost:2583"),
            ("https://pds.example.com/a", "https://pds.example.com/A"),
        ];
        for (a, b) in pairs {
            assert_ne!(norm(a), norm(b), "{a} {b}");
        }
    }

    #[test]
    fn what_is_not_an_endpoint() {
        for url in [
            "pds.example.com",
            "ftp://pds.example.com",
            "https://",
            "https://user@pds.example.com",
            "https://pds.example.com:x",
            "https://pds.example.com:",
            "http://[::1",
        ] {
            assert_eq!(norm(url), None, "{url}");
        }
    }
}
