// CloudFront Function (runtime cloudfront-js-2.0), viewer request, on the three cache
// behaviours `/api/events/in`, `/api/events/out` and `/api/logs/out` whose origin is the
// events WebSocket API (`<api-id>.execute-api.<region>.amazonaws.com`, no origin path).
//
// Prefect's clients open `<PREFECT_API_URL>/events/in`, `<PREFECT_API_URL>/events/out`
// (`events_in_socket_from_api_url`, `events_out_socket_from_api_url`) and
// `<PREFECT_API_URL>/logs/out` (`logs_out_socket_from_api_url`, the log subscriber of
// `prefect deployment run --watch` and `prefect flow-run watch`). An API Gateway WebSocket
// API accepts connections only at its stage URL, so the path is rewritten to the stage
// (`/events`) and the socket is named by the query string the events function reads on
// `$connect` (`?stream=in`, `?stream=out` or `?stream=logs`); whatever query string the
// viewer sent is replaced. Any other path (a behaviour wired wrongly) is a 404.
function handler(event) {
    var request = event.request;
    var match = request.uri.match(/\/(events\/in|events\/out|logs\/out)\/?$/);
    if (!match) {
        return { statusCode: 404, statusDescription: 'Not Found' };
    }
    var streams = { 'events/in': 'in', 'events/out': 'out', 'logs/out': 'logs' };
    request.uri = '/events';
    request.querystring = { stream: { value: streams[match[1]] } };
    return request;
}
