//! The binary itself: `extract`, `check`, `sign`, configuration errors, and
//! when its logs carry colours.

mod common;

use std::process::Output;

use common::{FakeOrigin, MASTER, Reply, static_extractor, test_config_toml};

async fn run(args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_f1-stream"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .await
        .expect("binary runs")
}

fn count_checks(db: &std::path::Path) -> i64 {
    let output = std::process::Command::new("sqlite3")
        .arg(db)
        .arg("SELECT COUNT(*) FROM health_checks")
        .output();
    match output {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("count"),
        // Without the sqlite3 tool, read the file through the library instead.
        _ => tokio::runtime::Runtime::new().expect("runtime").block_on(async {
            let db = f1_stream::db::Database::open(&format!("sqlite://{}", db.display()))
                .await
                .expect("opens");
            sqlx::query_scalar("SELECT COUNT(*) FROM health_checks")
                .fetch_one(db.pool())
                .await
                .expect("count")
        }),
    }
}

#[tokio::test]
async fn extract_stores_a_run_and_prints_a_table_each_time() {
    let origin = FakeOrigin::start().await;
    origin.route("/a.m3u8", Reply::playlist(MASTER));
    origin.route("/b.m3u8", Reply::status(404));
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("data/f1.db");
    let config_path = dir.path().join("config.toml");
    let extractors = static_extractor("local", &[origin.url("/a.m3u8"), origin.url("/b.m3u8")], "");
    std::fs::write(&config_path, test_config_toml(&db, &extractors)).expect("write config");
    let config = config_path.to_str().expect("utf-8 path");

    let output = run(&["extract", "-c", config]).await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines[0].starts_with("SITE"), "{stdout}");
    assert!(lines[1].starts_with("local") && lines[1].contains("yes") && lines[1].contains("5000000"));
    assert!(
        lines[2].contains("no") && lines[2].contains("HTTP 404"),
        "{stdout}"
    );
    assert!(
        stdout.contains("2 streams from 1 extractors, 1 healthy"),
        "{stdout}"
    );
    assert!(String::from_utf8_lossy(&output.stderr).contains("checked 2/2"));

    let db_for_count = db.clone();
    let first = tokio::task::spawn_blocking(move || count_checks(&db_for_count))
        .await
        .expect("count");
    assert_eq!(first, 2);
    assert!(run(&["extract", "--config", config]).await.status.success());
    let second = tokio::task::spawn_blocking(move || count_checks(&db))
        .await
        .expect("count");
    assert_eq!(
        second, 4,
        "health_checks grows by the number of streams on each run"
    );
}

#[tokio::test]
async fn check_prints_json_and_exits_by_verdict() {
    let origin = FakeOrigin::start().await;
    origin.route("/ok.m3u8", Reply::playlist(MASTER));
    origin.route("/dead.m3u8", Reply::status(500));
    let dir = tempfile::tempdir().expect("temp dir");
    let config_path = dir.path().join("c.toml");
    std::fs::write(&config_path, test_config_toml(&dir.path().join("f.db"), "")).expect("write config");
    let config = config_path.to_str().expect("utf-8 path");

    let healthy = run(&["check", &origin.url("/ok.m3u8"), "-c", config]).await;
    assert_eq!(healthy.status.code(), Some(0));
    let verdict: serde_json::Value = serde_json::from_slice(&healthy.stdout).expect("JSON");
    assert_eq!(verdict["is_live"], true);
    assert_eq!(verdict["bitrate"], 5_000_000);
    assert_eq!(verdict["url"], origin.url("/ok.m3u8"));

    let dead = run(&["check", &origin.url("/dead.m3u8"), "-c", config]).await;
    assert_eq!(dead.status.code(), Some(1));
    let verdict: serde_json::Value = serde_json::from_slice(&dead.stdout).expect("JSON");
    assert_eq!(verdict["error_kind"], "http_status");
    assert!(!dir.path().join("f.db").exists(), "check needs no database");
}

#[tokio::test]
async fn configuration_errors_stop_the_binary_naming_the_problem() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("absent.toml");
    let output = run(&["extract", "-c", missing.to_str().expect("utf-8")]).await;
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("does not exist"));

    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[health]\ntimeout = 3\n").expect("write");
    let output = run(&["serve", "-c", bad.to_str().expect("utf-8")]).await;
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("timeout"), "{stderr}");
    assert_eq!(
        stderr.matches("for key \"default.health.timeout\"").count(),
        1,
        "the reason is said once: {stderr}"
    );
}

#[tokio::test]
async fn sign_prints_a_path_the_service_on_the_same_database_serves() {
    let origin = FakeOrigin::start().await;
    origin.route("/a.m3u8", Reply::playlist(MASTER));
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("f1.db");
    let config_path = dir.path().join("config.toml");
    let toml = test_config_toml(&db, &static_extractor("local", &[origin.url("/a.m3u8")], ""));
    std::fs::write(&config_path, &toml).expect("write config");
    let config = config_path.to_str().expect("utf-8 path");
    let playlist = origin.url("/a.m3u8");

    // The key is generated into the database by the first command that
    // needs it, and the service started later signs with the same one.
    let output = run(&["sign", "-c", config, "--src", "local", &playlist]).await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let path = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    assert!(path.starts_with("/proxy/") && path.ends_with("/a.m3u8"), "{path}");
    assert!(path.contains(".local/"), "src travels in the token: {path}");
    let service = common::TestService::start_with_config(&db, &toml).await;
    let response = reqwest::get(service.url(&path)).await.expect("answers");
    assert_eq!(response.status(), 200);
    assert!(response.text().await.expect("text").contains("/proxy/"));

    for (args, message) in [
        (
            vec!["sign", "-c", config, "ftp://origin/a.m3u8"],
            "is not an http(s) URL",
        ),
        (vec!["sign", "-c", config, "not a url"], "is not a URL"),
        (
            vec!["sign", "-c", config, "--src", "nope", &playlist],
            "--src: no extractor with site_key \"nope\"",
        ),
    ] {
        let output = run(&args).await;
        assert!(!output.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
}

#[test]
fn logs_are_coloured_only_on_a_terminal_and_never_with_no_color() {
    use f1_stream::cli::log_colours;
    use std::ffi::OsStr;
    assert!(log_colours(true, None), "a terminal without NO_COLOR");
    assert!(!log_colours(false, None), "a pipe or a file gets plain text");
    assert!(!log_colours(true, Some(OsStr::new("1"))), "NO_COLOR=1");
    assert!(
        !log_colours(true, Some(OsStr::new("false"))),
        "any non-empty value"
    );
    assert!(
        log_colours(true, Some(OsStr::new(""))),
        "an empty NO_COLOR is unset"
    );
    assert!(!log_colours(false, Some(OsStr::new(""))));
}
