// creditlink widget login, last step. Runs in the login popup on creditlink's origin: hands the widget
// session to the bank page that opened the popup, addressed to exactly the origin the login was started for
// (postMessage's targetOrigin: a page of any other origin receives nothing).
'use strict';
(() => {
  const el = document.getElementById('handoff');
  if (!el) return;
  const d = el.dataset;
  if (!window.opener) {
    el.textContent = 'Signed in, but the page that asked for it is gone. Close this window and click the button again.';
    return;
  }
  window.opener.postMessage(
    { type: 'creditlink-widget-login', token: d.token, csrf: d.csrf, user: d.user, bank: d.bank },
    d.origin,
  );
  // The widget closes this window once it has the message; should it not (another page opened this
  // login, which receives nothing), close anyway.
  setTimeout(() => window.close(), 5000);
})();
