
(function () {
  'use strict';
  var REFRESH_MS = 5000;
  var SOON_DAYS = 14;
  var app = document.getElementById('app');
  var last = JSON.parse(document.getElementById('initial').textContent);
  var lastAt = new Date();

  // Builds an element; text always goes in as text, never as markup.
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) {
        if (attrs[k] !== null && attrs[k] !== undefined) { node.setAttribute(k, String(attrs[k])); }
      });
    }
    (children || []).forEach(function (c) {
      if (c === null || c === undefined) { return; }
      node.appendChild(typeof c === 'object' ? c : document.createTextNode(String(c)));
    });
    return node;
  }

  function duration(secs) {
    if (secs === null || secs === undefined) { return '\u2013'; }
    secs = Math.max(0, Math.floor(secs));
    if (secs < 60) { return secs + ' s'; }
    var m = Math.floor(secs / 60);
    if (m < 60) { return m + ' min'; }
    var h = Math.floor(m / 60);
    if (h < 24) { return h + ' h ' + (m % 60) + ' min'; }
    return Math.floor(h / 24) + ' d ' + (h % 24) + ' h';
  }

  function badge(text, kind) {
    return el('span', { 'class': 'badge ' + (kind || text) }, [text]);
  }

  function card(label, value, small, id) {
    return el('div', { 'class': 'card' }, [
      el('div', { 'class': 'label' }, [label]),
      el('div', { 'class': 'value', id: id }, [value, small ? el('small', null, [' ' + small]) : null])
    ]);
  }

  function expiry(f) {
    if (f.days_left === null || f.days_left === undefined) { return el('span', { 'class': 'muted' }, ['permanent']); }
    var cls = f.days_left <= 0 ? 'gone' : (f.days_left <= SOON_DAYS ? 'soon' : null);
    var left = f.days_left <= 0 ? 'expired' : f.days_left + (f.days_left === 1 ? ' day left' : ' days left');
    return el('span', { 'class': cls }, [f.expires + ' (' + left + ')']);
  }

  function seats(f) {
    if (f.count === null || f.count === undefined) {
      return [el('span', { 'class': 'in-use', 'data-feature': f.name, 'data-version': f.version }, [f.in_use]),
        el('span', { 'class': 'muted' }, [' in use, uncounted'])];
    }
    var pct = f.count > 0 ? Math.min(100, Math.round(100 * f.in_use / f.count)) : 100;
    var bar = el('span', { 'class': 'bar' + (pct >= 100 ? ' full' : (pct >= 80 ? ' high' : '')) },
      [el('span', { style: null }, [])]);
    bar.firstChild.style.width = pct + '%';
    return [bar,
      el('span', { 'class': 'in-use', 'data-feature': f.name, 'data-version': f.version }, [f.in_use]),
      ' / ',
      el('span', { 'class': 'count', 'data-feature': f.name, 'data-version': f.version }, [f.count])];
  }

  function featuresSection(s) {
    var rows = [];
    s.features.forEach(function (f) {
      rows.push(el('tr', { 'class': 'pool', 'data-feature': f.name, 'data-version': f.version }, [
        el('td', { 'class': 'name' }, [f.name]),
        el('td', null, [f.version]),
        el('td', null, seats(f)),
        el('td', { 'class': 'num queue', 'data-feature': f.name }, [f.queue]),
        el('td', null, [expiry(f)]),
        el('td', null, [f.share])
      ]));
      if (f.holders.length > 0) {
        var hrows = f.holders.map(function (h) {
          return el('tr', { 'class': 'holder', 'data-feature': f.name }, [
            el('td', { 'class': 'user' }, [h.user]),
            el('td', { 'class': 'host' }, [h.host]),
            el('td', { 'class': 'num' }, [h.count]),
            el('td', { 'class': 'num age', 'data-age': h.age_secs }, [duration(h.age_secs)]),
            h.roam
              ? el('td', { 'class': 'roam', 'data-hostid': h.roam.hostid }, ['roaming until ' + h.roam.until])
              : el('td', { 'class': 'num' }, [duration(h.returns_in_secs)])
          ]);
        });
        rows.push(el('tr', { 'class': 'holders' }, [el('td', { colspan: 6 }, [
          el('table', null, [
            el('thead', null, [el('tr', null, [el('th', null, ['User']), el('th', null, ['Host']),
              el('th', { 'class': 'num' }, ['Seats']), el('th', { 'class': 'num' }, ['Held for']),
              el('th', { 'class': 'num' }, ['Lease ends in'])])]),
            el('tbody', null, hrows)
          ])
        ])]));
      }
    });
    var body = s.features.length === 0
      ? el('div', { 'class': 'empty' }, ['No licence is served.'])
      : el('table', null, [
        el('thead', null, [el('tr', null, [el('th', null, ['Feature']), el('th', null, ['Version']),
          el('th', null, ['Seats in use']), el('th', { 'class': 'num' }, ['Queue']), el('th', null, ['Expires']),
          el('th', null, ['Sharing'])])]),
        el('tbody', null, rows)
      ]);
    return el('section', { id: 'features' }, [el('h2', null, ['Licences',
      el('span', { 'class': 'count' }, [s.features.length + (s.features.length === 1 ? ' pool' : ' pools')])]), body]);
  }

  function pairSection(s) {
    if ((!s.servers || s.servers.length === 0) && !s.witness) { return null; }
    var rows = (s.servers || []).map(function (v, i) {
      return el('tr', { 'class': 'server', 'data-role': v.role }, [
        el('td', { 'class': 'name' }, [v.addr, i === 0 ? el('span', { 'class': 'muted' }, [' (this server)']) : null]),
        el('td', null, [v.role]),
        el('td', { 'class': 'server-state' }, [badge(v.state)]),
        el('td', { 'class': 'num' }, [v.epoch]),
        el('td', { 'class': 'num' }, [i === 0 ? '\u2013' : (v.last_contact_ms === null || v.last_contact_ms === undefined
          ? 'never' : duration(v.last_contact_ms / 1000) + ' ago')]),
        el('td', { 'class': 'num lag' }, [v.lag === null || v.lag === undefined ? '\u2013' : v.lag + ' records'])
      ]);
    });
    if (s.witness) {
      var w = s.witness;
      rows.push(el('tr', { 'class': 'server witness' }, [
        el('td', { 'class': 'name' }, [w.addr]),
        el('td', null, ['witness']),
        el('td', null, [badge(w.state === 'reachable' ? 'reachable' : 'inaccessible',
          w.state === 'reachable' ? 'active' : 'inaccessible')]),
        el('td', { 'class': 'num' }, [w.epoch]),
        el('td', { 'class': 'num' }, [w.active ? 'records ' + w.active + ' active' : '\u2013']),
        el('td', { 'class': 'num' }, [w.stale_since === null || w.stale_since === undefined
          ? '\u2013' : 'standby stale since ' + w.stale_since])
      ]));
    }
    return el('section', { id: 'pair' }, [el('h2', null, ['Failover']), el('table', null, [
      el('thead', null, [el('tr', null, [el('th', null, ['Server']), el('th', null, ['Role']), el('th', null, ['State']),
        el('th', { 'class': 'num' }, ['Epoch']), el('th', { 'class': 'num' }, ['Last contact']),
        el('th', { 'class': 'num' }, ['Replication lag'])])]),
      el('tbody', null, rows)
    ])]);
  }

  function render(s, at, error) {
    var used = 0, total = 0, uncounted = false;
    s.features.forEach(function (f) {
      used += f.in_use;
      if (f.count === null || f.count === undefined) { uncounted = true; } else { total += f.count; }
    });
    var expiring = s.features.filter(function (f) {
      return f.days_left !== null && f.days_left !== undefined && f.days_left <= SOON_DAYS;
    });
    var header = el('header', null, [
      el('h1', null, [el('span', { 'class': 'product' }, ['floatd']), s.server || 'licence server']),
      el('span', { id: 'role', 'class': 'badge neutral' }, [s.role]),
      el('span', { id: 'state', 'class': 'badge ' + s.state }, [s.state]),
      el('span', { 'class': 'badge neutral' }, ['epoch ', el('span', { id: 'epoch' }, [s.epoch])]),
      el('span', { 'class': 'spacer' }),
      error ? badge('status unreachable: ' + error.message, 'error') : null,
      el('span', { 'class': 'updated', id: 'updated' }, ['Updated ' + at.toLocaleTimeString() +
        ' \u00b7 refreshes every ' + (REFRESH_MS / 1000) + ' s'])
    ]);
    var cards = el('div', { 'class': 'cards' }, [
      card('Seats in use', used, 'of ' + total + (uncounted ? ' + uncounted' : ''), 'seats-used'),
      card('Connections', s.connections, null, 'connections'),
      card('Uptime', duration(s.uptime_secs), null, 'uptime'),
      card('Lease', duration(s.lease_secs), null, 'lease'),
      card('Journal', s.seq, 'records', 'seq')
    ]);
    var alerts = s.alerts && s.alerts.length > 0 ? el('div', { 'class': 'alerts', id: 'alerts' }, [
      el('h2', null, ['Alerts']),
      el('ul', null, s.alerts.map(function (a) { return el('li', null, [a]); }))
    ]) : null;
    var soon = expiring.length > 0 ? el('div', { 'class': 'expiring', id: 'expiring' }, [
      el('h2', null, ['Licences expiring within ' + SOON_DAYS + ' days']),
      el('ul', null, expiring.map(function (f) {
        return el('li', null, [f.name + ' ' + f.version + ' (' + (f.count === null ? 'uncounted' : f.count + ' seats') +
          '): ', expiry(f)]);
      }))
    ]) : null;
    var main = el('main', null, [cards, alerts, soon, pairSection(s), featuresSection(s),
      el('footer', null, ['Read-only view. ', el('a', { href: '/status.json' }, ['status.json']),
        el('a', { href: '/metrics' }, ['metrics'])])]);
    app.replaceChildren(header, main);
    document.title = 'floatd ' + (s.server || '') + ' \u2013 ' + s.state;
  }

  function refresh() {
    fetch('/status.json', { cache: 'no-store' })
      .then(function (r) {
        if (!r.ok) { throw new Error('HTTP ' + r.status); }
        return r.json();
      })
      .then(function (s) { last = s; lastAt = new Date(); render(s, lastAt, null); })
      .catch(function (e) { render(last, lastAt, e); })
      .then(function () { setTimeout(refresh, REFRESH_MS); });
  }

  render(last, lastAt, null);
  setTimeout(refresh, REFRESH_MS);
})();
