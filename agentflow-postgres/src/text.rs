//! Postgres `text` cannot hold U+0000, nor `jsonb` a `\u0000` escape, yet agent output, error
//! messages and people's comments may contain one: free text is stored with each NUL replaced
//! by U+FFFD rather than refused (a refused write would lose the comment or leave a job
//! running).

/// `s` with each NUL replaced by U+FFFD.
pub(crate) fn text(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains('\0') { s.replace('\0', "\u{fffd}").into() } else { s.into() }
}

/// [`text`] of an optional string, owned (for a bind).
pub(crate) fn opt_text(s: &Option<String>) -> Option<String> {
    s.as_deref().map(|s| text(s).into_owned())
}

/// A JSON value serialised for a `jsonb` bind, with [`text`] applied to every string (keys
/// included) when it holds a NUL.
pub(crate) fn json_text(v: &serde_json::Value) -> String {
    fn clean(v: &serde_json::Value) -> serde_json::Value {
        use serde_json::Value;
        match v {
            Value::String(s) => Value::String(text(s).into_owned()),
            Value::Array(items) => Value::Array(items.iter().map(clean).collect()),
            Value::Object(map) => {
                Value::Object(map.iter().map(|(k, v)| (text(k).into_owned(), clean(v))).collect())
            }
            other => other.clone(),
        }
    }
    let s = v.to_string();
    if s.contains("\\u0000") { clean(v).to_string() } else { s }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_becomes_the_replacement_character_everywhere() {
        assert_eq!(text("a\0b"), "a\u{fffd}b");
        assert!(matches!(text("clean"), std::borrow::Cow::Borrowed("clean")));
        let v = serde_json::json!({ "k\u{0}": ["x\u{0}y", 1, { "z": "\u{0}" }] });
        let out: serde_json::Value = serde_json::from_str(&json_text(&v)).unwrap();
        assert_eq!(out, serde_json::json!({ "k\u{fffd}": ["x\u{fffd}y", 1, { "z": "\u{fffd}" }] }));
        assert!(!json_text(&v).contains("\\u0000"));
    }
}
