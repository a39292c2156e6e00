//! `GET /api/v1/fields`: the searchable event fields, from the field registry, for the
//! dashboard's autocomplete and for people writing queries.

use axum::response::Response;
use serde::Serialize;

use super::{json, Params, Problem, RawParams};
use crate::event::fields::{self, FieldType};

#[derive(Serialize)]
struct Field {
    name: &'static str,
    #[serde(rename = "type")]
    ty: &'static str,
    description: &'static str,
    /// Whether `GET /api/v1/terms` counts its values.
    aggregatable: bool,
    /// The closed set of values of an `enum` field.
    #[serde(skip_serializing_if = "Option::is_none")]
    values: Option<&'static [&'static str]>,
}

pub async fn fields(raw: RawParams) -> Result<Response, Problem> {
    Params::new(raw, &[])?;
    #[derive(Serialize)]
    struct Answer {
        fields: Vec<Field>,
    }
    json(&Answer {
        fields: fields::searchable()
            .map(|f| Field {
                name: f.name,
                ty: f.ty.name(),
                description: f.description,
                aggregatable: f.aggregatable,
                values: match f.ty {
                    FieldType::Enum(values) => Some(values),
                    _ => None,
                },
            })
            .collect(),
    })
}
