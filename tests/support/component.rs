//! A wasmtime host for the `orders` component of `tests/guests/component` (wasm32-wasip2): WASI
//! 0.2 from wasmtime-wasi, the component's exports called through typed functions (so the
//! arguments are lowered through the guest's `cabi_realloc`, and wasmtime runs the post-return
//! function that frees each result), and its linear memory counted in pages by a
//! [`ResourceLimiter`], since wasmtime gives a host no handle on a component's core memory.

use std::path::Path;

use wasmtime::component::{Component, ComponentType, Linker, Lower, ResourceTable, TypedFunc};
use wasmtime::{Engine, ResourceLimiter, Result, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// The WIT record `line-item`.
#[derive(ComponentType, Lower, Clone, Debug, PartialEq, Eq)]
#[component(record)]
pub struct LineItem {
    pub sku: String,
    pub quantity: u32,
    #[component(name = "unit-cents")]
    pub unit_cents: u64,
}

/// Bytes of linear memory the component's instances hold: every memory's growth, initial size
/// included, as the limiter is told of it.
#[derive(Default)]
struct MemoryMeter {
    bytes: usize,
}

impl ResourceLimiter for MemoryMeter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> Result<bool> {
        self.bytes += desired - current;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        _desired: usize,
        _max: Option<usize>,
    ) -> Result<bool> {
        Ok(true)
    }
}

struct State {
    wasi: WasiCtx,
    table: ResourceTable,
    meter: MemoryMeter,
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

pub fn load(engine: &Engine, wasm: &Path) -> Result<Component> {
    Component::from_file(engine, wasm)
}

/// One instance of the component, reused across calls as `wasmtime serve` reuses one.
pub struct Orders {
    store: Store<State>,
    summarize: TypedFunc<(String, Vec<LineItem>), (String,)>,
    remember: TypedFunc<(String, String), (Option<String>,)>,
    env: TypedFunc<(String,), (Option<String>,)>,
    arena_stats: TypedFunc<(), (Vec<u64>,)>,
}

impl Orders {
    /// Instantiates `component` with WASI 0.2 and environment `env`.
    pub fn new(engine: &Engine, component: &Component, env: &[(&str, &str)]) -> Result<Self> {
        let mut linker = Linker::new(engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
        let wasi = wasmtime_wasi::WasiCtx::builder().envs(env).build();
        let state = State {
            wasi,
            table: ResourceTable::new(),
            meter: MemoryMeter::default(),
        };
        let mut store = Store::new(engine, state);
        store.limiter(|state| &mut state.meter);
        let instance = linker.instantiate(&mut store, component)?;
        Ok(Orders {
            summarize: instance.get_typed_func(&mut store, "summarize")?,
            remember: instance.get_typed_func(&mut store, "remember")?,
            env: instance.get_typed_func(&mut store, "env")?,
            arena_stats: instance.get_typed_func(&mut store, "arena-stats")?,
            store,
        })
    }

    pub fn summarize(&mut self, customer: &str, items: &[LineItem]) -> Result<String> {
        let (receipt,) = self
            .summarize
            .call(&mut self.store, (customer.to_string(), items.to_vec()))?;
        Ok(receipt)
    }

    pub fn remember(&mut self, key: &str, value: &str) -> Result<Option<String>> {
        let (previous,) = self
            .remember
            .call(&mut self.store, (key.to_string(), value.to_string()))?;
        Ok(previous)
    }

    pub fn env(&mut self, name: &str) -> Result<Option<String>> {
        let (value,) = self.env.call(&mut self.store, (name.to_string(),))?;
        Ok(value)
    }

    /// The arena's counters (see the WIT), or empty on the default allocator.
    pub fn arena_stats(&mut self) -> Result<Vec<u64>> {
        let (stats,) = self.arena_stats.call(&mut self.store, ())?;
        Ok(stats)
    }

    /// Pages of linear memory the instance holds.
    pub fn memory_pages(&self) -> usize {
        self.store.data().meter.bytes / 65536
    }
}

/// Order number `id`: a customer and `1 + id % lines` line items, the same on every run.
pub fn order(id: u64, lines: usize) -> (String, Vec<LineItem>) {
    let customer = format!("customer-{id:06}-{}", "x".repeat((id % 40) as usize));
    let items = (0..1 + id as usize % lines)
        .map(|i| LineItem {
            sku: format!(
                "sku-{:04}-{}",
                (id as usize * 7 + i * 13) % 1000,
                "y".repeat(i % 24)
            ),
            quantity: 1 + (id as u32 + i as u32) % 9,
            unit_cents: 99 + (id * 31 + i as u64 * 17) % 10_000,
        })
        .collect();
    (customer, items)
}

/// What `summarize` must answer for an order whose arguments arrived intact.
pub fn receipt(customer: &str, items: &[LineItem]) -> String {
    let mut skus: Vec<&str> = items.iter().map(|item| item.sku.as_str()).collect();
    skus.sort();
    let total: u64 = items
        .iter()
        .map(|item| u64::from(item.quantity) * item.unit_cents)
        .sum();
    format!(
        "{customer}|{}|{total}|intact|{}",
        items.len(),
        skus.join(",")
    )
}
