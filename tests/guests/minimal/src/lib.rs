//! The smallest useful flare: reads the URL, builds a `String`, answers it.

#[unsafe(no_mangle)]
pub extern "C" fn handle_request() -> i64 {
    sdk::invocation(|| {
        let url = sdk::req_url();
        let mut body = String::from("you asked for ");
        body.push_str(std::str::from_utf8(url.as_deref().unwrap_or(b"")).unwrap_or("?"));
        sdk::set_body(body.as_bytes());
        sdk::RESPOND
    })
}
