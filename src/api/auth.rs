//! Authentication and authorization of every HTTP request, in one place.
//!
//! [`authorize`] runs before every route: it resolves the caller ([`crate::auth::Auth`]),
//! checks the role the route needs ([`access`]), takes one request from the caller's API quota,
//! and leaves a [`Caller`] for the handler. Handlers never read credentials themselves, so a
//! new route cannot forget the check: [`access`] decides from the method and the route pattern,
//! and anything it does not list as public needs a credential.
//!
//! The tenant comes from the credential. An admin may read the collector's own audit trail by
//! sending `x-mcp-audit-tenant: _system`; any other value than the caller's own tenant is
//! refused.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::Problem;
use crate::app::Shared;
use crate::auth::{Principal, Refusal, Role, SYSTEM_TENANT};
use crate::error::ErrorKind;

/// The header an admin sets to read another of the collector's tenants (only `_system`).
pub const TENANT_HEADER: &str = "x-mcp-audit-tenant";

/// What a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Public,
    Needs(Role),
}

/// The access a route needs: health, the API description and the resource metadata are
/// public; shipping (native or OTLP) needs `ingest`; reading needs `read`; every change, and the collector-wide
/// webhook settings, need `admin`.
pub fn access(method: &Method, route: &str) -> Access {
    match route {
        "/healthz"
        | "/readyz"
        | "/api/v1/openapi.json"
        | "/.well-known/oauth-protected-resource" => Access::Public,
        "/api/v1/ingest" | "/v1/traces" | "/v1/logs" => Access::Needs(Role::Ingest),
        "/api/v1/webhooks" => Access::Needs(Role::Admin),
        _ if method == Method::GET || method == Method::HEAD => Access::Needs(Role::Read),
        _ => Access::Needs(Role::Admin),
    }
}

/// The peer address of a connection, set by the accept loop.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

/// The authenticated caller of a request, and the tenant it acts on.
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Principal,
    tenant: Arc<str>,
}

impl Caller {
    /// The tenant every read and write of this request is bound to.
    pub fn tenant(&self) -> Arc<str> {
        self.tenant.clone()
    }
}

impl Caller {
    /// Records what this caller changed in the collector's audit trail (tenant `_system`).
    pub fn audit(
        &self,
        s: &Shared,
        area: &'static str,
        action: &'static str,
        details: serde_json::Value,
    ) {
        s.audit.record(
            crate::audit::Record::new(area, action, &self.principal.credential, &self.tenant)
                .details(details),
        );
    }

    /// Who did it, for an alert's `acked_by` or a silence's `created_by` when the body does
    /// not say.
    pub fn name(&self) -> String {
        self.principal.credential.to_string()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Problem> {
        parts.extensions.get::<Caller>().cloned().ok_or_else(|| {
            tracing::error!(path = parts.uri.path(), "a route ran without authorization");
            Problem::new(
                ErrorKind::Internal,
                "internal error",
                "this route is not wired to authorization; see the collector log",
            )
        })
    }
}

/// The answer to a refused request: 401 with `WWW-Authenticate` (naming the resource metadata
/// when an identity provider is configured), 403, or 429 with `Retry-After`.
/// On the OTLP routes (`otlp`) the body is a `google.rpc.Status`, as the OTLP spec requires.
pub fn refusal(s: &Shared, headers: &axum::http::HeaderMap, r: Refusal, otlp: bool) -> Response {
    let title = match r.kind() {
        ErrorKind::Unauthenticated => "unauthenticated",
        ErrorKind::PermissionDenied => "forbidden",
        _ => "too many requests",
    };
    let unauthenticated = r.kind() == ErrorKind::Unauthenticated;
    let mut resp = if otlp {
        super::otlp::refused(headers, &r)
    } else {
        problem(r, title).into_response()
    };
    if unauthenticated {
        let value = match s.auth.jwt() {
            Some(_) => format!(
                "Bearer resource_metadata=\"{}/.well-known/oauth-protected-resource\"",
                resource_url(s, headers)
            ),
            None => "Bearer realm=\"mcp-audit\"".to_string(),
        };
        if let Ok(v) = HeaderValue::from_str(&value) {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
    }
    resp
}

/// A refusal as a problem (with `Retry-After` when it has one).
pub fn problem(r: Refusal, title: &'static str) -> Problem {
    Problem {
        retry_after: r.retry_after_secs(),
        ..Problem::new(r.kind(), title, r.to_string())
    }
}

/// The collector's URL as this client reaches it: `auth.jwt.resource` when set, else the
/// request's `Host` (scheme from the listener).
pub fn resource_url(s: &Shared, headers: &axum::http::HeaderMap) -> String {
    if let Some(r) = s
        .auth
        .jwt()
        .map(|j| j.config().resource.trim_end_matches('/'))
        .filter(|r| !r.is_empty())
    {
        return r.to_string();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        })
        .map(str::to_string)
        .unwrap_or_else(|| s.config.http_listen.to_string());
    let scheme = if s.config.tls_enabled() {
        "https"
    } else {
        "http"
    };
    format!("{scheme}://{host}")
}

/// Runs before every route (see the module doc).
pub async fn authorize(State(s): State<Arc<Shared>>, mut req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| req.uri().path().to_string());
    let Access::Needs(role) = access(req.method(), &route) else {
        return next.run(req).await;
    };
    let otlp = route.starts_with("/v1/");
    let header_value = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let addr = req.extensions().get::<Peer>().map(|p| p.0.ip());
    let principal = match s.auth.authenticate(header_value, addr).await {
        Ok(p) => p,
        Err(r) => return refusal(&s, req.headers(), r, otlp),
    };
    if let Err(r) = principal
        .require(role)
        .and_then(|()| s.auth.take_api(&principal))
    {
        return refusal(&s, req.headers(), r, otlp);
    }
    let tenant = match req.headers().get(TENANT_HEADER).map(|v| v.to_str()) {
        None => principal.tenant.clone(),
        Some(Ok(t)) if t == &*principal.tenant => principal.tenant.clone(),
        Some(Ok(SYSTEM_TENANT)) if principal.is_admin() => Arc::from(SYSTEM_TENANT),
        Some(_) => {
            let r = Refusal::Forbidden(format!(
                "`{TENANT_HEADER}` may only name the caller's own tenant ({:?}), or `{SYSTEM_TENANT}` for an admin",
                &*principal.tenant
            ));
            return refusal(&s, req.headers(), r, otlp);
        }
    };
    req.extensions_mut().insert(Caller { principal, tenant });
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_has_the_access_it_should() {
        for (path, _) in super::super::routes() {
            for method in [Method::GET, Method::POST, Method::DELETE] {
                let a = access(&method, path);
                if path.starts_with("/api/v1/") && path != "/api/v1/openapi.json" {
                    assert_ne!(a, Access::Public, "{method} {path} is public");
                }
                if method != Method::GET && path != "/api/v1/ingest" && a != Access::Public {
                    assert_eq!(a, Access::Needs(Role::Admin), "{method} {path}");
                }
            }
        }
        assert_eq!(access(&Method::GET, "/metrics"), Access::Needs(Role::Read));
        for (path, _) in super::super::otlp_routes() {
            assert_eq!(
                access(&Method::POST, path),
                Access::Needs(Role::Ingest),
                "{path}"
            );
        }
        assert_eq!(
            access(&Method::POST, "/api/v1/ingest"),
            Access::Needs(Role::Ingest)
        );
    }
}
