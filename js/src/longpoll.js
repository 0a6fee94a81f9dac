// longpoll: the long-polling transport (PROTOCOL.md section 5). Each poll
// is an attachment of its own, one batch in one response; the session
// starts the next poll when one ends.

// From other files: xhrTransport (lines).
var longpoll = xhrTransport('longpoll');
