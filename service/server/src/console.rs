//! The web console's static files, embedded in the binary and served under `/console/` on the API
//! listener (same address, same TLS). The console is a page that signs ordinary KMS, CloudTrail
//! and STS requests in the browser; nothing here authenticates or answers for it. Its sources
//! and build are in `service/console/` (`npm run build` writes `service/console/dist/`, which is
//! committed, so `cargo build` needs no network and no Node.js).

use actix_web::{web, HttpResponse};

/// The console's files: (name under `/console/`, content type, bytes).
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        include_bytes!("../../console/dist/index.html"),
    ),
    (
        "console.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../console/dist/console.js"),
    ),
    (
        "console.css",
        "text/css; charset=utf-8",
        include_bytes!("../../console/dist/console.css"),
    ),
];

/// The page may load only its own files and talk only to its own origin; no frames, no inline
/// script.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; form-action 'none'; base-uri 'none'; \
     frame-ancestors 'none'";

/// Add the console's routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/console", web::get().to(redirect))
        .route("/console/", web::get().to(index))
        .route("/console/{file}", web::get().to(asset));
}

async fn redirect() -> HttpResponse {
    HttpResponse::PermanentRedirect()
        .insert_header(("Location", "/console/"))
        .finish()
}

async fn index() -> HttpResponse {
    serve("index.html")
}

async fn asset(file: web::Path<String>) -> HttpResponse {
    serve(&file)
}

fn serve(name: &str) -> HttpResponse {
    match ASSETS.iter().find(|(n, _, _)| *n == name) {
        Some((_, content_type, bytes)) => HttpResponse::Ok()
            .content_type(*content_type)
            .insert_header(("Content-Security-Policy", CONTENT_SECURITY_POLICY))
            .insert_header(("X-Content-Type-Options", "nosniff"))
            .insert_header(("Referrer-Policy", "no-referrer"))
            .insert_header(("Cache-Control", "no-cache"))
            .body(*bytes),
        None => HttpResponse::NotFound()
            .content_type("text/plain; charset=utf-8")
            .body("Not found"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_is_built_and_the_page_loads_only_its_own_files() {
        for (name, _, bytes) in ASSETS {
            assert!(!bytes.is_empty(), "{name} is empty: run npm run build");
        }
        let page = std::str::from_utf8(ASSETS[0].2).unwrap_or_default();
        assert!(
            page.contains("console.js") && !page.contains("http"),
            "{page}"
        );
    }
}
