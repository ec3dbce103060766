//! The cases every `Directory` must pass: tenants, API tokens, rulesets, and that one
//! tenant never sees or changes another's.

use chrono::{DateTime, Utc};
use domain::event::RulesetRef;
use domain::{ActorId, Role, RulesetId, TenantId, TokenId};
use store::{NewToken, StoreError, StoredRuleset, TokenRecord};

use crate::Harness;

fn tenant(id: &str) -> TenantId {
    TenantId::parse(id).unwrap()
}

fn ruleset_id(id: &str) -> RulesetId {
    RulesetId::parse(id).unwrap()
}

fn actor() -> ActorId {
    ActorId::parse("alice").unwrap()
}

/// A stand-in for the SHA-256 of a secret: 32 bytes, different for each `n`.
fn secret(n: u8) -> [u8; 32] {
    std::array::from_fn(|i| n.wrapping_mul(37).wrapping_add(i as u8))
}

fn new_token(tenant: &TenantId, role: Role, name: &str, n: u8) -> NewToken {
    NewToken {
        id: TokenId::new(),
        tenant: tenant.clone(),
        role,
        name: name.to_owned(),
        secret_sha256: secret(n),
    }
}

fn yaml(id: &str, version: u32) -> String {
    format!("id: {id}\nversion: {version}\nrules: []\n")
}

fn rref(id: &str, version: u32) -> RulesetRef {
    RulesetRef {
        id: ruleset_id(id),
        version,
    }
}

fn assert_recent(t: DateTime<Utc>) {
    let age = Utc::now() - t;
    assert!(age.num_seconds().abs() < 60, "{t} is now-ish");
}

fn assert_already_exists(err: StoreError, what: &str, id: &str) {
    let msg = err.to_string();
    match err {
        StoreError::AlreadyExists { what: w, id: i } => {
            assert_eq!((w, i.as_str()), (what, id));
            assert_eq!(msg, format!("{what} {id} already exists"));
        }
        other => panic!("expected AlreadyExists {what} {id}, got {other:?}"),
    }
}

fn assert_not_found(err: StoreError, what: &str, id: &str) {
    let msg = err.to_string();
    match err {
        StoreError::NotFound { what: w, id: i } => {
            assert_eq!((w, i.as_str()), (what, id));
            assert_eq!(msg, format!("no {what} {id}"));
        }
        other => panic!("expected NotFound {what} {id}, got {other:?}"),
    }
}

pub async fn tenants_create_count_list_and_refuse_duplicates(h: &Harness) {
    let s = &h.store;
    assert_eq!(
        s.tenant_count().await.unwrap(),
        0,
        "a new store has no tenant"
    );
    assert_eq!(s.list_tenants().await.unwrap(), vec![]);

    let zeta = s
        .create_tenant(&tenant("zeta-plumbing"), "Zeta Plumbing")
        .await
        .unwrap();
    assert_eq!(zeta.id, tenant("zeta-plumbing"));
    assert_eq!(zeta.name, "Zeta Plumbing");
    assert_recent(zeta.created_at);
    assert_eq!(s.tenant_count().await.unwrap(), 1);
    // What was returned is what is read back, on either node (times included).
    assert_eq!(
        s.tenant(&tenant("zeta-plumbing")).await.unwrap(),
        Some(zeta.clone())
    );
    assert_eq!(
        h.other_node.tenant(&tenant("zeta-plumbing")).await.unwrap(),
        Some(zeta.clone())
    );

    let err = h
        .other_node
        .create_tenant(&tenant("zeta-plumbing"), "Someone Else")
        .await
        .unwrap_err();
    assert_already_exists(err, "tenant", "zeta-plumbing");
    assert_eq!(
        s.tenant(&tenant("zeta-plumbing"))
            .await
            .unwrap()
            .unwrap()
            .name,
        "Zeta Plumbing",
        "a refused create changes nothing"
    );
    assert_eq!(s.tenant_count().await.unwrap(), 1);

    let acme = s
        .create_tenant(&tenant("acme-hvac"), "Acme HVAC")
        .await
        .unwrap();
    assert_eq!(s.tenant_count().await.unwrap(), 2);
    assert_eq!(
        h.other_node.list_tenants().await.unwrap(),
        vec![acme, zeta],
        "ordered by id"
    );
    assert_eq!(s.tenant(&tenant("nobody")).await.unwrap(), None);
}

pub async fn tokens_are_found_by_hash_until_revoked(h: &Harness) {
    let s = &h.store;
    let t = tenant("acme-hvac");
    s.create_tenant(&t, "Acme").await.unwrap();

    let alice = new_token(&t, Role::Agent, "alice", 1);
    let record = s.create_token(alice.clone()).await.unwrap();
    assert_eq!(
        record,
        TokenRecord {
            id: alice.id,
            tenant: t.clone(),
            role: Role::Agent,
            name: "alice".into(),
            created_at: record.created_at,
            revoked_at: None,
        }
    );
    assert_recent(record.created_at);
    let cli = s
        .create_token(new_token(&t, Role::Service, "replay-cli", 2))
        .await
        .unwrap();

    assert_eq!(
        s.find_token(&secret(1)).await.unwrap(),
        Some(record.clone())
    );
    assert_eq!(
        h.other_node.find_token(&secret(2)).await.unwrap(),
        Some(cli.clone())
    );
    assert_eq!(s.find_token(&secret(3)).await.unwrap(), None);
    assert_eq!(
        s.list_tokens(&t).await.unwrap(),
        vec![record.clone(), cli.clone()],
        "oldest first"
    );

    assert!(s.revoke_token(&t, alice.id).await.unwrap());
    assert_eq!(s.find_token(&secret(1)).await.unwrap(), None);
    assert_eq!(h.other_node.find_token(&secret(1)).await.unwrap(), None);
    assert_eq!(
        s.find_token(&secret(2)).await.unwrap(),
        Some(cli.clone()),
        "only the revoked token stops working"
    );
    let listed = s.list_tokens(&t).await.unwrap();
    assert_eq!(listed.len(), 2, "a revoked token is still listed");
    let revoked_at = listed[0].revoked_at.expect("marked revoked");
    assert_recent(revoked_at);
    assert!(revoked_at >= record.created_at);
    assert_eq!(listed[1], cli);

    // Idempotent, and the first revocation time stays.
    assert!(h.other_node.revoke_token(&t, alice.id).await.unwrap());
    assert_eq!(
        s.list_tokens(&t).await.unwrap()[0].revoked_at,
        Some(revoked_at)
    );
    assert!(!s.revoke_token(&t, TokenId::new()).await.unwrap());
}

pub async fn token_for_unknown_tenant_is_not_found(h: &Harness) {
    let s = &h.store;
    s.create_tenant(&tenant("acme-hvac"), "Acme").await.unwrap();
    let err = s
        .create_token(new_token(&tenant("ghost"), Role::Admin, "mallory", 9))
        .await
        .unwrap_err();
    assert_not_found(err, "tenant", "ghost");
    assert_eq!(s.find_token(&secret(9)).await.unwrap(), None);
    assert_eq!(s.list_tokens(&tenant("ghost")).await.unwrap(), vec![]);
    assert_eq!(
        s.tenant_count().await.unwrap(),
        1,
        "no tenant made on the way"
    );
}

pub async fn token_roles_round_trip(h: &Harness) {
    let s = &h.store;
    let t = tenant("acme-hvac");
    s.create_tenant(&t, "Acme").await.unwrap();
    let roles = [Role::Service, Role::Agent, Role::Supervisor, Role::Admin];
    for (n, role) in roles.into_iter().enumerate() {
        let token = new_token(&t, role, role.as_str(), n as u8);
        let created = s.create_token(token).await.unwrap();
        assert_eq!(created.role, role);
        let found = h.other_node.find_token(&secret(n as u8)).await.unwrap();
        assert_eq!(found.map(|r| r.role), Some(role), "{role}");
    }
    let listed: Vec<Role> = s
        .list_tokens(&t)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.role)
        .collect();
    assert_eq!(listed, roles);
}

pub async fn token_id_and_secret_are_unique(h: &Harness) {
    let s = &h.store;
    let t = tenant("acme-hvac");
    s.create_tenant(&t, "Acme").await.unwrap();
    let first = new_token(&t, Role::Agent, "alice", 1);
    s.create_token(first.clone()).await.unwrap();

    let same_id = NewToken {
        secret_sha256: secret(2),
        ..first.clone()
    };
    let err = s.create_token(same_id).await.unwrap_err();
    assert_already_exists(err, "token", &first.id.to_string());

    let same_secret = new_token(&t, Role::Admin, "mallory", 1);
    let err = h
        .other_node
        .create_token(same_secret.clone())
        .await
        .unwrap_err();
    assert_already_exists(err, "token secret", &format!("of token {}", same_secret.id));

    let listed = s.list_tokens(&t).await.unwrap();
    assert_eq!(listed.len(), 1, "refused tokens are not stored");
    assert_eq!(
        s.find_token(&secret(1)).await.unwrap().map(|r| r.name),
        Some("alice".into())
    );
    assert_eq!(s.find_token(&secret(2)).await.unwrap(), None);
}

pub async fn rulesets_versions_latest_and_order(h: &Harness) {
    let s = &h.store;
    let t = tenant("acme-hvac");
    s.create_tenant(&t, "Acme").await.unwrap();
    let hs = ruleset_id("home-services");
    let banking = ruleset_id("banking");

    // Out of order on purpose: "latest" is the highest version, not the last inserted.
    let mut stored = Vec::new();
    for v in [1, 3, 2] {
        let r = s
            .insert_ruleset(&t, &hs, v, &yaml("home-services", v), &actor())
            .await
            .unwrap();
        assert_eq!(
            r,
            StoredRuleset {
                tenant: t.clone(),
                id: hs.clone(),
                version: v,
                source: yaml("home-services", v),
                created_at: r.created_at,
                created_by: actor(),
                active: false,
            }
        );
        assert_recent(r.created_at);
        stored.push(r);
    }
    let mut b = Vec::new();
    for v in [1, 2] {
        b.push(
            h.other_node
                .insert_ruleset(&t, &banking, v, &yaml("banking", v), &actor())
                .await
                .unwrap(),
        );
    }

    let err = s
        .insert_ruleset(&t, &hs, 3, "id: home-services\n# changed\n", &actor())
        .await
        .unwrap_err();
    assert_already_exists(err, "ruleset version", "home-services@3");
    assert_eq!(
        s.ruleset(&t, &hs, 3).await.unwrap().unwrap().source,
        yaml("home-services", 3),
        "a version is never overwritten"
    );

    assert_eq!(
        h.other_node.ruleset(&t, &hs, 2).await.unwrap(),
        Some(stored[2].clone()),
        "read back as returned"
    );
    assert_eq!(s.ruleset(&t, &hs, 9).await.unwrap(), None);
    assert_eq!(s.ruleset(&t, &ruleset_id("nope"), 1).await.unwrap(), None);

    let latest = s.latest_ruleset(&t, &hs).await.unwrap().unwrap();
    assert_eq!(latest, stored[1], "home-services@3");
    assert_eq!(
        s.latest_ruleset(&t, &banking).await.unwrap(),
        Some(b[1].clone())
    );
    assert_eq!(
        s.latest_ruleset(&t, &ruleset_id("nope")).await.unwrap(),
        None
    );

    let listed = s.list_rulesets(&t).await.unwrap();
    let order: Vec<(String, u32)> = listed
        .iter()
        .map(|r| (r.id.to_string(), r.version))
        .collect();
    assert_eq!(
        order,
        vec![
            ("banking".into(), 1),
            ("banking".into(), 2),
            ("home-services".into(), 1),
            ("home-services".into(), 2),
            ("home-services".into(), 3),
        ],
        "by id, then version"
    );
    assert_eq!(listed[..2], b[..], "sources included");
    assert!(
        listed.iter().all(|r| !r.active),
        "inserting activates nothing"
    );
    assert_eq!(s.active_ruleset(&t).await.unwrap(), None);
}

pub async fn ruleset_activation(h: &Harness) {
    let s = &h.store;
    let t = tenant("acme-hvac");
    s.create_tenant(&t, "Acme").await.unwrap();
    let hs = ruleset_id("home-services");
    for v in [1, 2] {
        s.insert_ruleset(&t, &hs, v, &yaml("home-services", v), &actor())
            .await
            .unwrap();
    }
    assert_eq!(s.active_ruleset(&t).await.unwrap(), None);

    s.activate_ruleset(&t, &hs, 1).await.unwrap();
    assert_eq!(
        h.other_node.active_ruleset(&t).await.unwrap(),
        Some(rref("home-services", 1))
    );
    assert!(s.ruleset(&t, &hs, 1).await.unwrap().unwrap().active);
    assert!(!s.ruleset(&t, &hs, 2).await.unwrap().unwrap().active);

    // One active ruleset per tenant: activating another replaces it.
    h.other_node.activate_ruleset(&t, &hs, 2).await.unwrap();
    assert_eq!(
        s.active_ruleset(&t).await.unwrap(),
        Some(rref("home-services", 2))
    );
    let active: Vec<u32> = s
        .list_rulesets(&t)
        .await
        .unwrap()
        .iter()
        .filter(|r| r.active)
        .map(|r| r.version)
        .collect();
    assert_eq!(active, vec![2]);
    // Re-activating the active one is fine.
    s.activate_ruleset(&t, &hs, 2).await.unwrap();

    // A new version is not activated by being stored.
    let v3 = s
        .insert_ruleset(&t, &hs, 3, &yaml("home-services", 3), &actor())
        .await
        .unwrap();
    assert!(!v3.active);
    assert!(!s.latest_ruleset(&t, &hs).await.unwrap().unwrap().active);
    assert!(s.ruleset(&t, &hs, 2).await.unwrap().unwrap().active);

    let err = s.activate_ruleset(&t, &hs, 9).await.unwrap_err();
    assert_not_found(err, "ruleset version", "home-services@9");
    let err = s
        .activate_ruleset(&t, &ruleset_id("banking"), 1)
        .await
        .unwrap_err();
    assert_not_found(err, "ruleset version", "banking@1");
    assert_eq!(
        s.active_ruleset(&t).await.unwrap(),
        Some(rref("home-services", 2)),
        "a refused activation changes nothing"
    );
}

pub async fn ruleset_for_unknown_tenant_or_bad_version_is_refused(h: &Harness) {
    let s = &h.store;
    let ghost = tenant("ghost");
    let hs = ruleset_id("home-services");
    let err = s
        .insert_ruleset(&ghost, &hs, 1, &yaml("home-services", 1), &actor())
        .await
        .unwrap_err();
    assert_not_found(err, "tenant", "ghost");
    assert_eq!(s.list_rulesets(&ghost).await.unwrap(), vec![]);
    assert_eq!(s.active_ruleset(&ghost).await.unwrap(), None);
    let err = s.activate_ruleset(&ghost, &hs, 1).await.unwrap_err();
    assert_not_found(err, "ruleset version", "home-services@1");
    assert_eq!(s.tenant_count().await.unwrap(), 0);

    // Versions start at 1; the database refuses 0.
    let t = tenant("acme-hvac");
    s.create_tenant(&t, "Acme").await.unwrap();
    let zero = s
        .insert_ruleset(&t, &hs, 0, &yaml("home-services", 0), &actor())
        .await;
    assert!(zero.is_err(), "version 0 is refused: {zero:?}");
    // The largest version round-trips.
    let max = s
        .insert_ruleset(&t, &hs, u32::MAX, "id: home-services\n", &actor())
        .await
        .unwrap();
    assert_eq!(s.latest_ruleset(&t, &hs).await.unwrap(), Some(max));
    assert_eq!(s.list_rulesets(&t).await.unwrap().len(), 1);
}

pub async fn tenants_are_isolated(h: &Harness) {
    let s = &h.store;
    let a = tenant("acme-hvac");
    let b = tenant("bolt-electric");
    s.create_tenant(&a, "Acme").await.unwrap();
    s.create_tenant(&b, "Bolt").await.unwrap();
    let hs = ruleset_id("home-services");
    for v in [1, 2] {
        s.insert_ruleset(&a, &hs, v, &yaml("home-services", v), &actor())
            .await
            .unwrap();
    }
    s.activate_ruleset(&a, &hs, 2).await.unwrap();
    let a_token = s
        .create_token(new_token(&a, Role::Admin, "alice", 1))
        .await
        .unwrap();

    // B sees none of A's rulesets and cannot activate them.
    assert_eq!(s.ruleset(&b, &hs, 1).await.unwrap(), None);
    assert_eq!(s.latest_ruleset(&b, &hs).await.unwrap(), None);
    assert_eq!(s.list_rulesets(&b).await.unwrap(), vec![]);
    let err = s.activate_ruleset(&b, &hs, 1).await.unwrap_err();
    assert_not_found(err, "ruleset version", "home-services@1");
    assert_eq!(s.active_ruleset(&b).await.unwrap(), None);
    assert_eq!(
        s.active_ruleset(&a).await.unwrap(),
        Some(rref("home-services", 2))
    );

    // The same ruleset id and version in B is B's own.
    let b1 = s
        .insert_ruleset(&b, &hs, 1, "id: home-services\n# bolt's\n", &actor())
        .await
        .unwrap();
    s.activate_ruleset(&b, &hs, 1).await.unwrap();
    assert_eq!(
        s.list_rulesets(&b).await.unwrap(),
        vec![StoredRuleset { active: true, ..b1 }]
    );
    assert_eq!(
        s.ruleset(&a, &hs, 1).await.unwrap().unwrap().source,
        yaml("home-services", 1)
    );
    assert_eq!(
        s.active_ruleset(&a).await.unwrap(),
        Some(rref("home-services", 2)),
        "B's activation leaves A's alone"
    );
    let a_active: Vec<u32> = s
        .list_rulesets(&a)
        .await
        .unwrap()
        .iter()
        .filter(|r| r.active)
        .map(|r| r.version)
        .collect();
    assert_eq!(a_active, vec![2]);

    // Tokens: B lists only its own and cannot revoke A's.
    let b_token = s
        .create_token(new_token(&b, Role::Agent, "bob", 2))
        .await
        .unwrap();
    assert_eq!(s.list_tokens(&b).await.unwrap(), vec![b_token.clone()]);
    assert_eq!(s.list_tokens(&a).await.unwrap(), vec![a_token.clone()]);
    assert!(!s.revoke_token(&b, a_token.id).await.unwrap());
    assert_eq!(s.find_token(&secret(1)).await.unwrap(), Some(a_token));
    assert_eq!(
        s.find_token(&secret(2)).await.unwrap().map(|r| r.tenant),
        Some(b)
    );
}
