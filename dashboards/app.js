// Entry point: session, hash routing, the live feed, the high-priority banner.
import { api, LiveFeed } from './api.js';
import { t, setLang, currentLang } from './i18n.js';
import { alertLine, el, patientIdentity } from './format.js';
import { loginView, wardView, patientView, alertsView, handoverView } from './views.js';

const main = document.getElementById('main');
const banner = document.getElementById('banner');
const conn = document.getElementById('conn');
const patients = new Map();   // id → summary, for naming patients in alerts
let me = null;
let feed = null;
let current = null;           // the view's {onMessage, destroy}
let audio = null;

function chrome() {
  document.getElementById('brand').textContent = t('app_title');
  document.getElementById('nav-ward').textContent = t('ward');
  document.getElementById('nav-alerts').textContent = t('alerts');
  document.getElementById('lang').textContent = t('language');
  document.getElementById('logout').textContent = t('logout');
  document.getElementById('nav').hidden = !me;
  document.getElementById('logout').hidden = !me;
  document.getElementById('who').textContent = me ? me.display_name : '';
  document.title = `${t('app_title')}${currentLang() === 'ja' ? ' mimamori' : ''}`;
}

/** Two short tones (IEC 60601-1-8 style high-priority burst is 10 pulses; two keep it bearable on a phone). */
function alarmSound() {
  try {
    audio ??= new AudioContext();
    const now = audio.currentTime;
    for (const [i, f] of [[0, 880], [1, 660], [2, 880]]) {
      const o = audio.createOscillator(), g = audio.createGain();
      o.frequency.value = f;
      g.gain.setValueAtTime(0.0001, now + i * 0.18);
      g.gain.exponentialRampToValueAtTime(0.3, now + i * 0.18 + 0.02);
      g.gain.exponentialRampToValueAtTime(0.0001, now + i * 0.18 + 0.15);
      o.connect(g).connect(audio.destination);
      o.start(now + i * 0.18);
      o.stop(now + i * 0.18 + 0.16);
    }
  } catch (e) { console.warn('no sound', e); }
}

function showBanner(alert) {
  const p = patients.get(alert.patient_id);
  banner.replaceChildren();
  banner.append(el('strong', null, `${t('high_banner')}: `));
  if (p) banner.append(patientIdentity(p));
  banner.append(el('span', 'msg', alertLine(alert)));
  const open = el('a', 'button', t('open'));
  open.href = '#/alerts';
  const close = el('button', 'ghost', '×');
  close.type = 'button';
  close.addEventListener('click', () => { banner.hidden = true; });
  banner.append(open, close);
  banner.hidden = false;
  banner.dataset.alertId = alert.id;
}

function onMessage(msg) {
  if (msg.type === 'alert') {
    const a = msg.alert;
    if (a.priority === 'high' && (a.state === 'raised' || a.state === 'notified')) {
      showBanner(a);
      alarmSound();
    } else if (banner.dataset.alertId === a.id && a.state !== 'raised' && a.state !== 'notified') {
      banner.hidden = true;
    }
    // Refresh lists, but never under someone typing a note.
    const typing = [...document.querySelectorAll('input.note')].some((i) => i.value.trim());
    const onList = location.hash.startsWith('#/alerts') || location.hash.startsWith('#/ward') || location.hash === '';
    if (onList && !typing) route();
  }
  current?.onMessage?.(msg);
}

async function route() {
  current?.destroy?.();
  current = null;
  if (!me) return loginView(main, loggedIn);
  const [, view, arg] = (location.hash || '#/ward').split('/');
  try {
    if (view === 'patient' && arg) {
      current = await patientView(main, decodeURIComponent(arg), patients, feed, me);
    } else if (view === 'alerts') {
      await alertsView(main, patients);
    } else if (view === 'handover' && arg) {
      await handoverView(main, decodeURIComponent(arg));
    } else {
      const tiles = await wardView(main);
      for (const tile of tiles) patients.set(tile.patient.id, tile.patient);
      const timer = setInterval(() => { if (!document.hidden) route(); }, 15000);
      current = { destroy: () => clearInterval(timer) };
    }
  } catch (e) {
    if (e.status === 401) { me = null; chrome(); return loginView(main, loggedIn); }
    main.replaceChildren(el('p', 'error', `${t('error')}: ${e.message}`));
  }
}

async function loggedIn(user) {
  me = user;
  audio ??= new AudioContext();   // created on the login gesture so alarms may sound later
  chrome();
  const tiles = await api('/patients?limit=200').catch(() => ({ items: [] }));
  for (const tile of tiles.items) patients.set(tile.patient.id, tile.patient);
  feed = new LiveFeed(onMessage, (up) => { conn.hidden = up; conn.textContent = t('connection_lost'); });
  feed.subscribeAlerts();
  route();
}

document.getElementById('lang').addEventListener('click', () => {
  setLang(currentLang() === 'ja' ? 'en' : 'ja');
  chrome();
  route();
});
document.getElementById('logout').addEventListener('click', async () => {
  await api('/session', { method: 'DELETE' }).catch(() => {});
  feed?.close();
  me = null;
  chrome();
  route();
});
window.addEventListener('hashchange', route);

(async () => {
  chrome();
  try { me = await api('/session'); } catch { me = null; }
  if (me) await loggedIn(me); else route();
})();
