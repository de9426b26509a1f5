// Tests infra/cloudfront/events-rewrite.js with node (no dependencies):
// node events-rewrite.test.js. Run by infra/check.sh when node is installed.
'use strict';
const fs = require('fs');
const path = require('path');
const assert = require('assert');

const code = fs.readFileSync(path.join(__dirname, 'events-rewrite.js'), 'utf8');
const handler = new Function(code + '\nreturn handler;')();

// What the viewer asked for → the stage path and its `stream`, or the 404.
const to = (uri) => {
  const r = handler({ request: { method: 'GET', uri, querystring: { stream: { value: 'x' }, a: { value: 'b' } }, headers: {} } });
  return r.statusCode ? `${r.statusCode} ${r.statusDescription}` : `${r.uri}?stream=${r.querystring.stream.value} (${Object.keys(r.querystring).length})`;
};

const cases = [
  ['/api/events/in', '/events?stream=in (1)'],
  ['/api/events/out', '/events?stream=out (1)'],
  ['/api/logs/out', '/events?stream=logs (1)'],
  ['/api/logs/out/', '/events?stream=logs (1)'],
  ['/api/events/out/', '/events?stream=out (1)'],
  // Behaviours wired wrongly: not a socket path.
  ['/api/logs/filter', '404 Not Found'],
  ['/api/logs/in', '404 Not Found'],
  ['/api/events/filter', '404 Not Found'],
  ['/api/logs/outside', '404 Not Found'],
];
for (const [uri, want] of cases) {
  assert.strictEqual(to(uri), want, uri);
}
console.log(`${cases.length} cases passed`);
