
(function () {
  'use strict';
  var REFRESH_MS = 5000;
  var HISTORY_MS = 60000;
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
            el('td', { 'class': 'seat' }, [h.seat]),
            el('td', { 'class': 'user' }, [h.user]),
            el('td', { 'class': 'host' }, [h.host]),
            el('td', { 'class': 'num' }, [h.count]),
            el('td', { 'class': 'num age', 'data-age': h.age_secs }, [duration(h.age_secs)]),
            h.roam
              ? el('td', { 'class': 'roam', 'data-hostid': h.roam.hostid }, ['roaming until ' + h.roam.until])
              : el('td', { 'class': 'num' }, [duration(h.returns_in_secs)])
          ]);
        });
        if (f.more_holders > 0) {
          hrows.push(el('tr', { 'class': 'more', 'data-feature': f.name }, [
            el('td', { colspan: 6, 'class': 'muted' }, ['\u2026 and ' + f.more_holders + ' more'])
          ]));
        }
        rows.push(el('tr', { 'class': 'holders' }, [el('td', { colspan: 6 }, [
          el('table', null, [
            el('thead', null, [el('tr', null, [el('th', null, ['Seat']), el('th', null, ['User']), el('th', null, ['Host']),
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

  // ----- usage chart: seats in use per feature, 24 h and 7 d -----
  var SVG = 'http://www.w3.org/2000/svg';
  var CHART_W = 360, CHART_H = 84, PAD = 4;
  var RANGE_NAMES = ['24h', '7d'];
  var history = null;

  function svg(tag, attrs, children) {
    var node = document.createElementNS(SVG, tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, String(attrs[k])); });
    (children || []).forEach(function (c) {
      node.appendChild(typeof c === 'object' ? c : document.createTextNode(String(c)));
    });
    return node;
  }

  function chart(f, series, name) {
    var n = series.peak.length;
    var top = Math.max(1, f.licensed || 0, Math.max.apply(null, series.peak));
    var x = function (i) { return PAD + (CHART_W - 2 * PAD) * i / n; };
    var y = function (v) { return CHART_H - PAD - (CHART_H - 2 * PAD) * v / top; };
    var d = 'M' + x(0) + ' ' + y(series.peak[0] || 0);
    series.peak.forEach(function (v, i) { d += ' H' + x(i) + ' V' + y(v) + ' H' + x(i + 1); });
    var area = d + ' V' + y(0) + ' H' + x(0) + ' Z';
    var peak = Math.max.apply(null, series.peak);
    var parts = [
      svg('path', { 'class': 'use-area', d: area }),
      svg('path', { 'class': 'use', d: d })
    ];
    if (f.licensed !== null && f.licensed !== undefined) {
      parts.push(svg('line', { 'class': 'licensed', 'data-count': f.licensed, x1: x(0), x2: x(n), y1: y(f.licensed), y2: y(f.licensed) },
        [svg('title', null, [f.licensed + ' licensed'])]));
    }
    series.denials.forEach(function (count, i) {
      if (count > 0) {
        var when = new Date((series.start + i * series.bucket_secs) * 1000);
        parts.push(svg('circle', { 'class': 'denial', 'data-count': count, cx: (x(i) + x(i + 1)) / 2, cy: PAD + 3, r: 3 },
          [svg('title', null, [count + ' refused around ' + when.toLocaleString()])]));
      }
    });
    return svg('svg', { 'class': 'chart', 'data-feature': f.feature, 'data-range': name, 'data-peak': peak,
      viewBox: '0 0 ' + CHART_W + ' ' + CHART_H, width: CHART_W, height: CHART_H, role: 'img' },
      [svg('title', null, [f.feature + ', last ' + name + ': at most ' + peak + ' in use'])].concat(parts));
  }

  function historySection() {
    if (!history || history.features.length === 0) { return null; }
    var rows = history.features.map(function (f) {
      return el('tr', { 'class': 'history', 'data-feature': f.feature }, [
        el('td', { 'class': 'name' }, [f.feature, el('div', { 'class': 'muted' },
          [f.licensed === null || f.licensed === undefined ? 'uncounted' : f.licensed + ' licensed'])])
      ].concat(f.ranges.map(function (r, i) { return el('td', null, [chart(f, r, RANGE_NAMES[i])]); })));
    });
    return el('section', { id: 'history' }, [
      el('h2', null, ['Seats in use', el('span', { 'class': 'count' },
        ['most in use per 5 min (24 h) and per hour (7 d); dashed: licensed; red: checkouts refused'])]),
      el('table', null, [
        el('thead', null, [el('tr', null, [el('th', null, ['Feature']), el('th', null, ['Last 24 hours']),
          el('th', null, ['Last 7 days'])])]),
        el('tbody', null, rows)
      ])
    ]);
  }

  function refreshHistory() {
    fetch('/history.json', { cache: 'no-store' })
      .then(function (r) { if (!r.ok) { throw new Error('HTTP ' + r.status); } return r.json(); })
      .then(function (h) { history = h; render(last, lastAt, null); })
      .catch(function () { /* the status refresh reports an unreachable server */ })
      .then(function () { setTimeout(refreshHistory, HISTORY_MS); });
  }

  function render(s, at, error) {
    // Counted seats of the counted total; uncounted pools' seats apart.
    var used = 0, total = 0, uncounted = null;
    s.features.forEach(function (f) {
      if (f.count === null || f.count === undefined) { uncounted = (uncounted || 0) + f.in_use; } else {
        used += f.in_use;
        total += f.count;
      }
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
      card('Seats in use', used, 'of ' + total + (uncounted === null ? '' : ' \u00b7 ' + uncounted + ' uncounted'),
        'seats-used'),
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
    var main = el('main', null, [cards, alerts, soon, pairSection(s), featuresSection(s), historySection(),
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
  refreshHistory();
})();
