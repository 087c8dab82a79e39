fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A vendored protoc: a fresh machine needs no system install.
    std::env::set_var("PROTOC", protoc_bin_vendored::protoc_bin_path()?);
    let protos = [
        "proto/lvs/v1/model.proto",
        "proto/lvs/v1/admin.proto",
        "proto/lvs/v1/cluster.proto",
        "proto/lvs/v1/agent.proto",
        "proto/lvs/raft/v1/raft.proto",
    ];
    tonic_prost_build::configure()
        .file_descriptor_set_path(
            std::path::PathBuf::from(std::env::var("OUT_DIR")?).join("lvs_descriptor.bin"),
        )
        .compile_protos(&protos, &["proto"])?;
    for p in protos {
        println!("cargo:rerun-if-changed={p}");
    }
    Ok(())
}
