// The demo page: acts as a program's app, asking its "back end" (/demo/api,
// the dev program) for cards and control tokens, and mounting the widgets.
// After every step it reads the card again and shows its PIN's status.
(() => {
  'use strict';
  const $ = (id) => document.getElementById(id);
  let card = null;
  const mounted = {};

  // The widgets' status codes (docs/reference.md, "Hosted widgets").
  const STATUS = {
    0: 'success',
    '-10': 'token invalid, expired or used',
    '-11': 'token superseded',
    '-12': 'token attempts used up',
    '-20': 'weak PIN',
    '-21': 'PIN and confirmation differ',
    '-22': 'malformed PIN',
    '-30': 'reveal disabled',
    '-999': 'system error',
  };
  const statusName = (code) => (code === null || code === undefined
    ? 'no status yet'
    : `status ${code}, ${STATUS[String(code)] || 'unknown'}`);

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

  /** The card line and its PIN's status, from the card as the API returns it. */
  function showCard(c, seq) {
    const pin = c.pin;
    $('card').textContent = `Card ${c.id} (…${c.last4}, expires ${c.expiry}).`;
    $('card').setAttribute('data-card-id', c.id);
    $('card-state').textContent = c.status === 'inactive' && pin.status === 'blocked'
      ? 'inactive (blocking the PIN made it so; unblocking makes it active again)'
      : c.status;
    const state = $('pin-state');
    state.textContent = pin.status === 'blocked'
      ? `blocked (${pin.fail_count} wrong tries in a row)`
      : pin.fail_count ? `unblocked (${pin.fail_count} wrong so far)` : 'unblocked';
    state.setAttribute('data-status', pin.status);
    $('pin-tries').textContent = String(pin.remaining_tries);
    $('pin-tries').setAttribute('data-remaining-tries', String(pin.remaining_tries));
    const origin = {
      random: 'the first one the card was given: 0000 (every card of a test-mode program starts with it)',
      cardholder: 'chosen by the cardholder in the set widget (never shown to this page)',
      issuer: 'set by the program (preset)',
    }[pin.set_by] || pin.set_by;
    $('pin-origin').textContent = pin.staged ? `${origin}; a staged PIN awaits its commit` : origin;
    $('pin-origin').setAttribute('data-set-by', pin.set_by);
    $('pin-status').hidden = false;
    $('unblock').disabled = pin.status !== 'blocked';
    // Under each step just taken: the PIN's status as that step left it (read after it).
    const after = `After this step: PIN ${pin.status}, ${pin.remaining_tries} tries left, set by ${pin.set_by}`
      + (pin.staged ? ', a staged PIN awaits its commit.' : '.');
    for (const el of document.querySelectorAll('.demo-now[data-step-taken]')) {
      if (seq === undefined || Number(el.getAttribute('data-step-taken')) > seq) continue;
      el.textContent = after;
      el.hidden = false;
      el.removeAttribute('data-step-taken');
    }
  }

  // Steps taken, in order: a card read started after a step shows what the step did.
  let steps = 0;
  /** The step of `element` was just taken: the next card read shows the PIN's status under it. */
  function taken(element) {
    const now = element.closest('section').querySelector('.demo-now');
    if (now) now.setAttribute('data-step-taken', String(++steps));
  }

  async function refreshCard() {
    if (!card) return;
    const seq = steps;
    try {
      showCard(await api('GET', `/cards/${card.id}`), seq);
    } catch (_) { /* try again on the next step or tick */ }
  }

  function mount(widget, where, token) {
    if (mounted[widget]) mounted[widget].unmount();
    mounted[widget] = Pinvault.mount($(where), {
      widget,
      token,
      onEvent: (e) => {
        if (e.event === 'resize') return;
        log('messages', `${e.widget}: ${e.event} (${statusName(e.status)})`);
        if (e.event !== 'ready') {
          taken($(where));
          refreshCard();
        }
      },
    });
  }

  $('create-card').addEventListener('click', async () => {
    try {
      card = await api('POST', '/cards');
      for (const el of document.querySelectorAll('.demo-now')) {
        el.removeAttribute('data-step-taken');
        el.hidden = true;
      }
      taken($('create-card'));
      showCard(card, steps);
      for (const id of ['open-set', 'open-reveal', 'verify-pin', 'verify']) $(id).disabled = false;
      $('events').replaceChildren();
      $('messages').replaceChildren();
      $('verify-result').textContent = '';
      $('unblock-result').textContent = '';
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

  function result(id, text, ok, value) {
    const el = $(id);
    el.textContent = text;
    el.classList.toggle('pv-ok', ok === true);
    el.classList.toggle('pv-error', ok === false);
    if (value) el.setAttribute('data-result', value);
    else el.removeAttribute('data-result');
  }

  $('verify-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      const r = await api('POST', `/cards/${card.id}/verify`, { pin: $('verify-pin').value });
      result('verify-result', `${r.result} (tries left: ${r.remaining_tries})`, r.result === 'match', r.result);
    } catch (e) {
      result('verify-result', e.message, false, null);
    }
    $('verify-pin').value = '';
    taken($('verify'));
    await refreshCard();
  });

  $('unblock').addEventListener('click', async () => {
    try {
      await api('POST', `/cards/${card.id}/pin/unblock`);
      result('unblock-result', 'Unblocked: the tries are back, the PIN is the same.', true, 'unblocked');
    } catch (e) {
      result('unblock-result', 'Could not unblock: ' + e.message, false, null);
    }
    taken($('unblock'));
    await refreshCard();
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
  setInterval(() => { refreshEvents(); refreshCard(); }, 1000);
})();
