// Live ECG strip on a canvas, drawn like a bedside monitor: paper speed 25 mm/s,
// gain 10 mm/mV, a 1 mm / 5 mm grid, a sweeping write head, R peaks marked with
// the RR interval and instantaneous heart rate.
//
// Frames arrive in bursts (0.25 s each over the network); they are played out at
// the sampling rate from a small buffer one frame behind real time, so the trace
// advances smoothly at 250 Hz instead of jumping. Beats arrive a few seconds after
// their samples (the server's rhythm analysis holds them back to judge them) and
// are marked where the trace was drawn, as long as it is still on the screen.

const MM_PER_S = 25;
const MM_PER_MV = 10;
const PLAYOUT_DELAY_S = 0.5;

export class EcgStrip {
  constructor(canvas, labels) {
    this.canvas = canvas;
    this.labels = labels;
    this.queue = [];          // {t (s, sender clock), uv, r (bool), rr (ms|null)}
    this.rate = 250;
    this.clockOffset = null;  // local performance time minus sender time, s
    this.x = 0;               // write head, px
    this.lastY = null;
    this.lastDrawT = null;
    this.samplesDrawn = 0;
    this.lastHr = null;
    // Where recent samples were drawn: time (s, sender clock), x and y (px), a ring.
    this.drawn = { t: new Float64Array(4096), x: new Float32Array(4096), y: new Float32Array(4096), n: 0 };
    this.resize();
    this.ro = new ResizeObserver(() => this.resize());
    this.ro.observe(canvas);
    this.frame = requestAnimationFrame((ts) => this.draw(ts));
  }

  resize() {
    const dpr = window.devicePixelRatio || 1;
    const w = this.canvas.clientWidth, h = this.canvas.clientHeight;
    this.canvas.width = Math.round(w * dpr);
    this.canvas.height = Math.round(h * dpr);
    this.dpr = dpr;
    // Nominal 96 dpi CSS millimetres, but never fewer than 3 mV of height on small screens.
    this.pxPerMm = Math.min(96 / 25.4, h / (3.2 * MM_PER_MV)) * dpr;
    this.x = 0;
    this.lastY = null;
    if (this.drawn) this.drawn.n = 0;
    this.drawGrid(0, this.canvas.width);
  }

  drawGrid(x0, x1) {
    const c = this.canvas.getContext('2d');
    const h = this.canvas.height, mm = this.pxPerMm;
    c.fillStyle = '#fff8f6';
    c.fillRect(x0, 0, x1 - x0, h);
    for (let i = Math.floor(x0 / mm); i * mm <= x1; i++) {
      c.strokeStyle = i % 5 === 0 ? '#f0a8a0' : '#fbdcd8';
      c.lineWidth = i % 5 === 0 ? this.dpr : this.dpr * 0.5;
      c.beginPath(); c.moveTo(i * mm, 0); c.lineTo(i * mm, h); c.stroke();
    }
    for (let j = 0; j * mm <= h; j++) {
      c.strokeStyle = j % 5 === 0 ? '#f0a8a0' : '#fbdcd8';
      c.lineWidth = j % 5 === 0 ? this.dpr : this.dpr * 0.5;
      c.beginPath(); c.moveTo(x0, j * mm); c.lineTo(x1, j * mm); c.stroke();
    }
  }

  /** Adds one server frame: {start, sample_rate_hz, samples_uv, r_peaks, rr_ms}. */
  push(frame) {
    this.rate = frame.sample_rate_hz;
    const t0 = Date.parse(frame.start) / 1000;
    const rIndex = new Map(frame.r_peaks.map((i, k) => [i, frame.rr_ms[k] ?? null]));
    const now = performance.now() / 1000;
    if (this.clockOffset === null) this.clockOffset = now - t0 + PLAYOUT_DELAY_S;
    frame.samples_uv.forEach((uv, i) => {
      this.queue.push({ t: t0 + i / this.rate, uv, r: rIndex.has(i), rr: rIndex.get(i) ?? null });
    });
    // Far behind (tab was hidden): skip ahead rather than replay minutes of trace.
    if (this.queue.length > this.rate * 4) this.queue.splice(0, this.queue.length - this.rate);
  }

  draw() {
    this.frame = requestAnimationFrame(() => this.draw());
    if (this.clockOffset === null) return;
    const c = this.canvas.getContext('2d');
    const now = performance.now() / 1000 - this.clockOffset;
    const pxPerSample = (MM_PER_S * this.pxPerMm) / this.rate;
    const mid = this.canvas.height * 0.55;
    while (this.queue.length && this.queue[0].t <= now) {
      const s = this.queue.shift();
      const y = mid - (s.uv / 1000) * MM_PER_MV * this.pxPerMm;
      const x = this.x;
      // Erase a band ahead of the write head (sweep display).
      const eraseW = Math.ceil(pxPerSample) + 12 * this.dpr;
      this.drawGrid(x + 1, Math.min(this.canvas.width, x + eraseW));
      c.strokeStyle = '#0a3d2a';
      c.lineWidth = 1.6 * this.dpr;
      c.beginPath();
      c.moveTo(x - pxPerSample, this.lastY ?? y);
      c.lineTo(x, y);
      c.stroke();
      if (s.r) this.markR(c, x, y, s.rr);
      const d = this.drawn, k = d.n % d.t.length;
      d.t[k] = s.t; d.x[k] = x; d.y[k] = y; d.n += 1;
      this.lastY = y;
      this.x += pxPerSample;
      this.samplesDrawn += 1;
      if (this.x >= this.canvas.width) { this.x = 0; this.lastY = null; }
    }
    this.canvas.dataset.samplesDrawn = String(this.samplesDrawn);
  }

  /** Marks a beat reported after its samples: {at, rr_ms}. */
  markBeat(beat) {
    const t = Date.parse(beat.at) / 1000;
    const waiting = this.queue.find((s) => Math.abs(s.t - t) < 0.5 / this.rate);
    if (waiting) { waiting.r = true; waiting.rr = beat.rr_ms ?? null; return; }
    // Already drawn: find the sample in the ring, newest first, unless the sweep overwrote it.
    const d = this.drawn, size = d.t.length;
    const oldest = Math.max(0, d.n - Math.min(size, Math.floor(this.canvas.width / ((MM_PER_S * this.pxPerMm) / this.rate))));
    for (let i = d.n - 1; i >= oldest; i--) {
      const k = i % size;
      if (Math.abs(d.t[k] - t) < 0.5 / this.rate) {
        this.markR(this.canvas.getContext('2d'), d.x[k], d.y[k], beat.rr_ms ?? null);
        return;
      }
      if (d.t[k] < t) return;
    }
  }

  markR(c, x, y, rr) {
    c.fillStyle = '#c2185b';
    c.beginPath();
    c.moveTo(x, y - 6 * this.dpr); c.lineTo(x - 4 * this.dpr, y - 13 * this.dpr); c.lineTo(x + 4 * this.dpr, y - 13 * this.dpr);
    c.fill();
    if (rr) {
      const hr = Math.round(60000 / rr);
      this.lastHr = hr;
      // Left of the head: the band ahead of it is erased as the sweep advances.
      c.font = `${10 * this.dpr}px system-ui, sans-serif`;
      c.textAlign = 'right';
      c.fillText(`${rr}`, x - 3 * this.dpr, 12 * this.dpr);
      this.labels?.(rr, hr);
    }
  }

  destroy() { cancelAnimationFrame(this.frame); this.ro.disconnect(); }
}
