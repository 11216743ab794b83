//! The command line (README "Command line"): `serve`, `extract`, `check`,
//! `sign`, `schedule`, `history`, `channels`, `openapi`, `hash-password`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use reqwest::header::HeaderMap;
use tokio::net::TcpListener;

use crate::app::App;
use crate::config::Config;
use crate::db::{CheckedStream, RunRecord};
use crate::extraction::ProgressFn;
use crate::health::HealthChecker;
use crate::model::RunTrigger;
use crate::net::{self, Http};
use crate::proxy::token::Kind;

/// Self-hosted HLS stream aggregator for Formula 1 sessions.
#[derive(Debug, Parser)]
#[command(name = "f1-stream", version, about)]
pub struct Cli {
    /// Configuration file (default: config.toml, which may be absent).
    #[arg(short, long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// What to do (default: serve).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the service: API, proxy and background extraction.
    Serve,
    /// Run one extraction (extract, check, store) and print the results.
    Extract,
    /// Health-check one URL and print the verdict as JSON (exit 1 if unhealthy).
    Check {
        /// The playlist URL.
        url: String,
        /// Send this extractor's configured headers.
        #[arg(long, value_name = "SITE_KEY")]
        src: Option<String>,
    },
    /// Print the signed proxy path of a playlist URL.
    Sign {
        /// The playlist URL (absolute http or https).
        url: String,
        /// Send this extractor's headers upstream when the path is played.
        #[arg(long, value_name = "SITE_KEY")]
        src: Option<String>,
    },
    /// Print the upcoming F1 sessions with local start times (fetching the
    /// calendar when the stored one is missing or older than a day).
    Schedule {
        /// Fetch the calendar even when the stored one is fresh.
        #[arg(long)]
        refresh: bool,
    },
    /// Print a stream's recent health checks, newest first, with its uptime.
    History {
        /// The stream's id (as in `/streams`).
        stream_id: i64,
        /// How many checks to print.
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=1000))]
        limit: u32,
    },
    /// Print the failover channels with their active source and switches.
    Channels,
    /// Print the OpenAPI 3.1 document of the HTTP API (as served at `/openapi.json`).
    Openapi,
    /// Read a password from standard input (its first line) and print its
    /// argon2id hash for `auth.viewers` (`password_hash`).
    HashPassword,
}

impl Cli {
    /// Runs the chosen command.
    pub async fn run(self) -> anyhow::Result<ExitCode> {
        // `openapi` depends on the code only, so it loads no configuration.
        let config = || Config::load(self.config.as_deref());
        match self.command.unwrap_or(Command::Serve) {
            Command::Serve => serve(config()?).await,
            Command::Extract => extract(config()?).await,
            Command::Check { url, src } => check(config()?, &url, src.as_deref()).await,
            Command::Sign { url, src } => sign(config()?, &url, src.as_deref()).await,
            Command::Schedule { refresh } => schedule(config()?, refresh).await,
            Command::History { stream_id, limit } => history(config()?, stream_id, limit).await,
            Command::Channels => channels(config()?).await,
            Command::Openapi => {
                println!("{}", crate::api::openapi::openapi_json()?);
                Ok(ExitCode::SUCCESS)
            }
            Command::HashPassword => hash_password(),
        }
    }
}

/// Prints the hash of the password on standard input's first line (its
/// job is to print a secret's hash; the password itself is never printed).
fn hash_password() -> anyhow::Result<ExitCode> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    let password = line.strip_suffix('\n').unwrap_or(&line);
    let password = password.strip_suffix('\r').unwrap_or(password);
    anyhow::ensure!(!password.is_empty(), "no password on standard input");
    let hash = crate::api::viewers::hash_password(password)
        .map_err(|e| anyhow::anyhow!("cannot hash the password: {e}"))?;
    println!("{hash}");
    Ok(ExitCode::SUCCESS)
}

async fn serve(config: Config) -> anyhow::Result<ExitCode> {
    let listen = config.server.listen;
    let app = App::build(config).await.context("cannot start")?;
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen} (server.listen)"))?;
    // The bound address, not the configured one: with port 0 this is the
    // only way to learn the port (the process tests rely on this line).
    let address = listener
        .local_addr()
        .with_context(|| format!("cannot read the address bound for {listen}"))?;
    tracing::info!("listening on {address}");
    app.serve(listener, shutdown_signal()).await?;
    Ok(ExitCode::SUCCESS)
}

async fn extract(config: Config) -> anyhow::Result<ExitCode> {
    let app = App::build(config).await.context("cannot start")?;
    let progress: ProgressFn = Arc::new(|done, total| {
        eprint!("\rchecked {done}/{total}");
        if done == total {
            eprintln!();
        }
    });
    let (summary, record) = app
        .extraction()
        .run_with_progress(RunTrigger::Cli, Some(progress))
        .await?;
    print!("{}", render_table(&record));
    println!(
        "run {}: {} streams from {} extractors, {} healthy",
        summary.run_id, summary.streams_found, summary.extractors_run, summary.live_streams
    );
    for outcome in record.extractors.iter().filter(|o| o.error.is_some()) {
        println!(
            "extractor {} failed: {}",
            outcome.site_key,
            outcome.error.as_deref().unwrap_or("")
        );
    }
    app.db().close().await;
    Ok(ExitCode::SUCCESS)
}

async fn check(config: Config, url: &str, src: Option<&str>) -> anyhow::Result<ExitCode> {
    let headers = match src {
        None => HeaderMap::new(),
        Some(key) => {
            let extractor = config
                .extractors
                .iter()
                .find(|e| e.site_key == key)
                .with_context(|| format!("--src: no extractor with site_key {key:?}"))?;
            net::header_map(&extractor.headers)
        }
    };
    let http = Http::new(&config.network, &config.health.user_agent)?;
    let checker = HealthChecker::new(http, &config.health);
    let result = checker.check(url, &headers).await;
    let mut output = serde_json::to_value(&result)?;
    output["url"] = serde_json::Value::String(url.to_owned());
    let mut stdout = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut stdout, &output)?;
    writeln!(stdout)?;
    Ok(if result.is_live {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

async fn sign(config: Config, url: &str, src: Option<&str>) -> anyhow::Result<ExitCode> {
    let parsed = url::Url::parse(url).with_context(|| format!("{url:?} is not a URL"))?;
    anyhow::ensure!(
        matches!(parsed.scheme(), "http" | "https"),
        "{url:?} is not an http(s) URL"
    );
    if let Some(key) = src {
        anyhow::ensure!(
            config.extractors.iter().any(|e| e.site_key == key),
            "--src: no extractor with site_key {key:?}"
        );
    }
    let app = App::build(config)
        .await
        .context("cannot open the database for the signing key")?;
    println!("{}", app.signer().path(Kind::Proxy, url, src));
    app.db().close().await;
    Ok(ExitCode::SUCCESS)
}

/// Whether log lines on stderr carry ANSI colours: only when stderr is a
/// terminal (a file, a pipe or a journal gets plain text), and never when
/// `NO_COLOR` is set to a non-empty value (<https://no-color.org>).
pub fn log_colours(stderr_is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    stderr_is_terminal && no_color.is_none_or(|value| value.is_empty())
}

/// Renders a run as a fixed-width table, healthy and fastest first.
pub fn render_table(record: &RunRecord) -> String {
    let mut rows: Vec<(&str, &CheckedStream)> = record
        .extractors
        .iter()
        .flat_map(|o| o.streams.iter().map(move |s| (o.site_key.as_str(), s)))
        .collect();
    rows.sort_by_key(|(_, s)| (!s.health.is_live, s.health.response_time_ms.unwrap_or(u64::MAX)));
    let mut out = format!(
        "{:<16} {:<40} {:<5} {:>9} {:>10}  {}\n",
        "SITE", "TITLE", "LIVE", "RESP_MS", "BITRATE", "ERROR"
    );
    for (site, stream) in rows {
        let health = &stream.health;
        let title = stream.candidate.title.as_deref().unwrap_or(&stream.candidate.url);
        out.push_str(&format!(
            "{:<16} {:<40} {:<5} {:>9} {:>10}  {}\n",
            truncate(site, 16),
            truncate(title, 40),
            if health.is_live { "yes" } else { "no" },
            health
                .response_time_ms
                .map_or("-".to_owned(), |ms| ms.to_string()),
            health.bitrate,
            health.error.as_deref().unwrap_or(""),
        ));
    }
    out
}

fn truncate(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        text.to_owned()
    } else {
        let mut cut: String = text.chars().take(width - 1).collect();
        cut.push('…');
        cut
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
}

async fn channels(config: Config) -> anyhow::Result<ExitCode> {
    let app = App::build(config).await.context("cannot open the database")?;
    let channels = app.channels().overview().await?;
    let counts = app.db().channel_switch_counts().await?;
    let mut rows = Vec::with_capacity(channels.len());
    for channel in channels {
        let switches = counts
            .iter()
            .find(|c| c.slug == channel.slug)
            .map_or(0, |c| c.switches);
        let last = app
            .db()
            .channel_switches(&channel.slug, 1)
            .await?
            .into_iter()
            .next();
        rows.push((channel, switches, last));
    }
    app.db().close().await;
    print!("{}", render_channels(&rows));
    Ok(ExitCode::SUCCESS)
}

/// Renders `f1-stream channels`: one line per channel with its playlist
/// path, state, source, switch count and latest switch.
pub fn render_channels(
    rows: &[(crate::channel::ChannelOverview, i64, Option<crate::db::SwitchRow>)],
) -> String {
    let mut out = format!(
        "{:<16} {:<22} {:<8} {:<40} {:>8}  {}\n",
        "SLUG", "PLAYLIST", "STATE", "SOURCE", "SWITCHES", "LAST SWITCH"
    );
    for (channel, switches, last) in rows {
        let source = channel.source.as_ref().map_or("-".to_owned(), |source| {
            let bandwidth = source
                .variant_bandwidth
                .map_or(String::new(), |b| format!(" {} kb/s", b / 1000));
            format!(
                "#{} {} {}{bandwidth}",
                source.stream_id,
                source.site_key,
                source.title.as_deref().unwrap_or("(untitled)")
            )
        });
        let last = last.as_ref().map_or("-".to_owned(), |switch| {
            format!("{} {}", switch.at, switch.reason)
        });
        out.push_str(&format!(
            "{:<16} {:<22} {:<8} {:<40} {:>8}  {}\n",
            channel.slug,
            format!("/channels/{}.m3u8", channel.slug),
            channel.state.as_str(),
            source,
            switches,
            last
        ));
    }
    out
}

async fn history(config: Config, stream_id: i64, limit: u32) -> anyhow::Result<ExitCode> {
    let db = crate::db::Database::open(&config.database.url)
        .await
        .context("cannot open the database (database.url)")?;
    let Some(detail) = db.stream_detail(stream_id).await? else {
        db.close().await;
        anyhow::bail!("no stream with id {stream_id}");
    };
    let now = chrono::Utc::now();
    let windows = [
        chrono::TimeDelta::hours(24),
        chrono::TimeDelta::days(7),
        chrono::TimeDelta::days(30),
    ]
    .map(|span| (now - span, now));
    let tallies = db.stream_tallies(stream_id, &windows).await?;
    let checks = db
        .stream_checks(stream_id, crate::db::TimeRange::default(), None, limit)
        .await?;
    db.close().await;
    print!("{}", render_history(&detail, &tallies, &checks));
    Ok(ExitCode::SUCCESS)
}

/// Renders `f1-stream history`: a headline, uptime over 24 h / 7 d / 30 d
/// (`tallies`, in that order), then `checks` as a fixed-width table.
pub fn render_history(
    detail: &crate::db::StreamDetailRow,
    tallies: &[crate::db::Tally],
    checks: &[crate::db::CheckRow],
) -> String {
    let stream = &detail.stream;
    let mut out = format!(
        "stream {} ({}): {}\n{}\nactive: {}, latest check: {}\n",
        stream.id,
        stream.site_key,
        stream.title.as_deref().unwrap_or("(untitled)"),
        stream.url,
        if detail.active { "yes" } else { "no" },
        if stream.is_live { "healthy" } else { "unhealthy" },
    );
    let uptimes: Vec<String> = ["24h", "7d", "30d"]
        .iter()
        .zip(tallies)
        .map(|(label, tally)| match tally.uptime() {
            Some(uptime) => format!("{label} {:.1}% of {}", uptime * 100.0, tally.checks),
            None => format!("{label} -"),
        })
        .collect();
    out.push_str(&format!("uptime: {}\n", uptimes.join(", ")));
    out.push_str(&format!(
        "{:<24} {:<5} {:>8} {:>8} {:>5} {:>10} {:<8} {}\n",
        "CHECKED_AT", "LIVE", "RESP_MS", "TTFB_MS", "HTTP", "BITRATE", "TYPE", "ERROR"
    ));
    let or_dash = |value: Option<i64>| value.map_or("-".to_owned(), |v| v.to_string());
    for check in checks {
        out.push_str(&format!(
            "{:<24} {:<5} {:>8} {:>8} {:>5} {:>10} {:<8} {}\n",
            check.checked_at,
            if check.is_live { "yes" } else { "no" },
            or_dash(check.response_time_ms),
            or_dash(check.ttfb_ms),
            or_dash(check.http_status),
            check.bitrate,
            check.stream_type,
            check.error.as_deref().unwrap_or(""),
        ));
    }
    if checks.is_empty() {
        out.push_str("(no raw checks kept)\n");
    }
    out
}

async fn schedule(config: Config, refresh: bool) -> anyhow::Result<ExitCode> {
    let enabled = config.schedule.enabled;
    let app = App::build(config).await.context("cannot start")?;
    let schedule = app.schedule();
    let stored = schedule.calendar().await?;
    let now = schedule.now();
    let stale = crate::schedule::refresh::is_stale(now, stored.updated_at);
    let calendar = if refresh || (enabled && stale) {
        match schedule.refresh().await {
            Ok(fresh) => fresh,
            Err(err) if stored.updated_at.is_some() => {
                eprintln!("warning: {err}; showing the stored calendar");
                stored
            }
            Err(err) => return Err(err).context("no calendar stored and the refresh failed"),
        }
    } else {
        stored
    };
    print!(
        "{}",
        render_schedule(&calendar, &schedule.timing(), now, &chrono::Local)
    );
    app.db().close().await;
    Ok(ExitCode::SUCCESS)
}

/// Renders the live and upcoming sessions of `calendar` at `now` as a
/// fixed-width table with start times in `zone`, then one summary line.
pub fn render_schedule<Tz>(
    calendar: &crate::schedule::Calendar,
    timing: &crate::schedule::SessionTiming,
    now: chrono::DateTime<chrono::Utc>,
    zone: &Tz,
) -> String
where
    Tz: chrono::TimeZone,
    Tz::Offset: std::fmt::Display,
{
    use crate::schedule::SessionStatus;
    let mut out = format!(
        "{:>5}  {:<28} {:<18} {:<26} {}\n",
        "ROUND", "RACE", "SESSION", "START (LOCAL)", "STATUS"
    );
    let mut shown = 0;
    for (race, session) in calendar.sessions() {
        let status = timing.status(session, now);
        if status == SessionStatus::Past {
            continue;
        }
        shown += 1;
        let start = match session.start {
            Some(start) => start
                .with_timezone(zone)
                .format("%a %Y-%m-%d %H:%M %:z")
                .to_string(),
            None => format!("{} (time TBC)", session.date.format("%a %Y-%m-%d")),
        };
        out.push_str(&format!(
            "{:>5}  {:<28} {:<18} {:<26} {}\n",
            race.round,
            truncate(&race.race_name, 28),
            truncate(&session.name, 18),
            start,
            status.as_str(),
        ));
    }
    let updated = calendar.updated_at.map_or("never".to_owned(), |at| {
        at.with_timezone(zone).format("%Y-%m-%d %H:%M %:z").to_string()
    });
    out.push_str(&format!(
        "{shown} live or upcoming sessions; season {}, calendar updated {updated}\n",
        calendar.season.as_deref().unwrap_or("unknown"),
    ));
    out
}
