//! The settings schema the tests use, with known secret values.

#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use agentflow_core::Error;
use agentflow_dashboard::{SettingField, SettingsSchema};

use super::harness::Harness;

pub const LINEAR_KEY: &str = "lin_api_0123456789abcdefghij0123456789wxyz";
pub const ENV_KEY: &str = "sk-ant-api03-ENVSECRETenvsecret0123456789-9876";
pub const NEW_KEY: &str = "lin_api_NEWSECRETnewsecret0123456789abcd";

pub fn schema(h: &Harness, applied: Arc<AtomicUsize>) -> SettingsSchema {
    let live = h.handle.clone();
    SettingsSchema::new()
        .field(
            SettingField::new("linear.api_key", "Linear")
                .label("API key")
                .secret()
                .required()
                .env("LINEAR_API_KEY")
                .validate(|v| {
                    if v.starts_with("lin_") {
                        Ok(())
                    } else {
                        Err("a Linear key starts with lin_".into())
                    }
                }),
        )
        .field(SettingField::new("linear.team", "Linear").label("Team key").required())
        .field(
            SettingField::new("claude.api_key", "Claude")
                .label("Anthropic API key")
                .secret()
                .env("ANTHROPIC_API_KEY"),
        )
        .field(
            SettingField::new("engine.workers", "Engine")
                .label("Concurrent tasks")
                .integer(1, 64)
                .default_value("3")
                .live(),
        )
        .field(
            SettingField::new("engine.poll_interval", "Engine")
                .label("Poll interval")
                .duration()
                .default_value("30s")
                .live(),
        )
        .field(
            SettingField::new("storage.database_url", "Storage")
                .label("Database URL")
                .url(["sqlite", "postgres"]),
        )
        .file_value("storage.database_url", "sqlite://agentflow.db")
        .environment(|name| (name == "ANTHROPIC_API_KEY").then(|| ENV_KEY.to_owned()))
        .on_apply(move |change| {
            let live = live.clone();
            let applied = applied.clone();
            async move {
                applied.fetch_add(1, Ordering::SeqCst);
                match change.key.as_str() {
                    "engine.workers" => live.set_workers(
                        change
                            .expose()
                            .unwrap_or("3")
                            .parse()
                            .map_err(|_| Error::InvalidInput("workers".into()))?,
                    ),
                    "engine.poll_interval" => live.set_poll_interval(
                        humantime::parse_duration(change.expose().unwrap_or("30s"))
                            .map_err(|e| Error::InvalidInput(e.to_string()))?,
                    ),
                    _ => {}
                }
                Ok(())
            }
        })
}
