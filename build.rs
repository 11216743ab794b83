//! Build-time steps:
//! - rebuild the crate when a migration is added, so `sqlx::migrate!` embeds it;
//! - embed the watch page (`web/`): every file becomes an entry of a table in
//!   `$OUT_DIR/web_assets.rs` with its bytes, its content type, a weak ETag
//!   (SHA-256 of the bytes) and, for text that shrinks, a gzip copy made
//!   here once, so the service never compresses at request time.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// A gzip copy is kept only when it saves at least this share of the bytes.
const GZIP_MIN_SAVING: f64 = 0.10;

fn main() {
    println!("cargo:rerun-if-changed=migrations");
    println!("cargo:rerun-if-changed=web");
    let root = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo")).join("web");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("set by cargo"));
    let mut files = Vec::new();
    collect(&root, &mut files);
    files.sort();
    let mut table = String::from("&[\n");
    for file in files {
        let relative = file
            .strip_prefix(&root)
            .expect("under web/")
            .to_str()
            .expect("web/ file names are UTF-8")
            .replace('\\', "/");
        let bytes = std::fs::read(&file).unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
        let (content_type, compressible) = content_type(&relative);
        let digest = Sha256::digest(&bytes);
        let etag: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
        let gzip = if compressible {
            let compressed = gzip(&bytes);
            let saving = 1.0 - compressed.len() as f64 / bytes.len().max(1) as f64;
            (saving >= GZIP_MIN_SAVING).then(|| {
                let path = out.join("web-gzip").join(format!("{relative}.gz"));
                std::fs::create_dir_all(path.parent().expect("has a parent")).expect("create OUT_DIR folder");
                std::fs::write(&path, compressed).expect("write gzip copy");
                path
            })
        } else {
            None
        };
        let gzip = match gzip {
            Some(path) => format!("Some(include_bytes!({:?}))", path.display().to_string()),
            None => "None".to_owned(),
        };
        writeln!(
            table,
            "    WebAsset {{ path: {relative:?}, bytes: include_bytes!({:?}), gzip: {gzip}, \
             content_type: {content_type:?}, etag: \"W/\\\"{etag}\\\"\" }},",
            file.display().to_string()
        )
        .expect("write to a String");
    }
    table.push_str("]\n");
    std::fs::write(out.join("web_assets.rs"), table).expect("write web_assets.rs");
}

/// Every file below `dir`, skipping dot files (editor and OS droppings).
fn collect(dir: &Path, files: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
    for entry in entries {
        let entry = entry.expect("directory entry");
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        if path.is_dir() {
            collect(&path, files);
        } else {
            files.push(path);
        }
    }
}

/// The `Content-Type` of a page file, and whether gzip may pay for it.
/// An unknown kind fails the build, so nothing is served as a guess.
fn content_type(path: &str) -> (&'static str, bool) {
    let name = path.rsplit('/').next().unwrap_or(path);
    let extension = name.rsplit_once('.').map_or("", |(_, extension)| extension);
    match extension {
        "html" => ("text/html; charset=utf-8", true),
        "css" => ("text/css; charset=utf-8", true),
        "js" | "mjs" => ("text/javascript; charset=utf-8", true),
        "svg" => ("image/svg+xml", true),
        "json" | "webmanifest" => ("application/json", true),
        "png" => ("image/png", false),
        "ico" => ("image/x-icon", true),
        "" | "txt" | "md" => ("text/plain; charset=utf-8", true),
        other => panic!("web/{path}: no content type known for .{other}; add it to build.rs"),
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(bytes).expect("write to a Vec");
    encoder.finish().expect("finish a Vec")
}
