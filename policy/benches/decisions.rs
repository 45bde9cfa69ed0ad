//! Hot-path benchmark: decisions per second and p50/p99 latency of one authorization (request
//! built and evaluated) against a 20-statement key policy with conditions and 100 grants, with one
//! identity policy. Everything is compiled once before the clock starts.
//!
//! Run: `cargo bench -p trent-policy --bench decisions`.

use std::time::{Duration, Instant};

use trent_policy::{
    authorize, AccessRequest, CompiledPolicy, Decision, Grant, GrantConstraints, GrantIndex,
    GrantOperation, PolicyKind, Principal, Resource,
};

const KEY: &str = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

fn key_policy() -> String {
    let mut st = vec![
        r#"{"Sid":"EnableIAM","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"}"#.to_string(),
        r#"{"Sid":"DenyNoTLS","Effect":"Deny","Principal":"*","Action":"kms:*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"false"}}}"#.to_string(),
        r#"{"Sid":"DenyOutsideNet","Effect":"Deny","Principal":"*","Action":["kms:Decrypt","kms:Encrypt"],"Resource":"*","Condition":{"NotIpAddress":{"aws:SourceIp":["10.0.0.0/8","2001:db8::/32"]}}}"#.to_string(),
        r#"{"Sid":"Admins","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/admin"},"Action":["kms:Create*","kms:Describe*","kms:Enable*","kms:List*","kms:Put*","kms:Update*","kms:Revoke*","kms:Disable*","kms:Get*","kms:Delete*","kms:ScheduleKeyDeletion","kms:CancelKeyDeletion"],"Resource":"*"}"#.to_string(),
        r#"{"Sid":"Rotation","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/admin"},"Action":"kms:EnableKeyRotation","Resource":"*","Condition":{"NumericLessThanEquals":{"kms:RotationPeriodInDays":"365"}}}"#.to_string(),
        r#"{"Sid":"Window","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/admin"},"Action":"kms:?cheduleKeyDeletion","Resource":"*","Condition":{"NumericGreaterThanEquals":{"kms:ScheduleKeyDeletionPendingWindowInDays":"14"}}}"#.to_string(),
        r#"{"Sid":"Partner","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::444455556666:root"},"Action":["kms:Decrypt","kms:DescribeKey"],"Resource":"*","Condition":{"StringEquals":{"kms:EncryptionContext:partner":"444455556666"}}}"#.to_string(),
        r#"{"Sid":"Until","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/temp"},"Action":"kms:Decrypt","Resource":"*","Condition":{"DateLessThan":{"aws:CurrentTime":"2030-01-01T00:00:00Z"}}}"#.to_string(),
    ];
    for i in 0..12 {
        st.push(format!(
            r#"{{"Sid":"Team{i}","Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::111122223333:user/user{i}"}},"Action":["kms:Encrypt","kms:Decrypt","kms:ReEncrypt*","kms:GenerateDataKey*"],"Resource":"*","Condition":{{"StringEquals":{{"kms:EncryptionContext:team":"team{i}"}},"StringLike":{{"kms:EncryptionContext:path":"${{aws:username}}/?*"}},"ForAllValues:StringEquals":{{"kms:EncryptionContextKeys":["team","path","purpose"]}}}}}}"#
        ));
    }
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{}]}}"#,
        st.join(",")
    )
}

fn grants() -> GrantIndex {
    GrantIndex::from_grants((0..100).map(|i| Grant {
        grant_id: format!("grant{i:03}"),
        grantee_principal: format!("arn:aws:iam::111122223333:user/user{}", i % 25),
        operations: vec![GrantOperation::Decrypt, GrantOperation::Encrypt],
        constraints: Some(GrantConstraints {
            encryption_context_equals: None,
            encryption_context_subset: Some([("grant".to_string(), format!("g{i}"))].into()),
            source_arn: None,
        }),
    }))
    .expect("grants compile")
}

fn main() {
    let t = Instant::now();
    let kp = CompiledPolicy::from_text(&key_policy(), PolicyKind::KeyPolicy, "key").unwrap();
    let iam = CompiledPolicy::from_text(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["kms:Decrypt","kms:Encrypt"],"Resource":"arn:aws:kms:*:111122223333:key/*"}]}"#,
        PolicyKind::Identity,
        "iam",
    )
    .unwrap();
    let grants = grants();
    println!(
        "compiled 20 statements + 1 identity policy + 100 grants in {:?}",
        t.elapsed()
    );

    let resource = Resource::from_arn(KEY);
    let request = |i: usize| {
        let n = i % 12;
        let user = format!("user{n}");
        AccessRequest::builder(
            Principal::user("111122223333", &user),
            if i.is_multiple_of(2) {
                "kms:Decrypt"
            } else {
                "kms:Encrypt"
            },
            resource.clone(),
        )
        .context("aws:SecureTransport", true)
        .context("aws:SourceIp", "10.1.2.3")
        .encryption_context([
            ("team", format!("team{n}").as_str()),
            ("path", format!("{user}/data").as_str()),
        ])
        .build()
    };
    // Sanity: the hot-path request is allowed by its team statement.
    let e = authorize(&request(3), &kp, [&iam], Some(&grants));
    assert_eq!(e.decision, Decision::Allow, "{e:?}");

    let iterations = 20_000;
    let mut samples = Vec::with_capacity(iterations);
    for i in 0..2_000 {
        std::hint::black_box(authorize(&request(i), &kp, [&iam], Some(&grants)));
    }
    let start = Instant::now();
    for i in 0..iterations {
        let t = Instant::now();
        let req = request(i);
        let e = authorize(&req, &kp, [&iam], Some(&grants));
        samples.push(t.elapsed());
        std::hint::black_box(e);
    }
    let total = start.elapsed();
    // Where the time goes: building the request alone, and the key policy alone.
    let t = Instant::now();
    for i in 0..iterations {
        std::hint::black_box(request(i));
    }
    let build = t.elapsed() / iterations as u32;
    let prebuilt: Vec<AccessRequest> = (0..64).map(request).collect();
    let t = Instant::now();
    for i in 0..iterations {
        std::hint::black_box(authorize(&prebuilt[i % 64], &kp, [], None));
    }
    let key_only = t.elapsed() / iterations as u32;
    let tiny = CompiledPolicy::from_text(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"kms:Decrypt","Resource":"*"}]}"#,
        PolicyKind::KeyPolicy,
        "tiny",
    )
    .unwrap();
    let t = Instant::now();
    for i in 0..iterations {
        std::hint::black_box(authorize(&prebuilt[i % 64], &tiny, [], None));
    }
    let fixed = t.elapsed() / iterations as u32;
    println!("mean per request: one-statement key policy (context + Cedar) {fixed:?}");
    println!("mean per request: building the AccessRequest {build:?}; key policy alone (context + Cedar) {key_only:?}");
    samples.sort();
    let pct = |p: f64| samples[((samples.len() as f64 * p) as usize).min(samples.len() - 1)];
    println!(
        "{iterations} decisions in {total:?}: {:.0} decisions/s, p50 {:?}, p99 {:?}, max {:?}",
        iterations as f64 / total.as_secs_f64(),
        pct(0.50),
        pct(0.99),
        samples.last().copied().unwrap_or(Duration::ZERO)
    );
}
