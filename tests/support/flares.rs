//! Guest flares for the runtime tests: each variant built for wasm32 and compiled by wasmtime once
//! per test binary, then instantiated fresh for each test.

use crate::guests;
use crate::host::{self, Flare, Request};
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use wasmtime::{Engine, Module};

pub fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(host::engine)
}

/// The guest `package` built with `feature`, compiled.
pub fn module(package: &str, feature: &str) -> Module {
    module_for(guests::TARGET, package, feature)
}

/// The guest `package` built for `target` with `feature`, compiled.
pub fn module_for(target: &str, package: &str, feature: &str) -> Module {
    static MODULES: OnceLock<Mutex<HashMap<String, Module>>> = OnceLock::new();
    let key = format!("{package}-{feature}-{target}");
    let cache = MODULES.get_or_init(Default::default);
    if let Some(module) = cache.lock().unwrap().get(&key) {
        return module.clone();
    }
    let wasm =
        guests::build_for(target, package, feature, "release").unwrap_or_else(|e| panic!("{e}"));
    let module = host::load(engine(), &wasm).expect("guest compiles");
    cache.lock().unwrap().insert(key, module.clone());
    module
}

/// A fresh instance: nothing has run in it yet.
pub fn instance(package: &str, feature: &str) -> Flare {
    instance_for(guests::TARGET, package, feature)
}

/// A fresh instance of the guest built for `target`.
pub fn instance_for(target: &str, package: &str, feature: &str) -> Flare {
    Flare::new(engine(), &module_for(target, package, feature)).expect("guest instantiates")
}

/// One request to the probe guest in `mode` (see tests/guests/probe); its answer.
pub fn probe(flare: &mut Flare, mode: &str) -> String {
    let request = Request::new("GET", "https://probe.example/x").header("x-probe", mode);
    let (action, response) = flare.handle(&request).expect("handler runs");
    assert_eq!(action, 1 << 32, "Respond");
    response.text()
}
