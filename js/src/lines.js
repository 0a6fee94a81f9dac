// lines: the reader of an XHR stream's growing responseText (PROTOCOL.md
// section 5.1). A response grows by arbitrary chunks; only whole lines are
// decoded, and a partial line waits for its newline.

// LineReader turns successive values of a growing text into batches of
// whole lines.
function LineReader() {
  this._seen = 0; // how much of the text has been read
  this._part = ''; // a partial line waiting for its newline
}

// push takes the whole text so far and returns the complete lines it adds,
// newline-terminated, or '' if none is complete yet. Padding lines are
// left for decodeBatch to skip.
LineReader.prototype.push = function (text) {
  var s = this._part + text.slice(this._seen), i = s.lastIndexOf('\n');
  this._seen = text.length;
  this._part = i < 0 ? s : s.slice(i + 1);
  return i < 0 ? '' : s.slice(0, i + 1);
};

// cut reports whether the text ended in the middle of a line that is not
// padding: the connection was cut, so the path is dead (not malformed).
LineReader.prototype.cut = function () {
  return /[^ ]/.test(this._part);
};
