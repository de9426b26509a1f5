// Tests infra/cloudfront/ui-routing.js with node (no dependencies): node ui-routing.test.js
// Run by infra/check.sh when node is installed. The path cases are the ones
// edge_serves_file's Rust test (shared/api/src/ui/export.rs) checks.
'use strict';
const fs = require('fs');
const path = require('path');
const assert = require('assert');

const code = fs.readFileSync(path.join(__dirname, 'ui-routing.js'), 'utf8');
const handler = new Function(code + '\nreturn handler;')();

function request(uri, headers, cookies) {
  const h = {};
  for (const [k, v] of Object.entries(headers || {})) h[k] = { value: v };
  const c = {};
  for (const [k, v] of Object.entries(cookies || {})) c[k] = { value: v };
  return { request: { method: 'GET', uri, querystring: {}, headers: h, cookies: c } };
}
const to = (uri, headers, cookies) => {
  const r = handler(request(uri, headers, cookies));
  return r.statusCode ? `${r.statusCode} ${r.headers.location.value}` : r.uri;
};
const html = { accept: 'text/html,application/xhtml+xml' };

const cases = [
  // files of each bundle, as they are
  ['/assets/index-Bny_92F-.js', '/assets/index-Bny_92F-.js'],
  ['/robots.txt', '/robots.txt'],
  ['/ico/favicon-32x32.png', '/ico/favicon-32x32.png'],
  ['/index.html', '/index.html'],
  ['/v2/assets/index-DcpMCR-U.js', '/v2/assets/index-DcpMCR-U.js'],
  ['/v2/fonts/inter.woff2', '/v2/fonts/inter.woff2'],
  ['/v2/mockServiceWorker.js', '/v2/mockServiceWorker.js'],
  ['/ui-settings', '/ui-settings'],
  // pages: the bundle's index.html
  ['/', '/index.html'],
  ['/runs', '/index.html'],
  ['/flows/collections/my.collection', '/index.html'],
  ['/work-pools/work-pool/my.pool', '/index.html'],
  ['/assets/', '/index.html'],
  ['/a/b/c.js', '/index.html'],
  ['/v2/', '/v2/index.html'],
  ['/v2/runs/flow-run/0b6a3f2e-6f7c-4e0e-9a53-3f1f2f0c1d2e', '/v2/index.html'],
  ['/v2/work-pools/work-pool/a.b/queue/c.d', '/v2/index.html'],
  ['/v2/dashboard', '/v2/index.html'],
  // /v2 is outside the V2 mount; /v2x is a V1 page
  ['/v2', '307 /v2/'],
  ['/v2x', '/index.html'],
];
for (const [uri, want] of cases) {
  assert.strictEqual(to(uri), want, uri);
}

// A page navigation to / follows the browser's choice, V2 by default (as `pushpool serve`).
assert.strictEqual(to('/', html), '307 /v2/');
assert.strictEqual(to('/', { 'sec-fetch-mode': 'navigate' }), '307 /v2/');
assert.strictEqual(to('/', { 'sec-fetch-dest': 'document' }), '307 /v2/');
assert.strictEqual(to('/', html, { prefect_ui_version: 'v2' }), '307 /v2/');
assert.strictEqual(to('/', html, { prefect_ui_version: 'v1' }), '/index.html');
assert.strictEqual(to('/', html, { prefect_ui_version: 'v3' }), '307 /v2/');
// Only the neutral entry point: /v2/ stays V2 whatever the cookie, other V1 pages stay V1.
assert.strictEqual(to('/v2/', html, { prefect_ui_version: 'v1' }), '/v2/index.html');
assert.strictEqual(to('/runs', html), '/index.html');
// The redirect carries CloudFront's shape.
assert.deepStrictEqual(handler(request('/v2')), {
  statusCode: 307,
  statusDescription: 'Temporary Redirect',
  headers: { location: { value: '/v2/' } },
});
console.log(`${cases.length + 10} cases passed`);
