//! Compiles `proto/motstream/v1/*.proto` with protox (pure Rust), so building needs no system
//! `protoc`. The file descriptor set is kept for gRPC server reflection.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let files: Vec<PathBuf> = std::fs::read_dir(root.join("motstream/v1"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "proto"))
        .collect();
    // Relative to this crate, not absolute: cargo keys a path crate's build output by its
    // contents, not its checkout, so two checkouts sharing a target dir share this script's
    // run, and an absolute path would let one checkout's untouched protos mark the other's
    // edited ones fresh.
    println!("cargo:rerun-if-changed=../../proto/motstream/v1");
    for f in &files {
        if let Some(name) = f.file_name() {
            println!(
                "cargo:rerun-if-changed=../../proto/motstream/v1/{}",
                name.to_string_lossy()
            );
        }
    }
    let fds = protox::compile(&files, [&root])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out.join("motstream_descriptor.bin"),
        prost::Message::encode_to_vec(&fds),
    )?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds(fds)?;
    Ok(())
}
