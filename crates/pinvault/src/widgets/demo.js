// The demo page: acts as a program's app, asking its "back end" (/demo/api,
// the dev program) for cards and control tokens, and mounting the widgets.
(() => {
  'use strict';
  const $ = (id) => document.getElementById(id);
  let card = null;
  let mounted = {};

  async function api(method, path, body) {
    const res = await fetch('/demo/api' + path, {
      method,
      headers: body ? { 'Content-Type': 'application/json' } : {},
      body: body ? JSON.stringify(body) : undefined,
    });
    const json = res.status === 204 ? null : await res.json();
    if (!res.ok) throw new Error((json && json.detail) || res.statusText);
    return json;
  }

  function log(list, text) {
    const li = document.createElement('li');
    li.textContent = text;
    $(list).appendChild(li);
  }

  function mount(widget, where, token) {
    if (mounted[widget]) mounted[widget].unmount();
    mounted[widget] = Pinvault.mount($(where), {
      widget,
      token,
      onEvent: (e) => {
        if (e.event !== 'resize') log('messages', `${e.widget}: ${e.event} (status ${e.status})`);
      },
    });
  }

  $('create-card').addEventListener('click', async () => {
    try {
      card = await api('POST', '/cards');
      $('card').textContent = `Card ${card.id} (…${card.last4}). Its first PIN is 0000 (a test-mode program).`;
      $('card').setAttribute('data-card-id', card.id);
      for (const id of ['open-set', 'open-reveal', 'verify-pin', 'verify']) $(id).disabled = false;
      $('events').replaceChildren();
    } catch (e) {
      $('card').textContent = 'Could not create a card: ' + e.message;
    }
  });

  for (const [button, type, widget, where] of [
    ['open-set', 'set_pin', 'pin-set', 'set-widget'],
    ['open-reveal', 'reveal_pin', 'pin-reveal', 'reveal-widget'],
  ]) {
    $(button).addEventListener('click', async () => {
      try {
        const t = await api('POST', `/cards/${card.id}/control-tokens`, { type });
        mount(widget, where, t.token);
      } catch (e) {
        log('messages', 'Could not get a token: ' + e.message);
      }
    });
  }

  $('verify-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      const r = await api('POST', `/cards/${card.id}/verify`, { pin: $('verify-pin').value });
      $('verify-result').textContent = `${r.result} (tries left: ${r.remaining_tries})`;
      $('verify-result').setAttribute('data-result', r.result);
    } catch (e) {
      $('verify-result').textContent = e.message;
      $('verify-result').removeAttribute('data-result');
    }
    $('verify-pin').value = '';
  });

  async function refreshEvents() {
    if (!card) return;
    try {
      const page = await api('GET', `/events?card_id=${encodeURIComponent(card.id)}&limit=50`);
      const items = page.data.slice().reverse().map((e) => {
        const li = document.createElement('li');
        li.textContent = `${e.created_at} ${e.type} ${JSON.stringify(e.data)}`;
        li.setAttribute('data-type', e.type);
        return li;
      });
      $('events').replaceChildren(...items);
    } catch (_) { /* try again on the next tick */ }
  }
  setInterval(refreshEvents, 1000);
})();
