//! Data commands: tables and items, and one node's status.
//!
//! Each command talks to one node, the `--target-addr` (default: the first node of the
//! cluster config; if it refuses the connection, the next configured node, and so on).
//! Writes sent to a follower are redirected to the leader by the client; reads are
//! answered by the target itself, so a follower may show data that is slightly behind
//! the leader: that is eventual consistency at work. `-v` says on stderr who answered,
//! every redirect and detour, and what a write is waiting for while it waits.
//!
//! Output is pretty JSON on stdout (`--output table` for a readable table); errors are one
//! sentence on stderr (a JSON line with the code under `--output json`). Exit codes: 0 ok,
//! 1 not found / rejected / unreachable, 2 usage.

use std::fmt::Display;
use std::io::Write;
use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};
use comfy_table::{presets, Table};
use serde::Serialize;
use serde_json::Value;

use super::{Failure, GlobalOpts, Output};
use crate::client::{
    Client, ClientError, Consistency, NodeStatus, Page, QueryParams, Response, TableDescription,
};
use crate::model::{KeyAttr, KeyType, TableSchema};

#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Create a table with a partition key and an optional sort key
    #[command(
        after_help = "Example:\n  raft-nosql create-table --target-addr localhost:8100 \\\n    --table-name Music --partition-key-name Artist --sort-key-name SongTitle"
    )]
    CreateTable(Box<CreateTableArgs>),
    /// Delete a table and all its items
    #[command(
        after_help = "Example:\n  raft-nosql delete-table --target-addr localhost:8100 --table-name Music"
    )]
    DeleteTable(TableArgs),
    /// List the tables the target node knows
    #[command(
        after_help = "Example:\n  raft-nosql list-tables --target-addr localhost:8100 --output table"
    )]
    ListTables(ConnArgs),
    /// Show a table's keys and item count, as the target node sees them
    #[command(
        after_help = "Example:\n  raft-nosql describe-table --target-addr localhost:8101 --table-name Music"
    )]
    DescribeTable(TableArgs),
    /// Write an item (replaces any item with the same key)
    #[command(
        after_help = "Example:\n  raft-nosql put-item --target-addr localhost:8100 --table-name Music \\\n    --item-data '{\"Artist\":\"Queen\",\"SongTitle\":\"Bohemian Rhapsody\",\"Year\":1975}'"
    )]
    PutItem(PutItemArgs),
    /// Read one item from the target node (eventually consistent on a follower)
    #[command(
        after_help = "Example:\n  raft-nosql get-item --target-addr localhost:8101 --table-name Music \\\n    --partition-key Queen --sort-key 'Bohemian Rhapsody'"
    )]
    GetItem(GetItemArgs),
    /// Delete one item
    #[command(
        after_help = "Example:\n  raft-nosql delete-item --target-addr localhost:8100 --table-name Music \\\n    --partition-key 'The Beatles' --sort-key 'Let It Be'"
    )]
    DeleteItem(KeyArgs),
    /// Update one item with an update expression, decided when the write is applied
    #[command(
        after_help = "Example:\n  raft-nosql update-item --target-addr localhost:8100 --table-name Music \\\n    --partition-key Queen --sort-key 'Bohemian Rhapsody' \\\n    --update-expression 'ADD plays :one' --values '{\":one\": 1}'"
    )]
    UpdateItem(Box<UpdateItemArgs>),
    /// List the items of one partition in sort key order, optionally narrowed
    #[command(
        after_help = "Examples:\n  raft-nosql query-items --target-addr localhost:8100 --table-name Music --partition-key Journey\n  raft-nosql query-items --table-name Music --partition-key Journey --sort-key-prefix \"Don't\"\n  raft-nosql query-items --table-name Music --partition-key Journey --sk-ge M --limit 10 --desc"
    )]
    QueryItems(Box<QueryArgs>),
    /// List all items of a table, page by page
    #[command(
        after_help = "Example:\n  raft-nosql scan --target-addr localhost:8100 --table-name Music --limit 100\n  (then pass the printed \"next\" value as --start-after to get the next page)"
    )]
    Scan(ScanArgs),
    /// Show one node's view of the cluster: role, term, leader, log indexes, members
    #[command(
        after_help = "Example:\n  raft-nosql status --target-addr localhost:8101 --output table"
    )]
    Status(ConnArgs),
}

/// Help section of the options every data command shares.
const HEADING: &str = "Connection and output";

/// Which node to ask (every data command takes these; `--output` is global).
#[derive(Debug, Clone, Args)]
pub struct ConnArgs {
    /// Node to send the request to, as host:port. Writes sent to a follower are redirected
    /// to the leader; reads are answered by this node [default: the first node of the
    /// cluster config that accepts the connection]
    #[arg(long, value_name = "HOST:PORT", help_heading = HEADING)]
    pub target_addr: Option<String>,
    /// Say on stderr which node answered, every redirect or detour to another node, and
    /// what a write is waiting for while it waits
    #[arg(short, long, help_heading = HEADING)]
    pub verbose: bool,
}

/// The type of a key attribute on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KeyTypeArg {
    /// String (sorts by UTF-8 bytes)
    #[value(name = "S")]
    S,
    /// Number (sorts numerically)
    #[value(name = "N")]
    N,
    /// Binary (sorts by bytes; values are given as base64)
    #[value(name = "B")]
    B,
}

impl From<KeyTypeArg> for KeyType {
    fn from(t: KeyTypeArg) -> KeyType {
        match t {
            KeyTypeArg::S => KeyType::S,
            KeyTypeArg::N => KeyType::N,
            KeyTypeArg::B => KeyType::B,
        }
    }
}

#[derive(Debug, Args)]
pub struct CreateTableArgs {
    /// Name of the new table (3-255 characters of A-Z a-z 0-9 _ . -)
    #[arg(long)]
    pub table_name: String,
    /// Attribute that every item must have and that decides its partition
    #[arg(long)]
    pub partition_key_name: String,
    /// Type of the partition key: S (string) or N (number)
    #[arg(long, value_enum, ignore_case = true, default_value = "S", value_name = "S|N|B")]
    pub partition_key_type: KeyTypeArg,
    /// Optional attribute that orders the items within a partition
    #[arg(long)]
    pub sort_key_name: Option<String>,
    /// Type of the sort key: S (string) or N (number)
    #[arg(long, value_enum, ignore_case = true, default_value = "S", value_name = "S|N|B")]
    pub sort_key_type: KeyTypeArg,
    #[command(flatten)]
    pub conn: ConnArgs,
}

#[derive(Debug, Args)]
pub struct TableArgs {
    /// Name of the table
    #[arg(long)]
    pub table_name: String,
    #[command(flatten)]
    pub conn: ConnArgs,
}

#[derive(Debug, Args)]
pub struct PutItemArgs {
    /// Name of the table
    #[arg(long)]
    pub table_name: String,
    /// The item as a JSON object, including the key attributes (quote it for the shell)
    #[arg(long, value_name = "JSON")]
    pub item_data: String,
    /// Write only if the stored item's version is N (0: only if there is no item);
    /// decided when the write is applied, so it is a compare-and-set
    #[arg(long, value_name = "N")]
    pub if_version: Option<u64>,
    #[command(flatten)]
    pub conn: ConnArgs,
}

#[derive(Debug, Args)]
pub struct UpdateItemArgs {
    #[command(flatten)]
    pub key: KeyArgs,
    /// A DynamoDB update expression, e.g. 'SET plays = plays + :one'
    #[arg(long, value_name = "EXPR")]
    pub update_expression: String,
    /// A DynamoDB condition expression that must hold on the stored item
    #[arg(long, value_name = "EXPR")]
    pub condition_expression: Option<String>,
    /// The expression's :values as a plain JSON object, e.g. '{":one": 1}'
    #[arg(long, value_name = "JSON")]
    pub values: Option<String>,
    /// The expression's #names as a JSON object, e.g. '{"#y": "Year"}'
    #[arg(long, value_name = "JSON")]
    pub names: Option<String>,
}

#[derive(Debug, Args)]
pub struct KeyArgs {
    /// Name of the table
    #[arg(long)]
    pub table_name: String,
    /// Value of the item's partition key
    #[arg(long, value_name = "VALUE")]
    pub partition_key: String,
    /// Value of the item's sort key (required if the table has one)
    #[arg(long, value_name = "VALUE")]
    pub sort_key: Option<String>,
    #[command(flatten)]
    pub conn: ConnArgs,
}

/// Freshness of a read (get-item, query-items, scan).
#[derive(Debug, Clone, Args)]
pub struct ReadArgs {
    /// How fresh the answer must be (session needs --after-index)
    #[arg(long, value_enum, default_value_t = ConsistencyArg::Eventual, value_name = "LEVEL")]
    pub consistency: ConsistencyArg,
    /// Shorthand for --consistency strong (as DynamoDB's ConsistentRead)
    #[arg(long, conflicts_with = "consistency")]
    pub consistent_read: bool,
    /// Wait until the target node has applied this log index (the "version" a write
    /// printed): read your own write through any node
    #[arg(long, value_name = "INDEX", required_if_eq("consistency", "session"))]
    pub after_index: Option<u64>,
}

/// `--consistency` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ConsistencyArg {
    /// Whatever the target node has applied (may lag behind the leader on a follower)
    Eventual,
    /// Read-your-writes: wait until the target node has applied --after-index
    Session,
    /// Linearizable: answered by the leader after it confirms it still leads
    Strong,
}

impl ReadArgs {
    fn consistency(&self) -> Consistency {
        if self.consistent_read {
            return Consistency::Strong;
        }
        match (self.consistency, self.after_index) {
            (ConsistencyArg::Strong, _) => Consistency::Strong,
            (ConsistencyArg::Eventual | ConsistencyArg::Session, Some(i)) => {
                Consistency::AfterIndex(i)
            }
            (ConsistencyArg::Eventual | ConsistencyArg::Session, None) => Consistency::Eventual,
        }
    }
}

#[derive(Debug, Args)]
pub struct GetItemArgs {
    #[command(flatten)]
    pub key: KeyArgs,
    #[command(flatten)]
    pub read: ReadArgs,
}

#[derive(Debug, Args)]
pub struct QueryArgs {
    /// Name of the table
    #[arg(long)]
    pub table_name: String,
    /// The partition to list
    #[arg(long, value_name = "VALUE")]
    pub partition_key: String,
    /// Only items whose sort key starts with this text
    #[arg(long, value_name = "PREFIX")]
    pub sort_key_prefix: Option<String>,
    /// Only items whose sort key is greater than this
    #[arg(long, value_name = "VALUE")]
    pub sk_gt: Option<String>,
    /// Only items whose sort key is greater than or equal to this
    #[arg(long, value_name = "VALUE", conflicts_with = "sk_gt")]
    pub sk_ge: Option<String>,
    /// Only items whose sort key is less than this
    #[arg(long, value_name = "VALUE")]
    pub sk_lt: Option<String>,
    /// Only items whose sort key is less than or equal to this
    #[arg(long, value_name = "VALUE", conflicts_with = "sk_lt")]
    pub sk_le: Option<String>,
    /// At most this many items (the answer's "next" tells where to continue)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub limit: Option<u64>,
    /// Continue after this sort key (the "next" of the previous page)
    #[arg(long, value_name = "SORT_KEY")]
    pub start_after: Option<String>,
    /// Highest sort key first
    #[arg(long)]
    pub desc: bool,
    #[command(flatten)]
    pub read: ReadArgs,
    #[command(flatten)]
    pub conn: ConnArgs,
}

#[derive(Debug, Args)]
pub struct ScanArgs {
    /// Name of the table
    #[arg(long)]
    pub table_name: String,
    /// At most this many items (the answer's "next" tells where to continue)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub limit: Option<u64>,
    /// Continue after this cursor (the "next" of the previous page)
    #[arg(long, value_name = "CURSOR")]
    pub start_after: Option<String>,
    #[command(flatten)]
    pub read: ReadArgs,
    #[command(flatten)]
    pub conn: ConnArgs,
}

/// What the command was about, to phrase errors in the user's terms.
#[derive(Default)]
struct Subject<'a> {
    table: Option<&'a str>,
    key: Option<(&'a str, Option<&'a str>)>,
}

/// Runs one data command and returns the process exit code.
pub async fn run(global: &GlobalOpts, cmd: DataCommand) -> ExitCode {
    match execute(global, cmd).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => f.report(global.output),
    }
}

async fn execute(global: &GlobalOpts, cmd: DataCommand) -> Result<(), Failure> {
    let out = global.output.unwrap_or(Output::Json);
    match cmd {
        DataCommand::CreateTable(a) => {
            let schema = TableSchema {
                table_name: a.table_name.clone(),
                partition_key: KeyAttr {
                    name: a.partition_key_name,
                    key_type: a.partition_key_type.into(),
                },
                sort_key: a
                    .sort_key_name
                    .map(|name| KeyAttr { name, key_type: a.sort_key_type.into() }),
            };
            let client = connect(global, &a.conn)?;
            let r = client.create_table(&schema).await;
            let r = check(r, &a.conn, table_subject(&a.table_name))?;
            emit(out, &r.value, || describe_table(&r.value.table, Some(r.value.version)))
        }
        DataCommand::DeleteTable(a) => {
            let client = connect(global, &a.conn)?;
            let r = client.delete_table(&a.table_name).await;
            let r = check(r, &a.conn, table_subject(&a.table_name))?;
            emit(out, &r.value, || {
                fields([
                    ("deleted table", r.value.deleted.clone()),
                    ("version", r.value.version.to_string()),
                ])
            })
        }
        DataCommand::ListTables(conn) => {
            let client = connect(global, &conn)?;
            let r = check(client.list_tables().await, &conn, Subject::default())?;
            emit(out, &serde_json::json!({ "tables": r.value }), || {
                let mut t = new_table(["table"]);
                for name in &r.value {
                    t.add_row([name]);
                }
                t.to_string()
            })
        }
        DataCommand::DescribeTable(a) => {
            let client = connect(global, &a.conn)?;
            let r = client.describe_table(&a.table_name).await;
            let r = check(r, &a.conn, table_subject(&a.table_name))?;
            emit(out, &serde_json::json!({ "table": r.value }), || describe_table(&r.value, None))
        }
        DataCommand::PutItem(a) => {
            let item = parse_item(&a.item_data)?;
            let client = connect(global, &a.conn)?;
            let r = client.put_item_if(&a.table_name, &item, a.if_version).await;
            let r = check(r, &a.conn, table_subject(&a.table_name))?;
            emit(out, &r.value, || {
                fields([
                    ("replaced", r.value.replaced.to_string()),
                    ("version", r.value.version.to_string()),
                ])
            })
        }
        DataCommand::UpdateItem(u) => {
            let json_arg = |flag: &str, v: &Option<String>| -> Result<Value, Failure> {
                match v {
                    None => Ok(Value::Null),
                    Some(t) => serde_json::from_str(t)
                        .map_err(|e| Failure::usage(format!("{flag} is not valid JSON: {e}"))),
                }
            };
            let request = serde_json::json!({
                "update": u.update_expression,
                "condition": u.condition_expression,
                "values": json_arg("--values", &u.values)?,
                "names": json_arg("--names", &u.names)?,
            });
            let a = &u.key;
            let client = connect(global, &a.conn)?;
            let r = client
                .update_item(&a.table_name, &a.partition_key, a.sort_key.as_deref(), &request)
                .await;
            let r = check(r, &a.conn, table_subject(&a.table_name))?;
            emit(out, &r.value, || {
                fields([
                    ("version", r.value["version"].to_string()),
                    ("item", r.value["item"].to_string()),
                ])
            })
        }
        DataCommand::GetItem(GetItemArgs { key: a, read }) => {
            let client = connect(global, &a.conn)?.with_consistency(read.consistency());
            let r = client.get_item(&a.table_name, &a.partition_key, a.sort_key.as_deref()).await;
            let r = check(r, &a.conn, key_subject(&a))?;
            emit(out, &r.value, || items_table(std::slice::from_ref(&r.value)))
        }
        DataCommand::DeleteItem(a) => {
            let client = connect(global, &a.conn)?;
            let r =
                client.delete_item(&a.table_name, &a.partition_key, a.sort_key.as_deref()).await;
            let r = check(r, &a.conn, key_subject(&a))?;
            emit(out, &r.value, || {
                fields([
                    ("deleted", r.value.deleted.to_string()),
                    ("version", r.value.version.to_string()),
                ])
            })
        }
        DataCommand::QueryItems(a) => {
            let params = QueryParams {
                partition_key: a.partition_key.clone(),
                sort_key_prefix: a.sort_key_prefix,
                sk_gt: a.sk_gt,
                sk_ge: a.sk_ge,
                sk_lt: a.sk_lt,
                sk_le: a.sk_le,
                limit: a.limit,
                start_after: a.start_after,
                descending: a.desc,
            };
            let client = connect(global, &a.conn)?.with_consistency(a.read.consistency());
            let r = client.query(&a.table_name, &params).await;
            let r = check(r, &a.conn, table_subject(&a.table_name))?;
            emit(out, &r.value, || page_table(&r.value))
        }
        DataCommand::Scan(a) => {
            let client = connect(global, &a.conn)?.with_consistency(a.read.consistency());
            let r = client.scan(&a.table_name, a.limit, a.start_after.as_deref()).await;
            let r = check(r, &a.conn, table_subject(&a.table_name))?;
            emit(out, &r.value, || page_table(&r.value))
        }
        DataCommand::Status(conn) => {
            let client = connect(global, &conn)?;
            let r = check(client.status().await, &conn, Subject::default())?;
            emit(out, &r.value, || status_table(&r.value))
        }
    }
}

/// A client for `--target-addr`, or for the configured nodes (the first as the target,
/// the others as fallbacks for reads whose target refuses the connection).
fn connect(global: &GlobalOpts, conn: &ConnArgs) -> Result<Client, Failure> {
    let nodes = match &conn.target_addr {
        Some(addr) => vec![addr.clone()],
        None => {
            let config = global.load_config()?;
            let nodes: Vec<String> = config.nodes.into_iter().map(|n| n.addr).collect();
            if nodes.is_empty() {
                return Err(Failure::usage(
                    "the cluster config lists no nodes; pass --target-addr",
                ));
            }
            nodes
        }
    };
    let mut builder = Client::builder(nodes).read_fallback(conn.target_addr.is_none());
    if let Some(ca) = global.ca_file() {
        builder = builder.ca_file(ca);
    }
    if conn.verbose {
        builder = builder.on_wait(|note| eprintln!("{note}"));
    }
    builder.build().map_err(|e| match e {
        ClientError::Tls(_) => Failure::usage(e.to_string()),
        e => Failure::usage(format!("--target-addr: {e}")),
    })
}

/// `--item-data` must be a JSON object; anything else is a usage error.
fn parse_item(text: &str) -> Result<Value, Failure> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| Failure::usage(format!("--item-data is not valid JSON: {e}")))?;
    if !value.is_object() {
        return Err(Failure::usage(format!(
            "--item-data must be a JSON object with the key attributes, got {}",
            json_kind(&value)
        )));
    }
    Ok(value)
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn table_subject(table: &str) -> Subject<'_> {
    Subject { table: Some(table), key: None }
}

fn key_subject(a: &KeyArgs) -> Subject<'_> {
    Subject { table: Some(&a.table_name), key: Some((&a.partition_key, a.sort_key.as_deref())) }
}

/// Reports `-v` details on stderr and turns a client error into a one-line failure.
fn check<T>(
    result: Result<Response<T>, ClientError>,
    conn: &ConnArgs,
    subject: Subject<'_>,
) -> Result<Response<T>, Failure> {
    match result {
        Ok(r) => {
            if conn.verbose {
                report(&r);
            }
            Ok(r)
        }
        Err(e) => Err(explain(&e, &subject)),
    }
}

/// `-v`: who answered, which nodes were passed over on the way, and whether the request
/// was redirected to the leader.
fn report<T>(r: &Response<T>) {
    for s in &r.skipped {
        eprintln!("passed over {} ({}); tried the next node", s.addr, s.reason);
    }
    let node = r.node.map_or_else(|| "node ?".to_string(), |n| format!("node{n}"));
    if let Some(to) = &r.redirected_to {
        eprintln!("redirected to leader {node} at {to}");
    }
    let role = r.role.as_deref().unwrap_or("unknown role");
    match r.applied {
        Some(applied) => {
            eprintln!("answered by {node} ({role}) at {}, applied index {applied}", r.addr)
        }
        None => eprintln!("answered by {node} ({role}) at {}", r.addr),
    }
}

/// One sentence that says what went wrong, in the terms of the command; the machine
/// code goes with it (printed only with `--output json`).
fn explain(e: &ClientError, s: &Subject<'_>) -> Failure {
    let message = match (e.code(), s.table) {
        (Some("table_not_found"), Some(t)) => format!("table {t:?} not found"),
        (Some("item_not_found"), Some(t)) => {
            let key = match s.key {
                Some((pk, Some(sk))) => format!(" (partition key {pk:?}, sort key {sk:?})"),
                Some((pk, None)) => format!(" (partition key {pk:?})"),
                None => String::new(),
            };
            format!("item not found in table {t:?}{key}")
        }
        (Some("table_exists"), Some(t)) => format!("table {t:?} already exists"),
        _ => e.to_string(),
    };
    let code = match e {
        ClientError::Api { code, .. } => code.clone(),
        ClientError::Unreachable { .. } => "unreachable".into(),
        ClientError::Timeout { .. } => "timeout".into(),
        ClientError::Decode { .. } => "bad_answer".into(),
        ClientError::Redirect(_) => "redirect_failed".into(),
        ClientError::InvalidAddress { .. } | ClientError::Tls(_) => return Failure::usage(message),
    };
    Failure::Failed { code, message }
}

/// Prints the value as pretty JSON, or the table `table()` renders.
fn emit<T: Serialize>(
    out: Output,
    value: &T,
    table: impl FnOnce() -> String,
) -> Result<(), Failure> {
    let text = match out {
        Output::Json => serde_json::to_string_pretty(value)
            .map_err(|e| Failure::failed("output", format!("cannot print the answer: {e}")))?,
        Output::Table => table(),
    };
    // A closed pipe (`| head`) is not an error worth a panic.
    let _ = writeln!(std::io::stdout().lock(), "{text}");
    Ok(())
}

fn new_table<I: IntoIterator<Item = S>, S: Into<comfy_table::Cell>>(header: I) -> Table {
    let mut t = Table::new();
    t.load_style(presets::UTF8_FULL_CONDENSED).set_header(header);
    t
}

/// A two-column field/value table.
fn fields<K: Display, V: Display>(rows: impl IntoIterator<Item = (K, V)>) -> String {
    let mut t = new_table(["field", "value"]);
    for (k, v) in rows {
        t.add_row([k.to_string(), v.to_string()]);
    }
    t.to_string()
}

fn key_text(k: &KeyAttr) -> String {
    format!("{} ({})", k.name, k.key_type)
}

fn describe_table(d: &TableDescription, created_at: Option<u64>) -> String {
    let mut rows = vec![
        ("table", d.table_name.clone()),
        ("partition key", key_text(&d.partition_key)),
        ("sort key", d.sort_key.as_ref().map_or_else(|| "-".into(), key_text)),
    ];
    if let Some(n) = d.item_count {
        rows.push(("items", n.to_string()));
    }
    if let Some(v) = created_at.or(d.version) {
        rows.push(("version", v.to_string()));
    }
    fields(rows)
}

/// Items as rows: one column per attribute (union over the items), then the version.
fn items_table(items: &[crate::client::VersionedItem]) -> String {
    let mut columns: Vec<String> = Vec::new();
    for it in items {
        if let Value::Object(map) = &it.item {
            for k in map.keys() {
                if !columns.contains(k) {
                    columns.push(k.clone());
                }
            }
        }
    }
    let mut t = new_table(columns.iter().map(String::as_str).chain(["(version)"]));
    for it in items {
        let mut row: Vec<String> =
            columns.iter().map(|c| it.item.get(c).map_or_else(String::new, cell_text)).collect();
        row.push(it.version.to_string());
        t.add_row(row);
    }
    t.to_string()
}

fn page_table(page: &Page) -> String {
    let mut out =
        if page.items.is_empty() { "(no items)".to_string() } else { items_table(&page.items) };
    out.push_str(&format!("\n{} item(s)", page.count));
    if let Some(next) = &page.next {
        out.push_str(&format!("; more with --start-after {}", super::quote::shell_quote(next)));
    }
    out
}

/// A JSON value as a table cell: strings without quotes, the rest as compact JSON.
fn cell_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn status_table(s: &NodeStatus) -> String {
    let opt = |v: Option<u64>| v.map_or_else(|| "-".to_string(), |v| v.to_string());
    let leader = match (s.leader_id, &s.leader_addr) {
        (Some(id), Some(addr)) => format!("node{id} at {addr}"),
        (Some(id), None) => format!("node{id}"),
        _ => "none known".to_string(),
    };
    let members = s
        .membership
        .iter()
        .map(|(id, addr)| format!("node{id}={addr}"))
        .collect::<Vec<_>>()
        .join(" ");
    let lag = format!("{} entries, {} ms", s.lag_entries, s.lag_ms);
    let replication = s
        .replication
        .iter()
        .map(|(id, p)| format!("node{id}: matched {} ({} behind)", opt(p.matched), p.behind))
        .collect::<Vec<_>>()
        .join("; ");
    let mut rows = vec![
        ("node".to_string(), format!("node{} at {}", s.node_id, s.addr)),
        ("role".to_string(), s.role.clone()),
        ("term".to_string(), s.term.to_string()),
        ("leader".to_string(), leader),
        ("last log index".to_string(), opt(s.last_log_index)),
        ("committed".to_string(), opt(s.committed)),
        ("applied".to_string(), opt(s.applied)),
        ("snapshot index".to_string(), opt(s.snapshot_index)),
        ("purged index".to_string(), opt(s.purged_index)),
        ("members".to_string(), members),
        ("tables".to_string(), s.tables.to_string()),
        ("items".to_string(), s.items.to_string()),
        ("initialized".to_string(), s.initialized.to_string()),
        ("lag".to_string(), lag),
        ("digest".to_string(), format!("{} at index {}", s.digest, s.digest_index)),
        ("apply delay".to_string(), format!("{} ms", s.apply_delay_ms)),
    ];
    if !replication.is_empty() {
        rows.push(("replication".to_string(), replication));
    }
    if let Some(f) = &s.faults {
        rows.push(("faults".to_string(), serde_json::to_string(f).unwrap_or_default()));
    }
    fields(rows)
}
