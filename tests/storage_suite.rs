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
