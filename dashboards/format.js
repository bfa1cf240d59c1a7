// Formatting of values, units, ages and patient identity.
import { t, currentLang } from './i18n.js';

const KINDS = {
  heart_rate: { key: 'hr', unit: '/min', digits: 0 },
  spo2: { key: 'spo2', unit: '%', digits: 0 },
  systolic_bp: { key: 'systolic_bp', unit: 'mmHg', digits: 0 },
  diastolic_bp: { key: 'diastolic_bp', unit: 'mmHg', digits: 0 },
  temperature: { key: 'temperature', unit: '°C', digits: 1 },
  weight: { key: 'weight', unit: 'kg', digits: 1 },
};

export function kindLabel(kind) { return t(KINDS[kind]?.key ?? kind); }
export function kindUnit(kind) { return KINDS[kind]?.unit ?? ''; }
export function formatValue(kind, value) {
  return Number(value).toFixed(KINDS[kind]?.digits ?? 1);
}

export const pad = (n) => String(n).padStart(2, '0');

/** "3 min ago", "yesterday 07:12", "11/20 07:12" — in the viewer's local time. */
export function formatAge(iso, now = Date.now()) {
  const then = new Date(iso);
  const s = Math.max(0, Math.round((now - then.getTime()) / 1000));
  if (s < 10) return t('just_now');
  if (s < 60) return t('sec_ago', { n: s });
  if (s < 3600) return t('min_ago', { n: Math.floor(s / 60) });
  const today = new Date(now); today.setHours(0, 0, 0, 0);
  const hm = `${pad(then.getHours())}:${pad(then.getMinutes())}`;
  if (then >= today) return t('hours_ago', { n: Math.floor(s / 3600) });
  const yesterday = new Date(today.getTime() - 86400000);
  if (then >= yesterday) return `${t('yesterday')} ${hm}`;
  return `${then.getMonth() + 1}/${then.getDate()} ${hm}`;
}

export function formatTime(iso) {
  const d = new Date(iso);
  return `${d.getMonth() + 1}/${d.getDate()} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** Age in whole years on `now` from a YYYY-MM-DD date of birth. */
export function ageYears(dob, now = new Date()) {
  const [y, m, d] = dob.split('-').map(Number);
  let age = now.getFullYear() - y;
  if (now.getMonth() + 1 < m || (now.getMonth() + 1 === m && now.getDate() < d)) age -= 1;
  return age;
}

function formatDob(dob) {
  const [y, m, d] = dob.split('-').map(Number);
  return currentLang() === 'ja' ? `${y}年${m}月${d}日${t('born')}` : `${t('born')} ${y}-${pad(m)}-${pad(d)}`;
}

const el = (tag, cls, text) => {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
};
export { el };

/** Name with furigana (ruby) and date of birth: shown on every view so similar names are never confused. */
export function patientIdentity(p, big = false) {
  const box = el('div', big ? 'identity identity-big' : 'identity');
  const name = el('span', 'name');
  const ruby = document.createElement('ruby');
  ruby.append(p.name);
  const rt = document.createElement('rt');
  rt.textContent = p.name_kana;
  ruby.append(rt);
  name.append(ruby);
  box.append(name);
  box.append(el('span', 'dob', `${formatDob(p.date_of_birth)}（${ageYears(p.date_of_birth)}${t('age_years')}）`));
  box.dataset.patientId = p.id;
  return box;
}

/** An alert's title and summary in the current language (the server words it in each). */
export function alertWording(alert) {
  return alert.wording?.[currentLang()] ?? { title: alert.rule, message: alert.message };
}

/** The alert on one line: "title: summary". */
export function alertLine(alert) {
  const { title, message } = alertWording(alert);
  return `${title}: ${message}`;
}
