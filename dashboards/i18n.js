// Japanese by default, English on request; the choice is remembered per browser.
const STRINGS = {
  ja: {
    app_title: '見守り', login_title: 'ログイン', login_name: 'ログイン名', password: 'パスワード',
    totp: 'ワンタイムコード（院外から）', login: 'ログイン', logout: 'ログアウト',
    ward: '病棟一覧', alerts: 'アラート', patient: '患者', born: '生', age_years: '歳',
    hr: '心拍数', spo2: 'SpO₂', systolic_bp: '収縮期血圧', diastolic_bp: '拡張期血圧', bp: '血圧',
    temperature: '体温', weight: '体重', news2: 'NEWS2（部分）', devices: '機器', battery: '電池',
    gateway: 'ゲートウェイ', online: '接続中', offline: '切断', last_seen: '最終受信',
    no_value: 'データなし', stale: '古い値', live_ecg: 'ライブ心電図', trends: 'トレンド', readings: '測定値一覧',
    patient_alerts: 'この患者のアラート', open_alerts: '未解決アラート', acknowledge: '確認', escalate: 'エスカレート',
    resolve: '解決', note: 'メモ（必須）', handover: '申し送り', priority_high: '高', priority_medium: '中',
    priority_low: '低', state_raised: '発生', state_notified: '通知済', state_acknowledged: '確認済',
    state_escalated: 'エスカレート済', state_resolved: '解決済', no_alerts: 'アラートはありません',
    refused: 'この患者はあなたのケアチームの担当ではありません。', break_glass: '緊急アクセス（理由を記録）',
    break_glass_reason: '理由（10文字以上）', range_6h: '6時間', range_24h: '24時間', range_7d: '7日',
    time: '時刻', value: '値', kind: '項目', rr: 'RR', dropped: '表示遅延のため心電図 {n} フレームを省略',
    just_now: 'たった今', sec_ago: '{n}秒前', min_ago: '{n}分前', hours_ago: '{n}時間前', yesterday: '昨日',
    high_banner: '高優先度アラート', open: '開く', back: '戻る', connection_lost: 'ライブ接続が切れています。再接続中…',
    error: 'エラー', diseases: '主病名', allergies: 'アレルギー', dnar: 'DNAR', home_oxygen: '在宅酸素',
    yes: 'あり', no: 'なし', raised_at: '発生', rule: '内容', history: '経過', zoom_hint: 'ドラッグで拡大、ダブルクリックで戻す',
    trend_up: '上昇', trend_down: '下降', trend_flat: '横ばい', print: '印刷', language: 'English',
    second_factor_required: '院外からのアクセスにはワンタイムコードが必要です。',
    condition_cleared: '状態は解消',
    rule_limits: 'アラート基準（患者別）', limit_rule: '基準', limit_default: '既定（発生 / 解除）',
    limit_range: '変更可能範囲', limit_override: 'この患者の設定', until: '期限', limit_raise: '発生値',
    limit_clear: '解除値', limit_reason: '理由（必須）', limit_set: '設定', limit_revoke: '取り消し',
    limit_hint: '医師のみ変更できます。期限を過ぎると既定値に戻ります。',
    pulse_rate: '脈拍数', ecg_heart_rate: '心拍数（心電図）',
  },
  en: {
    app_title: 'mimamori', login_title: 'Log in', login_name: 'Login name', password: 'Password',
    totp: 'One-time code (outside the clinic)', login: 'Log in', logout: 'Log out',
    ward: 'Ward', alerts: 'Alerts', patient: 'Patient', born: 'born', age_years: 'y',
    hr: 'Heart rate', spo2: 'SpO₂', systolic_bp: 'Systolic BP', diastolic_bp: 'Diastolic BP', bp: 'BP',
    temperature: 'Temperature', weight: 'Weight', news2: 'NEWS2 (partial)', devices: 'Devices', battery: 'Battery',
    gateway: 'Gateway', online: 'online', offline: 'offline', last_seen: 'last seen',
    no_value: 'no data', stale: 'stale', live_ecg: 'Live ECG', trends: 'Trends', readings: 'Readings',
    patient_alerts: "This patient's alerts", open_alerts: 'open alerts', acknowledge: 'Acknowledge', escalate: 'Escalate',
    resolve: 'Resolve', note: 'Note (required)', handover: 'Handover', priority_high: 'High', priority_medium: 'Medium',
    priority_low: 'Low', state_raised: 'raised', state_notified: 'notified', state_acknowledged: 'acknowledged',
    state_escalated: 'escalated', state_resolved: 'resolved', no_alerts: 'No alerts',
    refused: 'This patient is not in your care teams.', break_glass: 'Break glass (reason recorded)',
    break_glass_reason: 'Reason (10+ characters)', range_6h: '6 h', range_24h: '24 h', range_7d: '7 days',
    time: 'Time', value: 'Value', kind: 'Vital', rr: 'RR', dropped: '{n} ECG frames skipped (slow connection)',
    just_now: 'just now', sec_ago: '{n} s ago', min_ago: '{n} min ago', hours_ago: '{n} h ago', yesterday: 'yesterday',
    high_banner: 'High-priority alert', open: 'Open', back: 'Back', connection_lost: 'Live connection lost. Reconnecting…',
    error: 'Error', diseases: 'Diagnoses', allergies: 'Allergies', dnar: 'DNAR', home_oxygen: 'Home oxygen',
    yes: 'yes', no: 'no', raised_at: 'Raised', rule: 'What', history: 'History', zoom_hint: 'Drag to zoom, double-click to reset',
    trend_up: 'rising', trend_down: 'falling', trend_flat: 'steady', print: 'Print', language: '日本語',
    second_factor_required: 'A one-time code is required from outside the clinic network.',
    condition_cleared: 'condition cleared',
    rule_limits: 'Alert limits for this patient', limit_rule: 'Rule', limit_default: 'Default (raise / clear)',
    limit_range: 'Allowed range', limit_override: 'For this patient', until: 'until', limit_raise: 'Raise at',
    limit_clear: 'Clear at', limit_reason: 'Reason (required)', limit_set: 'Set', limit_revoke: 'Revoke',
    limit_hint: 'Only doctors change these. After the expiry the default applies again.',
    pulse_rate: 'Pulse rate', ecg_heart_rate: 'Heart rate (ECG)',
  },
};

let lang = localStorage.getItem('mimamori.lang') === 'en' ? 'en' : 'ja';

export function currentLang() { return lang; }

export function setLang(next) {
  lang = next === 'en' ? 'en' : 'ja';
  localStorage.setItem('mimamori.lang', lang);
  document.documentElement.lang = lang;
}

/** Translates `key`, filling `{n}`-style placeholders from `vars`. */
export function t(key, vars = {}) {
  const s = STRINGS[lang][key] ?? STRINGS.ja[key] ?? key;
  return s.replace(/\{(\w+)\}/g, (_, k) => String(vars[k] ?? ''));
}

document.documentElement.lang = lang;
