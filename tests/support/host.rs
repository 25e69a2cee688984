//! A `flaron/v1` host on wasmtime, honest to ABI.md: every value it returns is written through the
//! guest's `alloc` export (called re-entrantly from inside the import) and returned packed as
//! `(ptr << 32) | len`; response data is copied during the call; every import call is counted.
//! One instance is reused across invocations, as in production.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use wasmtime::{
    Caller, Engine, Instance, Linker, Memory, Module, Result, Store, TypedFunc, format_err,
};

/// Linear-memory page size.
pub const PAGE: u64 = 65536;

/// One HTTP request as the host presents it.
#[derive(Clone, Debug, Default)]
pub struct Request {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Arc<[u8]>,
}

impl Request {
    pub fn new(method: &str, url: &str) -> Self {
        Request {
            method: method.into(),
            url: url.into(),
            ..Default::default()
        }
    }
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_ascii_lowercase(), value.into()));
        self
    }
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into().into();
        self
    }
}

/// What the guest set during one invocation.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Response {
    pub status: i32,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Import-call counters.
#[derive(Clone, Debug, Default)]
pub struct Calls {
    /// Calls of the guest's `alloc` export made from inside imports.
    pub alloc: u64,
    /// `alloc` answers of 0 (the import then returned "none").
    pub alloc_refused: u64,
    /// `alloc` answers that broke the contract (misaligned, or outside memory).
    pub alloc_violations: u64,
    /// Every import call, by name.
    pub imports: BTreeMap<&'static str, u64>,
}

impl Calls {
    pub fn total_imports(&self) -> u64 {
        self.imports.values().sum()
    }
}

#[derive(Default)]
pub struct HostState {
    request: Request,
    response: Response,
    kv: HashMap<Vec<u8>, (u32, Vec<u8>)>,
    ws_in: Vec<u8>,
    pub ws_out: Vec<Vec<u8>>,
    pub logs: Vec<String>,
    pub calls: Calls,
    alloc: Option<TypedFunc<i32, i32>>,
    memory: Option<Memory>,
    /// A hostile host: at the next import that returns data, first call `alloc(size)` until it
    /// is refused (see [`Flare::flood_next_import`]).
    flood: Option<(&'static str, i32)>,
    /// The import being served (for `flood`).
    serving: &'static str,
    pub flood_report: Option<FloodReport>,
    /// WASI preview 1, for flares built for `wasm32-wasip1` (reactor modules).
    wasi: Option<wasmtime_wasi::p1::WasiP1Ctx>,
    /// What linear memory may grow to (no limit unless [`Flare::cap_memory`] sets one).
    limits: wasmtime::StoreLimits,
}

/// What a flood of `alloc` calls inside one import saw.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FloodReport {
    /// Buffers granted before the first refusal.
    pub granted: u64,
    /// Bytes granted in all.
    pub bytes: u64,
    /// Broken promises: misaligned, outside memory, overlapping an earlier buffer, an edge size
    /// (0, -1, i32::MIN, i32::MAX) not answered 0, or a buffer's bytes changed before the import
    /// returned.
    pub violations: Vec<String>,
}

/// Calls `alloc` thousands of times from inside one import, writing every buffer it gets and
/// trying the contract's edge sizes in between, then checks every buffer is still intact.
fn flood(caller: &mut Caller<'_, HostState>, size: i32) -> Result<FloodReport> {
    let (alloc, memory) = guest_alloc_and_memory(caller)?;
    let mut report = FloodReport::default();
    let mut buffers: Vec<(usize, u8)> = Vec::new();
    let len = size as usize;
    for i in 0..1_000_000u64 {
        if i % 64 == 0 {
            for edge in [0, -1, i32::MIN, i32::MAX] {
                let answer = alloc.call(&mut *caller, edge)?;
                if answer != 0 {
                    report.violations.push(format!("alloc({edge}) = {answer}"));
                }
            }
        }
        let ptr = alloc.call(&mut *caller, size)?;
        if ptr == 0 {
            break;
        }
        let start = ptr as u32 as usize;
        if !start.is_multiple_of(8) || start + len > memory.data_size(&*caller) {
            report
                .violations
                .push(format!("alloc({size}) = {ptr}: misaligned or outside"));
            break;
        }
        if let Some(&(last, _)) = buffers.last().filter(|&&(last, _)| start < last + len) {
            report
                .violations
                .push(format!("alloc({size}) = {start} overlaps {last}"));
        }
        let fill = (i % 251) as u8;
        memory.write(&mut *caller, start, &vec![fill; len])?;
        buffers.push((start, fill));
        report.granted += 1;
        report.bytes += len as u64;
    }
    let data = memory.data(&*caller);
    for &(start, fill) in &buffers {
        if data[start..start + len].iter().any(|&b| b != fill) {
            report
                .violations
                .push(format!("the buffer at {start} changed"));
        }
    }
    Ok(report)
}

/// The arena's counters as the guest's `flare_stat` export reports them (see `flare_arena::Stats`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ArenaStats {
    pub capacity: i64,
    pub peak: i64,
    pub live_blocks: i64,
    pub live_lines: i64,
    pub lines_recycled: i64,
    pub resets: i64,
    pub failed: i64,
    pub refused: i64,
    /// The most `capacity` can reach.
    pub limit: i64,
    pub bytes_reclaimed: i64,
}

pub fn engine() -> Engine {
    Engine::default()
}

pub fn load(engine: &Engine, wasm: &Path) -> Result<Module> {
    Module::from_file(engine, wasm)
}

fn count(caller: &mut Caller<'_, HostState>, name: &'static str) {
    caller.data_mut().serving = name;
    *caller.data_mut().calls.imports.entry(name).or_default() += 1;
}

fn guest_memory(caller: &Caller<'_, HostState>) -> Result<Memory> {
    caller
        .data()
        .memory
        .ok_or_else(|| format_err!("no memory export"))
}

/// The guest's `alloc` export and its memory, to hand it data from inside an import.
fn guest_alloc_and_memory(caller: &Caller<'_, HostState>) -> Result<(TypedFunc<i32, i32>, Memory)> {
    let alloc = caller
        .data()
        .alloc
        .clone()
        .ok_or_else(|| format_err!("no alloc export"))?;
    Ok((alloc, guest_memory(caller)?))
}

fn guest_bytes(caller: &mut Caller<'_, HostState>, ptr: i32, len: i32) -> Result<Vec<u8>> {
    let memory = guest_memory(caller)?;
    let (start, len) = (ptr as u32 as usize, len as u32 as usize);
    let data = memory.data(&caller);
    let bytes = start.checked_add(len).and_then(|end| data.get(start..end));
    bytes
        .map(<[u8]>::to_vec)
        .ok_or_else(|| format_err!("argument ({ptr}, {len}) outside guest memory"))
}

fn guest_text(caller: &mut Caller<'_, HostState>, ptr: i32, len: i32) -> Result<String> {
    Ok(String::from_utf8_lossy(&guest_bytes(caller, ptr, len)?).into_owned())
}

/// Hands `data` to the guest the way the host contract says: `alloc` (re-entrantly), write, pack.
fn give(caller: &mut Caller<'_, HostState>, data: &[u8]) -> Result<i64> {
    let state = caller.data_mut();
    if let Some((_, size)) = state.flood.filter(|&(import, _)| import == state.serving) {
        state.flood = None;
        let report = flood(caller, size)?;
        caller.data_mut().flood_report = Some(report);
    }
    if data.is_empty() {
        return Ok(0);
    }
    let (alloc, memory) = guest_alloc_and_memory(caller)?;
    caller.data_mut().calls.alloc += 1;
    let ptr = alloc.call(&mut *caller, data.len() as i32)?;
    if ptr == 0 {
        caller.data_mut().calls.alloc_refused += 1;
        return Ok(0);
    }
    let start = ptr as u32 as usize;
    if !start.is_multiple_of(8) || start + data.len() > memory.data_size(&caller) {
        caller.data_mut().calls.alloc_violations += 1;
        return Ok(0);
    }
    memory.write(&mut *caller, start, data)?;
    Ok((((ptr as u32 as u64) << 32) | data.len() as u64) as i64)
}

const M: &str = "flaron/v1";

/// An import that hands the guest a value computed from the host's state (through `alloc`).
fn give_from(
    linker: &mut Linker<HostState>,
    name: &'static str,
    value: fn(&HostState) -> Vec<u8>,
) -> Result<()> {
    linker.func_wrap(M, name, move |mut c: Caller<'_, HostState>| {
        count(&mut c, name);
        let v = value(c.data());
        give(&mut c, &v)
    })?;
    Ok(())
}

/// An import that takes bytes from the guest (`ptr, len`) into the host's state; returns 0.
fn take_into(
    linker: &mut Linker<HostState>,
    name: &'static str,
    store: fn(&mut HostState, Vec<u8>),
) -> Result<()> {
    linker.func_wrap(
        M,
        name,
        move |mut c: Caller<'_, HostState>, p: i32, l: i32| {
            count(&mut c, name);
            let bytes = guest_bytes(&mut c, p, l)?;
            store(c.data_mut(), bytes);
            Ok(0i32)
        },
    )?;
    Ok(())
}

fn link(linker: &mut Linker<HostState>) -> Result<()> {
    give_from(linker, "req_method", |s| {
        s.request.method.clone().into_bytes()
    })?;
    give_from(linker, "req_url", |s| s.request.url.clone().into_bytes())?;
    give_from(linker, "req_body", |s| s.request.body.to_vec())?;
    give_from(linker, "ws_event_data", |s| s.ws_in.clone())?;
    take_into(linker, "resp_body_set", |s, body| s.response.body = body)?;
    take_into(linker, "ws_send", |s, data| s.ws_out.push(data))?;
    linker.func_wrap(
        M,
        "log_info",
        |mut c: Caller<'_, HostState>, p: i32, l: i32| {
            count(&mut c, "log_info");
            let line = guest_text(&mut c, p, l)?;
            c.data_mut().logs.push(line);
            Ok(())
        },
    )?;
    linker.func_wrap(
        M,
        "req_header_get",
        |mut c: Caller<'_, HostState>, p: i32, l: i32| {
            count(&mut c, "req_header_get");
            let name = guest_text(&mut c, p, l)?.to_ascii_lowercase();
            let headers = &c.data().request.headers;
            let value = headers
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.clone());
            give(&mut c, value.unwrap_or_default().as_bytes())
        },
    )?;
    linker.func_wrap(
        M,
        "resp_set_status",
        |mut c: Caller<'_, HostState>, status: i32| {
            count(&mut c, "resp_set_status");
            c.data_mut().response.status = status;
        },
    )?;
    linker.func_wrap(
        M,
        "resp_header_set",
        |mut c: Caller<'_, HostState>, np: i32, nl: i32, vp: i32, vl: i32| {
            count(&mut c, "resp_header_set");
            let (name, value) = (guest_text(&mut c, np, nl)?, guest_text(&mut c, vp, vl)?);
            c.data_mut().response.headers.push((name, value));
            Ok(0i32)
        },
    )?;
    link_kv_and_crypto(linker)
}

/// The key-value store (`spark_*`: values carry a 4-byte little-endian TTL first) and signing.
fn link_kv_and_crypto(linker: &mut Linker<HostState>) -> Result<()> {
    linker.func_wrap(
        M,
        "spark_get",
        |mut c: Caller<'_, HostState>, p: i32, l: i32| {
            count(&mut c, "spark_get");
            let key = guest_bytes(&mut c, p, l)?;
            let Some((ttl, value)) = c.data().kv.get(&key).cloned() else {
                return Ok(0i64);
            };
            let mut packed = ttl.to_le_bytes().to_vec();
            packed.extend_from_slice(&value);
            give(&mut c, &packed)
        },
    )?;
    linker.func_wrap(
        M,
        "spark_set",
        |mut c: Caller<'_, HostState>, kp: i32, kl: i32, vp: i32, vl: i32, ttl: i32| {
            count(&mut c, "spark_set");
            let (key, value) = (guest_bytes(&mut c, kp, kl)?, guest_bytes(&mut c, vp, vl)?);
            c.data_mut().kv.insert(key, (ttl as u32, value));
            Ok(0i32)
        },
    )?;
    linker.func_wrap(
        M,
        "crypto_sign_jwt",
        |mut c: Caller<'_, HostState>, p: i32, l: i32| {
            count(&mut c, "crypto_sign_jwt");
            let claims = guest_bytes(&mut c, p, l)?;
            let token = fake_jwt(&claims);
            give(&mut c, token.as_bytes())
        },
    )?;
    Ok(())
}

/// A deterministic stand-in for a signed token: header.claims.fnv-hash, hex encoded.
pub fn fake_jwt(claims: &[u8]) -> String {
    let hash = claims.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    });
    let hex: String = claims.iter().map(|b| format!("{b:02x}")).collect();
    format!("eyJhbGciOiJIUzI1NiJ9.{hex}.{hash:016x}")
}

/// The value of `FLARE_REGION` in a wasip1 flare's environment.
pub const WASI_REGION: &str = "eu-west-wasi-reactor";

/// One instance of a flare, reused across invocations.
pub struct Flare {
    store: Store<HostState>,
    instance: Instance,
    memory: Memory,
    alloc: TypedFunc<i32, i32>,
    handle_request: Option<TypedFunc<(), i64>>,
    ws: [Option<TypedFunc<(), i32>>; 3],
    stat: Option<TypedFunc<i32, i64>>,
}

impl Flare {
    pub fn new(engine: &Engine, module: &Module) -> Result<Self> {
        let mut linker = Linker::new(engine);
        link(&mut linker)?;
        let mut store = Store::new(engine, HostState::default());
        store.limiter(|state| &mut state.limits);
        let wasi = module
            .imports()
            .any(|import| import.module() == "wasi_snapshot_preview1");
        if wasi {
            // A wasm32-wasip1 flare: WASI beside the flare imports, with one variable set so that
            // a flare can read it through wasi-libc.
            wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |state: &mut HostState| {
                state.wasi.as_mut().expect("WASI context")
            })?;
            let ctx = wasmtime_wasi::WasiCtx::builder()
                .env("FLARE_REGION", WASI_REGION)
                .build_p1();
            store.data_mut().wasi = Some(ctx);
        }
        let instance: Instance = linker.instantiate(&mut store, module)?;
        if let Ok(initialize) = instance.get_typed_func::<(), ()>(&mut store, "_initialize") {
            // A reactor: its constructors run once, before any export.
            initialize.call(&mut store, ())?;
        }
        let memory = instance
            .get_memory(&mut store, "memory")
            .ok_or_else(|| format_err!("no memory export"))?;
        let alloc = instance.get_typed_func::<i32, i32>(&mut store, "alloc")?;
        store.data_mut().alloc = Some(alloc.clone());
        store.data_mut().memory = Some(memory);
        let handle_request = instance
            .get_typed_func::<(), i64>(&mut store, "handle_request")
            .ok();
        let ws = ["ws_open", "ws_message", "ws_close"]
            .map(|name| instance.get_typed_func::<(), i32>(&mut store, name).ok());
        let stat = instance
            .get_typed_func::<i32, i64>(&mut store, "flare_stat")
            .ok();
        Ok(Flare {
            store,
            instance,
            memory,
            alloc,
            handle_request,
            ws,
            stat,
        })
    }

    /// A guest export of type `(i32) -> i32`, for calling repeatedly with [`Flare::call`].
    pub fn export(&mut self, name: &str) -> Result<TypedFunc<i32, i32>> {
        self.instance
            .get_typed_func::<i32, i32>(&mut self.store, name)
    }

    pub fn call(&mut self, export: &TypedFunc<i32, i32>, arg: i32) -> Result<i32> {
        export.call(&mut self.store, arg)
    }

    /// Seeds the KV store.
    pub fn kv_set(&mut self, key: &str, value: &[u8]) {
        self.store
            .data_mut()
            .kv
            .insert(key.as_bytes().to_vec(), (3600, value.to_vec()));
    }

    pub fn kv_get(&self, key: &str) -> Option<Vec<u8>> {
        self.store
            .data()
            .kv
            .get(key.as_bytes())
            .map(|(_, v)| v.clone())
    }

    /// One `handle_request` invocation. Returns the action and the response.
    pub fn handle(&mut self, request: &Request) -> Result<(i64, Response)> {
        let export = self
            .handle_request
            .clone()
            .ok_or_else(|| format_err!("no handle_request"))?;
        let state = self.store.data_mut();
        state.request = request.clone();
        state.response = Response::default();
        let action = export.call(&mut self.store, ())?;
        Ok((action, std::mem::take(&mut self.store.data_mut().response)))
    }

    /// One WebSocket event (0 open, 1 message, 2 close); returns what the guest sent.
    pub fn ws(&mut self, event: usize, data: &[u8]) -> Result<Vec<Vec<u8>>> {
        let export = self.ws[event]
            .clone()
            .ok_or_else(|| format_err!("no ws export {event}"))?;
        self.store.data_mut().ws_in = data.to_vec();
        export.call(&mut self.store, ())?;
        Ok(std::mem::take(&mut self.store.data_mut().ws_out))
    }

    /// Makes the host hostile once: the next call of `import` (one that returns data) first
    /// calls `alloc(size)` until it is refused (thousands of times), then answers as usual. The
    /// report lands in [`Flare::take_flood_report`].
    pub fn flood_next(&mut self, import: &'static str, size: i32) {
        self.store.data_mut().flood = Some((import, size));
    }

    pub fn take_flood_report(&mut self) -> Option<FloodReport> {
        self.store.data_mut().flood_report.take()
    }

    /// Calls the guest's `alloc` export directly, as the host would from inside an import.
    pub fn alloc(&mut self, size: i32) -> Result<i32> {
        self.alloc.call(&mut self.store, size)
    }

    pub fn read(&self, ptr: i32, len: usize) -> Vec<u8> {
        let start = ptr as u32 as usize;
        self.memory.data(&self.store)[start..start + len].to_vec()
    }

    pub fn write(&mut self, ptr: i32, data: &[u8]) -> Result<()> {
        Ok(self
            .memory
            .write(&mut self.store, ptr as u32 as usize, data)?)
    }

    pub fn memory_bytes(&self) -> usize {
        self.memory.data_size(&self.store)
    }

    /// From now on linear memory grows to at most `bytes`, as a host with a memory limit per
    /// instance does: a `memory.grow` past it fails (the guest sees -1).
    pub fn cap_memory(&mut self, bytes: usize) {
        self.store.data_mut().limits = wasmtime::StoreLimitsBuilder::new()
            .memory_size(bytes)
            .build();
    }

    pub fn memory_pages(&self) -> u64 {
        self.memory.size(&self.store)
    }

    pub fn calls(&self) -> &Calls {
        &self.store.data().calls
    }

    pub fn logs(&self) -> &[String] {
        &self.store.data().logs
    }

    /// The arena's counters, or `None` for a flare not built on flare-arena.
    pub fn arena_stats(&mut self) -> Option<ArenaStats> {
        let stat = self.stat.clone()?;
        let mut v = [0i64; 10];
        for (i, slot) in v.iter_mut().enumerate() {
            *slot = stat.call(&mut self.store, i as i32).ok()?;
        }
        (v[0] >= 0).then_some(ArenaStats {
            capacity: v[0],
            peak: v[1],
            live_blocks: v[2],
            live_lines: v[3],
            lines_recycled: v[4],
            resets: v[5],
            failed: v[6],
            refused: v[7],
            limit: v[8],
            bytes_reclaimed: v[9],
        })
    }
}

/// The request the realistic flare handles in tests, the demo and the benches: a few headers and
/// a JSON order of `items` lines.
pub fn order_request(id: u64, items: usize) -> Request {
    let lines: Vec<String> = (0..items)
        .map(|i| {
            format!(
                r#"{{"sku":"SKU-{:05}","qty":{},"price_cents":{}}}"#,
                (id as usize * 7 + i) % 100_000,
                1 + i % 3,
                199 + i * 100
            )
        })
        .collect();
    let body = format!(
        r#"{{"customer":"cust-{}","items":[{}],"note":"leave at the door, id {id:08}"}}"#,
        id % 10,
        lines.join(",")
    );
    Request::new("POST", "https://shop.example/api/v1/orders?src=test")
        .header("content-type", "application/json; charset=utf-8")
        .header("x-request-id", &format!("req-{id:08}"))
        .header("authorization", "Bearer abc.def.ghi")
        .header("user-agent", "flare-tests/1.0")
        .body(body)
}

/// What the realistic flare must answer for `order_request(id, items)` (with `tier:cust-0` = gold).
pub fn expected_total(id: u64, items: usize) -> (u64, u32) {
    let total: u64 = (0..items)
        .map(|i| (1 + i % 3) as u64 * (199 + i as u64 * 100))
        .sum();
    let units: u32 = (0..items).map(|i| (1 + i % 3) as u32).sum();
    let discount = if id.is_multiple_of(10) { total / 10 } else { 0 };
    (total - discount, units)
}

/// The stateful flare's request (tests/guests/stateful): `state` is `none`, `counter`, `ttl` or
/// `lru`; 256 clients, 500 URLs, a small JSON body. Seed the KV store with [`STATEFUL_CONFIG`]
/// under `config` for `ttl`.
pub fn stateful_request(state: &str, id: u64) -> Request {
    let values: Vec<String> = (0..1 + id % 6).map(|i| (id * 31 + i).to_string()).collect();
    let note = if id.is_multiple_of(3) {
        format!(r#","note":"request {id} says hi""#)
    } else {
        String::new()
    };
    let body = format!(
        r#"{{"client":"client-{:03}","values":[{}]{note}}}"#,
        id * 7 % 256,
        values.join(",")
    );
    Request::new(
        "POST",
        &format!("https://edge.example/items/{}?v=1", id * 13 % 500),
    )
    .header("x-state", state)
    .header("content-type", "application/json")
    .body(body)
}

/// The config value the `ttl` state caches: 600 bytes.
pub const STATEFUL_CONFIG: &[u8] = &[b'c'; 600];
