// pushpool: the UI's routing at the edge (CloudFront Function, cloudfront-js-2.0, viewer
// request of the distribution's default behavior: the UI bucket). It answers as
// `pushpool serve` does (shared/api/src/ui.rs, after Prefect's create_ui_app):
// - a page navigation to / goes to the V2 UI (/v2/) unless the prefect_ui_version cookie
//   says v1 (307, Prefect's redirect_to_preferred_ui); /v2 goes to /v2/;
// - /ui-settings is the settings object;
// - below / (V1) and /v2/ (V2), a path of at most two segments whose last has a dot is a
//   file (assets/x.js, robots.txt); any other path is a page of the app: the bundle's
//   index.html. (edge_serves_file in shared/api/src/ui/export.rs; `pushpool ui export`
//   refuses a bundle with a file outside this rule.)
// infra/template.yaml holds this code inline (UiRoutingFunction); infra/contract.py checks
// both are the same, and infra/cloudfront/ui-routing.test.js tests it with node.
function handler(event) {
  var request = event.request;
  var uri = request.uri;
  if (uri === '/ui-settings') {
    return request;
  }
  if (uri === '/v2') {
    return redirect('/v2/');
  }
  if (uri === '/' && isNavigation(request.headers)) {
    var choice = request.cookies.prefect_ui_version;
    if (!choice || choice.value !== 'v1') {
      return redirect('/v2/');
    }
  }
  var base = uri.indexOf('/v2/') === 0 ? '/v2' : '';
  var relative = uri.substring(base.length + 1);
  if (!servesFile(relative)) {
    request.uri = base + '/index.html';
  }
  return request;
}

function servesFile(relative) {
  var segments = relative.split('/');
  if (segments.length > 2) {
    return false;
  }
  for (var i = 0; i < segments.length; i++) {
    if (segments[i] === '') {
      return false;
    }
  }
  return segments[segments.length - 1].indexOf('.') !== -1;
}

function isNavigation(headers) {
  var get = function (name) {
    return headers[name] ? headers[name].value : '';
  };
  return get('sec-fetch-mode') === 'navigate' ||
    get('sec-fetch-dest') === 'document' || get('sec-fetch-dest') === 'iframe' ||
    get('accept').toLowerCase().indexOf('text/html') !== -1;
}

function redirect(location) {
  return {
    statusCode: 307,
    statusDescription: 'Temporary Redirect',
    headers: { location: { value: location } }
  };
}
