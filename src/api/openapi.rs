//! `GET /api/v1/openapi.json`: the API contract, an OpenAPI 3.1 document written by hand in
//! `openapi.json` beside this file and served as is.
//!
//! It is checked twice: the test below requires it to describe exactly the router's routes,
//! and `.ci/run` runs schemathesis against a live collector, which fails on any answer the
//! document does not allow (status, content type or body schema).

use axum::http::header;
use axum::response::{IntoResponse, Response};

/// The document, as served.
pub const DOCUMENT: &str = include_str!("openapi.json");

pub async fn document() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], DOCUMENT).into_response()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::Value;

    use super::*;

    fn doc() -> Value {
        serde_json::from_str(DOCUMENT).expect("openapi.json is JSON")
    }

    #[test]
    fn describes_exactly_the_routes_of_the_router() {
        let doc = doc();
        assert_eq!(doc["openapi"], "3.1.0");
        let documented: BTreeSet<String> = doc["paths"]
            .as_object()
            .expect("paths")
            .keys()
            .cloned()
            .collect();
        let routed: BTreeSet<String> = crate::api::routes()
            .into_iter()
            .map(|(path, _)| path.to_string())
            .collect();
        assert_eq!(documented, routed);
    }

    #[test]
    fn field_lists_are_those_of_the_registry() {
        use crate::event::fields::{self, FieldType, FIELDS};
        let doc = doc();
        let strings = |v: &Value| -> Vec<String> {
            v.as_array()
                .expect("array")
                .iter()
                .map(|s| s.as_str().expect("string").to_string())
                .collect()
        };
        let terms = doc["paths"]["/api/v1/terms"]["get"]["parameters"]
            .as_array()
            .expect("parameters")
            .iter()
            .find(|p| p["name"] == "field")
            .expect("field parameter")["schema"]["enum"]
            .clone();
        let aggregatable: Vec<String> =
            fields::aggregatable().map(|f| f.name.to_string()).collect();
        assert_eq!(strings(&terms), aggregatable);
        let types = &doc["components"]["schemas"]["Fields"]["properties"]["fields"]["items"]
            ["properties"]["type"]["enum"];
        for f in FIELDS {
            assert!(
                strings(types).contains(&f.ty.name().to_string()),
                "{}",
                f.name
            );
        }
        let stored: BTreeSet<String> = doc["components"]["schemas"]["StoredEvent"]["properties"]
            .as_object()
            .expect("properties")
            .keys()
            .cloned()
            .collect();
        let keys: BTreeSet<String> = FIELDS.iter().map(|f| f.json_key().to_string()).collect();
        assert_eq!(stored, keys);
        let outcome = &doc["components"]["schemas"]["StoredEvent"]["properties"]["outcome"]["enum"];
        let Some(FieldType::Enum(names)) = fields::field("outcome").map(|f| f.ty) else {
            panic!("outcome is an enum")
        };
        assert_eq!(strings(outcome), names.to_vec());
    }

    #[test]
    fn every_reference_resolves_and_every_operation_answers_errors_as_problems() {
        fn walk(v: &Value, doc: &Value, refs: &mut usize) {
            match v {
                Value::Object(m) => {
                    if let Some(Value::String(r)) = m.get("$ref") {
                        let target = doc.pointer(r.trim_start_matches('#'));
                        assert!(target.is_some(), "dangling $ref {r}");
                        *refs += 1;
                    }
                    m.values().for_each(|x| walk(x, doc, refs));
                }
                Value::Array(a) => a.iter().for_each(|x| walk(x, doc, refs)),
                _ => {}
            }
        }
        let doc = doc();
        let mut refs = 0;
        walk(&doc, &doc, &mut refs);
        assert!(refs > 10);
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, op) in item.as_object().expect("path item") {
                for (status, response) in op["responses"].as_object().expect("responses") {
                    let response = match response.get("$ref").and_then(Value::as_str) {
                        Some(r) => doc.pointer(r.trim_start_matches('#')).expect("resolves"),
                        None => response,
                    };
                    if status.starts_with('4') || status.starts_with('5') {
                        assert!(
                            response["content"]["application/problem+json"].is_object(),
                            "{method} {path} {status} is not a problem"
                        );
                    }
                }
            }
        }
    }
}
