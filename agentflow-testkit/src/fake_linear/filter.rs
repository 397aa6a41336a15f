//! Linear's filter inputs (`IssueFilter`, `CommentFilter`, …) evaluated against JSON views of the
//! fake's entities, plus cursor pagination.
//!
//! A filter on a field the view does not have is an error rather than a silent match, so a
//! client relying on a filter the fake does not understand finds out in tests.

use chrono::{DateTime, Duration, Utc};
use serde_json::{Map, Value};

const COMPARATORS: [&str; 18] = [
    "eq",
    "neq",
    "in",
    "nin",
    "gt",
    "gte",
    "lt",
    "lte",
    "contains",
    "containsIgnoreCase",
    "notContains",
    "startsWith",
    "endsWith",
    "eqIgnoreCase",
    "neqIgnoreCase",
    "startsWithIgnoreCase",
    "notContainsIgnoreCase",
    "null",
];

/// Whether `view` passes `filter`.
pub(crate) fn matches(view: &Value, filter: &Map<String, Value>) -> Result<bool, String> {
    for (key, cond) in filter {
        let ok = match key.as_str() {
            "and" => all(view, cond)?,
            "or" => any(view, cond)?,
            _ => {
                let Value::Object(obj) = view else {
                    return Err(format!("cannot filter on `{key}` of a scalar"));
                };
                let Some(field) = obj.get(key) else {
                    return Err(format!("fake-linear cannot filter on `{key}`"));
                };
                field_matches(field, cond)?
            }
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

fn all(view: &Value, cond: &Value) -> Result<bool, String> {
    for f in cond.as_array().into_iter().flatten() {
        if let Value::Object(f) = f
            && !matches(view, f)?
        {
            return Ok(false);
        }
    }
    Ok(true)
}

fn any(view: &Value, cond: &Value) -> Result<bool, String> {
    let list = cond.as_array().map(Vec::as_slice).unwrap_or_default();
    if list.is_empty() {
        return Ok(true);
    }
    for f in list {
        if let Value::Object(f) = f
            && matches(view, f)?
        {
            return Ok(true);
        }
    }
    Ok(false)
}

fn is_comparator(cond: &Map<String, Value>) -> bool {
    !cond.is_empty() && cond.keys().all(|k| COMPARATORS.contains(&k.as_str()))
}

fn field_matches(field: &Value, cond: &Value) -> Result<bool, String> {
    let Value::Object(cond) = cond else {
        return Err(format!("filter condition must be an object, got {cond}"));
    };
    if let Some(Value::Bool(want_null)) = cond.get("null") {
        if field.is_null() != *want_null {
            return Ok(false);
        }
        if cond.len() == 1 {
            return Ok(true);
        }
    }
    if is_comparator(cond) {
        return compare(field, cond);
    }
    match field {
        // A relation that is absent fails every condition on it (an inner join).
        Value::Null => Ok(false),
        Value::Array(items) => collection(items, cond),
        _ => {
            let mut rest = cond.clone();
            rest.remove("null");
            matches(field, &rest)
        }
    }
}

fn collection(items: &[Value], cond: &Map<String, Value>) -> Result<bool, String> {
    for (key, c) in cond {
        let ok = match key.as_str() {
            "null" => true,
            "some" => {
                let f = c.as_object().cloned().unwrap_or_default();
                let mut hit = false;
                for item in items {
                    hit |= matches(item, &f)?;
                }
                hit
            }
            "every" => {
                let f = c.as_object().cloned().unwrap_or_default();
                let mut all_ok = true;
                for item in items {
                    all_ok &= matches(item, &f)?;
                }
                all_ok
            }
            "length" => {
                compare(&Value::from(items.len() as u64), c.as_object().unwrap_or(&Map::new()))?
            }
            // A field condition directly on a collection means "some item matches".
            other => {
                let mut f = Map::new();
                f.insert(other.to_owned(), c.clone());
                let mut hit = false;
                for item in items {
                    hit |= matches(item, &f)?;
                }
                hit
            }
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Compares a scalar with a comparator object (`{eq: …}`, `{gt: …}`, …).
fn compare(field: &Value, cond: &Map<String, Value>) -> Result<bool, String> {
    for (op, want) in cond {
        let ok = match op.as_str() {
            "null" => true,
            "eq" => equal(field, want)?,
            "neq" => !equal(field, want)?,
            "in" => {
                let mut hit = false;
                for w in want.as_array().into_iter().flatten() {
                    hit |= equal(field, w)?;
                }
                hit
            }
            "nin" => {
                let mut hit = false;
                for w in want.as_array().into_iter().flatten() {
                    hit |= equal(field, w)?;
                }
                !hit
            }
            "gt" => order(field, want)? == Some(std::cmp::Ordering::Greater),
            "gte" => matches!(
                order(field, want)?,
                Some(std::cmp::Ordering::Greater | std::cmp::Ordering::Equal)
            ),
            "lt" => order(field, want)? == Some(std::cmp::Ordering::Less),
            "lte" => matches!(
                order(field, want)?,
                Some(std::cmp::Ordering::Less | std::cmp::Ordering::Equal)
            ),
            "contains" => text(field).contains(&text(want)),
            "notContains" => !text(field).contains(&text(want)),
            "containsIgnoreCase" => text(field).to_lowercase().contains(&text(want).to_lowercase()),
            "notContainsIgnoreCase" => {
                !text(field).to_lowercase().contains(&text(want).to_lowercase())
            }
            "startsWith" => text(field).starts_with(&text(want)),
            "startsWithIgnoreCase" => {
                text(field).to_lowercase().starts_with(&text(want).to_lowercase())
            }
            "endsWith" => text(field).ends_with(&text(want)),
            "eqIgnoreCase" => text(field).eq_ignore_ascii_case(&text(want)),
            "neqIgnoreCase" => !text(field).eq_ignore_ascii_case(&text(want)),
            other => return Err(format!("fake-linear does not support comparator `{other}`")),
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn equal(field: &Value, want: &Value) -> Result<bool, String> {
    Ok(match (field, want) {
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (Value::String(_), Value::String(_)) => {
            order(field, want)? == Some(std::cmp::Ordering::Equal)
        }
        (a, b) => a == b,
    })
}

/// Orders numbers as numbers, dates (and durations relative to now) as times, else as text.
fn order(field: &Value, want: &Value) -> Result<Option<std::cmp::Ordering>, String> {
    match (field, want) {
        (Value::Null, _) | (_, Value::Null) => Ok(None),
        (Value::Number(a), Value::Number(b)) => Ok(a.as_f64().partial_cmp(&b.as_f64())),
        (Value::String(a), Value::String(b)) => {
            if let Ok(a_time) = DateTime::parse_from_rfc3339(a) {
                let b_time = date_or_duration(b)?;
                Ok(Some(a_time.with_timezone(&Utc).cmp(&b_time)))
            } else {
                Ok(Some(a.as_str().cmp(b.as_str())))
            }
        }
        (a, b) => Err(format!("cannot compare {a} with {b}")),
    }
}

/// A `DateTimeOrDuration`: an RFC 3339 time, or an ISO-8601 duration relative to now (`-PT1H`).
pub(crate) fn date_or_duration(s: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    Ok(Utc::now() + iso_duration(s)?)
}

/// Parses `[-]P[nW][nD][T[nH][nM][n[.n]S]]` (years and months are not needed by agentflow).
pub(crate) fn iso_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("invalid DateTimeOrDuration `{s}`");
    let (neg, rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let rest = rest.strip_prefix('P').ok_or_else(bad)?;
    let (date, time) = match rest.split_once('T') {
        Some((d, t)) => (d, t),
        None => (rest, ""),
    };
    let mut millis: f64 = 0.0;
    let mut num = String::new();
    for (part, is_time) in [(date, false), (time, true)] {
        for ch in part.chars() {
            if ch.is_ascii_digit() || ch == '.' {
                num.push(ch);
                continue;
            }
            let n: f64 = num.parse().map_err(|_| bad())?;
            num.clear();
            let unit = match (ch, is_time) {
                ('W', false) => 7.0 * 86_400_000.0,
                ('D', false) => 86_400_000.0,
                ('H', true) => 3_600_000.0,
                ('M', true) => 60_000.0,
                ('S', true) => 1_000.0,
                _ => return Err(bad()),
            };
            millis += n * unit;
        }
        if !num.is_empty() {
            return Err(bad());
        }
    }
    let d = Duration::milliseconds(millis as i64);
    Ok(if neg { -d } else { d })
}

/// A page of `items` (already filtered and ordered) after the cursor `after` (an item id).
pub(crate) struct PageOf<T> {
    pub(crate) items: Vec<T>,
    pub(crate) has_next: bool,
    pub(crate) end_cursor: Option<String>,
}

/// Cuts a page of at most `first` (default 50, at most 250, like Linear) after `after`.
pub(crate) fn paginate<T>(
    items: Vec<T>,
    id: impl Fn(&T) -> &str,
    first: Option<i64>,
    after: Option<&str>,
) -> Result<PageOf<T>, String> {
    let first = first.unwrap_or(50);
    if !(0..=250).contains(&first) {
        return Err(format!("first must be between 0 and 250, got {first}"));
    }
    let start = match after {
        None => 0,
        Some(c) => items
            .iter()
            .position(|i| id(i) == c)
            .map(|p| p + 1)
            .ok_or_else(|| format!("invalid cursor `{c}`"))?,
    };
    let total = items.len();
    let page: Vec<T> = items.into_iter().skip(start).take(first as usize).collect();
    let has_next = start + page.len() < total;
    let end_cursor = page.last().map(|i| id(i).to_owned());
    Ok(PageOf { items: page, has_next, end_cursor })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn m(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn nested_relation_and_collection_filters() {
        let view = json!({
            "team": {"key": "ENG"}, "state": {"id": "s1"},
            "labels": [{"name": "agent"}, {"name": "bug"}], "user": null,
        });
        assert!(matches(&view, &m(json!({"team": {"key": {"in": ["ENG"]}}}))).unwrap());
        assert!(!matches(&view, &m(json!({"state": {"id": {"in": ["s2"]}}}))).unwrap());
        assert!(
            matches(&view, &m(json!({"labels": {"some": {"name": {"in": ["agent"]}}}}))).unwrap()
        );
        assert!(
            !matches(&view, &m(json!({"labels": {"every": {"name": {"eq": "agent"}}}}))).unwrap()
        );
        assert!(!matches(&view, &m(json!({"user": {"isMe": {"eq": false}}}))).unwrap());
        assert!(matches(&view, &m(json!({"user": {"null": true}}))).unwrap());
        assert!(matches(&view, &m(json!({"nope": {"eq": 1}}))).is_err());
    }

    #[test]
    fn dates_compare_with_times_and_durations() {
        let view = json!({"createdAt": Utc::now().to_rfc3339()});
        assert!(matches(&view, &m(json!({"createdAt": {"gt": "-PT1H"}}))).unwrap());
        assert!(!matches(&view, &m(json!({"createdAt": {"gt": "PT1H"}}))).unwrap());
        assert!(matches(&view, &m(json!({"createdAt": {"gt": "2020-01-01T00:00:00Z"}}))).unwrap());
        assert_eq!(iso_duration("-P1DT1H30M").unwrap(), -Duration::minutes(24 * 60 + 90));
        assert!(iso_duration("P1Y").is_err());
    }

    #[test]
    fn pagination_walks_every_item_once() {
        let items: Vec<String> = (0..7).map(|i| i.to_string()).collect();
        let mut seen = Vec::new();
        let mut after = None;
        for _ in 0..10 {
            let p = paginate(items.clone(), |s| s.as_str(), Some(3), after.as_deref()).unwrap();
            seen.extend(p.items);
            if !p.has_next {
                break;
            }
            after = p.end_cursor;
        }
        assert_eq!(seen, items);
        assert!(paginate(items, |s| s.as_str(), Some(251), None).is_err());
    }
}
