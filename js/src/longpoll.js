// longpoll: the long-polling transport (PROTOCOL.md section 5). Each poll
// is an attachment of its own, one batch in one response; the session
// starts the next poll when one ends.
var longpoll = {
  name: 'longpoll',
  need: 'XMLHttpRequest',
  open: function (c, att, url) {
    att.x = request(c, 'GET', url, null, {}, 0, function (status, text) {
      if (status != 200) return c._gone(att, refusalOf(status, text));
      c._data(att, text);
      c._gone(att, { ok: 1 });
    });
  }
};
