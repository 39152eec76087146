//! Rows of the `events` table and the Arrow builders that collect them into record batches.
//!
//! The column list below is the schema of the lake, in order, with a one-line meaning for each
//! column; `decode` fills a [`Row`], this module turns rows into a `RecordBatch`, `sink` writes it.

use std::borrow::Cow;
use std::sync::{Arc, LazyLock};

use arrow::array::{
    ArrayRef, AsArray, BooleanBuilder, Int64Builder, RecordBatch, StringBuilder,
    TimestampMicrosecondBuilder,
};
use arrow::buffer::MutableBuffer;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::error::ArrowError;

/// The Arrow type of a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    Bool,
    Int,
    /// Microseconds since the epoch, UTC (Spark rejects nanosecond Parquet timestamps).
    Time,
}

/// One column of the `events` table.
#[derive(Debug)]
pub struct ColumnSpec {
    pub name: &'static str,
    pub kind: Kind,
    pub doc: &'static str,
}

macro_rules! columns {
    ($($ident:ident: $name:literal, $kind:ident, $doc:literal;)*) => {
        /// Column positions in [`COLUMNS`] and in every [`Row`].
        pub mod col {
            columns!(@index 0usize; $($ident)*);
        }
        /// The schema of the lake's `events` files, in order.
        pub const COLUMNS: &[ColumnSpec] = &[
            $(ColumnSpec { name: $name, kind: Kind::$kind, doc: $doc },)*
        ];
    };
    (@index $n:expr; $head:ident $($rest:ident)*) => {
        pub const $head: usize = $n;
        columns!(@index $n + 1usize; $($rest)*);
    };
    (@index $n:expr;) => {
        pub const COUNT: usize = $n;
    };
}

columns! {
    EVENT_TIME: "event_time", Time, "eventTime (or Logstash's @timestamp when eventTime is absent), UTC";
    EVENT_ID: "event_id", Text, "eventID: unique per event and recipient account";
    EVENT_NAME: "event_name", Text, "eventName: the API action, e.g. AssumeRole";
    EVENT_SOURCE: "event_source", Text, "eventSource: the service, e.g. sts.amazonaws.com";
    AWS_REGION: "aws_region", Text, "awsRegion the request was made to";
    SOURCE_IP_ADDRESS: "source_ip_address", Text, "sourceIPAddress as logged (an IP, or a service name such as ec2.amazonaws.com)";
    USER_AGENT: "user_agent", Text, "userAgent of the caller";
    ERROR_CODE: "error_code", Text, "errorCode; null when the call succeeded";
    ERROR_MESSAGE: "error_message", Text, "errorMessage; null when the call succeeded";
    READ_ONLY: "read_only", Bool, "readOnly";
    EVENT_TYPE: "event_type", Text, "eventType: AwsApiCall, AwsServiceEvent, AwsConsoleSignIn, ...";
    EVENT_CATEGORY: "event_category", Text, "eventCategory: Management, Data, NetworkActivity";
    MANAGEMENT_EVENT: "management_event", Bool, "managementEvent";
    RECIPIENT_ACCOUNT_ID: "recipient_account_id", Text, "recipientAccountId: the account whose trail logged this copy";
    SHARED_EVENT_ID: "shared_event_id", Text, "sharedEventID: links the copies of a cross-account call logged in both accounts";
    REQUEST_ID: "request_id", Text, "requestID";
    EVENT_VERSION: "event_version", Text, "eventVersion of the record format";
    API_VERSION: "api_version", Text, "apiVersion";
    VPC_ENDPOINT_ID: "vpc_endpoint_id", Text, "vpcEndpointId when the call came through a VPC endpoint";
    VPC_ENDPOINT_ACCOUNT_ID: "vpc_endpoint_account_id", Text, "vpcEndpointAccountId";
    TLS_VERSION: "tls_version", Text, "tlsDetails.tlsVersion";
    TLS_CIPHER_SUITE: "tls_cipher_suite", Text, "tlsDetails.cipherSuite";
    TLS_CLIENT_PROVIDED_HOST_HEADER: "tls_client_provided_host_header", Text, "tlsDetails.clientProvidedHostHeader";
    SESSION_CREDENTIAL_FROM_CONSOLE: "session_credential_from_console", Bool, "sessionCredentialFromConsole";
    USER_TYPE: "user_type", Text, "userIdentity.type: IAMUser, AssumedRole, FederatedUser, SAMLUser, WebIdentityUser, Root, AWSService, AWSAccount, ...";
    PRINCIPAL_ID: "principal_id", Text, "userIdentity.principalId";
    PRINCIPAL_ARN: "principal_arn", Text, "userIdentity.arn";
    PRINCIPAL_ACCOUNT_ID: "principal_account_id", Text, "userIdentity.accountId: the caller's account";
    ACCESS_KEY_ID: "access_key_id", Text, "userIdentity.accessKeyId: the key that signed the call (ASIA... for temporary credentials)";
    USER_NAME: "user_name", Text, "userIdentity.userName";
    INVOKED_BY: "invoked_by", Text, "userIdentity.invokedBy: the AWS service that made the call on the principal's behalf";
    IDENTITY_PROVIDER: "identity_provider", Text, "userIdentity.identityProvider (SAML/OIDC)";
    SESSION_ISSUER_TYPE: "session_issuer_type", Text, "userIdentity.sessionContext.sessionIssuer.type";
    SESSION_ISSUER_PRINCIPAL_ID: "session_issuer_principal_id", Text, "userIdentity.sessionContext.sessionIssuer.principalId";
    SESSION_ISSUER_ARN: "session_issuer_arn", Text, "userIdentity.sessionContext.sessionIssuer.arn: the role behind an AssumedRole caller";
    SESSION_ISSUER_ACCOUNT_ID: "session_issuer_account_id", Text, "userIdentity.sessionContext.sessionIssuer.accountId";
    SESSION_ISSUER_USER_NAME: "session_issuer_user_name", Text, "userIdentity.sessionContext.sessionIssuer.userName";
    SESSION_CREATION_DATE: "session_creation_date", Time, "userIdentity.sessionContext.attributes.creationDate: when the caller's session was issued";
    MFA_AUTHENTICATED: "mfa_authenticated", Bool, "userIdentity.sessionContext.attributes.mfaAuthenticated";
    SOURCE_IDENTITY: "source_identity", Text, "userIdentity.sessionContext.sourceIdentity";
    EC2_ROLE_DELIVERY: "ec2_role_delivery", Text, "userIdentity.sessionContext.ec2RoleDelivery (IMDS version)";
    WEB_ID_FEDERATED_PROVIDER: "web_id_federated_provider", Text, "userIdentity.sessionContext.webIdFederationData.federatedProvider";
    ON_BEHALF_OF: "on_behalf_of", Text, "userIdentity.onBehalfOf as JSON (IAM Identity Center user)";
    CREDENTIAL_ID: "credential_id", Text, "userIdentity.credentialId";
    ROLE_ARN: "role_arn", Text, "STS: the role requested (requestParameters.roleArn, or from errorMessage on failure; arn:aws:iam::<acct>:root for AssumeRoot)";
    ROLE_ACCOUNT_ID: "role_account_id", Text, "STS: the account of role_arn";
    ROLE_NAME: "role_name", Text, "STS: the role name (last part of role_arn)";
    ROLE_SESSION_NAME: "role_session_name", Text, "STS: roleSessionName (for SAML, the session name of the assumed-role ARN)";
    DURATION_SECONDS: "duration_seconds", Int, "STS: durationSeconds as requested; null when not requested";
    ISSUED_ACCESS_KEY_ID: "issued_access_key_id", Text, "STS: responseElements.credentials.accessKeyId, the key of the new session";
    CREDENTIALS_EXPIRATION: "credentials_expiration", Time, "STS: responseElements.credentials.expiration, UTC";
    ASSUMED_ROLE_ARN: "assumed_role_arn", Text, "STS: responseElements.assumedRoleUser.arn";
    EXTERNAL_ID: "external_id", Text, "STS: requestParameters.externalId";
    MFA_SERIAL_NUMBER: "mfa_serial_number", Text, "STS: requestParameters.serialNumber (MFA device)";
    FEDERATED_USER_ARN: "federated_user_arn", Text, "STS: responseElements.federatedUser.arn (GetFederationToken)";
    WEB_IDENTITY_SUBJECT: "web_identity_subject", Text, "STS: responseElements.subjectFromWebIdentityToken (AssumeRoleWithWebIdentity)";
    WEB_IDENTITY_PROVIDER: "web_identity_provider", Text, "STS: responseElements.provider (AssumeRoleWithWebIdentity)";
    SAML_SUBJECT: "saml_subject", Text, "STS: responseElements.subject (AssumeRoleWithSAML)";
    SAML_ISSUER: "saml_issuer", Text, "STS: responseElements.issuer (AssumeRoleWithSAML)";
    SESSION_TOKEN_SHA256: "session_token_sha256", Text, "STS: sha256: and the first 16 hex digits of the SHA-256 of the session token; the token itself is never stored";
    USER_IDENTITY: "user_identity", Text, "userIdentity as JSON text";
    REQUEST_PARAMETERS: "request_parameters", Text, "requestParameters as JSON text";
    RESPONSE_ELEMENTS: "response_elements", Text, "responseElements as JSON text, with credentials.sessionToken replaced by its fingerprint";
    ADDITIONAL_EVENT_DATA: "additional_event_data", Text, "additionalEventData as JSON text";
    RESOURCES: "resources", Text, "resources as JSON text";
    SERVICE_EVENT_DETAILS: "service_event_details", Text, "serviceEventDetails as JSON text";
    ADDENDUM: "addendum", Text, "addendum as JSON text";
    UNMAPPED: "unmapped", Text, "every other top-level field as a JSON object, and fields whose value did not fit their typed column (kept as written)";
    SOURCE_FILE: "source_file", Text, "the file or object the record was read from";
}

/// One value of a [`Row`].
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Cell<'a> {
    #[default]
    Null,
    Text(Cow<'a, str>),
    Bool(bool),
    Int(i64),
    Time(i64),
}

impl<'a> Cell<'a> {
    pub fn text(value: impl Into<Cow<'a, str>>) -> Self {
        Cell::Text(value.into())
    }

    pub fn as_text(&self) -> Option<&str> {
        match self {
            Cell::Text(text) => Some(text),
            _ => None,
        }
    }
}

/// One event, in column order; the cells borrow from the decompressed file where they can.
#[derive(Debug, Clone)]
pub struct Row<'a> {
    pub cells: [Cell<'a>; col::COUNT],
}

impl Default for Row<'_> {
    fn default() -> Self {
        Row {
            cells: std::array::from_fn(|_| Cell::Null),
        }
    }
}

impl<'a> Row<'a> {
    pub fn set(&mut self, column: usize, cell: Cell<'a>) {
        self.cells[column] = cell;
    }

    pub fn text(&self, column: usize) -> Option<&str> {
        self.cells[column].as_text()
    }

    pub fn event_time(&self) -> Option<i64> {
        match self.cells[col::EVENT_TIME] {
            Cell::Time(micros) => Some(micros),
            _ => None,
        }
    }
}

static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let fields: Vec<Field> = COLUMNS
        .iter()
        .map(|spec| {
            let nullable = spec.name != "event_time" && spec.name != "event_id";
            Field::new(spec.name, data_type(spec.kind), nullable)
        })
        .collect();
    Arc::new(Schema::new(fields))
});

/// The Arrow schema of the `events` files (partition columns live in the path, not in the file).
pub fn schema() -> SchemaRef {
    SCHEMA.clone()
}

fn data_type(kind: Kind) -> DataType {
    match kind {
        Kind::Text => DataType::Utf8,
        Kind::Bool => DataType::Boolean,
        Kind::Int => DataType::Int64,
        Kind::Time => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
    }
}

enum ColumnBuilder {
    Text(StringBuilder),
    Bool(BooleanBuilder),
    Int(Int64Builder),
    Time(TimestampMicrosecondBuilder),
}

impl ColumnBuilder {
    /// A builder with room for `rows` values and, for text, `bytes` bytes of them, in `spare`
    /// when it is given.
    fn with_capacity(kind: Kind, rows: usize, bytes: usize, spare: Option<Vec<u8>>) -> Self {
        match kind {
            Kind::Text => ColumnBuilder::Text(match spare {
                Some(values) => text_builder_in(values, rows, bytes),
                None => StringBuilder::with_capacity(rows, bytes),
            }),
            Kind::Bool => ColumnBuilder::Bool(BooleanBuilder::with_capacity(rows)),
            Kind::Int => ColumnBuilder::Int(Int64Builder::with_capacity(rows)),
            Kind::Time => ColumnBuilder::Time(
                TimestampMicrosecondBuilder::with_capacity(rows).with_timezone("UTC"),
            ),
        }
    }

    /// Bytes of text values appended so far.
    fn text_bytes(&self) -> usize {
        match self {
            ColumnBuilder::Text(b) => b.values_slice().len(),
            _ => 0,
        }
    }

    /// Appends a cell; a cell of the wrong kind becomes null (decode never produces one).
    fn append(&mut self, cell: &Cell) {
        match (self, cell) {
            (ColumnBuilder::Text(b), Cell::Text(v)) => b.append_value(v),
            (ColumnBuilder::Text(b), _) => b.append_null(),
            (ColumnBuilder::Bool(b), Cell::Bool(v)) => b.append_value(*v),
            (ColumnBuilder::Bool(b), _) => b.append_null(),
            (ColumnBuilder::Int(b), Cell::Int(v)) => b.append_value(*v),
            (ColumnBuilder::Int(b), _) => b.append_null(),
            (ColumnBuilder::Time(b), Cell::Time(v)) => b.append_value(*v),
            (ColumnBuilder::Time(b), _) => b.append_null(),
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            ColumnBuilder::Text(b) => Arc::new(b.finish()),
            ColumnBuilder::Bool(b) => Arc::new(b.finish()),
            ColumnBuilder::Int(b) => Arc::new(b.finish()),
            ColumnBuilder::Time(b) => Arc::new(b.finish()),
        }
    }
}

/// An empty text builder whose values go into `values` (cleared, grown to `bytes` if smaller).
fn text_builder_in(mut values: Vec<u8>, rows: usize, bytes: usize) -> StringBuilder {
    values.clear();
    values.reserve(bytes);
    let mut offsets = MutableBuffer::new((rows + 1) * size_of::<i32>());
    offsets.push(0i32);
    // SAFETY: the offsets are the single 0 and the values are empty, which is a valid empty
    // string array (every later value is appended through the builder, which checks nothing
    // but keeps offsets and UTF-8 valid by construction).
    unsafe { StringBuilder::new_from_buffer(offsets, MutableBuffer::from(values), None) }
}

/// Text buffers smaller than this come from the allocator's heap, which reuses freed memory
/// anyway; only the larger ones (mapped afresh by the allocator each time) are worth keeping.
const SPARE_MIN_BYTES: usize = 256 << 10;

/// The large text buffers of a worker's batches already written, handed to the next batch it
/// starts. Without them every batch filled freshly mapped memory, a page fault and a zeroed
/// page for every 4 KiB appended: 4% of ingest time in `append` and 2 s of kernel time per
/// million events. At most one batch's buffers wait here, so memory does not grow.
#[derive(Default)]
pub struct SpareBuffers {
    values: Vec<Option<Vec<u8>>>,
}

impl SpareBuffers {
    /// Keeps the text buffers of `batch`, which nothing else may still hold (if something
    /// does, that buffer is simply freed when the last holder drops it).
    pub fn recycle(&mut self, batch: RecordBatch) {
        let (_, columns, _) = batch.into_parts();
        self.values.resize_with(columns.len(), || None);
        for (slot, column) in self.values.iter_mut().zip(columns) {
            let Some(values) = column.as_string_opt::<i32>().map(|a| a.values().clone()) else {
                continue;
            };
            drop(column);
            if values.capacity() < SPARE_MIN_BYTES {
                continue;
            }
            if let Ok(values) = values.into_vec::<u8>() {
                *slot = Some(values);
            }
        }
    }

    /// The spare buffer of `column` if it suits a batch of about `bytes` text bytes: not over
    /// twice as large, so that a small partition does not keep a large one's memory.
    fn take(&mut self, column: usize, bytes: usize) -> Option<Vec<u8>> {
        let slot = self.values.get_mut(column)?;
        let fits = slot
            .as_ref()
            .is_some_and(|values| values.capacity() <= 2 * bytes.max(SPARE_MIN_BYTES));
        if fits { slot.take() } else { None }
    }

    /// The memory kept.
    pub fn bytes(&self) -> usize {
        self.values.iter().flatten().map(Vec::capacity).sum()
    }

    /// Frees what is kept (at the end of the input, when no batch will follow).
    pub fn clear(&mut self) {
        self.values.clear();
    }
}

/// Collects rows of one partition until the sink writes them out.
pub struct EventBatchBuilder {
    columns: Vec<ColumnBuilder>,
    rows: usize,
    bytes: usize,
    /// The size of the previous batch, rows and text bytes per column: the next batch of a
    /// partition is usually about as large, so its buffers are allocated at that size once,
    /// instead of doubling from nothing (copying every value again at each doubling).
    previous: Option<(usize, Vec<usize>)>,
}

impl Default for EventBatchBuilder {
    fn default() -> Self {
        EventBatchBuilder {
            columns: COLUMNS
                .iter()
                .map(|c| ColumnBuilder::with_capacity(c.kind, 1024, 1024, None))
                .collect(),
            rows: 0,
            bytes: 0,
            previous: None,
        }
    }
}

impl EventBatchBuilder {
    /// Appends a row; the first row of a batch after the first sizes its buffers like the
    /// previous batch's, in `spare` buffers where they suit.
    pub fn append(&mut self, row: &Row, spare: &mut SpareBuffers) {
        if self.rows == 0
            && let Some((rows, bytes)) = self.previous.take()
        {
            // An eighth more, so that a slightly larger batch does not double every buffer.
            let more = |n: usize| n + n / 8;
            self.columns = COLUMNS
                .iter()
                .zip(bytes)
                .enumerate()
                .map(|(column, (c, bytes))| {
                    let values = spare.take(column, more(bytes));
                    ColumnBuilder::with_capacity(c.kind, more(rows), more(bytes), values)
                })
                .collect();
        }
        for (builder, cell) in self.columns.iter_mut().zip(row.cells.iter()) {
            builder.append(cell);
        }
        self.rows += 1;
        self.bytes += row_bytes(row);
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    /// An estimate of the memory the buffered rows hold, for the sink's memory budget.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Drains the builder into a batch; the builder is empty and reusable afterwards.
    pub fn finish(&mut self) -> Result<RecordBatch, ArrowError> {
        if self.rows > 0 {
            let bytes = self.columns.iter().map(ColumnBuilder::text_bytes).collect();
            self.previous = Some((self.rows, bytes));
        }
        let arrays = self.columns.iter_mut().map(ColumnBuilder::finish).collect();
        self.rows = 0;
        self.bytes = 0;
        RecordBatch::try_new(schema(), arrays)
    }
}

fn row_bytes(row: &Row) -> usize {
    let text: usize = row
        .cells
        .iter()
        .map(|cell| cell.as_text().map_or(0, str::len))
        .sum();
    text + col::COUNT * 9
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Array;

    #[test]
    fn column_constants_match_names() {
        assert_eq!(COLUMNS.len(), col::COUNT);
        assert_eq!(COLUMNS[col::EVENT_TIME].name, "event_time");
        assert_eq!(COLUMNS[col::SOURCE_FILE].name, "source_file");
        assert_eq!(COLUMNS[col::ROLE_ARN].name, "role_arn");
        let mut names: Vec<_> = COLUMNS.iter().map(|c| c.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), col::COUNT, "column names are unique");
    }

    #[test]
    fn builds_a_batch() {
        let mut row = Row::default();
        row.set(col::EVENT_TIME, Cell::Time(1_000_000));
        row.set(col::EVENT_ID, Cell::text("e1"));
        row.set(col::READ_ONLY, Cell::Bool(true));
        let mut builder = EventBatchBuilder::default();
        let mut spare = SpareBuffers::default();
        builder.append(&row, &mut spare);
        builder.append(&row, &mut spare);
        let batch = builder.finish().unwrap();
        assert_eq!(batch.num_rows(), 2);
        assert_eq!(batch.num_columns(), col::COUNT);
        assert_eq!(builder.rows(), 0);
    }

    #[test]
    fn the_next_batch_fills_the_spare_buffers_of_the_last() {
        // 900 KB in a buffer that doubled to 1 MiB: room for the next batch's 9/8 of that.
        let identity = "x".repeat(900);
        let mut row = Row::default();
        row.set(col::EVENT_TIME, Cell::Time(1_000_000));
        row.set(col::EVENT_ID, Cell::text("e1"));
        row.set(col::USER_IDENTITY, Cell::text(identity.as_str()));
        let mut builder = EventBatchBuilder::default();
        let mut spare = SpareBuffers::default();
        for _ in 0..1000 {
            builder.append(&row, &mut spare);
        }
        let first = builder.finish().unwrap();
        let first_values = first.column(col::USER_IDENTITY).as_string::<i32>().values();
        let address = first_values.as_ptr();
        spare.recycle(first);
        assert!(
            spare.values[col::USER_IDENTITY].is_some(),
            "a 1 MiB buffer is kept"
        );
        assert!(
            spare.values[col::EVENT_ID].is_none(),
            "small buffers are not"
        );

        row.set(col::USER_IDENTITY, Cell::text("y".repeat(900)));
        for _ in 0..1000 {
            builder.append(&row, &mut spare);
        }
        let second = builder.finish().unwrap();
        let identities = second.column(col::USER_IDENTITY).as_string::<i32>();
        assert_eq!(
            identities.values().as_ptr(),
            address,
            "the same memory is reused"
        );
        assert_eq!(identities.len(), 1000);
        assert!(
            identities
                .iter()
                .all(|v| v == Some("y".repeat(900).as_str()))
        );
        assert!(spare.values[col::USER_IDENTITY].is_none());
    }

    #[test]
    fn a_spare_buffer_much_larger_than_needed_is_left_for_another_batch() {
        let mut spare = SpareBuffers {
            values: vec![Some(Vec::with_capacity(8 << 20))],
        };
        assert_eq!(spare.bytes(), 8 << 20);
        assert!(spare.take(0, 1 << 20).is_none());
        assert!(spare.take(0, 4 << 20).is_some());
        assert_eq!(spare.bytes(), 0);
    }
}
