//! Process faults, proven on the real binary (`f1-stream`) run as a child
//! with temporary configs, and on the in-process service where a process
//! boundary adds nothing: SIGKILL while a run is stored, SIGTERM during
//! active relays, a corrupt or read-only database at start, a full disk
//! (size-limited database), a second instance on the same database, and
//! plain (uncoloured) logs on a pipe. Each test also checks what must NOT
//! have changed (the file, the previous run, the other requests).

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{FakeOrigin, MEDIA_VOD, Reply};
use f1_stream::db::Database;
use f1_stream::proxy::token::{Kind, Signer};
use futures::StreamExt;
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;
use tokio::process::{Child, Command};

const BINARY: &str = env!("CARGO_BIN_EXE_f1-stream");
/// Signing key the children use, so the test can sign relay URLs.
const SIGNING_KEY: &str = "process-test-signing-key";
/// How long a child may take to come up or go down before the test fails.
const PATIENCE: Duration = Duration::from_secs(30);

/// A config for a child: loopback origin allowed, no calendar, no startup
/// run unless `extra` says so, `top` before the first table (e.g.
/// `extractors = []`), `extra` tables after.
fn child_config(db: &Path, listen: &str, top: &str, extra: &str) -> String {
    format!(
        "{top}\n\
         [server]\nlisten = \"{listen}\"\nshutdown_grace_secs = 2\n\
         [database]\nurl = \"sqlite://{}\"\n\
         [network]\nallow_private_networks = true\n\
         [health]\ntimeout_secs = 5\nprobe_segment = false\n\
         [proxy]\nsigning_key = \"{SIGNING_KEY}\"\n\
         [schedule]\nenabled = false\n\
         {extra}",
        db.display()
    )
}

fn no_startup_run() -> &'static str {
    "[extraction]\nrun_on_startup = false\n"
}

fn write(path: &Path, text: &str) -> PathBuf {
    std::fs::write(path, text).expect("write file");
    path.to_owned()
}

fn sha256(path: &Path) -> String {
    let bytes = std::fs::read(path).expect("read file to hash");
    Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Log filter of the children: warnings, plus the command line's own info
/// lines (`listening on ADDR`, which tells the test the bound port).
const CHILD_LOG: &str = "warn,f1_stream::cli=info";

fn command(args: &[&str]) -> Command {
    let mut command = Command::new(BINARY);
    command
        .args(args)
        .env("RUST_LOG", CHILD_LOG)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    command
}

/// Starts `f1-stream serve -c config` with stderr piped. Its config should
/// listen on port 0; [`listening`] then learns the port the child bound, so
/// no port is picked (and raced for) by the test.
fn spawn_serve(config: &Path) -> Child {
    command(&["serve", "-c", config.to_str().expect("utf-8")])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("serve starts")
}

/// Reads a `serve` child's stderr until it logs `listening on ADDR` and
/// checks that `/health` answers there. Returns `http://ADDR` and a task
/// that keeps draining stderr (so a full pipe never stalls the child) and
/// resolves to everything the child wrote once it exits.
async fn listening(child: &mut Child) -> (String, tokio::task::JoinHandle<String>) {
    const NEEDLE: &str = "listening on ";
    let mut stderr = child.stderr.take().expect("stderr piped");
    let mut seen = Vec::new();
    let mut buffer = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let address = loop {
        let text = String::from_utf8_lossy(&seen);
        if let Some(line) = text.lines().find(|line| line.contains(NEEDLE))
            && text.contains(&format!("{line}\n"))
        {
            let (_, address) = line.split_once(NEEDLE).expect("needle in line");
            break address.trim().to_owned();
        }
        let read = tokio::time::timeout_at(deadline, stderr.read(&mut buffer))
            .await
            .expect("serve reports its address in time")
            .expect("read stderr");
        assert!(read > 0, "serve ended before listening: {text}");
        seen.extend_from_slice(&buffer[..read]);
    };
    let drain = tokio::spawn(async move {
        let _ = stderr.read_to_end(&mut seen).await;
        String::from_utf8_lossy(&seen).into_owned()
    });
    let base = format!("http://{address}");
    let health = reqwest::get(format!("{base}/health"))
        .await
        .unwrap_or_else(|e| panic!("{base} serves once it says it listens: {e}"));
    assert_eq!(health.status(), 200, "{base} never started serving");
    (base, drain)
}

/// Runs the binary to completion: (exit code, stderr).
async fn run(args: &[&str]) -> (Option<i32>, String) {
    let output = command(args).output().await.expect("binary runs");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn sigterm(child: &Child) {
    let pid = child.id().expect("child is running").to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -TERM {pid}");
}

fn sqlite_url(db: &Path) -> String {
    format!("sqlite://{}", db.display())
}

async fn scalar(db: &Database, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(db.pool())
        .await
        .expect("scalar query")
}

/// Opens the database as a restarted service would and checks that every
/// stored run is whole: each run has exactly `stream_count` checks and one
/// outcome per extractor, no check belongs to a missing run, the active
/// streams are those of the last stored run with the state of its checks,
/// and SQLite finds no damage. Returns the number of runs.
async fn assert_only_complete_runs(db_path: &Path, streams: i64, extractors: i64) -> i64 {
    let db = Database::open(&sqlite_url(db_path))
        .await
        .expect("the database opens after the fault");
    let integrity: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(db.pool())
        .await
        .expect("integrity check");
    assert_eq!(integrity, "ok");
    let runs: Vec<(i64, i64, i64, i64)> = sqlx::query_as(
        "SELECT r.id, r.stream_count,
                (SELECT COUNT(*) FROM health_checks h WHERE h.run_id = r.id),
                (SELECT COUNT(*) FROM extractor_runs e WHERE e.run_id = r.id)
         FROM extraction_runs r ORDER BY r.id",
    )
    .fetch_all(db.pool())
    .await
    .expect("runs");
    for &(id, stream_count, checks, outcomes) in &runs {
        assert_eq!(stream_count, streams, "run {id} found every stream");
        assert_eq!(checks, stream_count, "run {id} has all its checks");
        assert_eq!(outcomes, extractors, "run {id} has every extractor outcome");
    }
    assert_eq!(
        scalar(
            &db,
            "SELECT COUNT(*) FROM health_checks WHERE run_id NOT IN (SELECT id FROM extraction_runs)"
        )
        .await,
        0,
        "no check of a run that was not stored"
    );
    if !runs.is_empty() {
        assert_eq!(
            scalar(
                &db,
                "SELECT COUNT(*) FROM streams s JOIN health_checks h ON h.stream_id = s.id
                 WHERE s.active = 1 AND s.checked_at = h.checked_at
                   AND h.run_id = (SELECT MAX(id) FROM extraction_runs)"
            )
            .await,
            streams,
            "the served state is the newest stored run's"
        );
    }
    db.close().await;
    runs.len() as i64
}

/// Runs stored so far, read without opening the database for writing.
async fn stored_runs(db: &Path) -> i64 {
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(db)
        .read_only(true);
    let Ok(pool) = sqlx::SqlitePool::connect_with(options).await else {
        return 0;
    };
    let runs = sqlx::query_scalar("SELECT COUNT(*) FROM extraction_runs")
        .fetch_one(&pool)
        .await
        .unwrap_or(0);
    pool.close().await;
    runs
}

// --- logs -------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_written_to_a_pipe_carry_no_colour_codes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("f1.db");
    let config = write(
        &dir.path().join("config.toml"),
        &child_config(&db, "127.0.0.1:0", "extractors = []", no_startup_run()),
    );
    // Every info line, and NO_COLOR unset: only the pipe can turn colours off.
    let mut child = command(&["serve", "-c", config.to_str().expect("utf-8")])
        .env("RUST_LOG", "info")
        .env_remove("NO_COLOR")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("serve starts");
    let (_base, stderr) = listening(&mut child).await;
    sigterm(&child);
    let status = tokio::time::timeout(PATIENCE, child.wait())
        .await
        .expect("exits")
        .expect("reaped");
    assert_eq!(status.code(), Some(0));
    let stderr = stderr.await.expect("stderr drained");
    assert!(
        stderr.contains("INFO") && stderr.contains("listening on") && stderr.contains("shutting down"),
        "the log lines were captured: {stderr}"
    );
    assert!(
        !stderr.contains("\x1b["),
        "ANSI escape codes in piped logs: {stderr:?}"
    );
}

// --- SIGKILL while storing -------------------------------------------------------

/// Starts `f1-stream extract` and resolves once it reports its checks done
/// (`checked N/N`, printed just before the run is stored), with that moment.
async fn extract_until_checked(config: &Path, streams: usize) -> (Child, Instant) {
    let mut child = command(&["extract", "-c", config.to_str().expect("utf-8")])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("extract starts");
    let mut stderr = child.stderr.take().expect("stderr piped");
    let needle = format!("checked {streams}/{streams}");
    let mut seen = Vec::new();
    let mut buffer = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + PATIENCE * 4;
    loop {
        let read = tokio::time::timeout_at(deadline, stderr.read(&mut buffer))
            .await
            .expect("extract reports its checks in time")
            .expect("read stderr");
        assert!(
            read > 0,
            "extract ended before its checks: {}",
            String::from_utf8_lossy(&seen)
        );
        seen.extend_from_slice(&buffer[..read]);
        if String::from_utf8_lossy(&seen).contains(&needle) {
            break;
        }
    }
    let checked_at = Instant::now();
    // Keep draining, so a full pipe never stalls the child.
    tokio::spawn(async move {
        let mut sink = Vec::new();
        let _ = stderr.read_to_end(&mut sink).await;
    });
    (child, checked_at)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_while_a_run_is_stored_leaves_the_previous_complete_run_and_no_partial_one() {
    const STREAMS: usize = 2000;
    let origin = FakeOrigin::start().await;
    origin.route("/v.m3u8", Reply::playlist(MEDIA_VOD));
    let dir = tempfile::tempdir().expect("temp dir");
    let list: String = (0..STREAMS)
        .map(|i| format!("#EXTINF:-1,Feed {i}\n{}?n={i}\n", origin.url("/v.m3u8")))
        .collect();
    let list_path = write(&dir.path().join("bulk.m3u"), &format!("#EXTM3U\n{list}"));
    let db = dir.path().join("f1.db");
    let extractor = format!(
        "[[extractors]]\nsite_key = \"bulk\"\nsite_name = \"Bulk\"\nkind = \"m3u\"\nurl = \"{}\"\n",
        list_path.display()
    );
    let config = write(
        &dir.path().join("config.toml"),
        &child_config(
            &db,
            "127.0.0.1:0",
            "",
            &format!("{}{extractor}", no_startup_run()),
        ),
    );

    // A complete run to fall back on, timed: from `checked` to the commit
    // (the run becomes visible to a reader) and to the exit.
    let (mut child, checked_at) = extract_until_checked(&config, STREAMS).await;
    let mut committed_after = None;
    let exit = loop {
        if let Some(status) = child.try_wait().expect("poll child") {
            break status;
        }
        if committed_after.is_none() && stored_runs(&db).await == 1 {
            committed_after = Some(checked_at.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    assert!(exit.success());
    let exited_after = checked_at.elapsed();
    let committed_after = committed_after.unwrap_or(exited_after);
    assert_eq!(assert_only_complete_runs(&db, STREAMS as i64, 1).await, 1);

    // Kills spread over the store, then one as soon as the commit is seen.
    let offsets = [
        Some(Duration::ZERO),
        Some(committed_after.mul_f64(0.4)),
        Some(committed_after.mul_f64(0.8)),
        None,
    ];
    let mut outcomes = Vec::new();
    for offset in offsets {
        let runs_before = assert_only_complete_runs(&db, STREAMS as i64, 1).await;
        let (mut child, checked_at) = extract_until_checked(&config, STREAMS).await;
        match offset {
            Some(offset) => tokio::time::sleep_until((checked_at + offset).into()).await,
            None => {
                while stored_runs(&db).await == runs_before && child.try_wait().expect("poll").is_none() {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            }
        }
        let offset = checked_at.elapsed();
        child.start_kill().expect("SIGKILL");
        let status = child.wait().await.expect("reaped");
        let runs_after = assert_only_complete_runs(&db, STREAMS as i64, 1).await;
        let outcome = match (status.code(), runs_after - runs_before) {
            (None, 0) => "killed before the commit: previous run kept, no trace of the new one",
            (None, 1) => "killed after the commit: the new run is complete",
            (Some(0), 1) => "finished before the kill",
            other => panic!("unexpected outcome {other:?}"),
        };
        outcomes.push(format!(
            "SIGKILL {:>5.0} ms after `checked` (first run: commit at {:.0} ms, exit at {:.0} ms): {outcome}",
            offset.as_secs_f64() * 1000.0,
            committed_after.as_secs_f64() * 1000.0,
            exited_after.as_secs_f64() * 1000.0,
        ));
    }
    eprintln!("{}", outcomes.join("\n"));
    assert!(
        outcomes.iter().any(|o| o.contains("before the commit")),
        "at least one kill must land mid-store: {outcomes:#?}"
    );
}

// --- SIGTERM during relays -------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_during_20_relays_lets_them_finish_or_cuts_them_at_the_grace_period_and_exits_0() {
    const GRACE: Duration = Duration::from_secs(5);
    // The stalled relays would last until the relay idle timeout (set to
    // 60 s below), and the process with them: anything that ends them and
    // exits before CUT_BEFORE is the grace period's doing. Far above GRACE,
    // so a loaded machine cannot push a correct cut past it.
    const IDLE: &str = "relay_idle_timeout_secs = 60\n";
    const CUT_BEFORE: Duration = Duration::from_secs(30);
    const LATE_BYTES: usize = 300_000;
    let origin = FakeOrigin::start().await;
    // Ten relays whose upstream answers 1 s after its request, so well
    // inside the grace period after the signal: they finish.
    origin.route(
        "/late.ts",
        Reply::bytes(vec![0x47u8; LATE_BYTES]).delay(Duration::from_millis(1000)),
    );
    // Ten relays whose upstream sends a little, then stays silent: cut.
    origin.route("/stalled.ts", Reply::stall(vec![0x47u8; 1880]));
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("f1.db");
    let toml = child_config(&db, "127.0.0.1:0", "extractors = []", no_startup_run());
    let toml = common::replace_once(
        &toml,
        "shutdown_grace_secs = 2\n",
        &format!("shutdown_grace_secs = {}\n", GRACE.as_secs()),
    );
    let toml = common::replace_once(&toml, "[proxy]\n", &format!("[proxy]\n{IDLE}"));
    let config = write(&dir.path().join("config.toml"), &toml);
    let mut child = spawn_serve(&config);
    let (base, _stderr) = listening(&mut child).await;

    let signer = Signer::new(SIGNING_KEY.as_bytes());
    let client = reqwest::Client::new();
    let mut stalled = Vec::new();
    for i in 0..10 {
        let url = format!(
            "{base}{}",
            signer.path(Kind::Relay, &format!("{}?c={i}", origin.url("/stalled.ts")), None)
        );
        let response = client.get(url).send().await.expect("relay head");
        assert_eq!(response.status(), 200);
        let mut body = response.bytes_stream();
        let first = body.next().await.expect("a first chunk").expect("chunk");
        assert!(!first.is_empty());
        stalled.push(tokio::spawn(async move {
            let mut outcome = Ok(());
            while let Some(chunk) = body.next().await {
                if let Err(e) = chunk {
                    outcome = Err(e);
                    break;
                }
            }
            (outcome, Instant::now())
        }));
    }
    let mut late = Vec::new();
    for i in 0..10 {
        let url = format!(
            "{base}{}",
            signer.path(Kind::Relay, &format!("{}?c={i}", origin.url("/late.ts")), None)
        );
        let client = client.clone();
        late.push(tokio::spawn(async move {
            let response = client.get(url).send().await?;
            let status = response.status();
            let body = response.bytes().await?;
            Ok::<_, reqwest::Error>((status, body.len()))
        }));
    }
    common::wait_until("the late relays reach the origin", PATIENCE, || {
        origin.requests_to("/late.ts").len() >= 10
    })
    .await;

    let signalled = Instant::now();
    sigterm(&child);
    let status = tokio::time::timeout(CUT_BEFORE, child.wait())
        .await
        .expect("the process exits at the end of the grace period, long before the idle timeout")
        .expect("reaped");
    let exited = signalled.elapsed();
    eprintln!("SIGTERM: exited {exited:?} after the signal");
    assert_eq!(status.code(), Some(0), "a graceful shutdown exits 0");
    assert!(
        exited >= GRACE - Duration::from_millis(300),
        "open relays hold the shutdown until the grace period ends ({exited:?})"
    );

    for relay in late {
        let (status, len) = relay
            .await
            .expect("task")
            .expect("an in-flight relay finishes during the grace period");
        assert_eq!((status.as_u16(), len), (200, LATE_BYTES));
    }
    for relay in stalled {
        let (outcome, ended) = relay.await.expect("task");
        assert!(
            outcome.is_err(),
            "a relay cut at the grace period must look aborted, not complete"
        );
        let after = ended.duration_since(signalled);
        eprintln!("SIGTERM: a stalled relay was cut {after:?} after the signal");
        assert!(
            after >= GRACE - Duration::from_millis(300) && after < CUT_BEFORE,
            "cut at the end of the grace period, not before it nor at the idle timeout: {after:?}"
        );
    }
    assert!(
        reqwest::get(format!("{base}/health")).await.is_err(),
        "nothing listens after the exit"
    );
    let db = Database::open(&sqlite_url(&db)).await.expect("reopens");
    let integrity: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(db.pool())
        .await
        .expect("integrity");
    assert_eq!(integrity, "ok");
}

// --- corrupt or read-only database at start --------------------------------------

/// A database with one stored run, made by the binary itself.
async fn make_database(dir: &Path) -> PathBuf {
    let origin = FakeOrigin::start().await;
    origin.route("/v.m3u8", Reply::playlist(MEDIA_VOD));
    let db = dir.join("f1.db");
    let streams: Vec<String> = (0..50)
        .map(|i| {
            format!(
                "{{ url = \"{}?n={i}\", title = \"Feed {i}\" }}",
                origin.url("/v.m3u8")
            )
        })
        .collect();
    let extractor = format!(
        "[[extractors]]\nsite_key = \"s\"\nsite_name = \"S\"\nkind = \"static\"\nstreams = [{}]\n",
        streams.join(", ")
    );
    let config = write(
        &dir.join("make.toml"),
        &child_config(
            &db,
            "127.0.0.1:0",
            "",
            &format!("{}{extractor}", no_startup_run()),
        ),
    );
    let (code, stderr) = run(&["extract", "-c", config.to_str().expect("utf-8")]).await;
    assert_eq!(code, Some(0), "{stderr}");
    db
}

/// Deterministic noise (no RNG crate needed).
fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 56) as u8
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_database_stops_the_start_with_a_clear_error_and_the_file_is_left_byte_identical() {
    let dir = tempfile::tempdir().expect("temp dir");
    let good = make_database(dir.path()).await;
    let good_bytes = std::fs::read(&good).expect("read database");
    assert!(good_bytes.len() >= 64 * 1024, "big enough to cut in half");
    let mut overwritten = good_bytes.clone();
    overwritten[8 * 4096..12 * 4096].copy_from_slice(&noise(4 * 4096, 7));
    let cases: [(&str, Vec<u8>, &str); 4] = [
        ("noise", noise(100_000, 42), "file is not a database"),
        (
            "text",
            b"this is a config file, not a database\n".repeat(100),
            "file is not a database",
        ),
        (
            "truncated",
            good_bytes[..good_bytes.len() / 2].to_vec(),
            "database disk image is malformed",
        ),
        (
            "overwritten pages",
            overwritten,
            "the file is damaged (PRAGMA quick_check: *** in database main *** ",
        ),
    ];
    for (name, bytes, reason) in cases {
        let case = dir.path().join(name.replace(' ', "-"));
        std::fs::create_dir(&case).expect("case dir");
        let db = write(&case.join("f1.db"), "");
        std::fs::write(&db, &bytes).expect("write corrupt database");
        let before = sha256(&db);
        // An extractor to sync: the start would write its row if it got
        // that far.
        let config = write(
            &case.join("config.toml"),
            &child_config(
                &db,
                "127.0.0.1:0",
                "",
                "[[extractors]]\nsite_key = \"s\"\nsite_name = \"S\"\nkind = \"static\"\n\
                 streams = [{ url = \"http://127.0.0.1:9/v.m3u8\" }]\n",
            ),
        );
        for subcommand in ["serve", "extract"] {
            let (code, stderr) = tokio::time::timeout(
                PATIENCE,
                run(&[subcommand, "-c", config.to_str().expect("utf-8")]),
            )
            .await
            .unwrap_or_else(|_| panic!("{name}: {subcommand} must stop, not serve"));
            eprint!("{name}, {subcommand}: {stderr}");
            assert_eq!(code, Some(2), "{name}: {subcommand}: {stderr}");
            let expected = format!(
                "error: cannot start: cannot open database {}: {reason}",
                db.display()
            );
            assert!(
                stderr.contains(&expected),
                "{name}: {subcommand}: {stderr:?} lacks {expected:?}"
            );
            assert_eq!(stderr.matches(reason).count(), 1, "said once: {stderr}");
            assert_eq!(sha256(&db), before, "{name}: the file is untouched");
            // `serve` logs this right after binding its port (CHILD_LOG
            // shows it), so its absence means no port was ever bound.
            assert!(
                !stderr.contains("listening on"),
                "{name}: {subcommand}: nothing was served: {stderr}"
            );
        }
    }
    // The intact database beside them still opens.
    assert_eq!(assert_only_complete_runs(&good, 50, 1).await, 1);
}

fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_database_stops_the_start_with_a_clear_error_and_the_file_is_left_byte_identical() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = make_database(dir.path()).await;
    for leftover in ["f1.db-wal", "f1.db-shm"] {
        assert!(!dir.path().join(leftover).exists(), "closed cleanly");
    }
    let config = write(
        &dir.path().join("config.toml"),
        &child_config(&db, "127.0.0.1:0", "extractors = []", ""),
    );
    chmod(&db, 0o444);
    chmod(&config, 0o644);
    chmod(dir.path(), 0o755);
    let before = sha256(&db);
    // Root writes through file modes: drop to `nobody` so read-only means it.
    let root = is_root();
    if root {
        assert!(
            std::process::Command::new("setpriv")
                .arg("--version")
                .output()
                .is_ok(),
            "running as root needs setpriv (util-linux) to drop privileges"
        );
    }
    for subcommand in ["serve", "extract"] {
        let config = config.to_str().expect("utf-8");
        let args: Vec<&str> = if root {
            vec![
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                BINARY,
                subcommand,
                "-c",
                config,
            ]
        } else {
            vec![subcommand, "-c", config]
        };
        let program = if root { "setpriv" } else { BINARY };
        let output = tokio::time::timeout(
            PATIENCE,
            Command::new(program)
                .args(&args)
                .env("RUST_LOG", CHILD_LOG)
                .kill_on_drop(true)
                .output(),
        )
        .await
        .expect("the start stops")
        .expect("runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        eprint!(
            "read-only, {subcommand} as {}: {stderr}",
            if root { "nobody" } else { "this user" }
        );
        assert_eq!(output.status.code(), Some(2), "{subcommand}: {stderr}");
        assert!(
            stderr.contains(&format!(
                "error: cannot start: cannot open database {}: ",
                db.display()
            )) && stderr.contains("attempt to write a readonly database")
                && stderr.contains("the file or its folder is not writable by this user"),
            "{subcommand}: {stderr}"
        );
        assert_eq!(sha256(&db), before, "{subcommand}: the file is untouched");
        // `serve` logs this right after binding its port (CHILD_LOG shows
        // it), so its absence means no port was ever bound.
        assert!(
            !stderr.contains("listening on"),
            "{subcommand}: nothing was served: {stderr}"
        );
    }
    // Made writable again, it holds the run it had.
    chmod(&db, 0o644);
    assert_eq!(assert_only_complete_runs(&db, 50, 1).await, 1);
}

// --- disk full ------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_database_fails_the_run_cleanly_and_the_previous_data_stays_served() {
    let origin = FakeOrigin::start().await;
    origin.route("/v.m3u8", Reply::playlist(MEDIA_VOD));
    let list = |count: usize, title_len: usize, tag: &str| {
        let entries: String = (0..count)
            .map(|i| {
                format!(
                    "#EXTINF:-1,{tag} {i} {}\n{}?{tag}={i}\n",
                    "x".repeat(title_len),
                    origin.url("/v.m3u8")
                )
            })
            .collect();
        format!("#EXTM3U\n{entries}")
    };
    origin.route("/list.m3u", Reply::bytes(list(3, 10, "first")));
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("f1.db");
    let extractor = format!(
        "[[extractors]]\nsite_key = \"m\"\nsite_name = \"M\"\nkind = \"m3u\"\nurl = \"{}\"\n",
        origin.url("/list.m3u")
    );
    // One MiB: the schema and a few runs fit, 2.4 MB of titles do not.
    let toml = common::replace_once(
        &child_config(
            &db,
            "127.0.0.1:0",
            "",
            &format!("{}{extractor}", no_startup_run()),
        ),
        "[database]\n",
        "[database]\nmax_size_mb = 1\n",
    );
    let service = common::TestService::start_with_config(&db, &toml).await;
    assert_eq!(service.app.config().database.max_size_mb, 1);

    let (status, first) = service.post_json("/extract").await;
    assert_eq!(status, 200, "{first}");
    let served = service.get_json("/streams").await.1;
    let served_all = service.get_json("/streams/all").await.1;
    let extractors = service.get_json("/extractors").await.1;
    assert_eq!(served["count"], 3);

    origin.route("/list.m3u", Reply::bytes(list(300, 8000, "big")));
    let (status, body) = service.post_json("/extract").await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(body, serde_json::json!({ "error": "internal error" }));
    assert_eq!(
        origin
            .requests_to("/v.m3u8")
            .iter()
            .filter(|r| r.query.as_deref().is_some_and(|q| q.starts_with("big=")))
            .count(),
        300,
        "the run extracted and checked everything; only storing failed"
    );
    assert_eq!(
        service.get_json("/streams").await.1,
        served,
        "previous data served"
    );
    assert_eq!(service.get_json("/streams/all").await.1, served_all);
    assert_eq!(service.get_json("/extractors").await.1, extractors);
    assert_eq!(
        service.count("extraction_runs").await,
        1,
        "no trace of the failed run"
    );
    assert_eq!(service.count("health_checks").await, 3);
    assert_eq!(service.count("streams").await, 3);
    let pages: i64 = sqlx::query_scalar("PRAGMA page_count")
        .fetch_one(service.app.db().pool())
        .await
        .expect("page count");
    assert!(pages * 4096 <= 1024 * 1024, "the file stayed within its limit");

    // Space freed by the rollback is reused: a run that fits is stored.
    origin.route("/list.m3u", Reply::bytes(list(2, 10, "after")));
    let (status, body) = service.post_json("/extract").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(service.get_json("/streams").await.1["count"], 2);
    assert_eq!(service.count("extraction_runs").await, 2);
    service.stop().await;
}

// --- a second instance on the same database -----------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_second_instance_on_the_same_database_is_safe_every_run_of_both_is_stored_whole() {
    const STREAMS: usize = 200;
    let origin = FakeOrigin::start().await;
    origin.route("/v.m3u8", Reply::playlist(MEDIA_VOD));
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("shared.db");
    let streams: Vec<String> = (0..STREAMS)
        .map(|i| {
            format!(
                "{{ url = \"{}?n={i}\", title = \"Feed {i}\" }}",
                origin.url("/v.m3u8")
            )
        })
        .collect();
    let extractor = format!(
        "[[extractors]]\nsite_key = \"s\"\nsite_name = \"S\"\nkind = \"static\"\nstreams = [{}]\n",
        streams.join(", ")
    );
    // Both start at once on a new file (racing to migrate it) and each
    // runs an extraction at startup.
    let mut servers: Vec<Child> = (0..2)
        .map(|i| {
            spawn_serve(&write(
                &dir.path().join(format!("serve{i}.toml")),
                &child_config(&db, "127.0.0.1:0", "", &extractor),
            ))
        })
        .collect();
    let mut bases = Vec::new();
    for server in &mut servers {
        bases.push(listening(server).await.0);
    }
    let cli_config = write(
        &dir.path().join("cli.toml"),
        &child_config(
            &db,
            "127.0.0.1:0",
            "",
            &format!("{}{extractor}", no_startup_run()),
        ),
    );
    let cli_config = cli_config.to_str().expect("utf-8");
    let deadline = Instant::now() + PATIENCE;
    while stored_runs(&db).await < 2 {
        assert!(Instant::now() < deadline, "both startup runs are stored");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A manual run on each, two CLI runs and readers, all at once.
    let client = reqwest::Client::new();
    let post = |base: &String| {
        let request = client.post(format!("{base}/extract")).send();
        async move {
            let response = request.await.expect("answers");
            (response.status().as_u16(), response.text().await.expect("body"))
        }
    };
    let read = |base: &String| {
        let request = client.get(format!("{base}/streams")).send();
        async move { request.await.expect("answers").status().as_u16() }
    };
    let (posts, clis, reads) = tokio::join!(
        futures::future::join_all(bases.iter().map(post)),
        futures::future::join_all((0..2).map(|_| async move { run(&["extract", "-c", cli_config]).await })),
        futures::future::join_all((0..20).map(|i| read(&bases[i % 2]))),
    );
    for (status, body) in &posts {
        assert_eq!(*status, 200, "{body}");
    }
    for (code, stderr) in &clis {
        assert_eq!(*code, Some(0), "{stderr}");
    }
    assert!(reads.iter().all(|&s| s == 200), "{reads:?}");

    // Both serve the same list with the same signing key.
    let lists: Vec<serde_json::Value> = futures::future::join_all(bases.iter().map(|base| async move {
        let text = reqwest::get(format!("{base}/streams"))
            .await
            .expect("answers")
            .text()
            .await
            .expect("body");
        let rooted = text.replace(base.as_str(), "BASE");
        serde_json::from_str(&rooted).expect("JSON")
    }))
    .await;
    assert_eq!(lists[0]["count"], STREAMS);
    assert_eq!(lists[0], lists[1]);

    for mut server in servers {
        sigterm(&server);
        let status = tokio::time::timeout(PATIENCE, server.wait())
            .await
            .expect("exits")
            .expect("reaped");
        assert_eq!(status.code(), Some(0));
    }
    // 2 startup runs + 2 manual + 2 CLI runs, none lost, none partial.
    assert_eq!(assert_only_complete_runs(&db, STREAMS as i64, 1).await, 6);
}
