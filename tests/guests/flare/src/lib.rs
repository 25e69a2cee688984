//! A realistic flare, per "What a flare does per invocation" in ABI.md: it reads the method, the
//! URL, a few headers and a JSON order, looks the customer's tier up in KV, bumps a counter, asks
//! the host to sign a receipt, and answers with a JSON body and three headers.

use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct Order<'a> {
    customer: &'a str,
    items: Vec<Item<'a>>,
    #[serde(default)]
    note: Option<String>,
}

#[derive(Deserialize)]
struct Item<'a> {
    sku: &'a str,
    qty: u32,
    price_cents: u64,
}

#[derive(Serialize)]
struct Receipt<'a> {
    customer: &'a str,
    tier: &'a str,
    lines: usize,
    units: u32,
    total_cents: u64,
    discount_cents: u64,
    method: &'a str,
    path: &'a str,
    request_id: &'a str,
    visits: u64,
    signature: &'a str,
    note_len: usize,
    skus: Vec<&'a str>,
}

fn text(bytes: &Option<sdk::HostBytes>) -> &str {
    bytes.as_deref().and_then(|b| std::str::from_utf8(b).ok()).unwrap_or("")
}

fn handle() -> Result<(), u16> {
    let method = sdk::req_method();
    let url = sdk::req_url();
    let request_id = sdk::req_header("x-request-id");
    let content_type = sdk::req_header("content-type");
    let _auth = sdk::req_header("authorization");
    if !text(&content_type).starts_with("application/json") {
        return Err(415);
    }
    let body = sdk::req_body().ok_or(400u16)?;
    let order: Order = serde_json::from_slice(&body).map_err(|_| 400u16)?;

    let tier_key = format!("tier:{}", order.customer);
    let tier = sdk::spark_get(&tier_key);
    let tier = tier.as_ref().and_then(|(_, v)| std::str::from_utf8(v).ok()).unwrap_or("standard");
    let visits_key = format!("visits:{}", order.customer);
    let visits = sdk::spark_get(&visits_key)
        .and_then(|(_, v)| std::str::from_utf8(&v).ok().and_then(|s| s.parse::<u64>().ok()))
        .unwrap_or(0)
        + 1;
    sdk::spark_set(&visits_key, visits.to_string().as_bytes(), 3600);

    let units: u32 = order.items.iter().map(|i| i.qty).sum();
    let total: u64 = order.items.iter().map(|i| i.qty as u64 * i.price_cents).sum();
    let discount = if tier == "gold" { total / 10 } else { 0 };
    let claims = format!(r#"{{"sub":"{}","total":{}}}"#, order.customer, total - discount);
    let signature = sdk::sign_jwt(claims.as_bytes());
    let url = text(&url);
    let path = url.split_once("://").map_or(url, |(_, rest)| rest.find('/').map_or("/", |i| &rest[i..]));

    let receipt = Receipt {
        customer: order.customer,
        tier,
        lines: order.items.len(),
        units,
        total_cents: total - discount,
        discount_cents: discount,
        method: text(&method),
        path,
        request_id: text(&request_id),
        visits,
        signature: text(&signature),
        note_len: order.note.as_deref().map_or(0, str::len),
        skus: order.items.iter().map(|i| i.sku).collect(),
    };
    let json = serde_json::to_vec(&receipt).map_err(|_| 500u16)?;
    sdk::set_status(200);
    sdk::set_header("content-type", "application/json");
    sdk::set_header("x-request-id", text(&request_id));
    sdk::set_header("x-flare-units", &units.to_string());
    sdk::set_body(&json);
    Ok(())
}

#[unsafe(no_mangle)]
pub extern "C" fn handle_request() -> i64 {
    sdk::invocation(|| {
        if let Err(status) = handle() {
            sdk::set_status(status);
            sdk::set_body(b"{\"error\":true}");
        }
        sdk::RESPOND
    })
}

/// WebSocket events: echo the message back in upper case, count events in KV.
#[unsafe(no_mangle)]
pub extern "C" fn ws_open() -> i32 {
    sdk::invocation(|| i32::from(!sdk::ws_send(b"welcome")))
}

#[unsafe(no_mangle)]
pub extern "C" fn ws_message() -> i32 {
    sdk::invocation(|| {
        let data = sdk::ws_event_data();
        let reply = String::from_utf8_lossy(data.as_deref().unwrap_or(b"")).to_uppercase();
        i32::from(!sdk::ws_send(reply.as_bytes()))
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn ws_close() -> i32 {
    sdk::invocation(|| {
        sdk::log("closed");
        0
    })
}
