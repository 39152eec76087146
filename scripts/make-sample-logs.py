#!/usr/bin/env python3
"""Writes sample-logs/: a small, deterministic CloudTrail corpus in the real S3 key layout.

One working day in a three-account organization (identity 111111111111, prod 222222222222,
and an audit vendor 999999999999), covering every credential-issuing STS call and identity type:

- alice (IAM user, MFA) assumes ops/Admin in prod cross-account; the call is logged in both
  accounts (same sharedEventID); her Admin session then assumes ReadOnly: a role chain.
- bob signs in through Okta (AssumeRoleWithSAML); GitHub Actions uses OIDC
  (AssumeRoleWithWebIdentity); Lambda and EC2 assume their service roles (AWSService caller).
- carol calls GetSessionToken with MFA and GetFederationToken; the vendor assumes the audit
  role with an ExternalId; an admin session calls AssumeRoot.
- mallory is denied AssumeRole (null payloads, role only in errorMessage).
- the sessions' keys then sign ordinary API calls, one of them from a second IP.
- one file is delivered twice under two names, and a digest file sits beside the logs.

Run: python3 scripts/make-sample-logs.py sample-logs
"""
import gzip
import hashlib
import json
import os
import sys
from datetime import datetime, timedelta, timezone

ORG = "o-samples01"
IDENTITY, PROD, VENDOR = "111111111111", "222222222222", "999999999999"
DAY = datetime(2024, 3, 1, 8, 0, 0, tzinfo=timezone.utc)
CLI = "aws-cli/2.15.30 Python/3.11.8 Linux/6.5.0 exe/x86_64.ubuntu.22"
BROWSER = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 Chrome/122.0"
counter = 0


def uid(*parts):
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()
    return f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"


def ts(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def expiration(t, seconds, new_style=True):
    end = t + timedelta(seconds=seconds)
    fmt = "%b %d, %Y, %I:%M:%S %p" if new_style else "%b %d, %Y %I:%M:%S %p"
    return end.strftime(fmt).replace(" 0", " ")


def key(prefix, n):
    return prefix + hashlib.sha256(f"{prefix}{n}".encode()).hexdigest().upper()[:16]


def event(t, source, name, identity, ip, agent, recipient, req=None, resp=None, **extra):
    global counter
    counter += 1
    record = {
        "eventVersion": "1.08",
        "userIdentity": identity,
        "eventTime": ts(t),
        "eventSource": source,
        "eventName": name,
        "awsRegion": "us-east-1",
        "sourceIPAddress": ip,
        "userAgent": agent,
        "requestParameters": req,
        "responseElements": resp,
        "requestID": uid("req", counter),
        "eventID": uid("evt", counter),
        "readOnly": extra.pop("read_only", name.startswith(("Get", "List", "Describe"))),
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": recipient,
        "eventCategory": "Management",
    }
    if ip[0].isdigit():
        record["tlsDetails"] = {"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256",
                                "clientProvidedHostHeader": f"{source.split('.')[0]}.amazonaws.com"}
    record.update(extra)
    return record


def iam_user(name, account=IDENTITY, access_key=None):
    return {"type": "IAMUser", "principalId": key("AIDA", name), "arn": f"arn:aws:iam::{account}:user/{name}",
            "accountId": account, "accessKeyId": access_key or key("AKIA", name), "userName": name}


def assumed(role_account, role, session, access_key, created, mfa=False, role_path=""):
    role_id = key("AROA", role)
    return {"type": "AssumedRole", "principalId": f"{role_id}:{session}",
            "arn": f"arn:aws:sts::{role_account}:assumed-role/{role}/{session}",
            "accountId": role_account, "accessKeyId": access_key,
            "sessionContext": {"sessionIssuer": {"type": "Role", "principalId": role_id,
                                                 "arn": f"arn:aws:iam::{role_account}:role/{role_path}{role}",
                                                 "accountId": role_account, "userName": role},
                               "webIdFederationData": {},
                               "attributes": {"creationDate": ts(created), "mfaAuthenticated": str(mfa).lower()}}}


def credentials(t, seconds, access_key, new_style=True):
    return {"accessKeyId": access_key, "sessionToken": "IQoJb3JpZ2luX2VjE" + hashlib.sha256(access_key.encode()).hexdigest(),
            "expiration": expiration(t, seconds, new_style)}


def assume_role(t, caller, ip, agent, role_account, role, session, seconds, issued, recipients, role_path="", **req_extra):
    req = {"roleArn": f"arn:aws:iam::{role_account}:role/{role_path}{role}", "roleSessionName": session}
    if seconds:
        req["durationSeconds"] = seconds
    req.update(req_extra)
    resp = {"credentials": credentials(t, seconds or 3600, issued),
            "assumedRoleUser": {"assumedRoleId": f"{key('AROA', role)}:{session}",
                                "arn": f"arn:aws:sts::{role_account}:assumed-role/{role}/{session}"}}
    resources = [{"accountId": role_account, "type": "AWS::IAM::Role", "ARN": req["roleArn"]}]
    records = []
    shared = uid("shared", t, issued) if len(recipients) > 1 else None
    for recipient in recipients:
        extra = {"resources": resources}
        if shared:
            extra["sharedEventID"] = shared
        records.append(event(t, "sts.amazonaws.com", "AssumeRole", caller, ip, agent, recipient, req, resp, **extra))
    return records


def calls(t, identity, ip, agent, account, n, names):
    out = []
    for i in range(n):
        source, name = names[i % len(names)]
        out.append(event(t + timedelta(minutes=3 * i + 1), source, name, identity, ip, agent, account,
                         {"maxResults": 50} if name.startswith(("List", "Describe")) else None, None))
    return out


READS = [("ec2.amazonaws.com", "DescribeInstances"), ("s3.amazonaws.com", "ListBuckets"),
         ("iam.amazonaws.com", "ListRoles"), ("kms.amazonaws.com", "ListKeys")]


def build():
    by_account = {IDENTITY: [], PROD: [], VENDOR: []}

    def add(records):
        for record in records:
            by_account[record["recipientAccountId"]].append(record)

    # alice: IAM user with MFA -> prod ops/Admin (cross-account, logged in both) -> ReadOnly (chain)
    t = DAY
    alice = iam_user("alice")
    admin_key, ro_key = key("ASIA", "alice-admin"), key("ASIA", "alice-ro")
    add(assume_role(t, alice, "203.0.113.10", CLI, PROD, "Admin", "alice", 3600, admin_key,
                    [IDENTITY, PROD], role_path="ops/", serialNumber=f"arn:aws:iam::{IDENTITY}:mfa/alice",
                    sourceIdentity="alice"))
    admin = assumed(PROD, "Admin", "alice", admin_key, t, mfa=True, role_path="ops/")
    admin["sessionContext"]["sourceIdentity"] = "alice"
    add(calls(t, admin, "203.0.113.10", CLI, PROD, 12, READS))
    t2 = t + timedelta(minutes=40)
    add(assume_role(t2, admin, "203.0.113.10", CLI, PROD, "ReadOnly", "alice-ro", 900, ro_key, [PROD]))
    ro = assumed(PROD, "ReadOnly", "alice-ro", ro_key, t2)
    add(calls(t2, ro, "203.0.113.10", CLI, PROD, 8, READS))
    # the same ReadOnly key later used from an unexpected address
    add(calls(t2 + timedelta(minutes=30), ro, "198.51.100.77", "python-requests/2.31", PROD, 3, READS[:1]))

    # bob: Okta SAML into prod
    t = DAY + timedelta(hours=1)
    bob_key = key("ASIA", "bob")
    saml_req = {"sAMLAssertionID": "_" + uid("saml", 1).replace("-", ""), "roleSessionName": "bob@example.com",
                "principalArn": f"arn:aws:iam::{PROD}:saml-provider/Okta",
                "roleArn": f"arn:aws:iam::{PROD}:role/OktaDevelopers", "durationSeconds": 28800}
    saml_resp = {"credentials": credentials(t, 28800, bob_key, new_style=False),
                 "assumedRoleUser": {"assumedRoleId": f"{key('AROA', 'OktaDevelopers')}:bob@example.com",
                                     "arn": f"arn:aws:sts::{PROD}:assumed-role/OktaDevelopers/bob@example.com"},
                 "subject": "bob@example.com", "subjectType": "persistent", "issuer": "http://www.okta.com/exk1sample",
                 "audience": "https://signin.aws.amazon.com/saml", "nameQualifier": "Q1sample="}
    add([event(t, "sts.amazonaws.com", "AssumeRoleWithSAML",
               {"type": "SAMLUser", "principalId": "Q1sample=:bob@example.com", "userName": "bob@example.com",
                "identityProvider": "Q1sample="}, "198.51.100.20", BROWSER, PROD, saml_req, saml_resp)])
    add(calls(t, assumed(PROD, "OktaDevelopers", "bob@example.com", bob_key, t), "198.51.100.20", BROWSER, PROD, 10, READS))

    # GitHub Actions: OIDC
    t = DAY + timedelta(hours=2)
    gh_key = key("ASIA", "github")
    sub = "repo:example/app:ref:refs/heads/main"
    add([event(t, "sts.amazonaws.com", "AssumeRoleWithWebIdentity",
               {"type": "WebIdentityUser", "principalId": f"arn:aws:iam::{PROD}:oidc-provider/token.actions.githubusercontent.com:sts.amazonaws.com:{sub}",
                "userName": sub, "identityProvider": f"arn:aws:iam::{PROD}:oidc-provider/token.actions.githubusercontent.com"},
               "4.148.0.10", "aws-sdk-js/3.0 GitHubActions", PROD,
               {"roleArn": f"arn:aws:iam::{PROD}:role/GitHubDeploy", "roleSessionName": "GitHubActions", "durationSeconds": 3600},
               {"credentials": credentials(t, 3600, gh_key), "subjectFromWebIdentityToken": sub,
                "assumedRoleUser": {"assumedRoleId": f"{key('AROA', 'GitHubDeploy')}:GitHubActions",
                                    "arn": f"arn:aws:sts::{PROD}:assumed-role/GitHubDeploy/GitHubActions"},
                "provider": f"arn:aws:iam::{PROD}:oidc-provider/token.actions.githubusercontent.com",
                "audience": "sts.amazonaws.com"})])
    add(calls(t, assumed(PROD, "GitHubDeploy", "GitHubActions", gh_key, t), "4.148.0.10", "aws-sdk-js/3.0 GitHubActions", PROD, 6,
              [("s3.amazonaws.com", "PutObject"), ("lambda.amazonaws.com", "UpdateFunctionCode")]))

    # AWS services assuming their roles
    for hour, service, role in [(3, "lambda.amazonaws.com", "OrdersFunctionRole"), (4, "ec2.amazonaws.com", "WebServerRole")]:
        t = DAY + timedelta(hours=hour)
        issued = key("ASIA", role)
        add(assume_role(t, {"type": "AWSService", "invokedBy": service}, service, service, PROD, role,
                        uid("svc", role)[:16], 0, issued, [PROD]))
        add(calls(t, assumed(PROD, role, uid("svc", role)[:16], issued, t), "10.0.1.15" if "ec2" in service else service,
                  "aws-sdk-java/1.12", PROD, 4, [("dynamodb.amazonaws.com", "GetItem"), ("kms.amazonaws.com", "Decrypt")]))

    # carol: GetSessionToken with MFA, then GetFederationToken
    t = DAY + timedelta(hours=5)
    carol = iam_user("carol")
    carol_key, fed_key = key("ASIA", "carol"), key("ASIA", "carol-fed")
    add([event(t, "sts.amazonaws.com", "GetSessionToken", carol, "203.0.113.30", CLI, IDENTITY,
               {"durationSeconds": 43200, "serialNumber": f"arn:aws:iam::{IDENTITY}:mfa/carol"},
               {"credentials": credentials(t, 43200, carol_key)})])
    add([event(t + timedelta(minutes=5), "sts.amazonaws.com", "GetFederationToken", carol, "203.0.113.30", CLI, IDENTITY,
               {"name": "carol-contractor", "durationSeconds": 3600,
                "policy": "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"s3:GetObject\",\"Resource\":\"*\"}]}"},
               {"credentials": credentials(t, 3600, fed_key),
                "federatedUser": {"federatedUserId": f"{IDENTITY}:carol-contractor",
                                  "arn": f"arn:aws:sts::{IDENTITY}:federated-user/carol-contractor"}, "packedPolicySize": 6})])
    add(calls(t, {"type": "FederatedUser", "principalId": f"{IDENTITY}:carol-contractor",
                  "arn": f"arn:aws:sts::{IDENTITY}:federated-user/carol-contractor", "accountId": IDENTITY,
                  "accessKeyId": fed_key, "sessionContext": {"sessionIssuer": {"type": "IAMUser", "principalId": key("AIDA", "carol"),
                  "arn": f"arn:aws:iam::{IDENTITY}:user/carol", "accountId": IDENTITY, "userName": "carol"},
                  "attributes": {"creationDate": ts(t), "mfaAuthenticated": "false"}}},
              "203.0.113.30", CLI, IDENTITY, 3, [("s3.amazonaws.com", "GetObject")]))

    # audit vendor with an ExternalId, logged in both accounts
    t = DAY + timedelta(hours=6)
    vendor_key = key("ASIA", "vendor")
    vendor = {"type": "AssumedRole", "principalId": f"{key('AROA', 'Scanner')}:scanner",
              "arn": f"arn:aws:sts::{VENDOR}:assumed-role/Scanner/scanner", "accountId": VENDOR,
              "accessKeyId": key("ASIA", "scanner")}
    add(assume_role(t, vendor, "192.0.2.50", "Boto3/1.34.51", PROD, "VendorAudit", "audit-run-42", 3600, vendor_key,
                    [VENDOR, PROD], externalId="vendor-7f3a"))
    add(calls(t, assumed(PROD, "VendorAudit", "audit-run-42", vendor_key, t), "192.0.2.50", "Boto3/1.34.51", PROD, 6, READS))

    # an admin in the management account uses AssumeRoot on the prod account
    t = DAY + timedelta(hours=7)
    root_key = key("ASIA", "root")
    admin_id = assumed(IDENTITY, "OrgAdmin", "dana", key("ASIA", "dana"), t - timedelta(minutes=10), mfa=True)
    add([event(t, "sts.amazonaws.com", "AssumeRoot", admin_id, "203.0.113.40", CLI, IDENTITY,
               {"targetPrincipal": PROD, "taskPolicyArn": {"arn": "arn:aws:iam::aws:policy/root-task/IAMDeleteRootUserCredentials"},
                "durationSeconds": 900}, {"credentials": credentials(t, 900, root_key)})])
    add(calls(t, {"type": "Root", "principalId": PROD, "arn": f"arn:aws:iam::{PROD}:root", "accountId": PROD,
                  "accessKeyId": root_key, "sessionContext": {"attributes": {"creationDate": ts(t), "mfaAuthenticated": "false"},
                                                              "assumedRoot": "true"}},
              "203.0.113.40", CLI, PROD, 2, [("iam.amazonaws.com", "DeleteLoginProfile")]))

    # mallory: denied, payloads null, the role only in errorMessage
    t = DAY + timedelta(hours=8)
    mallory = iam_user("mallory")
    for i in range(3):
        add([event(t + timedelta(seconds=20 * i), "sts.amazonaws.com", "AssumeRole", mallory, "185.220.101.4", "curl/8.4.0", IDENTITY,
                   None, None, errorCode="AccessDenied",
                   errorMessage=f"User: arn:aws:iam::{IDENTITY}:user/mallory is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::{PROD}:role/ops/Admin")])

    # background IAM-user activity
    add(calls(DAY + timedelta(hours=9), iam_user("alice"), "203.0.113.10", CLI, IDENTITY, 80, READS))
    add(calls(DAY + timedelta(hours=9), iam_user("deploy-bot", PROD), "10.0.2.8", "Terraform/1.7.4", PROD, 100, READS))
    return by_account


def write(out_dir, by_account):
    files = []
    for account, records in by_account.items():
        records.sort(key=lambda r: r["eventTime"])
        for hour in sorted({r["eventTime"][11:13] for r in records}):
            chunk = [r for r in records if r["eventTime"][11:13] == hour]
            stamp = f"20240301T{hour}05Z"
            folder = os.path.join(out_dir, "AWSLogs", ORG, account, "CloudTrail", "us-east-1", "2024", "03", "01")
            name = f"{account}_CloudTrail_us-east-1_{stamp}_{uid('file', account, hour)[:16].replace('-', '')}.json.gz"
            files.append((folder, name, {"Records": chunk}))
    # CloudTrail re-delivers: the first prod file again, under another name, the next day
    folder, name, doc = next(f for f in files if PROD in f[1])
    files.append((folder.replace("/01", "/02"), name.replace("_2024", "_R_2024").replace("0105Z", "0010Z"), doc))
    for folder, name, doc in files:
        os.makedirs(folder, exist_ok=True)
        data = json.dumps(doc, separators=(",", ":")).encode()
        with open(os.path.join(folder, name), "wb") as f:
            f.write(gzip.compress(data, mtime=0))
    digest_dir = os.path.join(out_dir, "AWSLogs", ORG, PROD, "CloudTrail-Digest", "us-east-1", "2024", "03", "01")
    os.makedirs(digest_dir, exist_ok=True)
    digest = {"awsAccountId": PROD, "digestStartTime": "2024-03-01T08:00:00Z", "digestEndTime": "2024-03-01T09:00:00Z",
              "digestS3Bucket": "org-trail", "logFiles": [], "digestPublicKeyFingerprint": "0" * 32}
    with open(os.path.join(digest_dir, f"{PROD}_CloudTrail-Digest_us-east-1_org_20240301T090000Z.json.gz"), "wb") as f:
        f.write(gzip.compress(json.dumps(digest).encode(), mtime=0))
    return sum(len(d["Records"]) for _, _, d in files)


if __name__ == "__main__":
    out = sys.argv[1] if len(sys.argv) > 1 else "sample-logs"
    total = write(out, build())
    print(f"wrote {total} records (with the re-delivered copy) under {out}")
