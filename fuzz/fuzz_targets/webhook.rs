//! Signature verification and payload reading must never panic, whatever
//! bytes arrive: the first byte picks the event, the rest is the body.
#![no_main]

use ephemera_domain::DeliveryId;
use libfuzzer_sys::fuzz_target;

const EVENTS: [&str; 5] = ["pull_request", "installation", "installation_repositories", "ping", "push"];

fuzz_target!(|data: &[u8]| {
    let Some((first, body)) = data.split_first() else {
        return;
    };
    let event = EVENTS[usize::from(*first) % EVENTS.len()];
    // A signature header made of the input itself, and a correct one.
    let header = String::from_utf8_lossy(&body[..body.len().min(80)]).into_owned();
    let _ = ephemera_http::verify_signature(b"fuzz-secret", body, Some(&header));
    let signed = ephemera_http::sign(b"fuzz-secret", body);
    assert!(ephemera_http::verify_signature(b"fuzz-secret", body, Some(&signed)).is_ok());
    if let Ok(id) = DeliveryId::parse("fuzz-delivery") {
        let _ = ephemera_http::read_delivery(event, id, body);
    }
});
