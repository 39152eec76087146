//! One CloudTrail record (its top-level fields as raw JSON) into one [`Row`].
//!
//! Every top-level field lands somewhere: in its typed column when the column can give it back
//! exactly, otherwise in `unmapped` as written (the typed column then holds a best-effort value).
//! `rebuild` relies on exactly this rule, through the [`TOP_LEVEL`] table they share.

use std::borrow::Cow;

use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use super::identity::{flatten_into, parse_bool};
use super::lenient::{json_string, nests_deeper_than, object_fields};
use super::sts::{StsCall, derive_into, is_credential_call};
use super::time::{is_canonical, parse_event_time};
use crate::batch::{Cell, Row, col};

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
}

impl<'a> RecordFields<'a> {
    pub fn get(&self, key: &str) -> Option<&'a RawValue> {
        self.fields.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
    }

    /// The record as JSON text again, for the rejected-records log.
    pub fn to_json(&self) -> String {
        object_text(self.fields.iter().map(|(k, v)| (k.as_ref(), *v)))
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

/// Turns one record into a row; `source_file` is where it came from.
pub fn to_row<'a>(
    record: &'a RecordFields<'a>,
    source_file: &'a str,
    limits: &RecordLimits,
) -> Result<Row<'a>, Rejection> {
    check_limits(record, limits)?;
    let mut row = Row::default();
    let mut unmapped: Vec<(&str, &RawValue)> = Vec::new();
    for (key, raw) in &record.fields {
        match column_of(key) {
            Some((column, kind)) => store(key, raw, column, kind, &mut row, &mut unmapped),
            None => unmapped.push((key, raw)),
        }
    }
    resolve_event_time(record, &mut row, &mut unmapped)?;
    if row.text(col::EVENT_ID).is_none() {
        return Err(Rejection("record has no eventID string".into()));
    }
    if row.text(col::USER_IDENTITY).is_some() {
        let identity = record.get("userIdentity").map_or("null", RawValue::get);
        flatten_into(identity, &mut row);
    }
    protect_session_token(&mut row);
    derive_sts(&mut row);
    if !unmapped.is_empty() {
        row.set(col::UNMAPPED, Cell::Text(Cow::Owned(object_text(unmapped))));
    }
    row.set(col::SOURCE_FILE, Cell::text(source_file));
    Ok(row)
}

fn check_limits(record: &RecordFields, limits: &RecordLimits) -> Result<(), Rejection> {
    let size = record.byte_len();
    if size > limits.max_record_bytes {
        return Err(Rejection(format!(
            "record is {size} bytes, over the cap of {} (--max-record-size)",
            limits.max_record_bytes
        )));
    }
    let too_deep = record
        .fields
        .iter()
        .any(|(_, raw)| nests_deeper_than(raw.get(), limits.max_depth));
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
        (None, Some(raw)) => Err(Rejection(format!("eventTime {} is not a time", raw.get()))),
        (None, None) => Err(Rejection("record has no eventTime".into())),
    }
}

/// Replaces `responseElements.credentials.sessionToken` by its fingerprint: a live secret never
/// reaches the lake, and the fingerprint still lets two records be matched on the same token.
fn protect_session_token(row: &mut Row) {
    let Some(text) = row.text(col::RESPONSE_ELEMENTS) else {
        return;
    };
    if !text.contains("sessionToken") {
        return;
    }
    let Ok(mut response) = serde_json::from_str::<serde_json::Value>(text) else {
        return;
    };
    let token = response
        .get_mut("credentials")
        .and_then(|c| c.get_mut("sessionToken"));
    let Some(token) = token else { return };
    let Some(secret) = token.as_str() else { return };
    let fingerprint = token_fingerprint(secret);
    *token = serde_json::Value::String(fingerprint.clone());
    row.set(col::SESSION_TOKEN_SHA256, Cell::text(fingerprint));
    row.set(col::RESPONSE_ELEMENTS, Cell::text(response.to_string()));
}

/// `sha256:` and the first 16 hex digits of the token's SHA-256.
pub fn token_fingerprint(token: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::digest(token.as_bytes());
    let mut fingerprint = String::with_capacity(23);
    fingerprint.push_str("sha256:");
    for byte in &digest[..8] {
        fingerprint.push(char::from(HEX[usize::from(byte >> 4)]));
        fingerprint.push(char::from(HEX[usize::from(byte & 0xf)]));
    }
    fingerprint
}

fn derive_sts(row: &mut Row) {
    if !is_credential_call(row.text(col::EVENT_SOURCE), row.text(col::EVENT_NAME)) {
        return;
    }
    let parse = |column: usize| {
        row.text(column)
            .and_then(|text| serde_json::from_str::<serde_json::Value>(text).ok())
    };
    let (request, response) = (
        parse(col::REQUEST_PARAMETERS),
        parse(col::RESPONSE_ELEMENTS),
    );
    let event_name = row.text(col::EVENT_NAME).unwrap_or_default().to_owned();
    let error_message = row.text(col::ERROR_MESSAGE).map(str::to_owned);
    let call = StsCall {
        event_name: &event_name,
        request: request.as_ref(),
        response: response.as_ref(),
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
    let mut out = String::from("{");
    for (index, (key, raw)) in fields.into_iter().enumerate() {
        if index > 0 {
            out.push(',');
        }
        out.push_str(&serde_json::Value::from(key).to_string());
        out.push(':');
        out.push_str(raw.get());
    }
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(json: &str) -> RecordFields<'_> {
        RecordFields {
            fields: object_fields(json).unwrap(),
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
}
