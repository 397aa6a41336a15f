//! Per-field validation. Messages never repeat a secret value.

use super::{FieldKind, SettingField};

pub(super) fn check(field: &SettingField, value: &str) -> Result<(), String> {
    let shown = |v: &str| {
        if field.secret { "the value".to_owned() } else { format!("`{}`", shorten(v)) }
    };
    if value.trim().is_empty() {
        return if field.required {
            Err(format!("{} is required", field.label))
        } else {
            Err("empty value: use \"reset\" to remove the saved value instead".to_owned())
        };
    }
    if value.trim() != value {
        return Err(format!("{} starts or ends with spaces", shown(value)));
    }
    match &field.kind {
        FieldKind::Text => {}
        FieldKind::Integer { min, max } => match value.parse::<i64>() {
            Ok(n) if n < *min || n > *max => {
                return Err(format!("must be between {min} and {max}, got {n}"));
            }
            Ok(_) => {}
            Err(_) => return Err(format!("{} is not a whole number", shown(value))),
        },
        FieldKind::Duration => {
            if let Err(e) = humantime::parse_duration(value) {
                return Err(format!(
                    "{} is not a duration ({e}); write it like `30s`, `5m` or `3h`",
                    shown(value)
                ));
            }
        }
        FieldKind::Url { schemes } => {
            let scheme = value.split_once("://").map(|(s, rest)| (s, rest.is_empty()));
            match scheme {
                Some((s, false)) if schemes.iter().any(|ok| ok.eq_ignore_ascii_case(s)) => {}
                _ => {
                    return Err(format!(
                        "{} is not a URL starting with {}",
                        shown(value),
                        schemes.iter().map(|s| format!("{s}://")).collect::<Vec<_>>().join(" or ")
                    ));
                }
            }
        }
        FieldKind::Bool => {
            if value != "true" && value != "false" {
                return Err(format!("{} must be `true` or `false`", shown(value)));
            }
        }
        FieldKind::Choice { options } => {
            if !options.iter().any(|o| o == value) {
                return Err(format!("{} must be one of: {}", shown(value), options.join(", ")));
            }
        }
    }
    match &field.validator {
        Some(f) => f(value),
        None => Ok(()),
    }
}

fn shorten(v: &str) -> String {
    agentflow_core::run::truncate(v, 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        let f = SettingField::new("engine.workers", "Engine").integer(1, 8);
        assert!(f.check("3").is_ok());
        assert_eq!(f.check("9").unwrap_err(), "must be between 1 and 8, got 9");
        assert!(f.check("three").unwrap_err().contains("`three` is not a whole number"));
        let d = SettingField::new("engine.poll_interval", "Engine").duration();
        assert!(d.check("30s").is_ok());
        assert!(d.check("soon").unwrap_err().contains("is not a duration"));
        let u = SettingField::new("linear.api_url", "Linear").url(["http", "https"]);
        assert!(u.check("https://api.linear.app/graphql").is_ok());
        assert!(u.check("ftp://x").is_err());
        assert!(u.check("https://").is_err());
        let c = SettingField::new("claude.mode", "Claude").choice(["a", "b"]);
        assert!(c.check("c").unwrap_err().contains("one of: a, b"));
        let b = SettingField::new("x.y", "X").boolean();
        assert!(b.check("yes").is_err() && b.check("true").is_ok());
    }

    #[test]
    fn secrets_are_never_echoed() {
        let f = SettingField::new("linear.api_key", "Linear").secret().validate(|v| {
            if v.starts_with("lin_") { Ok(()) } else { Err("must start with lin_".into()) }
        });
        let err = f.check(" sk-verysecret ").unwrap_err();
        assert!(!err.contains("verysecret"), "{err}");
        let err = f.check("sk-verysecret").unwrap_err();
        assert!(!err.contains("verysecret"), "{err}");
        let i = SettingField::new("a.b", "A").secret().integer(1, 2);
        assert!(!i.check("hunter2").unwrap_err().contains("hunter2"));
    }

    #[test]
    fn required_and_custom() {
        let f = SettingField::new("linear.team", "Linear").label("Team key").required();
        assert_eq!(f.check("").unwrap_err(), "Team key is required");
        let opt = SettingField::new("x.y", "X");
        assert!(opt.check("  ").unwrap_err().contains("reset"));
    }
}
