use clap::Parser;

fn main() -> std::process::ExitCode {
    limit_malloc_arenas();
    let cli = raft_nosql::cli::Cli::parse();
    raft_nosql::cli::main(cli)
}

/// glibc gives busy threads their own malloc arenas (up to 8 per core), and every arena
/// keeps the memory it once held. Two arenas serve two cores without contention and
/// keep a node's resident memory small.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator tunable; it runs before any other thread.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}
