//! Coverage: whether, at a given local time, the patient's primary clinic or the on-call team
//! answers an alert.
//!
//! The program's defaults (all configurable in [`CoverageConfig`]): on working days the on-call
//! team covers from 18:00 until the primary clinic opens next morning; house calls are dispatched
//! 18:00–06:00 and the partner clinic's night reception answers until 09:00. Saturdays, Sundays,
//! public holidays and the year-end period (29 December – 3 January) are covered all day. Outside
//! the primary clinic's opening hours an alert always goes on call, whatever the day. Local time is
//! Asia/Tokyo.

use std::fmt;

use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, Utc, Weekday};
use chrono_tz::{Asia::Tokyo, Tz};
use serde::{Deserialize, Serialize};

use super::holidays::{Holiday, HolidayCalendar, HolidayError};

/// The program's time zone. Japan has kept JST (UTC+9) without daylight saving since 1952, but the
/// zone database is used so that nothing here relies on that.
pub const PROGRAM_TIME_ZONE: Tz = Tokyo;

/// Who answers an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Coverage {
    /// The rota's on-call doctor.
    OnCall,
    /// The patient's own clinic, during its opening hours.
    PrimaryClinic,
}

/// Why the coverage is what it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    /// A working day, within the clinic's opening hours.
    ClinicOpen,
    /// A working day, at or after the evening changeover (default 18:00).
    WeekdayEvening,
    /// A working day, before the clinic's first opening of the day.
    BeforeClinicOpens,
    /// A working day, outside opening hours otherwise (lunch break, a half day, a closed weekday).
    ClinicClosed,
    /// A day of the week covered all day (default Saturday and Sunday).
    Weekend,
    /// A public holiday (国民の祝日, 振替休日 or 国民の休日).
    PublicHoliday,
    /// The year-end period (default 29 December – 3 January).
    YearEnd,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::ClinicOpen => "clinic-open",
            Self::WeekdayEvening => "weekday-evening",
            Self::BeforeClinicOpens => "before-clinic-opens",
            Self::ClinicClosed => "clinic-closed",
            Self::Weekend => "weekend",
            Self::PublicHoliday => "public-holiday",
            Self::YearEnd => "year-end",
        })
    }
}

/// A day of the year without a year, written `MM-DD` in configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MonthDay {
    month: u32,
    day: u32,
}

/// A `MM-DD` string that is not a day of the year.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid month-day {0:?}, expected MM-DD")]
pub struct InvalidMonthDay(String);

impl MonthDay {
    /// `month`/`day`, checked against a leap year so that 02-29 is accepted.
    pub fn new(month: u32, day: u32) -> Option<Self> {
        NaiveDate::from_ymd_opt(2000, month, day).map(|_| Self { month, day })
    }

    fn of(date: NaiveDate) -> Self {
        Self {
            month: date.month(),
            day: date.day(),
        }
    }
}

impl TryFrom<String> for MonthDay {
    type Error = InvalidMonthDay;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        let parsed = s
            .split_once('-')
            .and_then(|(m, d)| Some((m.parse().ok()?, d.parse().ok()?)))
            .and_then(|(m, d)| Self::new(m, d));
        parsed.ok_or(InvalidMonthDay(s))
    }
}

impl From<MonthDay> for String {
    fn from(md: MonthDay) -> Self {
        format!("{:02}-{:02}", md.month, md.day)
    }
}

/// A period of the year covered on call all day, both ends inclusive; it may wrap over New Year.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct YearEndPeriod {
    /// First day (default `12-29`).
    pub first_day: MonthDay,
    /// Last day (default `01-03`).
    pub last_day: MonthDay,
}

impl YearEndPeriod {
    fn contains(&self, date: NaiveDate) -> bool {
        let md = MonthDay::of(date);
        if self.first_day <= self.last_day {
            (self.first_day..=self.last_day).contains(&md)
        } else {
            md >= self.first_day || md <= self.last_day
        }
    }
}

impl Default for YearEndPeriod {
    fn default() -> Self {
        Self {
            first_day: MonthDay { month: 12, day: 29 },
            last_day: MonthDay { month: 1, day: 3 },
        }
    }
}

const fn hm(hour: u32, minute: u32) -> NaiveTime {
    match NaiveTime::from_hms_opt(hour, minute, 0) {
        Some(t) => t,
        None => panic!("invalid constant time"),
    }
}

const fn default_on_call_from() -> NaiveTime {
    hm(18, 0)
}
const fn default_house_calls_until() -> NaiveTime {
    hm(6, 0)
}
const fn default_night_reception_until() -> NaiveTime {
    hm(9, 0)
}
fn default_all_day_weekdays() -> Vec<Weekday> {
    vec![Weekday::Sat, Weekday::Sun]
}
const fn default_true() -> bool {
    true
}
fn default_year_end() -> Option<YearEndPeriod> {
    Some(YearEndPeriod::default())
}

/// The program's coverage rules. Times are local (Asia/Tokyo), written `HH:MM:SS` or `HH:MM`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoverageConfig {
    /// On working days the on-call team takes over at this time, even if the clinic is still
    /// open. Default 18:00.
    #[serde(default = "default_on_call_from")]
    pub on_call_from: NaiveTime,
    /// On working days, house calls are dispatched from `on_call_from` until this time next
    /// morning. Default 06:00.
    #[serde(default = "default_house_calls_until")]
    pub house_calls_until: NaiveTime,
    /// On working days, the partner clinic's night reception answers from `on_call_from` until
    /// this time next morning. Default 09:00.
    #[serde(default = "default_night_reception_until")]
    pub night_reception_until: NaiveTime,
    /// Days of the week covered on call all day. Default Saturday and Sunday.
    #[serde(default = "default_all_day_weekdays")]
    pub all_day_weekdays: Vec<Weekday>,
    /// Whether public holidays are covered on call all day. Default true.
    #[serde(default = "default_true")]
    pub public_holidays: bool,
    /// Year-end period covered all day; `None` to switch off. Default 29 December – 3 January.
    #[serde(default = "default_year_end")]
    pub year_end: Option<YearEndPeriod>,
}

impl Default for CoverageConfig {
    fn default() -> Self {
        Self {
            on_call_from: default_on_call_from(),
            house_calls_until: default_house_calls_until(),
            night_reception_until: default_night_reception_until(),
            all_day_weekdays: default_all_day_weekdays(),
            public_holidays: true,
            year_end: default_year_end(),
        }
    }
}

/// One opening session of a clinic on the given weekdays, `opens` inclusive, `closes` exclusive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Session {
    /// Days of the week the session applies to.
    pub days: Vec<Weekday>,
    /// Local opening time.
    pub opens: NaiveTime,
    /// Local closing time (the first minute no longer open).
    pub closes: NaiveTime,
}

/// A clinic's weekly opening hours.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpeningHours {
    /// Opening sessions; several per day are allowed (morning and afternoon around a lunch break).
    pub sessions: Vec<Session>,
    /// Whether the clinic closes on public holidays. Default true.
    #[serde(default = "default_true")]
    pub closed_on_public_holidays: bool,
}

impl OpeningHours {
    /// What the `oncall` command assumes without a patient: weekdays 09:00–18:00, closed on
    /// public holidays.
    pub fn weekdays_nine_to_six() -> Self {
        Self {
            sessions: vec![Session {
                days: vec![
                    Weekday::Mon,
                    Weekday::Tue,
                    Weekday::Wed,
                    Weekday::Thu,
                    Weekday::Fri,
                ],
                opens: hm(9, 0),
                closes: hm(18, 0),
            }],
            closed_on_public_holidays: true,
        }
    }

    fn sessions_on(&self, weekday: Weekday) -> impl Iterator<Item = &Session> {
        self.sessions
            .iter()
            .filter(move |s| s.days.contains(&weekday))
    }
}

impl Session {
    /// Whether `time` falls in the session. A session that closes at or before it opens runs
    /// overnight (`18:00-09:00`); both its evening and its morning count on the listed days,
    /// which is exact for the every-day night clinics that use it.
    fn contains(&self, time: NaiveTime) -> bool {
        if self.opens < self.closes {
            self.opens <= time && time < self.closes
        } else {
            time >= self.opens || time < self.closes
        }
    }
}

/// Opening hours the registry's text could not be read as.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot read opening hours {text:?}: {problem}")]
pub struct InvalidOpeningHours {
    /// The text as given.
    pub text: String,
    /// What is wrong with it.
    pub problem: &'static str,
}

/// Opening hours as the registry writes them, e.g. `Mon-Fri 09:00-18:00, Sat 09:00-12:00`,
/// `Mon/Wed-Fri 09:00-12:30 14:00-18:00`, `Every day 18:00-09:00`. Parts are separated by `,` or
/// `;`; a part without days keeps the previous part's days. Clinics close on public holidays.
impl std::str::FromStr for OpeningHours {
    type Err = InvalidOpeningHours;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let fail = |problem| InvalidOpeningHours {
            text: text.to_owned(),
            problem,
        };
        let mut sessions = Vec::new();
        let mut days: Option<Vec<Weekday>> = None;
        for part in text
            .split([',', ';'])
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            let mut words = part.split_whitespace().peekable();
            let mut day_words = Vec::new();
            while let Some(w) = words.next_if(|w| !w.starts_with(|c: char| c.is_ascii_digit())) {
                day_words.push(w);
            }
            if !day_words.is_empty() {
                days = Some(parse_days(&day_words.join(" ")).ok_or_else(|| fail("unknown days"))?);
            }
            let days = days.clone().ok_or_else(|| fail("times before any days"))?;
            let mut any = false;
            for range in words {
                let (opens, closes) = range
                    .split_once('-')
                    .ok_or_else(|| fail("expected HH:MM-HH:MM"))?;
                let parse =
                    |t: &str| NaiveTime::parse_from_str(t, "%H:%M").map_err(|_| fail("bad time"));
                sessions.push(Session {
                    days: days.clone(),
                    opens: parse(opens)?,
                    closes: parse(closes)?,
                });
                any = true;
            }
            if !any {
                return Err(fail("days without times"));
            }
        }
        if sessions.is_empty() {
            return Err(fail("empty"));
        }
        Ok(Self {
            sessions,
            closed_on_public_holidays: true,
        })
    }
}

/// `Mon-Fri`, `Sat`, `Mon/Wed-Fri`, `Every day`, `Daily`.
fn parse_days(text: &str) -> Option<Vec<Weekday>> {
    const WEEK: [Weekday; 7] = [
        Weekday::Mon,
        Weekday::Tue,
        Weekday::Wed,
        Weekday::Thu,
        Weekday::Fri,
        Weekday::Sat,
        Weekday::Sun,
    ];
    if text.eq_ignore_ascii_case("every day") || text.eq_ignore_ascii_case("daily") {
        return Some(WEEK.to_vec());
    }
    let day = |s: &str| s.parse::<Weekday>().ok();
    let mut days = Vec::new();
    for item in text.split('/') {
        match item.split_once('-') {
            Some((first, last)) => {
                let (first, last) = (day(first)?, day(last)?);
                let start = first.days_since(Weekday::Mon) as usize;
                let span = last.days_since(first) as usize + 1;
                days.extend((0..span).map(|i| WEEK[(start + i) % 7]));
            }
            None => days.push(day(item)?),
        }
    }
    Some(days)
}

/// The coverage decision for one instant, before anyone is looked up in the rota.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CoverageDecision {
    /// Who answers.
    pub coverage: Coverage,
    /// Why.
    pub reason: Reason,
    /// The holiday, when the day is one (set even if it is also a weekend).
    pub holiday: Option<Holiday>,
    /// Whether house calls are dispatched now (always during all-day coverage).
    pub house_call_dispatch: bool,
    /// Whether the partner clinic's reception triages calls now.
    pub partner_triage: bool,
}

/// Applies a [`CoverageConfig`] with the holiday calendar.
#[derive(Debug, Clone)]
pub struct CoveragePolicy {
    config: CoverageConfig,
    calendar: HolidayCalendar,
}

impl CoveragePolicy {
    /// A policy over the given rules.
    pub fn new(config: CoverageConfig) -> Self {
        Self {
            config,
            calendar: HolidayCalendar::new(),
        }
    }

    /// The holiday calendar in use.
    pub fn calendar(&self) -> &HolidayCalendar {
        &self.calendar
    }

    /// The rules in use.
    pub fn config(&self) -> &CoverageConfig {
        &self.config
    }

    /// Who covers at `at` for a clinic with `hours`.
    ///
    /// # Errors
    /// [`HolidayError::YearOutOfRange`] when the local date's year has no holiday calendar.
    pub fn decide(
        &self,
        at: DateTime<Utc>,
        hours: &OpeningHours,
    ) -> Result<CoverageDecision, HolidayError> {
        let local = at.with_timezone(&PROGRAM_TIME_ZONE).naive_local();
        let (date, time, weekday) = (local.date(), local.time(), local.weekday());
        let holiday = self.calendar.holiday(date)?.copied();
        let c = &self.config;

        let all_day_reason = if holiday.is_some() && c.public_holidays {
            Some(Reason::PublicHoliday)
        } else if c.year_end.is_some_and(|p| p.contains(date)) {
            Some(Reason::YearEnd)
        } else if c.all_day_weekdays.contains(&weekday) {
            Some(Reason::Weekend)
        } else {
            None
        };
        if let Some(reason) = all_day_reason {
            return Ok(CoverageDecision {
                coverage: Coverage::OnCall,
                reason,
                holiday,
                house_call_dispatch: true,
                partner_triage: true,
            });
        }

        let clinic_closed_today = holiday.is_some() && hours.closed_on_public_holidays;
        let open = !clinic_closed_today && hours.sessions_on(weekday).any(|s| s.contains(time));
        let reason = if time >= c.on_call_from {
            Reason::WeekdayEvening
        } else if open {
            Reason::ClinicOpen
        } else if !clinic_closed_today && hours.sessions_on(weekday).all(|s| time < s.opens) {
            // `all` is true for a day without sessions too; that day is "closed", not "before".
            if hours.sessions_on(weekday).next().is_some() {
                Reason::BeforeClinicOpens
            } else {
                Reason::ClinicClosed
            }
        } else {
            Reason::ClinicClosed
        };
        let night = time >= c.on_call_from;
        Ok(CoverageDecision {
            coverage: if reason == Reason::ClinicOpen {
                Coverage::PrimaryClinic
            } else {
                Coverage::OnCall
            },
            reason,
            holiday,
            house_call_dispatch: night || time < c.house_calls_until,
            partner_triage: night || time < c.night_reception_until,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn jst(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        PROGRAM_TIME_ZONE
            .with_ymd_and_hms(y, m, d, h, min, 0)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn decide(at: DateTime<Utc>) -> CoverageDecision {
        CoveragePolicy::new(CoverageConfig::default())
            .decide(at, &OpeningHours::weekdays_nine_to_six())
            .unwrap()
    }

    #[test]
    fn weekday_day_is_primary_clinic_and_evening_is_on_call() {
        // Wednesday 25 November 2026.
        let d = decide(jst(2026, 11, 25, 9, 0));
        assert_eq!(
            (d.coverage, d.reason),
            (Coverage::PrimaryClinic, Reason::ClinicOpen)
        );
        let d = decide(jst(2026, 11, 25, 17, 59));
        assert_eq!(d.coverage, Coverage::PrimaryClinic);
        let d = decide(jst(2026, 11, 25, 18, 0));
        assert_eq!(
            (d.coverage, d.reason),
            (Coverage::OnCall, Reason::WeekdayEvening)
        );
        assert!(d.house_call_dispatch && d.partner_triage);
    }

    #[test]
    fn early_morning_phases_follow_the_configured_times() {
        let d = decide(jst(2026, 11, 26, 5, 59));
        assert_eq!(d.reason, Reason::BeforeClinicOpens);
        assert!(d.house_call_dispatch && d.partner_triage);
        let d = decide(jst(2026, 11, 26, 6, 0));
        assert!(!d.house_call_dispatch && d.partner_triage);
        let d = decide(jst(2026, 11, 26, 8, 59));
        assert_eq!(d.coverage, Coverage::OnCall);
    }

    #[test]
    fn evening_changeover_wins_over_late_opening_hours() {
        let mut hours = OpeningHours::weekdays_nine_to_six();
        hours.sessions[0].closes = hm(20, 0);
        let d = CoveragePolicy::new(CoverageConfig::default())
            .decide(jst(2026, 11, 25, 19, 0), &hours)
            .unwrap();
        assert_eq!(d.coverage, Coverage::OnCall);
    }

    #[test]
    fn lunch_break_and_closed_afternoon_go_on_call() {
        let hours = OpeningHours {
            sessions: vec![
                Session {
                    days: vec![Weekday::Mon, Weekday::Tue, Weekday::Wed, Weekday::Fri],
                    opens: hm(9, 0),
                    closes: hm(12, 30),
                },
                Session {
                    days: vec![Weekday::Mon, Weekday::Tue, Weekday::Wed, Weekday::Fri],
                    opens: hm(14, 0),
                    closes: hm(18, 0),
                },
            ],
            closed_on_public_holidays: true,
        };
        let policy = CoveragePolicy::new(CoverageConfig::default());
        let lunch = policy.decide(jst(2026, 11, 25, 13, 0), &hours).unwrap();
        assert_eq!(
            (lunch.coverage, lunch.reason),
            (Coverage::OnCall, Reason::ClinicClosed)
        );
        // Thursday: no sessions at all.
        let thursday = policy.decide(jst(2026, 11, 26, 10, 0), &hours).unwrap();
        assert_eq!(thursday.reason, Reason::ClinicClosed);
        // No house calls in daytime on a working day, whoever covers.
        assert!(!thursday.house_call_dispatch);
    }

    #[test]
    fn holidays_weekends_and_year_end_are_on_call_all_day() {
        let cases = [
            (jst(2026, 11, 28, 11, 0), Reason::Weekend), // Saturday
            (jst(2026, 11, 23, 11, 0), Reason::PublicHoliday), // 勤労感謝の日, Monday
            (jst(2026, 5, 6, 11, 0), Reason::PublicHoliday), // 振替休日, Wednesday
            (jst(2026, 9, 22, 11, 0), Reason::PublicHoliday), // 国民の休日, Tuesday
            (jst(2026, 12, 29, 11, 0), Reason::YearEnd), // Tuesday
            (jst(2026, 12, 31, 11, 0), Reason::YearEnd), // Thursday
            (jst(2027, 1, 4, 8, 59), Reason::BeforeClinicOpens), // Monday after
        ];
        for (at, reason) in cases {
            let d = decide(at);
            assert_eq!(d.coverage, Coverage::OnCall, "{at}");
            assert_eq!(d.reason, reason, "{at}");
        }
        assert_eq!(
            decide(jst(2026, 5, 6, 11, 0)).holiday.unwrap().name_ja,
            "振替休日"
        );
        assert_eq!(
            decide(jst(2027, 1, 4, 9, 0)).coverage,
            Coverage::PrimaryClinic
        );
    }

    #[test]
    fn year_end_is_configurable() {
        let config: CoverageConfig =
            toml::from_str("year_end = { first_day = \"12-30\", last_day = \"01-02\" }").unwrap();
        let policy = CoveragePolicy::new(config);
        let hours = OpeningHours::weekdays_nine_to_six();
        let dec29 = policy.decide(jst(2026, 12, 29, 11, 0), &hours).unwrap();
        assert_eq!(dec29.coverage, Coverage::PrimaryClinic);
        let dec30 = policy.decide(jst(2026, 12, 30, 11, 0), &hours).unwrap();
        assert_eq!(dec30.reason, Reason::YearEnd);
        assert!(
            toml::from_str::<CoverageConfig>(
                "year_end = { first_day = \"13-01\", last_day = \"01-02\" }"
            )
            .is_err()
        );
        assert!(toml::from_str::<CoverageConfig>("on_call_form = \"18:00\"").is_err());
    }

    #[test]
    fn registry_opening_hours_are_read() {
        let hours: OpeningHours = "Mon-Fri 09:00-18:00, Sat 09:00-12:00".parse().unwrap();
        assert_eq!(hours.sessions.len(), 2);
        assert_eq!(hours.sessions[0].days.len(), 5);
        assert_eq!(hours.sessions[1].days, [Weekday::Sat]);
        let split: OpeningHours = "Mon/Wed-Fri 09:00-12:30 14:00-18:00".parse().unwrap();
        assert_eq!(split.sessions.len(), 2);
        assert_eq!(
            split.sessions[0].days,
            [Weekday::Mon, Weekday::Wed, Weekday::Thu, Weekday::Fri]
        );
        let continued: OpeningHours = "Mon-Fri 09:00-12:30, 14:00-18:00".parse().unwrap();
        assert_eq!(continued.sessions[1].days.len(), 5);
        let wrapped: OpeningHours = "Fri-Mon 10:00-11:00".parse().unwrap();
        assert_eq!(
            wrapped.sessions[0].days,
            [Weekday::Fri, Weekday::Sat, Weekday::Sun, Weekday::Mon]
        );
        let night: OpeningHours = "Every day 18:00-09:00".parse().unwrap();
        assert!(night.sessions[0].contains(hm(23, 0)) && night.sessions[0].contains(hm(8, 59)));
        assert!(!night.sessions[0].contains(hm(9, 0)));
        for bad in [
            "",
            "Mon-Fri",
            "09:00-18:00",
            "Someday 09:00-18:00",
            "Mon 9-18",
        ] {
            assert!(bad.parse::<OpeningHours>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn registry_hours_decide_coverage() {
        // The demo registry's clinic: open Saturday mornings, but Saturday is on call all day.
        let hours: OpeningHours = "Mon-Fri 09:00-18:00, Sat 09:00-12:00".parse().unwrap();
        let policy = CoveragePolicy::new(CoverageConfig::default());
        let wed = policy.decide(jst(2026, 11, 25, 10, 0), &hours).unwrap();
        assert_eq!(wed.coverage, Coverage::PrimaryClinic);
        let sat = policy.decide(jst(2026, 11, 28, 10, 0), &hours).unwrap();
        assert_eq!(sat.reason, Reason::Weekend);
    }

    #[test]
    fn config_reads_short_times() {
        let config: CoverageConfig = toml::from_str("on_call_from = \"17:30\"").unwrap();
        assert_eq!(config.on_call_from, hm(17, 30));
    }
}
