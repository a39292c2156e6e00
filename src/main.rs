//! The `mcp-audit` binary: parses the command line and runs one command.

/// mimalloc instead of the system allocator: the ingest path allocates many short-lived strings
/// on several threads at once, where glibc's malloc spent ~15% of the collector's CPU.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    mcp_audit::cli::main()
}
