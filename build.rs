//! Generates the gRPC code from `proto/` into OUT_DIR with a vendored protoc, so a fresh
//! `cargo build` needs nothing installed by hand.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // SAFETY of intent: build scripts are single-threaded; setting PROTOC here only affects
    // this process, which is how prost-build finds the compiler.
    std::env::set_var("PROTOC", protoc);
    println!("cargo:rerun-if-changed=proto/mcpaudit/v1/ingest.proto");
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // Malformed protobuf is the client's fault: INVALID_ARGUMENT, not INTERNAL.
        .codec_path("crate::ingest::codec::StrictCodec")
        .compile_protos(&["proto/mcpaudit/v1/ingest.proto"], &["proto"])?;
    Ok(())
}
