//! The F1 calendar: parsing the Ergast-compatible JSON into races and
//! sessions, and converting to and from the `schedule_sessions` rows.

use std::collections::HashSet;

use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, TimeDelta, Utc};
use serde::Deserialize;

use crate::config::SessionDurations;
use crate::db::{ScheduleMetaRow, ScheduleSessionRow};
use crate::model::{SessionType, format_timestamp};

/// A season's races: what the scheduler plans on and `/schedule` serves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Calendar {
    /// Season, e.g. `2026`, when the source names one.
    pub season: Option<String>,
    /// When it was fetched; `None` before the first successful refresh.
    pub updated_at: Option<DateTime<Utc>>,
    /// Races in round order.
    pub races: Vec<Race>,
}

/// One race weekend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Race {
    /// Season of the race.
    pub season: String,
    /// Round within the season.
    pub round: u32,
    /// Grand Prix name.
    pub race_name: String,
    /// Reference page of the race.
    pub url: Option<String>,
    /// Circuit name.
    pub circuit: String,
    /// Ergast circuit id.
    pub circuit_id: String,
    /// Country of the circuit.
    pub country: String,
    /// Town of the circuit.
    pub locality: String,
    /// Race day.
    pub date: NaiveDate,
    /// Sessions in time order (the race itself included).
    pub sessions: Vec<Session>,
}

/// One session of a weekend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// `fp1` … `race`.
    pub session_type: SessionType,
    /// Display name, e.g. `Practice 1`.
    pub name: String,
    /// Day (UTC) of the session.
    pub date: NaiveDate,
    /// Start; `None` when the calendar has no time yet (never live then).
    pub start: Option<DateTime<Utc>>,
    /// Planned duration in minutes.
    pub duration_minutes: u32,
}

impl Session {
    /// Planned duration.
    pub fn duration(&self) -> TimeDelta {
        TimeDelta::minutes(i64::from(self.duration_minutes))
    }

    /// Planned end, when the start is known.
    pub fn end(&self) -> Option<DateTime<Utc>> {
        self.start.map(|start| start + self.duration())
    }
}

impl Calendar {
    /// Every session with its race, in round then time order.
    pub fn sessions(&self) -> impl Iterator<Item = (&Race, &Session)> {
        self.races
            .iter()
            .flat_map(|race| race.sessions.iter().map(move |session| (race, session)))
    }
}

/// The display name of a session type.
pub fn display_name(session: SessionType) -> &'static str {
    match session {
        SessionType::Fp1 => "Practice 1",
        SessionType::Fp2 => "Practice 2",
        SessionType::Fp3 => "Practice 3",
        SessionType::SprintQualifying => "Sprint Qualifying",
        SessionType::Sprint => "Sprint",
        SessionType::Qualifying => "Qualifying",
        SessionType::Race => "Race",
    }
}

/// Why a calendar document or the stored rows could not be read. A calendar
/// that fails here never replaces a good one.
#[derive(Debug, thiserror::Error)]
pub enum CalendarError {
    /// Not JSON, or not the Ergast shape.
    #[error("not an Ergast calendar: {0}")]
    Json(#[from] serde_json::Error),
    /// A field has a value that does not parse.
    #[error("round {round}: {field} {value:?} is not valid")]
    Value {
        /// The race's round as written.
        round: String,
        /// Which field.
        field: &'static str,
        /// The offending text.
        value: String,
    },
    /// Two races claim the same round.
    #[error("round {0} appears twice")]
    DuplicateRound(u32),
}

/// Parses an Ergast-compatible document (`MRData.RaceTable.Races[]`) into a
/// calendar with `durations`. Strict on values (a malformed date or time
/// rejects the whole document), lenient on absent times and extra fields.
pub fn parse(body: &[u8], durations: &SessionDurations) -> Result<Calendar, CalendarError> {
    let document: Document = serde_json::from_slice(body)?;
    let table = document.mr_data.race_table;
    let mut rounds = HashSet::new();
    let mut races = Vec::with_capacity(table.races.len());
    for race in table.races {
        let race = race.into_race(durations)?;
        if !rounds.insert(race.round) {
            return Err(CalendarError::DuplicateRound(race.round));
        }
        races.push(race);
    }
    races.sort_by_key(|race| race.round);
    let season = table
        .season
        .or_else(|| races.first().map(|race| race.season.clone()));
    Ok(Calendar {
        season,
        updated_at: None,
        races,
    })
}

impl Calendar {
    /// The rows `schedule_sessions` stores for this calendar.
    pub fn to_rows(&self) -> Vec<ScheduleSessionRow> {
        self.sessions()
            .map(|(race, session)| ScheduleSessionRow {
                season: race.season.clone(),
                round: i64::from(race.round),
                race_name: race.race_name.clone(),
                race_url: race.url.clone(),
                circuit: race.circuit.clone(),
                circuit_id: race.circuit_id.clone(),
                country: race.country.clone(),
                locality: race.locality.clone(),
                race_date: race.date.to_string(),
                session_type: session.session_type.as_str().to_owned(),
                session_name: session.name.clone(),
                date: session.date.to_string(),
                start_utc: session.start.map(format_timestamp),
                duration_minutes: i64::from(session.duration_minutes),
            })
            .collect()
    }

    /// Rebuilds a calendar from stored rows, durations from `durations`.
    pub fn from_rows(
        meta: Option<&ScheduleMetaRow>,
        rows: &[ScheduleSessionRow],
        durations: &SessionDurations,
    ) -> Result<Self, CalendarError> {
        let mut races: Vec<Race> = Vec::new();
        for row in rows {
            let round_text = row.round.to_string();
            let bad = |field: &'static str, value: &str| CalendarError::Value {
                round: round_text.clone(),
                field,
                value: value.to_owned(),
            };
            let round = u32::try_from(row.round).map_err(|_| bad("round", &round_text))?;
            let session_type: SessionType = row
                .session_type
                .parse()
                .map_err(|_| bad("session_type", &row.session_type))?;
            let date = parse_date(&row.date).ok_or_else(|| bad("date", &row.date))?;
            let start = match &row.start_utc {
                None => None,
                Some(text) => Some(
                    DateTime::parse_from_rfc3339(text)
                        .map_err(|_| bad("start_utc", text))?
                        .with_timezone(&Utc),
                ),
            };
            let session = Session {
                session_type,
                name: row.session_name.clone(),
                date,
                start,
                duration_minutes: durations.minutes(session_type),
            };
            match races.last_mut() {
                Some(race) if race.round == round && race.season == row.season => {
                    race.sessions.push(session);
                }
                _ => races.push(Race {
                    season: row.season.clone(),
                    round,
                    race_name: row.race_name.clone(),
                    url: row.race_url.clone(),
                    circuit: row.circuit.clone(),
                    circuit_id: row.circuit_id.clone(),
                    country: row.country.clone(),
                    locality: row.locality.clone(),
                    date: parse_date(&row.race_date).ok_or_else(|| bad("race_date", &row.race_date))?,
                    sessions: vec![session],
                }),
            }
        }
        for race in &mut races {
            sort_sessions(&mut race.sessions);
        }
        races.sort_by_key(|race| race.round);
        let updated_at = meta
            .and_then(|m| DateTime::parse_from_rfc3339(&m.updated_at).ok())
            .map(|at| at.with_timezone(&Utc));
        Ok(Self {
            season: meta
                .and_then(|m| m.season.clone())
                .or_else(|| races.first().map(|r| r.season.clone())),
            updated_at,
            races,
        })
    }
}

/// Weekend order: by day, then by session type (which is the time order of
/// the sessions of one day in every format F1 has used). A time is not part
/// of the key, as sessions without one must still sort among the others.
fn sort_sessions(sessions: &mut [Session]) {
    sessions.sort_by_key(|session| (session.date, session.session_type));
}

/// Years a calendar may name; anything else is a broken document, and the
/// bound keeps every date computation far from chrono's limits.
const YEARS: std::ops::RangeInclusive<i32> = 1950..=9999;

fn parse_date(text: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .filter(|date| YEARS.contains(&date.year()))
}

/// `HH:MM:SSZ` (Ergast), also without the `Z` or with fractional seconds;
/// always UTC.
fn parse_time(text: &str) -> Option<NaiveTime> {
    text.strip_suffix('Z').unwrap_or(text).parse().ok()
}

// --- the Ergast document ----------------------------------------------------

#[derive(Debug, Deserialize)]
struct Document {
    #[serde(rename = "MRData")]
    mr_data: MrData,
}

#[derive(Debug, Deserialize)]
struct MrData {
    #[serde(rename = "RaceTable")]
    race_table: RaceTable,
}

#[derive(Debug, Deserialize)]
struct RaceTable {
    #[serde(default)]
    season: Option<String>,
    #[serde(rename = "Races", default)]
    races: Vec<ErgastRace>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ErgastRace {
    season: String,
    round: String,
    race_name: String,
    #[serde(default)]
    url: Option<String>,
    #[serde(rename = "Circuit")]
    circuit: ErgastCircuit,
    date: String,
    #[serde(default)]
    time: Option<String>,
    #[serde(rename = "FirstPractice", default)]
    first_practice: Option<ErgastSession>,
    #[serde(rename = "SecondPractice", default)]
    second_practice: Option<ErgastSession>,
    #[serde(rename = "ThirdPractice", default)]
    third_practice: Option<ErgastSession>,
    #[serde(rename = "SprintQualifying", default)]
    sprint_qualifying: Option<ErgastSession>,
    /// The 2023 name of sprint qualifying.
    #[serde(rename = "SprintShootout", default)]
    sprint_shootout: Option<ErgastSession>,
    #[serde(rename = "Sprint", default)]
    sprint: Option<ErgastSession>,
    #[serde(rename = "Qualifying", default)]
    qualifying: Option<ErgastSession>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ErgastCircuit {
    circuit_id: String,
    circuit_name: String,
    #[serde(rename = "Location", default)]
    location: ErgastLocation,
}

#[derive(Debug, Default, Deserialize)]
struct ErgastLocation {
    #[serde(default)]
    locality: String,
    #[serde(default)]
    country: String,
}

#[derive(Debug, Deserialize)]
struct ErgastSession {
    date: String,
    #[serde(default)]
    time: Option<String>,
}

impl ErgastRace {
    fn into_race(self, durations: &SessionDurations) -> Result<Race, CalendarError> {
        let bad = |field: &'static str, value: &str| CalendarError::Value {
            round: self.round.clone(),
            field,
            value: value.to_owned(),
        };
        let round: u32 = self.round.trim().parse().map_err(|_| bad("round", &self.round))?;
        let date = parse_date(&self.date).ok_or_else(|| bad("date", &self.date))?;
        let shootout = self
            .sprint_shootout
            .as_ref()
            .filter(|_| self.sprint_qualifying.is_none());
        let sprint_qualifying = self.sprint_qualifying.as_ref().or(shootout);
        let race_day = ErgastSession {
            date: self.date.clone(),
            time: self.time.clone(),
        };
        let entries: [(SessionType, Option<&ErgastSession>); 7] = [
            (SessionType::Fp1, self.first_practice.as_ref()),
            (SessionType::Fp2, self.second_practice.as_ref()),
            (SessionType::Fp3, self.third_practice.as_ref()),
            (SessionType::SprintQualifying, sprint_qualifying),
            (SessionType::Sprint, self.sprint.as_ref()),
            (SessionType::Qualifying, self.qualifying.as_ref()),
            (SessionType::Race, Some(&race_day)),
        ];
        let mut sessions = Vec::new();
        for (session_type, entry) in entries {
            let Some(entry) = entry else { continue };
            let field = session_type.as_str();
            let day = parse_date(&entry.date).ok_or_else(|| bad(field, &entry.date))?;
            let start = match entry.time.as_deref().map(str::trim) {
                None | Some("") => None,
                Some(text) => Some(
                    day.and_time(parse_time(text).ok_or_else(|| bad(field, text))?)
                        .and_utc(),
                ),
            };
            let name = if session_type == SessionType::SprintQualifying && shootout.is_some() {
                "Sprint Shootout"
            } else {
                display_name(session_type)
            };
            sessions.push(Session {
                session_type,
                name: name.to_owned(),
                date: day,
                start,
                duration_minutes: durations.minutes(session_type),
            });
        }
        sort_sessions(&mut sessions);
        Ok(Race {
            season: self.season,
            round,
            race_name: self.race_name,
            url: self.url,
            circuit: self.circuit.circuit_name,
            circuit_id: self.circuit.circuit_id,
            country: self.circuit.location.country,
            locality: self.circuit.location.locality,
            date,
            sessions,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(races: &str) -> String {
        format!(r#"{{"MRData":{{"RaceTable":{{"season":"2026","Races":[{races}]}}}}}}"#)
    }

    const RACE: &str = r#"{"season":"2026","round":"3","raceName":"Test GP","date":"2026-04-05",
        "time":"13:00:00Z","Circuit":{"circuitId":"test","circuitName":"Test Ring",
        "Location":{"locality":"Town","country":"Land","lat":"1","long":"2"}}}"#;

    #[test]
    fn a_race_without_sessions_still_has_its_race_session() {
        let calendar = parse(doc(RACE).as_bytes(), &SessionDurations::default()).expect("parses");
        let race = &calendar.races[0];
        assert_eq!(race.sessions.len(), 1);
        assert_eq!(race.sessions[0].session_type, SessionType::Race);
        assert_eq!(race.sessions[0].duration_minutes, 120);
        assert_eq!(
            race.sessions[0].start.map(format_timestamp).as_deref(),
            Some("2026-04-05T13:00:00.000Z")
        );
    }

    #[test]
    fn malformed_values_reject_the_whole_document() {
        let durations = SessionDurations::default();
        let bad_time = RACE.replace("13:00:00Z", "1pm");
        assert!(matches!(
            parse(doc(&bad_time).as_bytes(), &durations),
            Err(CalendarError::Value { field: "race", .. })
        ));
        let bad_round = RACE.replace(r#""round":"3""#, r#""round":"three""#);
        assert!(parse(doc(&bad_round).as_bytes(), &durations).is_err());
        let far_future = RACE.replace("2026-04-05", "262143-12-31");
        assert!(matches!(
            parse(doc(&far_future).as_bytes(), &durations),
            Err(CalendarError::Value { field: "date", .. })
        ));
        let twice = format!("{RACE},{RACE}");
        assert!(matches!(
            parse(doc(&twice).as_bytes(), &durations),
            Err(CalendarError::DuplicateRound(3))
        ));
        assert!(matches!(
            parse(b"<html>", &durations),
            Err(CalendarError::Json(_))
        ));
        assert!(parse(br#"{"MRData":{}}"#, &durations).is_err());
    }

    #[test]
    fn rows_round_trip() {
        let calendar = parse(doc(RACE).as_bytes(), &SessionDurations::default()).expect("parses");
        let back = Calendar::from_rows(None, &calendar.to_rows(), &SessionDurations::default())
            .expect("rows read back");
        assert_eq!(back, calendar);
    }
}
