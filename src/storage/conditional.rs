//! Writes decided at apply time: conditional puts and deletes, updates, transactions.
//!
//! This is where a replicated log becomes a compare-and-set. A [`Command::Write`] or
//! [`Command::Transact`] carries its condition and its update already parsed
//! (`model::expr`); the node that received the request only checked the syntax. When
//! the entry is applied, every replica reads the item *as stored at that log
//! position* (earlier entries of the same apply call included, see [`Staged`]),
//! evaluates the condition and computes the new item. Evaluation is pure and
//! deterministic, so all replicas reach the same verdict, and because entries are
//! applied in log order, two writes conditioned on the same old value can never both
//! succeed.
//!
//! A transaction is checked whole before anything is written: first every action is
//! *prepared* (table, condition, update) against the state before the entry; only if
//! none failed are the writes staged. A cancelled transaction writes nothing; its
//! verdict lists one [`CancelReason`] per action.
//!
//! Idempotency tokens (`ClientRequestToken`) are replicated state in `sm_meta`:
//! `txtoken/<token>` → `{request digest, at_ms, index}`, with an expiry index
//! `txexp/<at_ms BE><token>`. Time is the entry's `at_ms` (the proposer's clock, carried
//! in the command), never a clock read at apply. A token is honoured for
//! [`TOKEN_TTL_MS`] after the transaction that recorded it.
//!
//! Shortcuts taken:
//! - Expired tokens are removed a few at a time by later transactions, scanning the
//!   committed expiry index; whether one is still stored is not part of any verdict
//!   (an expired token reads as absent), so replicas may hold slightly different
//!   garbage there, which the state digest does not cover.
//! - Only committed transactions record their token; a retry of a cancelled one is
//!   evaluated again (as DynamoDB does).
//!
//! [`Command::Write`]: crate::raft::Command::Write
//! [`Command::Transact`]: crate::raft::Command::Transact

use serde::{Deserialize, Serialize};

use super::tables::{
    decode_item_value, encode_item_value, record_hash, Staged, TableMeta, Tables, TAG_ITEM,
};
use crate::error::{Error, Result};
use crate::model::{key, Item, ItemKey, TableSchema};
use crate::raft::{Applied, CancelReason, ItemWrite, Rejection, Transaction, WriteAction};

/// How long a transaction's idempotency token is remembered (DynamoDB's 10 minutes).
pub const TOKEN_TTL_MS: u64 = 10 * 60 * 1000;
/// Most expired tokens one transaction removes.
const TOKEN_GC_BATCH: usize = 64;

const TOKEN_PREFIX: &[u8] = b"txtoken/";
const EXPIRY_PREFIX: &[u8] = b"txexp/";

/// A remembered token.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct TokenRecord {
    /// Digest of the request that used it.
    request: String,
    /// When that transaction was proposed.
    at_ms: u64,
    /// The log index it was applied at.
    index: u64,
}

fn token_key(token: &str) -> Vec<u8> {
    [TOKEN_PREFIX, token.as_bytes()].concat()
}

fn expiry_key(at_ms: u64, token: &str) -> Vec<u8> {
    [EXPIRY_PREFIX, &at_ms.to_be_bytes()[..], token.as_bytes()].concat()
}

/// An item with only the key attributes: what an update starts from when the item does
/// not exist.
pub fn key_item(schema: &TableSchema, key: &ItemKey) -> Item {
    let mut item = Item::new();
    item.insert(schema.partition_key.name.clone(), key.pk.to_attr());
    if let (Some(attr), Some(sk)) = (&schema.sort_key, &key.sk) {
        item.insert(attr.name.clone(), sk.to_attr());
    }
    item
}

/// One action checked against the stored state, ready to be written.
struct Prepared {
    table_id: u64,
    /// The item's storage key.
    key: Vec<u8>,
    /// The stored value (version ‖ JSON), if any.
    old: Option<Vec<u8>>,
    /// What to store: `None` for a check (nothing), `Some(None)` for a delete.
    new: Option<Option<Item>>,
}

impl Tables {
    /// Checks one write against the state as staged: its table, its condition, and for
    /// an update the new item. Writes nothing.
    fn prepare(&self, staged: &Staged, w: &ItemWrite) -> Result<Result<Prepared, Rejection>> {
        let meta: TableMeta = match self.write_target(staged, (&w.table, w.table_id))? {
            Ok(meta) => meta,
            Err(r) => return Ok(Err(r)),
        };
        let schema = &meta.schema;
        let key_bytes = key::item_key_bytes(meta.id, &w.key);
        let old = self.item_raw(staged, &key_bytes)?;
        let old_item = old.as_deref().map(decode_item_value).transpose()?.map(|s| s.item);
        let stored_version = old.as_deref().map_or(0, super::tables::version_of);
        let empty = Item::new();
        let holds = w.if_version.is_none_or(|v| v == stored_version)
            && w.condition.as_ref().is_none_or(|c| c.eval(old_item.as_ref().unwrap_or(&empty)));
        if !holds {
            return Ok(Err(Rejection::ConditionalCheckFailed { old }));
        }
        let new = match &w.action {
            WriteAction::Check => None,
            WriteAction::Delete => Some(None),
            WriteAction::Put(item) => Some(Some(item.clone())),
            WriteAction::Update(update) => {
                let base = old_item.unwrap_or_else(|| key_item(schema, &w.key));
                match update.apply(base) {
                    Ok(item) => Some(Some(item)),
                    Err(e) => return Ok(Err(Rejection::Expression(e))),
                }
            }
        };
        // Whatever is stored must fit the schema, under the key it was checked for
        // (the proposer refuses updates of key attributes; this is the last word).
        if let Some(Some(item)) = &new {
            match schema.validate_item(item) {
                Ok(k) if k == w.key => {}
                Ok(_) => {
                    return Ok(Err(Rejection::Invalid(crate::model::ModelError::Invalid(
                        "the write would change the item's key".into(),
                    ))))
                }
                Err(e) => return Ok(Err(e.into())),
            }
            // A secondary index's key attributes must keep their types; an update's
            // result is only known here.
            for idx in &meta.options.indexes {
                if let Err(e) = idx.check_key_types(item) {
                    return Ok(Err(e.into()));
                }
            }
        }
        Ok(Ok(Prepared { table_id: meta.id, key: key_bytes, old, new }))
    }

    /// Stages a prepared write at version `index`.
    fn write_prepared(
        &self,
        staged: &mut Staged,
        index: u64,
        p: &Prepared,
        digest: &mut u128,
    ) -> Result<()> {
        let Some(new) = &p.new else { return Ok(()) };
        let k = &p.key;
        let old_len = p.old.as_ref().map_or(0, |o| (k.len() + o.len()) as i64);
        if let Some(old) = &p.old {
            *digest = digest.wrapping_sub(record_hash(TAG_ITEM, k, old));
        }
        match new {
            Some(item) => {
                let v = encode_item_value(index, item);
                let added = i64::from(p.old.is_none());
                self.add_count(staged, p.table_id, added, (k.len() + v.len()) as i64 - old_len)?;
                *digest = digest.wrapping_add(record_hash(TAG_ITEM, k, &v));
                staged.items.insert(k.clone(), Some(v));
            }
            None if p.old.is_some() => {
                self.add_count(staged, p.table_id, -1, -old_len)?;
                staged.items.insert(k.clone(), None);
            }
            None => {}
        }
        Ok(())
    }

    /// Applies a [`crate::raft::Command::Write`]: the condition decides, at this log
    /// position, whether the write happens.
    pub(super) fn apply_write(
        &self,
        staged: &mut Staged,
        index: u64,
        w: &ItemWrite,
        digest: &mut u128,
    ) -> Result<Result<Applied, Rejection>> {
        let p = match self.prepare(staged, w)? {
            Ok(p) => p,
            Err(r) => return Ok(Err(r)),
        };
        self.write_prepared(staged, index, &p, digest)?;
        let new = p.new.clone().flatten();
        Ok(Ok(Applied { version: index, existed: p.old.is_some(), old: p.old, new }))
    }

    /// Applies a [`crate::raft::Command::Transact`]: all its writes, or none.
    pub(super) fn apply_transact(
        &self,
        staged: &mut Staged,
        index: u64,
        t: &Transaction,
        digest: &mut u128,
    ) -> Result<Result<Applied, Rejection>> {
        if let Some(tok) = &t.token {
            if let Some(rec) = self.live_token(staged, &tok.token, t.at_ms)? {
                return Ok(if rec.request == tok.request {
                    // A retry of a transaction that committed: success, nothing again.
                    Ok(Applied::new(rec.index, true))
                } else {
                    Err(Rejection::IdempotentParameterMismatch)
                });
            }
        }
        let mut prepared = Vec::with_capacity(t.writes.len());
        let mut reasons = Vec::with_capacity(t.writes.len());
        let mut failed = false;
        for w in &t.writes {
            match self.prepare(staged, w)? {
                Ok(p) => {
                    prepared.push(p);
                    reasons.push(CancelReason::none());
                }
                Err(r) => {
                    failed = true;
                    reasons.push(reason(r));
                }
            }
        }
        if failed {
            return Ok(Err(Rejection::TransactionCanceled(reasons)));
        }
        for p in &prepared {
            self.write_prepared(staged, index, p, digest)?;
        }
        if let Some(tok) = &t.token {
            self.remember_token(staged, &tok.token, &tok.request, t.at_ms, index)?;
        }
        Ok(Ok(Applied::new(index, true)))
    }

    /// The record of `token` if it was used less than [`TOKEN_TTL_MS`] before `now_ms`.
    fn live_token(&self, staged: &Staged, token: &str, now_ms: u64) -> Result<Option<TokenRecord>> {
        let Some(raw) = self.meta_raw(staged, &token_key(token))? else { return Ok(None) };
        let rec: TokenRecord =
            serde_json::from_slice(&raw).map_err(|e| Error::Storage(e.to_string()))?;
        Ok((now_ms.saturating_sub(rec.at_ms) < TOKEN_TTL_MS).then_some(rec))
    }

    fn meta_raw(&self, staged: &Staged, k: &[u8]) -> Result<Option<Vec<u8>>> {
        match staged.meta.get(k) {
            Some(v) => Ok(v.clone()),
            None => Ok(self
                .store
                .sm_meta
                .get(k)
                .map_err(|e| Error::Storage(e.to_string()))?
                .map(|v| v.to_vec())),
        }
    }

    /// Records `token` (replacing an expired record) and forgets a few expired ones.
    fn remember_token(
        &self,
        staged: &mut Staged,
        token: &str,
        request: &str,
        at_ms: u64,
        index: u64,
    ) -> Result<()> {
        let mut expired = Vec::new();
        for g in self.store.sm_meta.prefix(EXPIRY_PREFIX).take(TOKEN_GC_BATCH) {
            let k = g.key().map_err(|e| Error::Storage(e.to_string()))?;
            let rest = &k[EXPIRY_PREFIX.len()..];
            let Some((when, name)) = rest.split_first_chunk::<8>() else { continue };
            let when = u64::from_be_bytes(*when);
            if at_ms.saturating_sub(when) < TOKEN_TTL_MS {
                break;
            }
            expired.push((k.to_vec(), when, String::from_utf8_lossy(name).into_owned()));
        }
        for (k, when, name) in expired {
            staged.meta.insert(k, None);
            // The token may have been used again since: only its own record goes.
            if let Some(raw) = self.meta_raw(staged, &token_key(&name))? {
                let rec: Option<TokenRecord> = serde_json::from_slice(&raw).ok();
                if rec.is_some_and(|r| r.at_ms == when) {
                    staged.meta.insert(token_key(&name), None);
                }
            }
        }
        let rec = TokenRecord { request: request.to_string(), at_ms, index };
        staged.meta.insert(token_key(token), Some(serde_json::to_vec(&rec).expect("token")));
        staged.meta.insert(expiry_key(at_ms, token), Some(Vec::new()));
        Ok(())
    }
}

impl Tables {
    /// Items read from ONE consistent view of the store (a fjall snapshot): every
    /// applied entry is wholly in it or wholly out of it, so a transaction is never
    /// seen half applied. Also returns the applied index the view is at.
    pub fn get_items_consistent(
        &self,
        keys: &[(u64, ItemKey)],
    ) -> Result<(Vec<Option<super::tables::StoredItem>>, Option<u64>)> {
        use fjall::Readable;
        let snap = self.store.db.snapshot();
        let err = |e: fjall::Error| Error::Storage(e.to_string());
        let applied: Option<crate::raft::LogId> =
            match snap.get(&self.store.sm_meta, b"last_applied").map_err(err)? {
                Some(v) => serde_json::from_slice(&v).map_err(|e| Error::Storage(e.to_string()))?,
                None => None,
            };
        let mut out = Vec::with_capacity(keys.len());
        for (table_id, k) in keys {
            let raw =
                snap.get(&self.store.items, key::item_key_bytes(*table_id, k)).map_err(err)?;
            out.push(raw.as_deref().map(decode_item_value).transpose()?);
        }
        Ok((out, applied.map(|l| l.index)))
    }
}

/// The cancellation reason for one action's rejection.
fn reason(r: Rejection) -> CancelReason {
    match r {
        Rejection::ConditionalCheckFailed { old } => CancelReason {
            code: "ConditionalCheckFailed".into(),
            message: Some("The conditional request failed".into()),
            old,
        },
        other => CancelReason {
            code: "ValidationError".into(),
            message: Some(other.to_string()),
            old: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::model::expr::Expressions;
    use crate::model::{attr, AttributeValue, KeyValue};
    use crate::raft::{Command, CommandResponse, TxToken};
    use crate::storage::tables::Fixture;

    fn key(k: &str) -> ItemKey {
        ItemKey::new(KeyValue::S(k.into()), None)
    }

    impl Fixture {
        fn get(&self, k: &str) -> Option<Item> {
            let meta = self.tables.table("tbl").unwrap();
            self.tables.get_item(&meta, &key(k)).unwrap().map(|s| s.item)
        }
    }

    fn write(k: &str, action: WriteAction, condition: Option<&str>) -> ItemWrite {
        let values = HashMap::from([(":v".to_string(), AttributeValue::N("1".into()))]);
        let condition = condition.map(|c| {
            let uses_v = c.contains(":v");
            let mut e = Expressions::new(None, uses_v.then_some(values)).unwrap();
            e.condition(c).unwrap()
        });
        ItemWrite {
            table: "tbl".into(),
            table_id: 1,
            key: key(k),
            action,
            condition,
            if_version: None,
        }
    }

    fn update(text: &str) -> WriteAction {
        let values = HashMap::from([(":one".to_string(), AttributeValue::N("1".into()))]);
        let mut e = Expressions::new(None, Some(values)).unwrap();
        WriteAction::Update(e.update(text).unwrap())
    }

    fn put(k: &str, v: u64) -> WriteAction {
        WriteAction::Put(attr::item_from_json(&serde_json::json!({"k": k, "v": v})).unwrap())
    }

    /// Two puts conditioned on the same version: the first applied wins, the second
    /// fails and hands back the item that beat it.
    #[test]
    fn compare_and_set_lets_exactly_one_writer_win() {
        let mut f = Fixture::new("k");
        let absent = Some("attribute_not_exists(k)");
        assert!(matches!(
            f.run(Command::Write(write("a", put("a", 1), absent))),
            CommandResponse::Applied(_)
        ));
        let r = f.run(Command::Write(write("a", put("a", 2), absent)));
        let CommandResponse::Rejected(Rejection::ConditionalCheckFailed { old: Some(old) }) = r
        else {
            panic!("{r:?}")
        };
        assert_eq!(decode_item_value(&old).unwrap().item["v"], AttributeValue::N("1".into()));
        assert_eq!(f.get("a").unwrap()["v"], AttributeValue::N("1".into()));
        let r = f.run(Command::Write(write("a", put("a", 3), Some("v = :v"))));
        assert!(matches!(r, CommandResponse::Applied(_)));
    }

    /// An update of a missing item starts from its key; ADD counts from zero; the new
    /// item comes back.
    #[test]
    fn update_creates_from_the_key_and_returns_the_new_item() {
        let mut f = Fixture::new("k");
        for n in 1..=3 {
            let r = f.run(Command::Write(write("c", update("ADD n :one"), None)));
            let CommandResponse::Applied(a) = r else { panic!("{r:?}") };
            assert_eq!(a.new.unwrap()["n"], AttributeValue::N(n.to_string()));
        }
        let r = f.run(Command::Write(write("c", update("SET k = :one"), None)));
        assert!(matches!(r, CommandResponse::Rejected(Rejection::Invalid(_))), "{r:?}");
        let r = f.run(Command::Write(write("c", update("SET m = k + :one"), None)));
        assert!(matches!(r, CommandResponse::Rejected(Rejection::Expression(_))), "{r:?}");
    }

    /// A transaction with one failing condition writes nothing and says which action
    /// failed; a committed one is not applied again for its token, and the token with
    /// another request is refused until it expires.
    #[test]
    fn transactions_are_all_or_nothing_and_tokens_apply_once() {
        let mut f = Fixture::new("k");
        f.run(Command::Write(write("a", put("a", 1), None)));
        let tx = |cond: &str, token: Option<(&str, &str)>, at_ms| {
            Command::Transact(Transaction {
                writes: vec![
                    write("b", update("ADD n :one"), None),
                    write("a", WriteAction::Check, Some(cond)),
                ],
                token: token.map(|(t, r)| TxToken { token: t.into(), request: r.into() }),
                at_ms,
            })
        };
        let r = f.run(tx("v = :v AND attribute_not_exists(nope)", None, 0));
        assert!(matches!(r, CommandResponse::Applied(_)), "{r:?}");
        let r = f.run(tx("attribute_not_exists(v)", None, 0));
        let CommandResponse::Rejected(Rejection::TransactionCanceled(reasons)) = r else {
            panic!("{r:?}")
        };
        let codes: Vec<&str> = reasons.iter().map(|r| r.code.as_str()).collect();
        assert_eq!(codes, ["None", "ConditionalCheckFailed"]);
        assert_eq!(f.get("b").unwrap()["n"], AttributeValue::N("1".into()), "nothing written");

        let ok = "v = :v";
        assert!(matches!(f.run(tx(ok, Some(("t1", "r1")), 1000)), CommandResponse::Applied(_)));
        assert!(matches!(f.run(tx(ok, Some(("t1", "r1")), 2000)), CommandResponse::Applied(_)));
        assert_eq!(f.get("b").unwrap()["n"], AttributeValue::N("2".into()), "applied once");
        let r = f.run(tx(ok, Some(("t1", "other")), 3000));
        assert_eq!(r, CommandResponse::Rejected(Rejection::IdempotentParameterMismatch));
        let later = 1000 + TOKEN_TTL_MS;
        assert!(matches!(f.run(tx(ok, Some(("t1", "other")), later)), CommandResponse::Applied(_)));
        assert_eq!(f.get("b").unwrap()["n"], AttributeValue::N("3".into()), "expired token");
    }
}
