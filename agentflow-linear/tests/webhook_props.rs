//! Webhook verification and payload parsing under arbitrary input: no panic on any body,
//! signature or payload shape; a forged signature is always refused; a correctly signed, fresh
//! payload of any shape is accepted and turned into events without panicking.

use std::sync::OnceLock;

use agentflow_linear::{LinearConfig, LinearSource, LinearWebhooks, WebhookRejection};
use agentflow_testkit::fake_linear::{FakeLinear, sign};
use axum::http::{HeaderMap, HeaderValue};
use proptest::prelude::*;
use serde_json::{Value, json};

const SECRET: &str = "lin_wh_prop_secret";

/// One runtime, one fake Linear and one connected source for every case.
struct World {
    runtime: tokio::runtime::Runtime,
    hooks: LinearWebhooks,
    _fake: FakeLinear,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let (fake, hooks) = runtime.block_on(async {
            let fake = FakeLinear::start().await;
            let mut config = LinearConfig::with_api_key(FakeLinear::API_KEY, &["ENG"]);
            config.api_url = fake.url();
            let source = LinearSource::connect(config).await.expect("connect to the fake");
            let hooks = source.webhooks(SECRET.to_owned().into());
            (fake, hooks)
        });
        World { runtime, hooks, _fake: fake }
    })
}

fn headers(signature: Option<&[u8]>) -> HeaderMap {
    let mut h = HeaderMap::new();
    if let Some(sig) = signature
        && let Ok(v) = HeaderValue::from_bytes(sig)
    {
        h.insert("linear-signature", v);
    }
    h
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,16}".prop_map(Value::from),
        prop_oneof![Just("ENG"), Just("Todo"), Just("issue-1"), Just("team-1"), Just("")]
            .prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(
                prop_oneof![
                    Just("id".to_owned()),
                    Just("name".to_owned()),
                    Just("stateId".to_owned()),
                    Just("teamId".to_owned()),
                    "[a-zA-Z]{1,8}"
                ],
                inner,
                0..5
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A `webhookTimestamp` that is fresh, stale, absurd or not a number.
fn timestamp() -> impl Strategy<Value = (Value, bool)> {
    let now = chrono::Utc::now().timestamp_millis();
    prop_oneof![
        (-30_000i64..30_000).prop_map(move |d| (json!(now + d), true)),
        any::<i64>().prop_map(|t| (json!(t), false)),
        any::<f64>().prop_map(|t| (
            serde_json::Number::from_f64(t).map_or(Value::Null, Value::Number),
            false
        )),
        json_value().prop_map(|v| (v, false)),
    ]
}

/// Payloads shaped like Linear's, with any field missing, mistyped or out of range.
fn payload() -> impl Strategy<Value = (Value, bool)> {
    let kind = prop_oneof![Just("Issue"), Just("Comment"), Just("Project"), Just("")];
    let action = prop_oneof![Just("create"), Just("update"), Just("remove"), Just("x")];
    let data = prop::collection::btree_map(
        prop_oneof![
            Just("id"),
            Just("teamId"),
            Just("stateId"),
            Just("issueId"),
            Just("userId"),
            Just("botActor"),
            Just("labels"),
            Just("body"),
        ],
        json_value(),
        0..8,
    );
    (kind, action, data, prop::option::of(json_value()), timestamp(), any::<bool>()).prop_map(
        |(kind, action, data, updated_from, (ts, fresh), keep_ts)| {
            let mut v = json!({
                "type": kind,
                "action": action,
                "data": data.into_iter().map(|(k, v)| (k.to_owned(), v)).collect::<serde_json::Map<_, _>>(),
                "organizationId": "org-fake",
            });
            if let Some(from) = updated_from {
                v["updatedFrom"] = from;
            }
            if keep_ts {
                v["webhookTimestamp"] = ts;
            }
            let fresh = fresh && keep_ts;
            (v, fresh)
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bodies_and_signatures_never_panic(
        body in prop::collection::vec(any::<u8>(), 0..512),
        signature in prop::option::of(prop::collection::vec(any::<u8>(), 0..80)),
    ) {
        let w = world();
        let result = w.hooks.verify(&headers(signature.as_deref()), &body);
        // Without the secret a body is accepted only with its own signature, which random bytes
        // are not (a 2^-256 chance).
        prop_assert_eq!(result, Err(WebhookRejection::BadSignature));
    }

    #[test]
    fn signed_arbitrary_bytes_are_refused_as_malformed_or_stale_never_panic(
        body in prop::collection::vec(any::<u8>(), 0..512),
    ) {
        let w = world();
        let sig = sign(SECRET, &body);
        match w.hooks.verify(&headers(Some(sig.as_bytes())), &body) {
            Ok(payload) => {
                let _ = w.runtime.block_on(w.hooks.events(&payload));
            }
            Err(rejection) => prop_assert_ne!(rejection, WebhookRejection::BadSignature),
        }
    }

    #[test]
    fn signed_payloads_of_any_shape_parse_without_panic((payload, fresh) in payload()) {
        let w = world();
        let body = serde_json::to_vec(&payload).unwrap();
        let sig = sign(SECRET, &body);
        match w.hooks.verify(&headers(Some(sig.as_bytes())), &body) {
            Ok(verified) => {
                prop_assert_eq!(&verified["type"], &payload["type"]);
                let _ = w.runtime.block_on(w.hooks.events(&verified));
            }
            Err(rejection) => {
                prop_assert!(!fresh, "a fresh, signed payload was refused: {rejection}");
                let expected = matches!(
                    rejection,
                    WebhookRejection::Stale { .. } | WebhookRejection::Malformed(_)
                );
                prop_assert!(expected, "refused as {rejection:?}");
            }
        }
        // The same body with one bit of the signature flipped is refused.
        let mut forged = sig.into_bytes();
        forged[0] = if forged[0] == b'0' { b'1' } else { b'0' };
        prop_assert_eq!(
            w.hooks.verify(&headers(Some(&forged)), &body),
            Err(WebhookRejection::BadSignature)
        );
    }
}

#[test]
fn an_absurd_timestamp_in_a_signed_payload_is_stale_not_a_panic() {
    // Regression: `now - ts` overflowed (a panic in debug builds) for timestamps near i64::MIN.
    let w = world();
    for ts in [json!(i64::MIN), json!(-1e300), json!(f64::MAX), json!(i64::MAX)] {
        let body = serde_json::to_vec(&json!({ "type": "Issue", "webhookTimestamp": ts })).unwrap();
        let sig = sign(SECRET, &body);
        let result = w.hooks.verify(&headers(Some(sig.as_bytes())), &body);
        assert!(matches!(result, Err(WebhookRejection::Stale { .. })), "{ts}: {result:?}");
    }
}
