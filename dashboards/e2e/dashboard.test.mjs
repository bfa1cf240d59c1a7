// Browser test of the dashboard: Debian's Chromium, headless, driven by playwright-core.
// Usage: BASE_URL=http://127.0.0.1:PORT ARTEFACTS=dir OWN_PATIENT=id FOREIGN_PATIENT=id \
//        MIN_TILES=n node dashboard.test.mjs
// The server must be receiving live ECG for OWN_PATIENT (of the nurse's team) and raise a
// high-priority alert for the nurse's team within 30 s; FOREIGN_PATIENT belongs to another team.
import { chromium } from 'playwright-core';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';

const base = process.env.BASE_URL ?? 'http://127.0.0.1:8080';
const own = process.env.OWN_PATIENT ?? 'p-0001';
const foreign = process.env.FOREIGN_PATIENT ?? 'p-0004';
const minTiles = Number(process.env.MIN_TILES ?? 3);
const artefacts = process.env.ARTEFACTS ?? 'artefacts';
mkdirSync(artefacts, { recursive: true });
const profile = mkdtempSync(join(tmpdir(), 'mimamori-chromium-'));

const browser = await chromium.launchPersistentContext(profile, {
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--autoplay-policy=no-user-gesture-required'],
  viewport: { width: 1280, height: 900 },
  locale: 'ja-JP',
  timezoneId: 'Asia/Tokyo',
});
const step = (name) => console.log(`step: ${name}`);
const shot = (page, name) => page.screenshot({ path: join(artefacts, `${name}.png`), fullPage: true });
const errors = [];

try {
  const page = browser.pages()[0] ?? await browser.newPage();
  page.on('pageerror', (e) => errors.push(String(e)));

  step('log in');
  await page.goto(base);
  await page.fill('#login-login', 'nurse');
  await page.fill('#login-password', 'mimamori-nurse');
  await shot(page, '01-login');
  await page.click('form.login button[type=submit]');

  step('tiles fill');
  await page.waitForFunction((n) => document.querySelectorAll('#tiles .tile').length >= n, minTiles, { timeout: 10000 });
  const tiles = await page.$$eval('#tiles .tile', (ts) => ts.map((t) => t.dataset.patientId));
  assert.ok(tiles.includes(own) && !tiles.includes(foreign), `only the nurse's team: ${tiles}`);
  // The patient streaming now shows a number (heart rate or SpO2) within seconds.
  await page.waitForFunction((id) => /\d/.test(document.querySelector(`#tiles .tile[data-patient-id="${id}"] .vital .value`)?.textContent ?? ''), own, { timeout: 10000 });
  assert.ok(await page.$('#tiles .vital .age'), 'values show their age');
  await shot(page, '02-ward');

  step('ECG strip advances');
  await page.click(`#tiles .tile[data-patient-id="${own}"]`);
  await page.waitForSelector('#ecg');
  await page.waitForFunction(() => Number(document.querySelector('#ecg').dataset.samplesDrawn || 0) > 250, null, { timeout: 10000 });
  const a = Number(await page.getAttribute('#ecg', 'data-samples-drawn'));
  await page.waitForTimeout(1000);
  const b = Number(await page.getAttribute('#ecg', 'data-samples-drawn'));
  console.log(`ecg samples drawn in ~1 s: ${b - a}`);
  assert.ok(b - a > 150 && b - a < 400, `about 250 samples per second, got ${b - a}`);
  await page.waitForFunction(() => /HR \d+/.test(document.querySelector('#ecg-hr').textContent), null, { timeout: 5000 });
  await page.waitForSelector('.charts .uplot', { timeout: 10000 });
  // The patient's alert limits: every overridable rule listed; only doctors get the form.
  await page.waitForSelector('#rule-limits tr[data-rule-id="spo2_low"]');
  assert.ok(!(await page.$('#rule-limits form')), 'a nurse reads the limits but cannot change them');
  await shot(page, '03-patient');

  step('deterioration raises a high alert, acknowledged');
  await page.waitForSelector('#banner:not([hidden])', { timeout: 30000 });
  await shot(page, '04-banner');
  await page.goto(`${base}/#/alerts`);
  const card = page.locator('#alert-list .alert-card.prio-high:not(.state-resolved):not(.state-acknowledged)').first();
  await card.waitFor({ timeout: 10000 });
  const alertId = await card.getAttribute('data-alert-id');
  // Worded in Japanese with clinical units, not the engine's rule keys and UCUM codes.
  const japanese = /[\u3040-\u30ff\u4e00-\u9fff]/;
  assert.match(await card.locator('.alert-title').textContent(), japanese);
  assert.doesNotMatch(await card.locator('.message').textContent(), /mm\[Hg\]|Cel\b|_/);
  await card.locator('input.note').fill('電話で状態確認、訪問します');
  await card.locator('button.act-acknowledge').click();
  await page.waitForSelector(`#alert-list .alert-card[data-alert-id="${alertId}"].state-acknowledged`, { timeout: 5000 });
  await shot(page, '05-alerts');

  step('handover one click away');
  const handoverHref = await page.getAttribute(`#alert-list .alert-card[data-alert-id="${alertId}"] a.handover-link`, 'href');
  assert.ok(handoverHref, 'handover link on the alert');
  const handover = await browser.newPage();
  await handover.goto(new URL(handoverHref, base).href);
  assert.match(await handover.content(), /佐藤 健一/); // the primary clinic's director
  assert.match(await handover.locator('.alert .title').textContent(), japanese);
  // Earlier alerts' outcomes are worded too, not the stored state names.
  assert.doesNotMatch(await handover.content(), /cleared_unacknowledged|>(raised|notified|acknowledged|escalated|resolved)</);
  await shot(handover, '06-handover');
  await handover.close();

  step('refused a patient of another team');
  await page.goto(`${base}/#/patient/${foreign}`);
  await page.waitForSelector('#refused', { timeout: 5000 });
  await shot(page, '07-refused');

  step('language switch');
  await page.goto(`${base}/#/ward`);
  await page.waitForSelector('#tiles .tile');
  await page.click('#lang');
  await page.waitForFunction(() => document.querySelector('#nav-ward').textContent === 'Ward');
  await page.waitForSelector('#tiles .tile');
  assert.equal(await page.getAttribute('html', 'lang'), 'en');
  await shot(page, '08-ward-en');

  step('phone width');
  await page.setViewportSize({ width: 390, height: 844 });
  await page.click('#lang');
  await page.waitForSelector('#tiles .tile');
  await shot(page, '09-ward-phone');
  await page.click(`#tiles .tile[data-patient-id="${own}"]`);
  await page.waitForSelector('#ecg');
  await page.waitForTimeout(1500);
  await shot(page, '10-patient-phone');

  assert.deepEqual(errors, [], 'no script errors');
  console.log('dashboard e2e: all steps passed');
} finally {
  await browser.close();
  rmSync(profile, { recursive: true, force: true });
}
