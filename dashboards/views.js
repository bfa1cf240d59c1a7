// The views: login, ward overview, patient detail, alert queue, handover.
import uPlot from './vendor/uplot/uPlot.esm.js';
import { api, ApiError } from './api.js';
import { t, currentLang } from './i18n.js';
import { alertLine, alertWording, el, formatAge, formatTime, formatValue, kindLabel, kindUnit, pad, patientIdentity } from './format.js';
import { EcgStrip } from './ecg.js';

const ARROWS = { up: '↑', down: '↓', flat: '→' };
const TILE_KINDS = ['heart_rate', 'spo2', 'systolic_bp', 'temperature', 'weight'];

export function loginView(main, onLoggedIn) {
  const form = el('form', 'card login');
  form.append(el('h1', null, t('login_title')));
  const field = (label, name, type, autocomplete) => {
    const l = el('label', null, label);
    const i = document.createElement('input');
    Object.assign(i, { name, type, autocomplete, id: `login-${name}` });
    l.append(i);
    form.append(l);
    return i;
  };
  const login = field(t('login_name'), 'login', 'text', 'username');
  const password = field(t('password'), 'password', 'password', 'current-password');
  const totp = field(t('totp'), 'totp', 'text', 'one-time-code');
  totp.inputMode = 'numeric';
  const err = el('p', 'error');
  const btn = el('button', 'primary', t('login'));
  btn.type = 'submit';
  form.append(err, btn);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    err.textContent = '';
    try {
      const me = await api('/session', { method: 'POST', body: { login: login.value, password: password.value, totp_code: totp.value || null } });
      onLoggedIn(me);
    } catch (e) {
      err.textContent = e.code === 'second_factor_required' ? t('second_factor_required') : e.message;
    }
  });
  main.replaceChildren(form);
  login.focus();
}

function vitalCell(o, arrow) {
  const cell = el('div', 'vital');
  cell.dataset.kind = o?.kind ?? '';
  if (!o) {
    cell.classList.add('missing');
    cell.append(el('span', 'value', '—'), el('span', 'age', t('no_value')));
    return cell;
  }
  if (o.stale) cell.classList.add('stale');
  const v = el('span', 'value', formatValue(o.kind, o.value));
  v.append(el('small', 'unit', ` ${kindUnit(o.kind)}`));
  if (arrow) {
    const a = el('span', `arrow arrow-${arrow}`, ARROWS[arrow]);
    a.title = t(`trend_${arrow}`);
    v.append(a);
  }
  const age = el('span', 'age', formatAge(o.measured_at));
  age.title = formatTime(o.measured_at);
  if (o.stale) age.append(el('span', 'stale-tag', ` ${t('stale')}`));
  cell.append(v, age);
  return cell;
}

function vitalLabel(kind) { return el('span', 'label', kindLabel(kind)); }

function devicesLine(devices) {
  const box = el('div', 'devices');
  for (const d of devices) {
    const item = el('span', 'device');
    const battery = d.battery_percent ?? null;
    item.append(`${d.model} `);
    if (battery !== null) {
      const b = el('span', battery <= 20 ? 'battery low' : 'battery', `${t('battery')} ${battery}%`);
      item.append(b);
    }
    box.append(item);
  }
  const gw = devices[0];
  if (gw) {
    const g = el('span', gw.gateway_online ? 'gateway on' : 'gateway off',
      `${t('gateway')}: ${gw.gateway_online ? t('online') : t('offline')}`);
    if (gw.gateway_last_seen) g.append(` · ${t('last_seen')} ${formatAge(gw.gateway_last_seen)}`);
    box.append(g);
  }
  return box;
}

export function tileElement(tile) {
  const card = el('a', `tile prio-${tile.alert_priority ?? 'none'}`);
  card.href = `#/patient/${encodeURIComponent(tile.patient.id)}`;
  card.dataset.patientId = tile.patient.id;
  const head = el('div', 'tile-head');
  head.append(patientIdentity(tile.patient));
  if (tile.open_alerts > 0) {
    head.append(el('span', `badge prio-${tile.alert_priority}`, `${t(`priority_${tile.alert_priority}`)} ×${tile.open_alerts}`));
  }
  card.append(head);
  const grid = el('div', 'vitals');
  const latest = Object.fromEntries(tile.latest.map((o) => [o.kind, o]));
  const arrows = Object.fromEntries(tile.trends.map((x) => [x.kind, x.arrow]));
  for (const k of TILE_KINDS) {
    const wrap = el('div', 'vital-wrap');
    wrap.append(vitalLabel(k === 'systolic_bp' ? 'systolic_bp' : k), vitalCell(latest[k], arrows[k]));
    grid.append(wrap);
  }
  card.append(grid, devicesLine(tile.devices));
  return card;
}

// Ticks on the 24-hour clock with the month/day where the day changes (uPlot's default is the US
// "9pm 11/24/26"); days alone when ticks are a day or more apart.
function timeTicks(u, splits, axisIdx, space, incr) {
  let lastDay = null;
  return splits.map((seconds) => {
    const d = new Date(seconds * 1000);
    const day = `${d.getMonth() + 1}/${d.getDate()}`;
    const hm = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
    const label = incr >= 86400 ? day : day !== lastDay ? `${hm}\n${day}` : hm;
    lastDay = day;
    return label;
  });
}

export async function wardView(main) {
  const page = await api('/patients?limit=200');
  const grid = el('section', 'tiles');
  grid.id = 'tiles';
  for (const tile of page.items) grid.append(tileElement(tile));
  const h = el('h1', null, t('ward'));
  main.replaceChildren(h, grid);
  return page.items;
}

function alertCard(alert, patient, onChanged) {
  const card = el('article', `alert-card prio-${alert.priority} state-${alert.state}`);
  card.dataset.alertId = alert.id;
  const head = el('div', 'alert-head');
  head.append(el('span', `badge prio-${alert.priority}`, t(`priority_${alert.priority}`)));
  if (patient) {
    const link = el('a', 'alert-patient');
    link.href = `#/patient/${encodeURIComponent(alert.patient_id)}`;
    link.append(patientIdentity(patient));
    head.append(link);
  }
  head.append(el('span', 'state', t(`state_${alert.state}`)));
  card.append(head);
  const words = alertWording(alert);
  const message = el('p', 'message');
  message.append(el('strong', 'alert-title', words.title), el('span', 'summary', words.message));
  if (!alert.condition_active) message.append(' ', el('span', 'chip cleared', t('condition_cleared')));
  card.append(message);
  const when = el('p', 'when', `${t('raised_at')}: ${formatTime(alert.raised_at)}（${formatAge(alert.raised_at)}）`);
  card.append(when);
  // Notes people wrote; the system's own notes repeat what the card already says.
  const last = alert.transitions.filter((x) => x.note && x.by).at(-1);
  if (last) card.append(el('p', 'last-note', `${t(`state_${last.state}`)}: ${last.note}`));
  const actions = el('div', 'actions');
  if (alert.state !== 'resolved') {
    const note = document.createElement('input');
    Object.assign(note, { type: 'text', placeholder: t('note'), className: 'note' });
    actions.append(note);
    for (const action of ['acknowledge', 'escalate', 'resolve']) {
      if (action === 'acknowledge' && alert.state === 'acknowledged') continue;
      if (action === 'escalate' && alert.state === 'escalated') continue;
      const b = el('button', `act act-${action}`, t(action));
      b.type = 'button';
      b.addEventListener('click', async () => {
        if (!note.value.trim()) { note.focus(); note.classList.add('invalid'); return; }
        try {
          const res = await api(`/alerts/${encodeURIComponent(alert.id)}/${action}`, { method: 'POST', body: { note: note.value } });
          onChanged(res.alert);
        } catch (e) { alertError(card, e); }
      });
      actions.append(b);
    }
  }
  // The on-call handover page (server-rendered, printable), in a new tab so the queue stays open.
  const handover = el('a', 'button handover-link', t('handover'));
  handover.href = `/api/v1/alerts/${encodeURIComponent(alert.id)}/handover?lang=${currentLang()}`;
  handover.target = '_blank';
  handover.rel = 'noopener';
  actions.append(handover);
  card.append(actions);
  return card;
}

function alertError(card, e) {
  card.querySelector('.error')?.remove();
  card.append(el('p', 'error', e instanceof ApiError ? e.message : String(e)));
}

export async function alertsView(main, patients, filterPatient = null) {
  const path = filterPatient ? `/patients/${encodeURIComponent(filterPatient)}/alerts?limit=100` : '/alerts?limit=200';
  const page = await api(path);
  const list = el('section', 'alert-list');
  list.id = 'alert-list';
  const render = (alerts) => {
    list.replaceChildren();
    if (!alerts.length) list.append(el('p', 'empty', t('no_alerts')));
    for (const a of alerts) {
      list.append(alertCard(a, patients.get(a.patient_id), (changed) => {
        const i = alerts.findIndex((x) => x.id === changed.id);
        alerts[i] = changed;
        render(alerts);
      }));
    }
  };
  render(page.items);
  if (!filterPatient) main.replaceChildren(el('h1', null, t('alerts')), list);
  return { list, render, items: page.items };
}

const MEASURE_KEYS = {
  spo2: 'spo2', pulse_rate: 'pulse_rate', ecg_heart_rate: 'ecg_heart_rate', systolic_bp: 'systolic_bp',
  body_temperature: 'temperature', body_weight: 'weight',
};
const UCUM_SHOWN = { 'mm[Hg]': 'mmHg', Cel: '°C' };

/**
 * "Alert limits for this patient": each overridable threshold rule with its default, the range a
 * doctor may move it within, and the override in force; doctors get a form to set and revoke.
 */
async function limitsSection(patientId, canEdit) {
  const box = el('section', 'card rule-limits');
  box.id = 'rule-limits';
  const path = `/patients/${encodeURIComponent(patientId)}/rule-overrides`;
  const render = (rules) => {
    box.replaceChildren(el('h2', null, t('rule_limits')));
    const table = el('table');
    const head = el('tr');
    for (const k of ['limit_rule', 'limit_default', 'limit_range', 'limit_override']) head.append(el('th', null, t(k)));
    table.append(head);
    for (const r of rules) {
      const unit = UCUM_SHOWN[r.unit] ?? r.unit;
      const tr = el('tr');
      tr.dataset.ruleId = r.rule_id;
      const o = r.override_in_force;
      const now = o ? `${r.raise.op} ${o.raise_value} / ${r.clear.op} ${o.clear_value} ${unit}` : '—';
      tr.append(
        el('td', null, `${t(MEASURE_KEYS[r.measure] ?? r.measure)} (${r.rule_id})`),
        el('td', null, `${r.raise.op} ${r.raise.value} / ${r.clear.op} ${r.clear.value} ${unit}`),
        el('td', null, `${r.override_min}–${r.override_max} ${unit}`),
      );
      const cell = el('td', o ? 'override' : null, now);
      if (o) cell.append(el('div', 'override-by', `${o.set_by_name ?? o.set_by}: ${o.reason}（${t('until')} ${formatTime(o.expires_at)}）`));
      tr.append(cell);
      table.append(tr);
    }
    box.append(table, el('p', 'hint', t('limit_hint')));
    if (canEdit) box.append(limitsForm(rules));
  };
  const limitsForm = (rules) => {
    const form = el('form', 'limits-form');
    const rule = document.createElement('select');
    rule.name = 'rule';
    for (const r of rules) rule.append(Object.assign(document.createElement('option'), { value: r.rule_id, textContent: r.rule_id }));
    const input = (name, type, placeholder) => Object.assign(document.createElement('input'), { name, type, placeholder, step: 'any' });
    const raise = input('raise', 'number', t('limit_raise'));
    const clear = input('clear', 'number', t('limit_clear'));
    const reason = input('reason', 'text', t('limit_reason'));
    const until = input('until', 'date', '');
    for (const required of [raise, clear, until]) required.required = true;
    const set = el('button', 'act', t('limit_set'));
    set.type = 'submit';
    const revoke = el('button', 'ghost', t('limit_revoke'));
    revoke.type = 'button';
    const error = el('p', 'error');
    const send = async (method, body) => {
      try {
        await api(`${path}/${encodeURIComponent(rule.value)}`, { method, body });
        render(await api(path));
      } catch (e) { error.textContent = e instanceof ApiError ? `${e.code}: ${e.message}` : String(e); }
    };
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      // The expiry date ends at local midnight after it (the override holds through that day).
      const expires = new Date(`${until.value}T23:59:59`);
      send('PUT', {
        raise_value: Number(raise.value), clear_value: Number(clear.value), reason: reason.value,
        expires_at: expires.toISOString(),
      });
    });
    revoke.addEventListener('click', () => send('DELETE', { reason: reason.value }));
    form.append(rule, raise, clear, reason, el('label', null, t('until')), until, set, revoke, error);
    return form;
  };
  render(await api(path));
  return box;
}

const RANGES = { range_6h: 6, range_24h: 24, range_7d: 168 };
const CHARTS = [
  { kinds: ['heart_rate'], title: 'hr' },
  { kinds: ['spo2'], title: 'spo2' },
  { kinds: ['systolic_bp', 'diastolic_bp'], title: 'bp' },
  { kinds: ['temperature'], title: 'temperature' },
  { kinds: ['weight'], title: 'weight' },
];
const COLOURS = ['#1565c0', '#2e7d32', '#6a1b9a'];

async function drawTrends(box, patientId, hours) {
  const to = new Date();
  const from = new Date(to.getTime() - hours * 3600000);
  box.replaceChildren();
  for (const chart of CHARTS) {
    const series = await Promise.all(chart.kinds.map((k) =>
      api(`/patients/${encodeURIComponent(patientId)}/trends/${k}?from=${from.toISOString()}&to=${to.toISOString()}&max_points=400`)));
    const times = [...new Set(series.flat().map((p) => Date.parse(p.t) / 1000))].sort((a, b) => a - b);
    const columns = series.map((pts) => {
      const byT = new Map(pts.map((p) => [Date.parse(p.t) / 1000, p.mean]));
      return times.map((x) => byT.get(x) ?? null);
    });
    const wrap = el('div', 'chart');
    wrap.dataset.chart = chart.title;
    wrap.append(el('h3', null, `${t(chart.title)} (${kindUnit(chart.kinds[0])})`));
    box.append(wrap);
    if (!times.length) { wrap.append(el('p', 'empty', t('no_value'))); continue; }
    const width = Math.max(240, wrap.clientWidth - 4);
    const sparse = times.length < 30;
    // Data spanning under a minute (a daily measurement, a stream that just started) is drawn
    // against the whole requested range; uPlot pads a zero-width range by years otherwise.
    const narrow = times[times.length - 1] - times[0] < 60;
    new uPlot({
      width, height: 150,
      cursor: { drag: { x: true, y: false } },
      legend: { show: false },
      scales: { x: { time: true, range: (u, min, max) => (narrow ? [from / 1000, to / 1000] : [min, max]) } },
      series: [{}, ...chart.kinds.map((k, i) => ({ label: kindLabel(k), stroke: COLOURS[i], width: 1.5, spanGaps: true, points: { show: sparse, size: 6 } }))],
      axes: [{ stroke: '#555', values: timeTicks, size: 48 }, { stroke: '#555', size: 44 }],
    }, [times, ...columns], wrap);
  }
  box.append(el('p', 'hint', t('zoom_hint')));
}

export async function patientView(main, patientId, patients, feed, me) {
  let detail;
  try {
    detail = await api(`/patients/${encodeURIComponent(patientId)}`);
  } catch (e) {
    if (e.code === 'patient_out_of_scope') return refusedView(main, patientId);
    throw e;
  }
  patients.set(detail.id, detail);
  const tile = await api(`/patients/${encodeURIComponent(patientId)}/tile`);
  const head = el('section', 'patient-head card');
  head.append(patientIdentity(detail, true));
  const facts = el('dl', 'facts');
  const fact = (k, v) => { facts.append(el('dt', null, t(k)), el('dd', null, v)); };
  fact('diseases', detail.diseases.join('、') || '—');
  fact('allergies', detail.allergies.join('、') || t('no'));
  fact('dnar', detail.dnar ? t('yes') : t('no'));
  fact('home_oxygen', detail.home_oxygen ? t('yes') : t('no'));
  head.append(facts);
  const handover = el('a', 'button handover-link', t('handover'));
  handover.href = `#/handover/${encodeURIComponent(patientId)}`;
  head.append(handover);

  const latest = el('section', 'latest card');
  latest.id = 'latest';
  const renderLatest = (obs) => {
    latest.replaceChildren();
    const byKind = Object.fromEntries(obs.map((o) => [o.kind, o]));
    for (const k of ['heart_rate', 'spo2', 'systolic_bp', 'diastolic_bp', 'temperature', 'weight']) {
      const w = el('div', 'vital-wrap');
      w.append(vitalLabel(k), vitalCell(byKind[k], tile.trends.find((x) => x.kind === k)?.arrow));
      latest.append(w);
    }
    latest.append(devicesLine(tile.devices));
  };
  renderLatest(tile.latest);

  const ecgBox = el('section', 'ecg card');
  const ecgHead = el('h2', null, t('live_ecg'));
  const hrLabel = el('span', 'ecg-hr', '');
  hrLabel.id = 'ecg-hr';
  ecgHead.append(hrLabel);
  const canvas = document.createElement('canvas');
  canvas.id = 'ecg';
  canvas.className = 'ecg-canvas';
  const dropped = el('p', 'dropped');
  ecgBox.append(ecgHead, canvas, dropped, el('p', 'hint', '25 mm/s · 10 mm/mV'));

  const trendBox = el('section', 'trends card');
  const rangeBar = el('div', 'ranges');
  const charts = el('div', 'charts');
  trendBox.append(el('h2', null, t('trends')), rangeBar, charts);
  for (const [key, hours] of Object.entries(RANGES)) {
    const b = el('button', 'ghost', t(key));
    b.type = 'button';
    b.addEventListener('click', () => {
      rangeBar.querySelectorAll('button').forEach((x) => x.classList.remove('active'));
      b.classList.add('active');
      drawTrends(charts, patientId, hours);
    });
    rangeBar.append(b);
  }

  const alertsBox = el('section', 'card');
  alertsBox.append(el('h2', null, t('patient_alerts')));

  const readingsBox = el('section', 'card readings');
  readingsBox.append(el('h2', null, t('readings')));
  const readings = await api(`/patients/${encodeURIComponent(patientId)}/readings?limit=30`);
  const table = el('table');
  const thead = el('tr');
  thead.append(el('th', null, t('time')), el('th', null, t('kind')), el('th', null, t('value')));
  table.append(thead);
  for (const r of readings.items) {
    const tr = el('tr');
    tr.append(el('td', null, formatTime(r.measured_at)), el('td', null, kindLabel(r.kind)), el('td', null, `${formatValue(r.kind, r.value)} ${kindUnit(r.kind)}`));
    table.append(tr);
  }
  readingsBox.append(table);

  const canEditLimits = me.roles.some((r) => r === 'doctor' || r === 'on_call_doctor');
  const limitsBox = await limitsSection(patientId, canEditLimits);

  main.replaceChildren(head, latest, ecgBox, trendBox, alertsBox, limitsBox, readingsBox);
  const strip = new EcgStrip(canvas, (rr, hr) => { hrLabel.textContent = ` HR ${hr}/min · RR ${rr} ms`; });
  rangeBar.querySelectorAll('button')[1].click();
  const patientAlerts = await alertsView(alertsBox, patients, patientId);
  alertsBox.append(patientAlerts.list);

  const liveObs = new Map(tile.latest.map((o) => [o.kind, o]));
  feed.subscribe(patientId);
  const ageTimer = setInterval(() => renderLatest([...liveObs.values()]), 10000);
  return {
    onMessage(msg) {
      if (msg.type === 'patient' && msg.patient_id === patientId) {
        if (msg.event.type === 'ecg') strip.push(msg.event);
        else if (msg.event.type === 'beat') strip.markBeat(msg.event);
        if (msg.event.type === 'observation') {
          liveObs.set(msg.event.kind, { ...msg.event, age_s: 0, stale: false });
          renderLatest([...liveObs.values()]);
        }
      }
      if (msg.type === 'dropped' && msg.patient_id === patientId) dropped.textContent = t('dropped', { n: msg.ecg_frames });
      if (msg.type === 'alert' && msg.alert.patient_id === patientId) {
        const i = patientAlerts.items.findIndex((a) => a.id === msg.alert.id);
        if (i >= 0) patientAlerts.items[i] = msg.alert; else patientAlerts.items.unshift(msg.alert);
        patientAlerts.render(patientAlerts.items);
      }
    },
    destroy() { strip.destroy(); clearInterval(ageTimer); feed.unsubscribe(patientId); },
  };
}

function refusedView(main, patientId) {
  const box = el('section', 'card refused');
  box.id = 'refused';
  box.append(el('h1', null, t('refused')));
  const form = el('form', 'break-glass');
  const reason = document.createElement('input');
  Object.assign(reason, { type: 'text', placeholder: t('break_glass_reason'), minLength: 10, required: true });
  const b = el('button', 'danger', t('break_glass'));
  b.type = 'submit';
  const err = el('p', 'error');
  form.append(reason, b, err);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      await api(`/patients/${encodeURIComponent(patientId)}/break-glass`, { method: 'POST', body: { reason: reason.value } });
      window.dispatchEvent(new HashChangeEvent('hashchange'));
    } catch (e) { err.textContent = e.message; }
  });
  box.append(form);
  main.replaceChildren(box);
  return null;
}

/** A printable one-page handover: who, what is wrong now, what was done. */
export async function handoverView(main, patientId) {
  const [detail, tile, alerts] = await Promise.all([
    api(`/patients/${encodeURIComponent(patientId)}`),
    api(`/patients/${encodeURIComponent(patientId)}/tile`),
    api(`/patients/${encodeURIComponent(patientId)}/alerts?limit=20`),
  ]);
  const box = el('section', 'card handover');
  box.id = 'handover';
  box.append(el('h1', null, t('handover')), patientIdentity(detail, true));
  const facts = el('dl', 'facts');
  const fact = (k, v) => { facts.append(el('dt', null, t(k)), el('dd', null, v)); };
  fact('diseases', detail.diseases.join('、') || '—');
  fact('allergies', detail.allergies.join('、') || t('no'));
  fact('dnar', detail.dnar ? t('yes') : t('no'));
  fact('home_oxygen', detail.home_oxygen ? t('yes') : t('no'));
  for (const o of tile.latest) fact(o.kind === 'heart_rate' ? 'hr' : o.kind, `${formatValue(o.kind, o.value)} ${kindUnit(o.kind)}（${formatAge(o.measured_at)}${o.stale ? ' · ' + t('stale') : ''}）`);
  box.append(facts, el('h2', null, t('patient_alerts')));
  const ul = el('ul', 'handover-alerts');
  for (const a of alerts.items) {
    const li = el('li', `prio-${a.priority}`, `${formatTime(a.raised_at)} [${t(`priority_${a.priority}`)} · ${t(`state_${a.state}`)}] ${alertLine(a)}`);
    for (const tr of a.transitions.filter((x) => x.note)) li.append(el('div', 'note', `${formatTime(tr.at)} ${t(`state_${tr.state}`)}: ${tr.note}`));
    ul.append(li);
  }
  box.append(ul);
  const print = el('button', 'ghost', t('print'));
  print.type = 'button';
  print.addEventListener('click', () => window.print());
  box.append(print);
  main.replaceChildren(box);
}
