//! `mcp-audit serve` refuses a bad configuration with one line naming the key and where the
//! value came from (file, environment variable or flag); the real binary, run to its exit.

use std::process::Command;

/// Runs `mcp-audit serve ARGS` with `ENV` (and no other `MCP_AUDIT_*` variables); returns
/// whether it failed and its stderr.
fn serve(args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mcp-audit"));
    cmd.arg("serve")
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("MCP_AUDIT_") {
            cmd.env_remove(k);
        }
    }
    cmd.envs(env.iter().copied());
    let out = cmd.output().unwrap();
    (
        !out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn type_errors_name_the_key_and_the_environment_variable() {
    let (failed, err) = serve(
        &[
            "--grpc-listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
        ],
        &[("MCP_AUDIT_INDEX_WRITER_THREADS", "abc")],
    );
    assert!(failed);
    assert_eq!(
        err.trim(),
        "error: `index.writer_threads`: invalid type: string \"abc\", expected a whole number (env MCP_AUDIT_INDEX_WRITER_THREADS)"
    );
}

#[test]
fn file_errors_name_the_key_and_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.toml");
    std::fs::write(&file, "[http]\nheader_timeout_ms = \"soon\"\n").unwrap();
    let file = file.to_str().unwrap();
    // Given by flag, and by `MCP_AUDIT_CONFIG` (which is not itself a config key).
    for (args, env) in [
        (vec!["--config", file], vec![]),
        (vec![], vec![("MCP_AUDIT_CONFIG", file)]),
    ] {
        let (failed, err) = serve(&args, &env);
        assert!(failed);
        assert_eq!(
            err.trim(),
            format!("error: `http.header_timeout_ms`: invalid type: string \"soon\", expected a whole number (file {file})")
        );
    }
}

#[test]
fn flag_errors_name_the_flag() {
    let (failed, err) = serve(&["--grpc-listen", "nowhere"], &[]);
    assert!(failed);
    assert_eq!(
        err.trim(),
        "error: `grpc.listen` must be a socket address like 127.0.0.1:8080, got \"nowhere\" (flag --grpc-listen)"
    );
}

#[test]
fn a_non_loopback_listener_without_credentials_is_refused() {
    // Bound for an instant and refused before anything is served.
    let (failed, err) = serve(
        &["--grpc-listen", "127.0.0.1:0", "--http-listen", "0.0.0.0:0"],
        &[],
    );
    assert!(failed);
    assert!(err.contains("`http.listen` is 0.0.0.0:"), "{err}");
    assert!(err.contains("--http-listen 127.0.0.1:"), "{err}");
    assert!(err.contains("no credential is configured"), "{err}");
    assert!(err.contains("mcp-audit token create"), "{err}");
}
