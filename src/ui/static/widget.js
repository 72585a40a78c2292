// creditlink's report-request widget: <creditlink-report-request request='{...}'> in a member bank's own page.
//
// One click: if not logged in yet, a popup logs the bank representative in at the bureau's Salesforce
// (creditlink runs the authorization code + PKCE flow; the Salesforce token stays on creditlink's side) and
// hands back a widget session bound to this page's origin; then the request body (the bank's own mapping's
// shape, in the `request` attribute or property) is posted through creditlink, which validates it with the
// bank's mapping, and the request's status is shown until it settles.
//
// The session lives in this element's memory only (never localStorage or a cookie); every call carries it
// as `Authorization: Bearer` plus its CSRF token, without cookies. Text from the server is only ever set as
// textContent. Events: `creditlink-status` (detail: the status document) on every status change.
'use strict';
(() => {
  const script = document.currentScript;
  const BASE = new URL(script ? script.src : location.href).origin;
  const TERMINAL = new Set(['completed', 'rejected', 'failed', 'action_required']);
  const POLL_MS = 2000;
  const POLL_FOR_MS = 10 * 60 * 1000;
  const LOGIN_FOR_MS = 10 * 60 * 1000;

  const CSS = `
    :host { display: inline-block; font: 14px/1.4 system-ui, sans-serif; color: #1d2733; }
    button { padding: .4rem .9rem; border: 1px solid #0b3b60; border-radius: 4px; background: #0b3b60;
      color: #fff; font: inherit; cursor: pointer; }
    button[disabled] { opacity: .6; cursor: default; }
    .status { margin-top: .4rem; }
    .status.completed { color: #2e7d4f; } .status.failed, .status.rejected, .status.error { color: #a02020; }
    ul { margin: .3rem 0 0 1.1rem; padding: 0; color: #a02020; }
    .who { color: #5b6875; font-size: 12px; }`;

  class CreditlinkReportRequest extends HTMLElement {
    #session = null; // { token, csrf, user, bank }: in memory only
    #request = null;
    #busy = false;
    #ui = {};

    constructor() {
      super();
      const root = this.attachShadow({ mode: 'open' });
      try {
        const sheet = new CSSStyleSheet();
        sheet.replaceSync(CSS);
        root.adoptedStyleSheets = [sheet];
      } catch { /* an old browser: unstyled but working */ }
      const button = document.createElement('button');
      button.type = 'button';
      button.part = 'button';
      const status = document.createElement('div');
      status.className = 'status';
      status.setAttribute('role', 'status');
      status.setAttribute('aria-live', 'polite');
      const problems = document.createElement('ul');
      const who = document.createElement('div');
      who.className = 'who';
      root.append(button, status, problems, who);
      this.#ui = { button, status, problems, who };
      button.addEventListener('click', () => this.#click());
    }

    static get observedAttributes() { return ['label']; }

    connectedCallback() { this.#render(); }
    attributeChangedCallback() { this.#render(); }

    /** The request body (an object in the bank's mapping shape); defaults to the `request` attribute's JSON. */
    get request() {
      if (this.#request) return this.#request;
      const text = this.getAttribute('request');
      return text ? JSON.parse(text) : null;
    }
    set request(value) { this.#request = value; }

    /** Ends the widget session at creditlink (and the Salesforce token behind it). */
    async logout() {
      const s = this.#session;
      this.#session = null;
      this.#render();
      if (s) await this.#call('POST', '/ui/widget/api/logout', s, null).catch(() => {});
    }

    #render() {
      const { button, who } = this.#ui;
      button.textContent = this.getAttribute('label') || 'Request credit report';
      button.disabled = this.#busy;
      who.textContent = this.#session ? `${this.#session.user} · ${this.#session.bank}` : '';
    }

    #show(text, kind, problems = []) {
      const { status, problems: list } = this.#ui;
      status.textContent = text;
      status.className = `status ${kind || ''}`;
      list.replaceChildren(...problems.map((p) => {
        const li = document.createElement('li');
        li.textContent = p.field ? `${p.field}: ${p.detail}` : p.detail;
        return li;
      }));
    }

    async #click() {
      if (this.#busy) return;
      let body;
      try {
        body = this.request;
      } catch {
        this.#show('The page gave the widget a request that is not JSON.', 'error');
        return;
      }
      if (!body) {
        this.#show('The page gave the widget no request.', 'error');
        return;
      }
      this.#busy = true;
      this.#render();
      try {
        // The popup must open inside the click (popup blockers), before anything is awaited.
        const login = this.#session ? null : this.#login();
        if (login) {
          this.#show('Log in at the bureau in the window that opened…', 'pending');
          this.#session = await login;
          this.#render();
        }
        await this.#submit(body);
      } catch (e) {
        this.#show(e.message || String(e), 'error', e.problems || []);
      } finally {
        this.#busy = false;
        this.#render();
      }
    }

    #login() {
      const url = `${BASE}/ui/widget/login?origin=${encodeURIComponent(location.origin)}`;
      const popup = window.open(url, 'creditlink-login', 'popup,width=520,height=680');
      if (!popup) return Promise.reject(new Error('The browser blocked the login window; allow pop-ups for this page.'));
      return new Promise((resolve, reject) => {
        const started = Date.now();
        const done = (fn, value) => {
          window.removeEventListener('message', onMessage);
          clearInterval(timer);
          fn(value);
        };
        const onMessage = (event) => {
          // Only creditlink's popup, only its login message.
          if (event.origin !== BASE || event.source !== popup) return;
          const m = event.data;
          if (!m || m.type !== 'creditlink-widget-login' || !m.token || !m.csrf) return;
          popup.close();
          done(resolve, { token: m.token, csrf: m.csrf, user: m.user || '', bank: m.bank || '' });
        };
        let closedAt = 0;
        const timer = setInterval(() => {
          // A closed popup's last message may still be queued: give it a moment before giving up.
          if (popup.closed) closedAt = closedAt || Date.now();
          if (closedAt && Date.now() - closedAt > 1000) {
            done(reject, new Error('Not logged in: the login window was closed (or refused this page).'));
          } else if (Date.now() - started > LOGIN_FOR_MS) {
            popup.close();
            done(reject, new Error('The login took too long.'));
          }
        }, 250);
        window.addEventListener('message', onMessage);
      });
    }

    async #submit(body) {
      this.#show('Sending the request…', 'pending');
      const r = await this.#call('POST', '/ui/widget/api/report-requests', this.#session, body);
      if (r.status !== 201 && r.status !== 202) throw await this.#problem(r);
      let doc = await r.json();
      this.#status(doc);
      const until = Date.now() + POLL_FOR_MS;
      while (!TERMINAL.has(doc.status) && Date.now() < until) {
        await new Promise((ok) => setTimeout(ok, POLL_MS));
        const s = await this.#call('GET', `/ui/widget/api/report-requests/${encodeURIComponent(doc.id)}`, this.#session, null);
        if (!s.ok) throw await this.#problem(s);
        const next = await s.json();
        if (next.status !== doc.status) this.#status(next);
        doc = next;
      }
    }

    #status(doc) {
      const reason = doc.reason ? ` — ${doc.reason}` : '';
      this.#show(`Request ${doc.reference || doc.id}: ${doc.status}${reason}`, doc.status);
      this.dispatchEvent(new CustomEvent('creditlink-status', { detail: doc, bubbles: true, composed: true }));
    }

    #call(method, path, session, body) {
      const headers = { authorization: `Bearer ${session.token}`, 'x-csrf-token': session.csrf };
      if (body !== null) {
        headers['content-type'] = 'application/json';
        headers['idempotency-key'] = crypto.randomUUID();
      }
      return fetch(`${BASE}${path}`, {
        method, headers, mode: 'cors', credentials: 'omit', cache: 'no-store', referrerPolicy: 'no-referrer',
        body: body === null ? undefined : JSON.stringify(body),
      });
    }

    async #problem(r) {
      if (r.status === 401) this.#session = null; // expired or ended: the next click logs in again
      let p = {};
      try { p = await r.json(); } catch { /* not a problem document */ }
      const e = new Error(`${p.title || `HTTP ${r.status}`}${p.detail ? `: ${p.detail}` : ''}`);
      e.problems = Array.isArray(p.errors) ? p.errors : [];
      return e;
    }
  }

  if (!customElements.get('creditlink-report-request')) {
    customElements.define('creditlink-report-request', CreditlinkReportRequest);
  }
})();
