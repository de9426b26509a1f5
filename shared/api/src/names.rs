//! The rules for the names of resources (work pools, flows, deployments, work queues, block
//! types and block documents), checked on create and update: Prefect's own character rules,
//! and a length limit of pushpool's.
//!
//! Prefect's rules (`prefect/types/names.py`, used by `prefect/server/schemas`):
//! - `Name` (flows, work queues, block types; deployments as `NameOrEmpty`): none of the
//!   characters `/ % & > <` ([`BANNED_CHARACTERS`]);
//! - `NonEmptyishName` (work pools): the same, and not empty once spaces and quotes are
//!   stripped;
//! - `BlockDocumentName` and `BlockTypeSlug`: lowercase letters, digits and dashes only.
//!
//! Prefect sets no length limit. pushpool does ([`MAX_NAME_CHARS`]): a name must be usable in a
//! URL path (`GET /api/work_pools/{name}`; a name too long for the request line could be
//! created but never read or deleted) and in a DynamoDB sort key (at most 1024 bytes; the
//! longest unique key is `<uuid>#<name>`, 37 bytes plus at most 4 bytes per character).

use crate::ApiError;

/// Longest name accepted, in characters (Unicode scalar values): 200. With 4 bytes per
/// character at most, `<uuid>#<name>` stays within DynamoDB's 1024-byte sort key (837 bytes),
/// and a `flow/deployment` path of two such names, percent-encoded, stays under 5 KB, well
/// inside the request-line limits of hyper and API Gateway.
pub const MAX_NAME_CHARS: usize = 200;

/// The characters Prefect's server refuses in names (`prefect.types.BANNED_CHARACTERS`).
pub const BANNED_CHARACTERS: [char; 5] = ['/', '%', '&', '>', '<'];

/// Which of Prefect's name rules applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rule {
    /// Prefect's `Name`: not empty, no banned character (pushpool also refuses a name of only
    /// spaces, which no URL can address).
    Name,
    /// Prefect's `NonEmptyishName` (work pools): also not empty once `'`, `"` and spaces are
    /// stripped.
    NonEmptyish,
    /// Prefect's `BlockDocumentName` / `BlockTypeSlug`: lowercase letters, digits and dashes.
    LowercaseDashes,
    /// Prefect's `VariableName`: lowercase letters, digits, dashes and underscores.
    LowercaseDashesUnderscores,
}

/// Checks `name`, the value of the request field `field`, against `rule` and
/// [`MAX_NAME_CHARS`].
///
/// # Errors
/// [`ApiError::Invalid`] (422) whose detail names `field` and says what is wrong.
pub(crate) fn check(field: &str, name: &str, rule: Rule) -> Result<(), ApiError> {
    let chars = name.chars().count();
    if chars > MAX_NAME_CHARS {
        return Err(ApiError::Invalid(format!(
            "{field}: {chars} characters, more than the {MAX_NAME_CHARS} allowed"
        )));
    }
    let blank = match rule {
        Rule::NonEmptyish => name.trim_matches(['\'', '"', ' ']).trim().is_empty(),
        Rule::Name | Rule::LowercaseDashes | Rule::LowercaseDashesUnderscores => {
            name.trim().is_empty()
        }
    };
    if blank {
        return Err(ApiError::Invalid(format!("{field}: must not be empty")));
    }
    match rule {
        Rule::Name | Rule::NonEmptyish => {
            if let Some(c) = name.chars().find(|c| BANNED_CHARACTERS.contains(c)) {
                return Err(ApiError::Invalid(format!(
                    "{field}: {name:?} contains the character {c:?}, which names cannot \
                     contain (none of / % & > <)"
                )));
            }
        }
        Rule::LowercaseDashes => {
            if !name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            {
                return Err(ApiError::Invalid(format!(
                    "{field}: {name:?} must only contain lowercase letters, numbers, and dashes"
                )));
            }
        }
        Rule::LowercaseDashesUnderscores => {
            if !name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
            {
                return Err(ApiError::Invalid(format!(
                    "{field}: {name:?} must only contain lowercase letters, numbers, and dashes \
                     or underscores"
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detail(r: Result<(), ApiError>) -> String {
        match r {
            Err(ApiError::Invalid(m)) => m,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_limit_counts_characters_not_bytes() {
        assert!(check("name", &"é".repeat(MAX_NAME_CHARS), Rule::Name).is_ok());
        assert_eq!(
            detail(check("name", &"a".repeat(MAX_NAME_CHARS + 1), Rule::Name)),
            "name: 201 characters, more than the 200 allowed"
        );
    }

    #[test]
    fn prefect_character_rules() {
        assert_eq!(
            detail(check("name", "a&b", Rule::Name)),
            "name: \"a&b\" contains the character '&', which names cannot contain (none of / % & > <)"
        );
        assert_eq!(
            detail(check("name", "' \"", Rule::NonEmptyish)),
            "name: must not be empty"
        );
        assert!(check("name", "' \"", Rule::Name).is_ok());
        assert_eq!(
            detail(check("name", "My_Creds", Rule::LowercaseDashes)),
            "name: \"My_Creds\" must only contain lowercase letters, numbers, and dashes"
        );
        assert!(check("name", "my-creds-2", Rule::LowercaseDashes).is_ok());
    }
}
