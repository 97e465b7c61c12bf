// pinvault's hosted widgets (set and reveal a PIN). WebCrypto only: the PIN is
// encrypted in this page before it leaves it (RSA-OAEP-256 + A256GCM to the
// published key), and a revealed PIN is decrypted here with a key pair made
// here whose private half cannot be exported (ECDH-ES + A256GCM).
(() => {
  'use strict';

  const root = document.querySelector('[data-pinvault="widget"]');
  if (!root) return;
  const widget = root.getAttribute('data-widget');
  const attr = (name) => root.getAttribute('data-' + name);
  const token = attr('token');
  const cardId = attr('card-id');
  const pinMin = Number(attr('pin-min')) || 4;
  const pinMax = Number(attr('pin-max')) || 12;
  const displayS = Number(attr('display-s')) || 60;
  const parentOrigin = attr('parent-origin');
  // The server's clock at render time, carried forward: the `iat` of an
  // encrypted PIN must not depend on the device's clock being right.
  const serverNow = Number(attr('now')) || 0;
  const loadedAt = performance.now();
  const statusEl = root.querySelector('[data-pinvault="status"]');

  // What the host may change, checked again here (the server checked it first).
  const APPEARANCE = {
    'font-family': /^[A-Za-z0-9 ,-]{1,100}$/,
    'color-text': /^#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$/,
    'color-background': /^#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$/,
    'color-accent': /^#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$/,
    'color-error': /^#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$/,
    radius: /^[0-9]{1,2}px$/,
  };
  for (const [name, rule] of Object.entries(APPEARANCE)) {
    const value = attr('appearance-' + name);
    // CSSOM, not a style attribute: the CSP allows no inline style.
    if (value && rule.test(value)) document.documentElement.style.setProperty('--pv-' + name, value);
  }

  // API.md "Hosted widgets": the codes, and the API error codes they stand for.
  const CODE_OF = {
    token_invalid: -10, token_expired: -10, token_used: -10,
    token_superseded: -11, token_exhausted: -12,
    weak_pin: -20, invalid_pin: -22, reveal_disabled: -30,
  };
  const MESSAGES = {
    '-1': 'This page needs a link from the app. Please start again from the app.',
    '-10': 'This link has expired or was already used. Please start again from the app.',
    '-11': 'A newer request replaced this one. Please use the latest one.',
    '-12': 'Too many attempts. Please start again from the app.',
    '-20': 'This PIN is too easy to guess. Please choose another one.',
    '-21': 'The two PINs are not the same. Please type it again.',
    '-22': `The PIN must be ${pinMin} to ${pinMax} digits.`,
    '-30': 'Showing the PIN is not available.',
    '-999': 'Something went wrong. Please try again later.',
  };
  // Codes after which this page can do nothing more.
  const FINAL = new Set([-1, -10, -11, -12, -30]);
  let current = null;

  function toHost(event, extra) {
    if (!parentOrigin) return;
    const target = window.parent !== window ? window.parent : window.opener;
    if (!target) return;
    const message = Object.assign({ source: 'pinvault', widget, status: current, event }, extra);
    // Only to the origin the server allowed (never "*"): the browser drops the
    // message if the host is anything else.
    try { target.postMessage(message, parentOrigin); } catch (_) { /* host gone */ }
  }

  function bridges(code) {
    try {
      if (window.Android && typeof window.Android.postMessage === 'function') window.Android.postMessage(code);
    } catch (_) { /* not our bridge */ }
    try {
      const ios = window.webkit && window.webkit.messageHandlers && window.webkit.messageHandlers.IOS;
      if (ios && typeof ios.postMessage === 'function') ios.postMessage(code);
    } catch (_) { /* not our bridge */ }
  }

  /** Shows `code` with its message and reports it to the app and the host. */
  function report(code, event, message) {
    current = code;
    statusEl.setAttribute('data-status', String(code));
    statusEl.classList.toggle('pv-error', code !== 0);
    statusEl.classList.toggle('pv-ok', code === 0);
    statusEl.textContent = message || MESSAGES[String(code)] || MESSAGES['-999'];
    bridges(code);
    toHost(event);
  }

  function say(text) {
    statusEl.classList.remove('pv-error', 'pv-ok');
    statusEl.textContent = text;
  }

  async function problemCode(res) {
    try {
      const body = await res.json();
      return CODE_OF[body && body.code] ?? -999;
    } catch (_) {
      return -999;
    }
  }

  // ---- bytes and base64url ----
  const enc = new TextEncoder();
  const dec = new TextDecoder();
  function b64u(bytes) {
    let s = '';
    for (let i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]);
    return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }
  function unb64u(text) {
    if (!/^[A-Za-z0-9_-]*$/.test(text)) throw new Error('not base64url');
    const s = atob(text.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((text.length + 3) % 4));
    const out = new Uint8Array(s.length);
    for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
    return out;
  }
  function concat(...parts) {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) { out.set(p, at); at += p.length; }
    return out;
  }
  function u32(n) {
    return new Uint8Array([(n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255]);
  }
  const withLength = (bytes) => concat(u32(bytes.length), bytes);
  const subtle = window.crypto && window.crypto.subtle;

  // ---- set ----
  /** A compact JWE (RSA-OAEP-256, A256GCM) of `{"pin","card_id","iat"}` to the newest published key. */
  async function encryptPin(pin) {
    const res = await fetch('/v1/pin-encryption-keys', { credentials: 'omit', cache: 'no-store' });
    if (!res.ok) throw new Error('no keys');
    const jwks = await res.json();
    const jwk = (jwks.keys || []).find((k) => k.kty === 'RSA' && k.alg === 'RSA-OAEP-256');
    if (!jwk) throw new Error('no RSA-OAEP-256 key');
    const rsa = await subtle.importKey('jwk', { kty: 'RSA', n: jwk.n, e: jwk.e, alg: 'RSA-OAEP-256', ext: true },
      { name: 'RSA-OAEP', hash: 'SHA-256' }, false, ['encrypt']);
    const cek = crypto.getRandomValues(new Uint8Array(32));
    const iv = crypto.getRandomValues(new Uint8Array(12));
    const iat = serverNow + Math.floor((performance.now() - loadedAt) / 1000);
    const plain = enc.encode(JSON.stringify(cardId ? { pin, card_id: cardId, iat } : { pin, iat }));
    try {
      const header = b64u(enc.encode(JSON.stringify({ alg: 'RSA-OAEP-256', enc: 'A256GCM', kid: jwk.kid })));
      const ek = new Uint8Array(await subtle.encrypt({ name: 'RSA-OAEP' }, rsa, cek));
      const aes = await subtle.importKey('raw', cek, { name: 'AES-GCM' }, false, ['encrypt']);
      const sealed = new Uint8Array(await subtle.encrypt(
        { name: 'AES-GCM', iv, additionalData: enc.encode(header), tagLength: 128 }, aes, plain));
      const ct = sealed.subarray(0, sealed.length - 16);
      const tag = sealed.subarray(sealed.length - 16);
      return [header, b64u(ek), b64u(iv), b64u(ct), b64u(tag)].join('.');
    } finally {
      cek.fill(0);
      plain.fill(0);
    }
  }

  function setWidget() {
    const form = root.querySelector('[data-pinvault="form"]');
    const pinInput = form.querySelector('input[name="pin"]');
    const confirmation = form.querySelector('input[name="pin_confirmation"]');
    const submit = form.querySelector('button[type="submit"]');
    const showDigits = form.querySelector('[data-pinvault="show-digits"]');
    let busy = false;
    const close = () => {
      for (const el of form.elements) el.disabled = true;
      pinInput.value = '';
      confirmation.value = '';
    };
    showDigits.addEventListener('change', () => {
      const type = showDigits.checked ? 'text' : 'password';
      pinInput.type = type;
      confirmation.type = type;
    });
    for (const input of [pinInput, confirmation]) {
      input.addEventListener('input', () => input.removeAttribute('aria-invalid'));
    }
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      if (busy || !token) return;
      const pin = pinInput.value;
      if (!/^[0-9]+$/.test(pin) || pin.length < pinMin || pin.length > pinMax) {
        pinInput.setAttribute('aria-invalid', 'true');
        report(-22, 'error');
        pinInput.focus();
        return;
      }
      if (pin !== confirmation.value) {
        confirmation.setAttribute('aria-invalid', 'true');
        confirmation.value = '';
        report(-21, 'error');
        confirmation.focus();
        return;
      }
      busy = true;
      submit.disabled = true;
      say('Setting your PIN…');
      let code;
      let event = 'error';
      try {
        const jwe = await encryptPin(pin);
        pinInput.value = '';
        confirmation.value = '';
        const res = await fetch('/widgets/api/pin-set', {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify({ control_token: token, encrypted_pin: jwe }),
          credentials: 'omit',
          cache: 'no-store',
        });
        if (res.status === 204) {
          code = 0;
          event = 'pin_set';
        } else if (res.status === 202) {
          code = 0;
          event = 'pin_staged';
        } else {
          code = await problemCode(res);
        }
      } catch (_) {
        code = -999;
      }
      busy = false;
      submit.disabled = false;
      if (code === 0) {
        close();
        report(0, event, event === 'pin_staged'
          ? 'Your new PIN is saved. It will work once your card provider confirms it.'
          : 'Your PIN is set.');
      } else {
        report(code, 'error');
        if (FINAL.has(code)) {
          close();
        } else {
          pinInput.value = '';
          confirmation.value = '';
          pinInput.focus();
        }
      }
    });
  }

  // ---- reveal ----
  /** Decrypts a compact JWE (ECDH-ES, A256GCM) with the page's private key (RFC 7518 §4.6). */
  async function decryptJwe(jwe, privateKey) {
    const parts = jwe.split('.');
    if (parts.length !== 5 || parts[1] !== '') throw new Error('not an ECDH-ES JWE');
    const header = JSON.parse(dec.decode(unb64u(parts[0])));
    const epk = header.epk || {};
    if (header.alg !== 'ECDH-ES' || header.enc !== 'A256GCM' || epk.kty !== 'EC' || epk.crv !== 'P-256') {
      throw new Error('unexpected JWE header');
    }
    const ephemeral = await subtle.importKey('jwk', { kty: 'EC', crv: 'P-256', x: epk.x, y: epk.y, ext: true },
      { name: 'ECDH', namedCurve: 'P-256' }, false, []);
    const z = new Uint8Array(await subtle.deriveBits({ name: 'ECDH', public: ephemeral }, privateKey, 256));
    // Concat KDF, one round of SHA-256: counter, Z, AlgorithmID, PartyUInfo,
    // PartyVInfo, SuppPubInfo (the key length in bits).
    const info = concat(u32(1), z, withLength(enc.encode('A256GCM')),
      withLength(header.apu ? unb64u(header.apu) : new Uint8Array(0)),
      withLength(header.apv ? unb64u(header.apv) : new Uint8Array(0)), u32(256));
    const cek = new Uint8Array(await subtle.digest('SHA-256', info));
    z.fill(0);
    info.fill(0);
    const key = await subtle.importKey('raw', cek, { name: 'AES-GCM' }, false, ['decrypt']);
    cek.fill(0);
    const plain = await subtle.decrypt(
      { name: 'AES-GCM', iv: unb64u(parts[2]), additionalData: enc.encode(parts[0]), tagLength: 128 },
      key, concat(unb64u(parts[3]), unb64u(parts[4])));
    return new Uint8Array(plain);
  }

  function revealWidget() {
    const box = root.querySelector('[data-pinvault="pin-box"]');
    const countdown = root.querySelector('[data-pinvault="countdown"]');
    const hideButton = root.querySelector('[data-pinvault="hide"]');
    let timer = null;

    function hide() {
      if (timer === null) return;
      clearInterval(timer);
      timer = null;
      // Out of the DOM; the text nodes were the only place the PIN was kept.
      box.replaceChildren();
      countdown.textContent = '';
      hideButton.hidden = true;
      say('Your PIN is hidden again.');
      toHost('pin_hidden');
    }

    function show(pin) {
      const digits = document.createElement('span');
      digits.className = 'pv-pin';
      digits.setAttribute('data-pinvault', 'pin');
      digits.setAttribute('aria-hidden', 'true');
      digits.textContent = pin;
      // Screen readers read the digits one by one, not as a number.
      const spoken = document.createElement('span');
      spoken.className = 'pv-sr-only';
      spoken.textContent = 'Your PIN is ' + pin.split('').join(' ');
      box.replaceChildren(digits, spoken);
      const end = performance.now() + displayS * 1000;
      const tick = () => {
        const left = Math.ceil((end - performance.now()) / 1000);
        if (left <= 0) {
          hide();
          return;
        }
        countdown.textContent = `Hidden in ${left} s`;
      };
      timer = setInterval(tick, 250);
      tick();
      hideButton.hidden = false;
      report(0, 'pin_revealed', 'Here is your PIN. Make sure nobody is watching.');
    }

    hideButton.addEventListener('click', hide);
    // Hide as soon as the page is put away.
    document.addEventListener('visibilitychange', () => { if (document.hidden) hide(); });
    window.addEventListener('pagehide', hide);

    (async () => {
      say('Getting your PIN…');
      let code = -999;
      try {
        // The private key cannot be exported: it never leaves WebCrypto.
        const pair = await subtle.generateKey({ name: 'ECDH', namedCurve: 'P-256' }, false, ['deriveBits']);
        const pub = await subtle.exportKey('jwk', pair.publicKey);
        const res = await fetch('/widgets/api/pin-reveal', {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify({
            control_token: token,
            device_key: { kty: 'EC', crv: 'P-256', x: pub.x, y: pub.y },
          }),
          credentials: 'omit',
          cache: 'no-store',
        });
        if (!res.ok) {
          code = await problemCode(res);
        } else {
          const body = await res.json();
          const plain = await decryptJwe(body.encrypted_pin, pair.privateKey);
          let message = JSON.parse(dec.decode(plain));
          plain.fill(0);
          if (message && typeof message.pin === 'string' && /^[0-9]{4,12}$/.test(message.pin)
            && (!cardId || message.card_id === cardId)) {
            show(message.pin);
            message = null;
            return;
          }
          message = null;
        }
      } catch (_) {
        code = -999;
      }
      report(code, 'error');
    })();
  }

  toHost('ready');
  const initial = attr('initial-status');
  if (initial !== null) {
    // The server found at once that the token cannot be used.
    const form = root.querySelector('[data-pinvault="form"]');
    if (form) for (const el of form.elements) el.disabled = true;
    report(Number(initial), 'error');
  } else if (!subtle) {
    report(-999, 'error', 'This browser cannot protect your PIN here (no WebCrypto).');
  } else if (widget === 'pin-set') {
    setWidget();
  } else if (widget === 'pin-reveal') {
    revealWidget();
  }

  // Tell the host our height, so the SDK can size its frame.
  let lastHeight = 0;
  const sendHeight = () => {
    const height = Math.ceil(document.documentElement.scrollHeight);
    if (height !== lastHeight) {
      lastHeight = height;
      toHost('resize', { height });
    }
  };
  sendHeight();
  if (window.ResizeObserver) new ResizeObserver(sendHeight).observe(document.body);
})();
