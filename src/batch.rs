//! Rows of the `events` table and the Arrow builders that collect them into record batches.
//!
//! The column list below is the schema of the lake, in order, with a one-line meaning for each
//! column; `decode` fills a [`Row`], this module turns rows into a `RecordBatch`, `sink` writes it.

use std::borrow::Cow;
use std::sync::{Arc, LazyLock};

use arrow::array::builder::make_view;
use arrow::array::new_null_array;
use arrow::array::{
    Array, ArrayRef, AsArray, BooleanBuilder, ByteView, Int64Builder, NullBufferBuilder,
    RecordBatch, StringViewArray, TimestampMicrosecondBuilder,
};
use arrow::buffer::{Buffer, ScalarBuffer};
use arrow::compute::interleave;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::error::ArrowError;

/// The Arrow type of a column (text is `Utf8View`: see [`TextViews`]).
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
    RESPONSE_ELEMENTS: "response_elements", Text, "responseElements as JSON text, with secrets (sessionToken, secretAccessKey) replaced by their fingerprints";
    ADDITIONAL_EVENT_DATA: "additional_event_data", Text, "additionalEventData as JSON text";
    RESOURCES: "resources", Text, "resources as JSON text";
    SERVICE_EVENT_DETAILS: "service_event_details", Text, "serviceEventDetails as JSON text";
    ADDENDUM: "addendum", Text, "addendum as JSON text";
    UNMAPPED: "unmapped", Text, "every other top-level field as a JSON object, and fields whose value did not fit their typed column (kept as written, secrets replaced by their fingerprints); the earlier values of a duplicated key under sts_audit_duplicate_keys";
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
        Kind::Text => DataType::Utf8View,
        Kind::Bool => DataType::Boolean,
        Kind::Int => DataType::Int64,
        Kind::Time => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
    }
}

/// One column of a batch being built. A column is only a count of nulls until its first value:
/// most batches have columns with no value at all (the STS columns outside credential calls,
/// most identity details, VPC endpoints...), and these then cost nothing per row, neither here
/// nor when the rows are sorted for a write (see [`pick_rows`]).
struct ColumnBuilder {
    kind: Kind,
    /// Nulls appended before the first value.
    leading_nulls: usize,
    values: Option<Values>,
}

enum Values {
    Text(TextViews),
    Bool(BooleanBuilder),
    Int(Int64Builder),
    Time(TimestampMicrosecondBuilder),
}

/// Memory a non-text value takes in a builder: the value and its validity bit, rounded up.
const FIXED_VALUE_BYTES: usize = 9;

impl ColumnBuilder {
    fn new(kind: Kind) -> Self {
        ColumnBuilder {
            kind,
            leading_nulls: 0,
            values: None,
        }
    }

    /// Appends a cell (a cell of the wrong kind becomes null; decode never produces one);
    /// returns the memory it took.
    fn append(&mut self, cell: &Cell) -> usize {
        let fits = matches!(
            (self.kind, cell),
            (Kind::Text, Cell::Text(_))
                | (Kind::Bool, Cell::Bool(_))
                | (Kind::Int, Cell::Int(_))
                | (Kind::Time, Cell::Time(_))
        );
        let values = match &mut self.values {
            Some(values) => values,
            None if !fits => {
                self.leading_nulls += 1;
                // What the null will take once the column is an array.
                return null_bytes(self.kind);
            }
            None => {
                let values = Values::with_nulls(self.kind, self.leading_nulls);
                self.leading_nulls = 0;
                self.values.insert(values)
            }
        };
        values.append(cell)
    }

    /// The memory the column holds, allocated but unused room included.
    fn allocated(&self) -> usize {
        size_of::<ColumnBuilder>() + self.values.as_ref().map_or(0, Values::allocated)
    }

    fn finish(&mut self) -> ArrayRef {
        match self.values.take() {
            Some(mut values) => values.finish(),
            None => new_null_array(
                &data_type(self.kind),
                std::mem::take(&mut self.leading_nulls),
            ),
        }
    }
}

/// The memory a null takes in an array of `kind`.
fn null_bytes(kind: Kind) -> usize {
    match kind {
        Kind::Text => size_of::<u128>(),
        _ => FIXED_VALUE_BYTES,
    }
}

impl Values {
    /// A builder holding `nulls` nulls.
    fn with_nulls(kind: Kind, nulls: usize) -> Values {
        // Small, and grown by doubling: a partition of a few rows must not hold kilobytes per
        // column (a file of 20,000 dates makes 20,000 partitions).
        let rows = nulls.max(INITIAL_ROWS);
        match kind {
            Kind::Text => Values::Text(TextViews::with_nulls(nulls)),
            Kind::Bool => {
                let mut b = BooleanBuilder::with_capacity(rows);
                b.append_nulls(nulls);
                Values::Bool(b)
            }
            Kind::Int => {
                let mut b = Int64Builder::with_capacity(rows);
                b.append_nulls(nulls);
                Values::Int(b)
            }
            Kind::Time => {
                let mut b = TimestampMicrosecondBuilder::with_capacity(rows).with_timezone("UTC");
                b.append_nulls(nulls);
                Values::Time(b)
            }
        }
    }

    fn append(&mut self, cell: &Cell) -> usize {
        match (self, cell) {
            (Values::Text(b), Cell::Text(v)) => return b.append(v),
            (Values::Text(b), _) => return b.append_null(),
            (Values::Bool(b), Cell::Bool(v)) => b.append_value(*v),
            (Values::Bool(b), _) => b.append_null(),
            (Values::Int(b), Cell::Int(v)) => b.append_value(*v),
            (Values::Int(b), _) => b.append_null(),
            (Values::Time(b), Cell::Time(v)) => b.append_value(*v),
            (Values::Time(b), _) => b.append_null(),
        }
        FIXED_VALUE_BYTES
    }

    fn allocated(&self) -> usize {
        // A value and its validity bit.
        let fixed = |capacity: usize, width: usize| capacity * width + capacity.div_ceil(8);
        match self {
            Values::Text(b) => b.allocated(),
            Values::Bool(b) => 2 * b.capacity().div_ceil(8),
            Values::Int(b) => fixed(b.capacity(), 8),
            Values::Time(b) => fixed(b.capacity(), 8),
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Values::Text(b) => Arc::new(b.finish()),
            Values::Bool(b) => Arc::new(b.finish()),
            Values::Int(b) => Arc::new(b.finish()),
            Values::Time(b) => Arc::new(b.finish()),
        }
    }
}

/// Room for this many values when a column gets its first value; it doubles from there.
const INITIAL_ROWS: usize = 16;

/// The longest value a view holds inline, without a copy in a data block.
const INLINE_BYTES: usize = 12;

/// Data blocks start this small and double up to [`MAX_BLOCK_BYTES`], so that a partition of a
/// few rows holds a few kilobytes, not a megabyte per column.
const MIN_BLOCK_BYTES: usize = 1 << 10;

/// The largest data block: well under the allocator's mmap threshold (2 MiB, see main.rs), so
/// that a block freed after a write is reused from the heap by the next, instead of being
/// mapped afresh (a page fault per 4 KiB) and unmapped again.
const MAX_BLOCK_BYTES: usize = 1 << 20;

/// A text column as Arrow string views. Sorting rows for a write then moves 16-byte views, not
/// the text: the sorted copy of every value (`interleave`) was 8% of ingest time. A value equal
/// to the previous one stored in a block (the `source_file` of every row of a file, the
/// identity of a session's consecutive calls) is stored once, as a second view of the same
/// bytes.
struct TextViews {
    views: Vec<u128>,
    nulls: NullBufferBuilder,
    blocks: Vec<Buffer>,
    block: Vec<u8>,
    /// The view of the last value stored in a block.
    last: Option<u128>,
    /// Comparisons with the last value so far, and how many found it repeated.
    checks: usize,
    repeats: usize,
}

/// A column stops looking for repeats once fewer than one in this many comparisons found one
/// (after [`REPEAT_TRIALS`]): unique values (event IDs) then cost no comparison at all.
const REPEAT_SHARE: usize = 8;
const REPEAT_TRIALS: usize = 64;

impl Default for TextViews {
    fn default() -> Self {
        TextViews {
            views: Vec::with_capacity(INITIAL_ROWS),
            nulls: NullBufferBuilder::new(INITIAL_ROWS),
            blocks: Vec::new(),
            block: Vec::new(),
            last: None,
            checks: 0,
            repeats: 0,
        }
    }
}

impl TextViews {
    /// Appends a value; returns the memory it took.
    fn append(&mut self, value: &str) -> usize {
        let bytes = value.as_bytes();
        self.nulls.append_non_null();
        if bytes.len() <= INLINE_BYTES {
            self.views.push(make_view(bytes, 0, 0));
            return size_of::<u128>();
        }
        if let Some(view) = self.last
            && self.worth_checking()
        {
            self.checks += 1;
            if self.stored(view) == bytes {
                self.repeats += 1;
                self.views.push(view);
                return size_of::<u128>();
            }
        }
        if self.block.capacity() - self.block.len() < bytes.len() {
            self.start_block(bytes.len());
        }
        // Blocks are at most the larger of MAX_BLOCK_BYTES and one value (a record is capped
        // far below 4 GiB), so these fit the view's u32 fields.
        let offset = self.block.len() as u32;
        let view = make_view(bytes, self.blocks.len() as u32, offset);
        self.block.extend_from_slice(bytes);
        self.views.push(view);
        self.last = Some(view);
        size_of::<u128>() + bytes.len()
    }

    fn allocated(&self) -> usize {
        let blocks: usize = self.blocks.iter().map(Buffer::capacity).sum();
        self.views.capacity() * size_of::<u128>()
            + self.nulls.allocated_size()
            + self.blocks.capacity() * size_of::<Buffer>()
            + blocks
            + self.block.capacity()
    }

    fn worth_checking(&self) -> bool {
        self.checks < REPEAT_TRIALS || self.repeats * REPEAT_SHARE >= self.checks
    }

    fn append_null(&mut self) -> usize {
        self.nulls.append_null();
        self.views.push(0);
        size_of::<u128>()
    }

    fn with_nulls(nulls: usize) -> TextViews {
        let mut views = TextViews::default();
        views.nulls.append_n_nulls(nulls);
        views.views.resize(nulls, 0);
        views
    }

    /// The bytes of a view made by `append` for a value stored in a block.
    fn stored(&self, view: u128) -> &[u8] {
        let view = ByteView::from(view);
        let block = match self.blocks.get(view.buffer_index as usize) {
            Some(block) => block.as_slice(),
            None => self.block.as_slice(),
        };
        let start = view.offset as usize;
        block
            .get(start..start + view.length as usize)
            .unwrap_or_default()
    }

    /// Closes the block being filled and starts one with room for at least `bytes`.
    fn start_block(&mut self, bytes: usize) {
        let size = (self.block.capacity() * 2)
            .clamp(MIN_BLOCK_BYTES, MAX_BLOCK_BYTES)
            .max(bytes);
        let full = std::mem::replace(&mut self.block, Vec::with_capacity(size));
        if !full.is_empty() {
            self.blocks.push(Buffer::from_vec(full));
        }
    }

    fn finish(&mut self) -> StringViewArray {
        let block = std::mem::take(&mut self.block);
        if !block.is_empty() {
            self.blocks.push(Buffer::from_vec(block));
        }
        let views = ScalarBuffer::from(std::mem::take(&mut self.views));
        let blocks = std::mem::take(&mut self.blocks);
        let nulls = self.nulls.finish();
        self.last = None;
        (self.checks, self.repeats) = (0, 0);
        // SAFETY: every view was made by `make_view` from a `&str` (valid UTF-8): inline, or
        // over the bytes copied at its offset into the block whose index it holds; the blocks
        // are pushed in that order, and a null's view is zero. That is what `try_new` checks.
        unsafe { StringViewArray::new_unchecked(views, blocks, nulls) }
    }
}

/// The builder's memory beyond its rows' text is measured again at these row counts (powers of
/// two up to this one), so that a small partition counts what it really holds; past it the
/// rows dominate and the measure stays.
const MEASURED_ROWS: usize = 64;

/// Collects rows of one partition until the sink writes them out. Holds nothing until its
/// first row: a worker may know thousands of partitions.
#[derive(Default)]
pub struct EventBatchBuilder {
    columns: Vec<ColumnBuilder>,
    rows: usize,
    /// The rows' values, as each append counts them.
    bytes: usize,
    /// What the builder holds beyond `bytes` (the columns themselves, room allocated ahead),
    /// as last measured.
    overhead: usize,
}

impl EventBatchBuilder {
    pub fn append(&mut self, row: &Row) {
        if self.columns.is_empty() {
            self.columns = new_columns();
        }
        for (builder, cell) in self.columns.iter_mut().zip(row.cells.iter()) {
            self.bytes += builder.append(cell);
        }
        self.rows += 1;
        if self.rows <= MEASURED_ROWS && self.rows.is_power_of_two() {
            self.overhead = self.allocated().saturating_sub(self.bytes);
        }
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The memory the buffered rows hold, for the sink's memory budget: their values and the
    /// builder's fixed cost (about 80 columns, each with room for its first values), which is
    /// most of it for a partition of a few rows.
    pub fn bytes(&self) -> usize {
        self.bytes + self.overhead
    }

    fn allocated(&self) -> usize {
        let columns = self
            .columns
            .iter()
            .map(ColumnBuilder::allocated)
            .sum::<usize>();
        columns + (self.columns.capacity() - self.columns.len()) * size_of::<ColumnBuilder>()
    }

    /// Drains the builder into a batch; the builder is empty and holds nothing afterwards.
    pub fn finish(&mut self) -> Result<RecordBatch, ArrowError> {
        if self.columns.is_empty() {
            self.columns = new_columns();
        }
        let arrays = self.columns.iter_mut().map(ColumnBuilder::finish).collect();
        self.columns = Vec::new();
        self.rows = 0;
        self.bytes = 0;
        self.overhead = 0;
        RecordBatch::try_new(schema(), arrays)
    }
}

fn new_columns() -> Vec<ColumnBuilder> {
    COLUMNS.iter().map(|c| ColumnBuilder::new(c.kind)).collect()
}

/// The rows `rows` (batch, row) of `batches` as one batch, in that order. A column with no
/// value in any of the batches is made as nulls at once, instead of being picked row by row.
pub fn pick_rows(
    batches: &[&RecordBatch],
    rows: &[(usize, usize)],
) -> Result<RecordBatch, ArrowError> {
    let columns = (0..col::COUNT)
        .map(|column| {
            let arrays: Vec<&dyn Array> = batches
                .iter()
                .map(|batch| batch.column(column).as_ref())
                .collect();
            if arrays.iter().all(|array| array.null_count() == array.len()) {
                Ok(new_null_array(arrays[0].data_type(), rows.len()))
            } else {
                interleave(&arrays, rows)
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new(schema(), columns)
}

/// `batch` with its text in blocks of its own, only as large as its values, and the memory it
/// takes (counted as [`EventBatchBuilder::bytes`] counts it). Rows picked out of a larger batch
/// still share that batch's blocks and would keep all of them alive.
pub fn compact(batch: &RecordBatch) -> Result<(RecordBatch, usize), ArrowError> {
    let mut bytes = 0;
    let columns = batch
        .columns()
        .iter()
        .map(|column| match column.as_string_view_opt() {
            Some(strings) if strings.null_count() < strings.len() => {
                let mut views = TextViews::default();
                for value in strings {
                    bytes += match value {
                        Some(value) => views.append(value),
                        None => views.append_null(),
                    };
                }
                Arc::new(views.finish()) as ArrayRef
            }
            Some(nulls) => {
                bytes += nulls.len() * size_of::<u128>();
                column.clone()
            }
            None => {
                bytes += column.len() * FIXED_VALUE_BYTES;
                column.clone()
            }
        })
        .collect();
    Ok((RecordBatch::try_new(batch.schema(), columns)?, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

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
        builder.append(&row);
        builder.append(&row);
        let batch = builder.finish().unwrap();
        assert_eq!(batch.num_rows(), 2);
        assert_eq!(batch.num_columns(), col::COUNT);
        assert_eq!(builder.rows(), 0);
        assert_eq!(builder.bytes(), 0);
    }

    fn texts(array: &StringViewArray) -> Vec<Option<&str>> {
        array.iter().collect()
    }

    #[test]
    fn text_views_keep_every_value_and_null() {
        let long = |n: usize| format!("{n:0>40}");
        let mut views = TextViews::default();
        let mut expected = Vec::new();
        for n in 0..5000 {
            // Inline values, long values that cross block boundaries, repeats and nulls.
            let value = match n % 5 {
                0 => None,
                1 => Some("short".to_owned()),
                2 | 3 => Some(long(n / 5)),
                _ => Some("y".repeat(n % 3000)),
            };
            match &value {
                Some(text) => views.append(text),
                None => views.append_null(),
            };
            expected.push(value);
        }
        let array = views.finish();
        array.to_data().validate_full().unwrap();
        let expected: Vec<Option<&str>> = expected.iter().map(Option::as_deref).collect();
        assert_eq!(texts(&array), expected);
        assert!(
            array.data_buffers().len() > 1,
            "the values span several blocks"
        );
        assert_eq!(array.null_count(), 1000);
    }

    #[test]
    fn a_repeated_value_is_stored_once() {
        let path = "AWSLogs/111122223333/CloudTrail/us-east-1/2026/12/01/file.json.gz";
        let mut views = TextViews::default();
        assert_eq!(views.append(path), size_of::<u128>() + path.len());
        for _ in 0..999 {
            assert_eq!(views.append(path), size_of::<u128>());
        }
        let other = "another value, longer than twelve bytes";
        views.append(other);
        let array = views.finish();
        assert_eq!(array.len(), 1000 + 1);
        assert_eq!(
            array.total_buffer_bytes_used(),
            1000 * path.len() + other.len()
        );
        let stored: usize = array.data_buffers().iter().map(|b| b.len()).sum();
        assert_eq!(
            stored,
            path.len() + other.len(),
            "the path's bytes are in a block once"
        );
        assert!(array.iter().take(1000).all(|v| v == Some(path)));
    }

    #[test]
    fn a_value_larger_than_a_block_gets_a_block_of_its_own() {
        let big = "z".repeat(3 * MAX_BLOCK_BYTES);
        let mut views = TextViews::default();
        views.append("first value in the block");
        let taken = views.append(&big);
        assert_eq!(taken, size_of::<u128>() + big.len());
        views.append("after the big one");
        let array = views.finish();
        array.to_data().validate_full().unwrap();
        assert_eq!(array.value(1), big);
        assert_eq!(array.value(2), "after the big one");
    }
}
