//! One CloudTrail record (its top-level fields as raw JSON) into one [`Row`].
//!
//! Every top-level field lands somewhere: in its typed column when the column can give it back
//! exactly, otherwise in `unmapped` as written (the typed column then holds a best-effort value).
//! `rebuild` relies on exactly this rule, through the [`TOP_LEVEL`] table they share.

use std::borrow::Cow;

use serde_json::value::RawValue;

use super::identity::{flatten_into, parse_bool};
use super::lenient::{json_string, nests_deeper_than, object_fields};
pub use super::secrets::token_fingerprint;
use super::secrets::{
    may_hold_secret, quoted, redact, redacted, secret_key, secret_value_fingerprint,
};
use super::sts::{StsCall, derive_into, is_credential_call};
use super::time::{is_canonical, parse_event_time};
use crate::lake::schema::{Cell, Row, col};

/// How a top-level field is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// A JSON string in a text column.
    Text,
    /// A JSON boolean in a boolean column.
    Bool,
    /// The strings "true"/"false" in a boolean column (`sessionCredentialFromConsole`).
    BoolText,
    /// Any JSON value but null, as JSON text.
    Json,
    /// `eventTime` in the canonical `YYYY-MM-DDTHH:MM:SSZ` form.
    Time,
    /// `tlsDetails`, an object of three strings spread over the `tls_*` columns.
    Tls,
}

/// Top-level CloudTrail fields with a column of their own.
pub const TOP_LEVEL: &[(&str, usize, FieldKind)] = &[
    ("eventTime", col::EVENT_TIME, FieldKind::Time),
    ("eventID", col::EVENT_ID, FieldKind::Text),
    ("eventName", col::EVENT_NAME, FieldKind::Text),
    ("eventSource", col::EVENT_SOURCE, FieldKind::Text),
    ("awsRegion", col::AWS_REGION, FieldKind::Text),
    ("sourceIPAddress", col::SOURCE_IP_ADDRESS, FieldKind::Text),
    ("userAgent", col::USER_AGENT, FieldKind::Text),
    ("errorCode", col::ERROR_CODE, FieldKind::Text),
    ("errorMessage", col::ERROR_MESSAGE, FieldKind::Text),
    ("readOnly", col::READ_ONLY, FieldKind::Bool),
    ("eventType", col::EVENT_TYPE, FieldKind::Text),
    ("eventCategory", col::EVENT_CATEGORY, FieldKind::Text),
    ("managementEvent", col::MANAGEMENT_EVENT, FieldKind::Bool),
    (
        "recipientAccountId",
        col::RECIPIENT_ACCOUNT_ID,
        FieldKind::Text,
    ),
    ("sharedEventID", col::SHARED_EVENT_ID, FieldKind::Text),
    ("requestID", col::REQUEST_ID, FieldKind::Text),
    ("eventVersion", col::EVENT_VERSION, FieldKind::Text),
    ("apiVersion", col::API_VERSION, FieldKind::Text),
    ("vpcEndpointId", col::VPC_ENDPOINT_ID, FieldKind::Text),
    (
        "vpcEndpointAccountId",
        col::VPC_ENDPOINT_ACCOUNT_ID,
        FieldKind::Text,
    ),
    ("tlsDetails", col::TLS_VERSION, FieldKind::Tls),
    (
        "sessionCredentialFromConsole",
        col::SESSION_CREDENTIAL_FROM_CONSOLE,
        FieldKind::BoolText,
    ),
    ("userIdentity", col::USER_IDENTITY, FieldKind::Json),
    (
        "requestParameters",
        col::REQUEST_PARAMETERS,
        FieldKind::Json,
    ),
    ("responseElements", col::RESPONSE_ELEMENTS, FieldKind::Json),
    (
        "additionalEventData",
        col::ADDITIONAL_EVENT_DATA,
        FieldKind::Json,
    ),
    ("resources", col::RESOURCES, FieldKind::Json),
    (
        "serviceEventDetails",
        col::SERVICE_EVENT_DETAILS,
        FieldKind::Json,
    ),
    ("addendum", col::ADDENDUM, FieldKind::Json),
];

/// The keys of `tlsDetails`, in the order of the `tls_*` columns.
pub const TLS_KEYS: [(&str, usize); 3] = [
    ("tlsVersion", col::TLS_VERSION),
    ("cipherSuite", col::TLS_CIPHER_SUITE),
    (
        "clientProvidedHostHeader",
        col::TLS_CLIENT_PROVIDED_HOST_HEADER,
    ),
];

/// Logstash's time field: used for `event_time` when `eventTime` is absent.
pub const LOGSTASH_TIME: &str = "@timestamp";

/// Limits that keep one record from costing unbounded memory or recursion downstream.
#[derive(Debug, Clone, Copy)]
pub struct RecordLimits {
    pub max_record_bytes: usize,
    pub max_depth: usize,
}

impl Default for RecordLimits {
    fn default() -> Self {
        RecordLimits {
            max_record_bytes: 1 << 20,
            max_depth: 64,
        }
    }
}

/// The top-level fields of one record, values unparsed.
#[derive(Debug, Default)]
pub struct RecordFields<'a> {
    pub fields: Vec<(Cow<'a, str>, &'a RawValue)>,
    /// The record's bytes up to the end of its last value (empty when not known).
    pub raw: &'a [u8],
}

impl<'a> RecordFields<'a> {
    /// The value of a key; of its last occurrence when it is duplicated, as JSON parsers read it.
    pub fn get(&self, key: &str) -> Option<&'a RawValue> {
        self.fields.iter().rfind(|(k, _)| k == key).map(|(_, v)| *v)
    }

    /// False when the record certainly holds no secret (vectorised searches of its bytes).
    pub fn may_hold_secret(&self) -> bool {
        if !self.raw.is_empty() {
            return may_hold_secret(self.raw);
        }
        self.fields
            .iter()
            .any(|(k, v)| may_hold_secret(k.as_bytes()) || may_hold_secret(v.get().as_bytes()))
    }

    /// The record as JSON text again, secrets redacted, in pieces (for the rejected-records
    /// log, which keeps a bounded prefix and hashes the rest without holding it).
    pub fn write_json(&self, mut write: impl FnMut(&str)) {
        let secrets = self.may_hold_secret();
        write("{");
        for (index, (key, raw)) in self.fields.iter().enumerate() {
            let mut head = String::with_capacity(key.len() + 4);
            if index > 0 {
                head.push(',');
            }
            push_json_string(&mut head, key);
            head.push(':');
            write(&head);
            match (secrets, secret_key(key)) {
                (false, _) => write(raw.get()),
                (true, Some(_)) => match secret_value_fingerprint(raw.get()) {
                    Some(fingerprint) => write(&serde_json::Value::from(fingerprint).to_string()),
                    None => write(raw.get()),
                },
                (true, None) => write(&redacted(raw.get())),
            }
        }
        write("}");
    }

    /// The record as JSON text again, secrets redacted.
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(64);
        self.write_json(|piece| out.push_str(piece));
        out
    }

    fn byte_len(&self) -> usize {
        self.fields
            .iter()
            .map(|(k, v)| k.len() + v.get().len() + 4)
            .sum()
    }
}

/// Why a record was refused; the record itself goes to the rejected log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection(pub String);

/// Where the earlier values of a duplicated top-level key are kept in `unmapped`: an object from
/// each such key to its earlier values, in order (the last value is stored as usual).
pub const DUPLICATE_KEYS: &str = "sts_audit_duplicate_keys";

/// Turns one record into a row; `source_file` is where it came from.
pub fn to_row<'a>(
    record: &'a RecordFields<'a>,
    source_file: &'a str,
    limits: &RecordLimits,
) -> Result<Row<'a>, Rejection> {
    check_limits(record, limits)?;
    let mut row = Row::default();
    // Nearly every record has a null payload or two to keep here.
    let mut unmapped: Vec<(&str, &RawValue)> = Vec::with_capacity(4);
    let mut earlier = Vec::new();
    if !fill(record, &mut row, &mut unmapped, None) {
        // A duplicated key (rare): again, keeping the earlier values apart.
        row = Row::default();
        unmapped.clear();
        fill(record, &mut row, &mut unmapped, Some(&mut earlier));
    }
    resolve_event_time(record, &mut row, &mut unmapped)?;
    if row.text(col::EVENT_ID).is_none() {
        return Err(Rejection("record has no eventID string".into()));
    }
    if row.text(col::USER_IDENTITY).is_some() {
        let identity = record.get("userIdentity").map_or("null", RawValue::get);
        flatten_into(identity, &mut row);
    }
    if !unmapped.is_empty() || !earlier.is_empty() {
        let text = unmapped_text(unmapped, &earlier);
        row.set(col::UNMAPPED, Cell::Text(Cow::Owned(text)));
    }
    if record.may_hold_secret() {
        protect_secrets(&mut row);
    }
    derive_sts_columns(&mut row);
    row.set(col::SOURCE_FILE, Cell::text(source_file));
    Ok(row)
}

/// Stores each field in its column or in `unmapped`. With `earlier`, a value whose key comes
/// again later goes there instead; without, returns false at the first duplicated key.
fn fill<'a>(
    record: &'a RecordFields<'a>,
    row: &mut Row<'a>,
    unmapped: &mut Vec<(&'a str, &'a RawValue)>,
    mut earlier: Option<&mut Vec<(&'a str, &'a RawValue)>>,
) -> bool {
    let mut seen = 0u128;
    for (index, (key, raw)) in record.fields.iter().enumerate() {
        if let Some(earlier) = earlier.as_deref_mut()
            && record.fields[index + 1..].iter().any(|(k, _)| k == key)
        {
            earlier.push((key, raw));
            continue;
        }
        let checking = earlier.is_none();
        match column_of(key) {
            Some((column, kind)) => {
                let bit = 1u128 << (column % 128);
                if checking && seen & bit != 0 {
                    return false;
                }
                seen |= bit;
                store(key, raw, column, kind, row, unmapped);
            }
            None => {
                if checking && unmapped.iter().any(|(k, _)| k == key) {
                    return false;
                }
                unmapped.push((key, raw));
            }
        }
    }
    true
}

/// `unmapped` as a JSON object, with the earlier values of duplicated keys under
/// [`DUPLICATE_KEYS`].
fn unmapped_text(unmapped: Vec<(&str, &RawValue)>, earlier: &[(&str, &RawValue)]) -> String {
    let mut text = object_text(unmapped);
    if earlier.is_empty() {
        return text;
    }
    let mut keys: Vec<&str> = Vec::new();
    for (key, _) in earlier {
        if !keys.contains(key) {
            keys.push(key);
        }
    }
    text.pop();
    if text.len() > 1 {
        text.push(',');
    }
    push_json_string(&mut text, DUPLICATE_KEYS);
    text.push_str(":{");
    for (index, key) in keys.iter().enumerate() {
        if index > 0 {
            text.push(',');
        }
        push_json_string(&mut text, key);
        let values: Vec<&str> = earlier
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, value)| value.get())
            .collect();
        text.push_str(&format!(":[{}]", values.join(",")));
    }
    text.push_str("}}");
    text
}

fn check_limits(record: &RecordFields, limits: &RecordLimits) -> Result<(), Rejection> {
    let size = record.byte_len();
    if size > limits.max_record_bytes {
        return Err(Rejection(format!(
            "record is {size} bytes, over the cap of {} (--max-record-size)",
            limits.max_record_bytes
        )));
    }
    // Only objects and arrays nest, and only when they hold more brackets than the limit.
    let may_nest = |raw: &str| raw.len() > limits.max_depth && raw.starts_with(['{', '[']);
    let too_deep = record
        .fields
        .iter()
        .map(|(_, raw)| raw.get())
        .any(|raw| may_nest(raw) && nests_deeper_than(raw, limits.max_depth));
    if too_deep {
        return Err(Rejection(format!(
            "record nests deeper than {} levels",
            limits.max_depth
        )));
    }
    Ok(())
}

/// The column and kind of a top-level key (a `match`, so the hot path does no hashing).
pub fn column_of(key: &str) -> Option<(usize, FieldKind)> {
    let index = match key {
        "eventTime" => 0,
        "eventID" => 1,
        "eventName" => 2,
        "eventSource" => 3,
        "awsRegion" => 4,
        "sourceIPAddress" => 5,
        "userAgent" => 6,
        "errorCode" => 7,
        "errorMessage" => 8,
        "readOnly" => 9,
        "eventType" => 10,
        "eventCategory" => 11,
        "managementEvent" => 12,
        "recipientAccountId" => 13,
        "sharedEventID" => 14,
        "requestID" => 15,
        "eventVersion" => 16,
        "apiVersion" => 17,
        "vpcEndpointId" => 18,
        "vpcEndpointAccountId" => 19,
        "tlsDetails" => 20,
        "sessionCredentialFromConsole" => 21,
        "userIdentity" => 22,
        "requestParameters" => 23,
        "responseElements" => 24,
        "additionalEventData" => 25,
        "resources" => 26,
        "serviceEventDetails" => 27,
        "addendum" => 28,
        _ => return None,
    };
    let (_, column, kind) = TOP_LEVEL[index];
    Some((column, kind))
}

fn store<'a>(
    key: &'a str,
    raw: &'a RawValue,
    column: usize,
    kind: FieldKind,
    row: &mut Row<'a>,
    unmapped: &mut Vec<(&'a str, &'a RawValue)>,
) {
    let text = raw.get();
    let exact = match kind {
        FieldKind::Text => json_string(text).map(|value| row.set(column, Cell::Text(value))),
        FieldKind::Bool => parse_bool(text).map(|flag| row.set(column, Cell::Bool(flag))),
        FieldKind::BoolText => json_string(text)
            .and_then(|value| parse_bool(&value))
            .map(|flag| row.set(column, Cell::Bool(flag))),
        FieldKind::Json => (text != "null").then(|| row.set(column, Cell::text(text))),
        FieldKind::Time => json_string(text)
            .filter(|value| is_canonical(value))
            .and_then(|value| parse_event_time(&value))
            .map(|micros| row.set(column, Cell::Time(micros))),
        FieldKind::Tls => store_tls(text, row),
    };
    if exact.is_none() {
        unmapped.push((key, raw));
        store_best_effort(text, column, kind, row);
    }
}

/// The typed value of a field kept verbatim in `unmapped` because its shape was unusual.
fn store_best_effort<'a>(text: &'a str, column: usize, kind: FieldKind, row: &mut Row<'a>) {
    let cell = match kind {
        FieldKind::Bool | FieldKind::BoolText => {
            let flag = json_string(text).map_or_else(|| parse_bool(text), |v| parse_bool(&v));
            flag.map(Cell::Bool)
        }
        FieldKind::Time => json_string(text)
            .and_then(|value| parse_event_time(&value))
            .map(Cell::Time),
        FieldKind::Tls => {
            spread_tls(text, row);
            None
        }
        FieldKind::Text | FieldKind::Json => None,
    };
    if let Some(cell) = cell {
        row.set(column, cell);
    }
}

/// `tlsDetails` goes to the typed columns only when they can give it back exactly: an object whose
/// keys are among the three known ones, each a string.
fn store_tls<'a>(text: &'a str, row: &mut Row<'a>) -> Option<()> {
    let fields = object_fields(text)?;
    let known = |key: &str| TLS_KEYS.iter().find(|(k, _)| *k == key).map(|(_, c)| *c);
    let mut cells = Vec::with_capacity(fields.len());
    for (key, raw) in &fields {
        cells.push((known(key)?, json_string(raw.get())?));
    }
    let mut seen: Vec<usize> = cells.iter().map(|(column, _)| *column).collect();
    seen.sort_unstable();
    seen.dedup();
    if cells.is_empty() || seen.len() != cells.len() {
        return None;
    }
    for (column, value) in cells {
        row.set(column, Cell::Text(value));
    }
    Some(())
}

fn spread_tls(text: &str, row: &mut Row) {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(text) else {
        return;
    };
    for (key, column) in TLS_KEYS {
        if let Some(found) = value.get(key).and_then(|v| v.as_str()) {
            row.set(column, Cell::text(found.to_owned()));
        }
    }
}

/// `event_time` from `eventTime`, or from Logstash's `@timestamp`. When `@timestamp` is present the
/// rebuild cannot tell which field the column came from, so `eventTime` is then kept verbatim too.
fn resolve_event_time<'a>(
    record: &RecordFields<'a>,
    row: &mut Row<'a>,
    unmapped: &mut Vec<(&'a str, &'a RawValue)>,
) -> Result<(), Rejection> {
    let logstash = record.get(LOGSTASH_TIME);
    if let Some(event_time) = record.get("eventTime") {
        if logstash.is_some() && row.event_time().is_some() {
            unmapped.push(("eventTime", event_time));
        }
    } else if let Some(micros) = logstash
        .and_then(|raw| json_string(raw.get()))
        .and_then(|text| parse_event_time(&text))
    {
        row.set(col::EVENT_TIME, Cell::Time(micros));
    }
    match (row.event_time(), record.get("eventTime")) {
        (Some(_), _) => Ok(()),
        (None, Some(raw)) => Err(Rejection(format!(
            "eventTime {} is not a time",
            quoted(raw.get())
        ))),
        (None, None) => Err(Rejection("record has no eventTime".into())),
    }
}

/// Replaces every secret in the row's text by its fingerprint (see [`super::secrets`]); the
/// session token of `responseElements` is also kept in `session_token_sha256`, so that records
/// can still be matched on the same token.
fn protect_secrets(row: &mut Row) {
    for column in 0..col::COUNT {
        let redacted = match &row.cells[column] {
            Cell::Text(text) => redact(text),
            _ => None,
        };
        let Some(redacted) = redacted else {
            continue;
        };
        if column == col::RESPONSE_ELEMENTS
            && let Some(fingerprint) = redacted.session_tokens.last()
        {
            row.set(col::SESSION_TOKEN_SHA256, Cell::text(fingerprint.clone()));
        }
        row.cells[column] = Cell::Text(Cow::Owned(redacted.text));
    }
}

/// Fills the STS columns of a credential-issuing call, from its (redacted) payloads.
fn derive_sts_columns(row: &mut Row) {
    if !is_credential_call(row.text(col::EVENT_SOURCE), row.text(col::EVENT_NAME)) {
        return;
    }
    let response: Option<serde_json::Value> = row
        .text(col::RESPONSE_ELEMENTS)
        .and_then(|text| serde_json::from_str(text).ok());
    derive_sts(row, response.as_ref());
}

fn derive_sts(row: &mut Row, response: Option<&serde_json::Value>) {
    let request: Option<serde_json::Value> = row
        .text(col::REQUEST_PARAMETERS)
        .and_then(|text| serde_json::from_str(text).ok());
    let event_name = row.text(col::EVENT_NAME).unwrap_or_default().to_owned();
    let error_message = row.text(col::ERROR_MESSAGE).map(str::to_owned);
    let call = StsCall {
        event_name: &event_name,
        request: request.as_ref(),
        response,
        error_message: error_message.as_deref(),
    };
    let mut derived = Row::default();
    derive_into(&call, &mut derived);
    for (cell, derived) in row.cells.iter_mut().zip(derived.cells) {
        if !matches!(derived, Cell::Null) {
            *cell = owned(derived);
        }
    }
}

fn owned(cell: Cell) -> Cell<'static> {
    match cell {
        Cell::Text(text) => Cell::Text(Cow::Owned(text.into_owned())),
        Cell::Null => Cell::Null,
        Cell::Bool(v) => Cell::Bool(v),
        Cell::Int(v) => Cell::Int(v),
        Cell::Time(v) => Cell::Time(v),
    }
}

/// `{"key":raw,...}` from raw values, without re-parsing them.
pub fn object_text<'a>(fields: impl IntoIterator<Item = (&'a str, &'a RawValue)>) -> String {
    let mut out = String::with_capacity(64);
    out.push('{');
    for (index, (key, raw)) in fields.into_iter().enumerate() {
        if index > 0 {
            out.push(',');
        }
        push_json_string(&mut out, key);
        out.push(':');
        out.push_str(raw.get());
    }
    out.push('}');
    out
}

/// Appends `text` as a JSON string. Keys nearly never need escaping: those are copied as they
/// are, the others go through serde_json.
fn push_json_string(out: &mut String, text: &str) {
    let plain = text.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\');
    if plain {
        out.push('"');
        out.push_str(text);
        out.push('"');
    } else {
        out.push_str(&serde_json::Value::from(text).to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(json: &str) -> RecordFields<'_> {
        RecordFields {
            fields: object_fields(json).unwrap(),
            raw: json.as_bytes(),
        }
    }

    #[test]
    fn lookup_agrees_with_table() {
        for (key, column, kind) in TOP_LEVEL {
            assert_eq!(column_of(key), Some((*column, *kind)), "{key}");
        }
        assert_eq!(column_of("eventtime"), None);
    }

    #[test]
    fn typed_fields_and_unmapped() {
        let json = r#"{"eventTime":"2023-07-10T12:00:00Z","eventID":"e1","readOnly":true,
            "sessionCredentialFromConsole":true,"requestParameters":null,"p_log_type":"AWS.CloudTrail",
            "tlsDetails":{"tlsVersion":"TLSv1.2","cipherSuite":"X"}}"#;
        let record = fields(json);
        let row = to_row(&record, "f.json", &RecordLimits::default()).unwrap();
        assert_eq!(row.cells[col::READ_ONLY], Cell::Bool(true));
        assert_eq!(
            row.cells[col::SESSION_CREDENTIAL_FROM_CONSOLE],
            Cell::Bool(true)
        );
        assert_eq!(row.text(col::TLS_VERSION), Some("TLSv1.2"));
        let unmapped: serde_json::Value =
            serde_json::from_str(row.text(col::UNMAPPED).unwrap()).unwrap();
        assert_eq!(
            unmapped,
            serde_json::json!({"sessionCredentialFromConsole":true,"requestParameters":null,"p_log_type":"AWS.CloudTrail"})
        );
    }

    #[test]
    fn logstash_timestamp_is_the_event_time() {
        let record = fields(r#"{"@timestamp":"2020-09-14T00:44:23.000Z","eventID":"e"}"#);
        let row = to_row(&record, "f", &RecordLimits::default()).unwrap();
        assert!(row.event_time().is_some());
    }

    #[test]
    fn rejections() {
        let limits = RecordLimits {
            max_record_bytes: 200,
            max_depth: 4,
        };
        let cases = [
            (r#"{"eventID":"e"}"#, "no eventTime"),
            (r#"{"eventTime":"redacted","eventID":"e"}"#, "is not a time"),
            (r#"{"eventTime":"2023-07-10T12:00:00Z"}"#, "no eventID"),
            (
                r#"{"eventTime":"2023-07-10T12:00:00Z","eventID":7}"#,
                "no eventID",
            ),
            (
                r#"{"eventTime":"2023-07-10T12:00:00Z","eventID":"e","x":[[[[[1]]]]]}"#,
                "deeper",
            ),
        ];
        for (json, reason) in cases {
            let record = fields(json);
            let error = to_row(&record, "f", &limits).unwrap_err();
            assert!(error.0.contains(reason), "{json}: {}", error.0);
        }
        let big = format!(
            r#"{{"eventTime":"2023-07-10T12:00:00Z","eventID":"e","x":"{}"}}"#,
            "a".repeat(300)
        );
        let record = fields(&big);
        assert!(
            to_row(&record, "f", &limits)
                .unwrap_err()
                .0
                .contains("over the cap")
        );
    }

    #[test]
    fn session_token_is_replaced_by_its_fingerprint() {
        let json = r#"{"eventTime":"2023-07-10T12:00:00Z","eventID":"e","eventSource":"sts.amazonaws.com",
            "eventName":"AssumeRole","responseElements":{"credentials":{"accessKeyId":"ASIA1","sessionToken":"SECRET"}}}"#;
        let record = fields(json);
        let row = to_row(&record, "f", &RecordLimits::default()).unwrap();
        let fingerprint = token_fingerprint("SECRET");
        assert_eq!(
            row.text(col::SESSION_TOKEN_SHA256),
            Some(fingerprint.as_str())
        );
        assert!(!row.text(col::RESPONSE_ELEMENTS).unwrap().contains("SECRET"));
        assert_eq!(row.text(col::ISSUED_ACCESS_KEY_ID), Some("ASIA1"));
    }

    #[test]
    fn the_token_is_replaced_in_place_and_everything_else_is_kept_as_written() {
        let fingerprint = token_fingerprint("SE/CRET");
        let text = r#"{"z": 1, "credentials": {"sessionToken": "SE\/CRET", "a": [1]}, "b": "x"}"#;
        let mut row = Row::default();
        row.set(col::RESPONSE_ELEMENTS, Cell::text(text));
        protect_secrets(&mut row);
        assert_eq!(
            row.text(col::RESPONSE_ELEMENTS).unwrap(),
            format!(
                r#"{{"z": 1, "credentials": {{"sessionToken": "{fingerprint}", "a": [1]}}, "b": "x"}}"#
            )
        );
        assert_eq!(
            row.text(col::SESSION_TOKEN_SHA256),
            Some(fingerprint.as_str())
        );

        // Duplicate keys: both tokens go, the column keeps the last (as a JSON parser reads it).
        let text =
            r#"{"credentials":{"sessionToken":"OLD"},"credentials":{"sessionToken":"SECRET"}}"#;
        let mut row = Row::default();
        row.set(col::RESPONSE_ELEMENTS, Cell::text(text));
        protect_secrets(&mut row);
        let protected = row.text(col::RESPONSE_ELEMENTS).unwrap();
        assert!(
            !protected.contains("SECRET") && !protected.contains("OLD"),
            "{protected}"
        );
        assert_eq!(
            row.text(col::SESSION_TOKEN_SHA256),
            Some(token_fingerprint("SECRET").as_str())
        );
    }

    const TOKEN: &str = "FwoGZXIvYXdzEXAMPLESESSIONTOKEN";

    /// A credential call whose record holds `TOKEN` as `response` says.
    fn sts_record(response: &str, extra: &str) -> String {
        format!(
            r#"{{"eventTime":"2023-07-10T12:00:00Z","eventID":"e","eventSource":"sts.amazonaws.com",
            "eventName":"AssumeRole"{extra},"responseElements":{response}}}"#
        )
    }

    fn assert_no_token(row: &Row) {
        for (column, cell) in row.cells.iter().enumerate() {
            if let Cell::Text(text) = cell {
                assert!(!text.contains("EXAMPLESESSION"), "column {column}: {text}");
            }
        }
    }

    #[test]
    fn secrets_are_redacted_in_every_spelling() {
        let credentials = format!(r#"{{"accessKeyId":"ASIA1","sessionToken":"{TOKEN}"}}"#);
        let cases = [
            sts_record(
                &format!(r#"{{"x":"\ud800","credentials":{credentials}}}"#),
                "",
            ),
            sts_record(&format!(r#"{{"n":1e400,"credentials":{credentials}}}"#), ""),
            sts_record(
                &format!(r#"{{"credentials":{{"session\u0054oken":"{TOKEN}"}}}}"#),
                "",
            ),
            sts_record(
                &serde_json::Value::from(format!(r#"{{"credentials":{credentials}}}"#)).to_string(),
                "",
            ),
            sts_record(
                &format!(r#"{{"credentials":{{"secretAccessKey":"{TOKEN}"}}}}"#),
                "",
            ),
            // A duplicated responseElements: the earlier one is kept in `unmapped`, redacted.
            sts_record(
                "null",
                &format!(r#","responseElements":{{"credentials":{credentials}}}"#),
            ),
            // Elsewhere in the record.
            sts_record(
                "null",
                &format!(r#","additionalEventData":{{"sessionToken":"{TOKEN}"}}"#),
            ),
            sts_record("null", &format!(r#","sessionToken":"{TOKEN}""#)),
        ];
        for json in cases {
            let record = fields(&json);
            let row = to_row(&record, "f", &RecordLimits::default()).unwrap();
            assert_no_token(&row);
            assert!(!record.to_json().contains("EXAMPLESESSION"), "{json}");
        }
    }

    #[test]
    fn the_fingerprint_is_kept_whatever_else_the_response_holds() {
        let json = sts_record(
            &format!(r#"{{"x":"\ud800","credentials":{{"sessionToken":"{TOKEN}"}}}}"#),
            "",
        );
        let record = fields(&json);
        let row = to_row(&record, "f", &RecordLimits::default()).unwrap();
        let fingerprint = token_fingerprint(TOKEN);
        assert_eq!(
            row.text(col::SESSION_TOKEN_SHA256),
            Some(fingerprint.as_str())
        );
    }

    #[test]
    fn rejection_messages_quote_little_and_no_secret() {
        let json = format!(
            r#"{{"eventTime":{{"sessionToken":"{TOKEN}","pad":"{}"}},"eventID":"e"}}"#,
            "x".repeat(5000)
        );
        let record = fields(&json);
        let error = to_row(&record, "f", &RecordLimits::default()).unwrap_err();
        assert!(error.0.len() < 500, "{}", error.0);
        assert!(!error.0.contains("EXAMPLESESSION"), "{}", error.0);
    }

    #[test]
    fn earlier_values_of_duplicated_keys_are_kept() {
        let json = r#"{"eventTime":"2023-07-10T12:00:00Z","eventID":"first","eventID":"second",
            "x":1,"x":2,"x":3,"y":null}"#;
        let record = fields(json);
        let row = to_row(&record, "f", &RecordLimits::default()).unwrap();
        assert_eq!(row.text(col::EVENT_ID), Some("second"));
        let unmapped: serde_json::Value =
            serde_json::from_str(row.text(col::UNMAPPED).unwrap()).unwrap();
        assert_eq!(
            unmapped,
            serde_json::json!({"x": 3, "y": null,
                DUPLICATE_KEYS: {"eventID": ["first"], "x": [1, 2]}})
        );
    }

    #[test]
    fn object_text_escapes_keys_like_serde_json() {
        let raw: &RawValue = serde_json::from_str("null").unwrap();
        for key in ["plain", "quo\"te", "back\\slash", "tab\t", "ünï", ""] {
            let text = object_text([(key, raw)]);
            let parsed: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(parsed, serde_json::json!({ key: null }), "{text}");
        }
    }
}
