//! `augur-kernels`: Augur's GPU hash table, its CUDA kernels and a CPU reference
//! of the same table.
//!
//! The table is a bucketed cuckoo hash table in the style of BGHT: 64-bit key
//! fingerprints, two hash functions, 16-slot buckets probed by one half-warp,
//! bounded relocation chains, and CLOCK eviction so a full table keeps working.
//! Full keys and values live in a size-class slab arena, and a find compares the
//! full key before answering. `docs/gpu-table.md` describes the layout.
//!
//! # Layout
//! - [`layout`]: constants and hash functions, the one source of truth for both
//!   sides (the kernels get them as `-D` defines).
//! - [`cpu`]: [`CpuTable`], the reference fingerprint index.
//! - [`batch`]: the de-duplication every backend applies to a batch.
//! - [`slab`]: the record format and the host-side size-class allocator.
//! - [`kv`]: [`KvTable`], full keys and values over a [`KvBackend`] (CPU or GPU).
//! - [`nvrtc`]: run-time compilation of `cuda/*.cu` to cubin or PTX.
//! - [`gpu`]: the safe GPU probe, the CUDA index ([`GpuTable`]) and the CUDA
//!   backend of [`KvTable`].
//!
//! Nothing here needs a GPU to build or to test: without one, [`gpu::GpuDevice::open`]
//! returns [`KernelError::NoGpu`] and the GPU tests print a `SKIP` line.

pub mod batch;
pub mod cpu;
mod error;
pub mod gpu;
pub mod kv;
pub mod layout;
pub mod nvrtc;
pub mod slab;

pub use batch::{InsertReport, InsertStatus};
pub use cpu::{CpuTable, TableState};
pub use error::{KernelError, KernelResult};
pub use gpu::{GpuDevice, GpuKvBackend, GpuTable};
pub use kv::{cpu_kv_table, CpuKvBackend, Found, KvBackend, KvConfig, KvItem, KvTable};
