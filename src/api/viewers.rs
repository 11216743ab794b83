//! Who may read, when `auth.viewers` lists anyone: HTTP Basic against
//! argon2 password hashes. Basic because every browser asks for it with its
//! own prompt and remembers it for the page's requests, and curl, scripts
//! and Prometheus send it as they are: no login form, no session store, no
//! cookie to steal or to forge requests with. It needs TLS, which the
//! reverse proxy in front provides (README "Exposing it beyond this
//! machine").
//!
//! Without credentials, only what players fetch stays open: `/health`,
//! the signed `/proxy` and `/relay` URLs, and `/channels/<slug>.m3u8` with
//! the channel's signature (`?sig=`, in the `url` that `GET /channels`
//! gives a signed-in viewer, ready to paste into VLC or a TV). Mutating
//! requests follow the admin rule instead (`api::access`).
//!
//! A password check costs an argon2 verification (tens of milliseconds, on
//! a blocking thread); a page polls every few seconds, so a verified
//! header is remembered, as its SHA-256 digest, for
//! [`VERIFIED_FOR`]. At most [`MAX_REMEMBERED`] are kept.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2::password_hash::PasswordHashString;
use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};

use super::{ApiError, AppState, Challenge};
use crate::config::ViewerConfig;
use crate::proxy::token::Signer;

/// How long a verified `Authorization` header is believed without
/// verifying it again.
pub const VERIFIED_FOR: Duration = Duration::from_secs(300);
/// Verified headers remembered at most (then the memory starts afresh).
pub const MAX_REMEMBERED: usize = 1024;

/// The viewers and the headers verified lately.
pub struct Viewers {
    accounts: Vec<(String, PasswordHashString)>,
    verified: Mutex<HashMap<[u8; 32], Instant>>,
}

impl std::fmt::Debug for Viewers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print hashes.
        f.debug_struct("Viewers")
            .field("accounts", &self.accounts.len())
            .finish_non_exhaustive()
    }
}

impl Viewers {
    /// The viewers of `auth.viewers` (validated when the config loaded;
    /// an unreadable hash is left out, so it matches no password).
    pub fn new(config: &[ViewerConfig]) -> Self {
        let accounts = config
            .iter()
            .filter_map(|viewer| {
                let hash = PasswordHash::new(viewer.password_hash.expose()).ok()?;
                Some((viewer.name.clone(), hash.serialize()))
            })
            .collect();
        Self {
            accounts,
            verified: Mutex::new(HashMap::new()),
        }
    }

    /// Whether reading needs credentials.
    pub fn required(&self) -> bool {
        !self.accounts.is_empty()
    }

    /// Whether `Authorization` names a viewer with the right password.
    async fn admits(self: &Arc<Self>, headers: &HeaderMap) -> bool {
        let Some(value) = headers.get(header::AUTHORIZATION) else {
            return false;
        };
        let digest: [u8; 32] = Sha256::digest(value.as_bytes()).into();
        {
            let verified = self.verified.lock().unwrap_or_else(|p| p.into_inner());
            if verified
                .get(&digest)
                .is_some_and(|at| at.elapsed() < VERIFIED_FOR)
            {
                return true;
            }
        }
        let Some((name, password)) = basic_credentials(value) else {
            return false;
        };
        let Some(hash) = self
            .accounts
            .iter()
            .find(|(account, _)| *account == name)
            .map(|(_, hash)| hash.clone())
        else {
            return false;
        };
        let ok = tokio::task::spawn_blocking(move || {
            Argon2::default()
                .verify_password(password.as_bytes(), &hash.password_hash())
                .is_ok()
        })
        .await
        .unwrap_or(false);
        if ok {
            let mut verified = self.verified.lock().unwrap_or_else(|p| p.into_inner());
            if verified.len() >= MAX_REMEMBERED {
                verified.clear();
            }
            verified.insert(digest, Instant::now());
        }
        ok
    }
}

/// The name and password of `Authorization: Basic <base64(name:password)>`;
/// `None` for anything else.
fn basic_credentials(value: &HeaderValue) -> Option<(String, String)> {
    let text = value.to_str().ok()?.trim();
    let (scheme, encoded) = text.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(encoded.trim()).ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (name, password) = decoded.split_once(':')?;
    Some((name.to_owned(), password.to_owned()))
}

/// An argon2id hash of `password` in PHC form (`f1-stream hash-password`).
pub fn hash_password(password: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = argon2::password_hash::SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    Ok(Argon2::default()
        .hash_password(password.as_bytes(), &salt)?
        .to_string())
}

/// The signature that lets `/channels/<slug>.m3u8` play without
/// credentials (the `sig` query parameter).
pub fn channel_signature(signer: &Signer, slug: &str) -> String {
    signer.sign_label(&channel_label(slug))
}

/// Whether `sig` is [`channel_signature`] of `slug`.
fn is_channel_signature(signer: &Signer, slug: &str, sig: &str) -> bool {
    signer.verify_label(&channel_label(slug), sig)
}

/// What a channel's signature signs.
fn channel_label(slug: &str) -> String {
    format!("channel|{slug}")
}

/// Whether a request may go on without credentials: what players fetch.
fn open_without_credentials(request: &Request, signer: &Signer) -> bool {
    let path = request.uri().path();
    if request.method() == Method::OPTIONS
        || path == "/health"
        || path.starts_with("/proxy")
        || path.starts_with("/relay")
    {
        return true;
    }
    let Some(slug) = path
        .strip_prefix("/channels/")
        .and_then(|rest| rest.strip_suffix(".m3u8"))
    else {
        return false;
    };
    request
        .uri()
        .query()
        .into_iter()
        .flat_map(|query| query.split('&'))
        .filter_map(|pair| pair.strip_prefix("sig="))
        .any(|sig| is_channel_signature(signer, slug, sig))
}

/// Middleware: with viewers configured, reading needs a viewer's
/// credentials (see the module docs); mutating requests pass on to the
/// admin rule.
pub(super) async fn require_viewer(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let safe = matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if !safe
        || !state.viewers.required()
        || open_without_credentials(&request, &state.proxy.signer)
        || state.viewers.admits(request.headers()).await
    {
        return next.run(request).await;
    }
    ApiError::Unauthorized {
        message: "sign in as one of auth.viewers (HTTP Basic)".to_owned(),
        challenge: Challenge::Basic,
    }
    .into_response()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::config::Secret;

    fn viewers(password: &str) -> Arc<Viewers> {
        let hash = hash_password(password).expect("hash");
        Arc::new(Viewers::new(&[ViewerConfig {
            name: "ann".to_owned(),
            password_hash: Secret::new(hash),
        }]))
    }

    fn basic(name: &str, password: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let value = format!("Basic {}", STANDARD.encode(format!("{name}:{password}")));
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&value).expect("value"),
        );
        headers
    }

    #[tokio::test]
    async fn only_a_viewer_with_the_right_password_is_admitted() {
        let viewers = viewers("pässword 1");
        assert!(viewers.admits(&basic("ann", "pässword 1")).await);
        assert!(viewers.admits(&basic("ann", "pässword 1")).await, "remembered");
        assert!(!viewers.admits(&basic("ann", "pässword 2")).await);
        assert!(!viewers.admits(&basic("bob", "pässword 1")).await);
        assert!(!viewers.admits(&HeaderMap::new()).await);
        let mut bearer = HeaderMap::new();
        bearer.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer password"));
        assert!(!viewers.admits(&bearer).await);
    }

    #[test]
    fn basic_credentials_split_at_the_first_colon() {
        let value = |text: &str| HeaderValue::from_str(text).expect("value");
        let encoded = STANDARD.encode("ann:a:b");
        assert_eq!(
            basic_credentials(&value(&format!("basic {encoded}"))),
            Some(("ann".to_owned(), "a:b".to_owned()))
        );
        assert_eq!(basic_credentials(&value("Basic !!!")), None);
        assert_eq!(
            basic_credentials(&value(&format!("Basic {}", STANDARD.encode("no colon")))),
            None
        );
        assert_eq!(basic_credentials(&value("Basic")), None);
    }

    #[test]
    fn channel_signatures_are_per_slug_and_key() {
        let signer = Signer::new(b"key");
        let sig = channel_signature(&signer, "best");
        assert!(is_channel_signature(&signer, "best", &sig));
        assert!(!is_channel_signature(&signer, "race", &sig));
        assert!(!is_channel_signature(&Signer::new(b"other"), "best", &sig));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Whatever a client sends, parsing never panics and no header but
        /// the viewer's exact credentials is admitted.
        #[test]
        fn no_authorization_header_but_the_viewers_is_admitted(text in "\\PC{0,60}") {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            let viewers = viewers("right");
            let Ok(value) = HeaderValue::from_str(&text) else { return Ok(()) };
            let mut headers = HeaderMap::new();
            headers.insert(header::AUTHORIZATION, value.clone());
            let admitted = runtime.block_on(viewers.admits(&headers));
            let exact = basic_credentials(&value) == Some(("ann".to_owned(), "right".to_owned()));
            prop_assert_eq!(admitted, exact);
        }
    }
}
