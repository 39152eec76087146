//! The schema of the lake's `events` table, as both wings see it: the columns in order with
//! their Arrow kind and a one-line meaning ([`COLUMNS`], their positions in [`col`]), a row of
//! cells ([`Row`], [`Cell`]) that `decode` fills, the Arrow [`schema()`] of the files, the Hive
//! partition columns that live in the path, and the columns a row's identity is read from for
//! deduplication. Building Arrow arrays from rows is `batch`'s job, writing them is `sink`'s.

use std::borrow::Cow;
use std::sync::{Arc, LazyLock};

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// The Arrow type of a column (text is `Utf8View`: see `batch::TextViews`).
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

/// The Arrow type of a column of `kind`, in the files and in the batches built for them.
pub fn data_type(kind: Kind) -> DataType {
    match kind {
        Kind::Text => DataType::Utf8View,
        Kind::Bool => DataType::Boolean,
        Kind::Int => DataType::Int64,
        Kind::Time => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
    }
}

/// The Hive partition columns of `events`, in path order.
pub const PARTITION_COLUMNS: [(&str, &str); 2] = [
    (
        "account_id",
        "partition: recipient_account_id, validated (12 digits) or `unknown`",
    ),
    (
        "date",
        "partition: the UTC date of event_time, YYYY-MM-DD (filter on it to skip whole folders)",
    ),
];

/// The columns a partition's existing keys are read from.
pub const KEY_COLUMNS: [&str; 3] = ["event_id", "recipient_account_id", "event_time"];

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
}
