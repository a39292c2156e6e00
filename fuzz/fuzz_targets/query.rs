//! Query text (`q` of search, histogram, terms and the live tail): the parser, then the
//! in-memory matcher (live tail, rules) over fixed events.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_audit::query;

fuzz_target!(|text: &str| {
    let Ok(expr) = query::parse(text) else {
        return;
    };
    for ev in mcp_audit_fuzz::EVENTS.iter() {
        let hit = query::matches(&expr, ev);
        // NOT is the matcher's own negation: it must agree with it on every event.
        let not = query::Expr::Not(Box::new(expr.clone()));
        assert_eq!(
            query::matches(&not, ev),
            !hit,
            "NOT disagrees on {}",
            ev.event.event_id
        );
    }
});
