// REST and WebSocket access. Errors carry the server's stable code.

export class ApiError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

export async function api(path, { method = 'GET', body } = {}) {
  const res = await fetch(`/api/v1${path}`, {
    method,
    headers: body ? { 'content-type': 'application/json' } : {},
    body: body ? JSON.stringify(body) : undefined,
    credentials: 'same-origin',
  });
  if (res.status === 204) return null;
  const json = await res.json().catch(() => ({}));
  if (!res.ok) throw new ApiError(res.status, json.error?.code ?? 'http_' + res.status, json.error?.message ?? res.statusText);
  return json;
}

/**
 * The live feed: one WebSocket, re-opened with backoff, re-subscribing what the
 * page wants. Listeners get every server message.
 */
export class LiveFeed {
  constructor(onMessage, onStatus) {
    this.onMessage = onMessage;
    this.onStatus = onStatus;
    this.patients = new Set();
    this.alerts = false;
    this.backoff = 500;
    this.lastHeard = 0;
    this.open();
    this.watchdog = setInterval(() => {
      // The server sends a heartbeat every 15 s; 45 s of silence means a dead link.
      if (this.ws?.readyState === WebSocket.OPEN && Date.now() - this.lastHeard > 45000) this.ws.close();
    }, 5000);
  }
  open() {
    const proto = location.protocol === 'https:' ? 'wss' : 'ws';
    this.ws = new WebSocket(`${proto}://${location.host}/ws`);
    this.ws.onopen = () => {
      this.backoff = 500;
      this.lastHeard = Date.now();
      this.onStatus(true);
      if (this.alerts) this.send({ op: 'subscribe_alerts' });
      for (const id of this.patients) this.send({ op: 'subscribe', patient_id: id });
    };
    this.ws.onmessage = (ev) => {
      this.lastHeard = Date.now();
      try { this.onMessage(JSON.parse(ev.data)); } catch (e) { console.error(e); }
    };
    this.ws.onclose = () => {
      this.onStatus(false);
      if (this.closed) return;
      setTimeout(() => this.open(), this.backoff);
      this.backoff = Math.min(this.backoff * 2, 10000);
    };
  }
  send(msg) { if (this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(msg)); }
  subscribeAlerts() { this.alerts = true; this.send({ op: 'subscribe_alerts' }); }
  subscribe(id) { this.patients.add(id); this.send({ op: 'subscribe', patient_id: id }); }
  unsubscribe(id) { this.patients.delete(id); this.send({ op: 'unsubscribe', patient_id: id }); }
  close() { this.closed = true; clearInterval(this.watchdog); this.ws.close(); }
}
