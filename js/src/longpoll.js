// longpoll: the long-polling transport (PROTOCOL.md section 5). Each poll
// is an attachment of its own, one batch in one response; the session
// starts the next poll when one ends.
var longpoll = {
  name: 'longpoll',
  need: 'XMLHttpRequest',
  open: function (c, att, url) {
    att.x = request(c, 'GET', url, null, {}, 0, function (status, text) {
      if (status != 200) return _gone(c, att, refusalOf(status, text));
      _data(c, att, text);
      _gone(c, att, { ok: 1 });
    });
  }
};
