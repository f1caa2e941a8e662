//! Generated protobuf and gRPC types for motstream, from `proto/motstream/v1/`.
//!
//! This crate owns only generated code and the encoded file descriptor set (for gRPC server
//! reflection). Conversions to domain types live at the boundary in the crates that use them.

#![allow(missing_docs, clippy::all)]

/// `motstream.v1`: interaction events and the query API.
pub mod v1 {
    tonic::include_proto!("motstream.v1");
}

/// The encoded `FileDescriptorSet` of every motstream proto, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/motstream_descriptor.bin"));
