use clap::Parser;

/// jemalloc instead of glibc's malloc: allocation is a large share of a node's CPU on
/// the request path, and jemalloc is markedly cheaper there (see BENCHMARKS.md).
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc settings, read at start-up: two arenas serve two cores without contention
/// and keep a node's resident memory small; a background thread returns freed pages to
/// the OS within about a second (`dirty_decay_ms`), so a burst (a snapshot, a load
/// spike) does not stay resident for good.
#[allow(non_upper_case_globals)]
#[export_name = "_rjem_malloc_conf"]
pub static malloc_conf: &[u8] =
    b"background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0,narenas:2\0";

fn main() -> std::process::ExitCode {
    let cli = raft_nosql::cli::Cli::parse();
    // reqwest builds a rustls configuration for every client, plain http or not.
    raft_nosql::tls::install_provider();
    raft_nosql::cli::main(cli)
}
