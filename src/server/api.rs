//! The client API: tables and items.
//!
//! Writes go through Raft (`raft.client_write`) and only the leader takes them: a
//! follower answers **307** with `Location` = the same path and query on the leader, or
//! **503** + `Retry-After` while no leader is known. Bad input is refused before
//! anything is proposed (400/404/409/413), and apply checks again, because state can
//! change between proposal and apply (a table deleted meanwhile).
//!
//! Reads are answered from this node's state machine, whatever it has applied:
//! eventually consistent, like the original project.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use serde_json::{json, Value};
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::{path_and_query, respond, respond_write, App, MAX_API_BODY};
use crate::error::Error;
use crate::model::schema::{validate_table_name, TableOptions};
use crate::model::{attr, KeyAttr, TableSchema};
use crate::raft::{Command, ItemWrite, WriteAction};
use crate::storage::tables::{Page, QuerySpec, StoredItem, TableMeta};

/// Default and largest page size of query and scan.
pub const DEFAULT_LIMIT: usize = 1000;
pub const MAX_LIMIT: usize = 10_000;

type Params = Vec<(String, String)>;

fn with_app(
    app: Arc<App>,
) -> impl Filter<Extract = (Arc<App>,), Error = std::convert::Infallible> + Clone {
    warp::any().map(move || app.clone())
}

fn params() -> impl Filter<Extract = (Params,), Error = Rejection> + Clone {
    warp::query::<Params>()
}

fn body() -> impl Filter<Extract = (Bytes,), Error = Rejection> + Clone {
    warp::body::content_length_limit(MAX_API_BODY).and(warp::body::bytes())
}

/// The routes under `/tables`.
pub fn routes(app: Arc<App>) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let base = warp::path("tables").and(with_app(app)).and(path_and_query());
    let create = base.clone().and(warp::path::end()).and(warp::post()).and(body()).then(
        |app: Arc<App>, pq: String, body: Bytes| async move {
            respond_write(create_table(&app, &body).await, StatusCode::CREATED, &pq)
        },
    );
    let list = base
        .clone()
        .and(warp::path::end())
        .and(warp::get())
        .map(|app: Arc<App>, pq: String| respond(list_tables(&app), StatusCode::OK, &pq));
    let describe = base
        .clone()
        .and(warp::path::param::<String>())
        .and(warp::path::end())
        .and(warp::get())
        .map(|app: Arc<App>, pq: String, t: String| {
            respond(describe_table(&app, &t), StatusCode::OK, &pq)
        });
    let delete = base
        .clone()
        .and(warp::path::param::<String>())
        .and(warp::path::end())
        .and(warp::delete())
        .then(|app: Arc<App>, pq: String, t: String| async move {
            respond_write(delete_table(&app, &t).await, StatusCode::OK, &pq)
        });
    let items = base
        .clone()
        .and(warp::path::param::<String>())
        .and(warp::path("items"))
        .and(warp::path::end());
    let put = items.clone().and(warp::put()).and(params()).and(body()).then(
        |app: Arc<App>, pq: String, t: String, p: Params, body: Bytes| async move {
            respond_write(put_item(&app, &t, &p, &body).await, StatusCode::OK, &pq)
        },
    );
    let patch = items.clone().and(warp::patch()).and(params()).and(body()).then(
        |app: Arc<App>, pq: String, t: String, p: Params, body: Bytes| async move {
            respond_write(update_item(&app, &t, &p, &body).await, StatusCode::OK, &pq)
        },
    );
    let get = items.clone().and(warp::get()).and(params()).then(
        |app: Arc<App>, pq: String, t: String, p: Params| async move {
            respond(get_item(&app, &t, &p).await, StatusCode::OK, &pq)
        },
    );
    let del = items.and(warp::delete()).and(params()).then(
        |app: Arc<App>, pq: String, t: String, p: Params| async move {
            respond_write(delete_item(&app, &t, &p).await, StatusCode::OK, &pq)
        },
    );
    let query = base
        .clone()
        .and(warp::path::param::<String>())
        .and(warp::path("query"))
        .and(warp::path::end())
        .and(warp::get())
        .and(params())
        .then(|app: Arc<App>, pq: String, t: String, p: Params| async move {
            respond(query(&app, &t, &p).await, StatusCode::OK, &pq)
        });
    let scan = base
        .and(warp::path::param::<String>())
        .and(warp::path("scan"))
        .and(warp::path::end())
        .and(warp::get())
        .and(params())
        .then(|app: Arc<App>, pq: String, t: String, p: Params| async move {
            respond(scan(&app, &t, &p).await, StatusCode::OK, &pq)
        });
    create
        .or(list)
        .unify()
        .or(describe)
        .unify()
        .or(delete)
        .unify()
        .or(put)
        .unify()
        .or(patch)
        .unify()
        .or(get)
        .unify()
        .or(del)
        .unify()
        .or(query)
        .unify()
        .or(scan)
        .unify()
}

// ---- the write path ----------------------------------------------------------------

/// Fails with a redirect (or 503) unless this node is the leader.
pub fn ensure_leader(app: &App) -> Result<(), Error> {
    super::writes::check_leader(&app.raft, |id| app.addr_of(id))
}

/// This node's clock in ms since the Unix epoch (0 if the clock is before it).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn parse_json(body: &[u8]) -> Result<Value, Error> {
    serde_json::from_slice(body)
        .map_err(|e| Error::BadRequest(format!("request body is not valid JSON: {e}")))
}

fn table_meta(app: &App, name: &str) -> Result<TableMeta, Error> {
    validate_table_name(name)?;
    app.tables.table(name)
}

fn describe(app: &App, meta: &TableMeta) -> Result<Value, Error> {
    Ok(json!({
        "table_name": meta.schema.table_name,
        "partition_key": meta.schema.partition_key,
        "sort_key": meta.schema.sort_key,
        "version": meta.id,
        "item_count": app.tables.item_count(meta.id)?,
    }))
}

async fn create_table(app: &App, body: &[u8]) -> Result<Value, Error> {
    let v = parse_json(body)?;
    let schema: TableSchema = serde_json::from_value(v).map_err(|e| {
        Error::BadRequest(format!(
            "bad table definition: {e}; expected {{\"table_name\": \"...\", \"partition_key\": {{\"name\": \"...\", \"type\": \"S|N|B\"}}, \"sort_key\"?: {{...}}}}"
        ))
    })?;
    schema.validate()?;
    ensure_leader(app)?;
    if app.tables.get_table(&schema.table_name)?.is_some() {
        return Err(Error::TableExists(schema.table_name));
    }
    // Creation time by this node's clock, decided here and replicated in the command.
    let options = TableOptions { created_ms: now_ms(), ..Default::default() };
    let applied = app
        .writes
        .propose(Command::CreateTable { schema: schema.clone(), options: options.clone() })
        .await?;
    let meta = TableMeta { id: applied.version, schema, options };
    Ok(json!({ "table": describe(app, &meta)?, "version": applied.version }))
}

fn list_tables(app: &App) -> Result<Value, Error> {
    let names: Vec<String> =
        app.tables.list_tables()?.into_iter().map(|t| t.schema.table_name).collect();
    Ok(json!({ "tables": names }))
}

fn describe_table(app: &App, name: &str) -> Result<Value, Error> {
    let meta = table_meta(app, name)?;
    Ok(json!({ "table": describe(app, &meta)? }))
}

async fn delete_table(app: &App, name: &str) -> Result<Value, Error> {
    validate_table_name(name)?;
    ensure_leader(app)?;
    table_meta(app, name)?;
    let applied = app.writes.propose(Command::DeleteTable { table: name.to_string() }).await?;
    Ok(json!({ "deleted": name, "version": applied.version }))
}

async fn put_item(app: &App, table: &str, p: &Params, body: &[u8]) -> Result<Value, Error> {
    let q = Query::new(p, &["if_version"])?;
    let if_version = if_version(&q)?;
    let mut item = attr::item_from_json(&parse_json(body)?)?;
    ensure_leader(app)?;
    let meta = table_meta(app, table)?;
    binary_keys(&meta.schema, &mut item);
    let key = meta.schema.validate_item(&item)?;
    let bytes = crate::model::key::item_key_bytes(meta.id, &key);
    let (table, table_id) = (table.to_string(), meta.id);
    let cmd = match if_version {
        None => Command::PutItem { table, table_id, item },
        Some(v) => Command::Write(ItemWrite {
            table,
            table_id,
            key,
            action: WriteAction::Put(item),
            condition: None,
            if_version: Some(v),
        }),
    };
    let applied = app.writes.write(cmd, bytes, body.len()).await?;
    Ok(json!({ "version": applied.version, "replaced": applied.existed }))
}

/// `if_version=N`: the write happens only if the stored item's version is N (0: only
/// if there is no item). Decided when the write is applied (a compare-and-set); a
/// mismatch is 412 `condition_failed`.
fn if_version(q: &Query) -> Result<Option<u64>, Error> {
    q.get("if_version")
        .map(|v| {
            v.parse::<u64>().map_err(|_| {
                Error::BadRequest(format!("if_version must be a version number, got {v:?}"))
            })
        })
        .transpose()
}

/// `PATCH /tables/{t}/items?pk=..[&sk=..][&if_version=N]` with
/// `{"update": "SET n = n + :one", "condition": "...", "names": {"#a": "a"},
/// "values": {":one": 1}}` (values in plain JSON): DynamoDB's update and condition
/// expressions, decided when the write is applied. Answers the new item.
async fn update_item(app: &App, table: &str, p: &Params, body: &[u8]) -> Result<Value, Error> {
    use crate::model::expr::Expressions;
    let q = Query::new(p, &["pk", "sk", "if_version"])?;
    let if_version = if_version(&q)?;
    let body = parse_json(body)?;
    let text = |k: &str| -> Result<Option<String>, Error> {
        match body.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(Error::BadRequest(format!("{k} must be a string"))),
        }
    };
    let update_text = text("update")?
        .ok_or_else(|| Error::BadRequest("update (an update expression) is required".into()))?;
    let names =
        match body.get("names") {
            None | Some(Value::Null) => None,
            Some(v) => Some(serde_json::from_value(v.clone()).map_err(|_| {
                Error::BadRequest("names must map #names to attribute names".into())
            })?),
        };
    let values = match body.get("values") {
        None | Some(Value::Null) => None,
        Some(Value::Object(m)) => Some(
            m.iter()
                .map(|(k, v)| Ok((k.clone(), attr::from_json(v)?)))
                .collect::<Result<std::collections::HashMap<_, _>, Error>>()?,
        ),
        Some(_) => return Err(Error::BadRequest("values must be an object".into())),
    };
    let bad = |e: crate::model::expr::ExprError| Error::BadRequest(e.to_string());
    let mut exprs = Expressions::new(names, values).map_err(bad)?;
    let update = exprs.update(&update_text).map_err(bad)?;
    let condition = text("condition")?.map(|c| exprs.condition(&c)).transpose().map_err(bad)?;
    exprs.finish().map_err(bad)?;
    validate_table_name(table)?;
    ensure_leader(app)?;
    let meta = table_meta(app, table)?;
    let key = key_from(&meta, &q)?;
    let tops = update.top_level_attributes();
    let schema = &meta.schema;
    if let Some(k) = std::iter::once(&schema.partition_key)
        .chain(schema.sort_key.as_ref())
        .find(|k| tops.contains(k.name.as_str()))
    {
        return Err(Error::BadRequest(format!("the key attribute {:?} cannot be updated", k.name)));
    }
    let bytes = crate::model::key::item_key_bytes(meta.id, &key);
    let cmd = Command::Write(ItemWrite {
        table: table.to_string(),
        table_id: meta.id,
        key,
        action: WriteAction::Update(update),
        condition,
        if_version,
    });
    let applied = app.writes.write(cmd, bytes, update_text.len() + 64).await?;
    let item = applied.new.unwrap_or_default();
    Ok(json!({ "version": applied.version, "item": attr::item_to_json(&item) }))
}

/// Plain JSON has no binary type: a binary (`B`) key attribute is written in the typed
/// form reads return, `{"B": "<base64>"}`, which `item_from_json` reads as a map. For
/// the table's `B` key attributes only, such a map is the binary it spells.
fn binary_keys(schema: &TableSchema, item: &mut crate::model::Item) {
    use crate::model::{AttributeValue, KeyType};
    let keys = std::iter::once(&schema.partition_key).chain(schema.sort_key.as_ref());
    for k in keys.filter(|k| k.key_type == KeyType::B) {
        if let Some(AttributeValue::M(m)) = item.get(&k.name) {
            if let (1, Some(AttributeValue::S(text))) = (m.len(), m.get("B")) {
                let b = AttributeValue::B(text.clone());
                item.insert(k.name.clone(), b);
            }
        }
    }
}

// ---- reads -------------------------------------------------------------------------

/// Query parameters, checked against the names a route accepts.
struct Query<'a> {
    map: BTreeMap<&'a str, &'a str>,
}

impl<'a> Query<'a> {
    fn new(p: &'a Params, allowed: &[&str]) -> Result<Query<'a>, Error> {
        let mut map = BTreeMap::new();
        for (k, v) in p {
            if !allowed.contains(&k.as_str()) {
                return Err(Error::BadRequest(format!(
                    "unknown query parameter {k:?}; allowed here: {}",
                    allowed.join(", ")
                )));
            }
            if map.insert(k.as_str(), v.as_str()).is_some() {
                return Err(Error::BadRequest(format!("query parameter {k:?} given twice")));
            }
        }
        Ok(Query { map })
    }

    fn get(&self, k: &str) -> Option<&'a str> {
        self.map.get(k).copied()
    }

    fn limit(&self) -> Result<usize, Error> {
        match self.get("limit") {
            None => Ok(DEFAULT_LIMIT),
            Some(s) => match s.parse::<usize>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
                _ => Err(Error::BadRequest(format!(
                    "limit must be a number from 1 to {MAX_LIMIT}, got {s:?}"
                ))),
            },
        }
    }

    fn flag(&self, k: &str) -> Result<bool, Error> {
        match self.get(k) {
            None | Some("false") | Some("0") => Ok(false),
            Some("true") | Some("1") | Some("") => Ok(true),
            Some(s) => Err(Error::BadRequest(format!("{k} must be true or false, got {s:?}"))),
        }
    }
}

/// How fresh a read must be, chosen per request with `consistency=` (and
/// `after_index=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadLevel {
    /// Whatever this node has applied (the default, as in the original project).
    Eventual,
    /// At least this log index applied here: read-your-writes through any node.
    Session(u64),
    /// Linearizable: the leader confirms its leadership with a quorum (read index) and
    /// this node applies up to the read index before it answers (`server::reads`).
    Strong,
}

/// How long a session read waits for this node to apply the index it asks for.
pub const SESSION_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

fn read_level(q: &Query) -> Result<ReadLevel, Error> {
    let after = match q.get("after_index") {
        None => None,
        Some(s) => Some(s.parse::<u64>().map_err(|_| {
            Error::BadRequest(format!(
                "after_index must be a log index (a whole number), got {s:?}"
            ))
        })?),
    };
    match (q.get("consistency"), after) {
        (None | Some("eventual"), None) => Ok(ReadLevel::Eventual),
        (None | Some("session") | Some("eventual"), Some(i)) => Ok(ReadLevel::Session(i)),
        (Some("session"), None) => Err(Error::BadRequest(
            "consistency=session needs after_index=N (the version your write returned)".into(),
        )),
        (Some("strong"), _) => Ok(ReadLevel::Strong),
        (Some(other), _) => Err(Error::BadRequest(format!(
            "consistency must be eventual, session or strong, got {other:?}"
        ))),
    }
}

/// Waits until a read at `level` may be answered from this node's state machine.
pub async fn read_barrier(app: &App, level: ReadLevel) -> Result<(), Error> {
    match level {
        ReadLevel::Eventual => Ok(()),
        ReadLevel::Session(index) => {
            if app.progress.applied().is_some_and(|a| a >= index) {
                return Ok(());
            }
            app.raft
                .wait(Some(SESSION_WAIT))
                .applied_index_at_least(Some(index), "session read")
                .await
                .map(|_| ())
                .map_err(|_| {
                    Error::Unavailable(format!(
                        "node {} has applied up to index {} but the read asks for index {index}; \
                         not reached within {} ms (is the node lagging or partitioned?)",
                        app.id,
                        app.progress.applied().unwrap_or(0),
                        SESSION_WAIT.as_millis()
                    ))
                })
        }
        ReadLevel::Strong => app.reads.linearize().await.map(|_| ()),
    }
}

fn key_from(meta: &TableMeta, q: &Query) -> Result<crate::model::ItemKey, Error> {
    let pk = q.get("pk").ok_or_else(|| {
        Error::BadRequest("query parameter pk (the partition key) is required".into())
    })?;
    Ok(meta.schema.key_from_params(pk, q.get("sk"))?)
}

fn item_json(s: &StoredItem) -> Value {
    json!({ "item": attr::item_to_json(&s.item), "version": s.version })
}

fn page_json(p: Page) -> Value {
    let items: Vec<Value> = p.items.iter().map(item_json).collect();
    json!({ "count": items.len(), "items": items, "next": p.next })
}

async fn get_item(app: &App, table: &str, p: &Params) -> Result<Value, Error> {
    let q = Query::new(p, &["pk", "sk", "consistency", "after_index"])?;
    read_barrier(app, read_level(&q)?).await?;
    let meta = table_meta(app, table)?;
    let key = key_from(&meta, &q)?;
    let item = app.tables.get_item(&meta, &key)?.ok_or(Error::ItemNotFound)?;
    Ok(item_json(&item))
}

async fn delete_item(app: &App, table: &str, p: &Params) -> Result<Value, Error> {
    let q = Query::new(p, &["pk", "sk", "if_version"])?;
    let if_version = if_version(&q)?;
    validate_table_name(table)?;
    ensure_leader(app)?;
    let meta = table_meta(app, table)?;
    let key = key_from(&meta, &q)?;
    let bytes = crate::model::key::item_key_bytes(meta.id, &key);
    let size = bytes.len();
    let (table, table_id) = (table.to_string(), meta.id);
    let cmd = match if_version {
        None => Command::DeleteItem { table, table_id, key },
        Some(v) => Command::Write(ItemWrite {
            table,
            table_id,
            key,
            action: WriteAction::Delete,
            condition: None,
            if_version: Some(v),
        }),
    };
    let applied = app.writes.write(cmd, bytes, size).await?;
    Ok(json!({ "deleted": applied.existed, "version": applied.version }))
}

async fn query(app: &App, table: &str, p: &Params) -> Result<Value, Error> {
    let q = Query::new(
        p,
        &[
            "pk",
            "sk_prefix",
            "sk_gt",
            "sk_ge",
            "sk_lt",
            "sk_le",
            "limit",
            "start_after",
            "desc",
            "consistency",
            "after_index",
        ],
    )?;
    read_barrier(app, read_level(&q)?).await?;
    let meta = table_meta(app, table)?;
    let pk = q.get("pk").ok_or_else(|| {
        Error::BadRequest("query parameter pk (the partition key) is required".into())
    })?;
    let sk = |name: &str| -> Result<_, Error> {
        q.get(name).map(|v| meta.schema.sort_key_value(v)).transpose().map_err(Error::from)
    };
    let prefix = q.get("sk_prefix").map(str::to_string);
    if prefix.is_some() {
        match &meta.schema.sort_key {
            Some(KeyAttr { key_type: crate::model::KeyType::S, .. }) => {}
            Some(_) => {
                return Err(Error::BadRequest("sk_prefix needs a string (S) sort key".into()))
            }
            None => return Err(Error::BadRequest(format!("table {table:?} has no sort key"))),
        }
    }
    let spec = QuerySpec {
        pk: Some(meta.schema.partition_key_value(pk)?),
        prefix,
        prefix_bytes: None,
        gt: sk("sk_gt")?,
        ge: sk("sk_ge")?,
        lt: sk("sk_lt")?,
        le: sk("sk_le")?,
        start_after: sk("start_after")?,
        desc: q.flag("desc")?,
        limit: q.limit()?,
    };
    Ok(page_json(app.tables.query(&meta, &spec)?))
}

async fn scan(app: &App, table: &str, p: &Params) -> Result<Value, Error> {
    let q = Query::new(p, &["limit", "start_after", "consistency", "after_index"])?;
    read_barrier(app, read_level(&q)?).await?;
    let meta = table_meta(app, table)?;
    Ok(page_json(app.tables.scan(&meta, q.limit()?, q.get("start_after"))?))
}
