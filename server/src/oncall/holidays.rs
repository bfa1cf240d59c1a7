//! Japanese public holidays, computed from the law.
//!
//! No crate on crates.io computes these from the rules and is kept up to date (the ones that exist
//! embed a copied table), so this module follows the law itself:
//!
//! - 国民の祝日に関する法律 (昭和23年法律第178号) as amended: the Happy Monday days (成人の日 and
//!   体育の日 from 2000, 海の日 and 敬老の日 from 2003), 昭和の日 on 29 April and みどりの日 on 4 May
//!   and the wider substitute-holiday rule (all from 2007), 山の日 (from 2016), 天皇誕生日 on
//!   23 February (from 2020; none in 2019), 体育の日 renamed スポーツの日 (from 2020).
//! - Article 3(2), 振替休日: when a national holiday falls on a Sunday, the nearest following day that
//!   is not a national holiday is a rest day. Article 3(3), 国民の休日: a day whose previous and next
//!   days are both national holidays (and that is not one itself) is a rest day.
//! - One-off law, in [`ONE_OFF_HOLIDAYS`] and [`MOVED_HOLIDAYS`]: 天皇の即位の日及び即位礼正殿の儀の
//!   行われる日を休日とする法律 (2019: 1 May and 22 October, counted as national holidays, which is
//!   why 30 April and 2 May became 国民の休日), and the Tokyo Olympic and Paralympic special measures
//!   law as amended in 2018 and 2020 (海の日, スポーツの日 and 山の日 moved in 2020 and 2021).
//! - Equinox days (春分の日, 秋分の日) are the days of the equinoxes, declared each February for the
//!   next year in the 官報 from the National Astronomical Observatory's 暦要項. They are computed here
//!   with the standard approximation valid for 1980–2099:
//!   `floor(c + 0.242194 × (Y − 1980) − floor((Y − 1980) / 4))`, c = 20.8431 (March) or 23.2488
//!   (September). It agrees with every declared date so far; it is an approximation, so future years
//!   are a forecast until declared.
//!
//! The rules above are those of 2007 onwards, so the supported years are 2007–2099
//! ([`FIRST_SUPPORTED_YEAR`]..=[`LAST_SUPPORTED_YEAR`]). A future amendment of the law needs a change
//! here; the fixture test against the Cabinet Office's list for 2019–2027 guards the present rules.
//! Reference list: 内閣府「国民の祝日について」 <https://www8.cao.go.jp/chosei/shukujitsu/gaiyou.html>.

use std::collections::BTreeMap;

use chrono::{Datelike, Days, NaiveDate, Weekday};
use serde::Serialize;

/// First year whose holidays this module computes (the 2007 amendment's rules).
pub const FIRST_SUPPORTED_YEAR: i32 = 2007;
/// Last year whose holidays this module computes (the equinox approximation's range).
pub const LAST_SUPPORTED_YEAR: i32 = 2099;

// Evaluated at compile time, so the panics cannot happen at run time.
const FIRST_DAY: NaiveDate = match NaiveDate::from_ymd_opt(FIRST_SUPPORTED_YEAR, 1, 1) {
    Some(d) => d,
    None => panic!("invalid first supported day"),
};
const LAST_DAY: NaiveDate = match NaiveDate::from_ymd_opt(LAST_SUPPORTED_YEAR, 12, 31) {
    Some(d) => d,
    None => panic!("invalid last supported day"),
};

/// Errors from the holiday calendar.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HolidayError {
    /// The year is outside the range whose rules are implemented.
    #[error(
        "year {0} is outside the supported range {FIRST_SUPPORTED_YEAR}..={LAST_SUPPORTED_YEAR}"
    )]
    YearOutOfRange(i32),
}

/// Why a day is a rest day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum HolidayKind {
    /// 国民の祝日 named in the law (or a one-off day the law counts as one).
    National,
    /// 振替休日: the next non-holiday after a national holiday on a Sunday.
    Substitute,
    /// 国民の休日: a day sandwiched between two national holidays.
    Sandwiched,
}

/// One public holiday.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Holiday {
    /// The calendar day (Japan Standard Time).
    pub date: NaiveDate,
    /// Japanese name as the law or the Cabinet Office writes it.
    pub name_ja: &'static str,
    /// English name, as the Cabinet Office translates it.
    pub name_en: &'static str,
    /// Which rule makes it a holiday.
    pub kind: HolidayKind,
}

/// The named national holidays. Their rule dates come from [`NationalHoliday::rule_date`]; one-off
/// moves override that date through [`MOVED_HOLIDAYS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NationalHoliday {
    NewYearsDay,
    ComingOfAgeDay,
    FoundationDay,
    EmperorsBirthday,
    VernalEquinoxDay,
    ShowaDay,
    ConstitutionDay,
    GreeneryDay,
    ChildrensDay,
    MarineDay,
    MountainDay,
    RespectForTheAgedDay,
    AutumnalEquinoxDay,
    SportsDay,
    CultureDay,
    LabourThanksgivingDay,
}

impl NationalHoliday {
    const ALL: [Self; 16] = [
        Self::NewYearsDay,
        Self::ComingOfAgeDay,
        Self::FoundationDay,
        Self::EmperorsBirthday,
        Self::VernalEquinoxDay,
        Self::ShowaDay,
        Self::ConstitutionDay,
        Self::GreeneryDay,
        Self::ChildrensDay,
        Self::MarineDay,
        Self::MountainDay,
        Self::RespectForTheAgedDay,
        Self::AutumnalEquinoxDay,
        Self::SportsDay,
        Self::CultureDay,
        Self::LabourThanksgivingDay,
    ];

    fn names(self, year: i32) -> (&'static str, &'static str) {
        match self {
            Self::NewYearsDay => ("元日", "New Year's Day"),
            Self::ComingOfAgeDay => ("成人の日", "Coming of Age Day"),
            Self::FoundationDay => ("建国記念の日", "National Foundation Day"),
            Self::EmperorsBirthday => ("天皇誕生日", "The Emperor's Birthday"),
            Self::VernalEquinoxDay => ("春分の日", "Vernal Equinox Day"),
            Self::ShowaDay => ("昭和の日", "Showa Day"),
            Self::ConstitutionDay => ("憲法記念日", "Constitution Memorial Day"),
            Self::GreeneryDay => ("みどりの日", "Greenery Day"),
            Self::ChildrensDay => ("こどもの日", "Children's Day"),
            Self::MarineDay => ("海の日", "Marine Day"),
            Self::MountainDay => ("山の日", "Mountain Day"),
            Self::RespectForTheAgedDay => ("敬老の日", "Respect for the Aged Day"),
            Self::AutumnalEquinoxDay => ("秋分の日", "Autumnal Equinox Day"),
            Self::SportsDay if year < 2020 => ("体育の日", "Health and Sports Day"),
            Self::SportsDay => ("スポーツの日", "Sports Day"),
            Self::CultureDay => ("文化の日", "Culture Day"),
            Self::LabourThanksgivingDay => ("勤労感謝の日", "Labour Thanksgiving Day"),
        }
    }

    /// The day the standing rule gives in `year` (a supported year), or `None` when the holiday
    /// did not exist that year.
    fn rule_date(self, year: i32) -> Option<NaiveDate> {
        match self {
            Self::NewYearsDay => NaiveDate::from_ymd_opt(year, 1, 1),
            Self::ComingOfAgeDay => nth_monday(year, 1, 2),
            Self::FoundationDay => NaiveDate::from_ymd_opt(year, 2, 11),
            Self::EmperorsBirthday => match year {
                ..=2018 => NaiveDate::from_ymd_opt(year, 12, 23),
                2019 => None,
                _ => NaiveDate::from_ymd_opt(year, 2, 23),
            },
            Self::VernalEquinoxDay => equinox_day(year, 3, 20.8431),
            Self::ShowaDay => NaiveDate::from_ymd_opt(year, 4, 29),
            Self::ConstitutionDay => NaiveDate::from_ymd_opt(year, 5, 3),
            Self::GreeneryDay => NaiveDate::from_ymd_opt(year, 5, 4),
            Self::ChildrensDay => NaiveDate::from_ymd_opt(year, 5, 5),
            Self::MarineDay => nth_monday(year, 7, 3),
            Self::MountainDay if year < 2016 => None,
            Self::MountainDay => NaiveDate::from_ymd_opt(year, 8, 11),
            Self::RespectForTheAgedDay => nth_monday(year, 9, 3),
            Self::AutumnalEquinoxDay => equinox_day(year, 9, 23.2488),
            Self::SportsDay => nth_monday(year, 10, 2),
            Self::CultureDay => NaiveDate::from_ymd_opt(year, 11, 3),
            Self::LabourThanksgivingDay => NaiveDate::from_ymd_opt(year, 11, 23),
        }
    }
}

/// Holidays moved for one year by a special law: (year, holiday, the day it moved to).
const MOVED_HOLIDAYS: [(i32, NationalHoliday, (u32, u32)); 6] = [
    // Tokyo 2020 special measures law, amended in 2018: opening and closing ceremonies.
    (2020, NationalHoliday::MarineDay, (7, 23)),
    (2020, NationalHoliday::SportsDay, (7, 24)),
    (2020, NationalHoliday::MountainDay, (8, 10)),
    // The same law amended in 2020 for the postponed Games.
    (2021, NationalHoliday::MarineDay, (7, 22)),
    (2021, NationalHoliday::SportsDay, (7, 23)),
    (2021, NationalHoliday::MountainDay, (8, 8)),
];

/// One-off rest days that the law counts as national holidays: (year, month, day, ja, en).
const ONE_OFF_HOLIDAYS: [(i32, u32, u32, &str, &str); 2] = [
    (
        2019,
        5,
        1,
        "天皇の即位の日",
        "The Emperor's Enthronement Day",
    ),
    (
        2019,
        10,
        22,
        "即位礼正殿の儀の行われる日",
        "The Enthronement Ceremony Day",
    ),
];

/// The `n`th (1-based) Monday of a month.
fn nth_monday(year: i32, month: u32, n: u8) -> Option<NaiveDate> {
    NaiveDate::from_weekday_of_month_opt(year, month, Weekday::Mon, n)
}

/// Equinox day by the 1980–2099 approximation in the module docs.
fn equinox_day(year: i32, month: u32, constant: f64) -> Option<NaiveDate> {
    let since_1980 = year - 1980;
    let day = (constant + 0.242_194 * f64::from(since_1980) - f64::from(since_1980.div_euclid(4)))
        .floor();
    // The formula yields 19..=24 across its range; anything else means a caller bug, not a date.
    let day = u32::try_from(day as i64).ok()?;
    NaiveDate::from_ymd_opt(year, month, day)
}

fn check_year(year: i32) -> Result<(), HolidayError> {
    if (FIRST_SUPPORTED_YEAR..=LAST_SUPPORTED_YEAR).contains(&year) {
        Ok(())
    } else {
        Err(HolidayError::YearOutOfRange(year))
    }
}

/// Every public holiday of `year`, sorted by date.
///
/// # Errors
/// [`HolidayError::YearOutOfRange`] outside 2007–2099.
pub fn holidays_in_year(year: i32) -> Result<Vec<Holiday>, HolidayError> {
    check_year(year)?;
    let mut national: BTreeMap<NaiveDate, Holiday> = BTreeMap::new();
    for holiday in NationalHoliday::ALL {
        let moved = MOVED_HOLIDAYS
            .iter()
            .find(|(y, h, _)| *y == year && *h == holiday)
            .and_then(|&(y, _, (m, d))| NaiveDate::from_ymd_opt(y, m, d));
        let Some(date) = moved.or_else(|| holiday.rule_date(year)) else {
            continue;
        };
        let (name_ja, name_en) = holiday.names(year);
        national.insert(
            date,
            Holiday {
                date,
                name_ja,
                name_en,
                kind: HolidayKind::National,
            },
        );
    }
    for &(y, m, d, name_ja, name_en) in &ONE_OFF_HOLIDAYS {
        if let (true, Some(date)) = (y == year, NaiveDate::from_ymd_opt(y, m, d)) {
            let kind = HolidayKind::National;
            national.insert(
                date,
                Holiday {
                    date,
                    name_ja,
                    name_en,
                    kind,
                },
            );
        }
    }

    let mut rest_days = Vec::new();
    // Article 3(2): the nearest following day that is not a national holiday.
    for date in national.keys().filter(|d| d.weekday() == Weekday::Sun) {
        let mut substitute = *date;
        while national.contains_key(&substitute) {
            substitute = substitute + Days::new(1);
        }
        rest_days.push(Holiday {
            date: substitute,
            name_ja: "振替休日",
            name_en: "Substitute Holiday",
            kind: HolidayKind::Substitute,
        });
    }
    // Article 3(3): both neighbours national holidays, the day itself not one (nor a substitute).
    for (before, after) in national.keys().zip(national.keys().skip(1)) {
        let between = *before + Days::new(1);
        if *after == between + Days::new(1) && !rest_days.iter().any(|h| h.date == between) {
            rest_days.push(Holiday {
                date: between,
                name_ja: "国民の休日",
                name_en: "Citizens' Holiday",
                kind: HolidayKind::Sandwiched,
            });
        }
    }

    let mut all: Vec<Holiday> = national.into_values().chain(rest_days).collect();
    all.sort_by_key(|h| h.date);
    Ok(all)
}

/// Every supported year's holidays, indexed by day for constant-time lookups (the coverage sweep
/// asks once per minute of a year). Built once: ~1,700 holidays, a 34,000-entry day index.
#[derive(Debug, Clone)]
pub struct HolidayCalendar {
    /// Holidays in date order.
    holidays: Vec<Holiday>,
    /// For each day since 1 January of the first supported year: 0, or 1 + index in `holidays`.
    by_day: Vec<u16>,
}

impl HolidayCalendar {
    /// Computes every year from 2007 to 2099.
    pub fn new() -> Self {
        let holidays: Vec<Holiday> = (FIRST_SUPPORTED_YEAR..=LAST_SUPPORTED_YEAR)
            .filter_map(|year| holidays_in_year(year).ok())
            .flatten()
            .collect();
        let days = Self::day_index(LAST_DAY) + 1;
        let mut by_day = vec![0_u16; days];
        for (i, h) in holidays.iter().enumerate() {
            // ~1,700 holidays: the index always fits in u16.
            by_day[Self::day_index(h.date)] = u16::try_from(i + 1).unwrap_or(0);
        }
        Self { holidays, by_day }
    }

    /// Days since 1 January of the first supported year; callers check the year first.
    fn day_index(date: NaiveDate) -> usize {
        usize::try_from((date - FIRST_DAY).num_days()).unwrap_or(0)
    }

    /// The holiday on `date`, if it is one.
    ///
    /// # Errors
    /// [`HolidayError::YearOutOfRange`] when the date's year is not supported: "not a holiday"
    /// would be a guess there.
    pub fn holiday(&self, date: NaiveDate) -> Result<Option<&Holiday>, HolidayError> {
        check_year(date.year())?;
        let slot = self.by_day.get(Self::day_index(date)).copied().unwrap_or(0);
        Ok(usize::from(slot)
            .checked_sub(1)
            .and_then(|i| self.holidays.get(i)))
    }

    /// Holidays from `from` to `to`, both inclusive, in date order.
    ///
    /// # Errors
    /// [`HolidayError::YearOutOfRange`] when either end lies outside the supported years.
    pub fn between(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<impl Iterator<Item = &Holiday>, HolidayError> {
        check_year(from.year())?;
        check_year(to.year())?;
        let start = self.holidays.partition_point(|h| h.date < from);
        Ok(self.holidays[start..]
            .iter()
            .take_while(move |h| h.date <= to))
    }
}

impl Default for HolidayCalendar {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn equinox_formula_matches_declared_days() {
        // Declared in the 官報: 2024 vernal 20 March, autumnal 22 September; 2027 vernal 21 March.
        assert_eq!(equinox_day(2024, 3, 20.8431), Some(date(2024, 3, 20)));
        assert_eq!(equinox_day(2024, 9, 23.2488), Some(date(2024, 9, 22)));
        assert_eq!(equinox_day(2027, 3, 20.8431), Some(date(2027, 3, 21)));
    }

    #[test]
    fn substitute_skips_over_golden_week() {
        // 2025: みどりの日 on Sunday 4 May; 5 May is こどもの日, so the substitute is Tuesday 6 May.
        let y = holidays_in_year(2025).unwrap();
        let sub: Vec<_> = y
            .iter()
            .filter(|h| h.kind == HolidayKind::Substitute)
            .map(|h| h.date)
            .collect();
        assert!(sub.contains(&date(2025, 5, 6)));
        assert!(!sub.contains(&date(2025, 5, 5)));
    }

    #[test]
    fn emperors_birthday_moves_with_the_era() {
        let names_on = |d: NaiveDate| {
            holidays_in_year(d.year())
                .unwrap()
                .into_iter()
                .find(|h| h.date == d)
                .map(|h| h.name_ja)
        };
        assert_eq!(names_on(date(2018, 12, 23)), Some("天皇誕生日"));
        assert_eq!(names_on(date(2019, 12, 23)), None);
        assert_eq!(names_on(date(2019, 2, 23)), None);
        assert_eq!(names_on(date(2020, 2, 23)), Some("天皇誕生日"));
    }

    #[test]
    fn sandwiched_day_in_silver_week() {
        // 2015: 敬老の日 21 Sep, 秋分の日 23 Sep; 22 Sep is 国民の休日. 2009 likewise on 22 Sep.
        for year in [2009, 2015, 2026] {
            let h = holidays_in_year(year).unwrap();
            assert!(
                h.iter()
                    .any(|h| h.date == date(year, 9, 22) && h.kind == HolidayKind::Sandwiched),
                "{year}"
            );
        }
    }

    #[test]
    fn rules_before_2019_follow_the_law_of_their_time() {
        let on = |d: NaiveDate| {
            holidays_in_year(d.year())
                .unwrap()
                .into_iter()
                .find(|h| h.date == d)
                .map(|h| h.name_ja)
        };
        // 2007 amendment: みどりの日 on a Sunday (4 May 2008) gives Tuesday 6 May.
        assert_eq!(on(date(2008, 5, 6)), Some("振替休日"));
        // 天皇誕生日 on Sunday 23 Dec 2018.
        assert_eq!(on(date(2018, 12, 24)), Some("振替休日"));
        // 山の日 from 2016 only; 体育の日 until 2019.
        assert_eq!(on(date(2015, 8, 11)), None);
        assert_eq!(on(date(2016, 8, 11)), Some("山の日"));
        assert_eq!(on(date(2018, 10, 8)), Some("体育の日"));
    }

    #[test]
    fn unsupported_years_are_errors_not_empty() {
        assert_eq!(
            holidays_in_year(2006),
            Err(HolidayError::YearOutOfRange(2006))
        );
        assert_eq!(
            holidays_in_year(2100),
            Err(HolidayError::YearOutOfRange(2100))
        );
        let cal = HolidayCalendar::new();
        assert!(cal.holiday(date(2100, 1, 1)).is_err());
        assert_eq!(
            cal.between(date(2026, 5, 7), date(2026, 5, 1))
                .unwrap()
                .count(),
            0
        );
    }

    #[test]
    fn every_year_has_a_plausible_count() {
        for year in FIRST_SUPPORTED_YEAR..=LAST_SUPPORTED_YEAR {
            let n = holidays_in_year(year).unwrap().len();
            // 15 or 16 national holidays (2019 had no 天皇誕生日) plus up to a few rest days.
            assert!((15..=24).contains(&n), "{year}: {n}");
        }
    }
}

#[cfg(test)]
mod fixture_tests {
    use super::*;

    /// The Cabinet Office's lists for 2019–2027, written out in `fixtures/calendar/`.
    #[test]
    fn matches_the_cabinet_office_list_2019_to_2027() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../fixtures/calendar/jp-holidays-2019-2027.tsv"
        );
        let text = std::fs::read_to_string(path).unwrap();
        let expected: Vec<(NaiveDate, &str)> = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .map(|l| {
                let (d, name) = l.split_once('\t').unwrap();
                (d.parse().unwrap(), name)
            })
            .collect();
        assert_eq!(expected.len(), 165);
        let computed: Vec<(NaiveDate, &str)> = (2019..=2027)
            .flat_map(|y| holidays_in_year(y).unwrap())
            .map(|h| (h.date, h.name_ja))
            .collect();
        for (e, c) in expected.iter().zip(&computed) {
            assert_eq!(e, c);
        }
        assert_eq!(expected, computed);
    }
}
