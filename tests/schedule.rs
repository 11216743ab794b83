//! The F1 calendar: parsing the Ergast fixtures, session status at chosen
//! instants, the adaptive polling loop under a paused clock (no real
//! waiting), refresh failures, restarts without network, `session=live`
//! and the `schedule` command.

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, FixedOffset, TimeDelta, Utc};
use common::{FakeOrigin, MEDIA_LIVE, Reply, TestService, refused_url};
use f1_stream::api::schedule::ScheduleResponse;
use f1_stream::config::{Config, SessionDurations};
use f1_stream::model::{RunTrigger, SessionType};
use f1_stream::schedule::calendar::{self, Calendar};
use f1_stream::schedule::{
    Decision, PollPolicy, Scheduler, SessionStatus, SessionTiming, TokioClock, WakeReason,
};
use serde_json::{Value, json};
use tokio::sync::watch;

const SEASON_2026: &str = include_str!("fixtures/schedule/season_2026.json");
const SHOOTOUT_2023: &str = include_str!("fixtures/schedule/season_2023_shootout.json");
const CALENDAR_PATH: &str = "/ergast/f1/current.json";

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .expect("test instant")
        .with_timezone(&Utc)
}

fn season_2026() -> Calendar {
    calendar::parse(SEASON_2026.as_bytes(), &SessionDurations::default()).expect("fixture parses")
}

fn default_timing() -> SessionTiming {
    SessionTiming::from_config(&Config::default().schedule)
}

fn types_of(calendar: &Calendar, round: u32) -> Vec<(SessionType, String, Option<DateTime<Utc>>)> {
    calendar
        .races
        .iter()
        .find(|r| r.round == round)
        .expect("round present")
        .sessions
        .iter()
        .map(|s| (s.session_type, s.name.clone(), s.start))
        .collect()
}

// --- parsing ----------------------------------------------------------------

#[test]
fn fixture_parses_every_session_type_in_round_order() {
    let calendar = season_2026();
    assert_eq!(calendar.season.as_deref(), Some("2026"));
    assert_eq!(calendar.updated_at, None);
    let rounds: Vec<u32> = calendar.races.iter().map(|r| r.round).collect();
    assert_eq!(rounds, [1, 2, 3], "sorted by round whatever the document order");

    let australia = &calendar.races[0];
    assert_eq!(australia.race_name, "Australian Grand Prix");
    assert_eq!(australia.circuit, "Albert Park Grand Prix Circuit");
    assert_eq!(australia.circuit_id, "albert_park");
    assert_eq!(australia.locality, "Melbourne");
    assert_eq!(australia.country, "Australia");
    assert_eq!(australia.date.to_string(), "2026-03-08");
    assert_eq!(
        australia.url.as_deref(),
        Some("https://en.wikipedia.org/wiki/2026_Australian_Grand_Prix")
    );
    assert_eq!(
        types_of(&calendar, 1),
        [
            (
                SessionType::Fp1,
                "Practice 1".to_owned(),
                Some(at("2026-03-06T01:30:00Z"))
            ),
            (
                SessionType::Fp2,
                "Practice 2".to_owned(),
                Some(at("2026-03-06T05:00:00Z"))
            ),
            (
                SessionType::Fp3,
                "Practice 3".to_owned(),
                Some(at("2026-03-07T01:30:00Z"))
            ),
            (
                SessionType::Qualifying,
                "Qualifying".to_owned(),
                Some(at("2026-03-07T05:00:00Z"))
            ),
            (
                SessionType::Race,
                "Race".to_owned(),
                Some(at("2026-03-08T04:00:00Z"))
            ),
        ]
    );
    let minutes: Vec<u32> = australia.sessions.iter().map(|s| s.duration_minutes).collect();
    assert_eq!(minutes, [60, 60, 60, 60, 120]);
}

#[test]
fn sprint_weekends_have_sprint_qualifying_and_sprint_in_time_order() {
    let calendar = season_2026();
    assert_eq!(
        types_of(&calendar, 2),
        [
            (
                SessionType::Fp1,
                "Practice 1".to_owned(),
                Some(at("2026-03-13T03:30:00Z"))
            ),
            (
                SessionType::SprintQualifying,
                "Sprint Qualifying".to_owned(),
                Some(at("2026-03-13T07:30:00Z"))
            ),
            (
                SessionType::Sprint,
                "Sprint".to_owned(),
                Some(at("2026-03-14T03:00:00Z"))
            ),
            (
                SessionType::Qualifying,
                "Qualifying".to_owned(),
                Some(at("2026-03-14T07:00:00Z"))
            ),
            (
                SessionType::Race,
                "Race".to_owned(),
                Some(at("2026-03-15T07:00:00Z"))
            ),
        ]
    );
    let sprint = &calendar.races[1].sessions;
    assert_eq!(sprint[1].duration_minutes, 30, "sprint qualifying");
    assert_eq!(sprint[2].duration_minutes, 30, "sprint");
}

#[test]
fn missing_times_give_sessions_with_a_date_and_no_start() {
    let calendar = season_2026();
    let japan = &calendar.races[2];
    let summary: Vec<(SessionType, String, bool)> = japan
        .sessions
        .iter()
        .map(|s| (s.session_type, s.date.to_string(), s.start.is_some()))
        .collect();
    assert_eq!(
        summary,
        [
            (SessionType::Fp1, "2026-03-27".to_owned(), true),
            (SessionType::Fp2, "2026-03-27".to_owned(), false),
            (SessionType::Fp3, "2026-03-28".to_owned(), false),
            (SessionType::Qualifying, "2026-03-28".to_owned(), false),
            (SessionType::Race, "2026-03-29".to_owned(), false),
        ]
    );
    let timing = default_timing();
    let race = &japan.sessions[4];
    assert_eq!(race.end(), None);
    assert_eq!(timing.window(race), None, "no start, no polling window");
    for instant in [
        "2026-03-29T00:00:00Z",
        "2026-03-29T05:00:00Z",
        "2026-03-29T23:59:59Z",
    ] {
        assert_eq!(
            timing.status(race, at(instant)),
            SessionStatus::Upcoming,
            "never live, upcoming through its day ({instant})"
        );
    }
    assert_eq!(
        timing.status(race, at("2026-03-30T00:00:00Z")),
        SessionStatus::Past
    );
}

#[test]
fn sprint_shootout_of_older_seasons_is_sprint_qualifying() {
    let calendar =
        calendar::parse(SHOOTOUT_2023.as_bytes(), &SessionDurations::default()).expect("2023 fixture parses");
    assert_eq!(calendar.season.as_deref(), Some("2023"));
    assert_eq!(
        types_of(&calendar, 4),
        [
            (
                SessionType::Fp1,
                "Practice 1".to_owned(),
                Some(at("2023-04-28T09:30:00Z"))
            ),
            (
                SessionType::Qualifying,
                "Qualifying".to_owned(),
                Some(at("2023-04-28T13:00:00Z"))
            ),
            (
                SessionType::SprintQualifying,
                "Sprint Shootout".to_owned(),
                Some(at("2023-04-29T08:30:00Z"))
            ),
            (
                SessionType::Sprint,
                "Sprint".to_owned(),
                Some(at("2023-04-29T13:30:00Z"))
            ),
            (
                SessionType::Race,
                "Race".to_owned(),
                Some(at("2023-04-30T11:00:00Z"))
            ),
        ]
    );
}

#[test]
fn configured_durations_apply_to_parsed_sessions() {
    let durations = SessionDurations {
        race: 150,
        sprint: 45,
        ..SessionDurations::default()
    };
    let calendar = calendar::parse(SEASON_2026.as_bytes(), &durations).expect("parses");
    let china = &calendar.races[1].sessions;
    assert_eq!(china[2].duration_minutes, 45);
    assert_eq!(china[4].duration_minutes, 150);
    assert_eq!(china[4].end(), Some(at("2026-03-15T09:30:00Z")));
}

// --- status -----------------------------------------------------------------

#[test]
fn race_status_just_before_at_during_and_after() {
    // Australian GP: 04:00, 120 minutes, 30 minutes of overrun allowance.
    let calendar = season_2026();
    let race = &calendar.races[0].sessions[4];
    let timing = default_timing();
    for (instant, expected) in [
        ("2026-03-08T03:59:59Z", SessionStatus::Upcoming),
        ("2026-03-08T04:00:00Z", SessionStatus::Live),
        ("2026-03-08T05:00:00Z", SessionStatus::Live),
        ("2026-03-08T06:00:00Z", SessionStatus::Live),
        ("2026-03-08T06:29:59Z", SessionStatus::Live),
        ("2026-03-08T06:30:00Z", SessionStatus::Past),
        ("2026-03-09T00:00:00Z", SessionStatus::Past),
    ] {
        assert_eq!(timing.status(race, at(instant)), expected, "at {instant}");
    }
}

#[test]
fn other_sessions_are_live_until_fifteen_minutes_after_their_end() {
    let calendar = season_2026();
    let fp1 = &calendar.races[0].sessions[0];
    let timing = default_timing();
    assert_eq!(
        timing.status(fp1, at("2026-03-06T01:29:59Z")),
        SessionStatus::Upcoming
    );
    assert_eq!(
        timing.status(fp1, at("2026-03-06T01:30:00Z")),
        SessionStatus::Live
    );
    assert_eq!(
        timing.status(fp1, at("2026-03-06T02:44:59Z")),
        SessionStatus::Live
    );
    assert_eq!(
        timing.status(fp1, at("2026-03-06T02:45:00Z")),
        SessionStatus::Past
    );
}

#[test]
fn schedule_response_reports_live_and_next_sessions_at_the_given_instant() {
    let calendar = season_2026();
    let timing = default_timing();

    let during_race = ScheduleResponse::new(&calendar, &timing, at("2026-03-08T05:00:00Z"));
    let body = serde_json::to_value(&during_race).expect("serializes");
    assert_eq!(body["live_session"]["round"], 1);
    assert_eq!(body["live_session"]["type"], "race");
    assert_eq!(body["live_session"]["status"], "live");
    assert_eq!(body["next_session"]["round"], 2);
    assert_eq!(body["next_session"]["type"], "fp1");
    assert_eq!(body["next_session"]["start_utc"], "2026-03-13T03:30:00.000Z");
    let statuses: Vec<&str> = body["races"][0]["sessions"]
        .as_array()
        .expect("sessions")
        .iter()
        .map(|s| s["status"].as_str().expect("status"))
        .collect();
    assert_eq!(statuses, ["past", "past", "past", "past", "live"]);

    // 10 minutes before the race: inside its polling window, not live yet.
    let before = ScheduleResponse::new(&calendar, &timing, at("2026-03-08T03:50:00Z"));
    assert_eq!(before.live_session, None);
    let next = before.next_session.expect("the race is next");
    assert_eq!((next.round, next.session.session_type.as_str()), (1, "race"));
    let window = timing
        .window_session(&calendar, at("2026-03-08T03:50:00Z"))
        .map(|(race, session)| (race.round, session.session_type));
    assert_eq!(
        window,
        Some((1, SessionType::Race)),
        "session=live serves race streams from the lead"
    );

    // Season over.
    let after = ScheduleResponse::new(&calendar, &timing, at("2026-11-01T00:00:00Z"));
    assert_eq!((after.live_session, after.next_session), (None, None));
}

#[test]
fn schedule_response_has_the_spec_shape() {
    let body = serde_json::to_value(ScheduleResponse::new(
        &season_2026(),
        &default_timing(),
        at("2026-03-01T00:00:00Z"),
    ))
    .expect("serializes");
    let race = &body["races"][2];
    assert_eq!(race["round"], 3);
    assert_eq!(race["race_name"], "Japanese Grand Prix");
    assert_eq!(race["circuit"], "Suzuka Circuit");
    assert_eq!(race["circuit_id"], "suzuka");
    assert_eq!(race["country"], "Japan");
    assert_eq!(race["locality"], "Suzuka");
    assert_eq!(race["date"], "2026-03-29");
    assert_eq!(
        race["url"],
        "https://en.wikipedia.org/wiki/2026_Japanese_Grand_Prix"
    );
    assert_eq!(
        race["sessions"][4],
        json!({"type": "race", "name": "Race", "date": "2026-03-29", "start_utc": null,
               "duration_minutes": 120, "status": "upcoming"})
    );
    assert_eq!(body["season"], "2026");
    assert_eq!(body["updated_at"], Value::Null);
}

// --- the polling loop under a paused clock ----------------------------------

/// One run the loop triggered, as the fake runner saw it.
#[derive(Debug, Clone)]
struct Run {
    at: DateTime<Utc>,
    trigger: RunTrigger,
    reason: WakeReason,
    session: Option<String>,
}

/// The real [`Scheduler`] over a [`TokioClock`], with a runner that only
/// records and takes `run_time` of (paused) time.
struct Loop {
    clock: TokioClock,
    runs: Arc<Mutex<Vec<Run>>>,
    max_in_flight: Arc<AtomicUsize>,
    calendar: watch::Sender<Arc<Calendar>>,
    stop: watch::Sender<bool>,
    handle: tokio::task::JoinHandle<()>,
}

fn policy() -> PollPolicy {
    PollPolicy::from_config(&Config::default())
}

fn start_loop(
    start: &str,
    calendar: Calendar,
    policy: PollPolicy,
    on_startup: bool,
    run_time: Duration,
) -> Loop {
    let clock = TokioClock::starting_at(at(start));
    let (calendar_tx, calendar_rx) = watch::channel(Arc::new(calendar));
    let (stop_tx, stop_rx) = watch::channel(false);
    let runs = Arc::new(Mutex::new(Vec::new()));
    let in_flight = Arc::new(AtomicUsize::new(0));
    let max_in_flight = Arc::new(AtomicUsize::new(0));
    let runner = {
        let runs = Arc::clone(&runs);
        let max_in_flight = Arc::clone(&max_in_flight);
        move |trigger: RunTrigger, decision: Decision| {
            let now = f1_stream::schedule::Clock::now(&clock);
            runs.lock().expect("runs lock").push(Run {
                at: now,
                trigger,
                reason: decision.reason,
                session: decision.session.map(|s| s.to_string()),
            });
            let in_flight = Arc::clone(&in_flight);
            let max_in_flight = Arc::clone(&max_in_flight);
            async move {
                let current = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                max_in_flight.fetch_max(current, Ordering::SeqCst);
                tokio::time::sleep(run_time).await;
                in_flight.fetch_sub(1, Ordering::SeqCst);
            }
        }
    };
    let scheduler = Scheduler::new(Arc::new(clock), calendar_rx, policy);
    let handle = tokio::spawn(scheduler.run(on_startup, runner, stop_rx));
    Loop {
        clock,
        runs,
        max_in_flight,
        calendar: calendar_tx,
        stop: stop_tx,
        handle,
    }
}

impl Loop {
    fn now(&self) -> DateTime<Utc> {
        f1_stream::schedule::Clock::now(&self.clock)
    }

    /// Lets (paused) time run until `instant`.
    async fn advance_to(&self, instant: &str) {
        let wait = (at(instant) - self.now()).to_std().expect("forward in time");
        tokio::time::sleep(wait).await;
    }

    fn runs(&self) -> Vec<Run> {
        self.runs.lock().expect("runs lock").clone()
    }

    async fn stop(self) -> Vec<Run> {
        self.stop.send(true).expect("loop listens");
        self.handle.await.expect("loop ends cleanly");
        self.runs.lock().expect("runs lock").clone()
    }
}

fn times(runs: &[Run]) -> Vec<String> {
    runs.iter().map(|r| r.at.format("%H:%M:%S").to_string()).collect()
}

/// Consecutive runs with the same reason and session at a constant spacing,
/// collapsed into one line, for a table a reader can check by eye.
fn decision_table(runs: &[Run]) -> String {
    let mut out = String::from("| runs (UTC) | count | reason | session |\n| --- | --- | --- | --- |\n");
    let mut i = 0;
    while i < runs.len() {
        let mut j = i + 1;
        let step = runs.get(i + 1).map(|next| next.at - runs[i].at);
        while j < runs.len()
            && runs[j].reason == runs[i].reason
            && runs[j].session == runs[i].session
            && Some(runs[j].at - runs[j - 1].at) == step
        {
            j += 1;
        }
        let first = runs[i].at.format("%a %H:%M:%S");
        let span = if j - i == 1 {
            first.to_string()
        } else {
            let minutes = step.map_or(0, |s| s.num_seconds() / 60);
            format!(
                "{first} → {} every {minutes} min",
                runs[j - 1].at.format("%a %H:%M:%S")
            )
        };
        out.push_str(&format!(
            "| {span} | {} | {} | {} |\n",
            j - i,
            runs[i].reason,
            runs[i].session.as_deref().unwrap_or("")
        ));
        i = j;
    }
    out
}

#[tokio::test(start_paused = true)]
async fn a_race_weekend_gets_a_run_at_every_window_opening_and_the_fast_cadence_inside() {
    // Australian GP weekend; service started Thursday noon; runs take 40 s.
    let calendar = season_2026();
    let sessions: Vec<_> = calendar.races[0].sessions.clone();
    let timing = default_timing();
    let looper = start_loop(
        "2026-03-05T12:00:00Z",
        calendar,
        policy(),
        true,
        Duration::from_secs(40),
    );
    looper.advance_to("2026-03-09T00:00:00Z").await;
    let max_in_flight = looper.max_in_flight.load(Ordering::SeqCst);
    let runs = looper.stop().await;
    println!("{}", decision_table(&runs));

    assert_eq!(max_in_flight, 1, "never two runs at once");
    assert_eq!(runs[0].trigger, RunTrigger::Startup);
    assert!(runs[1..].iter().all(|r| r.trigger == RunTrigger::Schedule));
    for pair in runs.windows(2) {
        assert!(
            pair[1].at - pair[0].at <= TimeDelta::minutes(30),
            "never more than the idle interval between runs: {:?}",
            pair
        );
    }
    for session in &sessions {
        let window = timing.window(session).expect("timed session");
        let inside: Vec<&Run> = runs.iter().filter(|r| window.contains(r.at)).collect();
        let label = session.session_type.as_str();
        assert_eq!(inside[0].at, window.open, "{label}: a run exactly at the opening");
        assert_eq!(inside[0].reason, WakeReason::WindowOpens, "{label}");
        for pair in inside.windows(2) {
            assert_eq!(
                pair[1].at - pair[0].at,
                TimeDelta::minutes(5),
                "{label}: fast cadence"
            );
            assert_eq!(pair[1].reason, WakeReason::Fast, "{label}");
        }
        let last_inside = inside.last().expect("runs inside");
        assert!(
            window.close - last_inside.at <= TimeDelta::minutes(5),
            "{label}: fast to the close"
        );
        let after = runs
            .iter()
            .find(|r| r.at >= window.close)
            .expect("a run after the window");
        assert_eq!(after.reason, WakeReason::Idle, "{label}: back to idle");
        assert_eq!(
            after.at - last_inside.at,
            TimeDelta::minutes(30),
            "{label}: idle interval"
        );
    }
    // Idle: 30 minutes; windows: 15 min lead + duration + 15 (30 for the race).
    let fast = runs
        .iter()
        .filter(|r| r.reason != WakeReason::Idle && r.reason != WakeReason::Startup);
    assert_eq!(
        fast.count(),
        4 * 18 + 33,
        "windows of 90 min (x4) and 165 min at 5-min cadence"
    );
}

#[tokio::test(start_paused = true)]
async fn a_refresh_that_adds_a_session_wakes_the_loop_earlier() {
    let looper = start_loop(
        "2026-03-06T00:00:00Z",
        Calendar::default(),
        policy(),
        false,
        Duration::from_secs(1),
    );
    looper.advance_to("2026-03-06T00:05:30Z").await;
    assert!(looper.runs().is_empty(), "idle: the first run would be at 00:30");

    // A refresh brings a session starting 00:20 (window open since 00:05)
    // and one at 01:00 (window opens 00:45).
    let mut calendar = season_2026();
    calendar.races.truncate(1);
    let sessions = &mut calendar.races[0].sessions;
    sessions.truncate(2);
    sessions[0].start = Some(at("2026-03-06T00:20:00Z"));
    sessions[1].start = Some(at("2026-03-06T01:00:00Z"));
    looper.calendar.send_replace(Arc::new(calendar));

    looper.advance_to("2026-03-06T00:54:00Z").await;
    let runs = looper.stop().await;
    assert_eq!(
        times(&runs),
        [
            "00:05:30", "00:10:30", "00:15:30", "00:20:30", "00:25:30", "00:30:30", "00:35:30", "00:40:30",
            "00:45:00", "00:50:00"
        ],
        "woken by the new calendar at once (not at the next idle run or sleep tick), \
         and the second window's opening resets the cadence"
    );
    assert_eq!(runs[0].reason, WakeReason::WindowOpens);
    assert_eq!(runs[0].session.as_deref(), Some("round 1 fp1"));
    assert_eq!(
        runs[8].reason,
        WakeReason::WindowOpens,
        "the second window opens at 00:45 sharp"
    );
    assert_eq!(runs[8].session.as_deref(), Some("round 1 fp2"));
}

#[tokio::test(start_paused = true)]
async fn changing_windows_with_slow_runs_never_starts_two_runs_at_once() {
    // Sprint 10:00 (window 09:45–10:45) and qualifying 10:50 (window opens
    // 10:35, inside the sprint's); every run takes 7 minutes, longer than
    // the 5-minute cadence.
    let mut calendar = season_2026();
    calendar.races.truncate(1);
    let sessions = &mut calendar.races[0].sessions;
    sessions.truncate(2);
    sessions[0].session_type = SessionType::Sprint;
    sessions[0].duration_minutes = 30;
    sessions[0].start = Some(at("2026-03-07T10:00:00Z"));
    sessions[1].session_type = SessionType::Qualifying;
    sessions[1].start = Some(at("2026-03-07T10:50:00Z"));
    let looper = start_loop(
        "2026-03-07T09:30:00Z",
        calendar,
        policy(),
        false,
        Duration::from_secs(7 * 60),
    );
    looper.advance_to("2026-03-07T12:30:00Z").await;
    let max_in_flight = looper.max_in_flight.load(Ordering::SeqCst);
    let runs = looper.stop().await;
    assert_eq!(max_in_flight, 1);
    for pair in runs.windows(2) {
        assert!(
            pair[1].at - pair[0].at >= TimeDelta::minutes(7),
            "each run starts after the previous one ended: {pair:?}"
        );
    }
    assert_eq!(runs[0].at, at("2026-03-07T09:45:00Z"));
    assert_eq!(times(&runs[..3]), ["09:45:00", "09:52:00", "09:59:00"]);
}

#[tokio::test(start_paused = true)]
async fn a_disabled_or_empty_schedule_polls_on_the_fixed_interval() {
    let disabled = PollPolicy {
        use_calendar: false,
        ..policy()
    };
    for (calendar, policy) in [(season_2026(), disabled), (Calendar::default(), policy())] {
        let looper = start_loop(
            "2026-03-08T02:00:00Z",
            calendar,
            policy,
            true,
            Duration::from_secs(40),
        );
        looper.advance_to("2026-03-08T06:59:00Z").await;
        let runs = looper.stop().await;
        assert_eq!(
            times(&runs),
            [
                "02:00:00", "02:30:00", "03:00:00", "03:30:00", "04:00:00", "04:30:00", "05:00:00",
                "05:30:00", "06:00:00", "06:30:00"
            ]
        );
        assert!(runs[1..].iter().all(|r| r.reason == WakeReason::Idle));
    }
}

#[tokio::test(start_paused = true)]
async fn starting_inside_a_window_runs_at_once_even_without_a_startup_run() {
    let looper = start_loop(
        "2026-03-08T05:12:00Z",
        season_2026(),
        policy(),
        false,
        Duration::from_secs(40),
    );
    looper.advance_to("2026-03-08T05:30:00Z").await;
    let runs = looper.stop().await;
    assert_eq!(times(&runs), ["05:12:00", "05:17:00", "05:22:00", "05:27:00"]);
    assert_eq!(runs[0].reason, WakeReason::WindowOpens);
    assert_eq!(runs[0].session.as_deref(), Some("round 1 race"));
}

// --- the service: fetch, persist, serve --------------------------------------

/// Config for the real service with the calendar at `url` and `extra`
/// sections (e.g. extractors).
fn service_config(db: &Path, url: &str, extra: &str) -> String {
    format!(
        "[database]\nurl = \"sqlite://{}\"\n\
         [network]\nallow_private_networks = true\n\
         [extraction]\nrun_on_startup = false\nextractor_timeout_secs = 2\n\
         [health]\ntimeout_secs = 2\n\
         [schedule]\nenabled = true\nurl = \"{url}\"\ntimeout_secs = 2\nmax_bytes = 65536\n\
         {extra}",
        db.display()
    )
}

fn ergast_time(instant: DateTime<Utc>) -> Value {
    json!({
        "date": instant.format("%Y-%m-%d").to_string(),
        "time": instant.format("%H:%M:%SZ").to_string(),
    })
}

/// An Ergast document with one race weekend whose sessions are `sessions`
/// (Ergast key, start) and whose race starts at `race`.
fn ergast_weekend(race: DateTime<Utc>, sessions: &[(&str, Value)]) -> String {
    let mut weekend = json!({
        "season": "2026", "round": "7", "url": "https://example.org/gp",
        "raceName": "Local Grand Prix",
        "Circuit": {"circuitId": "local", "circuitName": "Local Ring",
                    "Location": {"locality": "Town", "country": "Land"}},
        "date": race.format("%Y-%m-%d").to_string(),
        "time": race.format("%H:%M:%SZ").to_string(),
    });
    for (key, value) in sessions {
        weekend[*key] = value.clone();
    }
    json!({"MRData": {"RaceTable": {"season": "2026", "Races": [weekend]}}}).to_string()
}

async fn start_service(db: &Path, url: &str, extra: &str) -> TestService {
    TestService::start_with_config(db, &service_config(db, url, extra)).await
}

/// Starts the service with no stored calendar and waits (event-driven, no
/// sleeping) for its startup refresh to put the served one in force, so
/// later refreshes in the test cannot race it.
async fn start_fetched(db: &Path, url: &str, extra: &str) -> TestService {
    let service = start_service(db, url, extra).await;
    service.calendar_fetched().await;
    service
}

#[tokio::test]
async fn get_schedule_serves_the_refreshed_calendar_with_statuses_of_now() {
    let origin = FakeOrigin::start().await;
    let now = Utc::now();
    let tomorrow = now + TimeDelta::days(1);
    origin.route(
        CALENDAR_PATH,
        Reply::bytes(ergast_weekend(
            now - TimeDelta::minutes(10),
            &[
                ("FirstPractice", ergast_time(now - TimeDelta::hours(3))),
                ("Qualifying", ergast_time(now + TimeDelta::hours(2))),
                ("Sprint", json!({"date": tomorrow.format("%Y-%m-%d").to_string()})),
            ],
        )),
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("f1.db");
    let service = start_fetched(&db, &origin.url(CALENDAR_PATH), "").await;

    assert_eq!(
        service.post_json("/schedule/refresh").await,
        (200, json!({"status": "refreshed"}))
    );
    let (status, body) = service.get_json("/schedule").await;
    assert_eq!(status, 200);
    assert_eq!(body["season"], "2026");
    assert!(body["updated_at"].as_str().is_some_and(|t| t.ends_with('Z')));
    let race = &body["races"][0];
    assert_eq!(race["round"], 7);
    assert_eq!(race["race_name"], "Local Grand Prix");
    let statuses: Vec<(&str, &str)> = race["sessions"]
        .as_array()
        .expect("sessions")
        .iter()
        .map(|s| {
            (
                s["type"].as_str().expect("type"),
                s["status"].as_str().expect("status"),
            )
        })
        .collect();
    assert!(statuses.contains(&("fp1", "past")), "{statuses:?}");
    assert!(statuses.contains(&("race", "live")), "{statuses:?}");
    assert!(statuses.contains(&("qualifying", "upcoming")), "{statuses:?}");
    assert!(statuses.contains(&("sprint", "upcoming")), "{statuses:?}");
    assert_eq!(body["live_session"]["type"], "race");
    assert_eq!(body["live_session"]["race_name"], "Local Grand Prix");
    assert_eq!(body["next_session"]["type"], "qualifying");
    assert_eq!(service.count("schedule_sessions").await, 4);
    let (live, next) = service.app.schedule().live_window();
    assert!(live, "the race's window is open");
    assert!(next.is_some_and(|start| start > now));
}

#[tokio::test]
async fn a_missing_calendar_is_fetched_at_startup() {
    let origin = FakeOrigin::start().await;
    origin.route(CALENDAR_PATH, Reply::bytes(SEASON_2026));
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("f1.db");
    let service = start_service(&db, &origin.url(CALENDAR_PATH), "").await;
    let mut calendar = service.app.schedule().subscribe();
    tokio::time::timeout(Duration::from_secs(10), calendar.wait_for(|c| c.races.len() == 3))
        .await
        .expect("refreshed at startup within 10 s")
        .expect("calendar channel open");
    assert_eq!(origin.requests_to(CALENDAR_PATH).len(), 1);
    let accept = origin.requests_to(CALENDAR_PATH)[0].headers["accept"].clone();
    assert_eq!(accept, "application/json");
}

#[tokio::test]
async fn a_failed_refresh_keeps_the_previous_calendar() {
    let origin = FakeOrigin::start().await;
    origin.route(CALENDAR_PATH, Reply::bytes(SEASON_2026));
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("f1.db");
    let service = start_fetched(&db, &origin.url(CALENDAR_PATH), "").await;
    assert_eq!(service.post_json("/schedule/refresh").await.0, 200);
    let (_, good) = service.get_json("/schedule").await;
    let rows = service.count("schedule_sessions").await;
    assert_eq!(rows, 15);

    let bad_time = SEASON_2026.replace("\"05:00:00Z\"", "\"5 o'clock\"");
    for (reply, message) in [
        (Reply::status(500), "HTTP 500"),
        (Reply::bytes("<html>maintenance</html>"), "rejected"),
        (Reply::bytes("{\"MRData\": {}}"), "rejected"),
        (Reply::bytes(bad_time), "rejected"),
        (Reply::bytes(vec![b' '; 70_000]), "exceeds 65536 bytes"),
        (
            Reply::bytes(SEASON_2026).delay(Duration::from_secs(5)),
            "calendar fetch failed",
        ),
    ] {
        origin.route(CALENDAR_PATH, reply);
        let (status, body) = service.post_json("/schedule/refresh").await;
        assert_eq!(status, 502, "{body}");
        let error = body["error"].as_str().expect("JSON error");
        assert!(error.contains(message), "{error}");
        assert!(error.contains("stored calendar is kept"), "{error}");
        assert_eq!(service.get_json("/schedule").await.1, good, "after: {message}");
        assert_eq!(service.count("schedule_sessions").await, rows);
    }
}

#[tokio::test]
async fn a_restart_without_network_serves_the_stored_calendar() {
    let origin = FakeOrigin::start().await;
    origin.route(CALENDAR_PATH, Reply::bytes(SEASON_2026));
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("f1.db");
    let service = start_fetched(&db, &origin.url(CALENDAR_PATH), "").await;
    assert_eq!(service.post_json("/schedule/refresh").await.0, 200);
    let (_, before) = service.get_json("/schedule").await;
    assert_eq!(before["races"].as_array().map(Vec::len), Some(3));
    service.stop().await;
    drop(origin);

    let offline = start_service(&db, &refused_url().await, "").await;
    let (status, after) = offline.get_json("/schedule").await;
    assert_eq!(status, 200);
    assert_eq!(after, before, "same calendar, same updated_at, from the database");

    let (status, body) = offline.post_json("/schedule/refresh").await;
    assert_eq!(status, 502);
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("calendar fetch failed"))
    );
    assert_eq!(offline.get_json("/schedule").await.1, before);
}

#[tokio::test]
async fn a_blocked_calendar_address_is_refused_without_a_request() {
    let origin = FakeOrigin::start().await;
    origin.route(CALENDAR_PATH, Reply::bytes(SEASON_2026));
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("f1.db");
    let toml = common::replace_once(
        &service_config(&db, &origin.url(CALENDAR_PATH), ""),
        "allow_private_networks = true",
        "allow_private_networks = false",
    );
    let service = TestService::start_with_config(&db, &toml).await;
    let (status, body) = service.post_json("/schedule/refresh").await;
    assert_eq!(status, 502);
    assert!(
        body["error"].as_str().is_some_and(|e| e.contains("refused")),
        "{body}"
    );
    assert!(origin.requests_to(CALENDAR_PATH).is_empty());
    assert_eq!(service.get_json("/schedule").await.1["races"], json!([]));
}

#[tokio::test]
async fn session_live_serves_the_session_whose_window_is_open() {
    let origin = FakeOrigin::start().await;
    origin.route("/a.m3u8", Reply::playlist(MEDIA_LIVE));
    let extractor = format!(
        "[[extractors]]\nsite_key = \"tagged\"\nsite_name = \"Tagged\"\nkind = \"static\"\n\
         streams = [{{ url = \"{}\", session = \"race\" }}, {{ url = \"{}\", session = \"qualifying\" }}, \
         {{ url = \"{}\" }}]\n",
        origin.url("/a.m3u8?race"),
        origin.url("/a.m3u8?quali"),
        origin.url("/a.m3u8?untagged"),
    );
    // Channels following a session: the watch page opens the live one's.
    let extractor = format!(
        "{extractor}[[channels]]\nslug = \"quali\"\nsession = \"qualifying\"\n\
         [[channels]]\nslug = \"grand-prix\"\nsession = \"race\"\n"
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("f1.db");
    let now = Utc::now();
    origin.route(
        CALENDAR_PATH,
        Reply::bytes(ergast_weekend(now + TimeDelta::days(1), &[])),
    );
    let service = start_fetched(&db, &origin.url(CALENDAR_PATH), &extractor).await;
    assert_eq!(service.post_json("/extract").await.0, 200);
    let urls = |list: &Value| -> Vec<String> {
        let mut urls: Vec<String> = list["streams"]
            .as_array()
            .expect("streams")
            .iter()
            .map(|s| s["url"].as_str().expect("url").to_owned())
            .collect();
        urls.sort();
        urls
    };

    // The race started 20 minutes ago.
    origin.route(
        CALENDAR_PATH,
        Reply::bytes(ergast_weekend(now - TimeDelta::minutes(20), &[])),
    );
    assert_eq!(service.post_json("/schedule/refresh").await.0, 200);
    let (status, live) = service.get_json("/streams?session=live").await;
    assert_eq!(status, 200);
    assert_eq!(
        urls(&live),
        [origin.url("/a.m3u8?race"), origin.url("/a.m3u8?untagged")]
    );
    let default_channel = || async { service.get_json("/channels").await.1["default"].clone() };
    assert_eq!(default_channel().await, "grand-prix");
    let (status, race_channel) = service.get_json("/channels/grand-prix/streams").await;
    assert_eq!(status, 200);
    assert_eq!(
        urls(&race_channel),
        urls(&live),
        "the channel chooses from the race's streams"
    );

    // Qualifying in 10 minutes: its window is open (15-minute lead).
    origin.route(
        CALENDAR_PATH,
        Reply::bytes(ergast_weekend(
            now + TimeDelta::days(1),
            &[("Qualifying", ergast_time(now + TimeDelta::minutes(10)))],
        )),
    );
    assert_eq!(service.post_json("/schedule/refresh").await.0, 200);
    let (_, live) = service.get_json("/streams?session=live").await;
    assert_eq!(
        urls(&live),
        [origin.url("/a.m3u8?quali"), origin.url("/a.m3u8?untagged")]
    );
    assert_eq!(default_channel().await, "quali");

    // Nothing live: an empty list, not an error.
    origin.route(
        CALENDAR_PATH,
        Reply::bytes(ergast_weekend(now + TimeDelta::days(1), &[])),
    );
    assert_eq!(service.post_json("/schedule/refresh").await.0, 200);
    assert_eq!(
        service.get_json("/streams?session=live").await,
        (200, json!({"streams": [], "count": 0}))
    );
    assert_eq!(default_channel().await, "best", "nothing live: the best of all");
    // Other parameters are still validated.
    assert_eq!(service.get_json("/streams?session=live&limit=0").await.0, 400);
}

// --- the `schedule` command ---------------------------------------------------

#[test]
fn render_schedule_lists_live_and_upcoming_sessions_in_the_given_zone() {
    let mut calendar = season_2026();
    calendar.updated_at = Some(at("2026-03-07T03:00:00Z"));
    let tokyo = FixedOffset::east_opt(9 * 3600).expect("offset");
    let table =
        f1_stream::cli::render_schedule(&calendar, &default_timing(), at("2026-03-08T05:00:00Z"), &tokyo);
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("ROUND  RACE"), "{table}");
    assert!(lines[1].contains("Australian Grand Prix"), "{table}");
    assert!(
        lines[1].contains("Sun 2026-03-08 13:00 +09:00"),
        "local time: {table}"
    );
    assert!(lines[1].ends_with("live"), "{table}");
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.contains("Australian Grand Prix"))
            .count(),
        1,
        "past sessions are left out: {table}"
    );
    assert!(table.contains("Sat 2026-03-28 (time TBC)"), "{table}");
    assert!(
        lines
            .last()
            .is_some_and(|l| l.contains("season 2026") && l.contains("2026-03-07 12:00 +09:00")),
        "{table}"
    );
}

async fn run_cli(args: &[&str]) -> std::process::Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_f1-stream"))
        .args(args)
        .env("RUST_LOG", "warn")
        .env("TZ", "UTC")
        .output()
        .await
        .expect("binary runs")
}

#[tokio::test]
async fn schedule_command_fetches_then_prints_upcoming_sessions_in_local_time() {
    let origin = FakeOrigin::start().await;
    let race = (Utc::now() + TimeDelta::days(2))
        .date_naive()
        .and_hms_opt(13, 0, 0)
        .expect("time")
        .and_utc();
    origin.route(CALENDAR_PATH, Reply::bytes(ergast_weekend(race, &[])));
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("f1.db");
    let config_path = dir.path().join("config.toml");
    std::fs::write(&config_path, service_config(&db, &origin.url(CALENDAR_PATH), "")).expect("write config");
    let config = config_path.to_str().expect("utf-8 path");

    let output = run_cli(&["schedule", "-c", config]).await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let expected = race.format("%a %Y-%m-%d 13:00 +00:00").to_string();
    assert!(stdout.contains("Local Grand Prix"), "{stdout}");
    assert!(stdout.contains(&expected), "{stdout}");
    assert!(stdout.contains("upcoming"), "{stdout}");
    assert_eq!(origin.requests_to(CALENDAR_PATH).len(), 1);

    // Fresh in the database: no fetch. A forced refresh that fails still
    // prints the stored calendar, with a warning.
    let output = run_cli(&["schedule", "-c", config]).await;
    assert!(output.status.success());
    assert_eq!(origin.requests_to(CALENDAR_PATH).len(), 1);
    origin.route(CALENDAR_PATH, Reply::status(503));
    let output = run_cli(&["schedule", "--refresh", "-c", config]).await;
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).contains("Local Grand Prix"));
    assert!(String::from_utf8_lossy(&output.stderr).contains("HTTP 503"));
}
