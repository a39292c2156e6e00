//! A rule file (YAML, one or more `---`-separated rules) as the rules dir holds it: parsing and
//! compiling; when it compiles, the rules run over fixed events, repeated so that counting and
//! sequence rules reach their thresholds, and over the silence after them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_audit::rules::{compile_file, Engine, EngineState, DEFAULT_KEY_CAP};

/// Rounds of the fixed events, each an hour after the one before.
const ROUNDS: i64 = 3;

fuzz_target!(|text: &str| {
    let Ok(rules) = compile_file("fuzz.yml", text, false) else {
        return;
    };
    let mut engine = Engine::new(rules, DEFAULT_KEY_CAP);
    let mut pos = 0;
    let mut last = 0;
    for round in 0..ROUNDS {
        for ev in mcp_audit_fuzz::EVENTS.iter() {
            let mut ev = ev.clone();
            ev.event.timestamp += time::Duration::hours(round);
            last = ev.event.timestamp.unix_timestamp() * 1_000_000;
            engine.evaluate(&ev, pos);
            pos += 1;
        }
    }
    // A day of silence: absence rules fire, windows close.
    engine.advance(last + 86_400 * 1_000_000, pos);
    // The state as a restart saves and restores it (`rules::consumer::save_state`).
    let saved = serde_json::to_vec(&engine.state()).expect("the rules' state serializes");
    let state: EngineState =
        serde_json::from_slice(&saved).expect("the saved rules' state reads back");
    engine.restore(state);
});
