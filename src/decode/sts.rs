//! STS derivations: the typed columns of the credential-issuing calls, from `requestParameters`,
//! `responseElements` and, for failed calls whose payloads AWS logs as null, `errorMessage`.

use serde_json::Value;

use super::time::parse_expiration;
use crate::lake::schema::{Cell, Row, col};

/// The calls that issue credentials, as `eventName` spells them.
pub const CREDENTIAL_CALLS: [&str; 6] = [
    "AssumeRole",
    "AssumeRoleWithSAML",
    "AssumeRoleWithWebIdentity",
    "GetSessionToken",
    "GetFederationToken",
    "AssumeRoot",
];

/// True for a credential-issuing STS call.
pub fn is_credential_call(event_source: Option<&str>, event_name: Option<&str>) -> bool {
    event_source == Some("sts.amazonaws.com")
        && event_name.is_some_and(|name| CREDENTIAL_CALLS.contains(&name))
}

/// The payloads of one STS call, already parsed.
pub struct StsCall<'v> {
    pub event_name: &'v str,
    pub request: Option<&'v Value>,
    pub response: Option<&'v Value>,
    pub error_message: Option<&'v str>,
}

/// Fills the STS columns of `row` (the session-token fingerprint is set by the caller, which
/// also removes the token).
pub fn derive_into(call: &StsCall, row: &mut Row) {
    let request = |key: &str| call.request.and_then(|r| r.get(key));
    let response = |path: &[&str]| path_of(call.response, path);

    let role_arn = role_arn(call);
    if let Some(arn) = &role_arn {
        set(row, col::ROLE_ACCOUNT_ID, arn_account(arn));
        set(row, col::ROLE_NAME, role_name(arn));
    }
    set(row, col::ROLE_ARN, role_arn);
    let session_name = request("roleSessionName")
        .and_then(scalar_text)
        .or_else(|| response(&["assumedRoleUser", "arn"]).and_then(session_of_assumed_role));
    set(row, col::ROLE_SESSION_NAME, session_name);
    if let Some(seconds) = request("durationSeconds").and_then(as_i64) {
        row.set(col::DURATION_SECONDS, Cell::Int(seconds));
    }
    set(
        row,
        col::ISSUED_ACCESS_KEY_ID,
        response(&["credentials", "accessKeyId"]).and_then(scalar_text),
    );
    if let Some(micros) = response(&["credentials", "expiration"])
        .and_then(Value::as_str)
        .and_then(parse_expiration)
    {
        row.set(col::CREDENTIALS_EXPIRATION, Cell::Time(micros));
    }
    let texts = [
        (col::ASSUMED_ROLE_ARN, response(&["assumedRoleUser", "arn"])),
        (col::EXTERNAL_ID, request("externalId")),
        (col::MFA_SERIAL_NUMBER, request("serialNumber")),
        (col::FEDERATED_USER_ARN, response(&["federatedUser", "arn"])),
        (
            col::WEB_IDENTITY_SUBJECT,
            response(&["subjectFromWebIdentityToken"]),
        ),
        (col::WEB_IDENTITY_PROVIDER, response(&["provider"])),
        (col::SAML_SUBJECT, response(&["subject"])),
        (col::SAML_ISSUER, response(&["issuer"])),
    ];
    for (column, value) in texts {
        set(row, column, value.and_then(scalar_text));
    }
}

/// The role asked for: `roleArn` in the request; for AssumeRoot the target account's root; for a
/// failed call with null payloads, the resource named in `errorMessage`.
fn role_arn(call: &StsCall) -> Option<String> {
    let request = |key: &str| call.request.and_then(|r| r.get(key)).and_then(scalar_text);
    if call.event_name == "AssumeRoot" {
        if let Some(target) = request("targetPrincipal") {
            return Some(format!("arn:aws:iam::{target}:root"));
        }
    } else if let Some(arn) = request("roleArn") {
        return Some(arn);
    }
    let asks_for_role =
        call.event_name.starts_with("AssumeRole") || call.event_name == "AssumeRoot";
    asks_for_role
        .then(|| call.error_message.and_then(resource_in_error))
        .flatten()
}

/// "User: arn:... is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::1:role/x"
/// (sometimes followed by " because ..." or a period).
pub fn resource_in_error(message: &str) -> Option<String> {
    let (_, rest) = message.split_once("on resource: ")?;
    let arn = rest.split_whitespace().next()?;
    let arn = arn.trim_end_matches(['.', ',', ';']);
    arn.starts_with("arn:").then(|| arn.to_owned())
}

/// The account (fifth field) of an ARN.
pub fn arn_account(arn: &str) -> Option<String> {
    let account = arn.split(':').nth(4)?;
    (!account.is_empty()).then(|| account.to_owned())
}

/// `Admin` from `arn:aws:iam::1:role/path/Admin`; `root` from `arn:aws:iam::1:root`.
pub fn role_name(arn: &str) -> Option<String> {
    let resource = arn.splitn(6, ':').nth(5)?;
    match resource.strip_prefix("role/") {
        Some(path) => path.rsplit('/').next().map(str::to_owned),
        None => (resource == "root").then(|| "root".to_owned()),
    }
}

/// `session` from `arn:aws:sts::1:assumed-role/Role/session`.
fn session_of_assumed_role(arn: &Value) -> Option<String> {
    let arn = arn.as_str()?;
    let resource = arn.splitn(6, ':').nth(5)?;
    let mut parts = resource.splitn(3, '/');
    (parts.next()? == "assumed-role").then_some(())?;
    parts.nth(1).map(str::to_owned)
}

fn path_of<'v>(value: Option<&'v Value>, path: &[&str]) -> Option<&'v Value> {
    path.iter().try_fold(value?, |node, key| node.get(key))
}

fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        _ => None,
    }
}

fn as_i64(value: &Value) -> Option<i64> {
    value
        .as_i64()
        .or_else(|| value.as_str()?.trim().parse().ok())
}

fn set(row: &mut Row, column: usize, value: Option<String>) {
    if let Some(text) = value {
        row.set(column, Cell::text(text));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn derive(name: &str, request: Value, response: Value, error: Option<&str>) -> Row<'static> {
        let mut row = Row::default();
        let call = StsCall {
            event_name: name,
            request: Some(&request).filter(|v| !v.is_null()),
            response: Some(&response).filter(|v| !v.is_null()),
            error_message: error,
        };
        derive_into(&call, &mut row);
        row
    }

    #[test]
    fn assume_role() {
        let row = derive(
            "AssumeRole",
            json!({"roleArn":"arn:aws:iam::111122223333:role/ops/Admin","roleSessionName":"alice",
                   "durationSeconds":3600,"externalId":"x-1","serialNumber":"arn:aws:iam::1:mfa/a"}),
            json!({"credentials":{"accessKeyId":"ASIA1","expiration":"Jul 10, 2023, 12:31:14 PM"},
                   "assumedRoleUser":{"arn":"arn:aws:sts::111122223333:assumed-role/Admin/alice"}}),
            None,
        );
        assert_eq!(
            row.text(col::ROLE_ARN),
            Some("arn:aws:iam::111122223333:role/ops/Admin")
        );
        assert_eq!(row.text(col::ROLE_ACCOUNT_ID), Some("111122223333"));
        assert_eq!(row.text(col::ROLE_NAME), Some("Admin"));
        assert_eq!(row.text(col::ROLE_SESSION_NAME), Some("alice"));
        assert_eq!(row.cells[col::DURATION_SECONDS], Cell::Int(3600));
        assert_eq!(row.text(col::ISSUED_ACCESS_KEY_ID), Some("ASIA1"));
        assert_eq!(row.text(col::EXTERNAL_ID), Some("x-1"));
        assert_eq!(
            row.text(col::MFA_SERIAL_NUMBER),
            Some("arn:aws:iam::1:mfa/a")
        );
        assert_eq!(
            row.cells[col::CREDENTIALS_EXPIRATION],
            Cell::Time(1_688_992_274_000_000)
        );
    }

    #[test]
    fn saml_session_name_from_assumed_role_arn() {
        let row = derive(
            "AssumeRoleWithSAML",
            json!({"roleArn":"arn:aws:iam::1:role/Okta","principalArn":"arn:aws:iam::1:saml-provider/Okta"}),
            json!({"assumedRoleUser":{"arn":"arn:aws:sts::1:assumed-role/Okta/bob@example.com"},
                   "subject":"bob@example.com","issuer":"http://www.okta.com/x"}),
            None,
        );
        assert_eq!(row.text(col::ROLE_SESSION_NAME), Some("bob@example.com"));
        assert_eq!(row.text(col::SAML_SUBJECT), Some("bob@example.com"));
        assert_eq!(row.text(col::SAML_ISSUER), Some("http://www.okta.com/x"));
        assert_eq!(
            row.cells[col::DURATION_SECONDS],
            Cell::Null,
            "not requested"
        );
    }

    #[test]
    fn denied_call_names_its_role_from_the_error() {
        let message = "User: arn:aws:iam::1:user/bert is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::222233334444:role/x";
        let row = derive("AssumeRole", Value::Null, Value::Null, Some(message));
        assert_eq!(
            row.text(col::ROLE_ARN),
            Some("arn:aws:iam::222233334444:role/x")
        );
        assert_eq!(row.text(col::ROLE_ACCOUNT_ID), Some("222233334444"));
        let fed = "User: arn:aws:iam::1:user/T is not authorized to perform: sts:GetFederationToken on resource: arn:aws:sts::1:federated-user/T";
        let row = derive("GetFederationToken", Value::Null, Value::Null, Some(fed));
        assert_eq!(
            row.text(col::ROLE_ARN),
            None,
            "a federated user is not a role"
        );
    }

    #[test]
    fn assume_root_and_federation() {
        let row = derive(
            "AssumeRoot",
            json!({"targetPrincipal":"444455556666"}),
            Value::Null,
            None,
        );
        assert_eq!(
            row.text(col::ROLE_ARN),
            Some("arn:aws:iam::444455556666:root")
        );
        assert_eq!(row.text(col::ROLE_NAME), Some("root"));
        let row = derive(
            "GetFederationToken",
            json!({"name":"x","durationSeconds":"900"}),
            json!({"federatedUser":{"arn":"arn:aws:sts::1:federated-user/x"}}),
            None,
        );
        assert_eq!(
            row.text(col::FEDERATED_USER_ARN),
            Some("arn:aws:sts::1:federated-user/x")
        );
        assert_eq!(row.cells[col::DURATION_SECONDS], Cell::Int(900));
    }

    #[test]
    fn error_resource_parsing() {
        let cases = [
            (
                "... on resource: arn:aws:iam::1:role/x because no policy",
                Some("arn:aws:iam::1:role/x"),
            ),
            (
                "... on resource: arn:aws:iam::1:role/x.",
                Some("arn:aws:iam::1:role/x"),
            ),
            (
                "The security token included in the request is invalid",
                None,
            ),
            ("on resource: not-an-arn", None),
        ];
        for (message, expected) in cases {
            assert_eq!(resource_in_error(message).as_deref(), expected, "{message}");
        }
    }
}
