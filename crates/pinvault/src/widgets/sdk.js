// pinvault browser SDK: frames a hosted widget and hands its events to the page.
//
//   <script src="https://pinvault.example/sdk/pinvault.js"></script>
//   const handle = Pinvault.mount(element, {
//     widget: 'pin-set',            // or 'pin-reveal'
//     token: 'pct_…',               // a control token from your back end
//     onEvent: (e) => {},           // {widget, status, event[, height]}
//     appearance: { colorAccent: '#0b5fff', radius: '8px' },
//   });
//   handle.unmount();
//
// The token goes to the widget in a form POSTed into the iframe, never in a
// URL. Messages are taken only from this script's own origin and only from the
// iframe this call made.
(function () {
  'use strict';
  if (window.Pinvault) return;
  var script = document.currentScript;
  if (!script || !script.src) throw new Error('pinvault.js must be loaded with a <script src> tag');
  var ORIGIN = new URL(script.src).origin;
  var WIDGETS = { 'pin-set': 'Set your PIN', 'pin-reveal': 'Your PIN' };
  var COLOR = /^#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$/;
  // appearance key → [form field, rule]; the server checks the same rules.
  var APPEARANCE = {
    fontFamily: ['font_family', /^[A-Za-z0-9 ,-]{1,100}$/],
    colorText: ['color_text', COLOR],
    colorBackground: ['color_background', COLOR],
    colorAccent: ['color_accent', COLOR],
    colorError: ['color_error', COLOR],
    radius: ['radius', /^[0-9]{1,2}px$/],
  };
  var count = 0;

  function mount(element, options) {
    options = options || {};
    if (!element || element.nodeType !== 1) throw new TypeError('Pinvault.mount: element must be a DOM element');
    if (!Object.prototype.hasOwnProperty.call(WIDGETS, options.widget)) {
      throw new TypeError('Pinvault.mount: widget must be "pin-set" or "pin-reveal"');
    }
    if (typeof options.token !== 'string' || !/^pct_[A-Za-z0-9_-]{1,196}$/.test(options.token)) {
      throw new TypeError('Pinvault.mount: token must be a control token (pct_…)');
    }
    var fields = { controlId: options.token, parent_origin: window.location.origin };
    var appearance = options.appearance || {};
    Object.keys(appearance).forEach(function (key) {
      var rule = APPEARANCE[key];
      if (!rule) throw new TypeError('Pinvault.mount: unknown appearance key "' + key + '"');
      var value = appearance[key];
      if (typeof value !== 'string' || !rule[1].test(value)) {
        throw new TypeError('Pinvault.mount: appearance.' + key + ' is not an allowed value');
      }
      fields[rule[0]] = value;
    });

    var name = 'pinvault-' + options.widget + '-' + Date.now().toString(36) + '-' + (count++);
    var iframe = document.createElement('iframe');
    iframe.name = name;
    iframe.title = options.title || WIDGETS[options.widget];
    iframe.referrerPolicy = 'no-referrer';
    iframe.setAttribute('data-pinvault-frame', options.widget);
    iframe.style.border = '0';
    iframe.style.width = '100%';
    iframe.style.height = '360px';
    iframe.style.display = 'block';
    element.appendChild(iframe);

    function onMessage(ev) {
      // Only this server's widget, only in the frame this call made.
      if (ev.origin !== ORIGIN || ev.source !== iframe.contentWindow) return;
      var d = ev.data;
      if (!d || typeof d !== 'object' || d.source !== 'pinvault' || d.widget !== options.widget) return;
      if (d.event === 'resize' && typeof d.height === 'number' && isFinite(d.height)) {
        iframe.style.height = Math.min(Math.max(Math.ceil(d.height), 80), 2000) + 'px';
      }
      if (typeof options.onEvent === 'function') {
        var event = { widget: d.widget, status: d.status, event: d.event };
        if (d.event === 'resize') event.height = d.height;
        try {
          options.onEvent(event);
        } catch (e) {
          setTimeout(function () { throw e; });
        }
      }
    }
    window.addEventListener('message', onMessage);

    var form = document.createElement('form');
    form.method = 'POST';
    form.action = ORIGIN + '/widgets/' + options.widget;
    form.target = name;
    form.style.display = 'none';
    Object.keys(fields).forEach(function (key) {
      var input = document.createElement('input');
      input.type = 'hidden';
      input.name = key;
      input.value = fields[key];
      form.appendChild(input);
    });
    element.appendChild(form);
    form.submit();
    element.removeChild(form);

    return {
      iframe: iframe,
      unmount: function () {
        window.removeEventListener('message', onMessage);
        if (iframe.parentNode) iframe.parentNode.removeChild(iframe);
      },
    };
  }

  window.Pinvault = Object.freeze({ mount: mount, origin: ORIGIN });
})();
