use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = raft_nosql::cli::Cli::parse();
    raft_nosql::cli::main(cli)
}
