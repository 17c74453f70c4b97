use clap::Parser;

/// mimalloc instead of the system allocator: the request path allocates many small,
/// short-lived buffers, which glibc's malloc serves with more CPU and more retained memory.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = raft_nosql::cli::Cli::parse();
    raft_nosql::cli::main(cli)
}
