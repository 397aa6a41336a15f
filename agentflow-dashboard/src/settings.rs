//! The settings the dashboard shows and edits: which keys exist, how each is validated, where
//! its current value comes from, and how a saved value is applied without a restart.

mod validate;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use agentflow_core::{Result, SettingSource};
use futures::future::BoxFuture;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;

/// A custom check of a value; `Err` holds the message shown next to the field.
pub type Validator = Arc<dyn Fn(&str) -> std::result::Result<(), String> + Send + Sync>;

/// Applies a saved setting to the running service (e.g. `engine.workers` → `set_workers`).
pub type ApplyFn = Arc<dyn Fn(SettingChange) -> BoxFuture<'static, Result<()>> + Send + Sync>;

/// Looks up an environment variable (replaceable in tests).
pub type EnvFn = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// What kind of value a setting holds; decides its validation and its input in the form.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum FieldKind {
    /// Free text.
    Text,
    /// A whole number in `min..=max`.
    Integer {
        /// Smallest allowed.
        min: i64,
        /// Largest allowed.
        max: i64,
    },
    /// A human duration such as `30s` or `3h`.
    Duration,
    /// A URL whose scheme is one of `schemes`.
    Url {
        /// Allowed schemes, e.g. `["http", "https"]`.
        schemes: Vec<String>,
    },
    /// `true` or `false`.
    Bool,
    /// One of a fixed list.
    Choice {
        /// The allowed values.
        options: Vec<String>,
    },
}

/// One known setting.
///
/// ```
/// use agentflow_dashboard::SettingField;
/// let f = SettingField::new("engine.workers", "Engine")
///     .label("Concurrent tasks")
///     .integer(1, 64)
///     .default_value("3")
///     .env("MAX_CONCURRENT_TASKS")
///     .live();
/// assert_eq!(f.env_names(), ["AGENTFLOW_ENGINE_WORKERS", "MAX_CONCURRENT_TASKS"]);
/// ```
#[derive(Clone)]
pub struct SettingField {
    pub(crate) key: String,
    pub(crate) group: String,
    pub(crate) label: String,
    pub(crate) help: String,
    pub(crate) secret: bool,
    pub(crate) live: bool,
    pub(crate) required: bool,
    pub(crate) kind: FieldKind,
    pub(crate) env: Vec<String>,
    pub(crate) default: Option<String>,
    pub(crate) validator: Option<Validator>,
}

impl fmt::Debug for SettingField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SettingField")
            .field("key", &self.key)
            .field("group", &self.group)
            .field("secret", &self.secret)
            .field("live", &self.live)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl SettingField {
    /// A text setting `key` (e.g. `linear.api_key`) shown in `group` (e.g. `Linear`).
    pub fn new(key: impl Into<String>, group: impl Into<String>) -> Self {
        let key = key.into();
        SettingField {
            label: key.clone(),
            key,
            group: group.into(),
            help: String::new(),
            secret: false,
            live: false,
            required: false,
            kind: FieldKind::Text,
            env: Vec::new(),
            default: None,
            validator: None,
        }
    }

    /// The label shown in the form.
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = label.into();
        self
    }

    /// A line of help under the field.
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = help.into();
        self
    }

    /// The value is a secret: always shown masked, never sent back.
    pub fn secret(mut self) -> Self {
        self.secret = true;
        self
    }

    /// A saved value takes effect at once (through the schema's apply callback); otherwise it
    /// needs a restart.
    pub fn live(mut self) -> Self {
        self.live = true;
        self
    }

    /// The service cannot work without it: a missing value shows in "Needs configuration".
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }

    /// A whole number in `min..=max`.
    pub fn integer(mut self, min: i64, max: i64) -> Self {
        self.kind = FieldKind::Integer { min, max };
        self
    }

    /// A human duration (`30s`, `5m`, `3h`).
    pub fn duration(mut self) -> Self {
        self.kind = FieldKind::Duration;
        self
    }

    /// A URL with one of `schemes`.
    pub fn url<S: Into<String>>(mut self, schemes: impl IntoIterator<Item = S>) -> Self {
        self.kind = FieldKind::Url { schemes: schemes.into_iter().map(Into::into).collect() };
        self
    }

    /// `true` or `false`.
    pub fn boolean(mut self) -> Self {
        self.kind = FieldKind::Bool;
        self
    }

    /// One of `options`.
    pub fn choice<S: Into<String>>(mut self, options: impl IntoIterator<Item = S>) -> Self {
        self.kind = FieldKind::Choice { options: options.into_iter().map(Into::into).collect() };
        self
    }

    /// The built-in default.
    pub fn default_value(mut self, value: impl Into<String>) -> Self {
        self.default = Some(value.into());
        self
    }

    /// Another environment variable that sets it (after `AGENTFLOW_<KEY>`), e.g. the seed's
    /// `LINEAR_API_KEY`.
    pub fn env(mut self, name: impl Into<String>) -> Self {
        self.env.push(name.into());
        self
    }

    /// A custom check run after the kind's own; `Err` is the message shown next to the field.
    /// It must not repeat a secret value.
    pub fn validate(
        mut self,
        f: impl Fn(&str) -> std::result::Result<(), String> + Send + Sync + 'static,
    ) -> Self {
        self.validator = Some(Arc::new(f));
        self
    }

    /// The key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The environment variables read for it, in order: `AGENTFLOW_<SECTION>_<KEY>` then the
    /// ones given with [`env`](Self::env).
    pub fn env_names(&self) -> Vec<String> {
        let mut names = vec![env_name(&self.key)];
        names.extend(self.env.iter().cloned());
        names
    }

    /// Checks `value`; the message names no secret.
    pub fn check(&self, value: &str) -> std::result::Result<(), String> {
        validate::check(self, value)
    }
}

/// `dashboard.addr` → `AGENTFLOW_DASHBOARD_ADDR`.
pub fn env_name(key: &str) -> String {
    let mut s = String::from("AGENTFLOW_");
    for c in key.chars() {
        s.push(if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' });
    }
    s
}

/// A saved setting handed to the apply callback.
pub struct SettingChange {
    /// The key.
    pub key: String,
    /// The value now in effect (after the save, resolved over every layer); `None` when no
    /// layer sets it.
    pub value: Option<SecretString>,
    /// Where that value comes from.
    pub source: SettingSource,
}

impl SettingChange {
    /// The value in effect, in the clear.
    pub fn expose(&self) -> Option<&str> {
        self.value.as_ref().map(|v| v.expose_secret())
    }
}

impl fmt::Debug for SettingChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SettingChange")
            .field("key", &self.key)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

/// Something the service needs before it can work, shown in the "Needs configuration" panel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MissingItem {
    /// The setting that fixes it, when there is one (the panel links to its field).
    pub key: Option<String>,
    /// What is missing, for a person.
    pub message: String,
}

impl MissingItem {
    /// A missing item fixed by setting `key`.
    pub fn field(key: impl Into<String>, message: impl Into<String>) -> Self {
        MissingItem { key: Some(key.into()), message: message.into() }
    }
}

/// The known settings, the non-database layers of their values, and the live apply callback.
///
/// Values resolve database > environment > file > default, the order of the seed. The dashboard
/// writes only the database layer.
#[derive(Clone)]
pub struct SettingsSchema {
    pub(crate) fields: Vec<SettingField>,
    pub(crate) file: HashMap<String, String>,
    pub(crate) env: EnvFn,
    pub(crate) apply: Option<ApplyFn>,
}

impl Default for SettingsSchema {
    fn default() -> Self {
        SettingsSchema {
            fields: Vec::new(),
            file: HashMap::new(),
            env: Arc::new(|name| std::env::var(name).ok()),
            apply: None,
        }
    }
}

impl fmt::Debug for SettingsSchema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SettingsSchema")
            .field("fields", &self.fields)
            .field("file_keys", &self.file.keys().collect::<Vec<_>>())
            .field("apply", &self.apply.is_some())
            .finish()
    }
}

impl SettingsSchema {
    /// An empty schema reading the process environment.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a field (shown in the order added, grouped by its group).
    pub fn field(mut self, field: SettingField) -> Self {
        self.fields.retain(|f| f.key != field.key);
        self.fields.push(field);
        self
    }

    /// A value from the configuration file.
    pub fn file_value(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.file.insert(key.into(), value.into());
        self
    }

    /// Replaces the environment lookup (the default reads the process environment).
    pub fn environment(
        mut self,
        lookup: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.env = Arc::new(lookup);
        self
    }

    /// The callback that applies a saved [`live`](SettingField::live) setting at once.
    pub fn on_apply<F, Fut>(mut self, f: F) -> Self
    where
        F: Fn(SettingChange) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<()>> + Send + 'static,
    {
        self.apply = Some(Arc::new(move |change| Box::pin(f(change))));
        self
    }

    /// The field for `key`.
    pub fn get(&self, key: &str) -> Option<&SettingField> {
        self.fields.iter().find(|f| f.key == key)
    }

    /// The fields.
    pub fn fields(&self) -> &[SettingField] {
        &self.fields
    }

    /// The value of `field` below the database layer: environment, then file, then default.
    pub fn fallback(&self, field: &SettingField) -> Option<(String, SettingSource)> {
        for name in field.env_names() {
            if let Some(v) = (self.env)(&name).filter(|v| !v.is_empty()) {
                return Some((v, SettingSource::Environment));
            }
        }
        if let Some(v) = self.file.get(&field.key) {
            return Some((v.clone(), SettingSource::File));
        }
        field.default.clone().map(|v| (v, SettingSource::Default))
    }
}
