//! The table on a CUDA device, through cudarc with dynamic loading.
//!
//! Nothing here links against CUDA: the driver and NVRTC are loaded when first
//! used, so the crate builds and its CPU parts run on machines without either.
//! cudarc panics when a library it needs is missing, so [`GpuDevice::open`]
//! checks `is_culib_present()` before touching the driver, and every later failure
//! comes back as a [`KernelError`].
//!
//! # Streams
//!
//! All launches on a device go to one stream (the *compute* stream), in call
//! order. That is what lets the insert kernel skip locking against finds and
//! erases (see `cuda/fp_table.cu`): two kernels of one table never run at once.
//!
//! Host-to-device copies of a batch's inputs go to a second stream, the *copy*
//! stream, so the upload of one launch's inputs can run while the previous launch
//! is still on the GPU (for example the index inputs of `fp_insert` while
//! `kv_scatter` writes the records, or one chunk of records while the previous
//! chunk is scattered). Device-to-host copies of results stay on the compute
//! stream, right behind the kernel that wrote them, and the host waits for them
//! at once.
//!
//! # Pinned staging buffers
//!
//! Every batch goes through page-locked ("pinned") host memory that a table keeps
//! between calls (`Io`): the host writes the batch there, the copy engine reads it
//! with DMA. Each buffer grows on demand to at least twice its size, so a run of
//! batches allocates O(log largest batch) times and never shrinks. Upload buffers
//! are write-combined (the host only writes them); download buffers are not (the
//! host reads them).
//!
//! Copies from pinned memory are asynchronous, so three orders are kept:
//! 1. *the host does not rewrite staging memory a copy is still reading*: each
//!    upload slot records an event on the copy stream after its copy, and the host
//!    waits for that event before writing the slot again (`Upload::stage`);
//! 2. *a kernel does not read an input before its copy is done*: right after a
//!    copy, the compute stream waits for the same event, so every launch enqueued
//!    after the upload runs after the copy (`Upload::send`); work already on the
//!    compute stream is not held back, which is the overlap;
//! 3. *a copy does not overwrite a device input a kernel is still reading*, and a
//!    device buffer is not freed while a kernel reads it: cudarc's own per-buffer
//!    events do this once a context has a second stream (a launch records each
//!    buffer argument's read event, `memcpy_htod` and `Drop` make their stream
//!    wait for it; `cudarc/src/driver/safe/launch.rs`, `PushKernelArg`, and
//!    `core.rs`, `DevicePtrMut for CudaSlice`). Uploads of different launches of
//!    one call use different slots, so this never makes a copy wait for the kernel
//!    it is meant to overlap.
//!
//! Downloads go to pinned memory on the compute stream and the host synchronizes
//! the stream before reading it (`Downloads::fetch`).

use std::sync::Arc;

use cudarc::driver::sys::CU_MEMHOSTALLOC_WRITECOMBINED;
use cudarc::driver::{
    CudaContext, CudaEvent, CudaFunction, CudaModule, CudaSlice, CudaStream, DeviceRepr, LaunchConfig, PinnedHostSlice,
    PushKernelArg, ValidAsZeroBits,
};
use cudarc::nvrtc::Ptx;

use crate::batch::{self, InsertReport};
use crate::cpu::{buckets_for_capacity, TableState};
use crate::error::{KernelError, KernelResult};
use crate::kv::{Hit, KvBackend, KvConfig, KvTable};
use crate::layout::{NO_PAYLOAD, SLOTS_PER_BUCKET};
use crate::nvrtc::{self, Source, Target};

/// Threads per block: 16 half-warp tiles.
const BLOCK: u32 = 256;

/// How a module reached the device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageKind {
    /// Native code for the device's own architecture.
    Cubin(String),
    /// PTX, JIT-compiled by the driver (NVRTC did not know the architecture, or
    /// the cubin did not load). The reason is kept for the log.
    Ptx {
        /// The PTX's `compute_XY`.
        arch: String,
        /// Why not a cubin.
        why: String,
    },
}

/// What was found at [`GpuDevice::open`].
#[derive(Debug, Clone)]
pub struct GpuInfo {
    /// Device name, e.g. "NVIDIA H100 80GB HBM3".
    pub name: String,
    /// Compute capability (major, minor).
    pub compute_capability: (i32, i32),
    /// Device memory in bytes.
    pub total_memory: usize,
    /// NVRTC version used for the kernels.
    pub nvrtc: (i32, i32),
    /// How the kernels were loaded.
    pub image: ImageKind,
}

/// One line for logs and benchmark headers: name, compute capability, memory, NVRTC.
impl std::fmt::Display for GpuInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} (sm_{}{}), {:.1} GiB, NVRTC {}.{}, kernels as {:?}",
            self.name,
            self.compute_capability.0,
            self.compute_capability.1,
            self.total_memory as f64 / (1u64 << 30) as f64,
            self.nvrtc.0,
            self.nvrtc.1,
            self.image
        )
    }
}

#[derive(Debug)]
struct Kernels {
    fp_insert: CudaFunction,
    fp_find: CudaFunction,
    fp_erase: CudaFunction,
    kv_find: CudaFunction,
    kv_erase: CudaFunction,
    kv_scatter: CudaFunction,
    kv_gather: CudaFunction,
}

/// An opened device with the kernels loaded.
#[derive(Debug)]
pub struct GpuDevice {
    ctx: Arc<CudaContext>,
    /// Every launch, every download (in call order).
    stream: Arc<CudaStream>,
    /// Uploads only; ordered before the launches that read them by events.
    copy: Arc<CudaStream>,
    kernels: Kernels,
    info: GpuInfo,
}

/// True when the CUDA driver library can be loaded (no device check). Cheap and
/// never panics.
pub fn driver_present() -> bool {
    // SAFETY: only tries to dlopen the candidate library names; returns a bool.
    unsafe { cudarc::driver::sys::is_culib_present() }
}

/// Loads one source for `cc`: cubin first, PTX if NVRTC or the driver refuses it.
fn load_source(ctx: &Arc<CudaContext>, source: &Source, cc: u32) -> KernelResult<(Arc<CudaModule>, ImageKind)> {
    let cubin_error = match nvrtc::compile(source, Target::Cubin(cc), &[]) {
        Ok(c) => match ctx.load_module(Ptx::from_binary(c.image)) {
            Ok(m) => return Ok((m, ImageKind::Cubin(format!("sm_{cc}")))),
            Err(e) => format!("cubin for sm_{cc} did not load: {e}"),
        },
        Err(e) => format!("no cubin for sm_{cc}: {e}"),
    };
    // The newest virtual architecture NVRTC knows that the device can run.
    let ptx_cc = nvrtc::supported_archs()?.into_iter().filter(|&a| a <= cc).max().unwrap_or(cc);
    let ptx = nvrtc::compile(source, Target::Ptx(ptx_cc), &[])?;
    let text = String::from_utf8(ptx.image).map_err(|_| KernelError::Invalid("NVRTC produced non-UTF-8 PTX".into()))?;
    let module = ctx.load_module(Ptx::from_src(text)).map_err(KernelError::driver("loading PTX"))?;
    Ok((module, ImageKind::Ptx { arch: format!("compute_{ptx_cc}"), why: cubin_error }))
}

fn function(module: &Arc<CudaModule>, name: &str) -> KernelResult<CudaFunction> {
    module.load_function(name).map_err(KernelError::driver("looking up a kernel"))
}

fn launch_config(items: u64) -> KernelResult<LaunchConfig> {
    let threads = items
        .checked_mul(SLOTS_PER_BUCKET as u64)
        .ok_or_else(|| KernelError::Invalid(format!("batch of {items} items is too large")))?;
    let blocks = u32::try_from(threads.div_ceil(u64::from(BLOCK)))
        .map_err(|_| KernelError::Invalid(format!("batch of {items} items is too large for one launch")))?;
    Ok(LaunchConfig { grid_dim: (blocks, 1, 1), block_dim: (BLOCK, 1, 1), shared_mem_bytes: 0 })
}

/// Records per `kv_scatter` launch are cut so that one chunk's staging bytes stay
/// within this: the copy of chunk k + 1 runs while chunk k is scattered, and the
/// record staging memory stays bounded (two slots of at most this size).
const SCATTER_CHUNK_BYTES: u64 = 4 << 20;

/// Smallest staging allocation in bytes, so small batches do not regrow a buffer
/// several times.
const MIN_STAGING_BYTES: usize = 64 << 10;

impl GpuDevice {
    /// Opens device `ordinal` and compiles the kernels for it. Without a driver,
    /// a device or NVRTC this is an error (never a panic), and
    /// [`KernelError::NoGpu`] says why in one line.
    pub fn open(ordinal: usize) -> KernelResult<Arc<Self>> {
        if !driver_present() {
            return Err(KernelError::NoGpu { reason: "CUDA driver library (libcuda.so) not found".into() });
        }
        let ctx =
            CudaContext::new(ordinal).map_err(|e| KernelError::NoGpu { reason: format!("device {ordinal}: {e}") })?;
        let (major, minor) = ctx.compute_capability().map_err(KernelError::driver("reading the compute capability"))?;
        let name = ctx.name().map_err(KernelError::driver("reading the device name"))?;
        let total_memory = ctx.total_mem().map_err(KernelError::driver("reading the memory size"))?;
        let nvrtc_version = nvrtc::version()?;
        let cc = u32::try_from(major * 10 + minor).map_err(|_| KernelError::Invalid("compute capability".into()))?;
        let (fp_module, image) = load_source(&ctx, &nvrtc::FP_TABLE, cc)?;
        let (kv_module, _) = load_source(&ctx, &nvrtc::KV, cc)?;
        let kernels = Kernels {
            fp_insert: function(&fp_module, "fp_insert")?,
            fp_find: function(&fp_module, "fp_find")?,
            fp_erase: function(&fp_module, "fp_erase")?,
            kv_find: function(&kv_module, "kv_find")?,
            kv_erase: function(&kv_module, "kv_erase")?,
            kv_scatter: function(&kv_module, "kv_scatter")?,
            kv_gather: function(&kv_module, "kv_gather")?,
        };
        let stream = ctx.default_stream();
        // A non-blocking stream: it does not synchronize implicitly with `stream`,
        // only through the events of the module docs. Creating it puts cudarc in
        // multi-stream mode (every buffer then records its uses with events); it is
        // created before any buffer, so every buffer of this device is tracked.
        let copy = ctx.new_stream().map_err(KernelError::driver("creating the copy stream"))?;
        let info = GpuInfo { name, compute_capability: (major, minor), total_memory, nvrtc: nvrtc_version, image };
        Ok(Arc::new(Self { ctx, stream, copy, kernels, info }))
    }

    /// What was found.
    pub fn info(&self) -> &GpuInfo {
        &self.info
    }

    /// The stream every launch goes to (and every download).
    pub fn stream(&self) -> &Arc<CudaStream> {
        &self.stream
    }

    /// The stream uploads go to (see the module docs).
    pub fn copy_stream(&self) -> &Arc<CudaStream> {
        &self.copy
    }

    fn zeros<T: DeviceRepr + ValidAsZeroBits>(&self, n: usize) -> KernelResult<CudaSlice<T>> {
        self.stream.alloc_zeros(n.max(1)).map_err(KernelError::driver("allocating device memory"))
    }

    /// The first `n` items of `data` in pageable memory, on the compute stream. The
    /// driver returns from a copy to pageable memory once it is done, so no explicit
    /// wait is needed. For the table's memory image only (too large to stage).
    fn read_all<T: DeviceRepr>(&self, data: &CudaSlice<T>, n: usize) -> KernelResult<Vec<T>> {
        let mut v = self.stream.clone_dtoh(data).map_err(KernelError::driver("copying from the device"))?;
        v.truncate(n);
        Ok(v)
    }
}

/// Page-locked host memory kept between calls, grown by doubling.
#[derive(Debug)]
struct Pinned<T> {
    buf: Option<PinnedHostSlice<T>>,
    /// `cuMemHostAlloc` flags.
    flags: u32,
}

impl<T: DeviceRepr + ValidAsZeroBits> Pinned<T> {
    fn new(flags: u32) -> Self {
        Self { buf: None, flags }
    }

    fn capacity(&self) -> usize {
        self.buf.as_ref().map_or(0, PinnedHostSlice::len)
    }

    /// The first `n` items, for writing; when `n` does not fit, the memory is first
    /// replaced by at least twice as much (the old contents are not kept). The
    /// caller has waited for every copy that uses this memory.
    fn prefix_mut(&mut self, ctx: &Arc<CudaContext>, n: usize) -> KernelResult<&mut [T]> {
        if n == 0 {
            return Ok(&mut []);
        }
        if n > self.capacity() {
            let min = (MIN_STAGING_BYTES / std::mem::size_of::<T>().max(1)).max(1);
            let cap = n.max(self.capacity().saturating_mul(2)).max(min);
            self.buf = None;
            // SAFETY: the call is unsafe because the memory comes back uninitialised;
            // it is zeroed below before any slice over it is made.
            let mut buf = unsafe { ctx.alloc_pinned_with_flags::<T>(cap, self.flags) }
                .map_err(KernelError::driver("allocating pinned host memory"))?;
            let ptr = buf.as_mut_ptr().map_err(KernelError::driver("allocating pinned host memory"))?;
            // SAFETY: `ptr` is the start of the `cap` items of `T` just allocated
            // (non-null and aligned: alloc_pinned_with_flags asserts both), owned by
            // `buf` and not referenced yet; all-zero bytes are a valid `T`
            // (`ValidAsZeroBits`), so every later slice over it is initialised.
            unsafe { std::ptr::write_bytes(ptr, 0, cap) };
            self.buf = Some(buf);
        }
        let buf = self.buf.as_mut().ok_or_else(|| KernelError::Invalid("staging memory missing".into()))?;
        let all = buf.as_mut_slice().map_err(KernelError::driver("using pinned host memory"))?;
        Ok(&mut all[..n])
    }

    /// The first `n` items, for reading.
    fn prefix(&self, n: usize) -> KernelResult<&[T]> {
        if n == 0 {
            return Ok(&[]);
        }
        let all = match &self.buf {
            Some(buf) => buf.as_slice().map_err(KernelError::driver("using pinned host memory"))?,
            None => &[],
        };
        all.get(..n).ok_or_else(|| KernelError::Invalid(format!("{n} items staged, {} held", all.len())))
    }
}

/// One input of a launch: pinned staging memory, the device buffer the kernels read
/// (allocated on the copy stream, at least as large as the staging memory), and the
/// event recorded on the copy stream after the last copy out of the staging memory.
#[derive(Debug)]
struct Upload<T> {
    host: Pinned<T>,
    dev: Option<CudaSlice<T>>,
    copied: CudaEvent,
}

impl<T> Drop for Upload<T> {
    fn drop(&mut self) {
        // The pinned memory is freed next: no copy may still be reading it. (Errors
        // here mean the context is gone, and the copy with it.)
        let _ = self.copied.synchronize();
    }
}

impl<T: DeviceRepr + ValidAsZeroBits + Copy> Upload<T> {
    fn new(dev: &GpuDevice) -> KernelResult<Self> {
        let copied = dev.ctx.new_event(None).map_err(KernelError::driver("creating an event"))?;
        Ok(Self { host: Pinned::new(CU_MEMHOSTALLOC_WRITECOMBINED), dev: None, copied })
    }

    /// Writes `n` items into the staging memory with `fill`, after waiting for the
    /// last copy out of it (order 1 of the module docs).
    fn stage(&mut self, dev: &GpuDevice, n: usize, fill: impl FnOnce(&mut [T])) -> KernelResult<()> {
        self.copied.synchronize().map_err(KernelError::driver("waiting for an upload"))?;
        fill(self.host.prefix_mut(&dev.ctx, n)?);
        Ok(())
    }

    /// Copies the `n` staged items to `dst` on the copy stream, then makes the
    /// compute stream wait for that copy (order 2): every launch enqueued from now
    /// on runs after it, and what is already enqueued runs beside it.
    fn send(&self, dev: &GpuDevice, n: usize, dst: &mut CudaSlice<T>) -> KernelResult<()> {
        if n == 0 {
            return Ok(());
        }
        if dst.len() < n {
            return Err(KernelError::Invalid(format!("{n} items do not fit a device buffer of {}", dst.len())));
        }
        // A `&[T]` source: cudarc copies exactly its length (a whole PinnedHostSlice
        // would copy the whole capacity), and the event below does the ordering.
        dev.copy.memcpy_htod(self.host.prefix(n)?, dst).map_err(KernelError::driver("copying to the device"))?;
        self.copied.record(&dev.copy).map_err(KernelError::driver("recording an event"))?;
        dev.stream.wait(&self.copied).map_err(KernelError::driver("ordering a launch after its upload"))
    }

    /// Uploads `n` items written by `fill` into this slot's device buffer (grown
    /// with the staging memory) and returns the buffer; the kernel gets `n`.
    fn put_with(&mut self, dev: &GpuDevice, n: usize, fill: impl FnOnce(&mut [T])) -> KernelResult<&CudaSlice<T>> {
        self.stage(dev, n, fill)?;
        let mut buf = match self.dev.take() {
            Some(buf) if buf.len() >= n => buf,
            old => {
                // Dropping the old buffer frees it on the copy stream once the kernels
                // reading it are done (order 3).
                drop(old);
                let len = self.host.capacity().max(n).max(1);
                dev.copy.alloc_zeros::<T>(len).map_err(KernelError::driver("allocating device memory"))?
            }
        };
        let sent = self.send(dev, n, &mut buf);
        let buf = self.dev.insert(buf);
        sent?;
        Ok(&*buf)
    }

    /// [`Upload::put_with`] of a slice.
    fn put(&mut self, dev: &GpuDevice, data: &[T]) -> KernelResult<&CudaSlice<T>> {
        self.put_with(dev, data.len(), |h| h.copy_from_slice(data))
    }

    /// Uploads `data` into `dst`, a buffer the caller owns.
    fn copy_to(&mut self, dev: &GpuDevice, data: &[T], dst: &mut CudaSlice<T>) -> KernelResult<()> {
        self.stage(dev, data.len(), |h| h.copy_from_slice(data))?;
        self.send(dev, data.len(), dst)
    }
}

/// The inputs of one `kv_scatter` launch.
#[derive(Debug)]
struct ScatterSlot {
    bytes: Upload<u8>,
    offsets: Upload<u64>,
    dst: Upload<u64>,
}

impl ScatterSlot {
    fn new(dev: &GpuDevice) -> KernelResult<Self> {
        Ok(Self { bytes: Upload::new(dev)?, offsets: Upload::new(dev)?, dst: Upload::new(dev)? })
    }
}

/// Pinned memory results are copied into, one buffer per item type.
#[derive(Debug)]
struct Downloads {
    u64s: Pinned<u64>,
    u32s: Pinned<u32>,
    bytes: Pinned<u8>,
}

/// A result item type and its download buffer.
trait Word: DeviceRepr + ValidAsZeroBits + Copy {
    fn buffer(d: &mut Downloads) -> &mut Pinned<Self>;
}

impl Word for u64 {
    fn buffer(d: &mut Downloads) -> &mut Pinned<Self> {
        &mut d.u64s
    }
}

impl Word for u32 {
    fn buffer(d: &mut Downloads) -> &mut Pinned<Self> {
        &mut d.u32s
    }
}

impl Word for u8 {
    fn buffer(d: &mut Downloads) -> &mut Pinned<Self> {
        &mut d.bytes
    }
}

impl Downloads {
    fn new() -> Self {
        // Not write-combined: the host reads these.
        Self { u64s: Pinned::new(0), u32s: Pinned::new(0), bytes: Pinned::new(0) }
    }

    /// The first `n` items of `src`, copied through pinned memory on the compute
    /// stream (behind the kernel that wrote them). Waits for the copy.
    fn fetch<T: Word>(&mut self, dev: &GpuDevice, src: &CudaSlice<T>, n: usize) -> KernelResult<Vec<T>> {
        if n == 0 {
            return Ok(Vec::new());
        }
        let view = src
            .try_slice(..n)
            .ok_or_else(|| KernelError::Invalid(format!("{n} items asked of a device buffer of {}", src.len())))?;
        let pinned = T::buffer(self);
        // A `&mut [T]` of exactly `n`: cudarc copies the destination's length.
        let host = pinned.prefix_mut(&dev.ctx, n)?;
        dev.stream.memcpy_dtoh(&view, host).map_err(KernelError::driver("copying from the device"))?;
        // A copy into pinned memory returns before it is done: wait before reading.
        dev.stream.synchronize().map_err(KernelError::driver("waiting for a download"))?;
        Ok(pinned.prefix(n)?.to_vec())
    }
}

/// A table's staging buffers and device input buffers (see the module docs). The
/// launches of one call take their inputs from different slots, so an upload never
/// waits for the kernel it is meant to overlap.
#[derive(Debug)]
struct Io {
    /// Per-item keys of a launch: fingerprints, or `kv_gather`'s handles.
    items: Upload<u64>,
    /// The second per-item input: payloads, expected payloads, key offsets or
    /// output offsets.
    args: Upload<u64>,
    /// Query key bytes of `kv_find` / `kv_erase`.
    keys: Upload<u8>,
    /// `kv_scatter` inputs, two sets used in turn: chunk k + 1 is uploaded while
    /// chunk k is scattered.
    scatter: [ScatterSlot; 2],
    /// Results.
    down: Downloads,
}

impl Io {
    fn new(dev: &GpuDevice) -> KernelResult<Self> {
        Ok(Self {
            items: Upload::new(dev)?,
            args: Upload::new(dev)?,
            keys: Upload::new(dev)?,
            scatter: [ScatterSlot::new(dev)?, ScatterSlot::new(dev)?],
            down: Downloads::new(),
        })
    }
}

/// Checks that every buffer holds at least `n` items (what a launch over `n` reads).
fn check_fits(n: usize, buffers: &[(&str, usize)]) -> KernelResult<()> {
    match buffers.iter().find(|(_, len)| *len < n) {
        Some((what, len)) => Err(KernelError::Invalid(format!("{n} items but {len} {what}"))),
        None => Ok(()),
    }
}

/// Checks `n + 1` non-decreasing offsets into `bytes` bytes (item `i` is
/// `offsets[i]..offsets[i + 1]`), as the key/value kernels read them.
fn check_offsets(what: &str, offsets: &[u64], n: usize, bytes: usize) -> KernelResult<()> {
    if offsets.len() != n + 1 {
        return Err(KernelError::Invalid(format!("{n} {what}s need {} offsets, got {}", n + 1, offsets.len())));
    }
    if offsets.windows(2).any(|w| w[0] > w[1]) || offsets[n] > bytes as u64 {
        return Err(KernelError::Invalid(format!("{what} offsets out of order or past {bytes} bytes")));
    }
    Ok(())
}

/// Data already on the device, for timing kernels without the copies.
#[derive(Debug)]
pub struct DeviceBuffer {
    data: CudaSlice<u64>,
    len: usize,
}

impl DeviceBuffer {
    /// Items.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// The index arrays in device memory.
#[derive(Debug)]
struct Index {
    buckets: u64,
    fps: CudaSlice<u64>,
    payloads: CudaSlice<u64>,
    meta: CudaSlice<u32>,
}

/// The outputs of `fp_insert`.
#[derive(Debug)]
struct InsertOut {
    status: CudaSlice<u32>,
    released: CudaSlice<u64>,
}

impl InsertOut {
    fn zeros(dev: &GpuDevice, n: usize) -> KernelResult<Self> {
        Ok(Self { status: dev.zeros(n)?, released: dev.zeros(n)? })
    }
}

impl Index {
    /// Launches fp_insert over the first `n` items. The caller allocates the
    /// outputs, so a timed launch times the kernel alone.
    fn launch_insert(
        &mut self,
        dev: &GpuDevice,
        fps: &CudaSlice<u64>,
        payloads: &CudaSlice<u64>,
        n: usize,
        out: &mut InsertOut,
        max_chain: u32,
    ) -> KernelResult<()> {
        check_fits(
            n,
            &[
                ("fingerprints", fps.len()),
                ("payloads", payloads.len()),
                ("status slots", out.status.len()),
                ("released slots", out.released.len()),
            ],
        )?;
        let n = n as u64;
        let cfg = launch_config(n)?;
        let mut b = dev.stream.launch_builder(&dev.kernels.fp_insert);
        b.arg(&mut self.fps)
            .arg(&mut self.payloads)
            .arg(&mut self.meta)
            .arg(&self.buckets)
            .arg(fps)
            .arg(payloads)
            .arg(&mut out.status)
            .arg(&mut out.released)
            .arg(&n)
            .arg(&max_chain);
        // SAFETY: the arguments match fp_insert's signature in cuda/fp_table.cu
        // (three table arrays, bucket count, two input arrays of `n`, two output
        // arrays of `n`, n, max_chain); every array holds at least `n` items
        // (checked above) and the table arrays `buckets * 16` (meta: `buckets`).
        // The caller guarantees distinct non-zero fingerprints in the first `n`, the
        // kernel's documented precondition.
        unsafe { b.launch(cfg) }.map_err(KernelError::driver("launching fp_insert"))?;
        Ok(())
    }

    fn launch_find(
        &mut self,
        dev: &GpuDevice,
        fps: &CudaSlice<u64>,
        n: usize,
        out: &mut CudaSlice<u64>,
    ) -> KernelResult<()> {
        check_fits(n, &[("fingerprints", fps.len()), ("result slots", out.len())])?;
        let n = n as u64;
        let cfg = launch_config(n)?;
        let mut b = dev.stream.launch_builder(&dev.kernels.fp_find);
        b.arg(&self.fps).arg(&self.payloads).arg(&mut self.meta).arg(&self.buckets).arg(fps).arg(out).arg(&n);
        // SAFETY: matches fp_find's signature; `fps` and `out` hold at least `n`
        // items (checked above).
        unsafe { b.launch(cfg) }.map_err(KernelError::driver("launching fp_find"))?;
        Ok(())
    }
}

/// The fingerprint index in device memory (the same layout as [`crate::CpuTable`]).
#[derive(Debug)]
pub struct GpuTable {
    dev: Arc<GpuDevice>,
    index: Index,
    io: Io,
}

impl GpuTable {
    /// A table with room for at least `slots` entries.
    pub fn with_capacity(dev: Arc<GpuDevice>, slots: u64) -> KernelResult<Self> {
        let buckets = buckets_for_capacity(slots)?;
        let n = usize::try_from(buckets * SLOTS_PER_BUCKET as u64)
            .map_err(|_| KernelError::Config(format!("{slots} slots do not fit in memory")))?;
        let index = Index { fps: dev.zeros(n)?, payloads: dev.zeros(n)?, meta: dev.zeros(buckets as usize)?, buckets };
        let io = Io::new(&dev)?;
        Ok(Self { dev, index, io })
    }

    /// Buckets.
    pub fn buckets(&self) -> u64 {
        self.index.buckets
    }

    /// Slots.
    pub fn capacity(&self) -> u64 {
        self.index.buckets * SLOTS_PER_BUCKET as u64
    }

    /// Copies a batch to new device memory the caller keeps (through the staging
    /// memory and the copy stream, like every upload).
    pub fn upload(&mut self, data: &[u64]) -> KernelResult<DeviceBuffer> {
        let mut buf = self
            .dev
            .copy
            .alloc_zeros::<u64>(data.len().max(1))
            .map_err(KernelError::driver("allocating device memory"))?;
        self.io.items.copy_to(&self.dev, data, &mut buf)?;
        Ok(DeviceBuffer { data: buf, len: data.len() })
    }

    /// Upserts a batch (validated and de-duplicated as the CPU reference does).
    pub fn insert(&mut self, fps: &[u64], payloads: &[u64], max_chain: u32) -> KernelResult<InsertReport> {
        batch::validate(fps, Some(payloads))?;
        let (launched, superseded) = batch::dedupe_last(fps);
        let l_fps: Vec<u64> = launched.iter().map(|&i| fps[i]).collect();
        let l_pay: Vec<u64> = launched.iter().map(|&i| payloads[i]).collect();
        let (status, released) = self.insert_unique(&l_fps, &l_pay, max_chain)?;
        batch::assemble_insert(fps.len(), &launched, &superseded, payloads, &status, &released)
    }

    /// Upserts fingerprints the caller guarantees distinct, non-zero, with valid
    /// payloads. Per item: status code and released payload.
    pub fn insert_unique(
        &mut self,
        fps: &[u64],
        payloads: &[u64],
        max_chain: u32,
    ) -> KernelResult<(Vec<u32>, Vec<u64>)> {
        if fps.is_empty() {
            return Ok((Vec::new(), Vec::new()));
        }
        if fps.len() != payloads.len() {
            return Err(KernelError::Invalid(format!("{} fingerprints but {} payloads", fps.len(), payloads.len())));
        }
        let n = fps.len();
        let dev = &*self.dev;
        let in_fps = self.io.items.put(dev, fps)?;
        let in_pay = self.io.args.put(dev, payloads)?;
        let mut out = InsertOut::zeros(dev, n)?;
        self.index.launch_insert(dev, in_fps, in_pay, n, &mut out, max_chain)?;
        let status = self.io.down.fetch(dev, &out.status, n)?;
        let released = self.io.down.fetch(dev, &out.released, n)?;
        Ok((status, released))
    }

    /// Looks up a batch: payload or [`NO_PAYLOAD`] per item.
    pub fn find(&mut self, fps: &[u64]) -> KernelResult<Vec<u64>> {
        if fps.is_empty() {
            return Ok(Vec::new());
        }
        let n = fps.len();
        let dev = &*self.dev;
        let q = self.io.items.put(dev, fps)?;
        let mut out = dev.zeros::<u64>(n)?;
        self.index.launch_find(dev, q, n, &mut out)?;
        self.io.down.fetch(dev, &out, n)
    }

    /// Erases a batch (with `expected`, only entries holding that payload).
    pub fn erase(&mut self, fps: &[u64], expected: Option<&[u64]>) -> KernelResult<Vec<u64>> {
        batch::validate(fps, None)?;
        if let Some(e) = expected {
            if e.len() != fps.len() {
                return Err(KernelError::Invalid(format!(
                    "{} fingerprints but {} expected payloads",
                    fps.len(),
                    e.len()
                )));
            }
        }
        let launched = batch::dedupe_first(fps);
        let mut out = vec![NO_PAYLOAD; fps.len()];
        if launched.is_empty() {
            return Ok(out);
        }
        let n = launched.len();
        let dev = &*self.dev;
        let q = self.io.items.put_with(dev, n, |h| {
            for (h, &i) in h.iter_mut().zip(&launched) {
                *h = fps[i];
            }
        })?;
        let exp = self.io.args.put_with(dev, n, |h| {
            for (h, &i) in h.iter_mut().zip(&launched) {
                *h = expected.map_or(0, |e| e[i]);
            }
        })?;
        let use_expected = u32::from(expected.is_some());
        let mut released = dev.zeros::<u64>(n)?;
        let n64 = n as u64;
        let cfg = launch_config(n64)?;
        let ix = &mut self.index;
        let mut b = dev.stream.launch_builder(&dev.kernels.fp_erase);
        b.arg(&mut ix.fps)
            .arg(&ix.payloads)
            .arg(&mut ix.meta)
            .arg(&ix.buckets)
            .arg(q)
            .arg(exp)
            .arg(&use_expected)
            .arg(&mut released)
            .arg(&n64);
        // SAFETY: matches fp_erase's signature; the inputs hold at least `n` items
        // (put_with sized them) and `released` `n`; fingerprints are distinct
        // (dedupe_first) and non-zero (validate).
        unsafe { b.launch(cfg) }.map_err(KernelError::driver("launching fp_erase"))?;
        let released = self.io.down.fetch(dev, &released, n)?;
        for (j, &i) in launched.iter().enumerate() {
            out[i] = released[j];
        }
        Ok(out)
    }

    /// Kernel time in seconds of one insert launch over data already on the device
    /// (distinct fingerprints required, as for [`GpuTable::insert_unique`]).
    pub fn time_insert(&mut self, fps: &DeviceBuffer, payloads: &DeviceBuffer, max_chain: u32) -> KernelResult<f64> {
        let n = fps.len.min(payloads.len);
        let mut out = InsertOut::zeros(&self.dev, n)?;
        let (start, end) = self.events()?;
        start.record(&self.dev.stream).map_err(KernelError::driver("recording an event"))?;
        self.index.launch_insert(&self.dev, &fps.data, &payloads.data, n, &mut out, max_chain)?;
        end.record(&self.dev.stream).map_err(KernelError::driver("recording an event"))?;
        Ok(f64::from(start.elapsed_ms(&end).map_err(KernelError::driver("timing a launch"))?) / 1e3)
    }

    /// Kernel time in seconds of one find launch over data already on the device.
    pub fn time_find(&mut self, fps: &DeviceBuffer) -> KernelResult<f64> {
        let mut out = self.dev.zeros::<u64>(fps.len)?;
        let (start, end) = self.events()?;
        start.record(&self.dev.stream).map_err(KernelError::driver("recording an event"))?;
        self.index.launch_find(&self.dev, &fps.data, fps.len, &mut out)?;
        end.record(&self.dev.stream).map_err(KernelError::driver("recording an event"))?;
        Ok(f64::from(start.elapsed_ms(&end).map_err(KernelError::driver("timing a launch"))?) / 1e3)
    }

    fn events(&self) -> KernelResult<(CudaEvent, CudaEvent)> {
        let flags = Some(cudarc::driver::sys::CUevent_flags::CU_EVENT_DEFAULT);
        let start = self.dev.ctx.new_event(flags).map_err(KernelError::driver("creating an event"))?;
        let end = self.dev.ctx.new_event(flags).map_err(KernelError::driver("creating an event"))?;
        Ok((start, end))
    }

    /// The table's memory image (canonical), for comparing with the reference.
    pub fn state(&self) -> KernelResult<TableState> {
        let n = self.capacity() as usize;
        Ok(TableState {
            fps: self.dev.read_all(&self.index.fps, n)?,
            payloads: self.dev.read_all(&self.index.payloads, n)?,
            meta: self.dev.read_all(&self.index.meta, self.index.buckets as usize)?,
        }
        .canonical())
    }
}

/// The CUDA backend of [`KvTable`]: the index and the record arena in device memory.
#[derive(Debug)]
pub struct GpuKvBackend {
    table: GpuTable,
    arena: CudaSlice<u8>,
    arena_bytes: u64,
}

impl GpuKvBackend {
    /// A backend on `dev` sized by `config`.
    pub fn new(dev: Arc<GpuDevice>, config: &KvConfig) -> KernelResult<Self> {
        let bytes = usize::try_from(config.arena_bytes).map_err(|_| KernelError::Config("arena too large".into()))?;
        let arena = dev.zeros::<u8>(bytes)?;
        Ok(Self { table: GpuTable::with_capacity(dev, config.index_slots)?, arena, arena_bytes: config.arena_bytes })
    }

    /// The device.
    pub fn device(&self) -> &Arc<GpuDevice> {
        &self.table.dev
    }
}

/// Uploads a batch of query keys: fingerprints, packed key bytes and `n + 1` offsets.
fn put_queries<'a>(
    io: &'a mut Io,
    dev: &GpuDevice,
    fps: &[u64],
    keys: &[u8],
    key_offsets: &[u64],
) -> KernelResult<(&'a CudaSlice<u64>, &'a CudaSlice<u8>, &'a CudaSlice<u64>)> {
    check_offsets("key", key_offsets, fps.len(), keys.len())?;
    let q = io.items.put(dev, fps)?;
    let k = io.keys.put(dev, keys)?;
    let o = io.args.put(dev, key_offsets)?;
    Ok((q, k, o))
}

/// Builds a GPU-backed key/value table on `dev`.
pub fn gpu_kv_table(dev: Arc<GpuDevice>, config: KvConfig) -> KernelResult<KvTable<GpuKvBackend>> {
    KvTable::new(GpuKvBackend::new(dev, &config)?, config)
}

impl KvBackend for GpuKvBackend {
    fn name(&self) -> &'static str {
        "cuda"
    }

    fn index_capacity(&self) -> u64 {
        self.table.capacity()
    }

    fn erase_handles(&mut self, fps: &[u64], handles: &[u64]) -> KernelResult<Vec<u64>> {
        self.table.erase(fps, Some(handles))
    }

    /// Uploads the records in chunks of at most `SCATTER_CHUNK_BYTES` through the
    /// two scatter slots in turn, one `kv_scatter` launch per chunk, and returns
    /// without waiting: the next launch (the index insert) is ordered after the
    /// scatters by the compute stream, and its inputs upload meanwhile.
    fn write_records(&mut self, staging: &[u8], offsets: &[u64], dst: &[u64]) -> KernelResult<()> {
        let n = dst.len();
        if n == 0 {
            return Ok(());
        }
        check_offsets("record", offsets, n, staging.len())?;
        for (i, &d) in dst.iter().enumerate() {
            let len = offsets[i + 1] - offsets[i];
            let inside = d.checked_add(len).is_some_and(|end| end <= self.arena_bytes);
            if !offsets[i].is_multiple_of(16) || !len.is_multiple_of(16) || !d.is_multiple_of(16) || !inside {
                return Err(KernelError::Invalid(format!(
                    "record {i} ({len} bytes to {d}) is not a 16-byte-aligned range inside the arena"
                )));
            }
        }
        let dev = &*self.table.dev;
        let slots = &mut self.table.io.scatter;
        let (mut first, mut chunk) = (0, 0);
        while first < n {
            // Records first..last: at least one, then as many as fit the chunk.
            let base = offsets[first];
            let mut last = first + 1;
            while last < n && offsets[last + 1] - base <= SCATTER_CHUNK_BYTES {
                last += 1;
            }
            let slot = &mut slots[chunk % 2];
            let src = slot.bytes.put(dev, &staging[base as usize..offsets[last] as usize])?;
            // Offsets relative to the chunk's first record (still 16-byte aligned).
            let offs = slot.offsets.put_with(dev, last - first + 1, |h| {
                for (h, &o) in h.iter_mut().zip(&offsets[first..=last]) {
                    *h = o - base;
                }
            })?;
            let dsts = slot.dst.put(dev, &dst[first..last])?;
            let m = (last - first) as u64;
            let mut b = dev.stream.launch_builder(&dev.kernels.kv_scatter);
            b.arg(&mut self.arena).arg(src).arg(offs).arg(dsts).arg(&m);
            // SAFETY: matches kv_scatter's signature; `offs` has m + 1 non-decreasing
            // entries into `src` (the chunk's bytes), each record 16-byte aligned and
            // padded (checked above; slab::encode_record), and every destination is a
            // 16-byte-aligned slab slot inside the arena holding its record (checked
            // above; the allocator chose the class by the record's size). Records of
            // one batch have distinct slots, so no two lanes write the same bytes.
            unsafe { b.launch(launch_config(m)?) }.map_err(KernelError::driver("launching kv_scatter"))?;
            first = last;
            chunk += 1;
        }
        Ok(())
    }

    fn insert_index(&mut self, fps: &[u64], handles: &[u64], max_chain: u32) -> KernelResult<(Vec<u32>, Vec<u64>)> {
        self.table.insert_unique(fps, handles, max_chain)
    }

    fn find_verified(&mut self, fps: &[u64], keys: &[u8], key_offsets: &[u64]) -> KernelResult<Vec<Hit>> {
        if fps.is_empty() {
            return Ok(Vec::new());
        }
        let n = fps.len();
        let dev = &*self.table.dev;
        let (q, k, o) = put_queries(&mut self.table.io, dev, fps, keys, key_offsets)?;
        let mut handle = dev.zeros::<u64>(n)?;
        let mut vlen = dev.zeros::<u32>(n)?;
        let mut flags = dev.zeros::<u32>(n)?;
        let n64 = n as u64;
        let t = &mut self.table.index;
        let mut b = dev.stream.launch_builder(&dev.kernels.kv_find);
        b.arg(&t.fps)
            .arg(&t.payloads)
            .arg(&mut t.meta)
            .arg(&t.buckets)
            .arg(&self.arena)
            .arg(q)
            .arg(k)
            .arg(o)
            .arg(&mut handle)
            .arg(&mut vlen)
            .arg(&mut flags)
            .arg(&n64);
        // SAFETY: matches kv_find's signature; `q` holds at least n fingerprints, `o`
        // n + 1 non-decreasing offsets into `k` (checked by put_queries); outputs
        // hold n items; every payload in the index is a handle of a record inside
        // the arena.
        unsafe { b.launch(launch_config(n64)?) }.map_err(KernelError::driver("launching kv_find"))?;
        let down = &mut self.table.io.down;
        let handle = down.fetch(dev, &handle, n)?;
        let vlen = down.fetch(dev, &vlen, n)?;
        let flags = down.fetch(dev, &flags, n)?;
        Ok((0..n).map(|i| Hit { handle: handle[i], value_len: vlen[i], flags: flags[i] }).collect())
    }

    fn gather(&mut self, handles: &[u64], out_offsets: &[u64]) -> KernelResult<Vec<u8>> {
        let total = out_offsets.last().copied().unwrap_or(0) as usize;
        if total == 0 || handles.is_empty() {
            return Ok(vec![0; total]);
        }
        let n = handles.len();
        check_offsets("value", out_offsets, n, total)?;
        let dev = &*self.table.dev;
        let io = &mut self.table.io;
        let h = io.items.put(dev, handles)?;
        let o = io.args.put(dev, out_offsets)?;
        let mut out = dev.zeros::<u8>(total)?;
        let n64 = n as u64;
        let mut b = dev.stream.launch_builder(&dev.kernels.kv_gather);
        b.arg(&self.arena).arg(h).arg(o).arg(&mut out).arg(&n64);
        // SAFETY: matches kv_gather's signature; `o` has n + 1 non-decreasing offsets
        // whose last is `out`'s length (checked above); each handle is ~0 or a record
        // in the arena whose value is as long as its output range (from the kv_find
        // just before).
        unsafe { b.launch(launch_config(n64)?) }.map_err(KernelError::driver("launching kv_gather"))?;
        io.down.fetch(dev, &out, total)
    }

    fn erase_verified(&mut self, fps: &[u64], keys: &[u8], key_offsets: &[u64]) -> KernelResult<Vec<u64>> {
        if fps.is_empty() {
            return Ok(Vec::new());
        }
        let n = fps.len();
        let dev = &*self.table.dev;
        let (q, k, o) = put_queries(&mut self.table.io, dev, fps, keys, key_offsets)?;
        let mut released = dev.zeros::<u64>(n)?;
        let n64 = n as u64;
        let t = &mut self.table.index;
        let mut b = dev.stream.launch_builder(&dev.kernels.kv_erase);
        b.arg(&mut t.fps)
            .arg(&t.payloads)
            .arg(&mut t.meta)
            .arg(&t.buckets)
            .arg(&self.arena)
            .arg(q)
            .arg(k)
            .arg(o)
            .arg(&mut released)
            .arg(&n64);
        // SAFETY: matches kv_erase's signature; as kv_find. The keys are distinct
        // (the caller de-duplicated), so at most one lane's key matches a slot
        // and no two lanes clear the same one.
        unsafe { b.launch(launch_config(n64)?) }.map_err(KernelError::driver("launching kv_erase"))?;
        self.table.io.down.fetch(dev, &released, n)
    }

    fn index_state(&mut self) -> KernelResult<TableState> {
        self.table.state()
    }
}
