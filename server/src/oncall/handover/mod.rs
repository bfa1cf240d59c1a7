//! The handover summary: one printable page for a doctor who does not know the patient, opened
//! from an alert's link.
//!
//! [`render_html`] is a pure function of a [`HandoverInput`]; the HTTP layer gathers the input,
//! checks access, writes the audit record and serves the page (e.g. at `/alerts/{id}/handover`).
//! Every text from the input is HTML-escaped; links are built only from http(s) URLs and dialable
//! phone numbers. The page has no script and loads nothing, so it prints and saves as one file.

pub mod demo;
pub mod input;
mod plot;

use std::borrow::Cow;
use std::fmt::{self, Write as _};

use chrono::{DateTime, Datelike, NaiveDate, Utc};

pub use input::*;

use crate::oncall::coverage::PROGRAM_TIME_ZONE;
use crate::oncall::rota::PhoneNumber;

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape_html(text: &str) -> Cow<'_, str> {
    if !text.contains(['&', '<', '>', '"', '\'']) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Displays its text HTML-escaped, so `write!` can't forget to escape.
struct Esc<'a>(&'a str);

impl fmt::Display for Esc<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&escape_html(self.0))
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters (for a map query).
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// The registry's map link if it is an http(s) URL, otherwise a map search for the address.
fn map_link(patient: &PatientDetails) -> String {
    match &patient.map_url {
        Some(url) if url.starts_with("https://") || url.starts_with("http://") => url.clone(),
        _ => format!(
            "https://www.google.com/maps/search/?api=1&query={}",
            percent_encode(&patient.address)
        ),
    }
}

/// Whole years from `born` to `on`.
fn age_in_years(born: NaiveDate, on: NaiveDate) -> i32 {
    let had_birthday = (on.month(), on.day()) >= (born.month(), born.day());
    on.year() - born.year() - i32::from(!had_birthday)
}

/// The Japanese era year (和暦), as elderly patients' records are often kept: 昭和13年.
fn wareki(date: NaiveDate) -> Option<String> {
    const ERAS: [(i32, u32, u32, &str); 5] = [
        (2019, 5, 1, "令和"),
        (1989, 1, 8, "平成"),
        (1926, 12, 25, "昭和"),
        (1912, 7, 30, "大正"),
        (1868, 10, 23, "明治"),
    ];
    ERAS.iter().find_map(|&(y, m, d, name)| {
        let start = NaiveDate::from_ymd_opt(y, m, d)?;
        (date >= start).then(|| match date.year() - y + 1 {
            1 => format!("{name}元年"),
            n => format!("{name}{n}年"),
        })
    })
}

/// Text of the page in one language.
struct Labels {
    lang: &'static str,
    title: &'static str,
    alert: &'static str,
    raised: &'static str,
    why: &'static str,
    patient: &'static str,
    date_of_birth: &'static str,
    age_suffix: &'static str,
    sex: &'static str,
    address: &'static str,
    open_map: &'static str,
    key_person: &'static str,
    nurse_station: &'static str,
    primary_clinic: &'static str,
    director: &'static str,
    emergency_phone: &'static str,
    medical: &'static str,
    diseases: &'static str,
    medications: &'static str,
    allergies: &'static str,
    allergies_none: &'static str,
    not_recorded: &'static str,
    directive: &'static str,
    confirmed_on: &'static str,
    home_oxygen: &'static str,
    none: &'static str,
    vitals: &'static str,
    vitals_legend: &'static str,
    no_data: &'static str,
    latest: &'static str,
    range: &'static str,
    ecg: &'static str,
    lead: &'static str,
    mean_rr: &'static str,
    heart_rate: &'static str,
    rr_range: &'static str,
    paper: &'static str,
    no_ecg: &'static str,
    earlier_alerts: &'static str,
    time: &'static str,
    severity: &'static str,
    outcome: &'static str,
    confidential: &'static str,
    generated: &'static str,
}

const JA: Labels = Labels {
    lang: "ja",
    title: "申し送りサマリー（当番医用）",
    alert: "アラート",
    raised: "発生",
    why: "発生理由",
    patient: "患者",
    date_of_birth: "生年月日",
    age_suffix: "歳",
    sex: "性別",
    address: "住所",
    open_map: "地図",
    key_person: "キーパーソン",
    nurse_station: "訪問看護ステーション",
    primary_clinic: "主治医（かかりつけ診療所）",
    director: "院長",
    emergency_phone: "緊急連絡先",
    medical: "医療情報",
    diseases: "主病名",
    medications: "内服薬",
    allergies: "アレルギー",
    allergies_none: "なし",
    not_recorded: "未確認",
    directive: "事前指示・DNAR",
    confirmed_on: "確認日",
    home_oxygen: "在宅酸素",
    none: "なし",
    vitals: "過去72時間のバイタル",
    vitals_legend: "左端 = 72時間前、右端 = 作成時刻。点線 = 24時間ごと、緑 = 目標範囲、赤点 = 範囲外、線の切れ目 = 欠測。",
    no_data: "データなし",
    latest: "最新",
    range: "範囲",
    ecg: "最新の心電図",
    lead: "誘導",
    mean_rr: "平均RR",
    heart_rate: "心拍数",
    rr_range: "RR範囲",
    paper: "25 mm/s・10 mm/mV、▼ R波、数字はRR (ms)",
    no_ecg: "心電図記録なし",
    earlier_alerts: "過去のアラート",
    time: "日時",
    severity: "重要度",
    outcome: "転帰",
    confidential: "要配慮個人情報を含みます。診療目的以外に使用・複製しないでください。",
    generated: "作成",
};

const EN: Labels = Labels {
    lang: "en",
    title: "Handover summary for the on-call doctor",
    alert: "Alert",
    raised: "Raised",
    why: "Why it fired",
    patient: "Patient",
    date_of_birth: "Date of birth",
    age_suffix: " y",
    sex: "Sex",
    address: "Address",
    open_map: "Map",
    key_person: "Key person",
    nurse_station: "Visiting nurses",
    primary_clinic: "Primary clinic",
    director: "Director",
    emergency_phone: "Emergency number",
    medical: "Medical",
    diseases: "Main diseases",
    medications: "Medications",
    allergies: "Allergies",
    allergies_none: "None known",
    not_recorded: "Not recorded",
    directive: "Directive / DNAR",
    confirmed_on: "confirmed",
    home_oxygen: "Home oxygen",
    none: "None",
    vitals: "Vital signs, last 72 hours",
    vitals_legend: "Left edge 72 h ago, right edge now. Dashed lines every 24 h, green the target range, red dots outside it, breaks are missing data.",
    no_data: "No data",
    latest: "latest",
    range: "range",
    ecg: "Latest ECG",
    lead: "lead",
    mean_rr: "mean RR",
    heart_rate: "HR",
    rr_range: "RR range",
    paper: "25 mm/s, 10 mm/mV; ▼ R peak, numbers are RR (ms)",
    no_ecg: "No ECG recorded",
    earlier_alerts: "Earlier alerts",
    time: "Time",
    severity: "Severity",
    outcome: "Outcome",
    confidential: "Contains special-care-required personal information. Use for care only; do not copy.",
    generated: "Generated",
};

impl Labels {
    fn of(language: Language) -> &'static Self {
        match language {
            Language::Ja => &JA,
            Language::En => &EN,
        }
    }

    fn sex(&self, sex: Sex) -> &'static str {
        match (self.lang, sex) {
            ("ja", Sex::Female) => "女性",
            ("ja", Sex::Male) => "男性",
            ("ja", Sex::Other) => "その他",
            (_, Sex::Female) => "Female",
            (_, Sex::Male) => "Male",
            (_, Sex::Other) => "Other",
        }
    }

    fn severity(&self, severity: Severity) -> &'static str {
        match (self.lang, severity) {
            ("ja", Severity::Critical) => "緊急",
            ("ja", Severity::Warning) => "注意",
            ("ja", Severity::Info) => "情報",
            (_, Severity::Critical) => "Critical",
            (_, Severity::Warning) => "Warning",
            (_, Severity::Info) => "Info",
        }
    }

    fn resuscitation(&self, status: ResuscitationStatus) -> &'static str {
        match (self.lang, status) {
            ("ja", ResuscitationStatus::Dnar) => "DNAR（心肺蘇生を行わない）",
            ("ja", ResuscitationStatus::FullCode) => "心肺蘇生を希望",
            ("ja", ResuscitationStatus::NotDiscussed) => "未確認（話し合い未実施）",
            (_, ResuscitationStatus::Dnar) => "DNAR (do not attempt resuscitation)",
            (_, ResuscitationStatus::FullCode) => "Full resuscitation",
            (_, ResuscitationStatus::NotDiscussed) => "Not discussed",
        }
    }

    fn vital(&self, kind: VitalKind) -> &'static str {
        match (self.lang, kind) {
            ("ja", VitalKind::HeartRate) => "心拍数",
            ("ja", VitalKind::Spo2) => "SpO2",
            ("ja", VitalKind::RespiratoryRate) => "呼吸数",
            ("ja", VitalKind::BodyTemperature) => "体温",
            ("ja", VitalKind::SystolicBloodPressure) => "収縮期血圧",
            ("ja", VitalKind::BodyWeight) => "体重",
            (_, VitalKind::HeartRate) => "Heart rate",
            (_, VitalKind::Spo2) => "SpO2",
            (_, VitalKind::RespiratoryRate) => "Respiratory rate",
            (_, VitalKind::BodyTemperature) => "Temperature",
            (_, VitalKind::SystolicBloodPressure) => "SBP",
            (_, VitalKind::BodyWeight) => "Weight",
        }
    }

    fn date(&self, date: NaiveDate) -> String {
        if self.lang == "ja" {
            let era = wareki(date).map(|e| format!("（{e}）")).unwrap_or_default();
            format!("{}年{}月{}日{era}", date.year(), date.month(), date.day())
        } else {
            date.format("%-d %b %Y").to_string()
        }
    }

    fn instant(&self, at: DateTime<Utc>) -> String {
        let local = at.with_timezone(&PROGRAM_TIME_ZONE);
        if self.lang == "ja" {
            const DAYS: [&str; 7] = ["月", "火", "水", "木", "金", "土", "日"];
            let day = DAYS[local.weekday().num_days_from_monday() as usize];
            format!(
                "{}({day}) {}",
                local.format("%Y年%-m月%-d日"),
                local.format("%H:%M")
            )
        } else {
            local.format("%a %-d %b %Y %H:%M JST").to_string()
        }
    }
}

fn severity_class(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "critical",
        Severity::Warning => "warning",
        Severity::Info => "info",
    }
}

fn phone_link(phone: &PhoneNumber) -> String {
    // The dial string holds only digits and '+', so it needs no escaping.
    format!(
        r#"<a class="tel" href="tel:{}">{}</a>"#,
        phone.dial_string(),
        Esc(phone.as_str())
    )
}

fn format_value(value: f64, decimals: usize) -> String {
    format!("{value:.decimals$}")
}

const STYLE: &str = r#"
@page { size: A4 portrait; margin: 8mm; }
* { box-sizing: border-box; }
html { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
body { font-family: "Noto Sans CJK JP", "Noto Sans JP", "Hiragino Sans", "Yu Gothic", sans-serif;
  font-size: 9pt; line-height: 1.35; color: #111; margin: 0 auto; max-width: 194mm; padding: 4mm 0; }
header { display: flex; justify-content: space-between; align-items: baseline;
  border-bottom: 2px solid #333; padding-bottom: 1.5mm; margin-bottom: 2mm; }
header h1 { font-size: 13pt; margin: 0; }
header .meta { font-size: 8pt; color: #444; }
h2 { font-size: 9.5pt; margin: 0 0 1mm; padding: 0.6mm 1.5mm; background: #e9eef3; border-left: 3px solid #3a5f86; }
section { margin-bottom: 2mm; break-inside: avoid; }
.alert { border: 2px solid #b3261e; background: #fdecea; padding: 1.5mm 2.5mm; border-radius: 2mm; }
.alert.warning { border-color: #a86400; background: #fff4e0; }
.alert.info { border-color: #3a5f86; background: #eef4fa; }
.alert .head { display: flex; gap: 3mm; align-items: baseline; }
.alert .title { font-size: 12pt; font-weight: 700; }
.badge { display: inline-block; padding: 0 2mm; border-radius: 1mm; color: #fff; background: #b3261e; font-weight: 700; }
.badge.warning { background: #a86400; } .badge.info { background: #3a5f86; }
.grid { display: grid; grid-template-columns: 1fr 1fr; gap: 2mm 4mm; }
dl { display: grid; grid-template-columns: auto 1fr; gap: 0.4mm 2mm; margin: 0; }
dt { color: #555; white-space: nowrap; } dd { margin: 0; }
.tel { white-space: nowrap; }
ruby rt { font-size: 6.5pt; color: #444; }
.name { font-size: 12pt; font-weight: 700; }
.directive { font-weight: 700; }
.directive.dnar { color: #b3261e; }
ul { margin: 0; padding-left: 4mm; }
.vitals { display: grid; grid-template-columns: repeat(3, 1fr); gap: 1.5mm 3mm; }
.vital .label { display: flex; justify-content: space-between; gap: 2mm; font-size: 7.5pt; white-space: nowrap; }
.vital .label b { font-size: 9pt; }
.trend { display: block; width: 100%; height: auto; border: 1px solid #ccd; background: #fff; }
.trend polyline { fill: none; stroke: #1f4e79; stroke-width: 1; }
.trend .target { fill: #e3f1e3; }
.trend .day { stroke: #ccc; stroke-width: 0.5; stroke-dasharray: 2 2; }
.trend .out { fill: #b3261e; }
.trend .pt { fill: #1f4e79; }
.legend { font-size: 7.5pt; color: #555; margin-bottom: 1mm; }
.ecg { display: block; width: 100%; height: auto; }
.ecg .trace { fill: none; stroke: #000; stroke-width: 0.22; stroke-linejoin: round; }
.ecg .cal { fill: none; stroke: #000; stroke-width: 0.22; }
.ecg .rmark { fill: #1f4e79; }
.ecg .rr { font-size: 2.2px; text-anchor: middle; fill: #1f4e79; font-family: sans-serif; }
.figures { display: flex; gap: 4mm; font-size: 8.5pt; margin-bottom: 0.5mm; }
table { border-collapse: collapse; width: 100%; font-size: 8pt; }
th, td { border-bottom: 1px solid #ddd; text-align: left; padding: 0.4mm 1.5mm; vertical-align: top; }
.muted { color: #666; }
footer { border-top: 1px solid #999; padding-top: 1mm; font-size: 7.5pt; color: #444; display: flex; justify-content: space-between; }
a { color: #1f4e79; }
@media screen { body { padding: 6mm; } }
"#;

/// Renders the handover page as a complete HTML document.
pub fn render_html(input: &HandoverInput) -> String {
    let l = Labels::of(input.language);
    let p = &input.patient;
    let mut h = String::with_capacity(64 * 1024);
    let today = input
        .generated_at
        .with_timezone(&PROGRAM_TIME_ZONE)
        .date_naive();

    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"{lang}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"robots\" content=\"noindex\">\
         <title>{title} — {name}</title><style>{STYLE}</style></head><body>",
        lang = l.lang,
        title = Esc(l.title),
        name = Esc(&p.name),
    );
    let _ = write!(
        h,
        "<header><h1>{}</h1><span class=\"meta\">{} {} · ID {}</span></header>",
        Esc(l.title),
        Esc(l.generated),
        Esc(&l.instant(input.generated_at)),
        Esc(&p.id),
    );

    // The alert first: it is why the doctor opened the page.
    let a = &input.alert;
    let class = severity_class(a.severity);
    let _ = write!(
        h,
        "<section class=\"alert {class}\"><div class=\"head\"><span class=\"badge {class}\">{sev}</span>\
         <span class=\"title\">{title}</span><span class=\"muted\">{raised} {at} · {alert} {id}</span></div>\
         <div><b>{why}:</b> {reason}</div></section>",
        sev = Esc(l.severity(a.severity)),
        title = Esc(&a.title),
        raised = Esc(l.raised),
        at = Esc(&l.instant(a.raised_at)),
        alert = Esc(l.alert),
        id = Esc(&a.id),
        why = Esc(l.why),
        reason = Esc(&a.reason),
    );

    h.push_str("<div class=\"grid\">");
    render_patient(&mut h, l, p, today);
    render_medical(&mut h, l, input);
    h.push_str("</div>");

    render_vitals(&mut h, l, input);
    render_ecg(&mut h, l, input);
    render_earlier_alerts(&mut h, l, input);

    let _ = writeln!(
        h,
        "<footer><span>{}</span><span>{} · {}</span></footer></body></html>",
        Esc(l.confidential),
        Esc(&p.name),
        Esc(&p.id)
    );
    h
}

fn render_patient(h: &mut String, l: &Labels, p: &PatientDetails, today: NaiveDate) {
    let _ = write!(
        h,
        "<section><h2>{patient}</h2><dl>\
         <dt>{name_label}</dt><dd><ruby class=\"name\">{name}<rt>{furigana}</rt></ruby></dd>\
         <dt>{dob}</dt><dd>{born} · {age}{age_suffix}</dd>\
         <dt>{sex}</dt><dd>{sex_value}</dd>\
         <dt>{address}</dt><dd>{addr} <a href=\"{map}\">[{open_map}]</a></dd>",
        patient = Esc(l.patient),
        name_label = if l.lang == "ja" { "氏名" } else { "Name" },
        name = Esc(&p.name),
        furigana = Esc(&p.name_furigana),
        dob = Esc(l.date_of_birth),
        born = Esc(&l.date(p.date_of_birth)),
        age = age_in_years(p.date_of_birth, today),
        age_suffix = Esc(l.age_suffix),
        sex = Esc(l.sex),
        sex_value = Esc(l.sex(p.sex)),
        address = Esc(l.address),
        addr = Esc(&p.address),
        map = Esc(&map_link(p)),
        open_map = Esc(l.open_map),
    );
    let _ = write!(h, "<dt>{}</dt><dd>", Esc(l.key_person));
    match &p.key_person {
        Some(k) => {
            let _ = write!(
                h,
                "{}（{}） {}",
                Esc(&k.name),
                Esc(&k.relationship),
                phone_link(&k.phone)
            );
        }
        None => h.push_str(&escape_html(l.not_recorded)),
    }
    let _ = write!(h, "</dd><dt>{}</dt><dd>", Esc(l.nurse_station));
    match &p.visiting_nurse_station {
        Some(n) => {
            let _ = write!(h, "{} {}", Esc(&n.name), phone_link(&n.phone));
        }
        None => h.push_str(&escape_html(l.none)),
    }
    h.push_str("</dd></dl></section>");
}

fn render_list(h: &mut String, items: impl Iterator<Item = String>, empty: &str) {
    let mut any = false;
    for item in items {
        if !any {
            h.push_str("<ul>");
            any = true;
        }
        let _ = write!(h, "<li>{item}</li>");
    }
    if any {
        h.push_str("</ul>");
    } else {
        h.push_str(&escape_html(empty));
    }
}

fn render_medical(h: &mut String, l: &Labels, input: &HandoverInput) {
    let p = &input.patient;
    let c = &input.primary_clinic;
    let _ = write!(
        h,
        "<section><h2>{title}</h2><dl><dt>{clinic}</dt><dd>{name}</dd>\
         <dt>{director}</dt><dd>{director_name}</dd>\
         <dt>{emergency}</dt><dd>{phone}</dd></dl>",
        title = Esc(l.primary_clinic),
        clinic = if l.lang == "ja" {
            "診療所"
        } else {
            "Clinic"
        },
        name = Esc(&c.name),
        director = Esc(l.director),
        director_name = Esc(&c.director),
        emergency = Esc(l.emergency_phone),
        phone = phone_link(&c.emergency_phone),
    );
    let _ = write!(h, "<h2>{}</h2><dl>", Esc(l.medical));

    let directive = &p.advance_directive;
    let dnar_class = match directive.resuscitation {
        ResuscitationStatus::Dnar => " dnar",
        _ => "",
    };
    let _ = write!(
        h,
        "<dt>{}</dt><dd><span class=\"directive{dnar_class}\">{}</span>",
        Esc(l.directive),
        Esc(l.resuscitation(directive.resuscitation)),
    );
    if !directive.wishes.is_empty() {
        let _ = write!(h, "<br>{}", Esc(&directive.wishes));
    }
    if let Some(on) = directive.confirmed_on {
        let _ = write!(
            h,
            " <span class=\"muted\">（{} {}）</span>",
            Esc(l.confirmed_on),
            Esc(&l.date(on))
        );
    }
    h.push_str("</dd>");

    let _ = write!(h, "<dt>{}</dt><dd>", Esc(l.diseases));
    render_list(
        h,
        p.main_diseases.iter().map(|d| Esc(d).to_string()),
        l.not_recorded,
    );
    let _ = write!(h, "</dd><dt>{}</dt><dd>", Esc(l.medications));
    render_list(
        h,
        p.medications.iter().map(|m| {
            format!(
                "{} <span class=\"muted\">{}</span>",
                Esc(&m.name),
                Esc(&m.dosage)
            )
        }),
        l.none,
    );
    let _ = write!(h, "</dd><dt>{}</dt><dd>", Esc(l.allergies));
    match &p.allergies {
        None => h.push_str(&escape_html(l.not_recorded)),
        Some(list) if list.is_empty() => h.push_str(&escape_html(l.allergies_none)),
        Some(list) => {
            let joined: Vec<String> = list.iter().map(|a| Esc(a).to_string()).collect();
            let _ = write!(h, "<b>{}</b>", joined.join("、"));
        }
    }
    let _ = write!(h, "</dd><dt>{}</dt><dd>", Esc(l.home_oxygen));
    match &p.home_oxygen {
        Some(o) => {
            let _ = write!(
                h,
                "{} L/{}（{}）",
                format_value(o.flow_l_per_min, 1),
                if l.lang == "ja" { "分" } else { "min" },
                Esc(&o.schedule)
            );
        }
        None => h.push_str(&escape_html(l.none)),
    }
    h.push_str("</dd></dl></section>");
}

fn render_vitals(h: &mut String, l: &Labels, input: &HandoverInput) {
    let _ = write!(
        h,
        "<section><h2>{}</h2><div class=\"legend\">{}</div><div class=\"vitals\">",
        Esc(l.vitals),
        Esc(l.vitals_legend)
    );
    let window_start = input.generated_at - chrono::Duration::hours(72);
    for series in &input.vitals {
        let kind = series.kind;
        let unit = kind.display_unit();
        let in_window: Vec<f64> = series
            .points
            .iter()
            .filter(|p| p.at >= window_start && p.at <= input.generated_at && p.value.is_finite())
            .map(|p| p.value)
            .collect();
        let name = l.vital(kind);
        let summary = match in_window.last() {
            Some(last) => {
                let min = in_window.iter().copied().fold(f64::INFINITY, f64::min);
                let max = in_window.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                format!(
                    "<span>{latest} <b>{}</b> {unit} · {range} {}–{}</span>",
                    format_value(*last, kind.decimals()),
                    format_value(min, kind.decimals()),
                    format_value(max, kind.decimals()),
                    latest = Esc(l.latest),
                    range = Esc(l.range),
                    unit = Esc(unit),
                )
            }
            None => format!("<span class=\"muted\">{}</span>", Esc(l.no_data)),
        };
        let _ = write!(
            h,
            "<div class=\"vital\"><div class=\"label\"><span>{}</span>{summary}</div>{}</div>",
            Esc(name),
            plot::trend_svg(series, input.generated_at, &escape_html(name)),
        );
    }
    if input.vitals.is_empty() {
        h.push_str(&escape_html(l.no_data));
    }
    h.push_str("</div></section>");
}

fn render_ecg(h: &mut String, l: &Labels, input: &HandoverInput) {
    let _ = write!(h, "<section><h2>{}</h2>", Esc(l.ecg));
    let svg = input
        .ecg
        .as_ref()
        .and_then(|strip| Some((strip, plot::ecg_svg(strip, &escape_html(l.ecg))?)));
    match svg {
        Some((strip, svg)) => {
            let _ = write!(
                h,
                "<div class=\"figures\"><span>{}</span><span>{} {}</span>",
                Esc(&l.instant(strip.recorded_at)),
                Esc(l.lead),
                Esc(&strip.lead),
            );
            if let Some(f) = plot::rhythm_figures(strip) {
                let _ = write!(
                    h,
                    "<span>{} <b>{:.0}</b> /min</span><span>{} <b>{:.0}</b> ms</span>\
                     <span>{} {:.0}–{:.0} ms</span>",
                    Esc(l.heart_rate),
                    f.heart_rate_per_min,
                    Esc(l.mean_rr),
                    f.mean_rr_ms,
                    Esc(l.rr_range),
                    f.min_rr_ms,
                    f.max_rr_ms
                );
            }
            h.push_str("</div>");
            h.push_str(&svg);
            let _ = write!(h, "<div class=\"muted\">{}</div>", Esc(l.paper));
        }
        None => {
            let _ = write!(h, "<p class=\"muted\">{}</p>", Esc(l.no_ecg));
        }
    }
    h.push_str("</section>");
}

fn render_earlier_alerts(h: &mut String, l: &Labels, input: &HandoverInput) {
    let _ = write!(h, "<section><h2>{}</h2>", Esc(l.earlier_alerts));
    if input.earlier_alerts.is_empty() {
        let _ = write!(h, "<p class=\"muted\">{}</p></section>", Esc(l.none));
        return;
    }
    let _ = write!(
        h,
        "<table><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>",
        Esc(l.time),
        Esc(l.severity),
        Esc(l.alert),
        Esc(l.outcome)
    );
    for a in &input.earlier_alerts {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            Esc(&l.instant(a.raised_at)),
            Esc(l.severity(a.severity)),
            Esc(&a.title),
            Esc(&a.outcome)
        );
    }
    h.push_str("</tbody></table></section>");
}

#[cfg(test)]
mod tests;
