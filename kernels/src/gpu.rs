//! The table on a CUDA device, through cudarc with dynamic loading.
//!
//! Nothing here links against CUDA: the driver and NVRTC are loaded when first
//! used, so the crate builds and its CPU parts run on machines without either.
//! cudarc panics when a library it needs is missing, so [`GpuDevice::open`]
//! checks `is_culib_present()` before touching the driver, and every later failure
//! comes back as a [`KernelError`].
//!
//! All launches on a device go to one stream, in call order. That is what lets
//! the insert kernel skip locking against finds and erases (see
//! `cuda/fp_table.cu`): two kernels of one table never run at once.

use std::sync::Arc;

use cudarc::driver::{CudaContext, CudaFunction, CudaModule, CudaSlice, CudaStream, LaunchConfig, PushKernelArg};
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
    stream: Arc<CudaStream>,
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
        let info = GpuInfo { name, compute_capability: (major, minor), total_memory, nvrtc: nvrtc_version, image };
        Ok(Arc::new(Self { ctx, stream, kernels, info }))
    }

    /// What was found.
    pub fn info(&self) -> &GpuInfo {
        &self.info
    }

    /// The stream every launch goes to.
    pub fn stream(&self) -> &Arc<CudaStream> {
        &self.stream
    }

    fn upload<T: cudarc::driver::DeviceRepr>(&self, data: &[T]) -> KernelResult<CudaSlice<T>> {
        self.stream.clone_htod(data).map_err(KernelError::driver("copying to the device"))
    }

    fn zeros<T: cudarc::driver::DeviceRepr + cudarc::driver::ValidAsZeroBits>(
        &self,
        n: usize,
    ) -> KernelResult<CudaSlice<T>> {
        self.stream.alloc_zeros(n.max(1)).map_err(KernelError::driver("allocating device memory"))
    }

    fn download<T: cudarc::driver::DeviceRepr>(&self, data: &CudaSlice<T>, n: usize) -> KernelResult<Vec<T>> {
        let mut v = self.stream.clone_dtoh(data).map_err(KernelError::driver("copying from the device"))?;
        v.truncate(n);
        Ok(v)
    }
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

/// The fingerprint index in device memory (the same layout as [`crate::CpuTable`]).
#[derive(Debug)]
pub struct GpuTable {
    dev: Arc<GpuDevice>,
    buckets: u64,
    fps: CudaSlice<u64>,
    payloads: CudaSlice<u64>,
    meta: CudaSlice<u32>,
}

impl GpuTable {
    /// A table with room for at least `slots` entries.
    pub fn with_capacity(dev: Arc<GpuDevice>, slots: u64) -> KernelResult<Self> {
        let buckets = buckets_for_capacity(slots)?;
        let n = usize::try_from(buckets * SLOTS_PER_BUCKET as u64)
            .map_err(|_| KernelError::Config(format!("{slots} slots do not fit in memory")))?;
        Ok(Self { fps: dev.zeros(n)?, payloads: dev.zeros(n)?, meta: dev.zeros(buckets as usize)?, buckets, dev })
    }

    /// Buckets.
    pub fn buckets(&self) -> u64 {
        self.buckets
    }

    /// Slots.
    pub fn capacity(&self) -> u64 {
        self.buckets * SLOTS_PER_BUCKET as u64
    }

    /// Copies a batch to the device.
    pub fn upload(&self, data: &[u64]) -> KernelResult<DeviceBuffer> {
        Ok(DeviceBuffer { data: self.dev.upload(data)?, len: data.len() })
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
        let in_fps = self.upload(fps)?;
        let in_pay = self.upload(payloads)?;
        let mut status = self.dev.zeros::<u32>(fps.len())?;
        let mut released = self.dev.zeros::<u64>(fps.len())?;
        self.launch_insert(&in_fps, &in_pay, &mut status, &mut released, max_chain)?;
        Ok((self.dev.download(&status, fps.len())?, self.dev.download(&released, fps.len())?))
    }

    /// Launches fp_insert. The caller allocates the outputs, so a timed launch
    /// times the kernel alone.
    fn launch_insert(
        &mut self,
        fps: &DeviceBuffer,
        payloads: &DeviceBuffer,
        status: &mut CudaSlice<u32>,
        released: &mut CudaSlice<u64>,
        max_chain: u32,
    ) -> KernelResult<()> {
        let n = fps.len.min(payloads.len).min(status.len()).min(released.len()) as u64;
        let cfg = launch_config(n)?;
        let mut b = self.dev.stream.launch_builder(&self.dev.kernels.fp_insert);
        b.arg(&mut self.fps)
            .arg(&mut self.payloads)
            .arg(&mut self.meta)
            .arg(&self.buckets)
            .arg(&fps.data)
            .arg(&payloads.data)
            .arg(status)
            .arg(released)
            .arg(&n)
            .arg(&max_chain);
        // SAFETY: the arguments match fp_insert's signature in cuda/fp_table.cu
        // (three table arrays, bucket count, two input arrays of `n`, two output
        // arrays of `n`, n, max_chain); every array holds at least `n` items and
        // the table arrays `buckets * 16` (meta: `buckets`). The caller guarantees
        // distinct non-zero fingerprints, the kernel's documented precondition.
        unsafe { b.launch(cfg) }.map_err(KernelError::driver("launching fp_insert"))?;
        Ok(())
    }

    /// Looks up a batch: payload or [`NO_PAYLOAD`] per item.
    pub fn find(&mut self, fps: &[u64]) -> KernelResult<Vec<u64>> {
        if fps.is_empty() {
            return Ok(Vec::new());
        }
        let q = self.upload(fps)?;
        let mut out = self.dev.zeros::<u64>(fps.len())?;
        self.launch_find(&q, &mut out)?;
        self.dev.download(&out, fps.len())
    }

    fn launch_find(&mut self, fps: &DeviceBuffer, out: &mut CudaSlice<u64>) -> KernelResult<()> {
        let n = fps.len.min(out.len()) as u64;
        let cfg = launch_config(n)?;
        let mut b = self.dev.stream.launch_builder(&self.dev.kernels.fp_find);
        b.arg(&self.fps).arg(&self.payloads).arg(&mut self.meta).arg(&self.buckets).arg(&fps.data).arg(out).arg(&n);
        // SAFETY: matches fp_find's signature; `fps` and `out` hold `n` items.
        unsafe { b.launch(cfg) }.map_err(KernelError::driver("launching fp_find"))?;
        Ok(())
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
        let l_fps: Vec<u64> = launched.iter().map(|&i| fps[i]).collect();
        let l_exp: Vec<u64> = match expected {
            Some(e) => launched.iter().map(|&i| e[i]).collect(),
            None => vec![0; launched.len()],
        };
        let q = self.dev.upload(&l_fps)?;
        let exp = self.dev.upload(&l_exp)?;
        let use_expected = u32::from(expected.is_some());
        let n = l_fps.len() as u64;
        let mut released = self.dev.zeros::<u64>(l_fps.len())?;
        let cfg = launch_config(n)?;
        let mut b = self.dev.stream.launch_builder(&self.dev.kernels.fp_erase);
        b.arg(&mut self.fps)
            .arg(&self.payloads)
            .arg(&mut self.meta)
            .arg(&self.buckets)
            .arg(&q)
            .arg(&exp)
            .arg(&use_expected)
            .arg(&mut released)
            .arg(&n);
        // SAFETY: matches fp_erase's signature; inputs and output hold `n` items;
        // fingerprints are distinct (dedupe_first) and non-zero (validate).
        unsafe { b.launch(cfg) }.map_err(KernelError::driver("launching fp_erase"))?;
        let released = self.dev.download(&released, l_fps.len())?;
        for (j, &i) in launched.iter().enumerate() {
            out[i] = released[j];
        }
        Ok(out)
    }

    /// Kernel time in seconds of one insert launch over data already on the device
    /// (distinct fingerprints required, as for [`GpuTable::insert_unique`]).
    pub fn time_insert(&mut self, fps: &DeviceBuffer, payloads: &DeviceBuffer, max_chain: u32) -> KernelResult<f64> {
        let mut status = self.dev.zeros::<u32>(fps.len)?;
        let mut released = self.dev.zeros::<u64>(fps.len)?;
        let (start, end) = self.events()?;
        start.record(&self.dev.stream).map_err(KernelError::driver("recording an event"))?;
        self.launch_insert(fps, payloads, &mut status, &mut released, max_chain)?;
        end.record(&self.dev.stream).map_err(KernelError::driver("recording an event"))?;
        Ok(f64::from(start.elapsed_ms(&end).map_err(KernelError::driver("timing a launch"))?) / 1e3)
    }

    /// Kernel time in seconds of one find launch over data already on the device.
    pub fn time_find(&mut self, fps: &DeviceBuffer) -> KernelResult<f64> {
        let mut out = self.dev.zeros::<u64>(fps.len)?;
        let (start, end) = self.events()?;
        start.record(&self.dev.stream).map_err(KernelError::driver("recording an event"))?;
        self.launch_find(fps, &mut out)?;
        end.record(&self.dev.stream).map_err(KernelError::driver("recording an event"))?;
        Ok(f64::from(start.elapsed_ms(&end).map_err(KernelError::driver("timing a launch"))?) / 1e3)
    }

    fn events(&self) -> KernelResult<(cudarc::driver::CudaEvent, cudarc::driver::CudaEvent)> {
        let flags = Some(cudarc::driver::sys::CUevent_flags::CU_EVENT_DEFAULT);
        let start = self.dev.ctx.new_event(flags).map_err(KernelError::driver("creating an event"))?;
        let end = self.dev.ctx.new_event(flags).map_err(KernelError::driver("creating an event"))?;
        Ok((start, end))
    }

    /// The table's memory image (canonical), for comparing with the reference.
    pub fn state(&self) -> KernelResult<TableState> {
        let n = self.capacity() as usize;
        Ok(TableState {
            fps: self.dev.download(&self.fps, n)?,
            payloads: self.dev.download(&self.payloads, n)?,
            meta: self.dev.download(&self.meta, self.buckets as usize)?,
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

    fn queries(
        &self,
        fps: &[u64],
        keys: &[u8],
        key_offsets: &[u64],
    ) -> KernelResult<(CudaSlice<u64>, CudaSlice<u8>, CudaSlice<u64>)> {
        let dev = &self.table.dev;
        let keys = if keys.is_empty() { dev.zeros::<u8>(1)? } else { dev.upload(keys)? };
        Ok((dev.upload(fps)?, keys, dev.upload(key_offsets)?))
    }
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

    fn write_records(&mut self, staging: &[u8], offsets: &[u64], dst: &[u64]) -> KernelResult<()> {
        if dst.is_empty() {
            return Ok(());
        }
        if let Some(&d) = dst.iter().max() {
            if d >= self.arena_bytes {
                return Err(KernelError::Invalid(format!("record at {d} outside the arena")));
            }
        }
        let dev = Arc::clone(&self.table.dev);
        let src = dev.upload(staging)?;
        let offs = dev.upload(offsets)?;
        let dsts = dev.upload(dst)?;
        let n = dst.len() as u64;
        let mut b = dev.stream.launch_builder(&dev.kernels.kv_scatter);
        b.arg(&mut self.arena).arg(&src).arg(&offs).arg(&dsts).arg(&n);
        // SAFETY: matches kv_scatter's signature; `offsets` has n + 1 entries into
        // `staging`, each record 16-byte aligned and padded (slab::encode_record),
        // and every destination is a slab slot inside the arena large enough for
        // its record (the allocator chose the class by the record's size).
        unsafe { b.launch(launch_config(n)?) }.map_err(KernelError::driver("launching kv_scatter"))?;
        Ok(())
    }

    fn insert_index(&mut self, fps: &[u64], handles: &[u64], max_chain: u32) -> KernelResult<(Vec<u32>, Vec<u64>)> {
        self.table.insert_unique(fps, handles, max_chain)
    }

    fn find_verified(&mut self, fps: &[u64], keys: &[u8], key_offsets: &[u64]) -> KernelResult<Vec<Hit>> {
        if fps.is_empty() {
            return Ok(Vec::new());
        }
        let dev = Arc::clone(&self.table.dev);
        let (q, k, o) = self.queries(fps, keys, key_offsets)?;
        let n = fps.len() as u64;
        let mut handle = dev.zeros::<u64>(fps.len())?;
        let mut vlen = dev.zeros::<u32>(fps.len())?;
        let mut flags = dev.zeros::<u32>(fps.len())?;
        let t = &mut self.table;
        let mut b = dev.stream.launch_builder(&dev.kernels.kv_find);
        b.arg(&t.fps)
            .arg(&t.payloads)
            .arg(&mut t.meta)
            .arg(&t.buckets)
            .arg(&self.arena)
            .arg(&q)
            .arg(&k)
            .arg(&o)
            .arg(&mut handle)
            .arg(&mut vlen)
            .arg(&mut flags)
            .arg(&n);
        // SAFETY: matches kv_find's signature; `q` has n fingerprints, `o` n + 1
        // offsets into `k`; outputs hold n items; every payload in the index is a
        // handle of a record inside the arena.
        unsafe { b.launch(launch_config(n)?) }.map_err(KernelError::driver("launching kv_find"))?;
        let handle = dev.download(&handle, fps.len())?;
        let vlen = dev.download(&vlen, fps.len())?;
        let flags = dev.download(&flags, fps.len())?;
        Ok((0..fps.len()).map(|i| Hit { handle: handle[i], value_len: vlen[i], flags: flags[i] }).collect())
    }

    fn gather(&mut self, handles: &[u64], out_offsets: &[u64]) -> KernelResult<Vec<u8>> {
        let total = out_offsets.last().copied().unwrap_or(0) as usize;
        if total == 0 || handles.is_empty() {
            return Ok(vec![0; total]);
        }
        let dev = Arc::clone(&self.table.dev);
        let h = dev.upload(handles)?;
        let o = dev.upload(out_offsets)?;
        let mut out = dev.zeros::<u8>(total)?;
        let n = handles.len() as u64;
        let mut b = dev.stream.launch_builder(&dev.kernels.kv_gather);
        b.arg(&self.arena).arg(&h).arg(&o).arg(&mut out).arg(&n);
        // SAFETY: matches kv_gather's signature; `o` has n + 1 offsets whose last
        // is `out`'s length; each handle is ~0 or a record in the arena whose
        // value is as long as its output range (from the kv_find just before).
        unsafe { b.launch(launch_config(n)?) }.map_err(KernelError::driver("launching kv_gather"))?;
        dev.download(&out, total)
    }

    fn erase_verified(&mut self, fps: &[u64], keys: &[u8], key_offsets: &[u64]) -> KernelResult<Vec<u64>> {
        if fps.is_empty() {
            return Ok(Vec::new());
        }
        let dev = Arc::clone(&self.table.dev);
        let (q, k, o) = self.queries(fps, keys, key_offsets)?;
        let n = fps.len() as u64;
        let mut released = dev.zeros::<u64>(fps.len())?;
        let t = &mut self.table;
        let mut b = dev.stream.launch_builder(&dev.kernels.kv_erase);
        b.arg(&mut t.fps)
            .arg(&t.payloads)
            .arg(&mut t.meta)
            .arg(&t.buckets)
            .arg(&self.arena)
            .arg(&q)
            .arg(&k)
            .arg(&o)
            .arg(&mut released)
            .arg(&n);
        // SAFETY: matches kv_erase's signature; as kv_find. The keys are distinct
        // (the caller de-duplicated), so at most one lane's key matches a slot
        // and no two lanes clear the same one.
        unsafe { b.launch(launch_config(n)?) }.map_err(KernelError::driver("launching kv_erase"))?;
        dev.download(&released, fps.len())
    }

    fn index_state(&mut self) -> KernelResult<TableState> {
        self.table.state()
    }
}
