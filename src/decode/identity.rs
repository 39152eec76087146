//! `userIdentity` flattened into typed columns. The identity object itself is kept as JSON text,
//! so these columns are derived conveniences and never need to round-trip.

use serde::Deserialize;

use super::lenient::{Lenient, Text, read_or_default};
use super::time::parse_event_time;
use crate::lake::schema::{Cell, Row, col};

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct UserIdentity<'a> {
    #[serde(borrow, rename = "type")]
    kind: Text<'a>,
    #[serde(borrow)]
    principal_id: Text<'a>,
    #[serde(borrow)]
    arn: Text<'a>,
    #[serde(borrow)]
    account_id: Text<'a>,
    #[serde(borrow)]
    access_key_id: Text<'a>,
    #[serde(borrow)]
    user_name: Text<'a>,
    #[serde(borrow)]
    invoked_by: Text<'a>,
    #[serde(borrow)]
    identity_provider: Text<'a>,
    #[serde(borrow)]
    credential_id: Text<'a>,
    #[serde(borrow)]
    session_context: Lenient<SessionContext<'a>>,
    #[serde(borrow)]
    on_behalf_of: Option<&'a serde_json::value::RawValue>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct SessionContext<'a> {
    #[serde(borrow)]
    attributes: Lenient<Attributes<'a>>,
    #[serde(borrow)]
    session_issuer: Lenient<SessionIssuer<'a>>,
    #[serde(borrow)]
    source_identity: Text<'a>,
    #[serde(borrow)]
    ec2_role_delivery: Text<'a>,
    #[serde(borrow)]
    web_id_federation_data: Lenient<WebIdFederationData<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct Attributes<'a> {
    #[serde(borrow)]
    creation_date: Text<'a>,
    #[serde(borrow)]
    mfa_authenticated: Text<'a>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct SessionIssuer<'a> {
    #[serde(borrow, rename = "type")]
    kind: Text<'a>,
    #[serde(borrow)]
    principal_id: Text<'a>,
    #[serde(borrow)]
    arn: Text<'a>,
    #[serde(borrow)]
    account_id: Text<'a>,
    #[serde(borrow)]
    user_name: Text<'a>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct WebIdFederationData<'a> {
    #[serde(borrow)]
    federated_provider: Text<'a>,
}

/// Fills the identity columns of `row` from the raw `userIdentity` JSON.
pub fn flatten_into<'a>(raw: &'a str, row: &mut Row<'a>) {
    let identity: UserIdentity = read_or_default(raw);
    let texts = [
        (col::USER_TYPE, identity.kind),
        (col::PRINCIPAL_ID, identity.principal_id),
        (col::PRINCIPAL_ARN, identity.arn),
        (col::PRINCIPAL_ACCOUNT_ID, identity.account_id),
        (col::ACCESS_KEY_ID, identity.access_key_id),
        (col::USER_NAME, identity.user_name),
        (col::INVOKED_BY, identity.invoked_by),
        (col::IDENTITY_PROVIDER, identity.identity_provider),
        (col::CREDENTIAL_ID, identity.credential_id),
    ];
    set_texts(row, texts);
    if let Some(on_behalf_of) = identity.on_behalf_of.filter(|raw| raw.get() != "null") {
        row.set(col::ON_BEHALF_OF, Cell::text(on_behalf_of.get()));
    }
    flatten_session_context(identity.session_context.0, row);
}

fn flatten_session_context<'a>(context: SessionContext<'a>, row: &mut Row<'a>) {
    let Lenient(attributes) = context.attributes;
    let Lenient(issuer) = context.session_issuer;
    let Lenient(web) = context.web_id_federation_data;
    if let Some(micros) = attributes.creation_date.get().and_then(parse_event_time) {
        row.set(col::SESSION_CREATION_DATE, Cell::Time(micros));
    }
    if let Some(mfa) = attributes.mfa_authenticated.get().and_then(parse_bool) {
        row.set(col::MFA_AUTHENTICATED, Cell::Bool(mfa));
    }
    set_texts(
        row,
        [
            (col::SOURCE_IDENTITY, context.source_identity),
            (col::EC2_ROLE_DELIVERY, context.ec2_role_delivery),
            (col::SESSION_ISSUER_TYPE, issuer.kind),
            (col::SESSION_ISSUER_PRINCIPAL_ID, issuer.principal_id),
            (col::SESSION_ISSUER_ARN, issuer.arn),
            (col::SESSION_ISSUER_ACCOUNT_ID, issuer.account_id),
            (col::SESSION_ISSUER_USER_NAME, issuer.user_name),
            (col::WEB_ID_FEDERATED_PROVIDER, web.federated_provider),
        ],
    );
}

fn set_texts<'a, const N: usize>(row: &mut Row<'a>, texts: [(usize, Text<'a>); N]) {
    for (column, text) in texts {
        if let Some(value) = text.into_inner() {
            row.set(column, Cell::Text(value));
        }
    }
}

/// "true"/"false" as AWS writes them in string-typed flags.
pub fn parse_bool(text: &str) -> Option<bool> {
    match text {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assumed_role_identity() {
        let raw = r#"{"type":"AssumedRole","principalId":"AROA:s","arn":"arn:aws:sts::111122223333:assumed-role/Admin/s",
            "accountId":"111122223333","accessKeyId":"ASIAX","sessionContext":{"sessionIssuer":{"type":"Role",
            "principalId":"AROA","arn":"arn:aws:iam::111122223333:role/Admin","accountId":"111122223333","userName":"Admin"},
            "attributes":{"creationDate":"2023-07-10T12:00:00Z","mfaAuthenticated":"true"},"sourceIdentity":"alice"}}"#;
        let mut row = Row::default();
        flatten_into(raw, &mut row);
        assert_eq!(row.text(col::USER_TYPE), Some("AssumedRole"));
        assert_eq!(row.text(col::ACCESS_KEY_ID), Some("ASIAX"));
        assert_eq!(
            row.text(col::SESSION_ISSUER_ARN),
            Some("arn:aws:iam::111122223333:role/Admin")
        );
        assert_eq!(row.text(col::SOURCE_IDENTITY), Some("alice"));
        assert_eq!(row.cells[col::MFA_AUTHENTICATED], Cell::Bool(true));
        assert!(matches!(
            row.cells[col::SESSION_CREATION_DATE],
            Cell::Time(_)
        ));
    }

    #[test]
    fn odd_shapes_do_not_fail() {
        for raw in [
            r#"{"type":12,"sessionContext":"x"}"#,
            "[]",
            r#""str""#,
            "{}",
        ] {
            let mut row = Row::default();
            flatten_into(raw, &mut row);
            assert_eq!(row.text(col::SESSION_ISSUER_ARN), None, "{raw}");
        }
        let mut row = Row::default();
        flatten_into(r#"{"invokedBy":"AWS Internal"}"#, &mut row);
        assert_eq!(row.text(col::INVOKED_BY), Some("AWS Internal"));
        assert_eq!(row.text(col::USER_TYPE), None);
    }
}
