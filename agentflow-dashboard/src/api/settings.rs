//! Settings: read (secrets masked, with the source of each value) and save (validated, applied
//! live where the field allows), and the "needs configuration" list.

use std::collections::{BTreeMap, HashMap};

use agentflow_core::{SettingSource, mask_secret};
use axum::Json;
use axum::extract::State;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ApiResult};
use crate::settings::{FieldKind, MissingItem, SettingChange, SettingField};
use crate::state::AppState;

#[derive(Serialize)]
pub(crate) struct SettingsView {
    groups: Vec<Group>,
    missing: Vec<MissingItem>,
}

#[derive(Serialize)]
struct Group {
    name: String,
    fields: Vec<FieldView>,
}

#[derive(Serialize)]
struct FieldView {
    key: String,
    label: String,
    help: String,
    secret: bool,
    live: bool,
    required: bool,
    kind: FieldKind,
    /// The value in effect; masked for secrets.
    value: Option<String>,
    /// Where it comes from; `None` when nothing sets it.
    source: Option<SettingSource>,
    /// Whether a value is saved in the database (so "reset" has something to remove).
    saved: bool,
    env: Vec<String>,
    /// The built-in default (never shown for secrets).
    default: Option<String>,
}

/// Values saved in the store, secrets masked once here (from the unmasked value, so the mask
/// keeps its recognisable prefix and tail whatever the store's listing does).
async fn saved(state: &AppState) -> ApiResult<HashMap<String, String>> {
    let mut out = HashMap::new();
    for listed in state.store.list_settings().await? {
        let secret = listed.secret || state.settings.get(&listed.key).is_some_and(|f| f.secret);
        let value = if secret {
            match state.store.get_setting(&listed.key).await? {
                Some(s) => mask_secret(&s.value),
                None => continue,
            }
        } else {
            listed.value
        };
        out.insert(listed.key, value);
    }
    Ok(out)
}

fn view_of(state: &AppState, field: &SettingField, saved: &HashMap<String, String>) -> FieldView {
    let (value, source) = match saved.get(&field.key) {
        Some(v) => (Some(v.clone()), Some(SettingSource::Database)),
        None => match state.settings.fallback(field) {
            Some((v, src)) => (Some(v), Some(src)),
            None => (None, None),
        },
    };
    let value = if field.secret {
        // Saved values are masked by `saved`; the other layers are masked here.
        value.map(|v| if source == Some(SettingSource::Database) { v } else { mask_secret(&v) })
    } else {
        value
    };
    FieldView {
        key: field.key.clone(),
        label: field.label.clone(),
        help: field.help.clone(),
        secret: field.secret,
        live: field.live,
        required: field.required,
        kind: field.kind.clone(),
        value,
        source,
        saved: saved.contains_key(&field.key),
        env: field.env_names(),
        default: if field.secret { None } else { field.default.clone() },
    }
}

/// What the service still needs: required settings without a value, then the caller's items.
pub(crate) async fn missing(state: &AppState) -> ApiResult<Vec<MissingItem>> {
    let saved = saved(state).await?;
    let mut items: Vec<MissingItem> = state
        .settings
        .fields
        .iter()
        .filter(|f| {
            f.required && !saved.contains_key(&f.key) && state.settings.fallback(f).is_none()
        })
        .map(|f| {
            MissingItem::field(
                &f.key,
                format!(
                    "{} → {} is not set: enter it in Settings or set {}",
                    f.group,
                    f.label,
                    f.env_names().join(" or ")
                ),
            )
        })
        .collect();
    if let Some(provider) = &state.needs_config {
        for item in provider().await {
            let dup = item.key.is_some() && items.iter().any(|i| i.key == item.key);
            if !dup {
                items.push(item);
            }
        }
    }
    Ok(items)
}

pub(crate) async fn get(State(state): State<AppState>) -> ApiResult<Json<SettingsView>> {
    Ok(Json(settings_view(&state).await?))
}

async fn settings_view(state: &AppState) -> ApiResult<SettingsView> {
    let saved = saved(state).await?;
    let mut groups: Vec<Group> = Vec::new();
    for field in &state.settings.fields {
        let view = view_of(state, field, &saved);
        match groups.iter_mut().find(|g| g.name == field.group) {
            Some(g) => g.fields.push(view),
            None => groups.push(Group { name: field.group.clone(), fields: vec![view] }),
        }
    }
    Ok(SettingsView { groups, missing: missing(state).await? })
}

#[derive(Serialize)]
pub(crate) struct MissingView {
    missing: Vec<MissingItem>,
}

pub(crate) async fn needs_configuration(
    State(state): State<AppState>,
) -> ApiResult<Json<MissingView>> {
    Ok(Json(MissingView { missing: missing(&state).await? }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SettingsUpdate {
    /// New values; `null` removes the saved value (falling back to environment, file, default).
    values: BTreeMap<String, Option<String>>,
}

#[derive(Serialize)]
#[serde(rename_all = "snake_case")]
enum Outcome {
    /// Saved and already in effect.
    AppliedLive,
    /// Saved; takes effect at the next start.
    NeedsRestart,
    /// Saved, but applying it failed; takes effect at the next start.
    ApplyFailed,
}

#[derive(Serialize)]
struct SaveResult {
    key: String,
    outcome: Outcome,
    message: String,
}

#[derive(Serialize)]
pub(crate) struct SaveView {
    results: Vec<SaveResult>,
    settings: SettingsView,
}

pub(crate) async fn put(
    State(state): State<AppState>,
    Json(update): Json<SettingsUpdate>,
) -> ApiResult<Json<SaveView>> {
    if update.values.is_empty() {
        return Err(ApiError::bad_request(
            "nothing to save: send {\"values\": {\"<key>\": \"<value>\"}}",
        ));
    }
    // Validate everything first: a form is saved whole or not at all.
    let mut errors = BTreeMap::new();
    for (key, value) in &update.values {
        match (state.settings.get(key), value) {
            (None, _) => {
                errors.insert(key.clone(), format!("unknown setting `{key}`"));
            }
            (Some(field), Some(v)) => {
                if let Err(e) = field.check(v) {
                    errors.insert(key.clone(), e);
                }
            }
            (Some(_), None) => {}
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::invalid_fields(errors));
    }

    let mut results = Vec::new();
    for (key, value) in &update.values {
        let Some(field) = state.settings.get(key) else { continue };
        match value {
            Some(v) => state.store.put_setting(key, v, field.secret).await?,
            None => {
                state.store.delete_setting(key).await?;
            }
        }
        tracing::info!(key = %key, reset = value.is_none(), "setting saved from the dashboard");
        let (outcome, message) = if !field.live {
            (Outcome::NeedsRestart, "saved — needs restart".to_owned())
        } else if let Some(apply) = &state.settings.apply {
            let effective = match value {
                Some(v) => Some((v.clone(), SettingSource::Database)),
                None => state.settings.fallback(field),
            };
            let change = SettingChange {
                key: key.clone(),
                source: effective.as_ref().map(|(_, s)| *s).unwrap_or(SettingSource::Default),
                value: effective.map(|(v, _)| SecretString::from(v)),
            };
            match apply(change).await {
                Ok(()) => (Outcome::AppliedLive, "saved — applied live".to_owned()),
                Err(e) => {
                    tracing::warn!(key = %key, error = %e, "applying a saved setting failed");
                    (
                        Outcome::ApplyFailed,
                        format!("saved, but applying it failed: {e}; restart to apply"),
                    )
                }
            }
        } else {
            (Outcome::NeedsRestart, "saved — needs restart".to_owned())
        };
        results.push(SaveResult { key: key.clone(), outcome, message });
    }
    Ok(Json(SaveView { results, settings: settings_view(&state).await? }))
}
