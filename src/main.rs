//! The `mcp-audit` binary: parses the command line and runs one command.

fn main() -> std::process::ExitCode {
    mcp_audit::cli::main()
}
