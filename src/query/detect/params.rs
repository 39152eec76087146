//! Binding: the values every rule's `$placeholders` take (the window, the baseline, the
//! rule's parameters from its defaults or the config), as DataFusion parameter values, never
//! pasted into SQL; and the config tables the rules join (`cfg_org_accounts`,
//! `cfg_trusted_accounts`, `cfg_known_networks`), registered as in-memory tables.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use chrono::{DateTime, Utc};
use datafusion::common::ScalarValue;
use datafusion::execution::context::SessionContext;

use super::DetectError;
use super::config::Config;
use super::rules::{ParamValue, Rule};
use super::window::Window;

/// The parameter whose value the config's `admin_roles` gives every rule.
const ADMIN_ROLE_PATTERN: &str = "admin_role_pattern";

/// The values of `rule`'s placeholders for `window` under `config`.
pub fn values(rule: &Rule, window: &Window, config: &Config) -> HashMap<String, ScalarValue> {
    let mut values = HashMap::new();
    let times = [
        ("window_start", window.start),
        ("window_end", window.end),
        ("baseline_start", window.baseline_start),
    ];
    for (name, time) in times {
        values.insert(name.to_owned(), timestamp(time));
        let date = time.format("%Y-%m-%d").to_string();
        values.insert(format!("{name}_date"), ScalarValue::Utf8(Some(date)));
    }
    let configured = config.thresholds.get(&rule.id);
    for param in &rule.params {
        let value = configured
            .and_then(|values| values.get(&param.name))
            .cloned()
            .or_else(|| global(&param.name, config))
            .unwrap_or_else(|| param.default.clone());
        values.insert(param.name.clone(), scalar(value));
    }
    values
}

/// What the config's global keys say about parameter `name`.
fn global(name: &str, config: &Config) -> Option<ParamValue> {
    match name {
        ADMIN_ROLE_PATTERN => config.admin_roles.clone().map(ParamValue::Text),
        "ipv4_prefix_octets" => Some(ParamValue::Integer(i64::from(config.ipv4_prefix / 8))),
        "ipv6_prefix_hextets" => Some(ParamValue::Integer(i64::from(config.ipv6_prefix / 16))),
        _ => None,
    }
}

fn timestamp(time: DateTime<Utc>) -> ScalarValue {
    ScalarValue::TimestampMicrosecond(Some(time.timestamp_micros()), Some("UTC".into()))
}

fn scalar(value: ParamValue) -> ScalarValue {
    match value {
        ParamValue::Integer(value) => ScalarValue::Int64(Some(value)),
        ParamValue::Number(value) => ScalarValue::Float64(Some(value)),
        ParamValue::Text(text) => ScalarValue::Utf8(Some(text)),
    }
}

/// Registers the config tables (empty when the config says nothing), replacing earlier ones.
pub fn register_config_tables(ctx: &SessionContext, config: &Config) -> Result<(), DetectError> {
    let organization = config
        .organization
        .iter()
        .map(|a| (a.clone(), String::new()));
    let accounts = ["account_id", "name"];
    register(ctx, "cfg_org_accounts", accounts, organization.collect())?;
    register(
        ctx,
        "cfg_trusted_accounts",
        accounts,
        config.trusted.clone(),
    )?;
    let mut networks = Vec::new();
    for (scope, cidr) in &config.known_networks {
        let expanded = cidr
            .compared_networks(config.ipv4_prefix, config.ipv6_prefix)
            .map_err(|reason| DetectError::Table {
                name: "cfg_known_networks",
                reason,
            })?;
        networks.extend(expanded.into_iter().map(|network| (scope.clone(), network)));
    }
    register(ctx, "cfg_known_networks", ["scope", "network"], networks)
}

/// A table of two text columns.
fn register(
    ctx: &SessionContext,
    name: &'static str,
    columns: [&str; 2],
    rows: Vec<(String, String)>,
) -> Result<(), DetectError> {
    let schema = Arc::new(Schema::new(
        columns
            .map(|column| Field::new(column, DataType::Utf8, true))
            .to_vec(),
    ));
    let (first, second): (Vec<String>, Vec<String>) = rows.into_iter().unzip();
    let arrays: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(first)),
        Arc::new(StringArray::from(second)),
    ];
    let batch = RecordBatch::try_new(schema, arrays).map_err(|e| DetectError::Table {
        name,
        reason: e.to_string(),
    })?;
    ctx.deregister_table(name)?;
    ctx.register_batch(name, batch)?;
    Ok(())
}
