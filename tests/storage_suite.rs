//! openraft's own conformance suite, run on the fjall log store and state machine.

use openraft::testing::{StoreBuilder, Suite};
use raft_nosql::raft::{StorageError, TypeConfig};
use raft_nosql::storage::{LogStore, Progress, StateMachine, Store};

struct FjallBuilder;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, tempfile::TempDir> for FjallBuilder {
    async fn build(&self) -> Result<(tempfile::TempDir, LogStore, StateMachine), StorageError> {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(dir.path()).expect("open fjall");
        let progress = std::sync::Arc::new(Progress::default());
        let log = LogStore::new(store.clone(), progress.clone())?;
        Ok((dir, log, StateMachine::new(store, progress)?))
    }
}

/// Every check of `openraft::testing::Suite` passes on our stores.
#[test]
fn fjall_stores_pass_openraft_conformance_suite() {
    // The suite starts its own runtime per check.
    Suite::test_all(FjallBuilder).unwrap();
}

/// A group-commit entry (`Command::Batch`) applies its item writes in order at the
/// entry's index, answers each one, refuses what may not be batched, and keeps the
/// incremental digest equal to one recomputed from the stored data.
#[test]
fn batch_entry_applies_each_write_and_refuses_table_commands() {
    use openraft::storage::RaftStateMachine;
    use openraft::{CommittedLeaderId, EntryPayload};
    use raft_nosql::model::attr::item_from_json;
    use raft_nosql::model::TableSchema;
    use raft_nosql::raft::{Applied, Command, CommandResponse, Entry, LogId, Rejection};
    use serde_json::json;

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let progress = std::sync::Arc::new(Progress::default());
        let mut sm = StateMachine::new(store, progress.clone()).unwrap();
        let tables = sm.tables();
        let schema: TableSchema = serde_json::from_value(
            json!({"table_name": "Tbl", "partition_key": {"name": "k", "type": "S"}}),
        )
        .unwrap();
        let put = |table: &str, k: &str, v: i64| Command::PutItem {
            table: table.into(),
            table_id: 0,
            item: item_from_json(&json!({"k": k, "v": v})).unwrap(),
        };
        let entry = |index: u64, cmd: Command| Entry {
            log_id: LogId::new(CommittedLeaderId::new(1, 0), index),
            payload: EntryPayload::Normal(cmd),
        };
        let key = |k: &str| schema.key_from_params(k, None).unwrap();
        let batch = Command::Batch(vec![
            put("Tbl", "a", 1),
            put("Tbl", "b", 2),
            Command::DeleteItem { table: "Tbl".into(), table_id: 0, key: key("b") },
            Command::DeleteItem { table: "Tbl".into(), table_id: 0, key: key("zzz") },
            put("Missing", "c", 3),
            Command::Batch(vec![put("Tbl", "d", 4)]),
            Command::DeleteTable { table: "Tbl".into() },
        ]);
        let out = sm
            .apply(vec![
                entry(
                    1,
                    Command::CreateTable { schema: schema.clone(), options: Default::default() },
                ),
                entry(2, batch),
            ])
            .await
            .unwrap();
        let applied = |existed| CommandResponse::Applied(Applied::new(2, existed));
        // The delete of "b" answers the item it deleted (DynamoDB's ALL_OLD): the put
        // earlier in the same entry.
        let CommandResponse::Batch(mut results) = out[1].clone() else { panic!("a batch") };
        let CommandResponse::Applied(deleted) = &mut results[2] else { panic!("applied") };
        let old = deleted.old.take().expect("the deleted item");
        assert_eq!(raft_nosql::storage::tables::decode_item_value(&old).unwrap().version, 2);
        assert_eq!(
            CommandResponse::Batch(results),
            CommandResponse::Batch(vec![
                applied(false),
                applied(false),
                applied(true),
                applied(false),
                CommandResponse::Rejected(Rejection::TableNotFound("Missing".into())),
                CommandResponse::Rejected(Rejection::NotBatchable),
                CommandResponse::Rejected(Rejection::NotBatchable),
            ])
        );
        let meta = tables.table("Tbl").unwrap();
        let a = tables.get_item(&meta, &key("a")).unwrap().expect("a stored");
        assert_eq!(a.version, 2);
        assert!(tables.get_item(&meta, &key("b")).unwrap().is_none(), "b put then deleted");
        assert!(tables.get_item(&meta, &key("d")).unwrap().is_none(), "nested batch refused");
        assert_eq!(tables.item_count(meta.id).unwrap(), 1);
        assert_eq!(progress.digest(), (tables.full_digest().unwrap(), 2));
        assert_eq!(progress.applied(), Some(2));
    });
}
