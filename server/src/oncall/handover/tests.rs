use super::demo::demo_input;
use super::*;

#[test]
fn every_field_of_the_demo_patient_is_on_the_page() {
    let input = demo_input(Language::Ja);
    let html = render_html(&input);
    let p = &input.patient;
    let expected = [
        "<html lang=\"ja\"",
        "<ruby class=\"name\">山田 花子<rt>やまだ はなこ</rt></ruby>",
        "1938年4月2日（昭和13年） · 88歳",
        "女性",
        "東京都世田谷区玉川3丁目99-9 グリーンハイツ101",
        // Map search built from the percent-encoded address.
        "https://www.google.com/maps/search/?api=1&amp;query=%E6%9D%B1%E4%BA%AC",
        "山田 太郎（長男）",
        "href=\"tel:09000001111\">090-0000-1111</a>",
        "玉川訪問看護ステーション",
        "href=\"tel:0355550505\"",
        "慢性心不全（NYHA III度、EF 35%）",
        "永続性心房細動",
        "ビソプロロールフマル酸塩錠 2.5mg <span class=\"muted\">1錠 1日1回 朝食後</span>",
        "<b>ペニシリン系抗菌薬（発疹）</b>",
        "<span class=\"directive dnar\">DNAR（心肺蘇生を行わない）</span>",
        "自宅での看取りを希望。",
        "確認日 2026年10月2日（令和8年）",
        "1.0 L/分（24時間（労作時 2 L/分））",
        "玉川訪問診療所",
        "鈴木 美和",
        "href=\"tel:0355550202\">03-5555-0202</a>",
        "<span class=\"badge critical\">緊急</span>",
        "SpO2 低下",
        "SpO2 85% が5分間持続",
        "2026年11月26日(木) 03:32",
        "a-20261126-0007",
        "過去72時間のバイタル",
        "心拍数",
        "体温",
        "収縮期血圧",
        "体重",
        "最新の心電図",
        "誘導 I",
        "体重増加（3日で +2.1 kg）",
        "主治医がフロセミドを 20mg に増量",
        "要配慮個人情報",
        "p-0002",
    ];
    for text in expected {
        assert!(html.contains(text), "missing {text:?}");
    }
    assert_eq!(
        p.medications.len(),
        html.matches("<li>").count() - p.main_diseases.len()
    );
    assert_eq!(
        html.matches("<svg class=\"trend\"").count(),
        input.vitals.len()
    );
    assert_eq!(html.matches("<svg class=\"ecg\"").count(), 1);
    let ecg = input.ecg.as_ref().unwrap();
    // One marker per R peak, one RR label per interval.
    assert_eq!(html.matches("class=\"rmark\"").count(), ecg.r_peaks.len());
    assert_eq!(html.matches("class=\"rr\"").count(), ecg.r_peaks.len() - 1);
    assert_eq!(html.matches("<tr><td>").count(), input.earlier_alerts.len());
}

#[test]
fn english_page_uses_english_labels() {
    let html = render_html(&demo_input(Language::En));
    for text in [
        "<html lang=\"en\"",
        "Handover summary for the on-call doctor",
        "2 Apr 1938 · 88 y",
        "DNAR (do not attempt resuscitation)",
        "Thu 26 Nov 2026 03:32 JST",
        "Vital signs, last 72 hours",
        "Earlier alerts",
        "Female",
    ] {
        assert!(html.contains(text), "missing {text:?}");
    }
    assert!(!html.contains("過去72時間"));
}

#[test]
fn heart_rate_and_rr_are_printed_from_the_r_peaks() {
    let input = demo_input(Language::En);
    let html = render_html(&input);
    let ecg = input.ecg.as_ref().unwrap();
    let rr_ms: Vec<f64> = ecg
        .r_peaks
        .windows(2)
        .map(|w| (w[1] - w[0]) as f64 * 1000.0 / ecg.sample_rate_hz)
        .collect();
    let mean = rr_ms.iter().sum::<f64>() / rr_ms.len() as f64;
    assert!(html.contains(&format!("HR <b>{:.0}</b> /min", 60_000.0 / mean)));
    assert!(html.contains(&format!("mean RR <b>{mean:.0}</b> ms")));
}

#[test]
fn text_from_the_record_is_escaped_everywhere() {
    let mut input = demo_input(Language::Ja);
    let evil = "<script>alert('x')</script>&\"";
    input.patient.name = evil.into();
    input.patient.name_furigana = evil.into();
    input.patient.address = evil.into();
    input.patient.main_diseases = vec![evil.into()];
    input.patient.allergies = Some(vec![evil.into()]);
    input.patient.advance_directive.wishes = evil.into();
    input.alert.title = evil.into();
    input.alert.reason = evil.into();
    input.primary_clinic.director = evil.into();
    input.earlier_alerts[0].outcome = evil.into();
    if let Some(ecg) = input.ecg.as_mut() {
        ecg.lead = evil.into();
    }
    input.patient.map_url = Some("javascript:alert(1)".into());
    let html = render_html(&input);
    assert!(!html.contains("<script"));
    assert!(!html.contains("javascript:"));
    assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;"));
}

#[test]
fn unknown_and_none_are_told_apart() {
    let mut input = demo_input(Language::Ja);
    input.patient.allergies = None;
    input.patient.home_oxygen = None;
    input.patient.key_person = None;
    input.ecg = None;
    input.earlier_alerts.clear();
    input.patient.advance_directive.resuscitation = ResuscitationStatus::NotDiscussed;
    let html = render_html(&input);
    assert!(html.contains("<dt>アレルギー</dt><dd>未確認</dd>"));
    assert!(html.contains("<dt>キーパーソン</dt><dd>未確認</dd>"));
    assert!(html.contains("<dt>在宅酸素</dt><dd>なし</dd>"));
    assert!(html.contains("心電図記録なし"));
    assert!(html.contains("未確認（話し合い未実施）"));
    assert!(!html.contains("directive dnar"));
    input.patient.allergies = Some(vec![]);
    assert!(render_html(&input).contains("<dt>アレルギー</dt><dd>なし</dd>"));
}

#[test]
fn registry_map_link_is_kept_when_it_is_http() {
    let mut input = demo_input(Language::Ja);
    input.patient.map_url = Some("https://maps.example/?q=a&b".into());
    assert!(render_html(&input).contains("href=\"https://maps.example/?q=a&amp;b\""));
}

#[test]
fn age_counts_the_birthday_itself() {
    let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day).unwrap();
    assert_eq!(age_in_years(d(1938, 4, 2), d(2026, 4, 1)), 87);
    assert_eq!(age_in_years(d(1938, 4, 2), d(2026, 4, 2)), 88);
    assert_eq!(wareki(d(1989, 1, 7)).as_deref(), Some("昭和64年"));
    assert_eq!(wareki(d(1989, 1, 8)).as_deref(), Some("平成元年"));
    assert_eq!(wareki(d(2019, 5, 1)).as_deref(), Some("令和元年"));
}
