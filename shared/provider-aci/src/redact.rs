//! Removing known secrets from text that leaves the provider (errors, log fields): the
//! client secret, `secureValue` environment values and registry passwords. A second line of
//! defence: no message is built from a secret in the first place, but ARM and Entra answers
//! are quoted, and they could echo part of a request.

/// What replaces a secret.
pub(super) const REDACTED: &str = "<redacted>";

/// A set of secrets to blank out.
#[derive(Default, Clone)]
pub(super) struct Redactor {
    secrets: Vec<String>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redactor")
            .field("secrets", &self.secrets.len())
            .finish()
    }
}

impl Redactor {
    /// A redactor of `secrets` (empty ones are ignored).
    pub fn new<'a>(secrets: impl IntoIterator<Item = &'a str>) -> Self {
        let mut r = Self::default();
        for s in secrets {
            r.add(s);
        }
        r
    }

    /// Adds a secret.
    pub fn add(&mut self, secret: &str) {
        if !secret.is_empty() && !self.secrets.iter().any(|s| s == secret) {
            self.secrets.push(secret.to_owned());
            // Longest first, so that a secret containing another is blanked whole.
            self.secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        }
    }

    /// `text` with every secret replaced by [`REDACTED`].
    pub fn apply(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for s in &self.secrets {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), REDACTED);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blanks_every_secret() {
        let r = Redactor::new(["abc", "", "abcdef"]);
        assert_eq!(r.apply("x abcdef y abc"), "x <redacted> y <redacted>");
        assert_eq!(format!("{r:?}"), "Redactor { secrets: 2 }");
    }
}
